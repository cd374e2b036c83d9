//! Users and groups beyond membership: updating and deleting users and groups, setting a
//! password, adding members in bulk, and listing members and child groups through the
//! groups below. Every new event is checked against its JSON Schema.

use std::collections::BTreeSet;

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    ADMINISTRATORS, Answer, Backend, JS_PREFIX, LoggedEvent, PREFIX, PREFIXES, SERVICE_ACCOUNT,
    SERVICE_ACCOUNT_EMAIL, TestApp, assert_error_shape, backends, column, encode, membership_path,
    schema_for, uuid_field,
};

const PASSWORD: &str = "his-name-was-robert";
const NEW_PASSWORD: &str = "a-copy-of-a-copy";

// ---- helpers ------------------------------------------------------------------------

fn user_path(prefix: &str, user: &str) -> String {
    format!("{prefix}/users/{}", encode(user))
}

fn group_path(prefix: &str, group: &str) -> String {
    format!("{prefix}/groups/{}", encode(group))
}

fn password_path(prefix: &str, user: &str) -> String {
    format!("{}/credentials/password", user_path(prefix, user))
}

fn members_path(prefix: &str, group: &str) -> String {
    format!("{}/users", group_path(prefix, group))
}

async fn put(app: &TestApp, path: &str, token: &str, body: &Value) -> Answer {
    app.request_json(Method::PUT, path, Some(token), body).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> Answer {
    app.request(Method::DELETE, path, Some(token)).await
}

/// A GET as the administrator.
async fn get(app: &TestApp, path: &str) -> Answer {
    app.request(Method::GET, path, Some(&app.admin_token)).await
}

/// Creates a user with `PASSWORD` (email `<username>@fightclub.com`) and returns its id
/// and a token of its own: a user who is no administrator.
async fn user_with_token(app: &TestApp, username: &str) -> (String, String) {
    let user = app
        .create_user(
            username,
            &format!("{username}@fightclub.com"),
            Some(PASSWORD),
        )
        .await;
    let token = app.token_for(username, PASSWORD).await;
    (uuid_field(&user, "id").to_string(), token)
}

/// Creates a user without a password; its id.
async fn user(app: &TestApp, username: &str) -> String {
    let user = app
        .create_user(username, &format!("{username}@fightclub.com"), None)
        .await;
    uuid_field(&user, "id").to_string()
}

/// Creates a group; its id.
async fn group(app: &TestApp, name: &str) -> String {
    uuid_field(&app.create_group(name).await, "id").to_string()
}

/// Places `child` inside `group`.
async fn nest(app: &TestApp, group: &str, child: &str) {
    let path = format!("{}/groups/{}", group_path(PREFIX, group), encode(child));
    app.request(Method::PUT, &path, Some(&app.admin_token))
        .await
        .assert_no_content();
}

/// The events stream (no credentials), in log order.
fn public_events(app: &TestApp) -> Vec<LoggedEvent> {
    app.log_events()
        .into_iter()
        .filter(|e| e.table == "events")
        .collect()
}

/// The credentials stream, in log order.
fn credentials(app: &TestApp) -> Vec<LoggedEvent> {
    app.log_events()
        .into_iter()
        .filter(|e| e.table == "credentials")
        .collect()
}

/// What the events stream gained since it held `before` events, in log order.
fn appended_since(app: &TestApp, before: usize) -> Vec<LoggedEvent> {
    let events = public_events(app);
    assert!(
        events.len() >= before,
        "the events stream shrank from {before} to {}",
        events.len()
    );
    events[before..].to_vec()
}

fn types(events: &[LoggedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

/// Every event validates against `schemas/<type>.json`.
fn assert_valid(events: &[LoggedEvent]) {
    let mut failures = Vec::new();
    for event in events {
        let validator = schema_for(&event.event_type);
        for error in validator.iter_errors(&event.payload) {
            failures.push(format!(
                "{} {} at {}: {error}\n{}",
                event.event_type, event.event_id, error.instance_path, event.payload
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `(totalCount, pageCount)` of a paged list.
fn counts(body: &Value) -> (Option<u64>, Option<u64>) {
    (body["totalCount"].as_u64(), body["pageCount"].as_u64())
}

/// The error of a password grant for `login` and `password` (400).
async fn refused_grant(app: &TestApp, login: &str, password: &str) -> String {
    app.token_request(&[
        ("grant_type", "password"),
        ("username", login),
        ("password", password),
    ])
    .await
    .oauth_error()
}

// ---- PUT .../users/{u} ------------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn an_administrator_updates_a_user_by_id_username_or_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = user(&app, "marla").await;
    let before = public_events(&app).len();

    let body = json!({
        "username": "marla.singer",
        "email": "Marla.Singer@FightClub.com",
        "firstName": "Marla",
        "lastName": "Singer",
        "timezone": "America/Los_Angeles",
        "language": "en-US",
        "custom": { "meetings": "all of them" },
    });
    let answer = put(&app, &user_path(PREFIX, "marla"), &app.admin_token, &body).await;
    answer.assert_status(200);
    let stored = answer.json();
    assert_eq!(stored["id"], id, "{stored}");
    assert_eq!(stored["username"], "marla.singer");
    assert_eq!(stored["email"], "Marla.Singer@FightClub.com");
    assert_eq!(stored["firstname"], "Marla");
    assert_eq!(stored["lastname"], "Singer");
    assert_eq!(stored["timezone"], "America/Los_Angeles");
    assert_eq!(stored["language"], "en-US");
    assert_eq!(stored["custom"], json!({ "meetings": "all of them" }));
    assert!(stored.get("firstName").is_none(), "{stored}");
    assert_eq!(app.get_json(&user_path(PREFIX, &id)).await, stored);

    let appended = appended_since(&app, before);
    assert_eq!(types(&appended), ["UserUpdated"]);
    let data = &appended[0].payload["data"];
    assert_eq!(data["userId"], id, "{data}");
    assert_eq!(data["username"], "marla.singer");
    assert_eq!(data["email"], "Marla.Singer@FightClub.com");
    assert_eq!(data["firstname"], "Marla");
    assert_eq!(data["lastname"], "Singer");
    assert_eq!(data["timezone"], "America/Los_Angeles");
    assert_eq!(data["language"], "en-US");
    assert_eq!(data["custom"], json!({ "meetings": "all of them" }));

    // By id under the other prefix, and by email in another case.
    for (prefix, identifier, firstname) in [
        (JS_PREFIX, id.as_str(), "Marla J."),
        (PREFIX, "MARLA.SINGER@fightclub.com", "Marla E."),
    ] {
        let body = json!({
            "username": "marla.singer",
            "email": "Marla.Singer@FightClub.com",
            "firstname": firstname,
        });
        let answer = put(
            &app,
            &user_path(prefix, identifier),
            &app.admin_token,
            &body,
        )
        .await;
        answer.assert_status(200);
        assert_eq!(answer.json()["firstname"], firstname);
        assert_eq!(
            app.get_json(&user_path(PREFIX, &id)).await["firstname"],
            firstname
        );
    }
    let appended = appended_since(&app, before);
    assert_eq!(types(&appended), ["UserUpdated"; 3]);
    assert_valid(&appended);
}

#[apply(backends)]
#[tokio::test]
async fn a_user_may_update_itself_but_no_other_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (marla_id, marla) = user_with_token(&app, "marla").await;
    let (_, bob) = user_with_token(&app, "bob").await;
    let before = app.log_len();

    // Another user, known or not: 403 either way, so that nothing is learnt.
    for target in ["marla", "robert.paulson", "nobody@fightclub.com"] {
        let body = json!({ "username": "bob.paulson", "email": "bob@fightclub.com" });
        put(&app, &user_path(PREFIX, target), &bob, &body)
            .await
            .assert_error(403, "Forbidden");
    }
    app.assert_nothing_appended(before);
    assert_eq!(
        app.get_json(&user_path(PREFIX, "marla")).await["id"],
        marla_id
    );

    let events_before = public_events(&app).len();
    let body = json!({
        "username": "marla",
        "email": "marla@fightclub.com",
        "firstname": "Marla",
        "lastname": "Singer",
    });
    let answer = put(&app, &user_path(JS_PREFIX, "marla"), &marla, &body).await;
    answer.assert_status(200);
    let stored = answer.json();
    assert_eq!(stored["id"], marla_id, "{stored}");
    assert_eq!(
        (&stored["firstname"], &stored["lastname"]),
        (&json!("Marla"), &json!("Singer"))
    );
    let appended = appended_since(&app, events_before);
    assert_eq!(types(&appended), ["UserUpdated"]);
    assert_eq!(appended[0].payload["data"]["userId"], marla_id);
    assert_valid(&appended);
}

#[apply(backends)]
#[tokio::test]
async fn updating_an_unknown_user_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    user(&app, "marla").await;
    let before = app.log_len();
    let body = json!({ "username": "robert.paulson", "email": "bob@fightclub.com" });
    let unknown_id = Uuid::new_v4().to_string();
    for prefix in PREFIXES {
        for target in ["robert.paulson", "bob@fightclub.com", unknown_id.as_str()] {
            put(&app, &user_path(prefix, target), &app.admin_token, &body)
                .await
                .assert_error(404, "UserNotFound");
        }
    }
    app.assert_nothing_appended(before);
}

#[apply(backends)]
#[tokio::test]
async fn a_user_cannot_take_another_users_username_or_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    user(&app, "marla").await;
    user(&app, "bob").await;
    let before = app.log_len();

    let path = user_path(PREFIX, "marla");
    let body = json!({ "username": "BOB", "email": "marla@fightclub.com" });
    put(&app, &path, &app.admin_token, &body)
        .await
        .assert_error(409, "UsernameTaken");
    let body = json!({ "username": "marla", "email": "Bob@FightClub.COM" });
    put(
        &app,
        &user_path(JS_PREFIX, "marla"),
        &app.admin_token,
        &body,
    )
    .await
    .assert_error(409, "EmailTaken");
    app.assert_nothing_appended(before);
    let stored = app.get_json(&path).await;
    assert_eq!(
        (&stored["username"], &stored["email"]),
        (&json!("marla"), &json!("marla@fightclub.com"))
    );

    // Keeping its own username and email is no conflict.
    let events_before = public_events(&app).len();
    let body = json!({
        "username": "marla",
        "email": "marla@fightclub.com",
        "firstname": "Marla",
    });
    let answer = put(&app, &path, &app.admin_token, &body).await;
    answer.assert_status(200);
    assert_eq!(answer.json()["firstname"], "Marla");
    let appended = appended_since(&app, events_before);
    assert_eq!(types(&appended), ["UserUpdated"]);
    assert_valid(&appended);
}

#[apply(backends)]
#[tokio::test]
async fn an_update_with_an_invalid_username_or_email_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    user(&app, "marla").await;
    let before = app.log_len();
    for (prefix, body, field) in [
        (
            PREFIX,
            json!({ "email": "marla@fightclub.com" }),
            "username",
        ),
        (
            JS_PREFIX,
            json!({ "username": "", "email": "marla@fightclub.com" }),
            "username",
        ),
        (
            PREFIX,
            json!({ "username": "marla@home", "email": "marla@fightclub.com" }),
            "username",
        ),
        (PREFIX, json!({ "username": "marla" }), "email"),
        (
            JS_PREFIX,
            json!({ "username": "marla", "email": "marla.fightclub.com" }),
            "email",
        ),
    ] {
        let answer = put(&app, &user_path(prefix, "marla"), &app.admin_token, &body).await;
        let data = answer.assert_error(422, "ValidationFailed");
        assert_eq!(data["field"], field, "{body}: {data}");
    }
    app.assert_nothing_appended(before);
}

#[apply(backends)]
#[tokio::test]
async fn a_password_is_not_changed_by_updating_the_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, marla) = user_with_token(&app, "marla").await;
    let before = app.log_len();
    let body = json!({
        "username": "marla",
        "email": "marla@fightclub.com",
        "credentials": { "password": NEW_PASSWORD },
    });
    for (prefix, token) in [(PREFIX, &app.admin_token), (JS_PREFIX, &marla)] {
        let answer = put(&app, &user_path(prefix, "marla"), token, &body).await;
        let data = answer.assert_error(422, "ValidationFailed");
        assert_eq!(data["field"], "credentials.password", "{data}");
    }
    app.assert_nothing_appended(before);
    app.token_for("marla", PASSWORD).await;
    assert_eq!(
        refused_grant(&app, "marla", NEW_PASSWORD).await,
        "invalid_grant"
    );
}

#[apply(backends)]
#[tokio::test]
async fn a_renamed_user_is_found_by_its_new_username_and_email_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = user(&app, "marla").await;
    let body = json!({ "username": "marla.singer", "email": "singer@fightclub.com" });
    put(&app, &user_path(PREFIX, "marla"), &app.admin_token, &body)
        .await
        .assert_status(200);
    for prefix in PREFIXES {
        for old in ["marla", "marla@fightclub.com"] {
            get(&app, &user_path(prefix, old))
                .await
                .assert_error(404, "UserNotFound");
        }
        for new in ["marla.singer", "SINGER@fightclub.com"] {
            let found = app.get_json(&user_path(prefix, new)).await;
            assert_eq!(found["id"], id, "{found}");
            assert_eq!(found["username"], "marla.singer");
        }
    }
}

// ---- DELETE .../users/{u} ---------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn deleting_a_user_removes_it_from_each_of_its_groups_then_deletes_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let marla = user_with_token(&app, "marla").await.0;
    let monkeys = group(&app, "Space Monkeys").await;
    let committee = group(&app, "Committee").await;
    group(&app, "Project Mayhem").await;
    app.add_member("Space%20Monkeys", "marla").await;
    app.add_member("Committee", "marla").await;
    // A member of Project Mayhem only through Committee: no event of its own.
    nest(&app, "Project Mayhem", "Committee").await;
    let before = public_events(&app).len();

    delete(&app, &user_path(JS_PREFIX, "marla"), &app.admin_token)
        .await
        .assert_no_content();

    let appended = appended_since(&app, before);
    assert_eq!(
        types(&appended),
        ["MemberRemoved", "MemberRemoved", "UserDeleted"],
        "{appended:#?}"
    );
    let removed_from: BTreeSet<String> = appended[..2]
        .iter()
        .map(|e| {
            assert_eq!(e.payload["data"]["userId"], marla, "{e:?}");
            e.payload["data"]["groupId"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(removed_from, BTreeSet::from([monkeys, committee]));
    let deleted = &appended[2].payload["data"];
    assert_eq!(deleted["userId"], marla, "{deleted}");
    assert_eq!(deleted["username"], "marla");
    assert_eq!(deleted["email"], "marla@fightclub.com");
    assert_valid(&appended);

    for prefix in PREFIXES {
        for identifier in [marla.as_str(), "marla", "marla@fightclub.com"] {
            get(&app, &user_path(prefix, identifier))
                .await
                .assert_error(404, "UserNotFound");
        }
    }
    for group in ["Space%20Monkeys", "Committee"] {
        let members = app.list_members(group).await;
        assert_eq!(members["totalCount"], 0, "{members}");
    }
    assert_eq!(app.head_member("Project%20Mayhem", &marla).await, 404);
    assert_eq!(
        refused_grant(&app, "marla", PASSWORD).await,
        "invalid_grant"
    );

    // The username and email are free again, for a new user with nothing of the old one.
    let again = app
        .create_user("marla", "marla@fightclub.com", Some(PASSWORD))
        .await;
    assert_ne!(again["id"], marla.as_str());
    app.token_for("marla", PASSWORD).await;
    assert_eq!(app.head_member("Space%20Monkeys", "marla").await, 404);
}

#[apply(backends)]
#[tokio::test]
async fn deleting_a_user_needs_an_administrator_and_an_existing_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    user(&app, "marla").await;
    let (_, bob) = user_with_token(&app, "bob").await;
    let before = app.log_len();
    for prefix in PREFIXES {
        delete(&app, &user_path(prefix, "marla"), &bob)
            .await
            .assert_error(403, "Forbidden");
        delete(&app, &user_path(prefix, "robert.paulson"), &app.admin_token)
            .await
            .assert_error(404, "UserNotFound");
    }
    app.assert_nothing_appended(before);
    app.get_json(&user_path(PREFIX, "marla")).await;
}

#[apply(backends)]
#[tokio::test]
async fn the_service_account_is_not_deleted_while_it_is_the_last_administrator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = app.log_len();
    for prefix in PREFIXES {
        for identifier in [SERVICE_ACCOUNT, SERVICE_ACCOUNT_EMAIL] {
            delete(&app, &user_path(prefix, identifier), &app.admin_token)
                .await
                .assert_error(409, "LastAdministrator");
        }
    }
    app.assert_nothing_appended(before);
    assert_eq!(
        app.head_member(&encode(ADMINISTRATORS), SERVICE_ACCOUNT)
            .await,
        204
    );
}

// ---- POST .../users/{u}/credentials/password --------------------------------------

/// Asserts that the credentials stream gained exactly one `PasswordSet` for `user_id`
/// since it held `before` events, that the events stream did not change from
/// `events_before`, and that the new hash is nowhere among the events; returns the hash.
fn assert_password_set(
    app: &TestApp,
    user_id: &str,
    before: usize,
    events_before: usize,
) -> String {
    let events = public_events(app);
    assert_eq!(
        events.len(),
        events_before,
        "the events stream changed: {:#?}",
        &events[events_before.min(events.len())..]
    );
    assert!(events.iter().all(|e| e.event_type != "PasswordSet"));
    let secrets = credentials(app);
    let new = &secrets[before..];
    assert_eq!(types(new), ["PasswordSet"], "{new:#?}");
    assert_eq!(new[0].payload["data"]["userId"], user_id);
    assert_valid(new);
    let hash = new[0].payload["data"]["passwordHash"]
        .as_str()
        .expect("a passwordHash")
        .to_owned();
    assert!(hash.starts_with("$argon2"), "{hash}");
    for event in &events {
        assert!(
            !event.payload.to_string().contains(&hash),
            "the hash is in {event:?}"
        );
    }
    for event in app.log_events() {
        assert!(
            !event.payload.to_string().contains(NEW_PASSWORD),
            "the password is in {event:?}"
        );
    }
    hash
}

#[apply(backends)]
#[tokio::test]
async fn a_user_changes_its_own_password_with_the_existing_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (marla_id, marla) = user_with_token(&app, "marla").await;
    let (before, events_before) = (credentials(&app).len(), public_events(&app).len());

    let body = json!({ "existing": PASSWORD, "new": NEW_PASSWORD });
    let answer = app
        .post_json(&password_path(JS_PREFIX, "marla"), Some(&marla), &body)
        .await;
    answer.assert_status(200);
    assert!(answer.text.is_empty(), "a body: {:?}", answer.text);

    app.token_for("marla", NEW_PASSWORD).await;
    assert_eq!(
        refused_grant(&app, "marla", PASSWORD).await,
        "invalid_grant"
    );
    assert_password_set(&app, &marla_id, before, events_before);
}

#[apply(backends)]
#[tokio::test]
async fn a_wrong_or_missing_existing_password_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, marla) = user_with_token(&app, "marla").await;
    let before = app.log_len();
    for (prefix, body) in [
        (
            PREFIX,
            json!({ "existing": "not-her-password", "new": NEW_PASSWORD }),
        ),
        (JS_PREFIX, json!({ "new": NEW_PASSWORD })),
    ] {
        let answer = app
            .post_json(&password_path(prefix, "marla"), Some(&marla), &body)
            .await;
        answer.assert_error(409, "ExistingPasswordInvalid");
    }
    app.assert_nothing_appended(before);
    app.token_for("marla", PASSWORD).await;
    assert_eq!(
        refused_grant(&app, "marla", NEW_PASSWORD).await,
        "invalid_grant"
    );
}

#[apply(backends)]
#[tokio::test]
async fn an_administrator_sets_a_password_without_the_existing_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let marla_id = user_with_token(&app, "marla").await.0;
    let (before, events_before) = (credentials(&app).len(), public_events(&app).len());

    let body = json!({ "new": NEW_PASSWORD });
    let answer = app
        .post_json(
            &password_path(PREFIX, "marla@fightclub.com"),
            Some(&app.admin_token),
            &body,
        )
        .await;
    answer.assert_status(200);
    assert!(answer.text.is_empty(), "a body: {:?}", answer.text);
    app.token_for("marla", NEW_PASSWORD).await;
    assert_eq!(
        refused_grant(&app, "marla", PASSWORD).await,
        "invalid_grant"
    );
    assert_password_set(&app, &marla_id, before, events_before);

    // A user made without a password gets its first one the same way.
    let bob_id = user(&app, "bob").await;
    let (before, events_before) = (credentials(&app).len(), public_events(&app).len());
    app.post_json(
        &password_path(JS_PREFIX, &bob_id),
        Some(&app.admin_token),
        &body,
    )
    .await
    .assert_status(200);
    app.token_for("bob", NEW_PASSWORD).await;
    assert_password_set(&app, &bob_id, before, events_before);
}

#[apply(backends)]
#[tokio::test]
async fn setting_a_password_needs_the_user_itself_or_an_administrator_and_an_existing_user(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    user_with_token(&app, "marla").await;
    let (_, bob) = user_with_token(&app, "bob").await;
    let before = app.log_len();
    for prefix in PREFIXES {
        // Even knowing her password, bob is not marla.
        let body = json!({ "existing": PASSWORD, "new": NEW_PASSWORD });
        app.post_json(&password_path(prefix, "marla"), Some(&bob), &body)
            .await
            .assert_error(403, "Forbidden");
        let body = json!({ "new": NEW_PASSWORD });
        app.post_json(
            &password_path(prefix, "robert.paulson"),
            Some(&app.admin_token),
            &body,
        )
        .await
        .assert_error(404, "UserNotFound");
    }
    app.assert_nothing_appended(before);
    app.token_for("marla", PASSWORD).await;
}

#[apply(backends)]
#[tokio::test]
async fn a_new_password_shorter_than_eight_characters_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (marla_id, marla) = user_with_token(&app, "marla").await;
    let before = app.log_len();
    for (prefix, token, body) in [
        (
            PREFIX,
            &marla,
            json!({ "existing": PASSWORD, "new": "1234567" }),
        ),
        (JS_PREFIX, &marla, json!({ "existing": PASSWORD })),
        (PREFIX, &app.admin_token, json!({ "new": "seven.." })),
        (JS_PREFIX, &app.admin_token, json!({})),
    ] {
        let answer = app
            .post_json(&password_path(prefix, "marla"), Some(token), &body)
            .await;
        let data = answer.assert_error(422, "ValidationFailed");
        assert_eq!(data["field"], "new", "{body}: {data}");
    }
    app.assert_nothing_appended(before);
    app.token_for("marla", PASSWORD).await;

    // Eight characters are enough.
    let (before, events_before) = (credentials(&app).len(), public_events(&app).len());
    let body = json!({ "existing": PASSWORD, "new": "eight..." });
    app.post_json(&password_path(PREFIX, "marla"), Some(&marla), &body)
        .await
        .assert_status(200);
    app.token_for("marla", "eight...").await;
    assert_password_set(&app, &marla_id, before, events_before);
}

// ---- PUT .../groups/{g} -----------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn an_administrator_updates_a_group_by_id_or_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = group(&app, "Space Monkeys").await;
    let before = public_events(&app).len();

    let body = json!({
        "name": "Space Monkeys",
        "Description": "the documentation's capital D",
        "type": "external",
        "custom": { "rule": "you do not talk about it" },
    });
    let answer = put(
        &app,
        &group_path(PREFIX, "space monkeys"),
        &app.admin_token,
        &body,
    )
    .await;
    answer.assert_status(200);
    let stored = answer.json();
    assert_eq!(stored["id"], id, "{stored}");
    assert_eq!(stored["name"], "Space Monkeys");
    assert_eq!(stored["description"], "the documentation's capital D");
    assert_eq!(stored["type"], "external");
    assert_eq!(
        stored["custom"],
        json!({ "rule": "you do not talk about it" })
    );
    assert_eq!(app.get_json(&group_path(PREFIX, &id)).await, stored);
    let appended = appended_since(&app, before);
    assert_eq!(types(&appended), ["GroupUpdated"]);
    let data = &appended[0].payload["data"];
    assert_eq!(data["groupId"], id, "{data}");
    assert_eq!(data["name"], "Space Monkeys");
    assert_eq!(data["description"], "the documentation's capital D");
    assert_eq!(data["type"], "external");
    assert_eq!(
        data["custom"],
        json!({ "rule": "you do not talk about it" })
    );

    // Renamed by id under the other prefix; without a type it keeps the one it has.
    let body = json!({ "name": "Project Mayhem", "description": "renamed" });
    let answer = put(&app, &group_path(JS_PREFIX, &id), &app.admin_token, &body).await;
    answer.assert_status(200);
    let stored = answer.json();
    assert_eq!(
        (&stored["name"], &stored["type"]),
        (&json!("Project Mayhem"), &json!("external")),
        "{stored}"
    );
    assert_eq!(
        app.get_json(&group_path(PREFIX, "Project Mayhem")).await["id"],
        id
    );
    get(&app, &group_path(PREFIX, "Space Monkeys"))
        .await
        .assert_error(404, "GroupNotFound");

    let body = json!({ "name": "Project Mayhem", "type": "contensis" });
    let answer = put(
        &app,
        &group_path(PREFIX, "Project Mayhem"),
        &app.admin_token,
        &body,
    )
    .await;
    answer.assert_status(200);
    assert_eq!(answer.json()["type"], "contensis");

    let appended = appended_since(&app, before);
    assert_eq!(types(&appended), ["GroupUpdated"; 3]);
    assert_valid(&appended);
}

#[apply(backends)]
#[tokio::test]
async fn a_group_cannot_take_another_groups_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    group(&app, "Space Monkeys").await;
    group(&app, "Committee").await;
    let before = app.log_len();
    for prefix in PREFIXES {
        for name in ["Space Monkeys", "SPACE MONKEYS", "system administrators"] {
            put(
                &app,
                &group_path(prefix, "Committee"),
                &app.admin_token,
                &json!({ "name": name }),
            )
            .await
            .assert_error(409, "GroupNameTaken");
        }
    }
    app.assert_nothing_appended(before);

    // Keeping its own name is no conflict.
    let events_before = public_events(&app).len();
    let body = json!({ "name": "Committee", "description": "the inner circle" });
    let answer = put(
        &app,
        &group_path(PREFIX, "Committee"),
        &app.admin_token,
        &body,
    )
    .await;
    answer.assert_status(200);
    assert_eq!(answer.json()["description"], "the inner circle");
    let appended = appended_since(&app, events_before);
    assert_eq!(types(&appended), ["GroupUpdated"]);
    assert_valid(&appended);
}

#[apply(backends)]
#[tokio::test]
async fn a_group_update_with_an_empty_name_or_an_unknown_type_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    group(&app, "Committee").await;
    let before = app.log_len();
    for (prefix, body, field) in [
        (PREFIX, json!({ "name": "" }), "name"),
        (JS_PREFIX, json!({ "description": "no name" }), "name"),
        (
            PREFIX,
            json!({ "name": "Committee", "type": "other" }),
            "type",
        ),
        (
            JS_PREFIX,
            json!({ "name": "Committee", "type": "other" }),
            "type",
        ),
    ] {
        let answer = put(
            &app,
            &group_path(prefix, "Committee"),
            &app.admin_token,
            &body,
        )
        .await;
        let data = answer.assert_error(422, "ValidationFailed");
        assert_eq!(data["field"], field, "{body}: {data}");
    }
    app.assert_nothing_appended(before);
}

#[apply(backends)]
#[tokio::test]
async fn updating_a_group_needs_an_administrator_and_an_existing_group(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    group(&app, "Committee").await;
    let (_, bob) = user_with_token(&app, "bob").await;
    let before = app.log_len();
    let body = json!({ "name": "Committee", "description": "bob's now" });
    for prefix in PREFIXES {
        put(&app, &group_path(prefix, "Committee"), &bob, &body)
            .await
            .assert_error(403, "Forbidden");
        put(
            &app,
            &group_path(prefix, "Project Mayhem"),
            &app.admin_token,
            &body,
        )
        .await
        .assert_error(404, "GroupNotFound");
    }
    app.assert_nothing_appended(before);
}

#[apply(backends)]
#[tokio::test]
async fn system_administrators_keeps_its_name_and_type(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let path = group_path(PREFIX, ADMINISTRATORS);
    let id = app.get_json(&path).await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let before = app.log_len();
    for (prefix, body) in [
        (PREFIX, json!({ "name": "Administrators" })),
        (
            JS_PREFIX,
            json!({ "name": "Administrators", "type": "sys" }),
        ),
        (
            PREFIX,
            json!({ "name": ADMINISTRATORS, "type": "contensis" }),
        ),
        (
            JS_PREFIX,
            json!({ "name": ADMINISTRATORS, "type": "external" }),
        ),
    ] {
        put(
            &app,
            &group_path(prefix, ADMINISTRATORS),
            &app.admin_token,
            &body,
        )
        .await
        .assert_error(403, "SystemGroup");
    }
    app.assert_nothing_appended(before);

    // Its description may change, with the type left out or given as it is.
    let events_before = public_events(&app).len();
    for (prefix, body) in [
        (
            PREFIX,
            json!({ "name": ADMINISTRATORS, "description": "they run the place" }),
        ),
        (
            JS_PREFIX,
            json!({ "name": ADMINISTRATORS, "description": "still", "type": "sys" }),
        ),
    ] {
        let answer = put(
            &app,
            &group_path(prefix, ADMINISTRATORS),
            &app.admin_token,
            &body,
        )
        .await;
        answer.assert_status(200);
        let stored = answer.json();
        assert_eq!(stored["id"], id.as_str(), "{stored}");
        assert_eq!(stored["name"], ADMINISTRATORS);
        assert_eq!(stored["type"], "sys");
        assert_eq!(stored["description"], body["description"]);
    }
    let appended = appended_since(&app, events_before);
    assert_eq!(types(&appended), ["GroupUpdated"; 2]);
    assert_valid(&appended);
    assert_eq!(
        app.head_member(&encode(ADMINISTRATORS), SERVICE_ACCOUNT)
            .await,
        204
    );
}

#[apply(backends)]
#[tokio::test]
async fn an_ordinary_group_cannot_be_made_a_system_group(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    group(&app, "Committee").await;
    let before = app.log_len();
    for prefix in PREFIXES {
        let body = json!({ "name": "Committee", "type": "sys" });
        put(
            &app,
            &group_path(prefix, "Committee"),
            &app.admin_token,
            &body,
        )
        .await
        .assert_error(403, "SystemGroup");
    }
    app.assert_nothing_appended(before);
    assert_eq!(
        app.get_json(&group_path(PREFIX, "Committee")).await["type"],
        "contensis"
    );
}

// ---- DELETE .../groups/{g} --------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn deleting_a_group_empties_it_and_takes_it_out_of_the_tree(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let monkeys = group(&app, "Space Monkeys").await;
    let mayhem = group(&app, "Project Mayhem").await;
    let paper = group(&app, "Paper Street").await;
    let committee = group(&app, "Committee").await;
    let assault = group(&app, "Assault Team").await;
    let marla = user(&app, "marla").await;
    let bob = user(&app, "bob").await;
    user(&app, "chloe").await;
    app.add_member("Space%20Monkeys", "marla").await;
    app.add_member("Space%20Monkeys", "bob").await;
    app.add_member("Committee", "chloe").await;
    nest(&app, "Project Mayhem", "Space Monkeys").await;
    nest(&app, "Paper Street", "Space Monkeys").await;
    nest(&app, "Space Monkeys", "Committee").await;
    nest(&app, "Space Monkeys", "Assault Team").await;
    assert_eq!(app.head_member("Project%20Mayhem", "chloe").await, 204);
    let before = public_events(&app).len();

    delete(
        &app,
        &group_path(JS_PREFIX, "Space Monkeys"),
        &app.admin_token,
    )
    .await
    .assert_no_content();

    let appended = appended_since(&app, before);
    let (deleted, ended) = appended.split_last().expect("events were appended");
    assert_eq!(deleted.event_type, "GroupDeleted", "{appended:#?}");
    assert_eq!(deleted.payload["data"]["groupId"], monkeys);
    assert_eq!(deleted.payload["data"]["name"], "Space Monkeys");
    let mut removed = BTreeSet::new();
    let mut unnested = BTreeSet::new();
    for event in ended {
        let data = &event.payload["data"];
        let field = |name: &str| data[name].as_str().unwrap_or_default().to_owned();
        match event.event_type.as_str() {
            "MemberRemoved" => {
                assert_eq!(field("groupId"), monkeys, "{event:?}");
                removed.insert(field("userId"));
            }
            "ChildGroupRemoved" => {
                unnested.insert((field("groupId"), field("childGroupId")));
            }
            _ => panic!("unexpected before GroupDeleted: {event:?}"),
        }
    }
    assert_eq!(types(ended).len(), 6, "{appended:#?}");
    assert_eq!(removed, BTreeSet::from([marla, bob]));
    assert_eq!(
        unnested,
        BTreeSet::from([
            (monkeys.clone(), committee),
            (monkeys.clone(), assault),
            (mayhem, monkeys.clone()),
            (paper, monkeys.clone()),
        ])
    );
    assert_valid(&appended);

    for prefix in PREFIXES {
        for identifier in [monkeys.as_str(), "Space Monkeys"] {
            get(&app, &group_path(prefix, identifier))
                .await
                .assert_error(404, "GroupNotFound");
        }
    }
    // The former children and members are still there, on their own.
    for name in ["Committee", "Assault Team"] {
        app.get_json(&group_path(PREFIX, name)).await;
    }
    for parent in ["Project Mayhem", "Paper Street"] {
        let below = app
            .get_json(&format!(
                "{}/groups?includeInherited=true",
                group_path(PREFIX, parent)
            ))
            .await;
        assert_eq!(counts(&below), (Some(0), Some(0)), "{below}");
    }
    assert_eq!(app.head_member("Project%20Mayhem", "chloe").await, 404);
    let chloes = app
        .get_json(&format!(
            "{}/groups?includeInherited=true",
            user_path(PREFIX, "chloe")
        ))
        .await;
    assert_eq!(column(&chloes, "name"), ["Committee"], "{chloes}");
    for username in ["marla", "bob"] {
        app.get_json(&user_path(PREFIX, username)).await;
        let groups = app
            .get_json(&format!("{}/groups", user_path(PREFIX, username)))
            .await;
        assert_eq!(groups["totalCount"], 0, "{groups}");
    }
}

#[apply(backends)]
#[tokio::test]
async fn deleting_a_group_needs_an_administrator_and_an_existing_group(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    group(&app, "Committee").await;
    let (_, bob) = user_with_token(&app, "bob").await;
    let before = app.log_len();
    for prefix in PREFIXES {
        delete(&app, &group_path(prefix, "Committee"), &bob)
            .await
            .assert_error(403, "Forbidden");
        delete(
            &app,
            &group_path(prefix, "Project Mayhem"),
            &app.admin_token,
        )
        .await
        .assert_error(404, "GroupNotFound");
    }
    app.assert_nothing_appended(before);
    app.get_json(&group_path(PREFIX, "Committee")).await;
}

#[apply(backends)]
#[tokio::test]
async fn system_administrators_cannot_be_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let path = group_path(PREFIX, ADMINISTRATORS);
    let id = app.get_json(&path).await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let before = app.log_len();
    for prefix in PREFIXES {
        for identifier in [ADMINISTRATORS, id.as_str()] {
            delete(&app, &group_path(prefix, identifier), &app.admin_token)
                .await
                .assert_error(403, "SystemGroup");
        }
    }
    app.assert_nothing_appended(before);
    app.get_json(&path).await;
}

#[apply(backends)]
#[tokio::test]
async fn the_group_and_the_user_holding_the_last_administrator_stay(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    group(&app, "Ops").await;
    nest(&app, ADMINISTRATORS, "Ops").await;
    let (_, alice) = user_with_token(&app, "alice").await;
    app.add_member("Ops", "alice").await;
    // alice administers through Ops, so the service account may leave.
    let admins = encode(ADMINISTRATORS);
    delete(
        &app,
        &membership_path(PREFIX, &admins, SERVICE_ACCOUNT),
        &alice,
    )
    .await
    .assert_no_content();
    let before = app.log_len();

    for (prefix, path) in [
        (PREFIX, "groups/Ops"),
        (JS_PREFIX, "groups/Ops"),
        (PREFIX, "groups/Ops/users/alice"),
        (JS_PREFIX, "groups/Ops/users/alice"),
        (PREFIX, "users/alice"),
        (JS_PREFIX, "users/alice"),
    ] {
        let answer = delete(&app, &format!("{prefix}/{path}"), &alice).await;
        answer.assert_error(409, "LastAdministrator");
    }
    app.assert_nothing_appended(before);
    let check = membership_path(PREFIX, &admins, "alice");
    app.request(Method::HEAD, &check, Some(&alice))
        .await
        .assert_no_content();
}

// ---- POST .../groups/{g}/users ----------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn users_are_added_to_a_group_in_bulk_by_any_identifier(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let monkeys = group(&app, "Space Monkeys").await;
    let marla = user(&app, "marla").await;
    let bob = user(&app, "bob").await;
    let chloe = user(&app, "chloe").await;
    let angel = user(&app, "angel").await;
    app.add_member("Space%20Monkeys", "angel").await;
    let before = public_events(&app).len();

    // Duplicates, under any identifier, and an existing member add nothing.
    let body = json!([marla, "bob", "Chloe@FightClub.com", marla, "MARLA", angel]);
    app.post_json(
        &members_path(PREFIX, "Space Monkeys"),
        Some(&app.admin_token),
        &body,
    )
    .await
    .assert_no_content();
    let appended = appended_since(&app, before);
    assert_eq!(types(&appended), ["MemberAdded"; 3], "{appended:#?}");
    let added: BTreeSet<String> = appended
        .iter()
        .map(|e| {
            assert_eq!(e.payload["data"]["groupId"], monkeys, "{e:?}");
            e.payload["data"]["userId"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        added,
        BTreeSet::from([marla.clone(), bob.clone(), chloe.clone()])
    );
    assert_valid(&appended);
    let members = app.list_members("Space%20Monkeys").await;
    assert_eq!(
        column(&members, "username"),
        ["angel", "bob", "chloe", "marla"]
    );

    // With a trailing slash, by group id, under the other prefix: members already.
    let before = app.log_len();
    app.post_json(
        &format!("{}/", members_path(JS_PREFIX, &monkeys)),
        Some(&app.admin_token),
        &json!([bob, chloe]),
    )
    .await
    .assert_no_content();
    app.assert_nothing_appended(before);

    let zed = user(&app, "zed").await;
    let before = public_events(&app).len();
    for prefix in PREFIXES {
        app.post_json(
            &format!("{}/", members_path(prefix, "space monkeys")),
            Some(&app.admin_token),
            &json!([zed]),
        )
        .await
        .assert_no_content();
    }
    let appended = appended_since(&app, before);
    assert_eq!(types(&appended), ["MemberAdded"]);
    assert_eq!(appended[0].payload["data"]["userId"], zed);
    assert_eq!(app.head_member(&monkeys, "zed").await, 204);
}

#[apply(backends)]
#[tokio::test]
async fn a_bulk_add_naming_a_missing_user_adds_nobody(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    group(&app, "Space Monkeys").await;
    let marla = user(&app, "marla").await;
    user(&app, "bob").await;
    let ghost = Uuid::new_v4().to_string();
    let before = app.log_len();

    let given = json!([
        marla,
        "Robert.Paulson",
        "bob",
        "Nobody@FightClub.com",
        ghost
    ]);
    for path in [
        members_path(PREFIX, "Space Monkeys"),
        format!("{}/", members_path(JS_PREFIX, "Space Monkeys")),
    ] {
        let answer = app.post_json(&path, Some(&app.admin_token), &given).await;
        let data = answer.assert_error(404, "UserNotFound");
        let missing: BTreeSet<&str> = data["missing"]
            .as_array()
            .unwrap_or_else(|| panic!("no missing array in {data}"))
            .iter()
            .map(|m| m.as_str().expect("a string"))
            .collect();
        assert_eq!(
            missing,
            BTreeSet::from(["Robert.Paulson", "Nobody@FightClub.com", ghost.as_str()]),
            "{data}"
        );
        assert_eq!(data["missing"].as_array().map(Vec::len), Some(3), "{data}");
    }
    app.assert_nothing_appended(before);
    assert_eq!(app.list_members("Space%20Monkeys").await["totalCount"], 0);
}

#[apply(backends)]
#[tokio::test]
async fn a_missing_user_id_is_named_as_it_was_given(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    group(&app, "Space Monkeys").await;
    user(&app, "marla").await;
    let ghost = Uuid::new_v4().to_string().to_uppercase();
    let before = app.log_len();
    let answer = app
        .post_json(
            &members_path(PREFIX, "Space Monkeys"),
            Some(&app.admin_token),
            &json!(["marla", ghost]),
        )
        .await;
    let data = answer.assert_error(404, "UserNotFound");
    assert_eq!(data["missing"], json!([ghost]), "{data}");
    app.assert_nothing_appended(before);
}

#[apply(backends)]
#[tokio::test]
async fn a_bulk_add_to_an_unknown_group_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    user(&app, "marla").await;
    let before = app.log_len();
    for prefix in PREFIXES {
        app.post_json(
            &members_path(prefix, "Project Mayhem"),
            Some(&app.admin_token),
            &json!(["marla"]),
        )
        .await
        .assert_error(404, "GroupNotFound");
    }
    app.assert_nothing_appended(before);
}

#[apply(backends)]
#[tokio::test]
async fn an_empty_bulk_add_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    group(&app, "Space Monkeys").await;
    let before = app.log_len();
    for prefix in PREFIXES {
        app.post_json(
            &members_path(prefix, "Space Monkeys"),
            Some(&app.admin_token),
            &json!([]),
        )
        .await
        .assert_no_content();
    }
    app.assert_nothing_appended(before);
}

#[apply(backends)]
#[tokio::test]
async fn a_bulk_add_takes_at_most_a_thousand_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    group(&app, "Space Monkeys").await;
    user(&app, "marla").await;
    let before = app.log_len();
    for prefix in PREFIXES {
        let answer = app
            .post_json(
                &members_path(prefix, "Space Monkeys"),
                Some(&app.admin_token),
                &json!(vec!["marla"; 1001]),
            )
            .await;
        answer.assert_status(400);
        assert_error_shape(&answer.json());
    }
    app.assert_nothing_appended(before);

    let events_before = public_events(&app).len();
    app.post_json(
        &members_path(PREFIX, "Space Monkeys"),
        Some(&app.admin_token),
        &json!(vec!["marla"; 1000]),
    )
    .await
    .assert_no_content();
    assert_eq!(types(&appended_since(&app, events_before)), ["MemberAdded"]);
}

#[apply(backends)]
#[tokio::test]
async fn a_bulk_add_takes_an_array_of_user_identifiers_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    group(&app, "Space Monkeys").await;
    user(&app, "marla").await;
    let before = app.log_len();
    for (prefix, body) in [
        (PREFIX, json!({ "users": ["marla"] })),
        (JS_PREFIX, json!("marla")),
        (PREFIX, json!(["marla", 7])),
        (JS_PREFIX, json!([null])),
        (PREFIX, json!([["marla"]])),
        (JS_PREFIX, json!([{ "id": "marla" }])),
        (PREFIX, json!([""])),
        (JS_PREFIX, json!(["marla", ""])),
    ] {
        let answer = app
            .post_json(
                &members_path(prefix, "Space Monkeys"),
                Some(&app.admin_token),
                &body,
            )
            .await;
        assert_eq!(answer.status.as_u16(), 400, "{body}: {}", answer.text);
        assert_error_shape(&answer.json());
    }
    let answer = app
        .post_raw(
            &members_path(PREFIX, "Space Monkeys"),
            "application/json",
            b"[\"marla\"".to_vec(),
        )
        .await;
    answer.assert_status(400);
    assert_error_shape(&answer.json());
    app.assert_nothing_appended(before);
    assert_eq!(app.head_member("Space%20Monkeys", "marla").await, 404);
}

#[apply(backends)]
#[tokio::test]
async fn a_bulk_add_needs_an_administrator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    group(&app, "Space Monkeys").await;
    let (_, bob) = user_with_token(&app, "bob").await;
    let before = app.log_len();
    for prefix in PREFIXES {
        for group in ["Space Monkeys", ADMINISTRATORS] {
            app.post_json(&members_path(prefix, group), Some(&bob), &json!(["bob"]))
                .await
                .assert_error(403, "Forbidden");
        }
    }
    app.assert_nothing_appended(before);
    assert_eq!(app.head_member(&encode(ADMINISTRATORS), "bob").await, 404);
}

// ---- listing through the groups below -------------------------------------------------

/// Project Mayhem ⊃ {Space Monkeys, Assault Team}, both ⊃ Committee (reached twice).
/// angel is in Project Mayhem and in Committee, bob in Space Monkeys, zed in Assault Team,
/// marla in Committee, chloe in Committee and Assault Team.
async fn tree(app: &TestApp) {
    for name in [
        "Committee",
        "Space Monkeys",
        "Project Mayhem",
        "Assault Team",
    ] {
        group(app, name).await;
    }
    for username in ["zed", "marla", "chloe", "bob", "angel"] {
        user(app, username).await;
    }
    for (group, username) in [
        ("Project%20Mayhem", "angel"),
        ("Committee", "angel"),
        ("Space%20Monkeys", "bob"),
        ("Assault%20Team", "zed"),
        ("Committee", "marla"),
        ("Committee", "chloe"),
        ("Assault%20Team", "chloe"),
    ] {
        app.add_member(group, username).await;
    }
    nest(app, "Project Mayhem", "Space Monkeys").await;
    nest(app, "Project Mayhem", "Assault Team").await;
    nest(app, "Space Monkeys", "Committee").await;
    nest(app, "Assault Team", "Committee").await;
}

#[apply(backends)]
#[tokio::test]
async fn a_groups_members_are_listed_with_those_of_every_group_below(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    tree(&app).await;
    let before = app.log_len();
    let members = |prefix: &str, group: &str, query: &str| {
        let path = format!("{}{query}", members_path(prefix, group));
        let app = &app;
        async move { app.get_json(&path).await }
    };

    let all = members(PREFIX, "Project Mayhem", "?includeInherited=true").await;
    assert_eq!(
        column(&all, "username"),
        ["angel", "bob", "chloe", "marla", "zed"],
        "{all}"
    );
    assert_eq!(counts(&all), (Some(5), Some(1)));

    let page = members(
        JS_PREFIX,
        "Project Mayhem",
        "?includeInherited=true&pageSize=2&pageIndex=1",
    )
    .await;
    assert_eq!(column(&page, "username"), ["chloe", "marla"], "{page}");
    assert_eq!(counts(&page), (Some(5), Some(3)));
    assert_eq!(
        (&page["pageIndex"], &page["pageSize"]),
        (&json!(1), &json!(2))
    );
    let last = members(
        PREFIX,
        "Project Mayhem",
        "?includeInherited=true&pageSize=2&pageIndex=2",
    )
    .await;
    assert_eq!(column(&last, "username"), ["zed"], "{last}");
    assert_eq!(counts(&last), (Some(5), Some(3)));

    // Without the flag, or with it off: the direct members only.
    for query in ["", "?includeInherited=false"] {
        let direct = members(JS_PREFIX, "Project Mayhem", query).await;
        assert_eq!(column(&direct, "username"), ["angel"], "{direct}");
        assert_eq!(counts(&direct), (Some(1), Some(1)));
    }

    let middle = members(JS_PREFIX, "Space Monkeys", "?includeInherited=true").await;
    assert_eq!(
        column(&middle, "username"),
        ["angel", "bob", "chloe", "marla"],
        "{middle}"
    );
    assert_eq!(counts(&middle), (Some(4), Some(1)));
    let leaf = members(PREFIX, "Committee", "?includeInherited=true").await;
    assert_eq!(
        column(&leaf, "username"),
        ["angel", "chloe", "marla"],
        "{leaf}"
    );
    app.assert_nothing_appended(before);
}

#[apply(backends)]
#[tokio::test]
async fn a_groups_child_groups_are_listed_at_any_depth_and_with_itself(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    tree(&app).await;
    let children = |prefix: &str, group: &str, query: &str| {
        let path = format!("{}/groups{query}", group_path(prefix, group));
        let app = &app;
        async move { app.get_json(&path).await }
    };

    for (prefix, query, expected) in [
        (PREFIX, "", &["Assault Team", "Space Monkeys"][..]),
        (
            JS_PREFIX,
            "?includeInherited=true",
            &["Assault Team", "Committee", "Space Monkeys"][..],
        ),
        (
            PREFIX,
            "?includeSelf=true",
            &["Assault Team", "Project Mayhem", "Space Monkeys"][..],
        ),
        (
            JS_PREFIX,
            "?includeInherited=true&includeSelf=true",
            &[
                "Assault Team",
                "Committee",
                "Project Mayhem",
                "Space Monkeys",
            ][..],
        ),
    ] {
        let listed = children(prefix, "Project Mayhem", query).await;
        assert_eq!(column(&listed, "name"), expected, "{query}: {listed}");
        assert_eq!(
            counts(&listed),
            (Some(expected.len() as u64), Some(1)),
            "{query}"
        );
    }

    let page = children(
        PREFIX,
        "Project Mayhem",
        "?includeInherited=true&includeSelf=true&pageSize=3&pageIndex=1",
    )
    .await;
    assert_eq!(column(&page, "name"), ["Space Monkeys"], "{page}");
    assert_eq!(counts(&page), (Some(4), Some(2)));

    let leaf = children(
        JS_PREFIX,
        "Committee",
        "?includeInherited=true&includeSelf=true",
    )
    .await;
    assert_eq!(column(&leaf, "name"), ["Committee"], "{leaf}");
    assert_eq!(counts(&leaf), (Some(1), Some(1)));
    let empty = children(PREFIX, "Committee", "?includeInherited=true").await;
    assert_eq!(counts(&empty), (Some(0), Some(0)), "{empty}");
}

#[apply(backends)]
#[tokio::test]
async fn membership_is_inherited_down_a_chain_and_the_chain_cannot_be_closed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for name in ["A", "B", "C"] {
        group(&app, name).await;
    }
    user(&app, "u").await;
    app.add_member("C", "u").await;
    nest(&app, "A", "B").await;
    nest(&app, "B", "C").await;
    let before = app.log_len();

    for prefix in PREFIXES {
        app.request(
            Method::HEAD,
            &membership_path(prefix, "A", "u"),
            Some(&app.admin_token),
        )
        .await
        .assert_no_content();
        let groups = app
            .get_json(&format!(
                "{}/groups?includeInherited=true",
                user_path(prefix, "u")
            ))
            .await;
        assert_eq!(column(&groups, "name"), ["A", "B", "C"], "{groups}");
        assert_eq!(counts(&groups), (Some(3), Some(1)));

        for (group, child) in [("C", "A"), ("A", "A")] {
            let path = format!("{prefix}/groups/{group}/groups/{child}");
            app.request(Method::PUT, &path, Some(&app.admin_token))
                .await
                .assert_error(409, "GroupCycle");
        }
    }
    app.assert_nothing_appended(before);
}

// ---- replay ---------------------------------------------------------------------------

/// Every user and group, each group's members and groups below, as one JSON value.
async fn everything(app: &TestApp) -> Value {
    let users = app.get_json(&format!("{PREFIX}/users?pageSize=100")).await;
    let groups = app.get_json(&format!("{PREFIX}/groups?pageSize=100")).await;
    let mut trees = Vec::new();
    for name in column(&groups, "name") {
        let group = group_path(PREFIX, &name);
        let query = "?includeInherited=true&pageSize=100";
        trees.push(json!({
            "group": name,
            "direct": app.get_json(&format!("{group}/users?pageSize=100")).await,
            "members": app.get_json(&format!("{group}/users{query}")).await,
            "below": app.get_json(&format!("{group}/groups{query}&includeSelf=true")).await,
        }));
    }
    json!({ "users": users, "groups": groups, "trees": trees })
}

#[apply(backends)]
#[tokio::test]
async fn what_the_new_calls_did_is_rebuilt_from_the_log(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let (_, marla) = user_with_token(&app, "marla").await;
    user_with_token(&app, "bob").await;
    user(&app, "chloe").await;
    for name in ["Space Monkeys", "Committee", "Project Mayhem"] {
        group(&app, name).await;
    }
    app.post_json(
        &members_path(PREFIX, "Space Monkeys"),
        Some(&app.admin_token),
        &json!(["marla", "bob"]),
    )
    .await
    .assert_no_content();
    app.add_member("Committee", "chloe").await;
    nest(&app, "Project Mayhem", "Space Monkeys").await;
    nest(&app, "Space Monkeys", "Committee").await;
    let renamed = json!({ "username": "marla.singer", "email": "marla@fightclub.com" });
    put(&app, &user_path(PREFIX, "marla"), &marla, &renamed)
        .await
        .assert_status(200);
    let body = json!({ "existing": PASSWORD, "new": NEW_PASSWORD });
    app.post_json(&password_path(PREFIX, "marla.singer"), Some(&marla), &body)
        .await
        .assert_status(200);
    let described = json!({ "name": "Inner Circle", "type": "external" });
    put(
        &app,
        &group_path(PREFIX, "Committee"),
        &app.admin_token,
        &described,
    )
    .await
    .assert_status(200);
    delete(&app, &user_path(PREFIX, "bob"), &app.admin_token)
        .await
        .assert_no_content();
    delete(&app, &group_path(PREFIX, "Space Monkeys"), &app.admin_token)
        .await
        .assert_no_content();
    let before = everything(&app).await;
    let log_before = app.log_len();

    app.stop();
    app.delete_read_model();
    app.start().await;

    assert_eq!(everything(&app).await, before);
    assert_eq!(app.log_len(), log_before, "starting again appended events");
    app.token_for("marla.singer", NEW_PASSWORD).await;
    assert_eq!(
        refused_grant(&app, "bob@fightclub.com", PASSWORD).await,
        "invalid_grant"
    );
}

#[apply(backends)]
#[tokio::test]
async fn a_deletion_racing_a_removal_answers_by_what_became_of_the_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    group(&app, "Space Monkeys").await;
    for round in 0..12 {
        let username = format!("monkey{round}");
        user(&app, &username).await;
        app.add_member("Space%20Monkeys", &username).await;
        let path = user_path(PREFIX, &username);
        let removal = app.remove_member("Space%20Monkeys", &username);
        let deletion = delete(&app, &path, &app.admin_token);
        let (removed, deleted) = tokio::join!(removal, deletion);
        // Whichever removed the membership, the deletion took the user: 204, not a
        // 409 claiming it had no effect. The removal may come after the user is gone.
        assert!(
            [204, 404, 409].contains(&removed.status.as_u16()),
            "the removal: {removed:?}"
        );
        deleted.assert_no_content();
        get(&app, &user_path(PREFIX, &username))
            .await
            .assert_error(404, "UserNotFound");
    }
}

#[apply(backends)]
#[tokio::test]
async fn a_bulk_add_racing_a_single_add_of_one_of_its_users_answers_204(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    group(&app, "Space Monkeys").await;
    for round in 0..8 {
        let (first, second) = (format!("first{round}"), format!("second{round}"));
        user(&app, &first).await;
        user(&app, &second).await;
        let (path, body) = (
            members_path(PREFIX, "Space Monkeys"),
            json!([first, second]),
        );
        let single = app.put_member("Space%20Monkeys", &first);
        let bulk = app.post_json(&path, Some(&app.admin_token), &body);
        let (single, bulk) = tokio::join!(single, bulk);
        assert!([204, 409].contains(&single.status.as_u16()), "{single:?}");
        bulk.assert_no_content();
        for username in [&first, &second] {
            assert_eq!(app.head_member("Space%20Monkeys", username).await, 204);
        }
    }
}

#[apply(backends)]
#[tokio::test]
async fn a_patch_clears_a_name_in_either_spelling(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({
        "username": "marla",
        "email": "marla@fightclub.com",
        "firstname": "Marla",
        "lastname": "Singer",
        "timezone": "America/Los_Angeles",
    });
    app.try_create_user(&body).await.assert_status(201);
    let path = user_path(JS_PREFIX, "marla");
    for patch in [
        json!({ "firstName": null }),
        json!({ "lastname": null, "lastName": null }),
    ] {
        app.request_json(Method::PATCH, &path, Some(&app.admin_token), &patch)
            .await
            .assert_status(200);
    }
    let shown = app.get_json(&path).await;
    assert!(shown.get("firstname").is_none(), "{shown}");
    assert!(shown.get("lastname").is_none(), "{shown}");
    assert_eq!(shown["timezone"], "America/Los_Angeles");
}

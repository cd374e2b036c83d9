//! Users beyond membership: updating one by PUT or PATCH, and deleting one, which takes it
//! out of each of its groups first. Every new event is checked against its JSON Schema.

use std::collections::BTreeSet;

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    ADMINISTRATORS, Backend, JS_PREFIX, PASSWORD, PREFIX, PREFIXES, SERVICE_ACCOUNT,
    SERVICE_ACCOUNT_EMAIL, TestApp, assert_valid, backends, encode, types, user_path,
};

// ---- PUT .../users/{u} ------------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn an_administrator_updates_a_user_by_id_username_or_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.new_user("marla").await;
    let before = app.public_events().len();

    let body = json!({
        "username": "marla.singer",
        "email": "Marla.Singer@FightClub.com",
        "firstName": "Marla",
        "lastName": "Singer",
        "timezone": "America/Los_Angeles",
        "language": "en-US",
        "custom": { "meetings": "all of them" },
    });
    let answer = app
        .put(&user_path(PREFIX, "marla"), &app.admin_token, &body)
        .await;
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

    let appended = app.appended_since(before);
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
        let answer = app
            .put(&user_path(prefix, identifier), &app.admin_token, &body)
            .await;
        answer.assert_status(200);
        assert_eq!(answer.json()["firstname"], firstname);
        assert_eq!(
            app.get_json(&user_path(PREFIX, &id)).await["firstname"],
            firstname
        );
    }
    let appended = app.appended_since(before);
    assert_eq!(types(&appended), ["UserUpdated"; 3]);
    assert_valid(&appended);
}

#[apply(backends)]
#[tokio::test]
async fn a_user_may_update_itself_but_no_other_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let marla = app.user_with_token("marla").await;
    let bob = app.user_with_token("bob").await;
    app.appends_nothing(async {
        // Another user, known or not: 403 either way, so that nothing is learnt.
        for target in ["marla", "robert.paulson", "nobody@fightclub.com"] {
            let body = json!({ "username": "bob.paulson", "email": "bob@fightclub.com" });
            app.put(&user_path(PREFIX, target), &bob, &body)
                .await
                .assert_error(403, "Forbidden");
        }
    })
    .await;
    assert_eq!(
        app.get_json(&user_path(PREFIX, "marla")).await["id"],
        marla.id.to_string()
    );

    let events_before = app.public_events().len();
    let body = json!({
        "username": marla.username,
        "email": marla.email,
        "firstname": "Marla",
        "lastname": "Singer",
    });
    let path = user_path(JS_PREFIX, &marla.username);
    let answer = app.put(&path, &marla, &body).await;
    answer.assert_status(200);
    let stored = answer.json();
    assert_eq!(stored["id"], marla.id.to_string(), "{stored}");
    assert_eq!(
        (&stored["firstname"], &stored["lastname"]),
        (&json!("Marla"), &json!("Singer"))
    );
    let appended = app.appended_since(events_before);
    assert_eq!(types(&appended), ["UserUpdated"]);
    assert_eq!(appended[0].payload["data"]["userId"], marla.id.to_string());
    assert_valid(&appended);
}

#[apply(backends)]
#[tokio::test]
async fn updating_an_unknown_user_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_user("marla").await;
    let body = json!({ "username": "robert.paulson", "email": "bob@fightclub.com" });
    let unknown_id = Uuid::new_v4().to_string();
    app.appends_nothing(async {
        for prefix in PREFIXES {
            for target in ["robert.paulson", "bob@fightclub.com", unknown_id.as_str()] {
                app.put(&user_path(prefix, target), &app.admin_token, &body)
                    .await
                    .assert_error(404, "UserNotFound");
            }
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_user_cannot_take_another_users_username_or_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_user("marla").await;
    app.new_user("bob").await;
    let path = user_path(PREFIX, "marla");
    let body = json!({ "username": "BOB", "email": "marla@fightclub.com" });
    app.appends_nothing(async {
        app.put(&path, &app.admin_token, &body)
            .await
            .assert_error(409, "UsernameTaken");
        let body = json!({ "username": "marla", "email": "Bob@FightClub.COM" });
        app.put(&user_path(JS_PREFIX, "marla"), &app.admin_token, &body)
            .await
            .assert_error(409, "EmailTaken");
    })
    .await;
    let stored = app.get_json(&path).await;
    assert_eq!(
        (&stored["username"], &stored["email"]),
        (&json!("marla"), &json!("marla@fightclub.com"))
    );

    // Keeping its own username and email is no conflict.
    let events_before = app.public_events().len();
    let body = json!({
        "username": "marla",
        "email": "marla@fightclub.com",
        "firstname": "Marla",
    });
    let answer = app.put(&path, &app.admin_token, &body).await;
    answer.assert_status(200);
    assert_eq!(answer.json()["firstname"], "Marla");
    let appended = app.appended_since(events_before);
    assert_eq!(types(&appended), ["UserUpdated"]);
    assert_valid(&appended);
}

#[apply(backends)]
#[tokio::test]
async fn an_update_with_an_invalid_username_or_email_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_user("marla").await;
    app.appends_nothing(async {
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
            let answer = app
                .put(&user_path(prefix, "marla"), &app.admin_token, &body)
                .await;
            let data = answer.assert_error(422, "ValidationFailed");
            assert_eq!(data["field"], field, "{body}: {data}");
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_renamed_user_is_found_by_its_new_username_and_email_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.new_user("marla").await;
    let body = json!({ "username": "marla.singer", "email": "singer@fightclub.com" });
    app.put(&user_path(PREFIX, "marla"), &app.admin_token, &body)
        .await
        .assert_status(200);
    for prefix in PREFIXES {
        for old in ["marla", "marla@fightclub.com"] {
            app.get(&user_path(prefix, old))
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
        app.request_json(Method::PATCH, &path, &app.admin_token, &patch)
            .await
            .assert_status(200);
    }
    let shown = app.get_json(&path).await;
    assert!(shown.get("firstname").is_none(), "{shown}");
    assert!(shown.get("lastname").is_none(), "{shown}");
    assert_eq!(shown["timezone"], "America/Los_Angeles");
}

// ---- DELETE .../users/{u} ---------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn deleting_a_user_removes_it_from_each_of_its_groups_then_deletes_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let marla = app.user_with_token("marla").await.id.to_string();
    let monkeys = app.new_group("Space Monkeys").await;
    let committee = app.new_group("Committee").await;
    app.new_group("Project Mayhem").await;
    app.add_member("Space%20Monkeys", "marla").await;
    app.add_member("Committee", "marla").await;
    // A member of Project Mayhem only through Committee: no event of its own.
    app.nest("Project Mayhem", "Committee").await;
    let before = app.public_events().len();

    app.delete(&user_path(JS_PREFIX, "marla"), &app.admin_token)
        .await
        .assert_no_content();

    let appended = app.appended_since(before);
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
            app.get(&user_path(prefix, identifier))
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
        app.password_grant("marla", PASSWORD).await.oauth_error(),
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
    app.new_user("marla").await;
    let bob = app.user_with_token("bob").await;
    app.appends_nothing(async {
        for prefix in PREFIXES {
            app.delete(&user_path(prefix, "marla"), &bob)
                .await
                .assert_error(403, "Forbidden");
            app.delete(&user_path(prefix, "robert.paulson"), &app.admin_token)
                .await
                .assert_error(404, "UserNotFound");
        }
    })
    .await;
    app.get_json(&user_path(PREFIX, "marla")).await;
}

#[apply(backends)]
#[tokio::test]
async fn the_service_account_is_not_deleted_while_it_is_the_last_administrator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.appends_nothing(async {
        for prefix in PREFIXES {
            for identifier in [SERVICE_ACCOUNT, SERVICE_ACCOUNT_EMAIL] {
                app.delete(&user_path(prefix, identifier), &app.admin_token)
                    .await
                    .assert_error(409, "LastAdministrator");
            }
        }
    })
    .await;
    assert_eq!(
        app.head_member(&encode(ADMINISTRATORS), SERVICE_ACCOUNT)
            .await,
        204
    );
}

#[apply(backends)]
#[tokio::test]
async fn a_deletion_racing_a_removal_answers_by_what_became_of_the_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.new_group("Space Monkeys").await;
    for round in 0..12 {
        let username = format!("monkey{round}");
        app.new_user(&username).await;
        app.add_member("Space%20Monkeys", &username).await;
        let path = user_path(PREFIX, &username);
        let removal = app.remove_member("Space%20Monkeys", &username);
        let deletion = app.delete(&path, &app.admin_token);
        let (removed, deleted) = tokio::join!(removal, deletion);
        // Whichever removed the membership, the deletion took the user: 204, not a
        // 409 claiming it had no effect. The removal may come after the user is gone.
        assert!(
            [204, 404, 409].contains(&removed.status.as_u16()),
            "the removal: {removed:?}"
        );
        deleted.assert_no_content();
        app.get(&user_path(PREFIX, &username))
            .await
            .assert_error(404, "UserNotFound");
    }
}

//! Setting a password: a user changes its own with the existing one, an administrator sets
//! anyone's; the hash goes to the credentials stream only, and the password nowhere.

use rstest_reuse::apply;
use serde_json::json;

use crate::helpers::{
    Backend, JS_PREFIX, NEW_PASSWORD, PASSWORD, PREFIX, PREFIXES, TestApp, assert_valid, backends,
    password_path, types, user_path,
};

#[apply(backends)]
#[tokio::test]
async fn a_password_is_not_changed_by_updating_the_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let marla = app.user_with_token("marla").await;
    let body = json!({
        "username": "marla",
        "email": "marla@fightclub.com",
        "credentials": { "password": NEW_PASSWORD },
    });
    app.appends_nothing(async {
        for (prefix, token) in [(PREFIX, &app.admin_token), (JS_PREFIX, &marla.token)] {
            let answer = app.put(&user_path(prefix, "marla"), token, &body).await;
            let data = answer.assert_error(422, "ValidationFailed");
            assert_eq!(data["field"], "credentials.password", "{data}");
        }
    })
    .await;
    app.token_for("marla", PASSWORD).await;
    assert_eq!(
        app.password_grant("marla", NEW_PASSWORD)
            .await
            .oauth_error(),
        "invalid_grant"
    );
}

// ---- POST .../users/{u}/credentials/password --------------------------------------

/// Asserts that the credentials stream gained exactly one `PasswordSet` for `user_id`
/// since it held `before` events, that the events stream did not change from
/// `events_before`, and that the new hash is nowhere among the events; returns the hash.
#[track_caller]
fn assert_password_set(
    app: &TestApp,
    user_id: &str,
    before: usize,
    events_before: usize,
) -> String {
    let events = app.public_events();
    assert_eq!(
        events.len(),
        events_before,
        "the events stream changed: {:#?}",
        &events[events_before.min(events.len())..]
    );
    assert!(events.iter().all(|e| e.event_type != "PasswordSet"));
    let secrets = app.credential_events();
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
    let marla = app.user_with_token("marla").await;
    let (before, events_before) = (app.credential_events().len(), app.public_events().len());

    let body = json!({ "existing": PASSWORD, "new": NEW_PASSWORD });
    let answer = app
        .post_json(&password_path(JS_PREFIX, "marla"), &marla, &body)
        .await;
    answer.assert_status(200);
    assert!(answer.text.is_empty(), "a body: {:?}", answer.text);

    app.token_for("marla", NEW_PASSWORD).await;
    assert_eq!(
        app.password_grant("marla", PASSWORD).await.oauth_error(),
        "invalid_grant"
    );
    assert_password_set(&app, &marla.id.to_string(), before, events_before);
}

#[apply(backends)]
#[tokio::test]
async fn a_wrong_or_missing_existing_password_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let marla = app.user_with_token("marla").await;
    app.appends_nothing(async {
        for (prefix, body) in [
            (
                PREFIX,
                json!({ "existing": "not-her-password", "new": NEW_PASSWORD }),
            ),
            (JS_PREFIX, json!({ "new": NEW_PASSWORD })),
        ] {
            let answer = app
                .post_json(&password_path(prefix, "marla"), &marla, &body)
                .await;
            answer.assert_error(409, "ExistingPasswordInvalid");
        }
    })
    .await;
    app.token_for("marla", PASSWORD).await;
    assert_eq!(
        app.password_grant("marla", NEW_PASSWORD)
            .await
            .oauth_error(),
        "invalid_grant"
    );
}

#[apply(backends)]
#[tokio::test]
async fn an_administrator_sets_a_password_without_the_existing_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let marla_id = app.user_with_token("marla").await.id.to_string();
    let (before, events_before) = (app.credential_events().len(), app.public_events().len());

    let body = json!({ "new": NEW_PASSWORD });
    let answer = app
        .post_json(
            &password_path(PREFIX, "marla@fightclub.com"),
            &app.admin_token,
            &body,
        )
        .await;
    answer.assert_status(200);
    assert!(answer.text.is_empty(), "a body: {:?}", answer.text);
    app.token_for("marla", NEW_PASSWORD).await;
    assert_eq!(
        app.password_grant("marla", PASSWORD).await.oauth_error(),
        "invalid_grant"
    );
    assert_password_set(&app, &marla_id, before, events_before);

    // A user made without a password gets its first one the same way.
    let bob_id = app.new_user("bob").await;
    let (before, events_before) = (app.credential_events().len(), app.public_events().len());
    app.post_json(&password_path(JS_PREFIX, &bob_id), &app.admin_token, &body)
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
    app.user_with_token("marla").await;
    let bob = app.user_with_token("bob").await;
    app.appends_nothing(async {
        for prefix in PREFIXES {
            // Even knowing her password, bob is not marla.
            let body = json!({ "existing": PASSWORD, "new": NEW_PASSWORD });
            app.post_json(&password_path(prefix, "marla"), &bob, &body)
                .await
                .assert_error(403, "Forbidden");
            let body = json!({ "new": NEW_PASSWORD });
            app.post_json(
                &password_path(prefix, "robert.paulson"),
                &app.admin_token,
                &body,
            )
            .await
            .assert_error(404, "UserNotFound");
        }
    })
    .await;
    app.token_for("marla", PASSWORD).await;
}

#[apply(backends)]
#[tokio::test]
async fn a_new_password_shorter_than_eight_characters_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let marla = app.user_with_token("marla").await;
    app.appends_nothing(async {
        for (prefix, token, body) in [
            (
                PREFIX,
                &marla.token,
                json!({ "existing": PASSWORD, "new": "1234567" }),
            ),
            (JS_PREFIX, &marla.token, json!({ "existing": PASSWORD })),
            (PREFIX, &app.admin_token, json!({ "new": "seven.." })),
            (JS_PREFIX, &app.admin_token, json!({})),
        ] {
            let answer = app
                .post_json(&password_path(prefix, "marla"), token, &body)
                .await;
            let data = answer.assert_error(422, "ValidationFailed");
            assert_eq!(data["field"], "new", "{body}: {data}");
        }
    })
    .await;
    app.token_for("marla", PASSWORD).await;

    // Eight characters are enough.
    let (before, events_before) = (app.credential_events().len(), app.public_events().len());
    let body = json!({ "existing": PASSWORD, "new": "eight..." });
    app.post_json(&password_path(PREFIX, "marla"), &marla, &body)
        .await
        .assert_status(200);
    app.token_for("marla", "eight...").await;
    assert_password_set(&app, &marla.id.to_string(), before, events_before);
}

//! Reading one user or one group back, by any of its identifiers.

use reqwest::Method;
use rstest_reuse::apply;

use crate::helpers::{
    Backend, JS_PREFIX, PREFIX, SEED_EMAIL, SEED_GROUP, SEED_USERNAME, TestApp, backends, encode,
};

#[apply(backends)]
#[tokio::test]
async fn a_user_is_read_back_by_id_username_or_email_in_any_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let before = app.log_len();
    for prefix in [PREFIX, JS_PREFIX] {
        for user in [
            seed.user_id.to_string(),
            SEED_USERNAME.to_uppercase(),
            SEED_EMAIL.to_uppercase(),
        ] {
            let path = format!("{prefix}/users/{user}");
            let answer = app
                .request(Method::GET, &path, Some(&app.admin_token))
                .await;
            answer.assert_status(200);
            let body = answer.json();
            assert_eq!(body["id"], seed.user_id.to_string(), "{body}");
            assert_eq!(body["username"], SEED_USERNAME);
            assert_eq!(body["email"], SEED_EMAIL);
            assert!(
                body.get("password").is_none() && body["credentials"].get("password").is_none()
            );
        }
    }
    app.assert_nothing_appended(before);
}

#[apply(backends)]
#[tokio::test]
async fn a_group_is_read_back_by_id_or_name_in_any_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    for group in [
        seed.group_id.to_string(),
        encode(&SEED_GROUP.to_lowercase()),
    ] {
        let path = format!("{PREFIX}/groups/{group}");
        let answer = app
            .request(Method::GET, &path, Some(&app.admin_token))
            .await;
        answer.assert_status(200);
        let body = answer.json();
        assert_eq!(body["id"], seed.group_id.to_string(), "{body}");
        assert_eq!(body["name"], SEED_GROUP);
        assert_eq!(body["type"], "contensis");
    }
}

#[apply(backends)]
#[tokio::test]
async fn reading_what_does_not_exist_is_not_found_and_reading_needs_an_administrator(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let get = |path: String, token: Option<String>| {
        let app = &app;
        async move { app.request(Method::GET, &path, token.as_deref()).await }
    };
    let admin = Some(app.admin_token.clone());
    get(format!("{PREFIX}/users/robert.paulson"), admin.clone())
        .await
        .assert_error(404, "UserNotFound");
    get(format!("{PREFIX}/groups/Project%20Mayhem"), admin.clone())
        .await
        .assert_error(404, "GroupNotFound");
    get(format!("{PREFIX}/users/{SEED_USERNAME}"), None)
        .await
        .assert_error(401, "Unauthorized");
    get(format!("{PREFIX}/groups/%zz"), admin)
        .await
        .assert_error(400, "InvalidIdentifier");

    app.create_user("marla", "marla@fightclub.com", Some("tourist-of-groups"))
        .await;
    let outsider = app.token_for("marla", "tourist-of-groups").await;
    get(format!("{PREFIX}/users/marla"), Some(outsider))
        .await
        .assert_error(403, "Forbidden");
}

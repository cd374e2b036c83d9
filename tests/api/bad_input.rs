//! Input the service must refuse, and input in odd forms that it must still understand.
//! Every refusal appends nothing to the log.

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::{Value, json};

use crate::helpers::{
    ADMINISTRATORS, ANONYMOUS, Answer, Backend, CLIENT_ID, CLIENT_SECRET, PREFIX, SEED_EMAIL,
    SEED_GROUP, SEED_PASSWORD, SEED_USERNAME, SERVICE_ACCOUNT, TestApp, backends, encode,
    membership_path,
};

// ---- routing ----------------------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn an_unknown_route_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.appends_nothing(async {
        for path in [
            "/nothing/here",
            "/api/management/security/roles",
            "/api/management/security/groups/x/users/y/z",
            "/api/other/groups/x/users/y",
        ] {
            let with_token = app.get(path).await;
            with_token.assert_error(404, "NotFound");
            let without = app.delete(path, ANONYMOUS).await;
            without.assert_error(404, "NotFound");
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_method_the_membership_resource_does_not_have_is_not_allowed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let member = membership_path(PREFIX, &encode(SEED_GROUP), SEED_USERNAME);
    app.appends_nothing(async {
        for method in [Method::PATCH, Method::GET, Method::POST, Method::OPTIONS] {
            let answer = app.request(method.clone(), &member, &app.admin_token).await;
            answer.assert_error(405, "MethodNotAllowed");
        }
    })
    .await;
    assert_eq!(
        app.head_member(&encode(SEED_GROUP), SEED_USERNAME).await,
        204
    );
}

/// The contract: a wrong method is a 405 on every resource, not only on memberships, and
/// says which methods the resource has.
#[apply(backends)]
#[tokio::test]
async fn a_method_the_other_resources_do_not_have_is_not_allowed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let groups = format!("{PREFIX}/groups");
    let users = format!("{PREFIX}/users");
    let members = format!("{PREFIX}/groups/{}/users", encode(SEED_GROUP));
    let wrong = app
        .appends_nothing(async {
            let mut wrong = Vec::new();
            for (method, path, allowed) in [
                (Method::DELETE, groups.as_str(), "GET, POST"),
                (Method::PATCH, users.as_str(), "GET, POST"),
                (Method::DELETE, members.as_str(), "GET, POST"),
                (Method::GET, "/authenticate/connect/token", "POST"),
                (Method::POST, "/health", "GET"),
            ] {
                let answer = app.request(method.clone(), path, &app.admin_token).await;
                let code = answer.json()["data"]["code"].clone();
                // RFC 9110, 15.5.6: a 405 names the methods the path has.
                let allow = answer.header("allow").map(|allow| {
                    let mut methods: Vec<&str> = allow.split(',').map(str::trim).collect();
                    methods.sort_unstable();
                    methods.join(", ")
                });
                if answer.status != 405
                    || code != "MethodNotAllowed"
                    || allow.as_deref() != Some(allowed)
                {
                    wrong.push(format!(
                        "{method} {path} -> {} {code}, Allow {allow:?}",
                        answer.status
                    ));
                }
            }
            wrong
        })
        .await;
    assert!(
        wrong.is_empty(),
        "not 405 MethodNotAllowed:\n{}",
        wrong.join("\n")
    );
}

// ---- bodies -----------------------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn a_body_that_is_not_json_is_a_bad_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.appends_nothing(async {
        for path in ["groups", "users"] {
            let path = format!("{PREFIX}/{path}");
            for body in [r#"{"name": "#, "not json", r#"{"name": "a",}"#, ""] {
                let answer = app
                    .post_raw(&path, "application/json", body.as_bytes().to_vec())
                    .await;
                answer.assert_error(400, "BadRequest");
            }
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn json_of_the_wrong_shape_is_a_bad_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let bodies: [(&str, Value); 6] = [
        ("groups", json!({ "name": 42 })),
        ("groups", json!([SEED_GROUP])),
        ("groups", json!("Paper Street Soap Company")),
        (
            "users",
            json!({ "username": ["tdurden"], "email": SEED_EMAIL }),
        ),
        (
            "users",
            json!({ "username": SEED_USERNAME, "email": SEED_EMAIL, "credentials": "x" }),
        ),
        ("users", json!(null)),
    ];
    app.appends_nothing(async {
        for (path, body) in bodies {
            let answer = app
                .post_json(&format!("{PREFIX}/{path}"), &app.admin_token, &body)
                .await;
            answer.assert_error(400, "BadRequest");
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_body_over_the_size_limit_is_too_large(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({ "name": "Big", "description": "x".repeat(70_000) });
    let answer = app
        .appends_nothing(app.post_raw(
            &format!("{PREFIX}/groups"),
            "application/json",
            serde_json::to_vec(&body).expect("serialising"),
        ))
        .await;
    answer.assert_error(413, "PayloadTooLarge");
}

#[apply(backends)]
#[tokio::test]
async fn a_body_that_is_not_declared_as_json_is_an_unsupported_media_type(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = br#"{"name": "Project Mayhem"}"#.to_vec();
    app.appends_nothing(async {
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/xml",
        ] {
            let answer = app
                .post_raw(&format!("{PREFIX}/groups"), content_type, body.clone())
                .await;
            answer.assert_error(415, "UnsupportedMediaType");
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_page_size_over_the_limit_is_a_bad_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let group = encode(SEED_GROUP);
    for query in [
        "?pageSize=101",
        "?pageSize=0",
        "?pageIndex=-1",
        "?pageSize=ten",
        // An offset past what the store can count is refused, not a 500.
        "?pageIndex=100000000000000000&pageSize=100",
    ] {
        let answer = app.list_members_page(&group, query).await;
        answer.assert_error(400, "BadRequest");
    }
    let answer = app.list_members_page(&group, "?pageSize=100").await;
    answer.assert_status(200);
}

// ---- creation: validation ---------------------------------------------------------

#[track_caller]
fn assert_unprocessable(answer: Answer, field: &str) {
    let data = answer.assert_error(422, "ValidationFailed");
    assert_eq!(data["field"], field, "{data}");
}

#[apply(backends)]
#[tokio::test]
async fn a_group_name_that_looks_like_a_guid_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.appends_nothing(async {
        for name in [
            "6254736c-70e1-43b0-b769-f8e0f6359862",
            "6254736C70E143B0B769F8E0F6359862",
            "{6254736c-70e1-43b0-b769-f8e0f6359862}",
        ] {
            let answer = app.try_create_group(&json!({ "name": name })).await;
            assert_unprocessable(answer, "name");
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_group_of_type_sys_or_an_unknown_type_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.appends_nothing(async {
        for group_type in ["sys", "admin", ""] {
            let body = json!({ "name": "Project Mayhem", "type": group_type });
            let answer = app.try_create_group(&body).await;
            assert_unprocessable(answer, "type");
        }
        for name in ["", " Project Mayhem", "Mayhem\n"] {
            let answer = app.try_create_group(&json!({ "name": name })).await;
            assert_unprocessable(answer, "name");
        }
        let answer = app.try_create_group(&json!({})).await;
        assert_unprocessable(answer, "name");
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_username_that_looks_like_a_guid_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({
        "username": "3d063773-2ca9-4baf-90e1-ed674fa68640",
        "email": SEED_EMAIL,
    });
    app.appends_nothing(async {
        assert_unprocessable(app.try_create_user(&body).await, "username");
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_username_with_an_at_sign_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({ "username": "tyler@durden", "email": SEED_EMAIL });
    app.appends_nothing(async {
        assert_unprocessable(app.try_create_user(&body).await, "username");
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn an_empty_or_missing_username_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.appends_nothing(async {
        for body in [
            json!({ "username": "", "email": SEED_EMAIL }),
            json!({ "email": SEED_EMAIL }),
        ] {
            assert_unprocessable(app.try_create_user(&body).await, "username");
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn an_email_without_an_at_sign_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.appends_nothing(async {
        for email in [
            "tdurden",
            "tdurden@",
            "@fightclub.com",
            "t durden@fightclub.com",
            "",
        ] {
            let body = json!({ "username": SEED_USERNAME, "email": email });
            assert_unprocessable(app.try_create_user(&body).await, "email");
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_password_shorter_than_eight_characters_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({
        "username": SEED_USERNAME,
        "email": SEED_EMAIL,
        "credentials": { "password": "1234567" },
    });
    app.appends_nothing(async {
        assert_unprocessable(app.try_create_user(&body).await, "credentials.password");
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn creating_without_a_token_or_as_a_non_administrator_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let marla = app.user_with_token("marla").await;
    let group = json!({ "name": "Project Mayhem" });
    let user = json!({
        "username": SEED_USERNAME,
        "email": SEED_EMAIL,
        "credentials": { "password": SEED_PASSWORD },
    });
    app.appends_nothing(async {
        for (path, body) in [("groups", &group), ("users", &user)] {
            let path = format!("{PREFIX}/{path}");
            app.post_json(&path, ANONYMOUS, body)
                .await
                .assert_error(401, "Unauthorized");
            app.post_json(&path, &marla, body)
                .await
                .assert_error(403, "Forbidden");
        }
    })
    .await;
}

// ---- case-insensitive names -------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn emails_usernames_and_group_names_in_odd_case_still_match(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let group = seed.group_id.to_string();

    app.remove_member(&group, "T.Durden@FightClub.COM")
        .await
        .assert_no_content();
    app.put_member("PAPER%20STREET%20soap%20company", "TDURDEN")
        .await
        .assert_no_content();
    assert_eq!(
        app.head_member("paper%20street%20soap%20company", "tDurden")
            .await,
        204
    );
    app.remove_member("pAPER%20sTREET%20sOAP%20cOMPANY", "tDuRdEn")
        .await
        .assert_no_content();

    let removed = app.events_of("MemberRemoved");
    assert_eq!(removed.len(), 2);
    for event in removed {
        // The event carries the names as stored, not as the request spelled them.
        assert_eq!(event.payload["data"]["email"], SEED_EMAIL);
        assert_eq!(event.payload["data"]["username"], SEED_USERNAME);
        assert_eq!(event.payload["data"]["groupName"], SEED_GROUP);
    }
}

#[apply(backends)]
#[tokio::test]
async fn a_guid_identifier_in_upper_case_still_matches(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let group = seed.group_id.to_string().to_uppercase();
    let user = seed.user_id.to_string().to_uppercase();
    assert_eq!(app.head_member(&group, &user).await, 204);
    app.remove_member(&group, &user).await.assert_no_content();
}

#[apply(backends)]
#[tokio::test]
async fn a_duplicate_username_in_other_case_is_a_conflict(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let body = json!({ "username": "TDurden", "email": "other@fightclub.com" });
    app.appends_nothing(app.try_create_user(&body))
        .await
        .assert_error(409, "UsernameTaken");
}

#[apply(backends)]
#[tokio::test]
async fn a_duplicate_email_in_other_case_is_a_conflict(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let body = json!({ "username": "tyler", "email": "T.DURDEN@FIGHTCLUB.COM" });
    app.appends_nothing(app.try_create_user(&body))
        .await
        .assert_error(409, "EmailTaken");
}

#[apply(backends)]
#[tokio::test]
async fn a_duplicate_group_name_in_other_case_is_a_conflict(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    app.appends_nothing(async {
        for name in ["PAPER STREET SOAP COMPANY", "system administrators"] {
            app.try_create_group(&json!({ "name": name }))
                .await
                .assert_error(409, "GroupNameTaken");
        }
    })
    .await;
}

// ---- the token endpoint -----------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn a_wrong_client_secret_or_an_unknown_client_is_an_invalid_client(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.appends_nothing(async {
        for (client_id, secret) in [
            (CLIENT_ID, "not-the-secret"),
            (CLIENT_ID, ""),
            ("someone-else", CLIENT_SECRET),
        ] {
            let answer = app
                .token_request(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", secret),
                ])
                .await;
            assert_eq!(answer.oauth_error(), "invalid_client");
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn an_unknown_grant_type_is_unsupported(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let answer = app
        .appends_nothing(app.token_request(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ]))
        .await;
    assert_eq!(answer.oauth_error(), "unsupported_grant_type");
}

#[apply(backends)]
#[tokio::test]
async fn a_token_request_without_its_fields_is_an_invalid_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let forms: [&[(&str, &str)]; 3] = [
        &[("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
        ],
        &[("grant_type", "password"), ("username", SEED_USERNAME)],
    ];
    app.appends_nothing(async {
        for form in forms {
            assert_eq!(
                app.token_request(form).await.oauth_error(),
                "invalid_request"
            );
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_wrong_password_or_an_unknown_user_is_an_invalid_grant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    app.appends_nothing(async {
        for (login, password) in [
            (SEED_USERNAME, "not-the-password"),
            (SEED_EMAIL, "not-the-password"),
            ("robert.paulson", SEED_PASSWORD),
            // The service account has no password: the client secret is not one.
            (SERVICE_ACCOUNT, CLIENT_SECRET),
        ] {
            let answer = app.password_grant(login, password).await;
            assert_eq!(answer.oauth_error(), "invalid_grant", "{login}");
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_password_grant_takes_a_username_or_an_email_in_any_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    app.add_member(&encode(ADMINISTRATORS), SEED_USERNAME).await;
    for grant in ["password", "contensis_classic"] {
        for login in [
            SEED_USERNAME,
            "TDurden",
            SEED_EMAIL,
            "T.Durden@FightClub.com",
        ] {
            let answer = app
                .token_request(&[
                    ("grant_type", grant),
                    ("username", login),
                    ("password", SEED_PASSWORD),
                ])
                .await;
            let token = answer.access_token();
            let path = membership_path(PREFIX, &encode(SEED_GROUP), SEED_USERNAME);
            let head = app.request(Method::HEAD, &path, &token).await;
            head.assert_status(204);
        }
    }
}

//! API clients with scopes, as an administrator makes them for other systems: an identity
//! provider (`scim`) and a downstream consumer of the feed (`events:read`). Each is
//! limited to its scopes, named in the events it causes, and stops when revoked.

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::{Value, json};

use crate::helpers::{Backend, CLIENT_ID, PREFIX, TestApp, backends};
use crate::scim::{PATCH_OP, assert_scim_error, scim};

const CLIENTS: &str = "/api/management/security/clients";

/// Makes a client; its answer (with its secret).
async fn make(app: &TestApp, client_id: &str, scopes: &[&str]) -> Value {
    let body = json!({ "clientId": client_id, "scopes": scopes });
    let answer = app.post_json(CLIENTS, &app.admin_token, &body).await;
    answer.assert_status(201);
    answer.json()
}

async fn status(app: &TestApp, method: Method, path: &str, token: &str, body: &Value) -> u16 {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if !body.is_null() {
        request = request.json(body);
    }
    request.send().await.expect("sending").status().as_u16()
}

#[apply(backends)]
#[tokio::test]
async fn a_client_is_made_listed_and_revoked_and_bad_requests_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.appends_nothing(async {
        for (body, field) in [
            (
                json!({ "clientId": "Billing", "scopes": ["events:read"] }),
                "clientId",
            ),
            (
                json!({ "clientId": "-billing", "scopes": ["events:read"] }),
                "clientId",
            ),
            (json!({ "scopes": ["events:read"] }), "clientId"),
            (json!({ "clientId": "billing", "scopes": [] }), "scopes"),
            (json!({ "clientId": "billing" }), "scopes"),
            (
                json!({ "clientId": "billing", "scopes": ["admin"] }),
                "scopes",
            ),
        ] {
            let answer = app.post_json(CLIENTS, &app.admin_token, &body).await;
            assert_eq!(
                answer.assert_error(422, "ValidationFailed")["field"],
                field,
                "{body}"
            );
        }
        let bootstrap = json!({ "clientId": CLIENT_ID, "scopes": ["events:read"] });
        let answer = app.post_json(CLIENTS, &app.admin_token, &bootstrap).await;
        answer.assert_error(400, "BadRequest");
        // A retry could not be given the secret: a key is refused.
        let keyed = app
            .client
            .post(app.url(CLIENTS))
            .bearer_auth(&app.admin_token)
            .header("Idempotency-Key", "make-billing")
            .json(&json!({ "clientId": "billing", "scopes": ["events:read"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(keyed.status(), 400);
    })
    .await;
    let made = make(&app, "billing", &["events:read", "events:read"]).await;
    assert_eq!(made["clientId"], "billing");
    assert_eq!(made["scopes"], json!(["events:read"]));
    assert_eq!(made["username"], "svc.billing");
    let secret = made["clientSecret"].as_str().unwrap();
    assert!(secret.len() >= 64, "{made}");
    assert!(made.get("token").is_none(), "only a scim client gets one");
    // The secret is hashed: it is nowhere in the log.
    let log = app.log_events();
    assert!(log.iter().all(|e| !e.payload.to_string().contains(secret)));
    let again = json!({ "clientId": "billing", "scopes": ["events:read"] });
    let taken = app.post_json(CLIENTS, &app.admin_token, &again).await;
    taken.assert_error(409, "UsernameTaken");

    let listed = app.get_json(CLIENTS).await;
    let ids: Vec<&str> = (listed.as_array().unwrap().iter())
        .map(|c| c["clientId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["billing", CLIENT_ID]);
    assert!(!listed.to_string().contains(secret), "{listed}");

    let token = app.client_token("billing", secret).await;
    assert_eq!(
        status(
            &app,
            Method::GET,
            "/api/management/security/events",
            &token,
            &Value::Null
        )
        .await,
        200
    );
    app.delete(&format!("{CLIENTS}/billing"), &app.admin_token)
        .await
        .assert_no_content();
    assert_eq!(
        status(
            &app,
            Method::GET,
            "/api/management/security/events",
            &token,
            &Value::Null
        )
        .await,
        401
    );
    let gone = app
        .delete(&format!("{CLIENTS}/billing"), &app.admin_token)
        .await;
    gone.assert_error(404, "UserNotFound");
    let bootstrap = app
        .delete(&format!("{CLIENTS}/{CLIENT_ID}"), &app.admin_token)
        .await;
    bootstrap.assert_error(400, "BadRequest");
}

#[apply(backends)]
#[tokio::test]
async fn an_events_read_client_reads_the_feed_and_nothing_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let group = app.new_group("Lou's Tavern").await;
    let made = make(&app, "billing", &["events:read"]).await;
    let token = app
        .client_token("billing", made["clientSecret"].as_str().unwrap())
        .await;
    let feed = "/api/management/security/events";
    assert_eq!(
        status(&app, Method::GET, feed, &token, &Value::Null).await,
        200
    );
    let stream = format!("{feed}/stream");
    let response = app
        .client
        .get(app.url(&stream))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    app.appends_nothing(async {
        for (method, path, body) in [
            (Method::GET, format!("{PREFIX}/users"), Value::Null),
            (Method::GET, format!("{PREFIX}/users/@current"), Value::Null),
            (Method::GET, format!("{PREFIX}/groups/{group}"), Value::Null),
            (
                Method::POST,
                format!("{PREFIX}/groups"),
                json!({ "name": "Space Monkeys" }),
            ),
            (
                Method::DELETE,
                format!("{PREFIX}/groups/{group}"),
                Value::Null,
            ),
            (Method::GET, CLIENTS.to_owned(), Value::Null),
            (Method::GET, "/scim/v2/Users".to_owned(), Value::Null),
        ] {
            assert_eq!(
                status(&app, method.clone(), &path, &token, &body).await,
                403,
                "{method} {path}"
            );
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_scim_client_acts_through_scim_only_is_named_in_its_events_and_stops_when_revoked(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let made = make(&app, "entra", &["scim"]).await;
    assert_eq!(made["username"], "svc.entra");
    let long_lived = &made["token"];
    assert!(
        long_lived["expiresIn"].as_u64().unwrap() > 30 * 24 * 3600,
        "{made}"
    );
    let token = long_lived["accessToken"].as_str().unwrap().to_owned();
    // Its secret gets tokens of the same lifetime.
    let answer = app
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "entra"),
            ("client_secret", made["clientSecret"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(answer.json()["expires_in"], long_lived["expiresIn"]);

    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "frank@example.com",
        "emails": [{ "value": "frank@example.com", "primary": true }],
    });
    assert_eq!(
        status(&app, Method::POST, "/scim/v2/Users", &token, &body).await,
        201
    );
    let created = app.events_of("UserCreated");
    let created = &created.last().unwrap().payload;
    assert_eq!(created["data"]["username"], "frank@example.com");
    assert_eq!(created["actor"]["username"], "svc.entra", "{created}");
    let frank = created["data"]["userId"].clone();
    // Not an administrator of the Contensis API, and no reader of the feed.
    for path in [
        format!("{PREFIX}/users"),
        "/api/management/security/events".into(),
    ] {
        assert_eq!(
            status(&app, Method::GET, &path, &token, &Value::Null).await,
            403,
            "{path}"
        );
    }
    // Nor can it make anyone an administrator, or reach an administrator's account.
    let admins = app
        .get_json(&format!("{PREFIX}/groups/System%20Administrators"))
        .await;
    // A second administrator, so that the last-administrator rule is not what refuses.
    let admin = app.new_user("tyler").await;
    app.add_member(admins["id"].as_str().unwrap(), &admin).await;
    // A group below System Administrators: its members are administrators too.
    let ops = app.new_group("Ops").await;
    let admins_id = admins["id"].as_str().unwrap();
    app.put(
        &format!("{PREFIX}/groups/{admins_id}/groups/{ops}"),
        &app.admin_token,
        &Value::Null,
    )
    .await
    .assert_no_content();
    let other = make(&app, "billing", &["events:read"]).await;
    app.appends_nothing(async {
        let add = json!({ "schemas": [PATCH_OP], "Operations": [
            { "op": "add", "path": "members", "value": [{ "value": made["userId"] }, { "value": frank }] },
        ]});
        let off = json!({ "schemas": [PATCH_OP], "Operations": [
            { "op": "replace", "path": "active", "value": false },
        ]});
        let off_other = off.clone();
        for (path, body) in [
            (format!("/scim/v2/Groups/{admins_id}"), add.clone()),
            (format!("/scim/v2/Groups/{ops}"), add),
            (format!("/scim/v2/Users/{admin}"), off),
            (format!("/scim/v2/Users/{}", other["userId"].as_str().unwrap()), off_other),
        ] {
            assert_eq!(status(&app, Method::PATCH, &path, &token, &body).await, 403, "{path}");
        }
        let ops_path = format!("/scim/v2/Groups/{ops}");
        assert_eq!(status(&app, Method::DELETE, &ops_path, &token, &Value::Null).await, 403);
    })
    .await;

    app.delete(&format!("{CLIENTS}/entra"), &app.admin_token)
        .await
        .assert_no_content();
    let after = scim(&app, Method::GET, "/Users", token.as_str()).await;
    assert_scim_error(&after, 401, None);
}

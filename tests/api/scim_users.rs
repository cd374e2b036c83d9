//! An identity provider's changes to users through SCIM, replayed with the bodies Entra ID
//! and Okta send: the connection test, creation, deactivation and reactivation (as strings
//! and as booleans), a profile update that sends `groups: []`, and deletion. After each,
//! the Contensis API and the log show what happened.

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::{Value, json};

use crate::helpers::{Backend, PREFIX, TestApp, backends, encode, user_path};
use crate::scim::{PATCH_OP, USER_URN, assert_scim_error, filtered, scim, scim_body, send};

const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// What Entra ID sends to create a user with its default attribute mappings.
fn entra_user(upn: &str, external_id: &str) -> Value {
    json!({
        "schemas": [USER_URN, ENTERPRISE_URN],
        "externalId": external_id,
        "userName": upn,
        "active": true,
        "displayName": "Alice Liddell",
        "title": "Engineer",
        "emails": [{ "primary": true, "type": "work", "value": upn }],
        "meta": { "resourceType": "User" },
        "name": { "formatted": "Alice Liddell", "familyName": "Liddell", "givenName": "Alice" },
        "preferredLanguage": "en-GB",
        "addresses": [{ "type": "work", "formatted": "1 Rabbit Hole", "primary": false }],
        "phoneNumbers": [{ "type": "work", "value": "+44 1865 000000" }],
        ENTERPRISE_URN: { "department": "Research", "employeeNumber": "42" },
        "roles": [],
    })
}

/// What Okta sends to create a user: a password of its own making and `groups: []`.
fn okta_user(login: &str) -> Value {
    json!({
        "schemas": [USER_URN],
        "userName": login,
        "name": { "givenName": "Bob", "familyName": "Paulson" },
        "emails": [{ "primary": true, "value": login, "type": "work" }],
        "displayName": "Bob Paulson",
        "locale": "en-US",
        "externalId": "00u1ab2cd3EF4gh5i6j7",
        "groups": [],
        "password": "1mz050nq-8Hh",
        "active": true,
    })
}

async fn patch_user(app: &TestApp, id: &str, operations: Value) -> Value {
    let body = json!({ "schemas": [PATCH_OP], "Operations": operations });
    let answer = send(app, Method::PATCH, &format!("/Users/{id}"), &body).await;
    scim_body(&answer)
}

/// The user as the Contensis API shows it.
async fn contensis_user(app: &TestApp, identifier: &str) -> Value {
    app.get_json(&user_path(PREFIX, &encode(identifier))).await
}

#[apply(backends)]
#[tokio::test]
async fn entra_tests_the_connection_creates_deactivates_reactivates_and_deletes_a_user(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    // The connection test: a filter on a userName nobody has.
    let probe = filtered("/Users", r#"userName eq "b4c8e1e6-probe@contoso.com""#);
    let none = scim_body(&scim(&app, Method::GET, &probe, &app.admin_token).await);
    assert_eq!(none["totalResults"], 0);
    assert_eq!(none["Resources"], json!([]));

    let body = entra_user("Alice@Contoso.com", "7f7a5a1e-alice");
    let answer = send(&app, Method::POST, "/Users", &body).await;
    answer.assert_status(201);
    let created = answer.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        (answer.header("location").unwrap()).ends_with(&format!("/scim/v2/Users/{id}")),
        "{:?}",
        answer.headers
    );
    assert_eq!(created["userName"], "Alice@Contoso.com", "kept as sent");
    assert_eq!(created["externalId"], "7f7a5a1e-alice");
    assert_eq!(created["displayName"], "Alice Liddell");
    assert_eq!(created["name"]["givenName"], "Alice");
    assert_eq!(created["active"], true);
    assert_eq!(created["meta"]["resourceType"], "User");
    let made = app.events_of("UserCreated");
    let made = &made.last().unwrap().payload["data"];
    assert_eq!(made["username"], "Alice@Contoso.com");
    assert_eq!(made["externalId"], "7f7a5a1e-alice");
    assert_eq!(made["language"], "en-GB");

    // Found by userName in any case, by externalId only as sent, and by the Contensis API.
    let by_name = filtered("/Users", r#"userName eq "alice@contoso.COM""#);
    let found = scim_body(&scim(&app, Method::GET, &by_name, &app.admin_token).await);
    assert_eq!(found["Resources"][0]["id"], id.as_str());
    for (filter, total) in [
        (r#"externalId eq "7f7a5a1e-alice""#, 1),
        (r#"externalId eq "7F7A5A1E-ALICE""#, 0),
    ] {
        let path = filtered("/Users", filter);
        let found = scim_body(&scim(&app, Method::GET, &path, &app.admin_token).await);
        assert_eq!(found["totalResults"], total, "{filter}");
    }
    assert_eq!(
        contensis_user(&app, "alice@contoso.com").await["id"],
        id.as_str()
    );

    // Deactivation as Entra sends it: the string "False".
    let off = json!([{ "op": "Replace", "path": "active", "value": "False" }]);
    assert_eq!(patch_user(&app, &id, off.clone()).await["active"], false);
    assert_eq!(app.count_of("UserSuspended"), 1);
    let shown = contensis_user(&app, &id).await;
    assert_eq!(shown["status"]["suspended"], true);
    // Sent again, it is already so: nothing appended.
    app.appends_nothing(patch_user(&app, &id, off)).await;
    let on = json!([{ "op": "Replace", "path": "active", "value": "True" }]);
    assert_eq!(patch_user(&app, &id, on).await["active"], true);
    assert_eq!(app.count_of("UserReinstated"), 1);

    // A change of the work email, in Entra's path form.
    let email = json!([{
        "op": "Replace",
        "path": "emails[type eq \"work\"].value",
        "value": "alice.liddell@contoso.com",
    }]);
    let changed = patch_user(&app, &id, email).await;
    assert_eq!(changed["emails"][0]["value"], "alice.liddell@contoso.com");
    // The Contensis API finds her by her UPN, now no email of hers, as a username.
    assert_eq!(
        contensis_user(&app, "Alice@Contoso.com").await["id"],
        id.as_str()
    );

    let group = app.new_group("Readers").await;
    app.add_member(&group, &id).await;
    send(&app, Method::DELETE, &format!("/Users/{id}"), &Value::Null)
        .await
        .assert_no_content();
    let removed = app.events_of("MemberRemoved");
    assert_eq!(removed.len(), 1, "the membership ends first");
    assert_eq!(removed[0].payload["data"]["userId"], id.as_str());
    assert_eq!(app.count_of("UserDeleted"), 1);
    let gone = scim(&app, Method::GET, &format!("/Users/{id}"), &app.admin_token).await;
    assert_scim_error(&gone, 404, None);
    app.get(&user_path(PREFIX, &id)).await.assert_status(404);
}

#[apply(backends)]
#[tokio::test]
async fn okta_creates_deactivates_with_a_boolean_and_updates_without_touching_groups(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let answer = send(&app, Method::POST, "/Users", &okta_user("bob@example.com")).await;
    answer.assert_status(201);
    let created = answer.json();
    assert!(created.get("password").is_none(), "never shown: {created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["groups"], json!([]));
    let group = app.new_group("Support").await;
    app.add_member(&group, &id).await;

    // Okta's deactivation: no path, a real boolean.
    let off = json!([{ "op": "replace", "value": { "active": false } }]);
    assert_eq!(patch_user(&app, &id, off).await["active"], false);
    let suspended = app.events_of("UserSuspended");
    assert_eq!(suspended.len(), 1);
    assert_eq!(suspended[0].payload["data"]["userId"], id.as_str());
    // A suspended user keeps its memberships.
    assert_eq!(app.head_member(&group, &id).await, 204);

    // Okta's profile push: the whole user by PUT, `groups: []` among it.
    let mut pushed = okta_user("bob@example.com");
    pushed["name"]["givenName"] = json!("Robert");
    pushed["active"] = json!(true);
    pushed.as_object_mut().unwrap().remove("password");
    let answer = send(&app, Method::PUT, &format!("/Users/{id}"), &pushed).await;
    let updated = scim_body(&answer);
    assert_eq!(updated["name"]["givenName"], "Robert");
    assert_eq!(updated["active"], true);
    assert_eq!(updated["groups"][0]["value"], group.as_str(), "{updated}");
    assert_eq!(
        app.head_member(&group, &id).await,
        204,
        "groups: [] removes nothing"
    );
    assert_eq!(app.count_of("MemberRemoved"), 0);
    assert_eq!(contensis_user(&app, &id).await["firstname"], "Robert");
}

#[apply(backends)]
#[tokio::test]
async fn a_contensis_update_keeps_what_the_provider_set(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = entra_user("carol@contoso.com", "carol-1");
    let id = send(&app, Method::POST, "/Users", &body).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The Contensis API may keep the '@' username it did not set, and keeps externalId.
    let update = json!({ "username": "carol@contoso.com", "email": "carol@contoso.com", "firstname": "Caz" });
    app.put(&user_path(PREFIX, &id), &app.admin_token, &update)
        .await
        .assert_status(200);
    let shown =
        scim_body(&scim(&app, Method::GET, &format!("/Users/{id}"), &app.admin_token).await);
    assert_eq!(shown["externalId"], "carol-1");
    assert_eq!(shown["name"]["givenName"], "Caz");
    // A GUID username alike.
    let guid = "6254736c-70e1-43b0-b769-f8e0f6359862";
    let body = json!({ "userName": guid, "emails": [{ "value": "dave@contoso.com" }] });
    let dave = send(&app, Method::POST, "/Users", &body).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let update = json!({ "username": guid, "email": "dave@contoso.com", "firstname": "Dave" });
    app.put(&user_path(PREFIX, &dave), &app.admin_token, &update)
        .await
        .assert_status(200);
    // But it sets no new one.
    let renamed = json!({ "username": "caz@contoso.com", "email": "carol@contoso.com" });
    app.appends_nothing(async {
        let answer = app
            .put(&user_path(PREFIX, &id), &app.admin_token, &renamed)
            .await;
        assert_eq!(
            answer.assert_error(422, "ValidationFailed")["field"],
            "username"
        );
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_user_without_an_email_or_with_a_taken_name_is_refused_and_nothing_is_appended(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.create_user("marla", "marla@fightclub.com", None).await;
    let mut no_email = okta_user("dave@example.com");
    no_email.as_object_mut().unwrap().remove("emails");
    let mut taken = okta_user("MARLA");
    taken["emails"][0]["value"] = json!("marla2@fightclub.com");
    // A username that is another user's email would make that email name two users.
    let shadowing = okta_user("marla@fightclub.com");
    let mut bad_active = okta_user("erin@example.com");
    bad_active["active"] = json!("maybe");
    app.appends_nothing(async {
        for (body, status, scim_type) in [
            (no_email, 400, "invalidValue"),
            (taken, 409, "uniqueness"),
            (shadowing, 409, "uniqueness"),
            (bad_active, 400, "invalidValue"),
            (json!(["not", "an", "object"]), 400, "invalidSyntax"),
        ] {
            let answer = send(&app, Method::POST, "/Users", &body).await;
            assert_scim_error(&answer, status, Some(scim_type));
        }
    })
    .await;
    let user = app.get_json(&user_path(PREFIX, "marla")).await;
    let id = user["id"].as_str().unwrap();
    app.appends_nothing(async {
        for operations in [
            json!([{ "op": "remove", "path": "emails" }]),
            json!([{ "op": "replace", "path": "favouriteColour", "value": "red" }]),
            json!([{ "op": "replace", "path": "password", "value": "a-new-password" }]),
        ] {
            let body = json!({ "schemas": [PATCH_OP], "Operations": operations });
            let answer = send(&app, Method::PATCH, &format!("/Users/{id}"), &body).await;
            assert_eq!(answer.status, 400, "{operations}: {}", answer.text);
        }
    })
    .await;
}

//! An identity provider's changes to groups through SCIM, replayed with the bodies Entra ID
//! and Okta send: each is the same events as the Contensis API's calls, shown at once by
//! the Contensis API and in the log.

use std::sync::Arc;

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::{Value, json};

use crate::helpers::{Answer, Backend, PREFIX, SEED_USERNAME, TestApp, backends, encode};
use crate::scim::{GROUP_URN, PATCH_OP, SCIM, assert_scim_error, filtered, scim, scim_body, send};

async fn patch(app: &TestApp, group: &str, operations: Value) -> Answer {
    let body = json!({ "schemas": [PATCH_OP], "Operations": operations });
    send(app, Method::PATCH, &format!("/Groups/{group}"), &body).await
}

/// A user made through the Contensis API; its id.
async fn user(app: &TestApp, username: &str) -> String {
    let user = app
        .create_user(username, &format!("{username}@fightclub.com"), None)
        .await;
    user["id"].as_str().unwrap().to_owned()
}

/// Whether the Contensis API has the user as a direct member of the group.
async fn is_member(app: &TestApp, group: &str, user: &str) -> bool {
    match app.head_member(group, user).await {
        204 => true,
        404 => false,
        other => panic!("HEAD member answered {other}"),
    }
}

#[apply(backends)]
#[tokio::test]
async fn entra_creates_a_group_then_adds_renames_removes_and_deletes_in_its_own_forms(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let tyler = user(&app, "tdurden").await;
    let created = json!({
        "schemas": [GROUP_URN],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "Marketing",
        "members": [],
    });
    let answer = send(&app, Method::POST, "/Groups", &created).await;
    answer.assert_status(201);
    let group = answer.json();
    let id = group["id"].as_str().unwrap().to_owned();
    assert_eq!(group["externalId"], created["externalId"]);
    assert_eq!(group["displayName"], "Marketing");
    let location = answer.header("location").unwrap();
    assert!(
        location.ends_with(&format!("/scim/v2/Groups/{id}")),
        "{location}"
    );
    let made = app.events_of("GroupCreated");
    let made = made.last().unwrap();
    assert_eq!(made.payload["data"]["externalId"], created["externalId"]);
    let by_external = filtered(
        "/Groups",
        r#"externalId eq "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159""#,
    );
    let found = scim_body(&scim(&app, Method::GET, &by_external, &app.admin_token).await);
    assert_eq!(found["Resources"][0]["id"], id.as_str());

    let add = json!([{ "op": "Add", "path": "members", "value": [{ "value": tyler }] }]);
    patch(&app, &id, add).await.assert_no_content();
    assert!(is_member(&app, &id, &tyler).await);
    assert_eq!(
        app.count_of("MemberAdded"),
        2,
        "the bootstrap's and this one"
    );

    let rename = json!([{ "op": "Replace", "path": "displayName", "value": "Marketing EMEA" }]);
    patch(&app, &id, rename).await.assert_no_content();
    let renamed = app
        .get_json(&format!("{PREFIX}/groups/Marketing%20EMEA"))
        .await;
    assert_eq!(renamed["id"], id.as_str());

    let remove = json!([{ "op": "Remove", "path": "members", "value": [{ "value": tyler }] }]);
    patch(&app, &id, remove.clone()).await.assert_no_content();
    assert!(!is_member(&app, &id, &tyler).await);
    let removed = app.events_of("MemberRemoved");
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].payload["data"]["userId"], tyler.as_str());
    let history = app.get_json(&format!("{PREFIX}/groups/{id}/history")).await;
    assert_eq!(history["items"][0]["type"], "MemberRemoved");

    // Removing someone who is not a member is already so: 204, nothing appended.
    app.appends_nothing(async { patch(&app, &id, remove).await.assert_no_content() })
        .await;

    send(&app, Method::DELETE, &format!("/Groups/{id}"), &Value::Null)
        .await
        .assert_no_content();
    let gone = app
        .request(
            Method::GET,
            &format!("{PREFIX}/groups/{id}"),
            &app.admin_token,
        )
        .await;
    gone.assert_error(404, "GroupNotFound");
}

#[apply(backends)]
#[tokio::test]
async fn okta_pushes_a_group_renames_it_removes_by_value_path_and_empties_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tyler = user(&app, "tdurden").await;
    let marla = user(&app, "msinger").await;
    let pushed = json!({
        "schemas": [GROUP_URN],
        "displayName": "Okta Group",
        "members": [{ "value": tyler, "display": "tdurden" }],
    });
    let answer = send(&app, Method::POST, "/Groups", &pushed).await;
    answer.assert_status(201);
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(answer.json()["members"][0]["value"], tyler.as_str());
    assert!(is_member(&app, &id, &tyler).await);

    // Okta renames with an object value beside member operations, in lower case.
    let operations = json!([
        { "op": "replace", "value": { "id": id, "displayName": "Okta Group 2" } },
        { "op": "add", "path": "members", "value": [{ "value": marla, "display": "msinger" }] },
    ]);
    patch(&app, &id, operations).await.assert_no_content();
    let group = scim_body(
        &scim(
            &app,
            Method::GET,
            &format!("/Groups/{id}"),
            &app.admin_token,
        )
        .await,
    );
    assert_eq!(group["displayName"], "Okta Group 2");
    assert_eq!(group["members"].as_array().unwrap().len(), 2);

    let by_path = json!([{ "op": "remove", "path": format!("members[value eq \"{tyler}\"]") }]);
    patch(&app, &id, by_path).await.assert_no_content();
    assert!(!is_member(&app, &id, &tyler).await);
    assert!(is_member(&app, &id, &marla).await);

    // Pushing an empty group: a PUT with no members takes every member out.
    let empty = json!({ "schemas": [GROUP_URN], "displayName": "Okta Group 2", "members": [] });
    let answer = send(&app, Method::PUT, &format!("/Groups/{id}"), &empty).await;
    assert_eq!(scim_body(&answer)["members"], json!([]));
    assert!(!is_member(&app, &id, &marla).await);
    assert_eq!(app.count_of("MemberRemoved"), 2);
    // A PUT without members leaves them alone, and one equal to what is stored appends
    // nothing.
    app.appends_nothing(async {
        let same = json!({ "schemas": [GROUP_URN], "displayName": "Okta Group 2" });
        scim_body(&send(&app, Method::PUT, &format!("/Groups/{id}"), &same).await);
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_refused_scim_change_answers_in_the_scim_form_and_appends_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let group = seed.group_id.to_string();
    app.create_group("Taken").await;
    app.appends_nothing(async {
        let cases = [
            (
                json!([{ "op": "move", "path": "members" }]),
                400,
                Some("invalidSyntax"),
            ),
            (
                json!([{ "op": "add", "path": "nickName", "value": "x" }]),
                400,
                Some("invalidPath"),
            ),
            (
                json!([{ "op": "add", "path": "members[", "value": [] }]),
                400,
                Some("invalidPath"),
            ),
            (
                json!([{ "op": "remove", "path": "displayName" }]),
                400,
                Some("mutability"),
            ),
            (json!([{ "op": "remove" }]), 400, Some("noTarget")),
            (
                json!([{ "op": "add", "path": "members", "value": [{ "value": "no-id" }] }]),
                400,
                Some("invalidValue"),
            ),
            (
                json!([{ "op": "replace", "path": "displayName", "value": "taken" }]),
                409,
                Some("uniqueness"),
            ),
        ];
        for (operations, status, scim_type) in cases {
            let answer = patch(&app, &group, operations.clone()).await;
            assert_scim_error(&answer, status, scim_type);
        }
        let stranger = uuid::Uuid::new_v4().to_string();
        let unknown = json!([{ "op": "add", "path": "members", "value": [{ "value": stranger }] }]);
        assert_scim_error(
            &patch(&app, &group, unknown).await,
            400,
            Some("invalidValue"),
        );
        let nameless = json!({ "schemas": [GROUP_URN] });
        assert_scim_error(
            &send(&app, Method::POST, "/Groups", &nameless).await,
            400,
            Some("invalidValue"),
        );
        let broken = send(&app, Method::POST, "/Groups", &json!("not an object")).await;
        assert_scim_error(&broken, 400, Some("invalidSyntax"));
    })
    .await;
    assert!(is_member(&app, &group, SEED_USERNAME).await);
}

#[apply(backends)]
#[tokio::test]
async fn concurrent_patches_of_different_members_lose_none_of_them(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let created = json!({ "schemas": [GROUP_URN], "displayName": "Project Mayhem" });
    let group = send(&app, Method::POST, "/Groups", &created).await.json();
    let group = group["id"].as_str().unwrap().to_owned();
    let mut users = Vec::new();
    for n in 0..12 {
        users.push(user(&app, &format!("member{n}")).await);
    }
    // The first six join one PATCH each; then, at once, the others join and the first
    // three leave, each from a connection of its own.
    let mut joins = tokio::task::JoinSet::new();
    for user in &users[..6] {
        let (app, group, user) = (app.clone(), group.clone(), user.clone());
        joins.spawn(async move {
            let add = json!([{ "op": "add", "path": "members", "value": [{ "value": user }] }]);
            patch(&app, &group, add).await.status.as_u16()
        });
    }
    assert!(joins.join_all().await.iter().all(|s| *s == 204));
    let mut changes = tokio::task::JoinSet::new();
    for (n, user) in users.iter().cloned().enumerate() {
        let op = match n {
            0..3 => "remove",
            6.. => "add",
            _ => continue,
        };
        let (app, group) = (app.clone(), group.clone());
        changes.spawn(async move {
            let change = json!([{ "op": op, "path": "members", "value": [{ "value": user }] }]);
            patch(&app, &group, change).await.status.as_u16()
        });
    }
    assert!(changes.join_all().await.iter().all(|s| *s == 204));

    let members = app.list_members(&encode(&group)).await;
    let mut listed: Vec<String> = (members["items"].as_array().unwrap().iter())
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    let mut wanted: Vec<String> = users[3..].to_vec();
    wanted.sort();
    assert_eq!(listed, wanted);
    let added = app.events_of("MemberAdded").len() - 1;
    let removed = app.events_of("MemberRemoved").len();
    assert_eq!((added, removed), (12, 3), "one event per change, none lost");
}

#[apply(backends)]
#[tokio::test]
async fn a_patch_under_if_match_lands_only_on_the_version_it_names(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tyler = user(&app, "tdurden").await;
    let created = json!({ "schemas": [GROUP_URN], "displayName": "Versioned" });
    let created = send(&app, Method::POST, "/Groups", &created).await;
    let version = created.header("etag").unwrap().to_owned();
    assert_eq!(created.json()["meta"]["version"], version.as_str());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let add = json!({
        "schemas": [PATCH_OP],
        "Operations": [{ "op": "add", "path": "members", "value": [{ "value": tyler }] }],
    });
    let conditional = |tag: &str| {
        app.client
            .patch(app.url(&format!("{SCIM}/Groups/{id}")))
            .bearer_auth(&app.admin_token)
            .header("if-match", tag)
            .json(&add)
    };
    let stale = "\"999\"";
    let refused = Answer::read(conditional(stale).send().await.unwrap()).await;
    assert_scim_error(&refused, 412, None);
    assert!(!is_member(&app, &id, &tyler).await);
    let landed = Answer::read(conditional(&version).send().await.unwrap()).await;
    landed.assert_no_content();
    assert!(is_member(&app, &id, &tyler).await);
    let garbled = Answer::read(conditional("seven").send().await.unwrap()).await;
    assert_scim_error(&garbled, 400, Some("invalidSyntax"));
}

/// Users made through the Contensis API, `batch` at a time; their ids.
async fn many_users(app: &TestApp, count: usize, batch: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for first in (0..count).step_by(batch) {
        let made = (first..count.min(first + batch))
            .map(|n| async move { user(app, &format!("bulk{n:04}")).await })
            .collect();
        ids.extend(crate::helpers::join_all(made).await);
    }
    ids
}

#[apply(backends)]
#[tokio::test]
async fn a_patch_of_a_thousand_members_lands_whole_and_reads_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let users = many_users(&app, 1000, 25).await;
    let created = json!({ "schemas": [GROUP_URN], "displayName": "Everyone" });
    let group = send(&app, Method::POST, "/Groups", &created).await.json();
    let id = group["id"].as_str().unwrap().to_owned();
    let members: Vec<Value> = users.iter().map(|u| json!({ "value": u })).collect();

    let add = json!([{ "op": "add", "path": "members", "value": members }]);
    patch(&app, &id, add).await.assert_no_content();
    let read = scim_body(
        &scim(
            &app,
            Method::GET,
            &format!("/Groups/{id}"),
            &app.admin_token,
        )
        .await,
    );
    assert_eq!(read["members"].as_array().unwrap().len(), 1000);
    assert_eq!(
        read["meta"]["version"], "\"1001\"",
        "created, then a thousand members"
    );

    let remove = json!([{ "op": "remove", "path": "members", "value": members }]);
    patch(&app, &id, remove).await.assert_no_content();
    let read = scim_body(
        &scim(
            &app,
            Method::GET,
            &format!("/Groups/{id}"),
            &app.admin_token,
        )
        .await,
    );
    assert_eq!(read["members"], json!([]));
    assert_eq!(app.count_of("MemberRemoved"), 1000);
}

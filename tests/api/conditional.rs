//! Optimistic concurrency on groups (`ETag` / `If-Match`, 412) and a group's history.

use std::future::Future;
use std::panic::Location;

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use rstest_reuse::apply;
use serde_json::json;

use crate::helpers::{
    Answer, Backend, JS_PREFIX, PREFIX, SEED_GROUP, SEED_USERNAME, SETTLE_TIMEOUT, TestApp,
    backends, encode, eventually, join_all, membership_path,
};

/// A request as the administrator with `If-Match: if_match`.
async fn conditional(app: &TestApp, method: Method, path: &str, if_match: &str) -> Answer {
    let mut headers = HeaderMap::new();
    headers.insert("if-match", HeaderValue::from_str(if_match).unwrap());
    let response = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.admin_token)
        .headers(headers)
        .send()
        .await
        .expect("sending a request");
    Answer::read(response).await
}

#[track_caller]
fn etag(answer: &Answer) -> String {
    answer
        .header("etag")
        .unwrap_or_else(|| panic!("no ETag: {answer:?}"))
        .to_owned()
}

#[apply(backends)]
#[tokio::test]
async fn a_group_shows_its_version_and_every_change_moves_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .try_create_group(&json!({ "name": "Space Monkeys" }))
        .await;
    created.assert_status(201);
    assert_eq!(etag(&created), "\"1\"");
    let group = format!("{PREFIX}/groups/Space%20Monkeys");
    app.create_user("marla", "marla@fightclub.com", None).await;
    app.add_member("Space%20Monkeys", "marla").await;
    let shown = app.get(&group).await;
    assert_eq!(etag(&shown), "\"2\"");
    // Adding a member who is already there changes nothing, so neither does the version.
    app.add_member("Space%20Monkeys", "marla").await;
    let updated = app
        .put(
            &group,
            &app.admin_token,
            &json!({ "name": "Space Monkeys", "description": "no names" }),
        )
        .await;
    updated.assert_status(200);
    assert_eq!(etag(&updated), "\"3\"");
}

#[apply(backends)]
#[tokio::test]
async fn a_write_whose_if_match_no_longer_holds_is_412_and_appends_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let group = format!("{JS_PREFIX}/groups/{}", encode(SEED_GROUP));
    let shown = app.get(&group).await;
    let stale = etag(&shown);
    app.create_user("marla", "marla@fightclub.com", None).await;
    app.add_member(&encode(SEED_GROUP), "marla").await;

    let member = membership_path(JS_PREFIX, &seed.group_id.to_string(), SEED_USERNAME);
    app.appends_nothing(async {
        let refused = conditional(&app, Method::DELETE, &member, &stale).await;
        let data = refused.assert_error(412, "PreconditionFailed");
        assert_eq!(data["version"], 3, "{data}");
        for (method, path) in [
            (Method::DELETE, group.clone()),
            (Method::PUT, format!("{group}/users/marla")),
        ] {
            conditional(&app, method, &path, &format!("\"9\", {stale}, W/\"3\""))
                .await
                .assert_error(412, "PreconditionFailed");
        }
    })
    .await;
    assert_eq!(
        app.head_member(&encode(SEED_GROUP), SEED_USERNAME).await,
        204
    );

    let current = etag(&app.get(&group).await);
    conditional(&app, Method::DELETE, &member, &current)
        .await
        .assert_no_content();
    conditional(&app, Method::DELETE, &format!("{group}/users/marla"), "*")
        .await
        .assert_no_content();
}

#[apply(backends)]
#[tokio::test]
async fn if_match_is_refused_where_it_cannot_apply(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let user = format!("{PREFIX}/users/{SEED_USERNAME}");
    app.appends_nothing(async {
        conditional(&app, Method::DELETE, &user, "\"1\"")
            .await
            .assert_error(400, "BadRequest");
        let group = format!("{PREFIX}/groups/{}", encode(SEED_GROUP));
        conditional(&app, Method::DELETE, &group, "1")
            .await
            .assert_error(400, "BadRequest");
        conditional(
            &app,
            Method::DELETE,
            &format!("{PREFIX}/groups/Nobody"),
            "*",
        )
        .await
        .assert_error(404, "GroupNotFound");
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn of_racing_writes_with_the_same_if_match_exactly_one_lands(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_group("Space Monkeys").await;
    let names: Vec<String> = (0..8).map(|n| format!("monkey{n}")).collect();
    for name in &names {
        app.create_user(name, &format!("{name}@fightclub.com"), None)
            .await;
    }
    let group = format!("{PREFIX}/groups/Space%20Monkeys");
    let version = etag(&app.get(&group).await);
    let paths: Vec<String> = names
        .iter()
        .map(|name| format!("{group}/users/{name}"))
        .collect();
    let answers = join_all(
        paths
            .iter()
            .map(|path| conditional(&app, Method::PUT, path, &version))
            .collect(),
    )
    .await;
    let added = answers.iter().filter(|a| a.status == 204).count();
    assert_eq!(added, 1, "{answers:?}");
    for answer in answers.iter().filter(|a| a.status != 204) {
        answer.assert_error(412, "PreconditionFailed");
    }
    assert_eq!(app.list_members("Space%20Monkeys").await["totalCount"], 1);
}

#[apply(backends)]
#[tokio::test]
async fn a_groups_history_says_who_changed_what_when_and_in_which_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let removed = app.remove_member(&encode(SEED_GROUP), SEED_USERNAME).await;
    removed.assert_no_content();
    app.remove_member(&encode(SEED_GROUP), SEED_USERNAME)
        .await
        .assert_error(409, "UserNotInGroup");

    let path = format!("{JS_PREFIX}/groups/{}/history?pageSize=2", seed.group_id);
    let page = app.get_json(&path).await;
    assert_eq!(page["totalCount"], 3, "{page}");
    assert_eq!(page["pageCount"], 2, "{page}");
    let newest = &page["items"][0];
    assert_eq!(newest["type"], "MemberRemoved", "{page}");
    assert_eq!(newest["data"]["username"], SEED_USERNAME);
    assert_eq!(newest["actor"]["username"], "svc.membership-tests");
    let removal = app.events_of("MemberRemoved").remove(0);
    assert_eq!(newest["eventId"], removal.event_id.as_str());
    assert_eq!(newest["logId"], removal.payload["correlationId"]);
    assert_eq!(page["items"][1]["type"], "MemberAdded");
    let oldest = app.get_json(&format!("{path}&pageIndex=1")).await;
    assert_eq!(oldest["items"][0]["type"], "GroupCreated", "{oldest}");

    let unknown = format!("{PREFIX}/groups/Nobody/history");
    app.get(&unknown).await.assert_error(404, "GroupNotFound");
}

/// A request as the administrator with `Idempotency-Key: key` and an optional JSON body.
async fn keyed(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&serde_json::Value>,
) -> Answer {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.admin_token)
        .header("idempotency-key", key);
    if let Some(body) = body {
        request = request.json(body);
    }
    Answer::read(request.send().await.expect("sending a request")).await
}

#[apply(backends)]
#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_gets_the_first_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let member = membership_path(PREFIX, SEED_GROUP, SEED_USERNAME);
    keyed(&app, Method::DELETE, &member, "remove-tyler", None)
        .await
        .assert_no_content();
    // Without the key, the same call finds nothing to remove; with it, it is the retry.
    keyed(&app, Method::DELETE, &member, "remove-tyler", None)
        .await
        .assert_no_content();
    app.remove_member(&encode(SEED_GROUP), SEED_USERNAME)
        .await
        .assert_error(409, "UserNotInGroup");
    assert_eq!(app.count_of("MemberRemoved"), 1);

    // A create retried: the same group, made once.
    let body = json!({ "name": "Space Monkeys" });
    let path = format!("{JS_PREFIX}/groups");
    let first = keyed(&app, Method::POST, &path, "make-monkeys", Some(&body)).await;
    first.assert_status(201);
    let again = keyed(&app, Method::POST, &path, "make-monkeys", Some(&body)).await;
    again.assert_status(201);
    assert_eq!(first.json()["id"], again.json()["id"]);
    assert_eq!(
        app.count_of("GroupCreated"),
        3,
        "the seed's, the admins' and this one"
    );

    // The key with another request is refused, and changes nothing.
    let other = json!({ "name": "Project Mayhem" });
    app.appends_nothing(async {
        keyed(&app, Method::POST, &path, "make-monkeys", Some(&other))
            .await
            .assert_error(422, "IdempotencyKeyReused");
        keyed(&app, Method::DELETE, &member, "make-monkeys", None)
            .await
            .assert_error(422, "IdempotencyKeyReused");
        keyed(&app, Method::DELETE, &member, "two words", None)
            .await
            .assert_error(400, "BadRequest");
    })
    .await;
    for event in app.events_of("GroupCreated") {
        if event.payload["data"]["name"] == "Space Monkeys" {
            assert_eq!(event.payload["idempotency"]["key"], "make-monkeys");
        }
    }
}

/// Waits until `app` answers `want` to HEAD of `user` in the seed group.
#[track_caller]
fn settled<'a>(app: &'a TestApp, user: &'a str, want: u16) -> impl Future<Output = ()> + 'a {
    let caller = Location::caller();
    async move {
        let (group, what) = (
            encode(SEED_GROUP),
            format!("{user} to settle (at {caller})"),
        );
        eventually(&what, SETTLE_TIMEOUT, || async {
            (app.head_member(&group, user).await == want).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_retry_on_another_instance_gets_the_first_answer_too() {
    let a = TestApp::spawn(Backend::Kafka).await;
    let kafka = a.kafka.as_ref().expect("a Kafka app");
    let b = TestApp::spawn_on_topic(&kafka.brokers, &kafka.topic, &[]).await;
    a.seed().await;
    a.create_user("marla", "marla@fightclub.com", None).await;
    a.add_member(&encode(SEED_GROUP), "marla").await;
    settled(&b, "marla", 204).await;

    // The first answer on A, the retry on B once B has caught up.
    let tyler = membership_path(PREFIX, SEED_GROUP, SEED_USERNAME);
    keyed(&a, Method::DELETE, &tyler, "remove-tyler", None)
        .await
        .assert_no_content();
    settled(&b, SEED_USERNAME, 404).await;
    keyed(&b, Method::DELETE, &tyler, "remove-tyler", None)
        .await
        .assert_no_content();

    // The request and its retry at once, on both: both 204, one removal takes effect.
    let marla = membership_path(PREFIX, SEED_GROUP, "marla");
    let (on_a, on_b) = tokio::join!(
        keyed(&a, Method::DELETE, &marla, "remove-marla", None),
        keyed(&b, Method::DELETE, &marla, "remove-marla", None),
    );
    on_a.assert_no_content();
    on_b.assert_no_content();
    let removals = a.events_of("MemberRemoved");
    let marla_removals = removals
        .iter()
        .filter(|e| e.payload["data"]["username"] == "marla")
        .count();
    assert!((1..=2).contains(&marla_removals), "{removals:?}");
    settled(&b, "marla", 404).await;
    settled(&a, "marla", 404).await;
}

#[apply(backends)]
#[tokio::test]
async fn if_match_star_asks_only_that_the_group_exists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let member = membership_path(PREFIX, SEED_GROUP, SEED_USERNAME);
    conditional(&app, Method::DELETE, &member, "*")
        .await
        .assert_no_content();
    let removal = app.events_of("MemberRemoved").remove(0);
    assert!(
        removal.payload.get("expectedVersion").is_none(),
        "{:?}",
        removal.payload
    );
    // A list of tags: any one that is the group's version matches, byte for byte.
    let group = format!("{PREFIX}/groups/{}", encode(SEED_GROUP));
    let version = etag(&app.get(&group).await);
    let padded = format!("\"+0{}\"", version.trim_matches('"'));
    let body = json!({ "name": SEED_GROUP, "description": "soap" });
    for (tags, status) in [(padded.clone(), 412), (format!("{padded}, {version}"), 200)] {
        let answer = app
            .client
            .put(app.url(&group))
            .bearer_auth(&app.admin_token)
            .header("if-match", tags)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status);
    }
    let conditional_update = app.events_of("GroupUpdated").remove(0);
    assert_eq!(
        conditional_update.payload["expectedVersion"]["version"],
        version.trim_matches('"').parse::<u64>().unwrap()
    );
}

#[apply(backends)]
#[tokio::test]
async fn a_retried_rename_finds_what_the_first_request_renamed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_group("Space Monkeys").await;
    app.create_user("marla", "marla@fightclub.com", None).await;
    let renamed = json!({ "name": "Project Mayhem" });
    let group = format!("{PREFIX}/groups/Space%20Monkeys");
    let first = keyed(&app, Method::PUT, &group, "rename", Some(&renamed)).await;
    first.assert_status(200);
    let again = keyed(&app, Method::PUT, &group, "rename", Some(&renamed)).await;
    again.assert_status(200);
    assert_eq!(again.json()["name"], "Project Mayhem");
    assert_eq!(app.count_of("GroupUpdated"), 1);

    let user = format!("{PREFIX}/users/marla");
    let patch = json!({ "username": "marla.singer" });
    for _ in 0..2 {
        let answer = keyed(&app, Method::PATCH, &user, "rename-marla", Some(&patch)).await;
        answer.assert_status(200);
        assert_eq!(answer.json()["username"], "marla.singer");
    }
    assert_eq!(app.count_of("UserUpdated"), 1);

    let password = format!("{PREFIX}/users/marla.singer/credentials/password");
    app.appends_nothing(keyed(
        &app,
        Method::POST,
        &password,
        "new-password",
        Some(&json!({ "new": "tourist-of-groups" })),
    ))
    .await
    .assert_error(400, "BadRequest");
}

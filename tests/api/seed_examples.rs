//! The five example requests of the seed page, each against a fresh service: the member
//! is removed, the answer is an empty 204, HEAD then says 404, and exactly one
//! `MemberRemoved` event describes the removal.

use std::future::Future;
use std::panic::Location;

use rstest_reuse::apply;
use uuid::Uuid;

use crate::helpers::{
    Backend, JS_PREFIX, PREFIX, SEED_EMAIL, SEED_GROUP, SEED_USERNAME, SERVICE_ACCOUNT, Seed,
    TestApp, assert_uuid, backends, called_at, encode,
};

#[derive(Debug, Clone, Copy)]
enum GroupBy {
    Id,
    Name,
}

#[derive(Debug, Clone, Copy)]
enum UserBy {
    Id,
    Username,
    Email,
}

fn group_identifier(seed: &Seed, by: GroupBy) -> String {
    match by {
        GroupBy::Id => seed.group_id.to_string(),
        GroupBy::Name => encode(SEED_GROUP),
    }
}

fn user_identifier(seed: &Seed, by: UserBy) -> String {
    match by {
        UserBy::Id => seed.user_id.to_string(),
        UserBy::Username => SEED_USERNAME.to_owned(),
        UserBy::Email => SEED_EMAIL.to_owned(),
    }
}

#[track_caller]
fn assert_example_removes(
    backend: Backend,
    prefix: &str,
    group_by: GroupBy,
    user_by: UserBy,
) -> impl Future<Output = ()> {
    called_at(Location::caller(), async move {
        let app = TestApp::spawn(backend).await;
        let seed = app.seed().await;
        let (group, user) = (
            group_identifier(&seed, group_by),
            user_identifier(&seed, user_by),
        );
        assert_eq!(app.head_member(&group, &user).await, 204);
        let before = app.log_events();

        app.remove_member_at(prefix, &group, &user)
            .await
            .assert_no_content();

        assert_eq!(app.head_member(&group, &user).await, 404);
        let after = app.log_events();
        assert_eq!(after.len(), before.len() + 1, "one event, and one only");
        let event = after
            .iter()
            .find(|e| before.iter().all(|b| b.event_id != e.event_id))
            .expect("the new event");
        assert_eq!(event.table, "events");
        assert_eq!(event.event_type, "MemberRemoved");
        let payload = &event.payload;
        assert_eq!(payload["type"], "MemberRemoved");
        assert_eq!(payload["schemaVersion"], 1);
        let id = assert_uuid(&payload["id"]);
        assert_eq!(id.to_string(), event.event_id);
        assert_eq!(id.get_version_num(), 7, "event ids are UUID v7");
        assert_uuid(&payload["correlationId"]);
        assert_eq!(payload["aggregateId"], seed.group_id.to_string());
        assert_eq!(payload["actor"]["username"], SERVICE_ACCOUNT);
        let data = &payload["data"];
        assert_eq!(data["groupId"], seed.group_id.to_string());
        assert_eq!(data["groupName"], SEED_GROUP);
        assert_eq!(data["userId"], seed.user_id.to_string());
        assert_eq!(data["username"], SEED_USERNAME);
        assert_eq!(data["email"], SEED_EMAIL);
        let members = app.list_members(&seed.group_id.to_string()).await;
        assert_eq!(members["totalCount"], 0, "{members}");
    })
}

#[apply(backends)]
#[tokio::test]
async fn removing_by_group_id_and_user_id_answers_no_content(backend: Backend) {
    assert_example_removes(backend, PREFIX, GroupBy::Id, UserBy::Id).await;
}

#[apply(backends)]
#[tokio::test]
async fn removing_by_group_name_with_an_encoded_space_and_user_id_answers_no_content(
    backend: Backend,
) {
    assert_example_removes(backend, PREFIX, GroupBy::Name, UserBy::Id).await;
}

#[apply(backends)]
#[tokio::test]
async fn removing_by_group_id_and_username_answers_no_content(backend: Backend) {
    assert_example_removes(backend, PREFIX, GroupBy::Id, UserBy::Username).await;
}

#[apply(backends)]
#[tokio::test]
async fn removing_by_group_id_and_email_answers_no_content(backend: Backend) {
    assert_example_removes(backend, PREFIX, GroupBy::Id, UserBy::Email).await;
}

#[apply(backends)]
#[tokio::test]
async fn removing_by_group_name_and_email_answers_no_content(backend: Backend) {
    assert_example_removes(backend, PREFIX, GroupBy::Name, UserBy::Email).await;
}

#[apply(backends)]
#[tokio::test]
async fn the_seed_examples_also_remove_under_the_javascript_client_prefix(backend: Backend) {
    assert_example_removes(backend, JS_PREFIX, GroupBy::Name, UserBy::Username).await;
}

#[apply(backends)]
#[tokio::test]
async fn the_removal_event_carries_the_names_as_they_were_and_a_fresh_correlation_id(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let group = seed.group_id.to_string();
    app.remove_member(&group, SEED_USERNAME)
        .await
        .assert_no_content();
    app.add_member(&group, SEED_USERNAME).await;
    app.remove_member(&group, SEED_EMAIL)
        .await
        .assert_no_content();

    let removed = app.events_of("MemberRemoved");
    assert_eq!(removed.len(), 2);
    let correlation: Vec<Uuid> = removed
        .iter()
        .map(|e| assert_uuid(&e.payload["correlationId"]))
        .collect();
    assert_ne!(
        correlation[0], correlation[1],
        "one correlation id per request"
    );
    let added = app.events_of("MemberAdded");
    let added_correlation: Vec<Uuid> = added
        .iter()
        .map(|e| assert_uuid(&e.payload["correlationId"]))
        .collect();
    assert!(
        correlation.iter().all(|c| !added_correlation.contains(c)),
        "a removal shares its correlation id with an addition"
    );
}

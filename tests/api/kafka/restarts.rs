//! A restarted instance resumes from its stored positions and applies each event once,
//! while another instance on the same topics writes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::helpers::{
    Record, SETTLE_TIMEOUT, TestApp, assert_ids_unique, count, credentials_topic, eventually,
    open_read_model, read_model_outcomes, read_topic_until, uuid_field,
};

use super::broker::{Broker, unique_topic};
use super::removals::{
    Member, assert_members, create_member, group_with_members, listed_members, names,
};

/// The read model's positions (partition -> offset).
#[track_caller]
fn read_model_positions(data_dir: &Path) -> BTreeMap<String, i64> {
    let conn = open_read_model(data_dir);
    let mut statement = conn
        .prepare("SELECT partition, offset FROM positions")
        .expect("preparing a positions query");
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("reading the positions")
        .collect::<rusqlite::Result<_>>()
        .expect("reading a position")
}

#[tokio::test]
async fn a_restarted_instance_resumes_from_its_positions_applying_each_event_once() {
    let broker = Broker::tansu().await;
    let (brokers, topic) = (broker.brokers(), unique_topic());
    // The first instance's data dir is the test's, to read its read model afterwards.
    let first_dir = tempfile::tempdir().expect("creating a data dir");
    let first_data = first_dir.path().join("data");
    let first_data_text = first_data.display().to_string();
    let mut first = TestApp::spawn_on_topic(
        &brokers,
        &topic,
        &[("MEMBERSHIP_DATA_DIR", &first_data_text)],
    )
    .await;

    let (group, mut users) = group_with_members(&first, "Lou's Tavern", "fighter", 8).await;
    let password = "his-name-is-robert-paulson";
    let bob = first
        .create_user("bob", "bob@fightclub.com", Some(password))
        .await;
    let bob = uuid_field(&bob, "id").to_string();
    users.push(Member {
        username: "bob".into(),
        id: bob.clone(),
    });
    first.add_member(&group, &bob).await;
    let mut expected = names(&users);
    for user in &users[0..3] {
        first
            .remove_member(&group, &user.id)
            .await
            .assert_no_content();
        expected.remove(&user.username);
    }
    assert_members(&first, &group, &users, &expected).await;

    first.stop();

    // A second instance, with a read model of its own, folds the whole topic before it
    // listens, and writes while the first is down.
    let second = TestApp::spawn_on_topic(&brokers, &topic, &[]).await;
    assert_members(&second, &group, &users, &expected).await;
    assert!(!second.token_for("bob", password).await.is_empty());
    for user in &users[3..5] {
        second
            .remove_member(&group, &user.id)
            .await
            .assert_no_content();
        expected.remove(&user.username);
    }
    second.add_member(&group, &users[0].id).await;
    expected.insert(users[0].username.clone());
    let late = create_member(&second, "fighter-late").await;
    second.add_member(&group, &late.id).await;
    expected.insert(late.username.clone());
    users.push(late);

    // The first instance starts from its stored positions and catches up before it
    // listens: the second's changes are there at once, and nothing else changed.
    first.start().await;
    assert_members(&first, &group, &users, &expected).await;
    assert!(!first.token_for("bob", password).await.is_empty());
    first
        .remove_member(&group, &users[5].id)
        .await
        .assert_no_content();
    expected.remove(&users[5].username);
    first.add_member(&group, &users[1].id).await;
    expected.insert(users[1].username.clone());
    assert_members(&first, &group, &users, &expected).await;
    eventually(
        "the second instance to show the first's writes",
        SETTLE_TIMEOUT,
        || async { (listed_members(&second, &group).await == expected).then_some(()) },
    )
    .await;
    assert_members(&second, &group, &users, &expected).await;

    // The topics hold each change once: bootstrap (the administrators group, the service
    // account and its membership) ran once, and every write above is one record.
    let events = read_topic_until(&brokers, &topic, "the last MemberAdded", |records| {
        count(records, "MemberAdded") >= 13
    })
    .await;
    let credentials = read_topic_until(
        &brokers,
        &credentials_topic(&topic),
        "bob's PasswordSet",
        |r| !r.is_empty(),
    )
    .await;
    let counts: BTreeMap<&str, usize> = [
        "GroupCreated",
        "UserCreated",
        "MemberAdded",
        "MemberRemoved",
        "ChildGroupAdded",
    ]
    .into_iter()
    .map(|t| (t, count(&events, t)))
    .collect();
    let want: BTreeMap<&str, usize> = [
        ("GroupCreated", 2),
        ("UserCreated", 1 + 8 + 1 + 1),
        ("MemberAdded", 1 + 8 + 1 + 1 + 1 + 1),
        ("MemberRemoved", 3 + 2 + 1),
        ("ChildGroupAdded", 0),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, want, "records by type on {topic}");
    assert_eq!(events.len(), want.values().sum::<usize>());
    assert_eq!(credentials.len(), 1, "{credentials:#?}");
    assert_ids_unique(&events);

    // The first instance recorded one outcome per record, all applied (no race here), and
    // its positions are the last offsets of both topics.
    let (outcomes, positions) = (
        read_model_outcomes(&first_data),
        read_model_positions(&first_data),
    );
    let on_topics: BTreeSet<&str> = events.iter().chain(&credentials).map(Record::id).collect();
    let recorded: BTreeSet<&str> = outcomes.keys().map(String::as_str).collect();
    assert_eq!(
        recorded, on_topics,
        "outcomes recorded vs records on the topics"
    );
    let not_applied: Vec<_> = outcomes.iter().filter(|(_, o)| *o != "applied").collect();
    assert!(not_applied.is_empty(), "{not_applied:?}");
    let last = |records: &[Record]| records.iter().map(|r| r.offset).max().expect("records");
    let want_positions: BTreeMap<String, i64> = [
        (format!("{topic}/0"), last(&events)),
        (
            format!("{}/0", credentials_topic(&topic)),
            last(&credentials),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(positions, want_positions);
}

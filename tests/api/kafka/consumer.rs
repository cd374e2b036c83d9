//! What a consumer of the topics sees: each change once, keyed by its aggregate, in the
//! envelope docs/events.md describes, and no password hash on the events topic.

use crate::helpers::{
    Record, TestApp, assert_envelope, assert_ids_unique, credentials_topic, read_topic_until,
    uuid_field,
};

use super::broker::{Broker, unique_topic};

#[tokio::test]
async fn a_consumer_sees_the_removal_keyed_by_group_and_no_password_hash_on_the_events_topic() {
    let broker = Broker::tansu().await;
    let (brokers, topic) = (broker.brokers(), unique_topic());
    let app = TestApp::spawn_on_topic(&brokers, &topic, &[]).await;
    let password = "pr0j3ctM4yh3m-on-kafka";
    let group = app.new_group("Paper Street Soap Company").await;
    let created = app
        .create_user("tdurden", "t.durden@fightclub.com", Some(password))
        .await;
    let user = uuid_field(&created, "id").to_string();
    app.add_member(&group, &user).await;
    app.remove_member(&group, "tdurden")
        .await
        .assert_no_content();

    // A 204 means the record is in the topic; the reader retries only in case the broker
    // reports the end of the partition early.
    let events = read_topic_until(&brokers, &topic, "the MemberRemoved record", |records| {
        records.iter().any(|r| r.event_type() == "MemberRemoved")
    })
    .await;
    let removed: Vec<&Record> = events
        .iter()
        .filter(|r| r.header("ce_type") == Some("MemberRemoved"))
        .collect();
    assert_eq!(removed.len(), 1, "{removed:#?}");
    let record = removed[0];
    assert_eq!(record.key.as_deref(), Some(group.as_str()), "{record:?}");
    assert_eq!(record.header("ce_id"), Some(record.id()), "{record:?}");
    record.assert_valid();
    let payload = &record.payload;
    assert_eq!(payload["type"], "MemberRemoved");
    assert_eq!(payload["aggregateId"], group.as_str());
    assert_eq!(payload["data"]["groupId"], group.as_str());
    assert_eq!(payload["data"]["groupName"], "Paper Street Soap Company");
    assert_eq!(payload["data"]["userId"], user.as_str());
    assert_eq!(payload["data"]["username"], "tdurden");
    assert_eq!(payload["data"]["email"], "t.durden@fightclub.com");

    assert_ids_unique(&events);
    for record in &events {
        assert_envelope(record, &topic);
        record.assert_valid();
        assert_ne!(record.event_type(), "PasswordSet", "{record:?}");
        for secret in ["passwordHash", "$argon2", password] {
            assert!(
                !record.raw.contains(secret),
                "`{secret}` on the events topic: {}",
                record.raw
            );
        }
    }

    let credentials = read_topic_until(
        &brokers,
        &credentials_topic(&topic),
        "the PasswordSet record",
        |records| !records.is_empty(),
    )
    .await;
    assert_ids_unique(&credentials);
    for record in &credentials {
        assert_eq!(record.event_type(), "PasswordSet", "{record:?}");
        assert_envelope(record, &topic);
        record.assert_valid();
        assert!(!record.raw.contains(password), "{}", record.raw);
    }
    let set: Vec<&Record> = credentials
        .iter()
        .filter(|r| r.payload["aggregateId"] == user.as_str())
        .collect();
    assert_eq!(set.len(), 1, "{credentials:#?}");
    assert_eq!(set[0].key.as_deref(), Some(user.as_str()));
    assert_eq!(set[0].payload["data"]["userId"], user.as_str());
    let hash = set[0].payload["data"]["passwordHash"]
        .as_str()
        .unwrap_or_default();
    assert!(hash.starts_with("$argon2"), "{}", set[0].raw);
}

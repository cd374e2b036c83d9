//! What the log holds: every event validates against its JSON Schema, and secrets stay out
//! of the public `events` table (the password itself appears nowhere at all).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    ADMINISTRATORS, CLIENT_SECRET, LoggedEvent, PREFIX, SEED_GROUP, SEED_PASSWORD, SEED_USERNAME,
    TestApp, encode, join_all,
};

const EVENT_TYPES: [&str; 6] = [
    "UserCreated",
    "GroupCreated",
    "MemberAdded",
    "MemberRemoved",
    "ChildGroupAdded",
    "PasswordSet",
];

/// `MemberRemoved` -> `member-removed`
fn kebab_case(event_type: &str) -> String {
    let mut kebab = String::new();
    for (i, c) in event_type.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                kebab.push('-');
            }
            kebab.push(c.to_ascii_lowercase());
        } else {
            kebab.push(c);
        }
    }
    kebab
}

fn schema_for(event_type: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(format!("{}.json", kebab_case(event_type)));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading the schema {}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the schema {} is not JSON: {e}", path.display()));
    // `format` is only an annotation in draft 2020-12: ask for `date-time` to be checked.
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("the schema {} is not valid: {e}", path.display()))
}

/// Every kind of event, including a lost race and a user with a profile and a password.
async fn write_every_kind_of_event(app: &TestApp) {
    app.seed().await;
    let external = json!({
        "name": "Space Monkeys",
        "Description": "the documentation's capital D",
        "type": "external",
        "custom": { "rule": "you do not talk about it" },
    });
    app.try_create_group(&external).await.assert_status(201);
    let marla = json!({
        "username": "marla",
        "email": "Marla.Singer@FightClub.com",
        "firstName": "Marla",
        "lastName": "Singer",
        "timezone": "America/Los_Angeles",
        "language": "en-US",
        "custom": { "meetings": "all of them" },
        "credentials": { "password": "tourist-of-groups" },
    });
    app.try_create_user(&marla).await.assert_status(201);
    app.add_member("Space%20Monkeys", "marla").await;
    app.add_member(&encode(ADMINISTRATORS), SEED_USERNAME).await;
    let nesting = format!(
        "{PREFIX}/groups/{}/groups/Space%20Monkeys",
        encode(SEED_GROUP)
    );
    app.request(Method::PUT, &nesting, Some(&app.admin_token))
        .await
        .assert_no_content();
    let racing: Vec<_> = (0..8)
        .map(|_| app.remove_member("Space%20Monkeys", "marla"))
        .collect();
    join_all(racing).await;
    app.remove_member(&encode(SEED_GROUP), SEED_USERNAME)
        .await
        .assert_no_content();
}

#[tokio::test]
async fn every_event_the_service_writes_validates_against_its_schema() {
    let app = TestApp::spawn().await;
    write_every_kind_of_event(&app).await;
    let validators: BTreeMap<&str, jsonschema::Validator> =
        EVENT_TYPES.iter().map(|t| (*t, schema_for(t))).collect();

    let log = app.log_events();
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    for event in &log {
        let validator = validators
            .get(event.event_type.as_str())
            .unwrap_or_else(|| panic!("an event of unknown type: {event:?}"));
        assert_eq!(event.payload["type"], event.event_type.as_str());
        assert_eq!(event.payload["id"], event.event_id.as_str());
        for error in validator.iter_errors(&event.payload) {
            failures.push(format!(
                "{} {} at {}: {error}",
                event.event_type, event.event_id, error.instance_path
            ));
        }
        seen.insert(event.event_type.as_str());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        seen,
        EVENT_TYPES.into_iter().collect(),
        "every type was checked"
    );
}

#[tokio::test]
async fn the_schemas_refuse_an_event_that_breaks_them() {
    let app = TestApp::spawn().await;
    let seed = app.seed().await;
    app.remove_member(&seed.group_id.to_string(), SEED_USERNAME)
        .await
        .assert_no_content();
    let removed = app.events_of("MemberRemoved").remove(0).payload;
    let validator = schema_for("MemberRemoved");
    assert!(validator.is_valid(&removed));

    let mut no_email = removed.clone();
    no_email["data"]
        .as_object_mut()
        .expect("data is an object")
        .remove("email");
    let mut extra = removed.clone();
    extra["data"]["passwordHash"] = json!("$argon2id$...");
    let mut wrong_type = removed.clone();
    wrong_type["type"] = json!("MemberAdded");
    let mut bad_time = removed;
    bad_time["time"] = json!("yesterday");
    for broken in [no_email, extra, wrong_type, bad_time] {
        assert!(!validator.is_valid(&broken), "accepted {broken}");
    }
}

fn is_secret(event: &LoggedEvent) -> bool {
    event.payload.to_string().contains("$argon2")
}

#[tokio::test]
async fn password_hashes_are_only_in_the_credentials_table() {
    let app = TestApp::spawn().await;
    write_every_kind_of_event(&app).await;

    let log = app.log_events();
    let (credentials, events): (Vec<&LoggedEvent>, Vec<&LoggedEvent>) =
        log.iter().partition(|e| e.table == "credentials");
    let leaks: Vec<_> = events.iter().filter(|e| is_secret(e)).collect();
    assert!(leaks.is_empty(), "hashes in the events table: {leaks:#?}");
    assert!(events.iter().all(|e| e.event_type != "PasswordSet"));
    assert_eq!(
        credentials.len(),
        2,
        "one PasswordSet per user with a password"
    );
    for event in credentials {
        assert_eq!(event.event_type, "PasswordSet");
        let hash = event.payload["data"]["passwordHash"].as_str().unwrap_or("");
        assert!(hash.starts_with("$argon2"), "{event:?}");
    }
    for created in log.iter().filter(|e| e.event_type == "UserCreated") {
        let data = created.payload["data"].as_object().expect("data");
        assert!(!data.contains_key("credentials"), "{created:?}");
        assert!(!data.contains_key("password"), "{created:?}");
    }
}

#[tokio::test]
async fn the_password_given_at_creation_appears_nowhere_in_the_data_dir() {
    let mut app = TestApp::spawn().await;
    write_every_kind_of_event(&app).await;
    // Stopped uncleanly, the WALs may hold the latest pages: search every file, log.db's
    // and read.db's alike.
    app.stop();

    let data_dir = app.data_dir();
    let mut searched = 0;
    for entry in std::fs::read_dir(&data_dir).expect("listing the data dir") {
        let path = entry.expect("a data dir entry").path();
        let bytes = std::fs::read(&path).expect("reading a data file");
        for secret in [SEED_PASSWORD, "tourist-of-groups", CLIENT_SECRET] {
            let found = bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes());
            assert!(!found, "{secret:?} is in {}", path.display());
        }
        searched += 1;
    }
    assert!(
        searched >= 2,
        "log.db and read.db are not in {}",
        data_dir.display()
    );
}

#[tokio::test]
async fn a_created_user_is_answered_without_its_password_or_hash() {
    let app = TestApp::spawn().await;
    let user = app
        .create_user(SEED_USERNAME, "t.durden@fightclub.com", Some(SEED_PASSWORD))
        .await;
    let text = user.to_string();
    assert!(!text.contains(SEED_PASSWORD), "{text}");
    assert!(!text.contains("$argon2"), "{text}");
    assert_eq!(user["username"], SEED_USERNAME);
    assert_eq!(user["email"], "t.durden@fightclub.com");
    assert_eq!(user["firstname"], "Tyler");
}

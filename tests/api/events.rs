//! What the log holds: every event validates against its JSON Schema, and secrets stay out
//! of the public `events` stream, log.db's table or Kafka's topic (the password itself
//! appears nowhere at all).

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::json;

use crate::helpers::{
    ADMINISTRATORS, Backend, CLIENT_SECRET, LoggedEvent, PREFIX, SEED_GROUP, SEED_PASSWORD,
    SEED_USERNAME, TestApp, backends, encode, join_all, nesting_path, schema_for,
};

const EVENT_TYPES: [&str; 14] = [
    "UserCreated",
    "UserUpdated",
    "UserDeleted",
    "GroupCreated",
    "GroupUpdated",
    "GroupDeleted",
    "MemberAdded",
    "MemberRemoved",
    "ChildGroupAdded",
    "ChildGroupRemoved",
    "PasswordSet",
    "UserSuspended",
    "UserReinstated",
    "TokenRevoked",
];

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
    // An API client's account, with its scopes.
    let client = json!({ "clientId": "billing", "scopes": ["events:read", "scim"] });
    let made = app
        .post_json(
            "/api/management/security/clients",
            &app.admin_token,
            &client,
        )
        .await;
    made.assert_status(201);
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
    app.nest(SEED_GROUP, "Space Monkeys").await;
    let nesting = nesting_path(PREFIX, SEED_GROUP, "Space Monkeys");
    app.delete(&nesting, &app.admin_token)
        .await
        .assert_no_content();
    let racing: Vec<_> = (0..8)
        .map(|_| app.remove_member("Space%20Monkeys", "marla"))
        .collect();
    join_all(racing).await;
    app.remove_member(&encode(SEED_GROUP), SEED_USERNAME)
        .await
        .assert_no_content();
    let renamed = json!({
        "username": "marla.singer",
        "email": "marla@fightclub.com",
        "firstname": "Marla",
        "custom": { "meetings": "fewer now" },
    });
    app.put(&format!("{PREFIX}/users/marla"), &app.admin_token, &renamed)
        .await
        .assert_status(200);
    let described = json!({ "name": "Space Monkeys", "description": "gone quiet" });
    app.put(
        &format!("{PREFIX}/groups/Space%20Monkeys"),
        &app.admin_token,
        &described,
    )
    .await
    .assert_status(200);
    app.add_member("Space%20Monkeys", "marla.singer").await;
    let marla_token = app.token_for("marla.singer", "tourist-of-groups").await;
    let revoked = app
        .client
        .post(app.url("/authenticate/connect/revocation"))
        .bearer_auth(&marla_token)
        .form(&[("token", marla_token.as_str())])
        .send()
        .await
        .expect("revoking a token");
    assert_eq!(revoked.status(), 200);
    for suspended in [true, false] {
        app.request_json(
            Method::PATCH,
            &format!("{PREFIX}/users/marla.singer"),
            &app.admin_token,
            &json!({ "status": { "suspended": suspended } }),
        )
        .await
        .assert_status(200);
    }
    for path in ["users/marla.singer", "groups/Space%20Monkeys"] {
        app.delete(&format!("{PREFIX}/{path}"), &app.admin_token)
            .await
            .assert_no_content();
    }
}

#[apply(backends)]
#[tokio::test]
async fn every_event_the_service_writes_validates_against_its_schema(backend: Backend) {
    let app = TestApp::spawn(backend).await;
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

#[apply(backends)]
#[tokio::test]
async fn the_schemas_refuse_an_event_that_breaks_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
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

#[apply(backends)]
#[tokio::test]
async fn password_hashes_are_only_in_the_credentials_table(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    write_every_kind_of_event(&app).await;

    let log = app.log_events();
    let (credentials, events): (Vec<&LoggedEvent>, Vec<&LoggedEvent>) =
        log.iter().partition(|e| e.table == "credentials");
    let leaks: Vec<_> = events.iter().filter(|e| is_secret(e)).collect();
    assert!(leaks.is_empty(), "hashes in the events table: {leaks:#?}");
    assert!(events.iter().all(|e| e.event_type != "PasswordSet"));
    assert!(events.iter().all(|e| e.event_type != "TokenRevoked"));
    let (revoked, credentials): (Vec<&LoggedEvent>, Vec<&LoggedEvent>) =
        (credentials.iter()).partition(|e| e.event_type == "TokenRevoked");
    assert_eq!(revoked.len(), 1, "the one revocation");
    assert!(revoked.iter().all(|e| !is_secret(e)), "{revoked:#?}");
    assert_eq!(
        credentials.len(),
        3,
        "one PasswordSet per user with a password, the API client's secret among them"
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

#[apply(backends)]
#[tokio::test]
async fn the_password_given_at_creation_appears_nowhere_in_the_data_dir_or_the_log(
    backend: Backend,
) {
    let mut app = TestApp::spawn(backend).await;
    write_every_kind_of_event(&app).await;
    const SECRETS: [&str; 3] = [SEED_PASSWORD, "tourist-of-groups", CLIENT_SECRET];
    let contains = |bytes: &[u8], secret: &str| {
        bytes
            .windows(secret.len())
            .any(|window| window == secret.as_bytes())
    };
    // Wherever the log is kept (log.db is also searched below, as a file).
    for event in app.log_events() {
        let text = event.payload.to_string();
        for secret in SECRETS {
            assert!(
                !contains(text.as_bytes(), secret),
                "{secret:?} is in {event:?}"
            );
        }
    }
    // Stopped uncleanly, the WALs may hold the latest pages: search every file, log.db's
    // (embedded) and read.db's alike.
    app.stop();

    let data_dir = app.data_dir();
    let mut searched = Vec::new();
    for entry in std::fs::read_dir(&data_dir).expect("listing the data dir") {
        let path = entry.expect("a data dir entry").path();
        let bytes = std::fs::read(&path).expect("reading a data file");
        for secret in SECRETS {
            assert!(
                !contains(&bytes, secret),
                "{secret:?} is in {}",
                path.display()
            );
        }
        searched.push(path.file_name().expect("a file name").to_owned());
    }
    let expected: &[&str] = match backend {
        Backend::Embedded => &["log.db", "read.db"],
        Backend::Kafka => &["read.db"],
    };
    for name in expected {
        assert!(
            searched.iter().any(|searched| searched == name),
            "{name} is not in {}: {searched:?}",
            data_dir.display()
        );
    }
}

#[apply(backends)]
#[tokio::test]
async fn a_created_user_is_answered_without_its_password_or_hash(backend: Backend) {
    let app = TestApp::spawn(backend).await;
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

//! Who gets in: no committed secret admits anyone, the data dir is the owner's alone,
//! failed logins are throttled per name and address (and never lock out another
//! address), tokens stop when their credential, user or suspension says so or when they
//! are revoked, and a change that changes nothing appends nothing.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::{Value, json};

use crate::helpers::{
    ADMINISTRATORS, ANONYMOUS, Answer, Backend, CLIENT_ID, CLIENT_SECRET, PREFIX, SEED_EMAIL,
    SEED_GROUP, SEED_PASSWORD, SEED_USERNAME, SERVICE_ACCOUNT, TOKEN_SECRET, TestApp, UNSET,
    backends, claims_of, encode, eventually_or_none, group_path, membership_path, now_s,
    sign_claims, sign_token, user_path,
};

/// What config/default.toml once held, and what anyone who read the README knew.
const COMMITTED_CLIENT_SECRET: &str = "dev-only-secret-change-me";
const COMMITTED_TOKEN_SECRET: &str = "dev-only-token-secret-change-me-0123456789";

const SECOND: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Concurrent connections of the flood: more than `hashers_max + hash_queue_max` (4 + 64).
const FLOOD_CONNECTIONS: usize = 100;
const REVOCATION: &str = "/authenticate/connect/revocation";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The data dir is 0700 and every file in it 0600.
#[track_caller]
fn assert_owner_only(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("reading the data dir") {
        let path = entry.expect("a dir entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files += 1;
    }
    assert!(files > 0, "nothing in {}", dir.display());
}

async fn client_grant(client: &reqwest::Client, app: &TestApp, secret: &str) -> Answer {
    let response = client
        .post(app.url("/authenticate/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", secret),
        ])
        .send()
        .await
        .expect("sending a token request");
    Answer::read(response).await
}

/// A user who may log in, with a token.
async fn member(app: &TestApp) -> String {
    app.seed().await;
    app.token_for(SEED_USERNAME, SEED_PASSWORD).await
}

async fn current_user(app: &TestApp, token: &str) -> Answer {
    app.request(Method::GET, &format!("{PREFIX}/users/@current"), token)
        .await
}

async fn put_user(app: &TestApp, user: &str, token: &str, body: &Value) -> Answer {
    app.put(&user_path(PREFIX, user), token, body).await
}

async fn patch_user(app: &TestApp, user: &str, token: &str, body: &Value) -> Answer {
    app.request_json(Method::PATCH, &user_path(PREFIX, user), token, body)
        .await
}

async fn revoke(app: &TestApp, caller: &str, form: &[(&str, &str)]) -> Answer {
    let response = app
        .client
        .post(app.url(REVOCATION))
        .bearer_auth(caller)
        .form(form)
        .send()
        .await
        .expect("sending a revocation");
    Answer::read(response).await
}

#[apply(backends)]
#[tokio::test]
async fn the_committed_defaults_admit_nobody_and_a_first_start_makes_its_own_secrets(
    backend: Backend,
) {
    let unset = [
        ("MEMBERSHIP_ADMIN_CLIENT_SECRET", UNSET),
        ("MEMBERSHIP_TOKEN_SECRET", UNSET),
    ];
    let mut app = TestApp::spawn_on(backend, &unset).await;
    let secret = app
        .printed_client_secret()
        .expect("the first start prints the secret");
    assert_eq!(secret.len(), 64, "256 bits as hex: {secret}");
    assert_eq!(app.client_secret(), secret, "as kept in secrets.json");
    let secrets = app.data_dir().join("secrets.json");
    assert_eq!(mode(&secrets), 0o600);
    let seed = app.seed().await;
    let user_token = app.token_for(SEED_USERNAME, SEED_PASSWORD).await;
    app.appends_nothing(async {
        let committed = client_grant(&app.client, &app, COMMITTED_CLIENT_SECRET).await;
        assert_eq!(committed.oauth_error(), "invalid_client");
        // A token like the user's own (its first password, never suspended), signed with the
        // key the committed configuration had.
        let mut claims = claims_of(&user_token);
        assert_eq!(claims["sub"], seed.user_id.to_string());
        claims["jti"] = json!(uuid::Uuid::new_v4());
        let forged = sign_claims(COMMITTED_TOKEN_SECRET, &claims);
        current_user(&app, &forged).await.assert_unauthorized();
        current_user(&app, &user_token).await.assert_status(200);
    })
    .await;

    // The generated secrets are kept: a restart takes the same client secret, prints it
    // no more, and the old tokens still verify.
    let token = app.admin_token.clone();
    app.restart().await;
    assert_eq!(
        app.printed_client_secret(),
        None,
        "{:?}",
        app.startup_output
    );
    assert!(
        (app.startup_output.iter()).any(|line| line.contains("secrets.json")),
        "{:?}",
        app.startup_output
    );
    assert_eq!(app.client_secret(), secret);
    current_user(&app, &token).await.assert_status(200);
    current_user(&app, &user_token).await.assert_status(200);
    client_grant(&app.client, &app, &secret)
        .await
        .access_token();
}

#[apply(backends)]
#[tokio::test]
async fn a_configured_secret_shorter_than_32_bytes_is_refused_at_start(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for name in ["MEMBERSHIP_ADMIN_CLIENT_SECRET", "MEMBERSHIP_TOKEN_SECRET"] {
        let mut child = app
            .command(&["serve"])
            .env("MEMBERSHIP_HTTP_ADDR", "127.0.0.1:0")
            .env(name, "x".repeat(31))
            .spawn()
            .expect("running membershipd serve");
        // A service that started anyway would never exit: give it a bound, then stop it.
        let exited = eventually_or_none(Duration::from_secs(20), || {
            let exited = child.try_wait().expect("waiting for membershipd");
            async move { exited }
        })
        .await;
        if exited.is_none() {
            let _ = child.kill();
        }
        let output = child.wait_with_output().expect("its output");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(exited.is_some(), "it served with a short {name}: {stderr}");
        assert!(!output.status.success(), "{stderr}");
        let error: Vec<&str> = stderr.lines().filter(|l| l.contains(name)).collect();
        assert_eq!(error.len(), 1, "{stderr}");
        assert!(error[0].contains("at least 32 bytes"), "{stderr}");
    }
}

#[apply(backends)]
#[tokio::test]
async fn the_data_dir_and_every_file_in_it_are_for_the_owner_only(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    app.seed().await;
    assert_owner_only(&app.data_dir());

    // A data dir that others may read is tightened at the next start, files and all.
    app.stop();
    let dir = app.data_dir();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    app.start().await;
    assert_owner_only(&dir);

    let rebuilt = app.command(&["rebuild"]).output().expect("running rebuild");
    assert!(rebuilt.status.success(), "{rebuilt:?}");
    assert_eq!(mode(&dir.join("read.rebuilt.db")), 0o600);
    assert_owner_only(&dir);
}

#[apply(backends)]
#[tokio::test]
async fn failed_logins_past_the_budget_answer_429_before_any_hashing(backend: Backend) {
    let budget = [("MEMBERSHIP_LOGINS_FAILURES_PER_NAME_MAX", "3")];
    let app = TestApp::spawn_on(backend, &budget).await;
    let secret = app.client_secret();
    for _ in 0..3 {
        let wrong = client_grant(&app.client, &app, "not-the-secret").await;
        assert_eq!(wrong.oauth_error(), "invalid_client");
    }

    // Even the right secret waits now: the count is refused before it is checked.
    let refused = client_grant(&app.client, &app, &secret).await;
    refused.assert_oauth_error(429, "slow_down");
    let retry_after: u64 = refused
        .header("retry-after")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", refused.headers));
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(refused.json()["error_description"].is_string());

    // The owner, from another address, is not refused for someone else's guesses.
    let elsewhere = TestApp::client_from(SECOND);
    client_grant(&elsewhere, &app, &secret).await.access_token();

    // Usernames are counted alike, case-insensitively; a success clears its own count.
    app.seed().await;
    for _ in 0..2 {
        let wrong = app.password_grant("TDurden", "not-the-password").await;
        assert_eq!(wrong.oauth_error(), "invalid_grant");
    }
    app.token_for(SEED_USERNAME, SEED_PASSWORD).await;
    for _ in 0..3 {
        let wrong = app.password_grant(SEED_USERNAME, "not-the-password").await;
        assert_eq!(wrong.oauth_error(), "invalid_grant");
    }
    let refused = app.password_grant(SEED_USERNAME, SEED_PASSWORD).await;
    refused.assert_oauth_error(429, "slow_down");
    // By email it is the same user, and the same count.
    let refused = app.password_grant(SEED_EMAIL, SEED_PASSWORD).await;
    refused.assert_oauth_error(429, "slow_down");
}

#[apply(backends)]
#[tokio::test]
async fn guessing_the_existing_password_with_a_token_is_throttled_like_a_login(backend: Backend) {
    let budget = [("MEMBERSHIP_LOGINS_FAILURES_PER_NAME_MAX", "3")];
    let app = TestApp::spawn_on(backend, &budget).await;
    let token = member(&app).await;
    let path = format!("{PREFIX}/users/@current/credentials/password");
    let guess = json!({ "existing": "a-wrong-guess", "new": "a-new-password" });
    app.appends_nothing(async {
        for _ in 0..3 {
            app.post_json(&path, &token, &guess)
                .await
                .assert_error(409, "ExistingPasswordInvalid");
        }
        let right = json!({ "existing": SEED_PASSWORD, "new": "a-new-password" });
        let refused = app.post_json(&path, &token, &right).await;
        refused.assert_error(429, "TooManyRequests");
        assert!(
            refused.header("retry-after").is_some(),
            "{:?}",
            refused.headers
        );
    })
    .await;
    // And a login as that user from the same address waits too.
    let login = app.password_grant(SEED_USERNAME, SEED_PASSWORD).await;
    login.assert_oauth_error(429, "slow_down");
}

#[apply(backends)]
#[tokio::test]
async fn a_flood_of_wrong_secrets_from_one_address_leaves_logins_from_another_alone(
    backend: Backend,
) {
    // Budgets out of reach, so that every wrong secret is hashed: this is about sharing
    // the hashers, not about throttling.
    let unlimited = [
        ("MEMBERSHIP_LOGINS_FAILURES_PER_NAME_MAX", "1000000"),
        ("MEMBERSHIP_LOGINS_FAILURES_PER_ADDRESS_MAX", "1000000"),
    ];
    let app = Arc::new(TestApp::spawn_on(backend, &unlimited).await);
    let done = Arc::new(AtomicBool::new(false));
    let mut flood = tokio::task::JoinSet::new();
    // More connections than the whole hashing queue holds: without a share per address,
    // the flood alone would fill it and the other address would be turned away.
    for _ in 0..FLOOD_CONNECTIONS {
        let (app, done) = (app.clone(), done.clone());
        flood.spawn(async move {
            let mut answered = Vec::new();
            // Bounded: the legitimate logins below take well under this many rounds.
            for _ in 0..500 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                let wrong = client_grant(&app.client, &app, "not-the-secret").await;
                answered.push(wrong.status.as_u16());
                if wrong.status == 503 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            answered
        });
    }
    // Let the flood fill the hashers and their queue first.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let elsewhere = TestApp::client_from(SECOND);
    let secret = app.client_secret();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(
            client_grant(&elsewhere, &app, &secret)
                .await
                .status
                .as_u16(),
        );
    }
    done.store(true, Ordering::Relaxed);
    let flooded: Vec<u16> = flood.join_all().await.into_iter().flatten().collect();

    assert_eq!(statuses, vec![200; 20], "logins from 127.0.0.2");
    assert!(
        flooded.len() >= FLOOD_CONNECTIONS,
        "the flood sent {} requests",
        flooded.len()
    );
    assert!(
        flooded.iter().all(|s| [400, 503].contains(s)),
        "the flood got {flooded:?}"
    );
    assert!(flooded.contains(&503), "the flood was never held back");
}

#[apply(backends)]
#[tokio::test]
async fn a_token_stops_when_its_password_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = member(&app).await;
    current_user(&app, &token).await.assert_status(200);
    let path = format!("{PREFIX}/users/{SEED_USERNAME}/credentials/password");

    let changed = app
        .post_json(&path, &app.admin_token, &json!({ "new": "a-new-password" }))
        .await;
    changed.assert_status(200);

    current_user(&app, &token).await.assert_unauthorized();
    let again = app.token_for(SEED_USERNAME, "a-new-password").await;
    current_user(&app, &again).await.assert_status(200);
    // Set to the same password again: a new version, and the last token stops too.
    let same = app
        .post_json(&path, &app.admin_token, &json!({ "new": "a-new-password" }))
        .await;
    same.assert_status(200);
    current_user(&app, &again).await.assert_unauthorized();
}

#[apply(backends)]
#[tokio::test]
async fn a_token_stops_when_its_user_is_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = member(&app).await;
    app.delete(&user_path(PREFIX, SEED_USERNAME), &app.admin_token)
        .await
        .assert_no_content();

    current_user(&app, &token).await.assert_unauthorized();
    let login = app.password_grant(SEED_USERNAME, SEED_PASSWORD).await;
    assert_eq!(login.oauth_error(), "invalid_grant");
}

#[apply(backends)]
#[tokio::test]
async fn a_token_stops_when_the_client_secret_is_rotated(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let old = app.admin_token.clone();
    let rotated = "a-rotated-client-secret-of-the-integration-tests";
    app.set_env("MEMBERSHIP_ADMIN_CLIENT_SECRET", rotated);
    app.restart().await;

    app.request(Method::GET, &user_path(PREFIX, "@current"), &old)
        .await
        .assert_unauthorized();
    let refused = client_grant(&app.client, &app, CLIENT_SECRET).await;
    assert_eq!(refused.oauth_error(), "invalid_client");
    let new = client_grant(&app.client, &app, rotated)
        .await
        .access_token();
    current_user(&app, &new).await.assert_status(200);
}

#[apply(backends)]
#[tokio::test]
async fn a_suspended_user_gets_no_token_and_its_tokens_stop_but_it_keeps_its_groups(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let token = member(&app).await;
    let suspend = json!({ "status": { "suspended": true } });

    let answer = patch_user(&app, SEED_USERNAME, &app.admin_token, &suspend).await;
    answer.assert_status(200);
    assert_eq!(answer.json()["status"]["suspended"], true);

    assert_eq!(app.count_of("UserSuspended"), 1);
    current_user(&app, &token).await.assert_unauthorized();
    let login = app.password_grant(SEED_USERNAME, SEED_PASSWORD).await;
    assert_eq!(login.oauth_error(), "invalid_grant");
    let group = encode(SEED_GROUP);
    assert_eq!(app.head_member(&group, SEED_USERNAME).await, 204);

    // Suspending again changes nothing and appends nothing.
    app.appends_nothing(patch_user(&app, SEED_USERNAME, &app.admin_token, &suspend))
        .await
        .assert_status(200);

    // Reinstated (here by PUT of the whole user), it logs in again; the token it held
    // before its suspension stays stopped.
    let mut user = app.get_json(&user_path(PREFIX, SEED_USERNAME)).await;
    user["status"]["suspended"] = json!(false);
    put_user(&app, SEED_USERNAME, &app.admin_token, &user)
        .await
        .assert_status(200);
    assert_eq!(app.count_of("UserReinstated"), 1);
    let fresh = app.token_for(SEED_USERNAME, SEED_PASSWORD).await;
    current_user(&app, &fresh).await.assert_status(200);
    current_user(&app, &token).await.assert_unauthorized();
}

#[apply(backends)]
#[tokio::test]
async fn nobody_suspends_itself_and_the_last_active_administrator_stays(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("hadmin", "h.admin@fightclub.com", Some(SEED_PASSWORD))
        .await;
    app.create_user("madmin", "m.admin@fightclub.com", Some(SEED_PASSWORD))
        .await;
    let admins = encode(ADMINISTRATORS);
    app.add_member(&admins, "hadmin").await;
    app.add_member(&admins, "madmin").await;
    let h = app.token_for("hadmin", SEED_PASSWORD).await;
    let suspend = json!({ "status": { "suspended": true } });
    let account = SERVICE_ACCOUNT;
    app.appends_nothing(async {
        patch_user(&app, "hadmin", &h, &suspend)
            .await
            .assert_error(403, "OwnStatus");
        patch_user(&app, account, &app.admin_token, &suspend)
            .await
            .assert_error(403, "OwnStatus");
    })
    .await;

    // With madmin suspended and the service account gone from the group, hadmin is the
    // last administrator who counts.
    patch_user(&app, "madmin", &h, &suspend)
        .await
        .assert_status(200);
    app.delete(&membership_path(PREFIX, &admins, account), &h)
        .await
        .assert_no_content();
    let path = membership_path(PREFIX, &admins, "hadmin");
    let answer = app.appends_nothing(app.delete(&path, &h)).await;
    answer.assert_error(409, "LastAdministrator");
}

#[apply(backends)]
#[tokio::test]
async fn a_suspended_flag_that_is_not_a_boolean_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    app.appends_nothing(async {
        for status in [
            json!({ "suspended": "yes" }),
            json!({ "suspended": 1 }),
            json!({ "locked": true }),
            json!("suspended"),
        ] {
            let body = json!({ "status": status });
            let answer = patch_user(&app, SEED_USERNAME, &app.admin_token, &body).await;
            answer.assert_error(422, "ValidationFailed");
        }
        let created = app
            .try_create_user(&json!({
                "username": "msinger", "email": "m.singer@fightclub.com",
                "status": { "suspended": true },
            }))
            .await;
        created.assert_error(422, "ValidationFailed");
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn a_revoked_token_answers_401_and_revoking_it_again_appends_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let one = member(&app).await;
    let two = app.token_for(SEED_USERNAME, SEED_PASSWORD).await;

    revoke(
        &app,
        &two,
        &[("token", &one), ("token_type_hint", "access_token")],
    )
    .await
    .assert_status(200);
    current_user(&app, &one).await.assert_unauthorized();
    current_user(&app, &two).await.assert_status(200);
    let revoked = app.events_of("TokenRevoked");
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        revoked[0].table, "credentials",
        "never on the events stream"
    );
    assert_eq!(
        revoked[0].payload["data"]["tokenId"],
        claims_of(&one)["jti"]
    );

    app.appends_nothing(revoke(&app, &two, &[("token", &one)]))
        .await
        .assert_status(200);

    // A caller may revoke the token it calls with; then that token is done too.
    revoke(&app, &two, &[("token", &two)])
        .await
        .assert_status(200);
    current_user(&app, &two).await.assert_unauthorized();
}

#[apply(backends)]
#[tokio::test]
async fn revoking_a_malformed_foreign_or_others_token_is_refused_and_changes_nothing(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let user = member(&app).await;
    let now = now_s();
    let foreign = sign_token(
        "a-secret-of-some-other-service-entirely!!",
        claims_of(&user)["sub"].as_str().unwrap().parse().unwrap(),
        now,
        now + 600,
    );
    app.appends_nothing(async {
        (revoke(&app, &user, &[]).await).assert_oauth_error(400, "invalid_request");
        (revoke(&app, &user, &[("token", "not.a.token")]).await)
            .assert_oauth_error(400, "invalid_request");
        (revoke(&app, &user, &[("token", &foreign)]).await)
            .assert_oauth_error(400, "invalid_request");
        (revoke(&app, &user, &[("token", &app.admin_token)]).await)
            .assert_oauth_error(403, "access_denied");
        let hint = [
            ("token", user.as_str()),
            ("token_type_hint", "refresh_token"),
        ];
        (revoke(&app, &user, &hint).await).assert_oauth_error(400, "unsupported_token_type");
        revoke(&app, "not.a.token", &[("token", &user)])
            .await
            .assert_unauthorized();
    })
    .await;
    current_user(&app, &user).await.assert_status(200);
    current_user(&app, &app.admin_token)
        .await
        .assert_status(200);
}

#[apply(backends)]
#[tokio::test]
async fn a_put_or_patch_that_changes_nothing_appends_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = member(&app).await;
    let user = app.get_json(&user_path(PREFIX, SEED_USERNAME)).await;
    let path = group_path(PREFIX, SEED_GROUP);
    let group = app.get_json(&path).await;
    let before = app.log_len();
    app.appends_nothing(async {
        for _ in 0..3 {
            let answer = put_user(&app, SEED_USERNAME, &token, &user).await;
            answer.assert_status(200);
            assert_eq!(answer.json(), user);
            patch_user(&app, SEED_USERNAME, &token, &json!({}))
                .await
                .assert_status(200);
            patch_user(
                &app,
                SEED_USERNAME,
                &token,
                &json!({ "email": user["email"] }),
            )
            .await
            .assert_status(200);
            let answer = app.put(&path, &app.admin_token, &group).await;
            answer.assert_status(200);
            assert_eq!(answer.json(), group);
        }
    })
    .await;

    // A real change still is one.
    let renamed = json!({ "firstname": "Tyler J." });
    patch_user(&app, SEED_USERNAME, &token, &renamed)
        .await
        .assert_status(200);
    assert_eq!(app.log_len(), before + 1);
}

#[apply(backends)]
#[tokio::test]
async fn tokens_are_not_cached_and_nothing_is_sniffed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app.client_secret();
    let granted = client_grant(&app.client, &app, &secret).await;
    granted.assert_status(200);
    assert_eq!(granted.header("cache-control"), Some("no-store"));
    assert_eq!(granted.header("pragma"), Some("no-cache"));
    let refused = client_grant(&app.client, &app, "not-the-secret").await;
    assert_eq!(refused.header("cache-control"), Some("no-store"));

    for answer in [
        granted,
        refused,
        app.request(Method::GET, "/health", ANONYMOUS).await,
        app.request(Method::GET, &user_path(PREFIX, "@current"), ANONYMOUS)
            .await,
        app.request(Method::GET, "/no/such/route", ANONYMOUS).await,
        current_user(&app, &app.admin_token).await,
    ] {
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{} {:?}",
            answer.status,
            answer.headers
        );
    }
}

#[apply(backends)]
#[tokio::test]
async fn tokens_carry_iat_jti_and_the_configured_audience(backend: Backend) {
    let audience = "https://membership.test";
    let app = TestApp::spawn_on(backend, &[("MEMBERSHIP_TOKEN_AUDIENCE", audience)]).await;
    let claims = claims_of(&app.admin_token);
    assert_eq!(claims["aud"], audience);
    assert!(claims["iat"].as_u64().is_some(), "{claims}");
    assert!(
        claims["jti"].as_str().is_some_and(|j| j.len() == 36),
        "{claims}"
    );
    current_user(&app, &app.admin_token)
        .await
        .assert_status(200);

    // The same claims signed with the right key stand; without the audience they do not.
    let same = sign_claims(TOKEN_SECRET, &claims);
    current_user(&app, &same).await.assert_status(200);
    let mut without = claims.clone();
    without.as_object_mut().unwrap().remove("aud");
    let without = sign_claims(TOKEN_SECRET, &without);
    current_user(&app, &without).await.assert_unauthorized();
}

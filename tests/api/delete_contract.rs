//! Every row of the DELETE contract, in the order the checks run. Each refusal answers
//! the Error body with its `data.code` and appends nothing to the log.

use std::collections::HashSet;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::json;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::helpers::{
    ADMINISTRATORS, ANONYMOUS, Answer, Backend, PREFIX, SEED_EMAIL, SEED_GROUP, SEED_PASSWORD,
    SEED_USERNAME, SERVICE_ACCOUNT, SERVICE_ACCOUNT_EMAIL, SETTLE_TIMEOUT, TOKEN_SECRET, TestApp,
    assert_uuid, backends, claims_of, encode, eventually, eventually_or_none, membership_path,
    now_s, sign_claims, sign_token,
};

/// A user who exists but is not in System Administrators.
const OUTSIDER: &str = "marla";

async fn delete_with_authorization(app: &TestApp, path: &str, authorization: &str) -> Answer {
    let response = app
        .client
        .delete(app.url(path))
        .header(reqwest::header::AUTHORIZATION, authorization)
        .send()
        .await
        .expect("sending a request");
    Answer::read(response).await
}

fn seed_path() -> String {
    membership_path(PREFIX, &encode(SEED_GROUP), SEED_USERNAME)
}

// ---- 401 --------------------------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn removing_without_a_token_is_unauthorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let answer = app
        .appends_nothing(app.delete(&seed_path(), ANONYMOUS))
        .await;
    answer.assert_unauthorized();
    assert_eq!(
        app.head_member(&encode(SEED_GROUP), SEED_USERNAME).await,
        204
    );
}

#[apply(backends)]
#[tokio::test]
async fn removing_with_a_missing_or_garbage_authorization_header_is_unauthorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let basic = format!("Basic {}", "dXNlcjpwYXNz");
    let no_scheme = app.admin_token.clone();
    let wrong_scheme = format!("Token {}", app.admin_token);
    app.appends_nothing(async {
        for authorization in [
            "",
            "Bearer",
            "Bearer ",
            "Bearer not-a-token",
            "Bearer a.b.c",
            basic.as_str(),
            no_scheme.as_str(),
            wrong_scheme.as_str(),
        ] {
            let answer = delete_with_authorization(&app, &seed_path(), authorization).await;
            answer.assert_unauthorized();
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn removing_with_an_expired_token_is_unauthorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let now = now_s();
    let mut claims = claims_of(&app.admin_token);
    claims["iat"] = json!(now - 7200);
    claims["exp"] = json!(now - 3600);
    let expired = sign_claims(TOKEN_SECRET, &claims);
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 3600);
    let fresh = sign_claims(TOKEN_SECRET, &claims);

    let path = seed_path();
    let answer = (app.appends_nothing(app.delete(&path, &expired))).await;

    answer.assert_unauthorized();
    // The same claims, unexpired and signed alike, are accepted: only the expiry differs.
    let path = membership_path(PREFIX, &seed.group_id.to_string(), SEED_USERNAME);
    let answer = app.request(Method::HEAD, &path, &fresh).await;
    answer.assert_status(204);
}

#[apply(backends)]
#[tokio::test]
async fn removing_with_a_token_signed_with_another_secret_is_unauthorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let admin = assert_uuid(&app.events_of("UserCreated")[0].payload["data"]["userId"]);
    let now = now_s();
    let forged = sign_token(
        "another-secret-that-is-also-long-enough!!",
        admin,
        now,
        now + 3600,
    );
    let answer = app.appends_nothing(app.delete(&seed_path(), &forged)).await;
    answer.assert_unauthorized();
}

#[apply(backends)]
#[tokio::test]
async fn a_missing_token_is_refused_before_a_broken_identifier_is_looked_at(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let path = membership_path(PREFIX, "%zz", "%0A");
    let answer = app.appends_nothing(app.delete(&path, ANONYMOUS)).await;
    answer.assert_unauthorized();
}

// ---- 400 --------------------------------------------------------------------------

/// Removing `user` from `group` (as they go in the path) is a 400 `InvalidIdentifier`
/// naming `parameter`, and appends nothing.
#[track_caller]
fn assert_invalid_identifier<'a>(
    app: &'a TestApp,
    group: &'a str,
    user: &'a str,
    parameter: &'a str,
) -> impl Future<Output = ()> + 'a {
    let caller = Location::caller();
    // Made here, so that a log that grew names the test's line.
    let removal = app.appends_nothing(app.remove_member(group, user));
    async move {
        let answer = removal.await;
        let data = answer.expect_error(400, "InvalidIdentifier", caller);
        assert_eq!(
            data["parameter"], parameter,
            "DELETE groups/{group}/users/{user} (at {caller})"
        );
    }
}

#[apply(backends)]
#[tokio::test]
async fn an_identifier_longer_than_254_characters_is_invalid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let long = "a".repeat(255);
    assert_invalid_identifier(&app, &long, SEED_USERNAME, "groupIdentifier").await;
    assert_invalid_identifier(&app, &encode(SEED_GROUP), &long, "userIdentifier").await;
    let long_email = format!("{}@fightclub.com", "a".repeat(241));
    assert_eq!(long_email.len(), 255);
    assert_invalid_identifier(&app, &encode(SEED_GROUP), &long_email, "userIdentifier").await;
}

#[apply(backends)]
#[tokio::test]
async fn an_identifier_of_254_characters_is_looked_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let email = format!("{}@fightclub.com", "a".repeat(240));
    assert_eq!(email.len(), 254);
    let answer = app
        .appends_nothing(app.remove_member(&encode(SEED_GROUP), &email))
        .await;
    answer.assert_error(404, "UserNotFound");
}

#[apply(backends)]
#[tokio::test]
async fn an_identifier_with_control_characters_is_invalid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    for control in ["%0A", "%00", "%07", "%7F", "tdur%0Aden", "tdurden%0D%0A"] {
        assert_invalid_identifier(&app, &encode(SEED_GROUP), control, "userIdentifier").await;
        assert_invalid_identifier(&app, control, SEED_USERNAME, "groupIdentifier").await;
    }
}

#[apply(backends)]
#[tokio::test]
async fn an_identifier_with_broken_percent_encoding_is_invalid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    // `%zz` and a lone `%` are not escapes; `%FF` and `%C3%28` are not UTF-8.
    for broken in ["%zz", "tdurden%", "tdurden%4", "%FF", "%C3%28", "%E2%82"] {
        assert_invalid_identifier(&app, &encode(SEED_GROUP), broken, "userIdentifier").await;
        assert_invalid_identifier(&app, broken, SEED_USERNAME, "groupIdentifier").await;
    }
    assert_eq!(
        app.head_member(&encode(SEED_GROUP), SEED_USERNAME).await,
        204
    );
}

/// Valid text that no resource could be created with is looked up, and not found: only
/// empty, overlong or unprintable identifiers are a 400.
#[apply(backends)]
#[tokio::test]
async fn an_identifier_no_resource_could_have_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let group = encode(SEED_GROUP);
    app.appends_nothing(async {
        app.remove_member(&group, "%20tdurden")
            .await
            .assert_error(404, "UserNotFound");
        app.remove_member(&group, "a@")
            .await
            .assert_error(404, "UserNotFound");
        app.remove_member("Paper%20Street%20", SEED_USERNAME)
            .await
            .assert_error(404, "GroupNotFound");
    })
    .await;
}

/// The contract says an empty identifier is a 400 `InvalidIdentifier`.
#[apply(backends)]
#[tokio::test]
async fn an_empty_user_identifier_is_invalid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    assert_invalid_identifier(&app, &encode(SEED_GROUP), "", "userIdentifier").await;
}

/// A trailing slash leaves the user identifier empty. The service must refuse it, not
/// read other segments of the path as the identifiers: here it would take the literal
/// segments `groups` and `users` as the group and the user.
#[apply(backends)]
#[tokio::test]
async fn an_empty_user_identifier_never_touches_another_membership(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    app.create_group("groups").await;
    app.create_user("users", "users@fightclub.com", None).await;
    app.add_member("groups", "users").await;
    app.appends_nothing(async {
        for method in [Method::DELETE, Method::PUT] {
            let path = format!("{PREFIX}/groups/{}/users/", encode(SEED_GROUP));
            let answer = app.request(method.clone(), &path, &app.admin_token).await;
            assert_eq!(
                answer.status, 400,
                "{method} {path} answered {}: {}",
                answer.status, answer.text
            );
        }

        assert_eq!(
            app.head_member("groups", "users").await,
            204,
            "the wrong membership was removed"
        );
    })
    .await;
}

/// The contract says an empty identifier is a 400 `InvalidIdentifier`.
#[apply(backends)]
#[tokio::test]
async fn an_empty_group_identifier_is_invalid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    assert_invalid_identifier(&app, "", SEED_USERNAME, "groupIdentifier").await;
}

#[apply(backends)]
#[tokio::test]
async fn a_broken_identifier_is_refused_before_the_caller_is_authorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.user_with_token(OUTSIDER).await.token;
    let path = membership_path(PREFIX, "%zz", SEED_USERNAME);
    let answer = app.appends_nothing(app.delete(&path, &token)).await;
    let data = answer.assert_error(400, "InvalidIdentifier");
    assert_eq!(data["parameter"], "groupIdentifier");
}

// ---- 403 --------------------------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn removing_as_a_user_who_is_not_an_administrator_is_forbidden(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let token = app.user_with_token(OUTSIDER).await.token;
    let answer = app.appends_nothing(app.delete(&seed_path(), &token)).await;
    answer.assert_error(403, "Forbidden");
    assert_eq!(
        app.head_member(&encode(SEED_GROUP), SEED_USERNAME).await,
        204
    );
}

#[apply(backends)]
#[tokio::test]
async fn a_non_administrator_is_forbidden_before_the_group_is_looked_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.user_with_token(OUTSIDER).await.token;
    let path = membership_path(PREFIX, "No%20Such%20Group", "nobody");
    let answer = app.appends_nothing(app.delete(&path, &token)).await;
    answer.assert_error(403, "Forbidden");
}

#[apply(backends)]
#[tokio::test]
async fn a_token_of_a_user_that_does_not_exist_is_unauthorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let now = now_s();
    let stranger = sign_token(TOKEN_SECRET, Uuid::new_v4(), now, now + 600);
    let answer = app
        .appends_nothing(app.delete(&seed_path(), &stranger))
        .await;
    answer.assert_unauthorized();
}

#[apply(backends)]
#[tokio::test]
async fn leaving_system_administrators_takes_away_the_right_to_remove_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let token = app.user_with_token(OUTSIDER).await.token;
    let admins = encode(ADMINISTRATORS);
    app.add_member(&admins, OUTSIDER).await;
    let path = membership_path(PREFIX, &encode(SEED_GROUP), SEED_USERNAME);
    app.delete(&path, &token).await.assert_no_content();
    app.add_member(&encode(SEED_GROUP), SEED_USERNAME).await;

    app.remove_member(&admins, OUTSIDER)
        .await
        .assert_no_content();

    let answer = app.appends_nothing(app.delete(&path, &token)).await;
    answer.assert_error(403, "Forbidden");
}

// ---- 404 --------------------------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn removing_from_a_group_that_does_not_exist_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let unknown_id = Uuid::new_v4().to_string();
    let user_id = seed.user_id.to_string();
    app.appends_nothing(async {
        for (group, user) in [
            (unknown_id.as_str(), user_id.as_str()),
            ("Lou%27s%20Tavern", SEED_USERNAME),
            ("Lou%27s%20Tavern", SEED_EMAIL),
            // Both unknown: the group is checked first.
            ("Lou%27s%20Tavern", "nobody"),
        ] {
            let answer = app.remove_member(group, user).await;
            answer.assert_error(404, "GroupNotFound");
        }
    })
    .await;
}

#[apply(backends)]
#[tokio::test]
async fn removing_a_user_who_does_not_exist_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let unknown_id = Uuid::new_v4().to_string();
    let group = seed.group_id.to_string();
    app.appends_nothing(async {
        for user in [
            unknown_id.as_str(),
            "robert.paulson",
            "bob@fightclub.com",
            // Ids never match a username or email, and the other way round.
            "t.durden",
        ] {
            let answer = app.remove_member(&group, user).await;
            answer.assert_error(404, "UserNotFound");
        }
    })
    .await;
}

// ---- 409 --------------------------------------------------------------------------

#[apply(backends)]
#[tokio::test]
async fn removing_a_user_who_is_not_a_member_is_a_conflict(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    app.create_group("Project Mayhem").await;
    let answer = app
        .appends_nothing(app.remove_member("Project%20Mayhem", SEED_USERNAME))
        .await;
    let data = answer.assert_error(409, "UserNotInGroup");
    assert!(
        data.get("inheritedThrough").is_none(),
        "a plain non-member names no child group: {data}"
    );
}

#[apply(backends)]
#[tokio::test]
async fn removing_the_same_member_twice_is_a_conflict_the_second_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let group = encode(SEED_GROUP);
    app.remove_member(&group, SEED_USERNAME)
        .await
        .assert_no_content();
    let answer = app
        .appends_nothing(app.remove_member(&group, SEED_USERNAME))
        .await;
    answer.assert_error(409, "UserNotInGroup");
}

#[apply(backends)]
#[tokio::test]
async fn removing_the_last_administrator_is_a_conflict(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admins = encode(ADMINISTRATORS);
    app.appends_nothing(async {
        for user in [SERVICE_ACCOUNT, SERVICE_ACCOUNT_EMAIL] {
            let answer = app.remove_member(&admins, user).await;
            answer.assert_error(409, "LastAdministrator");
        }
    })
    .await;
    assert_eq!(app.head_member(&admins, SERVICE_ACCOUNT).await, 204);
}

#[apply(backends)]
#[tokio::test]
async fn an_administrator_may_be_removed_while_another_remains(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let admins = encode(ADMINISTRATORS);
    app.add_member(&admins, SEED_USERNAME).await;
    let tyler = app.token_for(SEED_USERNAME, SEED_PASSWORD).await;

    app.remove_member(&admins, SERVICE_ACCOUNT)
        .await
        .assert_no_content();

    // Now Tyler is the last one, and the rule protects him too.
    let path = membership_path(PREFIX, &admins, SEED_USERNAME);
    let answer = app.appends_nothing(app.delete(&path, &tyler)).await;
    answer.assert_error(409, "LastAdministrator");
}

#[apply(backends)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_removals_of_one_membership_succeed_exactly_once(backend: Backend) {
    const REQUESTS: usize = 32;
    let app = Arc::new(TestApp::spawn(backend).await);
    let seed = app.seed().await;
    let group = seed.group_id.to_string();
    let removed_before = app.count_of("MemberRemoved");

    let mut requests = JoinSet::new();
    for _ in 0..REQUESTS {
        let (app, group) = (app.clone(), group.clone());
        requests.spawn(async move { app.remove_member(&group, SEED_USERNAME).await });
    }
    let answers = requests.join_all().await;

    let succeeded = answers.iter().filter(|a| a.status == 204).count();
    assert_eq!(succeeded, 1, "exactly one removal succeeds");
    let mut lost_races = HashSet::new();
    for answer in answers.iter().filter(|a| a.status != 204) {
        answer.assert_status(409);
        let body = answer.json();
        match body["data"]["code"].as_str() {
            Some("UserNotInGroup") => {
                answer.assert_error(409, "UserNotInGroup");
            }
            Some("ConcurrentModification") => {
                let data = answer.assert_error(409, "ConcurrentModification");
                assert_eq!(data["reason"], "UserNotInGroup", "{body}");
                lost_races.insert(assert_uuid(&data["eventId"]).to_string());
            }
            _ => panic!("unexpected answer to a racing removal: {body}"),
        }
    }
    let removed: Vec<_> = app.events_of("MemberRemoved");
    assert_eq!(
        removed.len() - removed_before,
        1 + lost_races.len(),
        "one MemberRemoved per success and per lost race"
    );
    let logged: HashSet<String> = removed.iter().map(|e| e.event_id.clone()).collect();
    assert!(
        lost_races.is_subset(&logged),
        "every lost race names an event that is in the log"
    );
    assert_eq!(app.head_member(&group, SEED_USERNAME).await, 404);
    eprintln!(
        "{REQUESTS} racing removals: 1 applied, {} lost a race, {} refused up front",
        lost_races.len(),
        REQUESTS - 1 - lost_races.len()
    );
}

// ---- 503 --------------------------------------------------------------------------

/// Embedded only: a second writer holding log.db's lock is what makes the log slow here.
#[tokio::test]
async fn a_removal_the_log_cannot_take_in_time_is_unavailable_and_lands_later_embedded() {
    let app = TestApp::spawn_on(Backend::Embedded, &[("MEMBERSHIP_WAIT_TIMEOUT_MS", "1000")]).await;
    let seed = app.seed().await;
    let group = seed.group_id.to_string();
    let lock = app.lock_log();

    let answer = app.remove_member(&group, SEED_USERNAME).await;

    let data = answer.assert_error(503, "Unavailable");
    let retry_after = answer.header("retry-after").expect("a Retry-After header");
    assert!(
        retry_after.parse::<u32>().is_ok(),
        "Retry-After: {retry_after}"
    );
    let event_id = assert_uuid(&data["eventId"]).to_string();
    // Reads do not need the log: they still answer, from the read model as it was.
    assert_eq!(app.head_member(&group, SEED_USERNAME).await, 204);
    let members = app.list_members(&group).await;
    assert_eq!(members["totalCount"], 1, "{members}");

    lock.release();

    eventually(
        "the removal to land after the lock",
        SETTLE_TIMEOUT,
        || async { (app.head_member(&group, SEED_USERNAME).await == 404).then_some(()) },
    )
    .await;
    let removed = app.events_of("MemberRemoved");
    assert_eq!(removed.len(), 1, "{removed:#?}");
    assert_eq!(removed[0].event_id, event_id, "the event the 503 named");
    // And the service goes on as usual.
    app.add_member(&group, SEED_USERNAME).await;
    app.remove_member(&group, SEED_USERNAME)
        .await
        .assert_no_content();
    assert_eq!(app.count_of("MemberRemoved"), 2);
}

/// Longer than the log writer's busy timeout (1 s), so that its first writes fail and it
/// has to retry.
const LONG_LOCK: Duration = Duration::from_secs(3);

/// A 503 names the event and says it may still land, so the event must not be dropped
/// when the log stays locked for longer than the writer's busy timeout. Embedded only: the
/// lock is log.db's.
#[tokio::test]
async fn the_event_a_503_names_lands_even_after_a_long_lock_embedded() {
    let app = TestApp::spawn_on(Backend::Embedded, &[("MEMBERSHIP_WAIT_TIMEOUT_MS", "1000")]).await;
    let seed = app.seed().await;
    let group = seed.group_id.to_string();
    let lock = app.lock_log();

    let answer = app.remove_member(&group, SEED_USERNAME).await;
    let data = answer.assert_error(503, "Unavailable");
    let event_id = assert_uuid(&data["eventId"]).to_string();
    // Holding the lock this long is the input of the test, not a wait for a condition.
    tokio::time::sleep(LONG_LOCK).await;
    lock.release();

    let landed = eventually_or_none(SETTLE_TIMEOUT, || {
        let found = app
            .events_of("MemberRemoved")
            .iter()
            .any(|e| e.event_id == event_id);
        async move { found.then_some(()) }
    })
    .await;
    assert!(
        landed.is_some(),
        "the event {event_id} named by the 503 never reached the log; server log:\n{}",
        app.server_log()
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARN"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // A 503 promises that the event may still land, not that this instance shows it at
    // once: the projector applies it when it reads it.
    let removed = eventually_or_none(SETTLE_TIMEOUT, || async {
        (app.head_member(&group, SEED_USERNAME).await == 404).then_some(())
    })
    .await;
    assert!(removed.is_some(), "the landed removal never took effect");
}

#[apply(backends)]
#[tokio::test]
async fn every_answer_of_the_contract_is_an_error_body_with_a_fresh_log_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let mut log_ids = HashSet::new();
    for _ in 0..3 {
        let answer = app.remove_member(&encode(SEED_GROUP), "nobody").await;
        answer.assert_error(404, "UserNotFound");
        log_ids.insert(answer.json()["logId"].as_str().map(str::to_owned));
    }
    assert_eq!(log_ids.len(), 3, "each request has its own logId");
}

//! The harness. `TestApp` runs the real `membershipd` binary on a random port with a fresh
//! data dir, on either log backend ([`app`]); typed calls of its API ([`api`]) and the
//! answers they get ([`answer`]); what it wrote to its log, log.db or the Kafka topics
//! ([`log`], [`kafka`]); and the users, groups and tokens the tests share ([`fixtures`],
//! [`tokens`]).
//!
//! Every helper that asserts is `#[track_caller]`, so that a failure names the test's line.
//! That does not reach into a future, so the async helpers that assert (`create_user`,
//! `add_member`, `appends_nothing`, ...) are plain functions that take the caller's
//! location and return the future; a failure inside it names that location (their `*_at`
//! twins take it from a helper that calls them for a test). A longer async helper in a
//! test file runs its body in [`called_at`].

mod answer;
mod api;
mod app;
mod fixtures;
mod kafka;
mod log;
mod tokens;

use std::future::Future;
use std::panic::Location;
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::Value;

pub use answer::{Answer, assert_error_shape, assert_uuid, uuid_field};
pub use api::{ANONYMOUS, Auth};
pub use app::{TestApp, UNSET};
pub use fixtures::{NEW_PASSWORD, PASSWORD, Seed, TestUser};
pub use kafka::{
    Record, assert_envelope, assert_ids_unique, count, credentials_topic, read_topic,
    read_topic_until, read_topic_until_at, shared_brokers, test_brokers,
};
pub use log::{LoggedEvent, assert_valid, open_read_model, read_model_outcomes, schema_for, types};
pub use tokens::{claims_of, now_s, sign_claims, sign_token};

pub const CLIENT_ID: &str = "membership-tests";
pub const CLIENT_SECRET: &str = "client-secret-of-the-integration-tests";
pub const TOKEN_SECRET: &str = "token-secret-of-the-integration-tests-0123456789";
/// The service account that bootstrap makes for `CLIENT_ID`.
pub const SERVICE_ACCOUNT: &str = "svc.membership-tests";
pub const SERVICE_ACCOUNT_EMAIL: &str = "membership-tests@clients.membership.invalid";
pub const ADMINISTRATORS: &str = "System Administrators";

/// The documented prefix, and the one the official JavaScript client calls.
pub const PREFIX: &str = "/api/management/security";
pub const JS_PREFIX: &str = "/api/security";
pub const PREFIXES: [&str; 2] = [PREFIX, JS_PREFIX];

/// The seed page's example group and user.
pub const SEED_GROUP: &str = "Paper Street Soap Company";
pub const SEED_USERNAME: &str = "tdurden";
pub const SEED_EMAIL: &str = "t.durden@fightclub.com";
pub const SEED_PASSWORD: &str = "pr0j3ctM4yh3m";

/// How long something asynchronous may take to show: a record on a topic, another
/// instance's read model catching up, an event a 503 named landing after all. Only ever a
/// bound on a wait for something that must happen, never a pause.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a wait looks again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Where a test called an async helper, for that helper's failure messages.
pub type Caller = &'static Location<'static>;

/// Where the service under test keeps its event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `log.db` in the data dir.
    Embedded,
    /// A fresh topic (`test-<uuid>`) on the shared broker named by
    /// `MEMBERSHIP_TEST_KAFKA_BROKERS`, which `make test` starts.
    Kafka,
}

/// Runs a test once per backend: `#[apply(backends)]` above `#[tokio::test]`, and a
/// `backend: Backend` argument. The cases are named `case_1_embedded` and `case_2_kafka`.
#[rstest_reuse::template]
#[rstest::rstest]
#[case::embedded(crate::helpers::Backend::Embedded)]
#[case::kafka(crate::helpers::Backend::Kafka)]
pub fn backends(#[case] backend: Backend) {}

// ---- paths ---------------------------------------------------------------------------

/// What a path segment must escape: the separators, the escape character itself, and
/// anything that is not printable ASCII.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'/')
    .add(b'%')
    .add(b'?')
    .add(b'#')
    .add(b'"')
    .add(b'<')
    .add(b'>');

/// Percent-encodes one identifier for a path (`Paper Street` -> `Paper%20Street`).
pub fn encode(identifier: &str) -> String {
    utf8_percent_encode(identifier, SEGMENT).to_string()
}

/// `.../groups/{group}/users/{user}`, the identifiers as they go in the path (encoded
/// already, or deliberately not).
pub fn membership_path(prefix: &str, group: &str, user: &str) -> String {
    format!("{prefix}/groups/{group}/users/{user}")
}

/// `.../users/{user}`, the identifier encoded.
pub fn user_path(prefix: &str, user: &str) -> String {
    format!("{prefix}/users/{}", encode(user))
}

/// `.../groups/{group}`, the identifier encoded.
pub fn group_path(prefix: &str, group: &str) -> String {
    format!("{prefix}/groups/{}", encode(group))
}

/// `.../groups/{group}/groups/{child}`, both encoded: `child` inside `group`.
pub fn nesting_path(prefix: &str, group: &str, child: &str) -> String {
    format!("{}/groups/{}", group_path(prefix, group), encode(child))
}

/// `.../users/{user}/credentials/password`, the identifier encoded.
pub fn password_path(prefix: &str, user: &str) -> String {
    format!("{}/credentials/password", user_path(prefix, user))
}

/// `.../groups/{group}/users`, the identifier encoded: the direct members, and the bulk add.
pub fn members_path(prefix: &str, group: &str) -> String {
    format!("{}/users", group_path(prefix, group))
}

// ---- async helpers that assert ---------------------------------------------------------

/// Runs the body of an async helper that asserts, for a `#[track_caller]` function that
/// returns it: a panic inside (reported where it happened) is raised again naming
/// `caller`, the test's line.
///
/// ```text
/// #[track_caller]
/// fn assert_settled(app: &TestApp) -> impl Future<Output = ()> {
///     called_at(Location::caller(), async move { ... })
/// }
/// ```
pub async fn called_at<F: Future>(caller: Caller, body: F) -> F::Output {
    let mut body = std::pin::pin!(body);
    std::future::poll_fn(|cx| {
        let poll =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body.as_mut().poll(cx)));
        match poll {
            Ok(poll) => poll,
            Err(panic) => {
                let message = (panic.downcast_ref::<String>().map(String::as_str))
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                panic!("{message}\n(in a helper called at {caller})")
            }
        }
    })
    .await
}

// ---- waiting -------------------------------------------------------------------------

/// Polls `probe` until it gives `Some`, or fails naming `what` after `timeout`.
#[track_caller]
pub fn eventually<T, F, Fut>(what: &str, timeout: Duration, probe: F) -> impl Future<Output = T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let caller = Location::caller();
    async move {
        match eventually_or_none(timeout, probe).await {
            Some(found) => found,
            None => panic!("gave up after {timeout:?} waiting for {what} (at {caller})"),
        }
    }
}

/// Polls `probe` until it gives `Some`, or gives `None` after `timeout`.
pub async fn eventually_or_none<T, F, Fut>(timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Runs the futures concurrently on this task and returns their outputs in order.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

// ---- list answers --------------------------------------------------------------------

/// The `property` of each item of a list answer, in order.
#[track_caller]
pub fn column(body: &Value, property: &str) -> Vec<String> {
    let Some(items) = body["items"].as_array() else {
        panic!("a list: {body}")
    };
    let mut values = Vec::new();
    for item in items {
        let Some(value) = item[property].as_str() else {
            panic!("no `{property}` in {item}")
        };
        values.push(value.to_owned());
    }
    values
}

/// `(totalCount, pageCount)` of a paged list.
pub fn counts(body: &Value) -> (Option<u64>, Option<u64>) {
    (body["totalCount"].as_u64(), body["pageCount"].as_u64())
}

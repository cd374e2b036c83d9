//! The groups of members the fault tests remove, one DELETE after another, and what the
//! topic and the read model must say about those removals afterwards.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::panic::Location;
use std::time::{Duration, Instant};

use reqwest::Method;

use crate::helpers::{ANONYMOUS, Caller, Record, TestApp, assert_ids_unique, read_topic_until_at};

/// A user without a password, as the fault tests remove it.
#[derive(Debug, Clone)]
pub struct Member {
    pub username: String,
    pub id: String,
}

/// Creates a user without a password.
pub async fn create_member(app: &TestApp, username: &str) -> Member {
    Member {
        username: username.to_owned(),
        id: app.new_user(username).await,
    }
}

/// A new group and `count` new users (`{prefix}0`, `{prefix}1`, ...), all members of it.
pub async fn group_with_members(
    app: &TestApp,
    name: &str,
    prefix: &str,
    count: usize,
) -> (String, Vec<Member>) {
    let group = app.new_group(name).await;
    let mut members = Vec::with_capacity(count);
    for i in 0..count {
        let member = create_member(app, &format!("{prefix}{i}")).await;
        app.add_member(&group, &member.id).await;
        members.push(member);
    }
    (group, members)
}

/// The usernames of the group's direct members, as listed.
#[track_caller]
pub fn listed_members(app: &TestApp, group: &str) -> impl Future<Output = BTreeSet<String>> {
    listed_members_at(app, group, Location::caller())
}

async fn listed_members_at(app: &TestApp, group: &str, caller: Caller) -> BTreeSet<String> {
    let list = app.list_members_at(group, caller).await;
    let Some(items) = list["items"].as_array() else {
        panic!("no items in {list} (at {caller})")
    };
    assert_eq!(list["totalCount"], items.len(), "{list} (at {caller})");
    items
        .iter()
        .map(|user| user["username"].as_str().expect("a username").to_owned())
        .collect()
}

/// The member list is exactly `expected`, and HEAD answers 204 for them and 404 for the
/// other `users`.
#[track_caller]
pub fn assert_members<'a>(
    app: &'a TestApp,
    group: &'a str,
    users: &'a [Member],
    expected: &'a BTreeSet<String>,
) -> impl Future<Output = ()> + 'a {
    assert_members_at(app, group, users, expected, Location::caller())
}

async fn assert_members_at(
    app: &TestApp,
    group: &str,
    users: &[Member],
    expected: &BTreeSet<String>,
    caller: Caller,
) {
    let listed = listed_members_at(app, group, caller).await;
    assert_eq!(&listed, expected, "the members listed (at {caller})");
    for user in users {
        let status = app.head_member(group, &user.id).await;
        let want = if expected.contains(&user.username) {
            204
        } else {
            404
        };
        assert_eq!(
            status, want,
            "HEAD of {} in the group (at {caller})",
            user.username
        );
    }
}

pub fn names<'a>(users: impl IntoIterator<Item = &'a Member>) -> BTreeSet<String> {
    users.into_iter().map(|u| u.username.clone()).collect()
}

/// The health check answers 200.
#[track_caller]
pub fn assert_healthy(app: &TestApp) -> impl Future<Output = ()> {
    let caller = Location::caller();
    async move {
        let health = app.request(Method::GET, "/health", ANONYMOUS).await;
        health.expect_status(200, caller);
    }
}

/// One DELETE the test sent, and how it was answered.
#[derive(Debug, Clone)]
pub struct Removal {
    pub member: Member,
    pub started: Instant,
    pub elapsed: Duration,
    pub status: u16,
    /// `data.eventId` of a 503: that event may still land.
    pub event_id: Option<String>,
    /// The Retry-After of a 503.
    pub retry_after: Option<Duration>,
}

impl Removal {
    pub fn answered(&self) -> Instant {
        self.started + self.elapsed
    }
}

/// Removes `member` from `group`; the answer must be 204, or 503 `Unavailable` with
/// Retry-After.
#[track_caller]
pub fn remove<'a>(
    app: &'a TestApp,
    group: &'a str,
    member: &'a Member,
) -> impl Future<Output = Removal> + 'a {
    let caller = Location::caller();
    async move {
        let started = Instant::now();
        let answer = app.remove_member(group, &member.id).await;
        let elapsed = started.elapsed();
        let (event_id, retry_after) = match answer.status.as_u16() {
            204 => {
                answer.expect_no_content(caller);
                (None, None)
            }
            503 => {
                let data = answer.expect_error(503, "Unavailable", caller);
                let retry_after = answer
                    .header("retry-after")
                    .and_then(|s| s.parse().ok())
                    .map(Duration::from_secs);
                let Some(retry_after) = retry_after else {
                    panic!("a 503 without Retry-After in seconds (at {caller}): {answer:?}")
                };
                (
                    data["eventId"].as_str().map(str::to_owned),
                    Some(retry_after),
                )
            }
            status => panic!(
                "removing {} answered {status} (at {caller}): {}",
                member.username, answer.text
            ),
        };
        Removal {
            member: member.clone(),
            started,
            elapsed,
            status: answer.status.as_u16(),
            event_id,
            retry_after,
        }
    }
}

pub fn summary(removals: &[Removal]) -> String {
    removals
        .iter()
        .map(|r| format!("{} {} in {:?}", r.member.username, r.status, r.elapsed))
        .collect::<Vec<_>>()
        .join(", ")
}

/// After removals of which some answered 503: every 204 is on the topic once; a 503's event
/// is on it at most once, under the id the 503 named; nothing else was removed; and the
/// read model shows exactly the removals the topic holds. The members that remain.
#[track_caller]
pub fn assert_log_and_reads_agree<'a>(
    app: &'a TestApp,
    brokers: &'a str,
    topic: &'a str,
    group: &'a str,
    members: &'a [Member],
    removals: &'a [Removal],
) -> impl Future<Output = BTreeSet<String>> + 'a {
    let caller = Location::caller();
    async move {
        let acknowledged: BTreeSet<&str> = removals
            .iter()
            .filter(|r| r.status == 204)
            .map(|r| r.member.id.as_str())
            .collect();
        let removed_on_topic = |records: &[Record]| -> BTreeMap<String, Vec<Record>> {
            let mut removed: BTreeMap<String, Vec<Record>> = BTreeMap::new();
            for record in records.iter().filter(|r| r.event_type() == "MemberRemoved") {
                if record.payload["data"]["groupId"] == group {
                    let user = record.payload["data"]["userId"]
                        .as_str()
                        .unwrap_or_default();
                    removed
                        .entry(user.to_owned())
                        .or_default()
                        .push(record.clone());
                }
            }
            removed
        };
        let what = "every acknowledged removal";
        let all_there = |records: &[Record]| {
            let removed = removed_on_topic(records);
            acknowledged.iter().all(|user| removed.contains_key(*user))
        };
        let records = read_topic_until_at(brokers, topic, what, all_there, caller).await;
        assert_ids_unique(&records);
        let removed = removed_on_topic(&records);
        for (user, records) in &removed {
            assert_eq!(
                records.len(),
                1,
                "{user} was removed more than once (at {caller}): {records:#?}"
            );
        }
        for removal in removals {
            if let (Some(event_id), Some(landed)) =
                (&removal.event_id, removed.get(&removal.member.id))
            {
                assert_eq!(
                    landed[0].id(),
                    event_id,
                    "the removal of {} that answered 503 landed under another id (at {caller})",
                    removal.member.username
                );
            }
        }
        let attempted: HashSet<&str> = removals.iter().map(|r| r.member.id.as_str()).collect();
        for user in removed.keys() {
            assert!(
                attempted.contains(user.as_str()),
                "a removal nobody asked for (at {caller}): {user}"
            );
        }
        let unavailable: Vec<&Removal> = removals.iter().filter(|r| r.status == 503).collect();
        let landed = unavailable
            .iter()
            .filter(|r| removed.contains_key(&r.member.id))
            .count();
        eprintln!(
            "{landed} of the {} removals answered 503 landed later and were applied",
            unavailable.len()
        );
        let remaining: BTreeSet<String> =
            names(members.iter().filter(|m| !removed.contains_key(&m.id)));
        assert_members_at(app, group, members, &remaining, caller).await;
        remaining
    }
}

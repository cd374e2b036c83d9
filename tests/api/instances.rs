//! Several instances on one Kafka topic, each with its own data dir and read model.
//! Conflicting writes spread over all of them at once have one winner, every other answer
//! says why, and once each instance has applied the whole log their read models are equal.
//! Kafka only: a shared log is what these tests are about.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::panic::Location;
use std::time::Instant;

use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{
    Answer, POLL_INTERVAL, PREFIX, SETTLE_TIMEOUT, TestApp, assert_error_shape, assert_uuid,
    called_at, eventually, join_all, open_read_model, read_model_outcomes, test_brokers,
    uuid_field,
};

const INSTANCES: usize = 3;
/// Concurrent removals of one membership, spread round-robin over the instances.
const REMOVALS: usize = 200;
/// Concurrent nestings, half one way and half the other.
const NESTINGS: usize = 12;

/// `INSTANCES` instances on a fresh topic of the test broker, started one after another
/// (each bootstraps only what the ones before it have not).
async fn instances() -> Vec<TestApp> {
    let brokers = test_brokers();
    let topic = format!("test-{}", Uuid::new_v4());
    let mut apps = Vec::new();
    for _ in 0..INSTANCES {
        apps.push(TestApp::spawn_on_topic(&brokers, &topic, &[]).await);
    }
    apps
}

/// Waits until every instance answers `HEAD` on the membership with `status`.
#[track_caller]
fn all_see_membership(
    apps: &[TestApp],
    group: &str,
    user: &str,
    status: u16,
) -> impl Future<Output = ()> {
    called_at(Location::caller(), async move {
        for (i, app) in apps.iter().enumerate() {
            let what = format!("instance {i} to answer HEAD {status} on the membership");
            eventually(&what, SETTLE_TIMEOUT, || async move {
                (app.head_member(group, user).await == status).then_some(())
            })
            .await;
        }
    })
}

/// Waits until every instance has an outcome for every event in the log (both topics),
/// then asserts that their read models are equal, row for row. The outcomes, by event id.
#[track_caller]
fn settle_and_compare(apps: &[TestApp]) -> impl Future<Output = BTreeMap<String, String>> {
    called_at(Location::caller(), async move {
        let logged: BTreeSet<String> = apps[0]
            .log_events()
            .into_iter()
            .map(|event| event.event_id)
            .collect();
        let started = Instant::now();
        for (i, app) in apps.iter().enumerate() {
            loop {
                let recorded = read_model_outcomes(&app.data_dir());
                let missing: Vec<_> = logged
                    .iter()
                    .filter(|id| !recorded.contains_key(*id))
                    .collect();
                if missing.is_empty() {
                    assert_eq!(
                        recorded.len(),
                        logged.len(),
                        "instance {i} recorded outcomes of events that are not in the log"
                    );
                    break;
                }
                assert!(
                    started.elapsed() < SETTLE_TIMEOUT,
                    "instance {i} did not apply the whole log within {SETTLE_TIMEOUT:?}: \
                 {} of {} events have no outcome, e.g. {:?}",
                    missing.len(),
                    logged.len(),
                    &missing[..missing.len().min(5)]
                );
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
        let dumps: Vec<String> = apps
            .iter()
            .map(|app| {
                membership::read_model::dump(&open_read_model(&app.data_dir()))
                    .expect("dumping read.db")
            })
            .collect();
        for (i, dump) in dumps.iter().enumerate().skip(1) {
            if *dump != dumps[0] {
                let first = dumps[0].lines().collect::<BTreeSet<_>>();
                let other = dump.lines().collect::<BTreeSet<_>>();
                panic!(
                    "the read models of instances 0 and {i} differ after applying the same log; \
                 only in 0: {:#?}; only in {i}: {:#?}",
                    first.difference(&other).collect::<Vec<_>>(),
                    other.difference(&first).collect::<Vec<_>>()
                );
            }
        }
        read_model_outcomes(&apps[0].data_dir())
    })
}

/// The `data` of a 409, after checking the Error body's shape.
#[track_caller]
fn conflict(answer: &Answer, what: &str) -> Value {
    assert_eq!(
        answer.status.as_u16(),
        409,
        "{what}: expected 204 or 409; body: {}",
        answer.text
    );
    let body = answer.json();
    assert_error_shape(&body);
    body["data"].clone()
}

/// How many answers had each status and code, for failure messages.
fn tally<'a>(answers: impl IntoIterator<Item = &'a Answer>) -> BTreeMap<String, usize> {
    let mut tally = BTreeMap::new();
    for answer in answers {
        let code = match answer.status.as_u16() {
            204 => String::new(),
            _ => serde_json::from_str::<Value>(&answer.text)
                .ok()
                .and_then(|body| body["data"]["code"].as_str().map(str::to_owned))
                .unwrap_or_default(),
        };
        *tally
            .entry(format!("{} {code}", answer.status.as_u16()))
            .or_insert(0) += 1;
    }
    tally
}

#[tokio::test]
async fn racing_removals_on_every_instance_have_one_winner_and_leave_equal_read_models() {
    let apps = instances().await;
    let group = apps[0].new_group("Lou's Tavern").await;
    let user = uuid_field(
        &apps[1]
            .create_user("rpaulson", "bob@fightclub.com", Some("his-name-is-robert"))
            .await,
        "id",
    )
    .to_string();
    all_see_membership(&apps, &group, &user, 404).await;
    apps[2].add_member(&group, &user).await;
    all_see_membership(&apps, &group, &user, 204).await;

    // As many checks at once first, so that the removals find their connections open and
    // arrive together rather than as fast as connections can be made.
    let checks: Vec<_> = (0..REMOVALS)
        .map(|i| apps[i % INSTANCES].head_member(&group, &user))
        .collect();
    assert!(join_all(checks).await.iter().all(|status| *status == 204));

    let removals: Vec<_> = (0..REMOVALS)
        .map(|i| apps[i % INSTANCES].remove_member(&group, &user))
        .collect();
    let answers = join_all(removals).await;

    let summary = tally(&answers);
    let winners = answers.iter().filter(|a| a.status == 204).count();
    assert_eq!(winners, 1, "exactly one removal succeeds: {summary:?}");
    let mut lost: BTreeSet<Uuid> = BTreeSet::new();
    for (i, answer) in answers.iter().enumerate() {
        if answer.status == 204 {
            assert!(
                answer.text.is_empty(),
                "a 204 with a body: {:?}",
                answer.text
            );
            continue;
        }
        let what = format!("removal {i} on instance {}", i % INSTANCES);
        let data = conflict(answer, &what);
        match data["code"].as_str() {
            // Decided before the winner was applied here: appended, then rejected.
            Some("ConcurrentModification") => {
                assert_eq!(data["reason"], "UserNotInGroup", "{what}: {data}");
                assert!(
                    lost.insert(assert_uuid(&data["eventId"])),
                    "{what}: an event id answered twice: {data}"
                );
            }
            // Decided after: nothing appended.
            Some("UserNotInGroup") => {}
            _ => panic!("{what}: unexpected 409 {data}; all answers: {summary:?}"),
        }
    }

    // Of requests sent at once, some are decided before their instance has applied the
    // winner's event, and lose in the log. None would mean that nothing raced, and that
    // this test proved nothing.
    assert!(
        !lost.is_empty(),
        "no removal lost a race in the log, so nothing raced: {summary:?}"
    );

    // The log holds the winner's MemberRemoved and one per lost race, nothing else.
    let removed: BTreeSet<Uuid> = apps[0]
        .events_of("MemberRemoved")
        .iter()
        .map(|event| {
            assert_eq!(event.payload["data"]["groupId"], group.as_str());
            assert_eq!(event.payload["data"]["userId"], user.as_str());
            Uuid::parse_str(&event.event_id).expect("an event id")
        })
        .collect();
    assert!(
        lost.is_subset(&removed),
        "every lost race names an event in the log"
    );
    assert_eq!(
        removed.len(),
        lost.len() + 1,
        "MemberRemoved events in the log: the winner's and one per lost race ({summary:?})"
    );

    let outcomes = settle_and_compare(&apps).await;
    let removal_outcomes: BTreeMap<&str, usize> =
        removed.iter().fold(BTreeMap::new(), |mut counts, id| {
            *counts
                .entry(outcomes[&id.to_string()].as_str())
                .or_insert(0) += 1;
            counts
        });
    let expected = BTreeMap::from([("applied", 1), ("UserNotInGroup", lost.len())]);
    assert_eq!(
        removal_outcomes, expected,
        "outcomes of the MemberRemoved events"
    );
    for id in &lost {
        assert_eq!(outcomes[&id.to_string()], "UserNotInGroup", "event {id}");
    }
    all_see_membership(&apps, &group, &user, 404).await;
    // Every instance serves the same feed: the same events at the same positions, with the
    // same outcomes, the lost races marked rejected.
    let feeds = join_all(
        (apps.iter())
            .map(|app| crate::feed::every_item(app, "&includeRejected=true"))
            .collect(),
    )
    .await;
    assert!(
        feeds.iter().all(|feed| feed == &feeds[0]),
        "the instances' feeds differ"
    );
    let rejected = (feeds[0].iter())
        .filter(|item| item["outcome"] == "rejected" && item["code"] == "UserNotInGroup")
        .count();
    assert_eq!(rejected, lost.len(), "the lost races, in the feed");
    let by_instance: Vec<_> = (0..INSTANCES)
        .map(|n| tally(answers.iter().skip(n).step_by(INSTANCES)))
        .collect();
    eprintln!(
        "{REMOVALS} removals over {INSTANCES} instances: {summary:?}, {} events appended; \
         by instance: {by_instance:?}",
        removed.len()
    );
}

#[tokio::test]
async fn opposite_nestings_on_different_instances_let_one_direction_win_and_leave_equal_read_models()
 {
    let apps = instances().await;
    let a = apps[0].new_group("Paper Street").await;
    let b = apps[1].new_group("Project Mayhem").await;
    for (i, app) in apps.iter().enumerate() {
        for group in [&a, &b] {
            let what = format!("instance {i} to see group {group}");
            let path = format!("{PREFIX}/groups/{group}");
            eventually(&what, SETTLE_TIMEOUT, || {
                let path = path.clone();
                async move {
                    let answer = app.get(&path).await;
                    (answer.status == 200).then_some(())
                }
            })
            .await;
        }
    }

    // Even requests nest b in a, odd ones a in b; request i goes to instance i mod 3, so
    // every instance sends both directions.
    let direction = |i: usize| {
        if i.is_multiple_of(2) {
            (&a, &b)
        } else {
            (&b, &a)
        }
    };
    let nestings: Vec<_> = (0..NESTINGS)
        .map(|i| {
            let (parent, child) = direction(i);
            apps[i % INSTANCES].try_nest(parent, child)
        })
        .collect();
    let answers = join_all(nestings).await;
    let summary = tally(&answers);

    let winning: BTreeSet<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, answer)| answer.status == 204)
        .map(|(i, _)| i % 2)
        .collect();
    assert_eq!(
        winning.len(),
        1,
        "one direction succeeds, never both: {summary:?}"
    );
    let winner = *winning.first().expect("a direction");
    let mut lost: BTreeSet<Uuid> = BTreeSet::new();
    for (i, answer) in answers.iter().enumerate() {
        if answer.status == 204 {
            continue;
        }
        let what = format!("nesting {i} on instance {}", i % INSTANCES);
        let data = conflict(answer, &what);
        // The winning direction may lose a race only to itself: already nested. The other
        // would close a cycle, found when deciding or when applying.
        let reason = if i % 2 == winner {
            "AlreadyMember"
        } else {
            "GroupCycle"
        };
        match data["code"].as_str() {
            Some("ConcurrentModification") => {
                assert_eq!(data["reason"], reason, "{what}: {data}");
                lost.insert(assert_uuid(&data["eventId"]));
            }
            Some("GroupCycle") if i % 2 != winner => {}
            _ => panic!("{what}: unexpected 409 {data}; all answers: {summary:?}"),
        }
    }

    let outcomes = settle_and_compare(&apps).await;
    let added = apps[0].events_of("ChildGroupAdded");
    let applied: Vec<&Value> = added
        .iter()
        .filter(|event| outcomes[&event.event_id] == "applied")
        .map(|event| &event.payload["data"])
        .collect();
    assert_eq!(
        applied.len(),
        1,
        "exactly one nesting applied: {applied:#?}"
    );
    let (parent, child) = direction(winner);
    assert_eq!(applied[0]["groupId"], parent.as_str());
    assert_eq!(applied[0]["childGroupId"], child.as_str());
    assert_eq!(
        added.len(),
        lost.len() + 1,
        "ChildGroupAdded events in the log: the applied one and one per lost race \
         ({summary:?})"
    );
    for app in &apps {
        let path = format!("{PREFIX}/groups/{parent}/groups");
        let listed = app.get_json(&path).await;
        assert_eq!(listed["totalCount"], 1, "{listed}");
        assert_eq!(listed["items"][0]["id"], child.as_str(), "{listed}");
        let path = format!("{PREFIX}/groups/{child}/groups");
        assert_eq!(app.get_json(&path).await["totalCount"], 0);
    }
    eprintln!(
        "{NESTINGS} opposite nestings over {INSTANCES} instances: {summary:?}, {} events appended",
        added.len()
    );
}

//! The event feed over HTTP, as a downstream consumer follows it: pages after a position,
//! a long poll, and a Server-Sent Events stream resumed with `Last-Event-ID` after the
//! consumer or the service dies; filters; rejected events; and the bounds.

use std::time::Duration;

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::{Value, json};

use crate::helpers::{Backend, SETTLE_TIMEOUT, TestApp, backends, join_all};

const EVENTS: &str = "/api/management/security/events";

/// One Server-Sent Events message: its `id:`, `event:` and `data:` (as JSON).
#[derive(Debug, Clone)]
struct Message {
    id: String,
    event: String,
    data: Value,
}

/// A consumer on the stream, reading messages as they come.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    /// Opens the stream, resuming after `last_event_id` if given.
    async fn open(app: &TestApp, query: &str, last_event_id: Option<&str>) -> Self {
        let mut request = app
            .client
            .get(app.url(&format!("{EVENTS}/stream{query}")))
            .bearer_auth(&app.admin_token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("opening the stream");
        assert_eq!(response.status(), 200, "opening the stream");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert_eq!(content_type, "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next message (heartbeat comments skipped), or `None` if the stream ended or
    /// nothing came within `SETTLE_TIMEOUT`.
    async fn next(&mut self) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(message) = parse(&block) {
                    return Some(message);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// The next `n` messages; fails if the stream gives fewer.
    async fn take(&mut self, n: usize) -> Vec<Message> {
        let mut messages = Vec::with_capacity(n);
        while messages.len() < n {
            let message = self.next().await;
            let message = message.unwrap_or_else(|| panic!("{} of {n} messages", messages.len()));
            messages.push(message);
        }
        messages
    }
}

/// A message block's fields; `None` for a comment.
fn parse(block: &str) -> Option<Message> {
    let (mut id, mut event, mut data) = (None, None, None);
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("id: ") {
            id = Some(value.to_owned());
        } else if let Some(value) = line.strip_prefix("event: ") {
            event = Some(value.to_owned());
        } else if let Some(value) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str(value).expect("data is JSON"));
        }
    }
    Some(Message {
        id: id?,
        event: event?,
        data: data?,
    })
}

/// Every item the feed has, page after page (`query` adds to each page's query).
pub async fn every_item(app: &TestApp, query: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let from = after
            .as_ref()
            .map_or(String::new(), |a| format!("&after={a}"));
        let page = app
            .get_json(&format!("{EVENTS}?pageSize=7{query}{from}"))
            .await;
        let found = page["items"].as_array().unwrap().clone();
        if found.is_empty() {
            return items;
        }
        after = page["next"].as_str().map(str::to_owned);
        items.extend(found);
    }
}

/// A few changes: a group, a user, the user added and removed.
async fn changes(app: &TestApp, name: &str) -> (String, String) {
    let group = app.new_group(&format!("{name} group")).await;
    let user = app.new_user(name).await;
    app.add_member(&group, &user).await;
    app.remove_member(&group, &user).await.assert_no_content();
    (group, user)
}

fn positions(messages: &[Message]) -> Vec<i64> {
    (messages.iter())
        .map(|m| m.id.parse().expect("an id is a position"))
        .collect()
}

#[apply(backends)]
#[tokio::test]
async fn a_stream_shows_every_change_once_in_log_order_and_resumes_with_no_gap_or_duplicate(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let before = every_item(&app, "").await;
    let mut stream = Stream::open(&app, "", None).await;
    let replayed = stream.take(before.len()).await;
    changes(&app, "marla").await;
    let new = stream.take(4).await;
    let kinds: Vec<&str> = new.iter().map(|m| m.event.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "GroupCreated",
            "UserCreated",
            "MemberAdded",
            "MemberRemoved"
        ]
    );
    for message in &new {
        assert_eq!(message.data["outcome"], "applied");
        assert!(message.data.get("code").is_none());
        assert_eq!(message.data["position"], message.id.as_str());
        assert_eq!(message.data["event"]["type"], message.event.as_str());
    }
    let seen: Vec<Message> = replayed.into_iter().chain(new).collect();
    let at = positions(&seen);
    assert!(at.windows(2).all(|w| w[0] < w[1]), "in log order: {at:?}");
    // The stream and the pages are the same feed.
    let paged = every_item(&app, "").await;
    assert_eq!(paged.len(), seen.len());
    for (page_item, message) in paged.iter().zip(&seen) {
        assert_eq!(page_item, &message.data);
    }

    // The consumer dies; changes go on; it resumes after the last id it read.
    let last = seen.last().unwrap().id.clone();
    drop(stream);
    changes(&app, "bob").await;
    let mut resumed = Stream::open(&app, "", Some(&last)).await;
    let after = resumed.take(4).await;
    assert_eq!(after[0].data["event"]["type"], "GroupCreated");
    assert!(positions(&after)[0] > last.parse().unwrap(), "no duplicate");
    let every = every_item(&app, "").await;
    assert_eq!(every.len(), seen.len() + 4, "no gap");
    assert_eq!(every.last().unwrap(), &after[3].data);
}

/// The service stopped under a consumer, cleanly (SIGTERM) or not (SIGKILL), then
/// started again; the consumer resumes after the last id it read.
#[apply(backends)]
#[tokio::test]
async fn a_consumer_resumes_the_same_way_after_the_service_is_stopped_or_killed(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let mut seen = Vec::new();
    let mut last: Option<String> = None;
    for (round, killed) in [(0, false), (1, true)] {
        changes(&app, &format!("user{round}")).await;
        let every = every_item(&app, "").await;
        let mut stream = Stream::open(&app, "", last.as_deref()).await;
        let new = stream.take(every.len() - seen.len()).await;
        assert_eq!(
            new[0].data,
            every[seen.len()],
            "resumed with no gap and no duplicate"
        );
        seen.extend(new);
        last = Some(seen.last().unwrap().id.clone());
        match killed {
            true => app.restart().await,
            false => {
                assert!(app.terminate().await.success());
                app.start().await;
            }
        }
        assert!(
            stream.next().await.is_none(),
            "the stream ends with the process"
        );
    }
    let mut resumed = Stream::open(&app, "", last.as_deref()).await;
    changes(&app, "bob").await;
    let after = resumed.take(4).await;
    let every = every_item(&app, "").await;
    assert_eq!(every.len(), seen.len() + 4, "no gap, no duplicate");
    let items: Vec<&Value> = after.iter().map(|m| &m.data).collect();
    assert_eq!(items, every[seen.len()..].iter().collect::<Vec<_>>());
}

#[apply(backends)]
#[tokio::test]
async fn a_filtered_stream_keeps_only_what_it_asks_and_resumes_exactly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (group, _) = changes(&app, "marla").await;
    let query = format!("?types=MemberRemoved,MemberAdded&group={group}");
    let mut stream = Stream::open(&app, &query, None).await;
    let seen = stream.take(2).await;
    let kinds: Vec<&str> = seen.iter().map(|m| m.event.as_str()).collect();
    assert_eq!(kinds, ["MemberAdded", "MemberRemoved"]);
    drop(stream);
    // Other changes, and one that matches.
    changes(&app, "bob").await;
    let user = app.new_user("tyler").await;
    app.add_member(&group, &user).await;
    let mut resumed = Stream::open(&app, &query, Some(&seen[1].id)).await;
    let next = resumed.next().await.unwrap();
    assert_eq!(next.event, "MemberAdded");
    assert_eq!(next.data["event"]["data"]["userId"], user.as_str());
    let paged = every_item(
        &app,
        &format!("&types=MemberRemoved,MemberAdded&group={group}"),
    )
    .await;
    assert_eq!(paged.len(), 3);
    assert_eq!(paged[2], next.data);
}

#[apply(backends)]
#[tokio::test]
async fn a_long_poll_answers_as_soon_as_a_change_is_applied(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let head = app.get_json(&format!("{EVENTS}?pageSize=1000")).await;
    let next = head["next"].as_str().unwrap().to_owned();
    let path = format!("{EVENTS}?after={next}&waitMs=20000");
    let poll = app.get_json(&path);
    let change = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.new_group("Lou's Tavern").await
    };
    let (page, group) = tokio::join!(poll, change);
    assert_eq!(page["items"][0]["event"]["type"], "GroupCreated");
    assert_eq!(page["items"][0]["event"]["aggregateId"], group.as_str());
    // With nothing new, it answers when the wait is over, with nothing and the same next.
    let path = format!(
        "{EVENTS}?after={}&waitMs=200",
        page["next"].as_str().unwrap()
    );
    let quiet = app.get_json(&path).await;
    assert_eq!(quiet["items"], json!([]));
    assert_eq!(quiet["next"], page["next"]);
}

#[apply(backends)]
#[tokio::test]
async fn a_race_lost_is_marked_rejected_and_left_out_unless_asked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let group = app.new_group("Lou's Tavern").await;
    // Removals raced until one loses at apply time (each round: add, then remove at once).
    let mut lost = false;
    for round in 0..20 {
        let user = app.new_user(&format!("racer{round}")).await;
        app.add_member(&group, &user).await;
        let removals: Vec<_> = (0..8).map(|_| app.remove_member(&group, &user)).collect();
        let answers = join_all(removals).await;
        if (answers.iter())
            .any(|a| a.status == 409 && a.json()["data"]["code"] == "ConcurrentModification")
        {
            lost = true;
            break;
        }
    }
    assert!(lost, "no removal lost a race in 20 rounds");
    let applied = every_item(&app, &format!("&group={group}&types=MemberRemoved")).await;
    assert!(applied.iter().all(|i| i["outcome"] == "applied"));
    let all = every_item(
        &app,
        &format!("&group={group}&types=MemberRemoved&includeRejected=true"),
    )
    .await;
    let rejected: Vec<&Value> = all.iter().filter(|i| i["outcome"] == "rejected").collect();
    assert!(!rejected.is_empty(), "{all:?}");
    assert!(
        rejected.iter().all(|i| i["code"] == "UserNotInGroup"),
        "{rejected:?}"
    );
    assert_eq!(all.len(), applied.len() + rejected.len());
}

#[apply(backends)]
#[tokio::test]
async fn the_feed_refuses_what_it_cannot_serve_and_bounds_its_streams(backend: Backend) {
    let app = TestApp::spawn_on(backend, &[("MEMBERSHIP_FEED_STREAMS_MAX", "1")]).await;
    for query in [
        "?pageSize=1001",
        "?pageSize=0",
        "?after=x",
        "?after=-1",
        "?waitMs=30001",
        "?types=PasswordSet",
        "?group=Lou",
        "?includeRejected=yes",
    ] {
        let answer = app
            .request(Method::GET, &format!("{EVENTS}{query}"), &app.admin_token)
            .await;
        answer.assert_error(400, "BadRequest");
    }
    let _open = Stream::open(&app, "", None).await;
    let second = app
        .request(Method::GET, &format!("{EVENTS}/stream"), &app.admin_token)
        .await;
    second.assert_error(503, "TooManyStreams");
    assert!(second.header("retry-after").is_some());
    // A long poll takes a place too; a page does not.
    let poll = app
        .request(
            Method::GET,
            &format!("{EVENTS}?waitMs=1000"),
            &app.admin_token,
        )
        .await;
    poll.assert_error(503, "TooManyStreams");
    app.get_json(EVENTS).await;
    // The feed is not for anyone: a user who is no administrator gets 403.
    let user = app
        .create_user("marla", "marla@fightclub.com", Some("marla-password"))
        .await;
    let token = app.token_for("marla", "marla-password").await;
    assert!(user["id"].is_string());
    let answer = app.request(Method::GET, EVENTS, token.as_str()).await;
    answer.assert_error(403, "Forbidden");
}

/// A consumer that stops reading is disconnected once it is a buffer behind, and the
/// service keeps serving and writing meanwhile. Embedded only: the bound is the
/// service's, whatever the log.
#[tokio::test]
async fn a_stalled_consumer_is_disconnected_and_the_service_keeps_serving() {
    use std::io::{Read, Write};

    let app = TestApp::spawn_on(
        Backend::Embedded,
        &[
            ("MEMBERSHIP_FEED_STREAMS_MAX", "1"),
            ("MEMBERSHIP_FEED_STREAM_BUFFER", "8"),
            // How long a stream waits for a full buffer to drain, too.
            ("MEMBERSHIP_FEED_HEARTBEAT_MS", "300"),
        ],
    )
    .await;
    let mut users = Vec::new();
    for i in 0..100 {
        users.push(app.new_user(&format!("member{i}")).await);
    }
    // A consumer that opens the stream and never reads.
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut stalled = std::net::TcpStream::connect(&host).expect("connecting");
    let request = format!(
        "GET {EVENTS}/stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\r\n",
        app.admin_token
    );
    stalled.write_all(request.as_bytes()).unwrap();
    // Writes go on until the stalled stream has given its place back (one stream at most).
    let mut freed = false;
    for round in 0..200 {
        let group = app.new_group(&format!("Round {round}")).await;
        app.post_json(
            &format!("{EVENTS}/../groups/{group}/users"),
            &app.admin_token,
            &json!(users),
        )
        .await
        .assert_no_content();
        let other = app
            .client
            .get(app.url(&format!("{EVENTS}/stream")))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap();
        if other.status() == 200 {
            eprintln!("the stalled stream ended after {round} rounds of writes");
            freed = round > 0;
            break;
        }
        assert_eq!(other.status(), 503);
    }
    assert!(
        freed,
        "the stalled stream was never ended, or ended before it was behind"
    );
    // What the stalled consumer gets when it reads at last: messages up to where it fell
    // behind, then the end of the stream.
    stalled.set_read_timeout(Some(SETTLE_TIMEOUT)).unwrap();
    let mut received = Vec::new();
    let mut chunk = [0_u8; 65536];
    while !received.ends_with(b"\r\n0\r\n\r\n") {
        let n = stalled
            .read(&mut chunk)
            .expect("reading the stalled stream");
        assert!(n > 0, "the connection closed before the stream's end");
        received.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&received);
    let last: i64 = (text.lines())
        .rev()
        .find_map(|line| line.strip_prefix("id: "))
        .expect("some messages came first")
        .parse()
        .unwrap();
    let rest = app
        .get_json(&format!("{EVENTS}?after={last}&pageSize=1"))
        .await;
    let resumed: i64 = rest["items"][0]["position"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(resumed > last, "it resumes after the last message it read");
}

#[apply(backends)]
#[tokio::test]
async fn a_stop_answers_long_polls_and_ends_streams_at_once(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let head = app.get_json(&format!("{EVENTS}?pageSize=1000")).await;
    let next = head["next"].as_str().unwrap().to_owned();
    let poll = app
        .client
        .get(app.url(&format!("{EVENTS}?after={next}&waitMs=30000")))
        .bearer_auth(&app.admin_token)
        .send();
    let mut stream = Stream::open(&app, &format!("?after={next}"), None).await;
    let stop = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        let status = app.terminate().await;
        (status, started.elapsed())
    };
    let (answer, (status, took)) = tokio::join!(poll, stop);
    let answer = answer.expect("the long poll is answered, not dropped");
    assert_eq!(answer.status(), 200);
    let page: Value = answer.json().await.unwrap();
    assert_eq!(page["items"], json!([]));
    assert_eq!(page["next"], next.as_str());
    assert!(stream.next().await.is_none(), "the stream ends");
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(10), "the stop took {took:?}");
}

//! `membershipd events tail`: what a consumer of the log sees, with each event's outcome
//! decided as the service decides it, on either backend.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::panic::Location;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rstest_reuse::apply;

use crate::helpers::{
    Backend, SEED_GROUP, SEED_USERNAME, SERVICE_ACCOUNT, TestApp, assert_uuid, backends, called_at,
    encode, join_all, read_model_outcomes,
};

/// How long `events tail` may take to print a line, or to exit once asked.
const TAIL_TIMEOUT: Duration = Duration::from_secs(60);
/// Racing removals per round, and rounds before giving up on a lost race.
const RACERS: usize = 16;
const ROUNDS: usize = 20;

/// The seed's membership removed by racing DELETEs, until one of them loses the race (409
/// `ConcurrentModification`): its event is in the log and was rejected. The id of one
/// rejected `MemberRemoved`.
#[track_caller]
fn lose_a_race(app: &TestApp) -> impl Future<Output = String> {
    called_at(Location::caller(), async move {
        let group = encode(SEED_GROUP);
        for _ in 0..ROUNDS {
            let racing: Vec<_> = (0..RACERS)
                .map(|_| app.remove_member(&group, SEED_USERNAME))
                .collect();
            let answers = join_all(racing).await;
            assert_eq!(
                answers.iter().filter(|a| a.status == 204).count(),
                1,
                "exactly one removal succeeds: {answers:#?}"
            );
            let lost = answers
                .iter()
                .find(|a| a.status == 409 && a.json()["data"]["code"] == "ConcurrentModification");
            if let Some(lost) = lost {
                let data = lost.assert_error(409, "ConcurrentModification");
                assert_eq!(data["reason"], "UserNotInGroup", "{data}");
                return assert_uuid(&data["eventId"]).to_string();
            }
            app.add_member(&group, SEED_USERNAME).await;
        }
        panic!("no removal lost a race in {ROUNDS} rounds of {RACERS}");
    })
}

/// One line of `events tail`, split into its fields.
#[derive(Debug, Clone)]
struct TailLine {
    event_type: String,
    outcome: String,
    actor: String,
    summary: String,
    line: String,
}

/// `<time>  <type>  <outcome>  <actor>  <summary>  (event <id>)`: the event id and the line.
#[track_caller]
fn parse_line(line: &str) -> (String, TailLine) {
    let (rest, id) = line
        .strip_suffix(')')
        .and_then(|l| l.rsplit_once("  (event "))
        .unwrap_or_else(|| not_a_line(line));
    let fields: Vec<&str> = rest
        .split("  ")
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    let [time, event_type, outcome, actor, summary @ ..] = fields.as_slice() else {
        not_a_line(line)
    };
    time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("the time of {line:?} is not RFC 3339: {e}"));
    let id = assert_uuid(&serde_json::Value::String(id.to_owned())).to_string();
    let parsed = TailLine {
        event_type: event_type.to_string(),
        outcome: outcome.to_string(),
        actor: actor.to_string(),
        summary: summary.join("  "),
        line: line.to_owned(),
    };
    (id, parsed)
}

#[track_caller]
fn not_a_line(line: &str) -> ! {
    panic!("not a line of events tail: {line:?}")
}

/// Every line by event id; an id printed twice fails the test.
#[track_caller]
fn by_id(stdout: &str) -> BTreeMap<String, TailLine> {
    let mut lines = BTreeMap::new();
    for line in stdout.lines() {
        let (id, parsed) = parse_line(line);
        if let Some(earlier) = lines.insert(id.clone(), parsed) {
            panic!("the event {id} is printed twice: {earlier:?} and {line:?}");
        }
    }
    lines
}

/// `membershipd events tail` running with the app's settings, killed if still running
/// when dropped (say, when an assertion fails first).
struct Tail {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Tail {
    fn spawn(app: &TestApp, args: &[&str]) -> Self {
        let mut child = app
            .command(&[&["events", "tail"], args].concat())
            .spawn()
            .expect("spawning membershipd events tail");
        let stdout = child.stdout.take().expect("the child's stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut pipe = child.stderr.take().expect("the child's stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        });
        Self {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// The next line it prints, within `TAIL_TIMEOUT`.
    #[track_caller]
    fn next_line(&self, what: &str) -> String {
        self.lines
            .recv_timeout(TAIL_TIMEOUT)
            .unwrap_or_else(|e| panic!("events tail printed no line for {what}: {e}"))
    }

    fn is_running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("checking on events tail")
            .is_none()
    }

    /// Waits for it to exit, within `TAIL_TIMEOUT`: its status, the rest of its stdout,
    /// and its stderr.
    #[track_caller]
    fn wait(mut self) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + TAIL_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for events tail") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "events tail did not exit within {TAIL_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.take().map(|s| s.join().unwrap_or_default());
        let stdout: Vec<String> = self.lines.iter().collect();
        (status, stdout.join("\n"), stderr.unwrap_or_default())
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn removal_summary() -> String {
    format!("{SEED_USERNAME} from {SEED_GROUP:?}")
}

#[apply(backends)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tail_prints_every_event_with_the_services_outcome_and_exits_at_the_end(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let rejected = lose_a_race(&app).await;

    let (status, stdout, stderr) =
        tokio::task::block_in_place(|| Tail::spawn(&app, &["--until-end"]).wait());

    assert!(
        status.success(),
        "events tail: {status}\n{stdout}\n{stderr}"
    );
    let printed = by_id(&stdout);
    // One line per event of both streams, each with the outcome the service recorded.
    let logged: BTreeSet<String> = app.log_events().into_iter().map(|e| e.event_id).collect();
    let shown: BTreeSet<String> = printed.keys().cloned().collect();
    assert_eq!(shown, logged, "{stdout}");
    // The service's own outcome of every event, from its read model.
    let service = read_model_outcomes(&app.data_dir());
    for (id, line) in &printed {
        let expected = match service.get(id).map(String::as_str) {
            Some("applied") => "applied".to_owned(),
            Some(code) => format!("rejected: {code}"),
            None => panic!("the service has no outcome for {id}"),
        };
        assert_eq!(line.outcome, expected, "{}", line.line);
    }

    let lost = &printed[&rejected];
    assert_eq!(lost.event_type, "MemberRemoved", "{}", lost.line);
    assert_eq!(lost.outcome, "rejected: UserNotInGroup", "{}", lost.line);
    assert_eq!(lost.actor, SERVICE_ACCOUNT, "{}", lost.line);
    assert_eq!(lost.summary, removal_summary(), "{}", lost.line);
    let applied: Vec<&TailLine> = printed
        .values()
        .filter(|l| l.event_type == "MemberRemoved" && l.outcome == "applied")
        .collect();
    assert!(
        !applied.is_empty(),
        "no applied MemberRemoved in:\n{stdout}"
    );
    for line in applied {
        assert_eq!(line.summary, removal_summary(), "{}", line.line);
        assert_eq!(line.actor, SERVICE_ACCOUNT, "{}", line.line);
    }
    assert!(
        !stdout.contains("$argon2"),
        "a password hash in the output:\n{stdout}"
    );
}

#[apply(backends)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tail_follows_new_events_until_sigterm_and_then_exits_0(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let before = app.log_len();
    let mut tail = Tail::spawn(&app, &[]);
    for _ in 0..before {
        tokio::task::block_in_place(|| tail.next_line("the events so far"));
    }

    app.remove_member(&encode(SEED_GROUP), SEED_USERNAME)
        .await
        .assert_no_content();
    let line = tokio::task::block_in_place(|| tail.next_line("a removal made after it started"));
    let (_, parsed) = parse_line(&line);
    assert_eq!(parsed.event_type, "MemberRemoved", "{line}");
    assert_eq!(parsed.outcome, "applied", "{line}");
    assert_eq!(parsed.summary, removal_summary(), "{line}");
    assert!(tail.is_running(), "events tail exited while following");

    let signalled = Command::new("kill")
        .args(["-TERM", &tail.child.id().to_string()])
        .status()
        .expect("running kill");
    assert!(signalled.success(), "kill -TERM: {signalled}");
    let (status, rest, stderr) = tokio::task::block_in_place(|| tail.wait());
    assert!(
        status.success(),
        "events tail after SIGTERM: {status}\n{rest}\n{stderr}"
    );
    assert_eq!(rest, "", "lines after the last event");
}

#[apply(backends)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tail_json_prints_what_the_feed_serves(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    lose_a_race(&app).await;
    let (status, stdout, stderr) =
        tokio::task::block_in_place(|| Tail::spawn(&app, &["--until-end", "--json"]).wait());
    assert!(status.success(), "events tail --json: {status}\n{stderr}");
    let printed: Vec<serde_json::Value> = (stdout.lines())
        .map(|line| serde_json::from_str(line).expect("a line is JSON"))
        .collect();
    let served = crate::feed::every_item(&app, "&includeRejected=true").await;
    assert_eq!(printed, served);
    assert!(printed.iter().any(|item| item["outcome"] == "rejected"));
}

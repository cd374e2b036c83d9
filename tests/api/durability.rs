//! The log is the source of truth: state survives SIGKILL, and the read model rebuilt from
//! the log gives the same answers as the one it replaces.

use reqwest::Method;
use rstest_reuse::apply;
use serde_json::{Value, json};

use crate::helpers::{
    ADMINISTRATORS, Backend, CLIENT_ID, CLIENT_SECRET, LoggedEvent, NEW_PASSWORD, PASSWORD, PREFIX,
    SEED_EMAIL, SEED_GROUP, SEED_PASSWORD, SEED_USERNAME, SERVICE_ACCOUNT, TestApp, backends,
    column, encode, group_path, join_all, members_path, membership_path, password_path, user_path,
};

const MAYHEM: &str = "Project Mayhem";
const USERS: [&str; 4] = [SEED_USERNAME, "marla", "bob", SERVICE_ACCOUNT];

/// Several groups and users, memberships added and removed, one user with a password.
async fn build_history(app: &TestApp) {
    app.seed().await;
    app.create_group(MAYHEM).await;
    app.create_user("marla", "marla@fightclub.com", None).await;
    app.create_user("bob", "bob@fightclub.com", None).await;
    let (soap, mayhem) = (encode(SEED_GROUP), encode(MAYHEM));
    for user in ["marla", "bob", SEED_USERNAME] {
        app.add_member(&mayhem, user).await;
    }
    app.add_member(&soap, "bob").await;
    app.remove_member(&mayhem, "marla")
        .await
        .assert_no_content();
    app.remove_member(&soap, SEED_EMAIL)
        .await
        .assert_no_content();
    app.add_member(&encode(ADMINISTRATORS), "bob").await;
}

/// Every group's member list and every (group, user) HEAD answer, as one JSON value.
async fn answers(app: &TestApp) -> Value {
    let mut lists = Vec::new();
    let mut heads = Vec::new();
    for group in [SEED_GROUP, MAYHEM, ADMINISTRATORS] {
        let group = encode(group);
        lists.push(app.list_members(&group).await);
        for user in USERS {
            heads.push(json!([group, user, app.head_member(&group, user).await]));
        }
    }
    json!({ "lists": lists, "heads": heads })
}

fn count_bootstrap_events(app: &TestApp) -> (usize, usize, usize) {
    (
        app.count_of("UserCreated"),
        app.count_of("GroupCreated"),
        app.count_of("MemberAdded"),
    )
}

#[apply(backends)]
#[tokio::test]
async fn state_and_tokens_survive_a_kill_and_a_restart(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    build_history(&app).await;
    let tyler = app.token_for(SEED_USERNAME, SEED_PASSWORD).await;
    let before = answers(&app).await;
    let log_before = app.log_len();
    let counts_before = count_bootstrap_events(&app);

    app.restart().await;

    assert_eq!(answers(&app).await, before);
    assert_eq!(app.log_len(), log_before, "starting again appended events");
    assert_eq!(count_bootstrap_events(&app), counts_before);
    // The admin token issued before the kill is still honoured, and new ones are issued.
    assert_eq!(app.head_member(&encode(MAYHEM), "bob").await, 204);
    let fresh = app.client_token(CLIENT_ID, CLIENT_SECRET).await;
    assert!(!fresh.is_empty());
    // Tyler's password came back from the credentials stream; his token too.
    assert!(!app.token_for(SEED_EMAIL, SEED_PASSWORD).await.is_empty());
    let path = membership_path(PREFIX, &encode(MAYHEM), "bob");
    let answer = app.request(Method::HEAD, &path, &tyler).await;
    // A HEAD answer has no body; 403, not 401: the token is still good, Tyler is no admin.
    answer.assert_status(403);
    // And the service still changes things.
    app.remove_member(&encode(MAYHEM), "bob")
        .await
        .assert_no_content();
    assert_eq!(app.head_member(&encode(MAYHEM), "bob").await, 404);
}

#[apply(backends)]
#[tokio::test]
async fn a_removal_answered_no_content_survives_an_immediate_kill(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let seed = app.seed().await;
    let group = seed.group_id.to_string();

    app.remove_member(&group, SEED_USERNAME)
        .await
        .assert_no_content();
    app.stop();
    app.start().await;

    assert_eq!(app.head_member(&group, SEED_USERNAME).await, 404);
    assert_eq!(app.count_of("MemberRemoved"), 1);
}

#[apply(backends)]
#[tokio::test]
async fn starting_again_on_the_same_log_does_not_bootstrap_again(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let log_before = app.log_events();
    assert_eq!(
        log_before.len(),
        3,
        "bootstrap: a user, a group, a membership"
    );

    app.restart().await;
    app.restart().await;

    let log_after = app.log_events();
    let ids =
        |log: &[LoggedEvent]| -> Vec<String> { log.iter().map(|e| e.event_id.clone()).collect() };
    assert_eq!(ids(&log_after), ids(&log_before));
    assert_eq!(
        app.head_member(&encode(ADMINISTRATORS), SERVICE_ACCOUNT)
            .await,
        204
    );
}

#[apply(backends)]
#[tokio::test]
async fn a_service_account_removed_from_the_administrators_stays_removed_after_a_restart(
    backend: Backend,
) {
    let mut app = TestApp::spawn(backend).await;
    app.seed().await;
    let admins = encode(ADMINISTRATORS);
    app.add_member(&admins, SEED_USERNAME).await;
    app.remove_member(&admins, SERVICE_ACCOUNT)
        .await
        .assert_no_content();
    let tyler = app.token_for(SEED_USERNAME, SEED_PASSWORD).await;
    let log_before = app.log_len();

    app.restart().await;

    assert_eq!(app.log_len(), log_before, "starting again appended events");
    let path = membership_path(PREFIX, &admins, SERVICE_ACCOUNT);
    let answer = app.request(Method::HEAD, &path, &tyler).await;
    answer.assert_status(404);
    // The client's token names the account, which is no administrator any more.
    let fresh = app.client_token(CLIENT_ID, CLIENT_SECRET).await;
    let answer = app.request(Method::HEAD, &path, &fresh).await;
    answer.assert_status(403);
}

#[apply(backends)]
#[tokio::test]
async fn deleting_the_read_model_and_restarting_gives_the_same_answers(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    build_history(&app).await;
    // A lost race leaves a rejected event in the log; the rebuild must reject it again.
    app.add_member(&encode(SEED_GROUP), "marla").await;
    let soap = encode(SEED_GROUP);
    let racing: Vec<_> = (0..8).map(|_| app.remove_member(&soap, "marla")).collect();
    for answer in join_all(racing).await {
        assert!(matches!(answer.status.as_u16(), 204 | 409), "{answer:?}");
    }
    let before = answers(&app).await;
    let log_before = app.log_len();

    app.stop();
    app.delete_read_model();
    assert!(!app.data_dir().join("read.db").exists());
    app.start().await;

    assert_eq!(answers(&app).await, before);
    assert_eq!(app.log_len(), log_before, "the rebuild appended events");
    assert!(!app.token_for(SEED_USERNAME, SEED_PASSWORD).await.is_empty());
}

/// The last administrator cannot be removed, so an empty System Administrators group can
/// only mean that a first start was cut short between its events: the next start finishes.
/// Embedded only: the cut-short start is made by deleting a row from log.db.
#[tokio::test]
async fn a_first_start_cut_short_before_the_account_joined_the_administrators_is_finished_embedded()
{
    let mut app = TestApp::spawn(Backend::Embedded).await;
    app.stop();
    let joined = rusqlite::Connection::open(app.log_path())
        .unwrap()
        .execute("DELETE FROM events WHERE type = 'MemberAdded'", [])
        .unwrap();
    assert_eq!(joined, 1, "the first start added one member");
    app.delete_read_model();

    app.start().await;

    let token = app.client_token(CLIENT_ID, CLIENT_SECRET).await;
    let path = membership_path(PREFIX, &encode(ADMINISTRATORS), SERVICE_ACCOUNT);
    app.request(Method::HEAD, &path, &token)
        .await
        .assert_no_content();
    assert_eq!(count_bootstrap_events(&app), (1, 1, 1));
}

/// A clean stop copies each write-ahead log back into its database: the data dir it
/// leaves holds the whole state in `log.db` and `read.db`, with no log to read at the next
/// start (nor taking disk space). Embedded only: Kafka's log is the broker's.
#[tokio::test]
async fn a_clean_stop_leaves_no_write_ahead_log_to_replay_embedded() {
    let mut app = TestApp::spawn(Backend::Embedded).await;
    let group = app.new_group("Paper Street").await;
    let user = app.new_user("marla").await;
    app.add_member(&group, &user).await;
    let status = app.terminate().await;
    assert!(status.success(), "exit status {status}");
    for name in ["log.db-wal", "read.db-wal"] {
        let path = app.data_dir().join(name);
        let length = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert_eq!(length, 0, "{name} after a clean stop");
    }
    app.start().await;
    assert_eq!(app.head_member(&group, &user).await, 204);
}

/// The read model is written without syncs, beside a marker naming the boot it is
/// written in. A marker of another boot (the machine stopped mid-write) has the model,
/// however torn, rebuilt from the log; a clean stop syncs it and removes the marker.
#[apply(backends)]
#[tokio::test]
async fn a_read_model_left_by_a_machine_that_stopped_is_rebuilt_from_the_log(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    build_history(&app).await;
    let before = answers(&app).await;
    app.stop();
    let marker = app.data_dir().join("read.db-unsynced");
    assert!(marker.exists(), "a killed service leaves its marker");
    // What a power cut may leave behind: a torn file, written in a boot that is over.
    std::fs::write(app.data_dir().join("read.db"), b"torn pages").unwrap();
    std::fs::write(&marker, "an earlier boot").unwrap();

    app.start().await;

    assert_eq!(answers(&app).await, before);
    let status = app.terminate().await;
    assert!(status.success(), "exit status {status}");
    assert!(!marker.exists(), "a clean stop removes the marker");
}

/// A process killed in this boot lost nothing of the read model (its writes are in the
/// system's page cache): the next start keeps it rather than rebuilding it.
#[apply(backends)]
#[tokio::test]
async fn a_read_model_left_by_a_killed_process_is_kept(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    build_history(&app).await;
    let before = answers(&app).await;
    app.stop();
    // A table of no schema's, which only the file it was made in has.
    rusqlite::Connection::open(app.data_dir().join("read.db"))
        .unwrap()
        .execute_batch("CREATE TABLE kept (n INTEGER)")
        .unwrap();

    app.start().await;

    assert_eq!(answers(&app).await, before);
    app.stop();
    let kept: bool = rusqlite::Connection::open(app.data_dir().join("read.db"))
        .unwrap()
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'kept')",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(kept, "the read model was rebuilt, not kept");
}

// ---- replay ---------------------------------------------------------------------------

/// Every user and group, each group's members and groups below, as one JSON value.
async fn everything(app: &TestApp) -> Value {
    let users = app.get_json(&format!("{PREFIX}/users?pageSize=100")).await;
    let groups = app.get_json(&format!("{PREFIX}/groups?pageSize=100")).await;
    let mut trees = Vec::new();
    for name in column(&groups, "name") {
        let group = group_path(PREFIX, &name);
        let query = "?includeInherited=true&pageSize=100";
        trees.push(json!({
            "group": name,
            "direct": app.get_json(&format!("{group}/users?pageSize=100")).await,
            "members": app.get_json(&format!("{group}/users{query}")).await,
            "below": app.get_json(&format!("{group}/groups{query}&includeSelf=true")).await,
        }));
    }
    json!({ "users": users, "groups": groups, "trees": trees })
}

#[apply(backends)]
#[tokio::test]
async fn what_the_new_calls_did_is_rebuilt_from_the_log(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let marla = app.user_with_token("marla").await;
    app.user_with_token("bob").await;
    app.new_user("chloe").await;
    for name in ["Space Monkeys", "Committee", "Project Mayhem"] {
        app.new_group(name).await;
    }
    app.post_json(
        &members_path(PREFIX, "Space Monkeys"),
        &app.admin_token,
        &json!(["marla", "bob"]),
    )
    .await
    .assert_no_content();
    app.add_member("Committee", "chloe").await;
    app.nest("Project Mayhem", "Space Monkeys").await;
    app.nest("Space Monkeys", "Committee").await;
    let renamed = json!({ "username": "marla.singer", "email": "marla@fightclub.com" });
    app.put(&user_path(PREFIX, "marla"), &marla, &renamed)
        .await
        .assert_status(200);
    let body = json!({ "existing": PASSWORD, "new": NEW_PASSWORD });
    app.post_json(&password_path(PREFIX, "marla.singer"), &marla, &body)
        .await
        .assert_status(200);
    let described = json!({ "name": "Inner Circle", "type": "external" });
    app.put(
        &group_path(PREFIX, "Committee"),
        &app.admin_token,
        &described,
    )
    .await
    .assert_status(200);
    app.delete(&user_path(PREFIX, "bob"), &app.admin_token)
        .await
        .assert_no_content();
    app.delete(&group_path(PREFIX, "Space Monkeys"), &app.admin_token)
        .await
        .assert_no_content();
    let before = everything(&app).await;
    let log_before = app.log_len();

    app.stop();
    app.delete_read_model();
    app.start().await;

    assert_eq!(everything(&app).await, before);
    assert_eq!(app.log_len(), log_before, "starting again appended events");
    app.token_for("marla.singer", NEW_PASSWORD).await;
    assert_eq!(
        app.password_grant("bob@fightclub.com", PASSWORD)
            .await
            .oauth_error(),
        "invalid_grant"
    );
}

/// SIGTERM while writes are in flight: each gets a whole answer (204, 409 or 503) or a
/// refused connection, none is cut off, the service exits 0, and every 204 is in the log
/// when it starts again.
#[apply(backends)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_under_writes_answers_each_in_full_and_loses_no_acknowledged_one(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let group = app.new_group("Lou's Tavern").await;
    let mut users = Vec::new();
    for i in 0..40 {
        users.push(app.new_user(&format!("patron{i}")).await);
    }
    // A new connection per request: one kept alive from before the stop proves nothing.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let writes: Vec<_> = (users.iter().enumerate())
        .map(|(i, user)| {
            let request = client
                .put(app.url(&membership_path(PREFIX, &group, user)))
                .bearer_auth(&app.admin_token);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5 * i as u64)).await;
                match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body = response.bytes().await.map(|_| ());
                        (Some(status), body.err().map(|e| e.to_string()))
                    }
                    Err(error) if error.is_connect() => (None, None),
                    Err(error) => (None, Some(format!("{error:?}"))),
                }
            }
        })
        .collect();
    let stop = async {
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        app.terminate().await
    };
    let (answers, status) = tokio::join!(join_all(writes), stop);
    assert!(status.success(), "exit status {status}");
    for (user, (code, broken)) in users.iter().zip(&answers) {
        assert!(
            broken.is_none(),
            "the write for {user} was cut off: {broken:?}"
        );
        if let Some(code) = code {
            assert!(
                [204, 409, 503].contains(code),
                "the write for {user} answered {code}"
            );
        }
    }
    let acknowledged: Vec<&String> = (users.iter().zip(&answers))
        .filter(|(_, (code, _))| *code == Some(204))
        .map(|(user, _)| user)
        .collect();
    app.start().await;
    for user in &acknowledged {
        assert_eq!(
            app.head_member(&group, user).await,
            204,
            "{user} acknowledged, then lost"
        );
    }
    eprintln!(
        "{} writes acknowledged, {} refused a connection, of {}",
        acknowledged.len(),
        answers.iter().filter(|(code, _)| code.is_none()).count(),
        answers.len()
    );
}

/// While a start replays the log, the process is live but not ready, every call but the
/// health checks and metrics answers 503 `Starting`, and the metrics show the projector's
/// lag; once caught up it is ready, with no lag. Embedded only:
/// readiness is the service's, whatever the log.
#[tokio::test]
async fn readiness_is_503_while_the_log_is_replayed_and_200_after() {
    let mut app = TestApp::spawn(Backend::Embedded).await;
    let mut users = Vec::new();
    for i in 0..300 {
        users.push(app.new_user(&format!("patron{i}")).await);
    }
    for g in 0..30 {
        let group = app.new_group(&format!("Tavern {g}")).await;
        app.post_json(
            &members_path(PREFIX, &group),
            &app.admin_token,
            &json!(users),
        )
        .await
        .assert_no_content();
    }
    app.stop();
    app.delete_read_model();
    // A replay one event per transaction, on a port known before the start.
    let config =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"))
            .unwrap()
            .replace("batch_max = 1000", "batch_max = 1");
    let config_path = app.data_dir().with_file_name("slow-replay.toml");
    std::fs::write(&config_path, config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = app.command(&["serve"]);
    command
        .env("MEMBERSHIP_CONFIG", &config_path)
        .env("MEMBERSHIP_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let (mut starting, mut ready, mut lagging) = (false, false, false);
    let lag = async |base: &str| {
        let url = format!("{base}/metrics");
        let text = app
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let sample = |name| crate::metrics::sample(&text, name, &[]).unwrap();
        let lag = sample("membership_projector_lag_events");
        (lag, sample("membership_projector_lag_seconds"))
    };
    let deadline = std::time::Instant::now() + crate::helpers::SETTLE_TIMEOUT;
    while !ready && std::time::Instant::now() < deadline {
        let get = |path: &str| app.client.get(format!("{base}{path}")).send();
        let Ok(readiness) = get("/health/ready").await else {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        };
        match readiness.status().as_u16() {
            503 => {
                let live = get("/health/live").await.unwrap().status();
                let call = get(&format!("{PREFIX}/groups")).await.unwrap();
                let body: Value = call.json().await.unwrap();
                starting |= live == 200 && body["data"]["code"] == "Starting";
                let (events, seconds) = lag(&base).await;
                lagging |= events > 0.0 && seconds >= 0.0;
            }
            200 => ready = true,
            other => panic!("/health/ready answered {other}"),
        }
    }
    let caught_up = lag(&base).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        starting,
        "never seen live and not ready, with calls answered 503 Starting"
    );
    assert!(ready, "never ready");
    assert!(
        lagging,
        "never seen the projector's lag in events during the replay"
    );
    assert_eq!(caught_up, (0.0, 0.0), "a lag once ready");
}

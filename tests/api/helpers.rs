//! `TestApp`: the real `membershipd` binary on a random port with a fresh data dir, on
//! either log backend, and typed helpers to call it and to read what it wrote to its log.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};
use uuid::Uuid;

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

/// Start-up includes hashing the client secret and replaying the log.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `eventually` waits by default for something asynchronous to show.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

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

pub fn membership_path(prefix: &str, group: &str, user: &str) -> String {
    format!("{prefix}/groups/{group}/users/{user}")
}

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

/// The shared broker for the Kafka cases, exported by `tests/with-broker.sh`.
pub const TEST_BROKERS_VAR: &str = "MEMBERSHIP_TEST_KAFKA_BROKERS";
/// What the service reads to keep its log in Kafka, and which topic.
const BROKERS_VAR: &str = "MEMBERSHIP_KAFKA_BROKERS";
const TOPIC_VAR: &str = "MEMBERSHIP_KAFKA_TOPIC";
/// The service's topic when `MEMBERSHIP_KAFKA_TOPIC` is not set (config/default.toml).
const DEFAULT_TOPIC: &str = "membership.events";
/// Variables of the developer's shell that must not leak into the service under test.
const INHERITED_VARS_REMOVED: [&str; 5] = [
    "MEMBERSHIP_CONFIG",
    "MEMBERSHIP_WAIT_TIMEOUT_MS",
    BROKERS_VAR,
    TOPIC_VAR,
    "MEMBERSHIP_KAFKA_DELIVERY_TIMEOUT_MS",
];

/// The shared test broker, or a failure that says how to get one: a Kafka case never
/// skips and never falls back to the embedded log.
pub fn test_brokers() -> String {
    match std::env::var(TEST_BROKERS_VAR) {
        Ok(brokers) if !brokers.trim().is_empty() => brokers,
        _ => panic!(
            "{TEST_BROKERS_VAR} is not set, so this Kafka case has no broker to run against. \
             Run the suite with `make test`, or wrap the command in tests/with-broker.sh \
             (e.g. `tests/with-broker.sh cargo test --test api`), which starts a Tansu broker \
             and sets it."
        ),
    }
}

/// The Kafka log of one service: its brokers and its events topic (credentials go to
/// `<topic>.credentials`), and the consumers that read it back for the test.
pub struct KafkaLog {
    pub brokers: String,
    pub topic: String,
    /// Kept between reads, so that each read only fetches what is new. Taken out while a
    /// read runs: a read that fails leaves none, and the next read starts afresh.
    readers: Mutex<Option<[TopicReader; 2]>>,
}

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub client: reqwest::Client,
    /// A client-credentials token of the bootstrap client, an administrator.
    pub admin_token: String,
    /// Set when the service keeps its log in Kafka; `None`: the embedded log.db.
    pub kafka: Option<KafkaLog>,
    env: Vec<(String, String)>,
    root: tempfile::TempDir,
    child: Option<Child>,
    /// What the process printed on stdout before `listening on`, at its latest start.
    pub startup_output: Vec<String>,
}

/// A value for `spawn_with` and `spawn_on` that leaves the variable unset, e.g. the
/// secrets the harness otherwise configures.
pub const UNSET: &str = "\u{0}unset";

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_on(backend, &[]).await
    }

    /// Starts the service on the backend with extra environment variables. On Kafka the
    /// log is a fresh topic of its own on the shared test broker.
    pub async fn spawn_on(backend: Backend, extra_env: &[(&str, &str)]) -> Self {
        match backend {
            Backend::Embedded => Self::spawn_with(extra_env).await,
            Backend::Kafka => {
                let brokers = test_brokers();
                let topic = format!("test-{}", Uuid::new_v4());
                let mut env = vec![(BROKERS_VAR, brokers.as_str()), (TOPIC_VAR, topic.as_str())];
                env.extend_from_slice(extra_env);
                Self::spawn_with(&env).await
            }
        }
    }

    /// Starts the service with extra environment variables, e.g. a short wait timeout. The
    /// log is embedded unless they set `MEMBERSHIP_KAFKA_BROKERS`; then it is in Kafka, in
    /// `MEMBERSHIP_KAFKA_TOPIC` (the service's default topic if unset).
    pub async fn spawn_with(extra_env: &[(&str, &str)]) -> Self {
        let root = tempfile::tempdir().expect("creating a temporary dir");
        let mut env: Vec<(String, String)> = vec![
            ("MEMBERSHIP_HTTP_ADDR".into(), "127.0.0.1:0".into()),
            (
                "MEMBERSHIP_DATA_DIR".into(),
                root.path().join("data").display().to_string(),
            ),
            ("MEMBERSHIP_ADMIN_CLIENT_ID".into(), CLIENT_ID.into()),
            (
                "MEMBERSHIP_ADMIN_CLIENT_SECRET".into(),
                CLIENT_SECRET.into(),
            ),
            ("MEMBERSHIP_TOKEN_SECRET".into(), TOKEN_SECRET.into()),
        ];
        env.extend(
            extra_env
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        let unset: Vec<String> = (env.iter())
            .filter(|(_, value)| value == UNSET)
            .map(|(name, _)| name.clone())
            .collect();
        env.retain(|(name, _)| !unset.contains(name));
        let var = |name: &str| {
            env.iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, value)| value.trim().to_owned())
        };
        let kafka = var(BROKERS_VAR)
            .filter(|brokers| !brokers.is_empty())
            .map(|brokers| KafkaLog {
                brokers,
                topic: var(TOPIC_VAR).unwrap_or_else(|| DEFAULT_TOPIC.to_owned()),
                readers: Mutex::new(None),
            });
        let mut app = Self {
            address: String::new(),
            client: http_client(),
            admin_token: String::new(),
            kafka,
            env,
            root,
            child: None,
            startup_output: Vec::new(),
        };
        app.start().await;
        let secret = app.client_secret();
        app.admin_token = app.client_token(CLIENT_ID, &secret).await;
        app
    }

    /// The bootstrap client's secret: the configured one, or else the one the service
    /// generated and printed at start.
    pub fn client_secret(&self) -> String {
        if let Some((_, secret)) = self
            .env
            .iter()
            .rev()
            .find(|(name, _)| name == "MEMBERSHIP_ADMIN_CLIENT_SECRET")
        {
            return secret.clone();
        }
        if let Some(printed) = self.printed_client_secret() {
            return printed;
        }
        let path = self.data_dir().join("secrets.json");
        let stored: Value = serde_json::from_slice(&std::fs::read(&path).expect("secrets.json"))
            .expect("secrets.json is JSON");
        stored["adminClientSecret"]
            .as_str()
            .expect("adminClientSecret in secrets.json")
            .to_owned()
    }

    /// The client secret on the `bootstrap client:` line of the latest start, if printed.
    pub fn printed_client_secret(&self) -> Option<String> {
        let printed = (self.startup_output.iter())
            .find_map(|line| line.strip_prefix("bootstrap client: "))?;
        let secret = printed
            .split_whitespace()
            .find_map(|field| field.strip_prefix("client_secret="))?;
        Some(secret.to_owned())
    }

    /// Sets (or with [`UNSET`], removes) a variable for the next start.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(n, _)| n != name);
        if value != UNSET {
            self.env.push((name.into(), value.into()));
        }
    }

    /// A client whose connections come from `address` (another loopback address, such as
    /// 127.0.0.2, is another source as far as the service can tell).
    pub fn client_from(address: std::net::IpAddr) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .local_address(address)
            .build()
            .expect("building an HTTP client")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The binary with the service's own settings (data dir, log), for a subcommand such
    /// as `rebuild` or `events tail`; output piped.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_membershipd"));
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in INHERITED_VARS_REMOVED {
            command.env_remove(name);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    /// The embedded log's file (absent on Kafka).
    pub fn log_path(&self) -> PathBuf {
        self.data_dir().join("log.db")
    }

    fn stderr_path(&self) -> PathBuf {
        self.root.path().join("membershipd.stderr")
    }

    /// Starts the binary on the data dir and waits for its `listening on` line.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "the service is already running");
        let env = self.env.clone();
        let stderr_path = self.stderr_path();
        let (child, address, output) =
            tokio::task::spawn_blocking(move || launch(&env, &stderr_path))
                .await
                .expect("the launcher panicked");
        self.child = Some(child);
        self.address = address;
        self.startup_output = output;
        // A new process: no connection kept alive from the last one may be reused (the
        // new one can get the same port, and the old connections are dead).
        self.client = http_client();
    }

    /// Kills the process (SIGKILL: no clean shutdown) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL, then start again on the same data dir (on a new port).
    pub async fn restart(&mut self) {
        self.stop();
        self.start().await;
    }

    /// Deletes the read model (`read.db` and its `-wal`/`-shm`); only while stopped.
    pub fn delete_read_model(&self) {
        assert!(
            self.child.is_none(),
            "stop the service before deleting read.db"
        );
        for name in ["read.db", "read.db-wal", "read.db-shm"] {
            let path = self.data_dir().join(name);
            if path.exists() {
                std::fs::remove_file(&path)
                    .unwrap_or_else(|e| panic!("deleting {}: {e}", path.display()));
            }
        }
    }

    /// The service's own log lines so far, for failure messages.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    // ---- raw requests -------------------------------------------------------------

    pub async fn request(&self, method: Method, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Answer::read(request.send().await.expect("sending a request")).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.request_json(Method::POST, path, token, body).await
    }

    /// A request with a JSON body.
    pub async fn request_json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Answer {
        let mut request = self.client.request(method, self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Answer::read(request.send().await.expect("sending a request")).await
    }

    /// A request with a body sent as is, with the given content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(&self.admin_token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("sending a request");
        Answer::read(response).await
    }

    // ---- tokens --------------------------------------------------------------------

    pub async fn token_request(&self, form: &[(&str, &str)]) -> Answer {
        let response = self
            .client
            .post(self.url("/authenticate/connect/token"))
            .form(form)
            .send()
            .await
            .expect("sending a token request");
        Answer::read(response).await
    }

    pub async fn client_token(&self, client_id: &str, secret: &str) -> String {
        let answer = self
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
            ])
            .await;
        answer.access_token()
    }

    /// A password-grant token for a user created with a password.
    pub async fn token_for(&self, login: &str, password: &str) -> String {
        let answer = self
            .token_request(&[
                ("grant_type", "password"),
                ("username", login),
                ("password", password),
            ])
            .await;
        answer.access_token()
    }

    // ---- users and groups ----------------------------------------------------------

    pub async fn try_create_group(&self, body: &Value) -> Answer {
        let path = format!("{PREFIX}/groups");
        self.post_json(&path, Some(&self.admin_token), body).await
    }

    /// Creates a group and returns it as the service answered (201).
    pub async fn create_group(&self, name: &str) -> Value {
        let answer = self
            .try_create_group(&json!({ "name": name, "description": "made by a test" }))
            .await;
        answer.assert_status(201);
        answer.json()
    }

    pub async fn try_create_user(&self, body: &Value) -> Answer {
        let path = format!("{PREFIX}/users");
        self.post_json(&path, Some(&self.admin_token), body).await
    }

    /// Creates a user (with a password if given) and returns it as answered (201).
    pub async fn create_user(&self, username: &str, email: &str, password: Option<&str>) -> Value {
        let mut body = json!({
            "username": username,
            "email": email,
            "firstname": "Tyler",
            "lastname": "Durden",
        });
        if let Some(password) = password {
            body["credentials"] = json!({ "password": password });
        }
        let answer = self.try_create_user(&body).await;
        answer.assert_status(201);
        answer.json()
    }

    // ---- memberships (identifiers are passed as they go in the path) ---------------

    pub async fn put_member(&self, group: &str, user: &str) -> Answer {
        let path = membership_path(PREFIX, group, user);
        self.request(Method::PUT, &path, Some(&self.admin_token))
            .await
    }

    pub async fn add_member(&self, group: &str, user: &str) {
        self.put_member(group, user).await.assert_status(204);
    }

    pub async fn remove_member(&self, group: &str, user: &str) -> Answer {
        self.remove_member_at(PREFIX, group, user).await
    }

    pub async fn remove_member_at(&self, prefix: &str, group: &str, user: &str) -> Answer {
        let path = membership_path(prefix, group, user);
        self.request(Method::DELETE, &path, Some(&self.admin_token))
            .await
    }

    /// The status of `HEAD .../groups/{g}/users/{u}`: 204 member, 404 not.
    pub async fn head_member(&self, group: &str, user: &str) -> u16 {
        let path = membership_path(PREFIX, group, user);
        self.request(Method::HEAD, &path, Some(&self.admin_token))
            .await
            .status
            .as_u16()
    }

    pub async fn list_members_page(&self, group: &str, query: &str) -> Answer {
        let path = format!("{PREFIX}/groups/{group}/users{query}");
        self.request(Method::GET, &path, Some(&self.admin_token))
            .await
    }

    /// The first page (up to 100) of a group's direct members, as answered (200).
    /// An administrator's GET that must answer 200; its JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        let answer = self
            .request(Method::GET, path, Some(&self.admin_token))
            .await;
        answer.assert_status(200);
        answer.json()
    }

    pub async fn list_members(&self, group: &str) -> Value {
        let answer = self.list_members_page(group, "?pageSize=100").await;
        answer.assert_status(200);
        answer.json()
    }

    /// The seed page's group and user, with the user a member of the group.
    pub async fn seed(&self) -> Seed {
        let group = self.create_group(SEED_GROUP).await;
        let user = self
            .create_user(SEED_USERNAME, SEED_EMAIL, Some(SEED_PASSWORD))
            .await;
        let seed = Seed {
            group_id: uuid_field(&group, "id"),
            user_id: uuid_field(&user, "id"),
        };
        self.add_member(&seed.group_id.to_string(), &seed.user_id.to_string())
            .await;
        seed
    }

    // ---- the log -------------------------------------------------------------------

    /// Every event in the log, `events` then `credentials`, each in log order: the rows of
    /// both log.db tables, or every record of both Kafka topics read to their end.
    pub fn log_events(&self) -> Vec<LoggedEvent> {
        match &self.kafka {
            Some(kafka) => kafka.events(),
            None => self.embedded_log_events(),
        }
    }

    /// Both log.db tables, read-only.
    fn embedded_log_events(&self) -> Vec<LoggedEvent> {
        let conn = Connection::open_with_flags(self.log_path(), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("opening log.db read-only");
        let mut rows = Vec::new();
        for table in ["events", "credentials"] {
            let sql = format!("SELECT event_id, type, payload FROM {table} ORDER BY offset");
            let mut statement = conn.prepare(&sql).expect("preparing a log query");
            let found = statement
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })
                .expect("reading the log");
            for row in found {
                let (event_id, event_type, payload) = row.expect("reading a log row");
                let payload = serde_json::from_str(&payload)
                    .unwrap_or_else(|e| panic!("a log payload is not JSON ({e}): {payload}"));
                rows.push(LoggedEvent {
                    table,
                    event_id,
                    event_type,
                    payload,
                });
            }
        }
        rows
    }

    pub fn log_len(&self) -> usize {
        self.log_events().len()
    }

    pub fn count_of(&self, event_type: &str) -> usize {
        self.log_events()
            .iter()
            .filter(|e| e.event_type == event_type)
            .count()
    }

    pub fn events_of(&self, event_type: &str) -> Vec<LoggedEvent> {
        self.log_events()
            .into_iter()
            .filter(|e| e.event_type == event_type)
            .collect()
    }

    /// Asserts that the log holds exactly `before` events: the request appended nothing.
    /// Call it once the request has been answered: the service appends before it answers,
    /// so on Kafka reading both topics to their end then shows any append.
    pub fn assert_nothing_appended(&self, before: usize) {
        let after = self.log_events();
        assert_eq!(
            after.len(),
            before,
            "the log grew from {before} to {} rows; new: {:#?}",
            after.len(),
            &after[before.min(after.len())..]
        );
    }

    /// Opens log.db as a second writer and takes its write lock until the guard drops.
    pub fn lock_log(&self) -> LogLock {
        assert!(
            self.kafka.is_none(),
            "lock_log needs the embedded log; this service keeps its log in Kafka"
        );
        let conn = Connection::open(self.log_path()).expect("opening log.db to lock it");
        conn.execute_batch("BEGIN EXCLUSIVE")
            .expect("taking the log's write lock");
        LogLock { conn: Some(conn) }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let log = self.server_log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "---- membershipd stderr (last lines) ----\n{}",
                tail.join("\n")
            );
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("building the HTTP client")
}

/// Spawns the binary and reads its stdout until the `listening on` line, within a deadline;
/// with the lines before it.
fn launch(env: &[(String, String)], stderr_path: &Path) -> (Child, String, Vec<String>) {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_path)
        .expect("opening the stderr file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_membershipd"));
    command
        .arg("serve")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    for name in INHERITED_VARS_REMOVED {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawning membershipd");
    let stdout = child.stdout.take().expect("the child's stdout");
    let (lines, listening) = mpsc::channel();
    // Reads stdout to its end, so that the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut before = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match line.strip_prefix("listening on ") {
                Some(address) => {
                    let printed = std::mem::take(&mut before);
                    let _ = lines.send((address.trim().to_owned(), printed));
                }
                None => before.push(line),
            }
        }
    });
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        match listening.recv_timeout(Duration::from_millis(100)) {
            Ok((address, printed)) => return (child, address, printed),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "membershipd closed stdout before listening ({status:?}); stderr:\n{}",
                    std::fs::read_to_string(stderr_path).unwrap_or_default()
                );
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "membershipd exited before listening ({status}); stderr:\n{}",
                std::fs::read_to_string(stderr_path).unwrap_or_default()
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("membershipd did not print `listening on` within {STARTUP_TIMEOUT:?}");
        }
    }
}

/// Holds log.db's write lock; dropping it rolls back the (empty) transaction.
pub struct LogLock {
    conn: Option<Connection>,
}

impl LogLock {
    pub fn release(mut self) {
        self.unlock();
    }

    fn unlock(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.execute_batch("ROLLBACK")
                .expect("releasing the log's write lock");
        }
    }
}

impl Drop for LogLock {
    fn drop(&mut self) {
        self.unlock();
    }
}

/// How long reading a topic to its end may take before the test fails.
const KAFKA_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one metadata request may take.
const KAFKA_METADATA_TIMEOUT: Duration = Duration::from_secs(10);

impl KafkaLog {
    pub fn credentials_topic(&self) -> String {
        format!("{}.credentials", self.topic)
    }

    /// Every record of both topics, events then credentials, each read from the beginning
    /// to the end of every partition. A consumer per topic: an end-of-partition event
    /// names the partition only, not the topic.
    pub fn events(&self) -> Vec<LoggedEvent> {
        let kept = self
            .readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let mut readers = kept.unwrap_or_else(|| {
            [
                TopicReader::new(&self.brokers, &self.topic, "events"),
                TopicReader::new(&self.brokers, &self.credentials_topic(), "credentials"),
            ]
        });
        std::thread::scope(|scope| {
            for reader in &mut readers {
                scope.spawn(|| reader.read_to_end());
            }
        });
        let events = readers
            .iter()
            .flat_map(|reader| reader.events.iter().map(|(_, event)| event.clone()))
            .collect();
        *self.readers.lock().unwrap_or_else(|e| e.into_inner()) = Some(readers);
        events
    }
}

impl Drop for KafkaLog {
    /// Closing a consumer takes a while (about 0.1 s): let it happen off the test's path.
    fn drop(&mut self) {
        if let Some(readers) = self
            .readers
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            std::thread::spawn(move || drop(readers));
        }
    }
}

impl fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaLog")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// One topic read back from the beginning, by a consumer assigned its partitions (no
/// group offsets). Every record is checked on the way in.
struct TopicReader {
    consumer: BaseConsumer,
    brokers: String,
    topic: String,
    table: &'static str,
    /// Every partition's next offset to read.
    next: BTreeMap<i32, i64>,
    /// Everything read so far, in (partition, offset) order.
    events: Vec<((i32, i64), LoggedEvent)>,
}

impl TopicReader {
    fn new(brokers: &str, topic: &str, table: &'static str) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            // librdkafka assigns partitions only with a group; a fresh one commits nothing.
            .set("group.id", format!("membership-tests-{}", Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            // Tansu answers a waiting fetch only when this expires, not when records arrive.
            .set("fetch.wait.max.ms", "10")
            .create()
            .unwrap_or_else(|e| panic!("creating a Kafka consumer for {brokers}: {e}"));
        let metadata = consumer
            .fetch_metadata(Some(topic), KAFKA_METADATA_TIMEOUT)
            .unwrap_or_else(|e| {
                panic!("reading the metadata of the topic {topic} on {brokers}: {e}")
            });
        let mut next = BTreeMap::new();
        for found in metadata.topics().iter().filter(|t| t.name() == topic) {
            if let Some(error) = found.error() {
                panic!("the topic {topic} on {brokers}: {error:?}");
            }
            next.extend(found.partitions().iter().map(|p| (p.id(), 0)));
        }
        assert!(
            !next.is_empty(),
            "the topic {topic} has no partitions on {brokers}"
        );
        Self {
            consumer,
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            table,
            next,
            events: Vec::new(),
        }
    }

    /// Reads what is new, up to the end of every partition. Assigning the partitions again
    /// (at the next offsets) makes the consumer report each end anew.
    fn read_to_end(&mut self) {
        let (brokers, topic) = (&self.brokers, &self.topic);
        let mut assignment = TopicPartitionList::new();
        for (&partition, &offset) in &self.next {
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(offset))
                .expect("assigning a partition");
        }
        self.consumer
            .assign(&assignment)
            .unwrap_or_else(|e| panic!("assigning the topic {topic} on {brokers}: {e}"));
        let deadline = Instant::now() + KAFKA_READ_TIMEOUT;
        let mut new = Vec::new();
        let mut at_end = HashSet::new();
        let mut last_error = None;
        while at_end.len() < self.next.len() {
            if Instant::now() >= deadline {
                panic!(
                    "reading the topic {topic} on {brokers}: the end of every partition was \
                     not reached within {KAFKA_READ_TIMEOUT:?} ({} new records; at the end \
                     of {at_end:?}; last error: {last_error:?})",
                    new.len()
                );
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(message)) => {
                    at_end.remove(&message.partition());
                    new.push(KafkaRecord::of(&message));
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    at_end.insert(partition);
                }
                // librdkafka retries by itself; the error only explains a time-out.
                Some(Err(error)) => last_error = Some(error),
            }
        }
        for record in new {
            // Offsets may skip (Kafka allows gaps), never go back.
            assert!(
                record.offset >= self.next[&record.partition],
                "reading the topic {topic}: offset {} of partition {} read twice",
                record.offset,
                record.partition
            );
            self.next.insert(record.partition, record.offset + 1);
            let position = (record.partition, record.offset);
            let event = record.into_logged_event(self.table, topic);
            self.events.push((position, event));
        }
        // With several partitions, keep (partition, offset) order.
        self.events.sort_by_key(|(position, _)| *position);
    }
}

/// One Kafka record as read.
struct KafkaRecord {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    payload: Vec<u8>,
}

impl KafkaRecord {
    fn of(message: &BorrowedMessage<'_>) -> Self {
        Self {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            headers: message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
            payload: message.payload().unwrap_or_default().to_vec(),
        }
    }

    /// Type and id come from the payload, as on log.db; the headers and the key must agree.
    fn into_logged_event(self, table: &'static str, topic: &str) -> LoggedEvent {
        let at = format!("{topic}/{} offset {}", self.partition, self.offset);
        let text = String::from_utf8_lossy(&self.payload);
        let payload: Value = serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("the record at {at} is not JSON ({e}): {text}"));
        let field = |name: &str| -> String {
            payload[name]
                .as_str()
                .unwrap_or_else(|| panic!("the record at {at} has no `{name}`: {payload}"))
                .to_owned()
        };
        let (event_type, event_id) = (field("type"), field("id"));
        // The CloudEvents binary-mode headers (docs/events.md); both topics name the log
        // by its events topic.
        let events_topic = match table {
            "credentials" => topic.strip_suffix(".credentials").unwrap_or(topic),
            _ => topic,
        };
        let cloud_event = [
            ("ce_specversion", "1.0".to_owned()),
            ("ce_id", event_id.clone()),
            ("ce_source", format!("urn:membershipd:{events_topic}")),
            ("ce_type", event_type.clone()),
            ("ce_time", field("time")),
            ("content-type", "application/json".to_owned()),
        ];
        assert_eq!(
            self.headers.len(),
            cloud_event.len(),
            "the record at {at} has other headers than {cloud_event:?}: {:?}",
            self.headers
        );
        for (header, expected) in &cloud_event {
            let values: Vec<_> = self
                .headers
                .iter()
                .filter(|(key, _)| key == header)
                .map(|(_, value)| value.as_deref().map(String::from_utf8_lossy))
                .collect();
            assert_eq!(
                values,
                [Some(expected.as_str().into())],
                "the `{header}` header of the record at {at} does not match its payload {payload}"
            );
        }
        let key = self.key.as_deref().map(String::from_utf8_lossy);
        assert_eq!(
            key.as_deref(),
            Some(field("aggregateId").as_str()),
            "the key of the record at {at} is not its aggregate id: {payload}"
        );
        LoggedEvent {
            table,
            event_id,
            event_type,
            payload,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Seed {
    pub group_id: Uuid,
    pub user_id: Uuid,
}

#[derive(Debug, Clone)]
pub struct LoggedEvent {
    /// The stream: `events` or `credentials` (the log.db table, or the Kafka topic
    /// `<topic>` or `<topic>.credentials`).
    pub table: &'static str,
    pub event_id: String,
    pub event_type: String,
    pub payload: Value,
}

/// One HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("reading a response body");
        Self {
            status,
            headers,
            text,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "the body of a {} is not JSON ({e}): {:?}",
                self.status, self.text
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn assert_status(&self, status: u16) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
    }

    /// A 204 with nothing in the body.
    pub fn assert_no_content(&self) {
        self.assert_status(204);
        assert!(self.text.is_empty(), "a 204 with a body: {:?}", self.text);
    }

    /// Asserts the status and the Contensis Error body; returns its `data`.
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        self.assert_status(status);
        let body = self.json();
        assert_eq!(body["data"]["code"], code, "unexpected code in {body}");
        assert_error_shape(&body);
        body["data"].clone()
    }

    /// The `access_token` of a 200 from the token endpoint.
    pub fn access_token(&self) -> String {
        self.assert_status(200);
        let body = self.json();
        assert_eq!(body["token_type"], "Bearer", "{body}");
        assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0), "{body}");
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in {body}"))
            .to_owned()
    }

    /// The `error` of an OAuth error answer (400).
    pub fn oauth_error(&self) -> String {
        self.assert_status(400);
        let body = self.json();
        body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no `error` in {body}"))
            .to_owned()
    }
}

/// `{"logId": uuid, "message": "...", "data": {"code": ...}, "type": "error"}`, nothing else.
pub fn assert_error_shape(body: &Value) {
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["data", "logId", "message", "type"], "{body}");
    assert_uuid(&body["logId"]);
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message in {body}"
    );
    assert!(body["data"]["code"].is_string(), "no data.code in {body}");
    assert_eq!(body["type"], "error", "{body}");
}

pub fn assert_uuid(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|text| Uuid::try_parse(text).ok())
        .unwrap_or_else(|| panic!("not a UUID: {value}"))
}

pub fn uuid_field(value: &Value, field: &str) -> Uuid {
    assert_uuid(&value[field])
}

/// An HS256 token with the service's claims for a user's first password, signed with
/// `secret`.
pub fn sign_token(secret: &str, sub: Uuid, iat: u64, exp: u64) -> String {
    let claims = json!({
        "sub": sub, "iss": "membershipd", "iat": iat, "exp": exp,
        "jti": Uuid::new_v4(), "cred": "p:1", "sus": 0,
    });
    sign_claims(secret, &claims)
}

/// A token of `claims`, signed with `secret`.
pub fn sign_claims(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signing a token")
}

/// The claims of a token, read without checking its signature or expiry.
#[track_caller]
pub fn claims_of(token: &str) -> Value {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.insecure_disable_signature_validation();
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(b""),
        &validation,
    )
    .expect("a token's claims")
    .claims
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// Polls `probe` until it gives `Some`, or panics naming `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match eventually_or_none(timeout, probe).await {
        Some(found) => found,
        None => panic!("gave up after {timeout:?} waiting for {what}"),
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
pub async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
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

/// `MemberRemoved` -> `member-removed`
pub fn kebab_case(event_type: &str) -> String {
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

/// The validator of `schemas/<kebab-case type>.json`.
pub fn schema_for(event_type: &str) -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
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

/// The `property` of each item of a list answer, in order.
pub fn column(body: &Value, property: &str) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {body}"))
        .iter()
        .map(|item| item[property].as_str().unwrap().to_owned())
        .collect()
}

//! The service under test: the real `membershipd` binary on a random port with a fresh data
//! dir, on either log backend; started, killed and started again as a test needs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use super::kafka::KafkaLog;
use super::{Backend, CLIENT_ID, CLIENT_SECRET, TOKEN_SECRET, test_brokers};

/// Start-up includes hashing the client secret and replaying the log.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Shorter than the service's keep-alive (actix-web closes a connection idle for 5 s): a
/// pooled connection is never taken just as the service closes it, which fails the request
/// with an incomplete message.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(3);

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
                let topic = format!("test-{}", Uuid::new_v4());
                Self::spawn_on_topic(&test_brokers(), &topic, extra_env).await
            }
        }
    }

    /// Starts the service with its log in Kafka: on `brokers`, its events in `topic` (made
    /// if missing), with extra environment variables. Another instance on the same topic
    /// shares the log.
    pub async fn spawn_on_topic(brokers: &str, topic: &str, extra_env: &[(&str, &str)]) -> Self {
        let mut env = vec![(BROKERS_VAR, brokers), (TOPIC_VAR, topic)];
        env.extend_from_slice(extra_env);
        Self::spawn_with(&env).await
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
            .map(|brokers| {
                let topic = var(TOPIC_VAR).unwrap_or_else(|| DEFAULT_TOPIC.to_owned());
                KafkaLog::new(brokers, topic)
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
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
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

    /// Sends SIGTERM (a clean stop) and waits for the process to exit, at most
    /// `SETTLE_TIMEOUT`; its exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the service is running");
        let signalled = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(signalled.success(), "kill -TERM: {signalled}");
        let deadline = std::time::Instant::now() + super::SETTLE_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for membershipd") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "membershipd did not exit within {:?} of SIGTERM",
                super::SETTLE_TIMEOUT
            );
            tokio::time::sleep(super::POLL_INTERVAL).await;
        }
    }

    /// SIGKILL, then start again on the same data dir (on a new port).
    pub async fn restart(&mut self) {
        self.stop();
        self.start().await;
    }

    /// Deletes the read model (`read.db` and its `-wal`/`-shm`); only while stopped.
    #[track_caller]
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
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
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

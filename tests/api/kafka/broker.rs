//! The brokers the Kafka tests run against: a Tansu of the test's own (killed and started
//! again on the same storage), the shared one of `make test`, or librdkafka's mock cluster.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use uuid::Uuid;

use crate::helpers::{POLL_INTERVAL, credentials_topic, shared_brokers};

/// How long a Tansu broker may take to print `ready in`.
const TANSU_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

// ---- brokers ---------------------------------------------------------------------------

/// The Tansu binary, or a failure that says where it was looked for.
#[track_caller]
pub fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MEMBERSHIP_TEST_TANSU").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "MEMBERSHIP_TEST_TANSU={} is not a file",
            path.display()
        );
        return path;
    }
    let in_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("tansu"))
                .collect()
        })
        .unwrap_or_default();
    let in_cargo =
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo/bin/tansu"));
    in_path
        .into_iter()
        .chain(in_cargo)
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no Tansu broker for the Kafka tests: set MEMBERSHIP_TEST_TANSU, or install it \
                 (`make tansu`, or `cargo install tansu --version 0.6.0 --locked --features \
                 libsql`) so that it is in PATH or ~/.cargo/bin"
            )
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("finding a free port")
        .port()
}

/// A Tansu broker of the test's own: its storage in a temporary dir, on a fixed port, so
/// that it can be killed and started again on the same storage and address.
pub struct Tansu {
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Tansu {
    pub async fn start() -> Self {
        let mut tansu = Self {
            binary: tansu_binary(),
            dir: tempfile::tempdir().expect("creating a dir for Tansu"),
            port: free_port(),
            child: None,
        };
        tansu.launch().await;
        tansu
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("tansu.log")
    }

    /// Its output so far, every run of it.
    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts it on its storage and waits for `ready in`.
    pub async fn launch(&mut self) {
        assert!(self.child.is_none(), "Tansu is already running");
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("opening Tansu's log");
        let seen = log.metadata().map(|m| m.len() as usize).unwrap_or(0);
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&self.binary)
            .args(["broker", "--storage-engine", "sqlite://tansu.db"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("sharing Tansu's log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let output = std::fs::read(&log_path).unwrap_or_default();
            if String::from_utf8_lossy(&output[seen.min(output.len())..]).contains("ready in") {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "Tansu exited before it was ready ({status}):\n{}",
                    self.log()
                );
            }
            if started.elapsed() > TANSU_STARTUP_TIMEOUT {
                panic!(
                    "Tansu did not print `ready in` within {TANSU_STARTUP_TIMEOUT:?}:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// SIGKILL: no chance to finish anything in flight.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            // A panic inside Tansu explains what follows it, however long ago it was.
            for (i, line) in lines.iter().enumerate() {
                if line.contains("panicked at") {
                    let end = (i + 2).min(lines.len());
                    eprintln!("---- tansu panicked ----\n{}", lines[i..end].join("\n"));
                }
            }
            let tail = &lines[lines.len().saturating_sub(30)..];
            eprintln!("---- tansu output (last lines) ----\n{}", tail.join("\n"));
        }
    }
}

/// A Tansu to run against: the shared one of `make test`, else one of the test's own.
pub enum Broker {
    Shared(String),
    Private(Tansu),
}

impl Broker {
    pub async fn tansu() -> Self {
        match shared_brokers() {
            Some(brokers) => Self::Shared(brokers),
            None => Self::Private(Tansu::start().await),
        }
    }

    pub fn brokers(&self) -> String {
        match self {
            Self::Shared(brokers) => brokers.clone(),
            Self::Private(tansu) => tansu.brokers(),
        }
    }
}

/// librdkafka's mock cluster, one broker, with both topics made: it has no CreateTopics.
pub fn mock_cluster(topic: &str) -> MockCluster<'static, DefaultProducerContext> {
    let mock = MockCluster::new(1).expect("starting librdkafka's mock cluster");
    for name in [topic.to_owned(), credentials_topic(topic)] {
        mock.create_topic(&name, 1, 1)
            .unwrap_or_else(|e| panic!("creating {name} on the mock cluster: {e}"));
    }
    mock
}

pub fn unique_topic() -> String {
    format!("kafka-test-{}", Uuid::new_v4().simple())
}

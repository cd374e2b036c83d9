//! The official Contensis Management API JavaScript client (`contensis-management-api`, the
//! exact version pinned in tests/client/package.json) against the real service, through
//! tests/client/scenario.mjs: it creates a group and users, adds, checks, lists and removes a
//! member and reads the error of a second removal; then bulk adds, child groups and
//! inherited lists, user updates, passwords, `getCurrent`, and deletions. Needs Node.js and
//! `make client-deps`; without them the test fails, it is never skipped.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{Backend, CLIENT_ID, CLIENT_SECRET, TestApp};

/// The npm package under test.
const PACKAGE: &str = "contensis-management-api";
/// Far more than the scenario needs (a few seconds), short enough to end a hung run.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(180);

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/client")
}

#[track_caller]
fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The client's version in node_modules, after checking it is the one package-lock.json
/// pins: a missing or stale install fails with what to run.
#[track_caller]
fn installed_client_version(dir: &Path) -> String {
    let installed = dir.join("node_modules").join(PACKAGE).join("package.json");
    assert!(
        installed.is_file(),
        "{} is missing: the official client is not installed. Run `make client-deps` \
         (npm ci --prefix tests/client) and run the test again.",
        installed.display()
    );
    let lock = read_json(&dir.join("package-lock.json"));
    let pinned = lock["packages"][format!("node_modules/{PACKAGE}")]["version"]
        .as_str()
        .unwrap_or_else(|| panic!("tests/client/package-lock.json does not pin {PACKAGE}"))
        .to_owned();
    let version = read_json(&installed)["version"]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no version", installed.display()))
        .to_owned();
    assert_eq!(
        version, pinned,
        "tests/client/node_modules holds {PACKAGE} {version}, but package-lock.json pins \
         {pinned}. Run `make client-deps` and run the test again."
    );
    version
}

/// What the scenario printed and how it ended.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// `node scenario.mjs` against the service, killed if it outlives `SCENARIO_TIMEOUT`.
fn run_scenario(dir: &Path, base_url: &str) -> Run {
    let mut child = Command::new("node")
        .arg("scenario.mjs")
        .current_dir(dir)
        .env("MEMBERSHIP_URL", base_url)
        .env("MEMBERSHIP_CLIENT_ID", CLIENT_ID)
        .env("MEMBERSHIP_CLIENT_SECRET", CLIENT_SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("starting `node` ({e}): this test needs Node.js (18 or newer) on the PATH")
        });
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + SCENARIO_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("waiting for node") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the scenario did not finish within {SCENARIO_TIMEOUT:?}; so far it \
                     printed:\n{}\n{}",
                    stdout.join().unwrap_or_default(),
                    stderr.join().unwrap_or_default()
                );
            }
            None => thread::sleep(Duration::from_millis(50)),
        }
    };
    Run {
        status,
        stdout: stdout.join().expect("reading node's stdout"),
        stderr: stderr.join().expect("reading node's stderr"),
    }
}

#[tokio::test]
async fn the_official_javascript_client_manages_membership() {
    let dir = client_dir();
    let version = installed_client_version(&dir);
    let app = TestApp::spawn(Backend::Embedded).await;

    let base_url = app.address.clone();
    let run = tokio::task::spawn_blocking(move || run_scenario(&dir, &base_url))
        .await
        .expect("the scenario runner panicked");

    let last_line = run.stdout.lines().last().unwrap_or_default();
    assert!(
        run.status.success() && last_line.starts_with("all ") && last_line.contains("passed"),
        "the scenario with {PACKAGE} {version} failed ({}).\n\
         --- scenario stdout ---\n{}\n--- scenario stderr ---\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
}

//! The OpenAPI document (schemas/openapi.json, written by schemas/openapi.py) against the
//! real service: it is what `GET /openapi.json` serves, it validates as OpenAPI 3.1
//! (openapi-spec-validator), and the fuzzer schemathesis, driving every documented
//! operation with generated requests, finds no answer that breaks it: no 5xx, every
//! status, content type, header and body as documented, invalid requests refused (the
//! checks and their few exclusions are in tests/openapi/schemathesis.toml). Both tools
//! come pinned from tests/openapi/requirements.txt; without `make api-fuzzer` the tests
//! fail, they are never skipped.
//!
//! schemathesis runs on the embedded log only: its cases are HTTP contract checks, which
//! the Kafka log does not change (the API suite runs each call on both), and a second run
//! would double its minute.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{Backend, POLL_INTERVAL, TestApp};

/// A run takes about a minute on two cores; this ends a hung one.
const FUZZER_TIMEOUT: Duration = Duration::from_secs(300);
/// The longest long poll the fuzzer may ask for: the service waits up to 30 s, which,
/// per generated case, would stall the run.
const WAIT_MS_MAX: u64 = 100;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/openapi-venv/bin/<tool>`, after checking it was installed from the current
/// requirements: a missing or stale install fails with what to run.
#[track_caller]
fn installed(tool: &str) -> PathBuf {
    let path = root().join("target/openapi-venv/bin").join(tool);
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let Some(installed) = modified(&root().join("target/openapi-venv/bin/schemathesis")) else {
        panic!(
            "{} is missing: the OpenAPI tools are not installed. Run `make api-fuzzer` and run \
             the test again.",
            path.display()
        )
    };
    let pinned = modified(&root().join("tests/openapi/requirements.txt"));
    assert!(
        pinned.is_none_or(|pinned| pinned <= installed),
        "target/openapi-venv is older than tests/openapi/requirements.txt. Run `make \
         api-fuzzer` and run the test again."
    );
    assert!(
        path.exists(),
        "{} is missing. Run `make api-fuzzer`.",
        path.display()
    );
    path
}

/// Runs `command` in `dir`, killed if it outlives `FUZZER_TIMEOUT`: its exit status and
/// all it printed, stdout and stderr into one file (no pipe to fill up).
async fn run(mut command: Command, dir: &Path) -> (ExitStatus, String) {
    let shown = format!("{command:?}");
    let mut printed = tempfile::tempfile().expect("a temporary file for the output");
    let output = || Stdio::from(printed.try_clone().expect("the output file, again"));
    let mut child = command
        .current_dir(dir)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(output())
        .stderr(output())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {shown}: {e}"));
    let deadline = Instant::now() + FUZZER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the tool") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    let mut text = String::new();
    printed.rewind().expect("rewinding the output");
    printed
        .read_to_string(&mut text)
        .expect("reading the output");
    let Some(status) = status else {
        panic!("{shown} did not finish within {FUZZER_TIMEOUT:?}; it printed:\n{text}")
    };
    (status, text)
}

#[tokio::test]
async fn the_served_document_is_the_file_and_validates_as_openapi_3_1() {
    let validator = installed("openapi-spec-validator");
    let app = TestApp::spawn(Backend::Embedded).await;

    let answer = (app.client.get(format!("{}/openapi.json", app.address)))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(answer.status(), 200);
    let content_type = answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let served = answer.bytes().await.unwrap();
    let file = std::fs::read(root().join("schemas/openapi.json")).unwrap();
    assert!(
        served[..] == file[..],
        "GET /openapi.json is not schemas/openapi.json byte for byte"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("openapi.json"), &served).unwrap();
    let mut validate = Command::new(validator);
    validate.args(["--schema", "3.1", "openapi.json"]);
    let (status, printed) = run(validate, dir.path()).await;
    assert!(
        status.success(),
        "openapi-spec-validator refuses the served document:\n{printed}"
    );
}

#[tokio::test]
async fn schemathesis_finds_nothing_the_document_does_not_say() {
    let schemathesis = installed("schemathesis");
    let app = TestApp::spawn(Backend::Embedded).await;

    // The document as served, with the long poll bounded (see WAIT_MS_MAX).
    let mut document: serde_json::Value = (app.client.get(format!("{}/openapi.json", app.address)))
        .send()
        .await
        .expect("GET /openapi.json")
        .json()
        .await
        .expect("the document is JSON");
    let wait = &mut document["components"]["parameters"]["waitMs"]["schema"]["maximum"];
    assert!(wait.is_u64(), "waitMs has no maximum to bound: {wait}");
    *wait = WAIT_MS_MAX.into();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("openapi.json"), document.to_string()).unwrap();

    let mut fuzz = Command::new(schemathesis);
    fuzz.arg("--no-color")
        .arg("--config-file")
        .arg(root().join("tests/openapi/schemathesis.toml"))
        .args(["run", "openapi.json", "--url", &app.address])
        // A stream never ends on its own: each case would run into the request timeout.
        .args(["--exclude-path-regex", "/events/stream$"])
        // The administrator's token, which the config file reads from the environment.
        .env("SCHEMATHESIS_TOKEN", &app.admin_token);
    let started = Instant::now();
    let (status, printed) = run(fuzz, dir.path()).await;
    assert!(
        status.success(),
        "schemathesis found answers that break schemas/openapi.json (exit {status}, after \
         {:?}):\n{printed}",
        started.elapsed()
    );
    let operations: usize = (document["paths"].as_object().unwrap().iter())
        .filter(|(path, _)| !path.ends_with("/events/stream"))
        .map(|(_, item)| item.as_object().unwrap().len())
        .sum();
    assert!(
        printed.contains(&format!("Tested: {operations}\n")),
        "schemathesis did not test all {operations} operations:\n{printed}"
    );
}

//! The SCIM compliance tester scim2-tester, through its command line `scim2 test`
//! (scim2-cli, the versions pinned in tests/scim/requirements.txt), against the real
//! service: it reads the discovery documents, tries the other methods on them, then
//! creates, reads, lists, searches, replaces, patches and deletes users and groups,
//! checking every answer against RFC 7643 and 7644. Needs `make scim-tester`; without it
//! the test fails, it is never skipped.
//!
//! `scim2 test` prints one line per check, `STATUS check_name`, and under it, indented,
//! why (with `--verbose`, also the answer or the error body). SKIPPED (nothing to try, or
//! the service says it does not do that, e.g. 501 to `POST /.search`), SUCCESS, COMPLIANT
//! and ACCEPTABLE pass; DEVIATION (from a SHOULD), ERROR and CRITICAL (from a MUST) fail.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rstest_reuse::apply;

use crate::helpers::{Backend, POLL_INTERVAL, TestApp, backends};
use crate::scim::SCIM;

/// A whole run takes a few seconds; this is far more, and short enough to end a hung run.
const TESTER_TIMEOUT: Duration = Duration::from_secs(180);
const FAILING: [&str; 3] = ["DEVIATION", "ERROR", "CRITICAL"];
/// Passing statuses that still make `scim2 test` exit with 1 (it wants SUCCESS only).
const PASSING_NOT_SUCCESS: [&str; 3] = ["COMPLIANT", "ACCEPTABLE", "SKIPPED"];

/// `target/scim-venv/bin/scim2`, after checking it was installed from the current
/// requirements: a missing or stale install fails with what to run.
#[track_caller]
fn installed_tester() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scim2 = root.join("target/scim-venv/bin/scim2");
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let Some(installed) = modified(&scim2) else {
        panic!(
            "{} is missing: the SCIM compliance tester is not installed. Run `make \
             scim-tester` and run the test again.",
            scim2.display()
        )
    };
    let pinned = modified(&root.join("tests/scim/requirements.txt"));
    assert!(
        pinned.is_none_or(|pinned| pinned <= installed),
        "{} is older than tests/scim/requirements.txt. Run `make scim-tester` and run the \
         test again.",
        scim2.display()
    );
    scim2
}

/// `scim2 test --verbose` against `url` with the token (in the environment: a command line
/// is visible to every user of the machine), killed if it outlives `TESTER_TIMEOUT`. Its
/// exit status and all it printed, stdout and stderr into one file (no pipe to fill up).
async fn run_tester(scim2: &Path, url: &str, token: &str) -> (ExitStatus, String) {
    let mut printed = tempfile::tempfile().expect("a temporary file for scim2's output");
    let output = || Stdio::from(printed.try_clone().expect("the output file, again"));
    let mut child = Command::new(scim2)
        .args(["test", "--verbose"])
        .env("SCIM_CLI_URL", url)
        .env("SCIM_CLI_HEADERS", format!("Authorization: Bearer {token}"))
        // The developer's own descriptions of a server would stand in for the service's.
        .env_remove("SCIM_CLI_SCHEMAS")
        .env_remove("SCIM_CLI_RESOURCE_TYPES")
        .env_remove("SCIM_CLI_SERVICE_PROVIDER_CONFIG")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(output())
        .stderr(output())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", scim2.display()));
    let deadline = Instant::now() + TESTER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for scim2") {
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
    printed.rewind().expect("rewinding scim2's output");
    printed
        .read_to_string(&mut text)
        .expect("reading scim2's output");
    let Some(status) = status else {
        panic!("scim2 test did not finish within {TESTER_TIMEOUT:?}; it printed:\n{text}")
    };
    (status, text)
}

/// The status of a line that reports a check (`ERROR object_creation`), if it is one.
fn status_of(line: &str) -> Option<&str> {
    let status = line.split(' ').next()?;
    let known = [&["SUCCESS"][..], &FAILING, &PASSING_NOT_SUCCESS].concat();
    known.contains(&status).then_some(status)
}

/// The failed checks, each its line and the indented lines under it.
fn failed_checks(printed: &str) -> Vec<String> {
    let mut failed: Vec<String> = Vec::new();
    let mut in_failed = false;
    for line in printed.lines() {
        if line.starts_with(' ') {
            if in_failed && let Some(check) = failed.last_mut() {
                check.push('\n');
                check.push_str(line);
            }
            continue;
        }
        in_failed = status_of(line).is_some_and(|status| FAILING.contains(&status));
        if in_failed {
            failed.push(line.to_owned());
        }
    }
    failed
}

#[apply(backends)]
#[tokio::test]
async fn the_scim_compliance_tester_passes(backend: Backend) {
    let scim2 = installed_tester();
    let app = TestApp::spawn(backend).await;

    let url = format!("{}{SCIM}", app.address);
    let (status, printed) = run_tester(&scim2, &url, &app.admin_token).await;

    let failed = failed_checks(&printed);
    assert!(
        failed.is_empty(),
        "{} of the SCIM compliance checks failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    // `scim2 test` prints the checks only once all have run, and exits with 1 for any
    // status but SUCCESS: a crash shows as no check, or as an exit that none explains.
    let statuses: Vec<&str> = printed.lines().filter_map(status_of).collect();
    let explained = status.success()
        || status.code() == Some(1) && statuses.iter().any(|s| PASSING_NOT_SUCCESS.contains(s));
    assert!(
        statuses.contains(&"SUCCESS") && explained,
        "scim2 test ended with {status} without reporting a failed check; it printed:\n{printed}"
    );
}

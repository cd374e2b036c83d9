//! The command line as an operator meets it: help and version exit 0, a usage error exits
//! 2 with clap's message, a failure at start exits 1 with one line (`error: ...` and its
//! causes), never a stack trace, even with `RUST_BACKTRACE=1`.

use std::process::{Command, Output};

fn membershipd(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_membershipd"));
    command
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LOG", "off");
    for var in [
        "MEMBERSHIP_CONFIG",
        "MEMBERSHIP_KAFKA_BROKERS",
        "MEMBERSHIP_DATA_DIR",
    ] {
        command.env_remove(var);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("running membershipd")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_and_version_answer_and_exit_0() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["rebuild", "--help"],
        &["events", "tail", "--help"],
    ] {
        let out = membershipd(args, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("Usage: membershipd"), "{args:?}");
    }
    let help = text(&membershipd(&["--help"], &[]).stdout);
    for subcommand in ["serve", "rebuild", "events"] {
        assert!(help.contains(subcommand), "{help}");
    }
    let tail = text(&membershipd(&["events", "tail", "--help"], &[]).stdout);
    assert!(
        tail.contains("--until-end") && tail.contains("--json"),
        "{tail}"
    );
    let version = membershipd(&["--version"], &[]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        text(&version.stdout).trim(),
        format!("membershipd {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_usage_error_exits_2_with_the_usage() {
    for args in [
        &["--bogus"][..],
        &["bogus"],
        &["events", "tail", "--follow"],
        &[],
    ] {
        let out = membershipd(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains("Usage:"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_failure_at_start_is_one_line_and_exit_1_without_a_stack_trace() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a dir").unwrap();
    let not_a_dir = file.join("data");
    for (env, says) in [
        (
            vec![("MEMBERSHIP_TOKEN_TTL_S", "soon")],
            "MEMBERSHIP_TOKEN_TTL_S",
        ),
        (
            vec![("MEMBERSHIP_DATA_DIR", not_a_dir.to_str().unwrap())],
            "data dir",
        ),
    ] {
        let out = membershipd(&["serve"], &env);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{env:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{env:?}: {stderr}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(says),
            "{stderr}"
        );
        assert!(!stderr.contains("backtrace"), "{stderr}");
    }
}

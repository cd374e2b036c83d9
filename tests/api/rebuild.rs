//! `membershipd rebuild`: the read model folded afresh from the log equals the live one,
//! and a read model that strayed from the log is caught.

use rstest_reuse::apply;

use crate::helpers::{Backend, SEED_GROUP, SEED_USERNAME, TestApp, backends, encode};

/// Runs `membershipd rebuild` with the app's settings; its exit success and stdout.
#[track_caller]
fn rebuild(app: &TestApp) -> (bool, String) {
    let output = app
        .command(&["rebuild"])
        .output()
        .expect("running membershipd rebuild");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() || output.status.code() == Some(1),
        "rebuild failed: {stdout}\n{stderr}"
    );
    (output.status.success(), stdout)
}

#[apply(backends)]
#[tokio::test]
async fn a_rebuilt_read_model_equals_the_live_one_and_a_strayed_one_is_caught(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    app.seed().await;
    app.create_group("Space Monkeys").await;
    app.add_member("Space%20Monkeys", SEED_USERNAME).await;
    app.nest(SEED_GROUP, "Space Monkeys").await;
    app.remove_member(&encode(SEED_GROUP), SEED_USERNAME)
        .await
        .assert_no_content();
    app.remove_member(&encode(SEED_GROUP), SEED_USERNAME)
        .await
        .assert_error(409, "UserNotInGroup");

    let (equal, stdout) = rebuild(&app);
    assert!(equal, "{stdout}");
    assert!(stdout.contains("equal to the live read model"), "{stdout}");
    assert!(app.data_dir().join("read.rebuilt.db").exists());
    // The rebuilt file has every index the live one has (a rebuild makes some at its end).
    let indexes = |file: &str| -> Vec<(String, Option<String>)> {
        let conn = rusqlite::Connection::open(app.data_dir().join(file)).unwrap();
        let mut statement = conn
            .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name")
            .unwrap();
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)));
        rows.unwrap().collect::<rusqlite::Result<_>>().unwrap()
    };
    let live = indexes("read.db");
    assert!(
        live.iter().any(|(name, _)| name == "feed_by_group"),
        "{live:?}"
    );
    assert_eq!(indexes("read.rebuilt.db"), live);

    // A read model that no longer says what the log says.
    app.stop();
    let live = rusqlite::Connection::open(app.data_dir().join("read.db")).unwrap();
    let strayed = live.execute("DELETE FROM members", []).unwrap();
    assert!(strayed > 0);
    drop(live);
    let (equal, stdout) = rebuild(&app);
    assert!(!equal, "{stdout}");
    assert!(
        stdout.contains("differs from the live read model"),
        "{stdout}"
    );
}

#[apply(backends)]
#[tokio::test]
async fn a_rebuild_never_writes_over_the_live_read_model(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.seed().await;
    let live = app.data_dir().join("read.db");
    let output = app
        .command(&["rebuild", "--into", &live.display().to_string()])
        .output()
        .expect("running membershipd rebuild");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("is the live read model"),
        "{output:?}"
    );
    assert_eq!(
        app.head_member(&encode(SEED_GROUP), SEED_USERNAME).await,
        204
    );
}

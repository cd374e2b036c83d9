//! The service's own log: one line per request with its logId, for people by default and
//! as JSON with `MEMBERSHIP_LOG_FORMAT=json`; secrets in neither.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, CLIENT_SECRET, PREFIX, TestApp};

/// The service's log lines that carry `log_id`.
fn lines_with(app: &TestApp, log_id: &str) -> Vec<String> {
    (app.server_log().lines())
        .filter(|line| line.contains(log_id))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_json_log_line_per_request_carries_its_log_id_route_status_and_latency() {
    let app = TestApp::spawn_on(Backend::Embedded, &[("MEMBERSHIP_LOG_FORMAT", "json")]).await;
    let answer = app
        .request(
            Method::GET,
            &format!("{PREFIX}/groups/Nobody"),
            &app.admin_token,
        )
        .await;
    answer.assert_error(404, "GroupNotFound");
    let log_id = answer.json()["logId"].as_str().unwrap().to_owned();
    let lines = lines_with(&app, &log_id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line: Value = serde_json::from_str(&lines[0]).expect("the line is JSON");
    assert_eq!(line["logId"], log_id.as_str());
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["message"], "request");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/api/management/security/groups/{group}");
    assert_eq!(line["status"], 404);
    assert_eq!(line["code"], "GroupNotFound");
    assert!(line["latency_ms"].is_u64(), "{line}");
    assert!(line["timestamp"].is_string(), "{line}");
    // Every line is JSON, and none holds a secret.
    assert!(
        line.get("events").is_none(),
        "a read appends nothing: {line}"
    );
    // A write's line names the events it appended, as the feed shows them.
    let group = app.new_group("Scribes").await;
    let user = app.new_user("bartleby").await;
    let answer = app.put_member(&group, &user).await;
    answer.assert_no_content();
    let added = (app.server_log().lines().rev())
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == "request" && line["method"] == "PUT")
        .expect("the PUT's request line");
    let events = added["events"]
        .as_str()
        .expect("the PUT's line names its events");
    let feed = app
        .get_json("/api/management/security/events?pageSize=1000")
        .await;
    let last = feed["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event"]["type"], "MemberAdded");
    assert_eq!(events, last["event"]["id"].as_str().unwrap(), "{added}");
    for line in app.server_log().lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    let log = app.server_log();
    assert!(!log.contains(&app.admin_token) && !log.contains(CLIENT_SECRET));
}

#[tokio::test]
async fn the_default_log_is_for_people_and_names_the_log_id_too() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let answer = app
        .request(
            Method::GET,
            &format!("{PREFIX}/groups/Nobody"),
            &app.admin_token,
        )
        .await;
    let log_id = answer.json()["logId"].as_str().unwrap().to_owned();
    let lines = lines_with(&app, &log_id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        serde_json::from_str::<Value>(&lines[0]).is_err(),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("status=404"), "{}", lines[0]);
    let log = app.server_log();
    assert!(!log.contains(&app.admin_token) && !log.contains(CLIENT_SECRET));
}

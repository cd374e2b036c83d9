//! `GET /metrics`, as Prometheus scrapes it: the text format, series by route template,
//! and the levels sampled at the scrape; on the main listener, or on `metrics_addr` alone.

use rstest_reuse::apply;

use crate::helpers::{Backend, TestApp, backends};

const DELETE_ROUTE: &str = "/api/management/security/groups/{group}/users/{user}";

/// The scrape as text, after checking its status and content type.
async fn scrape(app: &TestApp, base: &str) -> String {
    let answer = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scraping /metrics");
    assert_eq!(answer.status(), 200);
    let content_type = answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    answer.text().await.unwrap()
}

/// The value of the one sample named `name` whose labels include every one of `labels`
/// (`key="value"`); `None` when there is none.
pub fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = series.split_once('{').unwrap_or((series, ""));
            (series_name == name && labels.iter().all(|label| rest.contains(label)))
                .then(|| value.parse::<f64>().expect("a sample's value is a number"))
        });
    let value = found.next();
    assert!(
        found.next().is_none(),
        "more than one {name} with {labels:?}"
    );
    value
}

#[apply(backends)]
#[tokio::test]
async fn a_delete_moves_its_routes_counter_and_histogram_and_the_levels_are_there(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let group = app.new_group("Weavers").await;
    let user = app.new_user("penelope").await;
    app.add_member(&group, &user).await;
    let route = format!("route=\"{DELETE_ROUTE}\"");
    let labels = ["method=\"DELETE\"", route.as_str(), "status=\"204\""];
    let before = scrape(&app, &app.address).await;
    let count = |text: &str| sample(text, "membership_http_requests_total", &labels).unwrap_or(0.0);
    let observed = |text: &str| {
        sample(
            text,
            "membership_http_request_duration_seconds_count",
            &labels,
        )
        .unwrap_or(0.0)
    };
    let (count_before, observed_before) = (count(&before), observed(&before));

    app.remove_member(&group, &user).await.assert_no_content();

    let after = scrape(&app, &app.address).await;
    assert_eq!(count(&after), count_before + 1.0, "{after}");
    assert_eq!(observed(&after), observed_before + 1.0, "{after}");
    let mut le = labels.to_vec();
    le.push("le=\"+Inf\"");
    let bucket = sample(
        &after,
        "membership_http_request_duration_seconds_bucket",
        &le,
    );
    assert_eq!(bucket, Some(observed(&after)), "{after}");
    // The raw path never becomes a label.
    assert!(
        !after.contains(&user) && !after.contains("Weavers"),
        "{after}"
    );
    // The event was appended and applied, and nothing is waiting.
    let removed = ["type=\"MemberRemoved\"", "outcome=\"applied\""];
    assert_eq!(
        sample(&after, "membership_events_projected_total", &removed),
        Some(1.0)
    );
    assert!(sample(&after, "membership_log_append_duration_seconds_count", &[]).unwrap() >= 4.0);
    // Where the removal spent its time: waiting for its outcome, and the batch applying it.
    let waited = |text: &str| sample(text, "membership_outcome_wait_seconds_count", &[]);
    assert_eq!(
        waited(&after),
        Some(waited(&before).unwrap_or(0.0) + 1.0),
        "{after}"
    );
    let batches = "membership_projector_batch_duration_seconds_count";
    assert!(sample(&after, batches, &[]).unwrap() > sample(&before, batches, &[]).unwrap_or(0.0));
    for level in [
        "membership_projector_lag_events",
        "membership_projector_lag_seconds",
        "membership_log_queue_depth",
        "membership_read_model_readers_busy",
        "membership_hash_queue_depth",
        "membership_feed_streams_open",
    ] {
        assert_eq!(sample(&after, level, &[]), Some(0.0), "{level} in {after}");
    }
    assert!(sample(&after, "process_resident_memory_bytes", &[]).unwrap() > 0.0);
}

#[tokio::test]
async fn with_metrics_addr_set_metrics_answer_there_alone() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let app = TestApp::spawn_on(
        Backend::Embedded,
        &[("MEMBERSHIP_HTTP_METRICS_ADDR", metrics_addr.as_str())],
    )
    .await;
    let text = scrape(&app, &format!("http://{metrics_addr}")).await;
    assert!(sample(&text, "membership_projector_lag_events", &[]).is_some());
    let main = (app.client.get(format!("{}/metrics", app.address)))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 404);
    let other = (app.client.get(format!("http://{metrics_addr}/health")))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

//! Metrics in the Prometheus text format, for `GET /metrics`.
//!
//! What happens is counted where it happens, through the `metrics` facade and the
//! functions below, which keep every name and label in this one file (recording is a
//! no-op until [`install`] has run, e.g. in `rebuild`). What is a level (queues, readers,
//! the projector's lag) is sampled from the service at each scrape instead, so that it is
//! never stale.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::service::Service;

const REQUESTS: &str = "membership_http_requests_total";
const REQUEST_SECONDS: &str = "membership_http_request_duration_seconds";
const APPEND_SECONDS: &str = "membership_log_append_duration_seconds";
const APPEND_EVENTS: &str = "membership_log_append_events";
const APPEND_FAILURES: &str = "membership_log_append_failures_total";
const COMMIT_APPENDS: &str = "membership_log_commit_appends";
const LOG_QUEUE: &str = "membership_log_queue_depth";
const DELIVERY_ERRORS: &str = "membership_kafka_delivery_errors_total";
const PROJECTED: &str = "membership_events_projected_total";
const PROJECTOR_BATCH: &str = "membership_projector_batch_events";
const PROJECTOR_BATCH_SECONDS: &str = "membership_projector_batch_duration_seconds";
const OUTCOME_WAIT_SECONDS: &str = "membership_outcome_wait_seconds";
const WAL_RESTART_SECONDS: &str = "membership_wal_restart_duration_seconds";
const LAG_EVENTS: &str = "membership_projector_lag_events";
const LAG_SECONDS: &str = "membership_projector_lag_seconds";
const READERS_BUSY: &str = "membership_read_model_readers_busy";
const HASHERS_BUSY: &str = "membership_hashers_busy";
const HASH_QUEUE: &str = "membership_hash_queue_depth";
const STREAMS_OPEN: &str = "membership_feed_streams_open";

/// Latencies, from a tenth of a millisecond (a read) to the longest a write waits (5 s).
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Sizes of batches: appends per commit, events per append or projector transaction.
const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// The process's recorder and what renders it. One per process: the facade is global.
pub struct Metrics {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

/// Installs the recorder the first time, and returns it every time.
pub fn install() -> anyhow::Result<&'static Metrics> {
    static INSTALLED: OnceLock<Metrics> = OnceLock::new();
    if let Some(metrics) = INSTALLED.get() {
        return Ok(metrics);
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_events".into()), SIZE_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_appends".into()), SIZE_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).context("installing the metrics recorder")?;
    let process = metrics_process::Collector::default();
    process.describe();
    describe();
    Ok(INSTALLED.get_or_init(|| Metrics { handle, process }))
}

fn describe() {
    describe_counter!(
        REQUESTS,
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        REQUEST_SECONDS,
        "Time to answer an HTTP request, by method, route template and status."
    );
    describe_histogram!(
        APPEND_SECONDS,
        "Time until the log has made an append durable (the embedded log's commit, or every broker acknowledgement)."
    );
    describe_histogram!(APPEND_EVENTS, "Events per append: what one request writes.");
    describe_counter!(
        APPEND_FAILURES,
        "Appends that failed, by reason: busy (the log's queue was full), unavailable, or timeout (not durable within requests.wait_timeout_ms; it may still land)."
    );
    describe_histogram!(
        COMMIT_APPENDS,
        "Embedded log: appends written by one transaction and one disk sync (the group commit)."
    );
    describe_gauge!(
        LOG_QUEUE,
        "Embedded log: appends waiting for the writer or being written. Kafka: messages in the producer's queue or in flight, not yet acknowledged."
    );
    describe_counter!(
        DELIVERY_ERRORS,
        "Kafka: records the brokers did not acknowledge."
    );
    describe_counter!(
        PROJECTED,
        "Events this instance's projector decided, by type and outcome (applied, or the rejection's code); a start's replay counts too."
    );
    describe_histogram!(
        PROJECTOR_BATCH,
        "Events applied per read-model transaction."
    );
    describe_histogram!(
        PROJECTOR_BATCH_SECONDS,
        "Time the projector took to apply and commit one read-model transaction."
    );
    describe_histogram!(
        OUTCOME_WAIT_SECONDS,
        "Time a write waited, once its events were durable, until this instance's projector had applied them."
    );
    describe_histogram!(
        WAL_RESTART_SECONDS,
        "Time a writer stalled restarting its write-ahead log, by file (log or read-model)."
    );
    describe_gauge!(
        LAG_EVENTS,
        "Events in the log that the read model has not applied yet, as of the projector's last read."
    );
    describe_gauge!(
        LAG_SECONDS,
        "How far the read model is behind the log in time: the age of the last applied event while events wait, else 0."
    );
    describe_gauge!(
        READERS_BUSY,
        "Read-model queries running (at most requests.readers_max; more wait)."
    );
    describe_gauge!(
        HASHERS_BUSY,
        "Password and secret hashes running (at most requests.hashers_max)."
    );
    describe_gauge!(
        HASH_QUEUE,
        "Hashing requests waiting for a hasher (at most requests.hash_queue_max; more answer 503)."
    );
    describe_gauge!(
        STREAMS_OPEN,
        "Event streams and long polls open (at most feed.streams_max)."
    );
}

impl Metrics {
    /// Samples the levels, then renders everything in the Prometheus text format.
    pub fn render(&self, service: &Service, streams_open: usize) -> String {
        let levels = service.levels();
        gauge!(LOG_QUEUE).set(levels.log_queue as f64);
        gauge!(LAG_EVENTS).set(levels.lag_events as f64);
        gauge!(LAG_SECONDS).set(levels.lag.as_secs_f64());
        gauge!(READERS_BUSY).set(levels.readers_busy as f64);
        gauge!(HASHERS_BUSY).set(levels.hashers_busy as f64);
        gauge!(HASH_QUEUE).set(levels.hash_queue as f64);
        gauge!(STREAMS_OPEN).set(streams_open as f64);
        self.process.collect();
        self.handle.render()
    }
}

/// An HTTP request answered. `route` is the matched template, never the raw path, so that
/// the series stay few; `None` when no route matched.
pub fn request(method: &str, route: Option<String>, status: u16, elapsed: Duration) {
    let labels = [
        ("method", method.to_owned()),
        ("route", route.unwrap_or_else(|| "unmatched".into())),
        ("status", status.to_string()),
    ];
    counter!(REQUESTS, &labels).increment(1);
    histogram!(REQUEST_SECONDS, &labels).record(elapsed);
}

/// An append the log made durable, or refused (`failure` says why).
pub fn append(events: usize, elapsed: Duration, failure: Option<&'static str>) {
    match failure {
        None => {
            histogram!(APPEND_SECONDS).record(elapsed);
            histogram!(APPEND_EVENTS).record(events as f64);
        }
        Some(reason) => counter!(APPEND_FAILURES, "reason" => reason).increment(1),
    }
}

/// A group commit of the embedded log.
pub fn commit(appends: usize) {
    histogram!(COMMIT_APPENDS).record(appends as f64);
}

/// A record the Kafka brokers did not acknowledge.
pub fn delivery_error() {
    counter!(DELIVERY_ERRORS).increment(1);
}

/// A committed projector transaction, how many events it applied and how long it took.
pub fn projector_batch(events: usize, elapsed: Duration) {
    histogram!(PROJECTOR_BATCH).record(events as f64);
    histogram!(PROJECTOR_BATCH_SECONDS).record(elapsed);
}

/// How long a write waited for its outcomes once its events were durable.
pub fn outcome_wait(elapsed: Duration) {
    histogram!(OUTCOME_WAIT_SECONDS).record(elapsed);
}

/// A restart of a write-ahead log, and how long its writer stalled for it.
pub fn wal_restart(file: &'static str, elapsed: Duration) {
    histogram!(WAL_RESTART_SECONDS, "file" => file).record(elapsed);
}

/// An event decided by the projector, once its transaction has committed.
pub fn projected(event_type: &'static str, outcome: &'static str) {
    counter!(PROJECTED, "type" => event_type, "outcome" => outcome).increment(1);
}

/// The levels sampled at each scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Levels {
    pub log_queue: usize,
    pub lag_events: u64,
    pub lag: Duration,
    pub readers_busy: usize,
    pub hashers_busy: usize,
    pub hash_queue: usize,
}

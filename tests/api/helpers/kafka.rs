//! Kafka as the tests see it: the shared test broker, and the one reader of a topic, which
//! both the log of a `TestApp` on Kafka and the tests of what a consumer sees read with.
//! Every record read for a `TestApp` is checked against the envelope docs/events.md
//! promises (`assert_envelope`).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use uuid::Uuid;

use super::log::schema_errors;
use super::{Caller, LoggedEvent, POLL_INTERVAL, SETTLE_TIMEOUT};

/// The shared broker for the Kafka cases, exported by `tests/with-broker.sh`.
const TEST_BROKERS_VAR: &str = "MEMBERSHIP_TEST_KAFKA_BROKERS";
/// How long reading a topic to its end may take before the test fails, and how long its
/// metadata may take (librdkafka reconnects to a restarted broker with a backoff of up to
/// 10 s).
const KAFKA_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The shared test broker, or a failure that says how to get one: a Kafka case never
/// skips and never falls back to the embedded log.
#[track_caller]
pub fn test_brokers() -> String {
    match std::env::var(TEST_BROKERS_VAR) {
        Ok(brokers) if !brokers.trim().is_empty() => brokers.trim().to_owned(),
        _ => panic!(
            "{TEST_BROKERS_VAR} is not set, so this Kafka case has no broker to run against. \
             Run the suite with `make test`, or wrap the command in tests/with-broker.sh \
             (e.g. `tests/with-broker.sh cargo test --test api`), which starts a Tansu broker \
             and sets it."
        ),
    }
}

/// The topic a log in `events_topic` keeps its credentials in.
pub fn credentials_topic(events_topic: &str) -> String {
    format!("{events_topic}.credentials")
}

/// The shared test broker when there is one (`make test`), else `None`.
pub fn shared_brokers() -> Option<String> {
    std::env::var(TEST_BROKERS_VAR)
        .ok()
        .filter(|brokers| !brokers.trim().is_empty())
        .map(|brokers| brokers.trim().to_owned())
}

// ---- records -------------------------------------------------------------------------

/// One record as a consumer of the topic sees it.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub headers: Vec<(String, Option<String>)>,
    /// The payload as sent, for looking for what must not be there.
    pub raw: String,
    pub payload: Value,
}

impl Record {
    fn from_message(topic: &str, message: &BorrowedMessage<'_>) -> Self {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_owned(), h.value.map(text)))
                    .collect()
            })
            .unwrap_or_default();
        let raw = text(message.payload().unwrap_or_default());
        let payload = serde_json::from_str(&raw).unwrap_or_else(|e| {
            panic!(
                "the record at {topic}/{} offset {} is not JSON ({e}): {raw}",
                message.partition(),
                message.offset()
            )
        });
        Self {
            topic: topic.to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(text),
            headers,
            raw,
            payload,
        }
    }

    /// The value of the one header called `name`.
    #[track_caller]
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut found = self.headers.iter().filter(|(key, _)| key == name);
        let value = found.next().and_then(|(_, value)| value.as_deref());
        assert!(found.next().is_none(), "two `{name}` headers on {self:?}");
        value
    }

    pub fn event_type(&self) -> &str {
        self.payload["type"].as_str().unwrap_or_default()
    }

    pub fn id(&self) -> &str {
        self.payload["id"].as_str().unwrap_or_default()
    }

    /// The record validates against the schema of its type.
    #[track_caller]
    pub fn assert_valid(&self) {
        let errors = schema_errors(self.event_type(), &self.payload);
        assert!(
            errors.is_empty(),
            "{} does not validate against its schema:\n{}\n{}",
            self.event_type(),
            errors.join("\n"),
            self.raw
        );
    }

    /// The record as an event of the log's `table` (`events` or `credentials`); its type
    /// and id come from the payload, as on log.db.
    #[track_caller]
    fn logged_event(&self, table: &'static str) -> LoggedEvent {
        let (Some(event_type), Some(event_id)) =
            (self.payload["type"].as_str(), self.payload["id"].as_str())
        else {
            panic!("a record without `type` or `id`: {self:?}")
        };
        LoggedEvent {
            table,
            event_id: event_id.to_owned(),
            event_type: event_type.to_owned(),
            payload: self.payload.clone(),
        }
    }
}

/// The envelope a consumer relies on: key = aggregate id, and exactly the CloudEvents
/// binary-mode headers (docs/events.md), each once, agreeing with the payload. Both topics
/// name the log by its events topic: `urn:membershipd:<events topic>`.
#[track_caller]
pub fn assert_envelope(record: &Record, events_topic: &str) {
    let at = format!(
        "the record at {}/{} offset {}",
        record.topic, record.partition, record.offset
    );
    let Some(aggregate) = record.payload["aggregateId"].as_str() else {
        panic!("{at} has no aggregateId: {record:?}")
    };
    assert_eq!(
        record.key.as_deref(),
        Some(aggregate),
        "the key of {at} is not its aggregate id: {record:?}"
    );
    let source = format!("urn:membershipd:{events_topic}");
    let time = record.payload["time"].as_str().unwrap_or_default();
    let expected = [
        ("ce_specversion", "1.0"),
        ("ce_id", record.id()),
        ("ce_source", source.as_str()),
        ("ce_type", record.event_type()),
        ("ce_time", time),
        ("content-type", "application/json"),
    ];
    let mut names: Vec<&str> = record.headers.iter().map(|(key, _)| key.as_str()).collect();
    names.sort_unstable();
    let mut wanted: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
    wanted.sort_unstable();
    assert_eq!(names, wanted, "the headers of {at}: {record:?}");
    for (name, value) in expected {
        assert!(
            !value.is_empty(),
            "no `{name}` to compare in {at}: {record:?}"
        );
        assert_eq!(
            record.header(name),
            Some(value),
            "the `{name}` header of {at} does not match its payload: {record:?}"
        );
    }
    if let Err(e) = Uuid::parse_str(record.id()) {
        panic!("ce_id is not a UUID ({e}): {record:?}");
    }
    if let Err(e) =
        time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
    {
        panic!("ce_time is not RFC 3339 ({e}): {record:?}");
    }
}

/// Asserts that no event id appears twice among the records.
#[track_caller]
pub fn assert_ids_unique(records: &[Record]) {
    let mut seen = HashSet::new();
    for record in records {
        assert!(
            seen.insert(record.id()),
            "the event {} is in the log twice: {}",
            record.id(),
            record.raw
        );
    }
}

// ---- reading a topic -----------------------------------------------------------------

/// One topic read back from the beginning by a consumer assigned its partitions (no group
/// offsets); each read fetches only what is new since the last.
pub struct TopicReader {
    consumer: BaseConsumer,
    brokers: String,
    topic: String,
    /// Every partition's next offset to read.
    next: BTreeMap<i32, i64>,
    /// Everything read so far, in (partition, offset) order.
    records: Vec<Record>,
}

impl TopicReader {
    pub fn new(brokers: &str, topic: &str) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            // librdkafka assigns partitions only with a group; a fresh one commits nothing.
            .set("group.id", format!("membership-tests-{}", Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            // Tansu answers a waiting fetch only when this expires, not when records arrive.
            .set("fetch.wait.max.ms", "10")
            .create()
            .unwrap_or_else(|e| panic!("creating a Kafka consumer for {brokers}: {e}"));
        let metadata = consumer
            .fetch_metadata(Some(topic), KAFKA_READ_TIMEOUT)
            .unwrap_or_else(|e| {
                panic!("reading the metadata of the topic {topic} on {brokers}: {e}")
            });
        let mut next = BTreeMap::new();
        for found in metadata.topics().iter().filter(|t| t.name() == topic) {
            if let Some(error) = found.error() {
                panic!("the topic {topic} on {brokers}: {error:?}");
            }
            next.extend(found.partitions().iter().map(|p| (p.id(), 0)));
        }
        assert!(
            !next.is_empty(),
            "the topic {topic} has no partitions on {brokers}"
        );
        Self {
            consumer,
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            next,
            records: Vec::new(),
        }
    }

    /// Everything read so far, in (partition, offset) order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Reads what is new, up to the end of every partition; the new records, in
    /// (partition, offset) order. Assigning the partitions again (at the next offsets)
    /// makes the consumer report each end anew.
    pub fn read_to_end(&mut self) -> Vec<Record> {
        let (brokers, topic) = (&self.brokers, &self.topic);
        let mut assignment = TopicPartitionList::new();
        for (&partition, &offset) in &self.next {
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(offset))
                .expect("assigning a partition");
        }
        self.consumer
            .assign(&assignment)
            .unwrap_or_else(|e| panic!("assigning the topic {topic} on {brokers}: {e}"));
        let deadline = Instant::now() + KAFKA_READ_TIMEOUT;
        let mut new = Vec::new();
        let mut at_end = HashSet::new();
        let mut last_error = None;
        while at_end.len() < self.next.len() {
            if Instant::now() >= deadline {
                panic!(
                    "reading the topic {topic} on {brokers}: the end of every partition was \
                     not reached within {KAFKA_READ_TIMEOUT:?} ({} new records; at the end \
                     of {at_end:?}; last error: {last_error:?})",
                    new.len()
                );
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(message)) => {
                    at_end.remove(&message.partition());
                    new.push(Record::from_message(topic, &message));
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    at_end.insert(partition);
                }
                // librdkafka retries by itself; the error only explains a time-out.
                Some(Err(error)) => last_error = Some(error),
            }
        }
        new.sort_by_key(|record| (record.partition, record.offset));
        for record in &new {
            // Offsets may skip (Kafka allows gaps), never go back.
            assert!(
                record.offset >= self.next[&record.partition],
                "reading the topic {topic}: offset {} of partition {} read twice",
                record.offset,
                record.partition
            );
            self.next.insert(record.partition, record.offset + 1);
        }
        self.records.extend(new.iter().cloned());
        // With several partitions, keep (partition, offset) order.
        self.records
            .sort_by_key(|record| (record.partition, record.offset));
        new
    }
}

/// Every record of `topic`, from the beginning to the end of each partition, read by a
/// consumer of the test's own.
pub async fn read_topic(brokers: &str, topic: &str) -> Vec<Record> {
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut reader = TopicReader::new(&brokers, &topic);
        reader.read_to_end()
    })
    .await
    .expect("the topic reader panicked")
}

/// Reads `topic` until `done` holds for its records, within `SETTLE_TIMEOUT`.
#[track_caller]
pub fn read_topic_until(
    brokers: &str,
    topic: &str,
    what: &str,
    done: impl Fn(&[Record]) -> bool,
) -> impl Future<Output = Vec<Record>> {
    read_topic_until_at(brokers, topic, what, done, Location::caller())
}

pub async fn read_topic_until_at(
    brokers: &str,
    topic: &str,
    what: &str,
    done: impl Fn(&[Record]) -> bool,
    caller: Caller,
) -> Vec<Record> {
    let started = Instant::now();
    loop {
        let records = read_topic(brokers, topic).await;
        if done(&records) {
            return records;
        }
        assert!(
            started.elapsed() < SETTLE_TIMEOUT,
            "gave up after {SETTLE_TIMEOUT:?} waiting for {what} on {topic} (at {caller}); \
             it holds: {:#?}",
            records.iter().map(|r| &r.payload).collect::<Vec<_>>()
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// How many of the records are of `event_type`.
pub fn count(records: &[Record], event_type: &str) -> usize {
    records
        .iter()
        .filter(|r| r.event_type() == event_type)
        .count()
}

// ---- the log of a TestApp ------------------------------------------------------------

/// One stream of the log: a reader of its topic, and the events read from it so far.
struct Stream {
    reader: TopicReader,
    table: &'static str,
    events_topic: String,
    events: Vec<LoggedEvent>,
}

impl Stream {
    fn new(brokers: &str, topic: &str, table: &'static str, events_topic: &str) -> Self {
        Self {
            reader: TopicReader::new(brokers, topic),
            table,
            events_topic: events_topic.to_owned(),
            events: Vec::new(),
        }
    }

    /// Reads what is new; each new record is checked on the way in.
    fn read_to_end(&mut self) {
        for record in self.reader.read_to_end() {
            assert_envelope(&record, &self.events_topic);
        }
        let table = self.table;
        self.events = (self.reader.records().iter())
            .map(|record| record.logged_event(table))
            .collect();
    }
}

/// The Kafka log of one service: its brokers and its events topic (credentials go to
/// `<topic>.credentials`), and the readers that read it back for the test.
pub struct KafkaLog {
    pub brokers: String,
    pub topic: String,
    /// Kept between reads, so that each read only fetches what is new. Taken out while a
    /// read runs: a read that fails leaves none, and the next read starts afresh.
    streams: Mutex<Option<[Stream; 2]>>,
}

impl KafkaLog {
    pub fn new(brokers: String, topic: String) -> Self {
        Self {
            brokers,
            topic,
            streams: Mutex::new(None),
        }
    }

    pub fn credentials_topic(&self) -> String {
        credentials_topic(&self.topic)
    }

    /// Every record of both topics, events then credentials, each read from the beginning
    /// to the end of every partition. A consumer per topic: an end-of-partition event
    /// names the partition only, not the topic.
    pub fn events(&self) -> Vec<LoggedEvent> {
        let kept = self
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let mut streams = kept.unwrap_or_else(|| {
            [
                Stream::new(&self.brokers, &self.topic, "events", &self.topic),
                Stream::new(
                    &self.brokers,
                    &self.credentials_topic(),
                    "credentials",
                    &self.topic,
                ),
            ]
        });
        std::thread::scope(|scope| {
            for stream in &mut streams {
                scope.spawn(|| stream.read_to_end());
            }
        });
        let events = streams
            .iter()
            .flat_map(|stream| stream.events.iter().cloned())
            .collect();
        *self.streams.lock().unwrap_or_else(|e| e.into_inner()) = Some(streams);
        events
    }
}

impl Drop for KafkaLog {
    /// Closing a consumer takes a while (about 0.1 s): let it happen off the test's path.
    fn drop(&mut self) {
        if let Some(streams) = self
            .streams
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            std::thread::spawn(move || drop(streams));
        }
    }
}

impl fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaLog")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

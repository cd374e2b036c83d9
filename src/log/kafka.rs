//! The Kafka log: one topic for events and one for credentials, an idempotent producer
//! with `acks=all`, and readers that assign partitions themselves from the positions the
//! read model stored (no consumer-group offsets: the read model is the only bookmark).
//!
//! Architecture Invariant: only this file knows rdkafka.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{AppendFuture, Batch, Entry, EventLog, LogError, LogReader, Position, Stream};
use crate::domain::Event;
use crate::settings::KafkaSettings;

/// How long start-up waits for the broker to answer an admin or metadata request.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Every topic has one partition: one total order of all changes, so that every instance
/// folds them alike. Events of different aggregates depend on each other (a membership
/// on its user and group), which keys spread over partitions would reorder.
const PARTITIONS: i32 = 1;
/// A hundred years, in milliseconds.
const RETENTION_MS: &str = "3153600000000";
/// Messages the producer holds before `send` is refused as busy.
const PRODUCE_QUEUE_MAX: usize = 100_000;
/// The longest single wait inside one read, so that both topics are read promptly.
const POLL_SLICE: Duration = Duration::from_millis(10);

/// The settings as the Kafka log uses them; `config/default.toml` says what each means.
impl KafkaSettings {
    fn topic(&self, stream: Stream) -> String {
        match stream {
            Stream::Events => self.topic.clone(),
            Stream::Credentials => format!("{}.credentials", self.topic),
        }
    }

    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.brokers.trim());
        config
    }
}

pub struct KafkaLog {
    /// Replaced when it fails fatally (see [`KafkaLog::renew_if_fatal`]).
    producer: RwLock<Arc<FutureProducer>>,
    settings: KafkaSettings,
    topics: [String; 2],
    /// The consumer [`EventLog::events_at`] reads with, made on first use.
    lookup: Mutex<Option<BaseConsumer>>,
}

impl KafkaLog {
    /// Connects, and creates both topics if they are missing.
    pub async fn connect(settings: &KafkaSettings) -> anyhow::Result<Self> {
        let producer = producer(settings)?;
        let topics = [Stream::Events, Stream::Credentials].map(|s| settings.topic(s));
        ensure_topics(settings, &topics).await?;
        Ok(Self {
            producer: RwLock::new(Arc::new(producer)),
            settings: settings.clone(),
            topics,
            lookup: Mutex::new(None),
        })
    }

    /// Connects to topics that must exist already, creating none: for readers of the log
    /// (`membershipd events tail`), so that a mistyped topic is an error, not a new log.
    pub async fn connect_existing(settings: &KafkaSettings) -> anyhow::Result<Self> {
        for stream in [Stream::Events, Stream::Credentials] {
            let topic = settings.topic(stream);
            if existing_partitions(settings, &topic).await?.is_empty() {
                bail!(
                    "the Kafka topic {topic} does not exist on {}",
                    settings.brokers
                );
            }
        }
        Self::connect(settings).await
    }

    fn producer(&self) -> Arc<FutureProducer> {
        self.producer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// An idempotent producer that cannot keep its guarantees (say, a record timed out
    /// and the broker cannot bump the producer epoch) fails fatally and refuses all later
    /// records. A fresh producer starts a new idempotent session, so the service recovers
    /// by itself; what the old one left unacknowledged was already answered with 503.
    /// Whether the producer was found failed and replaced (by this call or another).
    fn renew_if_fatal(&self, failed: &Arc<FutureProducer>) -> bool {
        let Some((code, reason)) = failed.client().fatal_error() else {
            return false;
        };
        let mut current = self.producer.write().unwrap_or_else(|e| e.into_inner());
        if !Arc::ptr_eq(&current, failed) {
            return true; // Another request renewed it already.
        }
        match producer(&self.settings) {
            Ok(fresh) => {
                tracing::error!(
                    ?code,
                    reason,
                    "the Kafka producer failed fatally; renewed it"
                );
                *current = Arc::new(fresh);
                true
            }
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), "renewing the Kafka producer");
                false
            }
        }
    }

    /// Appends the credentials records first and waits for them, then the events: the
    /// two topics have no transaction between them, and a password without its user is
    /// harmless (it is keyed by a fresh user id), where a user whose password was lost
    /// could never log in.
    async fn append_with(
        &self,
        producer: &FutureProducer,
        events: &[Event],
    ) -> Result<(), LogError> {
        let (secret, public): (Vec<&Event>, Vec<&Event>) =
            events.iter().partition(|e| e.data.is_secret());
        self.send(producer, &secret).await?;
        self.send(producer, &public).await
    }

    fn topic(&self, stream: Stream) -> &str {
        match stream {
            Stream::Events => &self.topics[0],
            Stream::Credentials => &self.topics[1],
        }
    }
}

/// The service's producer on `settings`' brokers: idempotent, `acks=all`.
pub fn producer(settings: &KafkaSettings) -> anyhow::Result<FutureProducer> {
    settings
        .client()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            settings.delivery_timeout_ms.to_string(),
        )
        .set("linger.ms", settings.linger_ms.to_string())
        .set(
            "queue.buffering.max.messages",
            PRODUCE_QUEUE_MAX.to_string(),
        )
        .create()
        .context("creating the Kafka producer")
}

/// Creates whichever topic is missing. Topics that exist are left alone, so brokers
/// that do not implement CreateTopics (librdkafka's mock cluster, locked-down clusters
/// where an operator made the topics) work as long as the topics are there.
async fn ensure_topics(settings: &KafkaSettings, topics: &[String; 2]) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for topic in topics {
        match existing_partitions(settings, topic).await?.len() {
            0 => missing.push(topic),
            1 => {}
            n => bail!(
                "the Kafka topic {topic} has {n} partitions; this service needs exactly one, \
                 so that every instance applies changes in the same order"
            ),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<_> = settings
        .client()
        .create()
        .context("creating the Kafka admin client")?;
    let new_topics: Vec<_> = missing
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                PARTITIONS,
                TopicReplication::Fixed(settings.replication_factor),
            )
            // The log is the source of truth: never delete or compact a record. A
            // century rather than Kafka's -1 for "forever": Tansu takes -1 literally and
            // drops every record on its next start.
            .set("retention.ms", RETENTION_MS)
            .set("cleanup.policy", "delete")
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let created = tokio::time::timeout(ADMIN_TIMEOUT, admin.create_topics(&new_topics, &options))
        .await
        .with_context(|| format!("no answer from the Kafka brokers {}", settings.brokers))?
        .context("creating the topics")?;
    for result in created {
        match result {
            Ok(name) => tracing::info!(topic = name, "created a Kafka topic"),
            // Another instance made it in the meantime.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating the Kafka topic {name}: {code}"),
        }
    }
    Ok(())
}

async fn existing_partitions(settings: &KafkaSettings, topic: &str) -> anyhow::Result<Vec<i32>> {
    let (settings, topic) = (settings.clone(), topic.to_owned());
    tokio::task::spawn_blocking(move || partitions_of(&settings, &topic))
        .await
        .context("reading topic metadata")?
}

/// The partitions of a topic, from the brokers' metadata (blocking).
fn partitions_of(settings: &KafkaSettings, topic: &str) -> anyhow::Result<Vec<i32>> {
    let consumer: BaseConsumer = settings.client().create()?;
    let metadata = consumer
        .fetch_metadata(Some(topic), ADMIN_TIMEOUT)
        .with_context(|| format!("reading the metadata of the topic {topic}"))?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect())
}

impl EventLog for KafkaLog {
    fn append(&self, events: Vec<Event>) -> AppendFuture<'_> {
        Box::pin(async move {
            let producer = self.producer();
            // A producer that failed fatally refuses everything: renew it first.
            if self.renew_if_fatal(&producer) {
                return self.append_with(&self.producer(), &events).await;
            }
            self.append_with(&producer, &events).await
        })
    }

    fn reader(&self, after: &[Position]) -> Result<Box<dyn LogReader>, LogError> {
        let open = |stream| {
            TopicReader::open(&self.settings, self.topic(stream), after)
                .map_err(LogError::Unavailable)
        };
        Ok(Box::new(KafkaReader {
            topics: [open(Stream::Events)?, open(Stream::Credentials)?],
        }))
    }

    fn events_at(&self, offsets: &[i64]) -> Result<Vec<Vec<u8>>, LogError> {
        let mut lookup = self.lookup.lock().unwrap_or_else(|e| e.into_inner());
        if lookup.is_none() {
            let consumer = reader_config(&self.settings)
                .create()
                .context("creating a Kafka consumer")
                .map_err(LogError::Unavailable)?;
            *lookup = Some(consumer);
        }
        let consumer = lookup.as_ref().expect("made above");
        let found = fetch_at(consumer, self.topic(Stream::Events), offsets);
        if found.is_err() {
            // Start the next call afresh rather than from a consumer in an unknown state.
            *lookup = None;
        }
        let found = found.map_err(LogError::Unavailable)?;
        Ok(offsets.iter().map(|offset| found[offset].clone()).collect())
    }

    fn check(&self) -> AppendFuture<'_> {
        Box::pin(async move {
            let topic = self.topic(Stream::Events);
            match existing_partitions(&self.settings, topic).await {
                Ok(partitions) if partitions.len() == 1 => Ok(()),
                Ok(partitions) => Err(LogError::Unavailable(anyhow::anyhow!(
                    "the topic {topic} has {} partitions",
                    partitions.len()
                ))),
                Err(error) => Err(LogError::Unavailable(error)),
            }
        })
    }

    fn queue_depth(&self) -> usize {
        self.producer().in_flight_count().max(0) as usize
    }
}

impl KafkaLog {
    /// The CloudEvents attributes of a record, in the Kafka protocol binding's binary mode
    /// (docs/events.md): the record value is the event JSON, the headers say what it is.
    /// `ce_type` is the payload's `type` as is; `ce_source` names the log by its events
    /// topic, alike on both topics and on every instance sharing them.
    fn cloud_event_headers(&self, event: &Event) -> Result<OwnedHeaders, time::error::Format> {
        let id = event.id.to_string();
        let source = format!("urn:membershipd:{}", self.settings.topic);
        let time = event.time.format(&Rfc3339)?;
        let headers = [
            ("ce_specversion", "1.0"),
            ("ce_id", id.as_str()),
            ("ce_source", source.as_str()),
            ("ce_type", event.data.type_name()),
            ("ce_time", time.as_str()),
            ("content-type", "application/json"),
        ];
        Ok(headers.into_iter().fold(
            OwnedHeaders::new_with_capacity(6),
            |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: Some(value),
                })
            },
        ))
    }

    /// Queues every record, then waits for each acknowledgement.
    async fn send(&self, producer: &FutureProducer, events: &[&Event]) -> Result<(), LogError> {
        // Every record is queued before any is awaited, so they travel together.
        let mut deliveries = Vec::with_capacity(events.len());
        for event in events {
            let payload = serde_json::to_vec(event).map_err(|e| LogError::Unavailable(e.into()))?;
            let key = event.aggregate_id.to_string();
            let headers = self
                .cloud_event_headers(event)
                .map_err(|e| LogError::Unavailable(e.into()))?;
            let record = FutureRecord::to(self.topic(Stream::of(event)))
                .key(&key)
                .payload(&payload)
                .headers(headers);
            match producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    return Err(LogError::Busy);
                }
                Err((error, _)) => return Err(LogError::Unavailable(error.into())),
            }
        }
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => {
                    crate::metrics::delivery_error();
                    return Err(LogError::Unavailable(error.into()));
                }
                Err(_) => {
                    crate::metrics::delivery_error();
                    return Err(LogError::Unavailable(anyhow::anyhow!(
                        "the producer dropped a delivery report"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Reaching the end of a partition is news to the reader, not an error to log. Keeps the
/// high watermarks of the statistics librdkafka reports, for the reader's lag.
#[derive(Default)]
struct ReaderContext {
    high: std::sync::Mutex<HashMap<i32, i64>>,
}

/// How often librdkafka reports a reader's statistics (its high watermarks).
const STATISTICS_INTERVAL_MS: &str = "1000";

impl ClientContext for ReaderContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut high = self.high.lock().unwrap_or_else(|e| e.into_inner());
        for partition in statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
        {
            if partition.partition >= 0 && partition.hi_offset >= 0 {
                high.insert(partition.partition, partition.hi_offset);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let end_of_partition = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !end_of_partition {
            tracing::warn!(%error, reason, "Kafka consumer");
        }
    }
}

impl ConsumerContext for ReaderContext {}

/// One consumer per topic: a partition-end event names only the partition, not the
/// topic, so one consumer for both could not tell which topic it reached the end of.
struct TopicReader {
    consumer: BaseConsumer<ReaderContext>,
    topic: String,
    partitions: Vec<i32>,
    at_end: HashSet<i32>,
    /// The next offset to read of each partition, once known.
    next: HashMap<i32, i64>,
}

/// The settings of the service's consumers, which are assigned partitions by hand.
pub fn reader_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = settings.client();
    config
        // A fresh group each time: offsets are never committed, the read model keeps them.
        .set("group.id", format!("membershipd-{}", Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        // An out-of-range position means records were lost (say, to retention): stop
        // rather than silently skip them.
        .set("auto.offset.reset", "error")
        // No transactions are used; do not wait on the last stable offset.
        .set("isolation.level", "read_uncommitted")
        .set("fetch.wait.max.ms", settings.fetch_wait_max_ms.to_string());
    config
}

impl TopicReader {
    fn open(settings: &KafkaSettings, topic: &str, after: &[Position]) -> anyhow::Result<Self> {
        let consumer: BaseConsumer<ReaderContext> = reader_config(settings)
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
            .create_with_context(ReaderContext::default())
            .context("creating a Kafka consumer")?;
        let partitions = partitions_of(settings, topic)?;
        if partitions.is_empty() {
            bail!("the Kafka topic {topic} has no partitions");
        }
        let mut assignment = TopicPartitionList::new();
        let mut next = HashMap::new();
        for &partition in &partitions {
            let name = partition_name(topic, partition);
            let offset = match after.iter().find(|p| p.partition == name) {
                Some(position) => {
                    next.insert(partition, position.offset + 1);
                    Offset::Offset(position.offset + 1)
                }
                None => Offset::Beginning,
            };
            assignment.add_partition_offset(topic, partition, offset)?;
        }
        consumer.assign(&assignment)?;
        Ok(Self {
            consumer,
            topic: topic.to_owned(),
            partitions,
            at_end: HashSet::new(),
            next,
        })
    }

    /// Takes what has arrived, up to `room` entries, waiting at most `wait` for the first.
    fn drain(&mut self, entries: &mut Vec<Entry>, room: usize, wait: Duration) {
        let mut wait = wait;
        let mut taken = 0;
        while taken < room {
            match self.consumer.poll(wait) {
                None => return,
                Some(Ok(message)) => {
                    self.at_end.remove(&message.partition());
                    self.next.insert(message.partition(), message.offset() + 1);
                    entries.push(Entry {
                        position: Position {
                            partition: partition_name(&self.topic, message.partition()),
                            offset: message.offset(),
                        },
                        payload: message.payload().unwrap_or_default().to_vec(),
                    });
                    taken += 1;
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    self.at_end.insert(partition);
                }
                Some(Err(error)) => {
                    // librdkafka reconnects by itself; the error is only news.
                    tracing::warn!(topic = self.topic, %error, "reading from Kafka");
                    return;
                }
            }
            wait = Duration::ZERO;
        }
    }

    fn at_end(&self) -> bool {
        self.at_end.len() == self.partitions.len()
    }

    /// From the high watermarks of the last statistics: no request to the brokers. Before
    /// the first read of a partition, its whole length counts.
    fn behind(&self) -> Option<u64> {
        let high = (self.consumer.context().high.lock()).unwrap_or_else(|e| e.into_inner());
        let mut behind = 0;
        for partition in &self.partitions {
            let high = high.get(partition)?;
            let next = self.next.get(partition).copied().unwrap_or(0);
            behind += (high - next).max(0) as u64;
        }
        Some(behind)
    }
}

struct KafkaReader {
    topics: [TopicReader; 2],
}

impl LogReader for KafkaReader {
    fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Batch, LogError> {
        let deadline = Instant::now() + wait;
        let mut entries = Vec::new();
        loop {
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(POLL_SLICE);
            let [events, credentials] = &mut self.topics;
            events.drain(&mut entries, max, slice);
            let room = max - entries.len();
            credentials.drain(&mut entries, room, Duration::ZERO);
            if !entries.is_empty() || Instant::now() >= deadline {
                break;
            }
        }
        let at_end = entries.is_empty() && self.topics.iter().all(TopicReader::at_end);
        Ok(Batch { entries, at_end })
    }

    fn behind(&self) -> Option<u64> {
        self.topics.iter().map(TopicReader::behind).sum()
    }
}

/// How long [`fetch_at`] waits for the records it asks for, altogether.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Offsets this far apart are read by seeking to the next, not by reading through.
const SEEK_GAP: i64 = 500;

/// The records of the topic's one partition at `offsets`: seeks to the first wanted,
/// reads on while the next wanted is near, and seeks again past a gap.
fn fetch_at(
    consumer: &BaseConsumer,
    topic: &str,
    offsets: &[i64],
) -> anyhow::Result<HashMap<i64, Vec<u8>>> {
    let mut wanted: BTreeSet<i64> = offsets.iter().copied().collect();
    let mut found = HashMap::with_capacity(wanted.len());
    let deadline = Instant::now() + FETCH_TIMEOUT;
    let missing =
        |offset: i64| anyhow::anyhow!("the topic {topic} has no record at offset {offset}");
    while let Some(&first) = wanted.first() {
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, 0, Offset::Offset(first))?;
        consumer.assign(&assignment)?;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let message = match consumer.poll(wait) {
                None => bail!("reading {topic} at offset {first} timed out"),
                Some(Err(KafkaError::PartitionEOF(_))) => return Err(missing(first)),
                Some(Err(error)) => return Err(error).context(format!("reading {topic}")),
                Some(Ok(message)) => message,
            };
            let offset = message.offset();
            if wanted.remove(&offset) {
                found.insert(offset, message.payload().unwrap_or_default().to_vec());
            }
            match wanted.first() {
                Some(&next) if next < offset => return Err(missing(next)),
                Some(&next) if next - offset <= SEEK_GAP => continue,
                _ => break,
            }
        }
    }
    Ok(found)
}

fn partition_name(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

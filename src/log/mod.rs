//! The event log: the source of truth, behind one trait so that handlers and the
//! projector never learn which backend holds it.
//!
//! Architecture Invariant: only `embedded.rs` knows the log's SQLite file, and only
//! `kafka.rs` knows rdkafka.

pub mod embedded;
pub mod kafka;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use embedded::{EmbeddedLog, EmbeddedLogSettings};
pub use kafka::KafkaLog;

use crate::domain::Event;

/// The log has two streams. Consumers of membership events are given only `Events`;
/// `Credentials` carries password hashes that every instance needs and nobody else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    Events,
    Credentials,
}

impl Stream {
    pub fn of(event: &Event) -> Self {
        if event.data.is_secret() {
            Self::Credentials
        } else {
            Self::Events
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Credentials => "credentials",
        }
    }
}

/// A place in the log: a stream's partition and the offset of an entry within it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// Names the stream and partition, e.g. `events/0`. Stored in the read model as is.
    pub partition: String,
    pub offset: i64,
}

/// One entry read back from the log, in log order within its partition.
#[derive(Debug)]
pub struct Entry {
    pub position: Position,
    /// The event's JSON exactly as appended; decoding is the reader's business.
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log refused more work for now; the caller should retry later.
    #[error("the log is busy: its queue is full")]
    Busy,
    #[error("the log is unavailable")]
    Unavailable(#[source] anyhow::Error),
}

pub type AppendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), LogError>> + Send + 'a>>;

pub trait EventLog: Send + Sync + 'static {
    /// Appends the events, each to its stream, and resolves once all are durable. The
    /// embedded log writes them in one transaction; Kafka has no transaction across its
    /// two topics and writes credentials first, so a failure leaves at worst a password
    /// without its user.
    fn append(&self, events: Vec<Event>) -> AppendFuture<'_>;

    /// A reader that starts after the given positions (from the beginning where absent).
    fn reader(&self, after: &[Position]) -> Result<Box<dyn LogReader>, LogError>;

    /// The events stream's entries at `offsets`, each as appended, in the order asked
    /// (an offset may be asked twice). The read model keeps where each event is, not the
    /// event: the feed and the groups' histories read it here. Blocking: call it off the
    /// async executor. An offset the log does not hold is an error (the read model is
    /// from another log).
    fn events_at(&self, offsets: &[i64]) -> Result<Vec<Vec<u8>>, LogError>;

    /// Resolves once the log shows it takes appends: the embedded writer answers an empty
    /// append, the Kafka brokers give the topic's metadata. For readiness checks.
    fn check(&self) -> AppendFuture<'_>;

    /// Appends not yet durable: for the embedded log, appends waiting for the writer or
    /// being written; for Kafka, messages in the producer's queue or in flight. A level
    /// for metrics.
    fn queue_depth(&self) -> usize;
}

/// What one read returns.
#[derive(Debug, Default)]
pub struct Batch {
    /// In log order within each partition.
    pub entries: Vec<Entry>,
    /// Nothing was left to read: the reader is at the end of every partition.
    pub at_end: bool,
}

/// Reads the log in order. Runs on the projector's own thread, so it may block.
pub trait LogReader: Send {
    /// Up to `max` entries, waiting at most `wait` for the first.
    fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Batch, LogError>;

    /// Entries in the log past what this reader has read, as far as it knows without
    /// asking anyone (Kafka: the high watermarks of its last fetches); `None` before it
    /// knows. For the projector's lag.
    fn behind(&self) -> Option<u64>;
}

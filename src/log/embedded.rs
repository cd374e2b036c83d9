//! The embedded log: an append-only SQLite file in the data dir, one table per stream.
//!
//! One writer thread owns the file. It takes whatever appends are queued (up to
//! `batch_max`), writes them in one transaction and syncs once, then answers them all:
//! a group commit, so many concurrent requests share one disk sync.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::oneshot;

use super::{AppendFuture, Batch, Entry, EventLog, LogError, LogReader, Position, Stream};
use crate::checkpoint::{Checkpointer, Restarts};
use crate::domain::Event;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS events (
        offset INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        type TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS credentials (
        offset INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        type TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE UNIQUE INDEX IF NOT EXISTS events_by_id ON events (event_id);
    CREATE UNIQUE INDEX IF NOT EXISTS credentials_by_id ON credentials (event_id);
";

const WRITE_RETRY_MIN: Duration = Duration::from_millis(50);
const WRITE_RETRY_MAX: Duration = Duration::from_secs(2);
/// How long opening the log waits for a lock held by another process. Once the writer
/// runs, its checkpointer's busy handler takes over (about 5 s, in 1 ms steps).
const BUSY_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct EmbeddedLogSettings {
    pub path: PathBuf,
    /// Appends waiting for the writer; past this, appends are refused as busy.
    pub queue_max: usize,
    /// Appends written by one transaction and one sync.
    pub batch_max: usize,
}

pub struct EmbeddedLog {
    path: PathBuf,
    queue: SyncSender<Append>,
    /// Appends queued or being written, for [`EventLog::queue_depth`].
    queued: Arc<AtomicUsize>,
    head: Arc<Head>,
    /// Read-only connections for [`EventLog::events_at`], kept between calls.
    lookups: Mutex<Vec<Connection>>,
    _checkpointer: Checkpointer,
}

struct Append {
    rows: Vec<Row>,
    /// Told once the rows are durable.
    done: oneshot::Sender<()>,
}

struct Row {
    stream: Stream,
    event_id: String,
    event_type: &'static str,
    payload: String,
}

/// Counts commits, so that readers can sleep until something new is written.
#[derive(Default)]
struct Head {
    commits: Mutex<u64>,
    changed: Condvar,
}

impl Head {
    fn commits(&self) -> u64 {
        *self.commits.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        *self.commits.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.changed.notify_all();
    }

    fn wait_past(&self, seen: u64, wait: Duration) {
        let guard = self.commits.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .changed
            .wait_timeout_while(guard, wait, |commits| *commits == seen);
    }
}

impl EmbeddedLog {
    pub fn open(settings: &EmbeddedLogSettings) -> anyhow::Result<Self> {
        crate::files::private_file(&settings.path)?;
        let conn = Connection::open(&settings.path)
            .with_context(|| format!("opening the log at {}", settings.path.display()))?;
        // FULL: a commit is on disk before the writer answers, so before any 2xx.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)
            .context("creating the log's tables")?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        crate::sqlite::fix_plans(&conn)?;
        let checkpointer = Checkpointer::spawn(&conn, &settings.path, "log")?;
        let restarts = checkpointer.restarts();

        let (queue, requests) = sync_channel(settings.queue_max);
        let head = Arc::new(Head::default());
        let writer_head = head.clone();
        let batch_max = settings.batch_max;
        let queued = Arc::new(AtomicUsize::new(0));
        let written = queued.clone();
        thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_loop(conn, requests, &writer_head, &restarts, &written, batch_max))
            .context("starting the log writer")?;
        Ok(Self {
            path: settings.path.clone(),
            queue,
            queued,
            head,
            lookups: Mutex::new(Vec::new()),
            _checkpointer: checkpointer,
        })
    }
}

impl EventLog for EmbeddedLog {
    fn append(&self, events: Vec<Event>) -> AppendFuture<'_> {
        Box::pin(async move {
            let rows = events
                .iter()
                .map(|event| {
                    Ok(Row {
                        stream: Stream::of(event),
                        event_id: event.id.to_string(),
                        event_type: event.data.type_name(),
                        payload: serde_json::to_string(event)?,
                    })
                })
                .collect::<Result<Vec<_>, serde_json::Error>>()
                .map_err(|e| LogError::Unavailable(e.into()))?;
            let (done, written) = oneshot::channel();
            self.queued.fetch_add(1, Ordering::Relaxed);
            self.queue
                .try_send(Append { rows, done })
                .inspect_err(|_| {
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                })
                .map_err(|e| match e {
                    TrySendError::Full(_) => LogError::Busy,
                    TrySendError::Disconnected(_) => {
                        LogError::Unavailable(anyhow::anyhow!("the log writer has stopped"))
                    }
                })?;
            written.await.map_err(|_| {
                LogError::Unavailable(anyhow::anyhow!("the log writer stopped before answering"))
            })
        })
    }

    fn reader(&self, after: &[Position]) -> Result<Box<dyn LogReader>, LogError> {
        let reader = EmbeddedReader::open(&self.path, after, self.head.clone())
            .map_err(LogError::Unavailable)?;
        Ok(Box::new(reader))
    }

    fn events_at(&self, offsets: &[i64]) -> Result<Vec<Vec<u8>>, LogError> {
        let idle = self.lookups.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open_for_reading(&self.path).map_err(LogError::Unavailable)?,
        };
        let found = payloads_at(&conn, offsets);
        (self.lookups.lock().unwrap_or_else(|e| e.into_inner())).push(conn);
        found.map_err(LogError::Unavailable)
    }

    fn check(&self) -> AppendFuture<'_> {
        // An empty transaction: the writer is alive and not stuck on a failing disk.
        self.append(Vec::new())
    }

    fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

fn write_loop(
    mut conn: Connection,
    requests: Receiver<Append>,
    head: &Head,
    restarts: &Restarts,
    queued: &AtomicUsize,
    batch_max: usize,
) {
    // Ends when every sender is gone, i.e. when the log is dropped.
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        while batch.len() < batch_max {
            match requests.try_recv() {
                Ok(next) => batch.push(next),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        write_until_done(&mut conn, &batch);
        head.bump();
        queued.fetch_sub(batch.len(), Ordering::Relaxed);
        crate::metrics::commit(batch.len());
        for append in batch {
            // The requester may have given up waiting (and answered 503 naming the
            // event); the events are written regardless, as that answer promised.
            let _ = append.done.send(());
        }
        if let Err(error) = restarts.after_commit(&conn) {
            // The next restart is tried once the log is copied again; the log only grows.
            tracing::warn!(error = %error, "restarting the log's write-ahead log failed");
        }
    }
}

/// Writes the batch, retrying until it is durable. Accepted appends are never dropped: a
/// request that timed out has told its client the event may still land. Meanwhile new
/// appends queue up to `queue_max` and are then refused as busy.
fn write_until_done(conn: &mut Connection, batch: &[Append]) {
    let mut backoff = WRITE_RETRY_MIN;
    while let Err(error) = write_batch(conn, batch) {
        tracing::error!(
            error = format!("{error:#}"),
            appends = batch.len(),
            retry_in_ms = backoff.as_millis() as u64,
            "writing to the log failed; retrying"
        );
        thread::sleep(backoff);
        backoff = (backoff * 2).min(WRITE_RETRY_MAX);
    }
}

/// Writes every row of the batch. A row whose event id is already in the log (a retry of
/// a commit that did land) is skipped, so an event is never in the log twice.
fn write_batch(conn: &mut Connection, batch: &[Append]) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut events = tx.prepare_cached(
            "INSERT OR IGNORE INTO events (event_id, type, payload) VALUES (?1, ?2, ?3)",
        )?;
        let mut credentials = tx.prepare_cached(
            "INSERT OR IGNORE INTO credentials (event_id, type, payload) VALUES (?1, ?2, ?3)",
        )?;
        for row in batch.iter().flat_map(|append| &append.rows) {
            let statement = match row.stream {
                Stream::Events => &mut events,
                Stream::Credentials => &mut credentials,
            };
            statement.execute(params![row.event_id, row.event_type, row.payload])?;
        }
    }
    tx.commit().context("committing to the log")
}

struct EmbeddedReader {
    conn: Connection,
    head: Arc<Head>,
    /// The last offset read from each stream, in `STREAMS` order.
    last: [i64; 2],
    /// Whether the file is still read through a memory map (see [`READER_MAP_BYTES`]).
    mapped: bool,
}

/// A reader catching up (a start, a rebuild) reads entries once, in order, from a file
/// that only grows: a memory map spares a copy of every page into a cache that would not
/// be read again (a rebuild of the 1,000,000-entry log of `make bench`: 21 s with it, 38 s
/// without). At the end of the log the map goes: SQLite drops a reader's whole map
/// whenever the log has changed since its last read, which for a reader that follows the
/// writer is every read. SQLite caps the map at about 2 GiB; later entries are read as
/// usual. The service only ever appends to the log, which a map needs (a file cut short
/// under it would fault).
const READER_MAP_BYTES: i64 = 1 << 31;

const STREAMS: [Stream; 2] = [Stream::Events, Stream::Credentials];

fn partition(stream: Stream) -> String {
    format!("{}/0", stream.name())
}

fn open_for_reading(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .context("opening the log for reading")?;
    crate::sqlite::fix_plans(&conn)?;
    Ok(conn)
}

/// The events stream's payloads at `offsets`, by key.
fn payloads_at(conn: &Connection, offsets: &[i64]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut statement = conn.prepare_cached("SELECT payload FROM events WHERE offset = ?1")?;
    (offsets.iter())
        .map(|&offset| {
            let payload: Option<String> =
                statement.query_row([offset], |row| row.get(0)).optional()?;
            payload
                .map(String::into_bytes)
                .with_context(|| format!("the log has no event at offset {offset}"))
        })
        .collect()
}

impl EmbeddedReader {
    fn open(path: &Path, after: &[Position], head: Arc<Head>) -> anyhow::Result<Self> {
        let conn = open_for_reading(path)?;
        conn.pragma_update(None, "mmap_size", READER_MAP_BYTES)?;
        let mut last = [0; 2];
        for (slot, stream) in last.iter_mut().zip(STREAMS) {
            let name = partition(stream);
            if let Some(p) = after.iter().find(|p| p.partition == name) {
                *slot = p.offset;
            }
            let end = end_of(&conn, stream)?;
            // A read model ahead of its log (say, the log was restored from a backup) would
            // skip whatever is appended next: refuse it rather than serve a wrong state.
            if *slot > end {
                anyhow::bail!(
                    "the read model has applied {name} up to offset {slot}, but the log ends \
                     at {end}: stop the service and delete read.db* to rebuild it from the log"
                );
            }
        }
        Ok(Self {
            conn,
            head,
            last,
            mapped: true,
        })
    }

    /// Reads both streams in one snapshot, so that a reader sees whole commits.
    fn read(&mut self, max: usize) -> anyhow::Result<Vec<Entry>> {
        let snapshot = self.conn.unchecked_transaction()?;
        let mut entries = Vec::new();
        for (i, stream) in STREAMS.into_iter().enumerate() {
            let room = max - entries.len();
            if room == 0 {
                break;
            }
            let sql = format!(
                "SELECT offset, payload FROM {} WHERE offset > ?1 ORDER BY offset LIMIT ?2",
                stream.name()
            );
            let mut statement = snapshot.prepare_cached(&sql)?;
            let rows = statement.query_map(params![self.last[i], room as i64], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?.into_bytes()))
            })?;
            for row in rows {
                let (offset, payload) = row?;
                self.last[i] = offset;
                entries.push(Entry {
                    position: Position {
                        partition: partition(stream),
                        offset,
                    },
                    payload,
                });
            }
        }
        Ok(entries)
    }
}

/// The last offset of a stream, 0 when it is empty.
fn end_of(conn: &Connection, stream: Stream) -> rusqlite::Result<i64> {
    let sql = format!("SELECT COALESCE(MAX(offset), 0) FROM {}", stream.name());
    conn.prepare_cached(&sql)?.query_row([], |row| row.get(0))
}

impl LogReader for EmbeddedReader {
    fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Batch, LogError> {
        let seen = self.head.commits();
        let mut entries = self.read(max).map_err(LogError::Unavailable)?;
        if entries.is_empty() {
            self.head.wait_past(seen, wait);
            entries = self.read(max).map_err(LogError::Unavailable)?;
        }
        let at_end = entries.is_empty();
        if at_end && self.mapped {
            (self.conn)
                .pragma_update(None, "mmap_size", 0)
                .map_err(|e| LogError::Unavailable(e.into()))?;
            self.mapped = false;
        }
        Ok(Batch { entries, at_end })
    }

    fn behind(&self) -> Option<u64> {
        let mut behind = 0;
        for (last, stream) in self.last.iter().zip(STREAMS) {
            // Offsets are rowids, given in order and never reused: the gap is a count.
            let end = end_of(&self.conn, stream).ok()?;
            behind += end.saturating_sub(*last).max(0) as u64;
        }
        Some(behind)
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;
    use crate::domain::{Actor, EventData, GroupDeleted, GroupName, Metadata, Username};

    fn group_deleted() -> Event {
        let meta = Metadata {
            id: Uuid::now_v7(),
            time: OffsetDateTime::now_utc(),
            actor: Actor {
                user_id: Uuid::now_v7(),
                username: Username::parse("svc.test").unwrap(),
            },
            correlation_id: Uuid::now_v7(),
        };
        let data = EventData::GroupDeleted(GroupDeleted {
            group_id: Uuid::now_v7(),
            name: GroupName::parse("Gone").unwrap(),
        });
        Event::new(meta, data)
    }

    fn small_log(path: &Path) -> EmbeddedLog {
        let settings = EmbeddedLogSettings {
            path: path.to_owned(),
            queue_max: 4,
            batch_max: 4,
        };
        EmbeddedLog::open(&settings).unwrap()
    }

    #[tokio::test]
    async fn an_event_appended_twice_is_in_the_log_once_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let log = small_log(&dir.path().join("log.db"));
        let (event, next) = (group_deleted(), group_deleted());
        // A retry of a commit that landed is skipped, not an error the writer retries
        // forever (every append after it waiting).
        for append in [&event, &event, &next] {
            let appended =
                tokio::time::timeout(Duration::from_secs(5), log.append(vec![append.clone()]));
            appended.await.expect("the writer answers").unwrap();
        }

        let mut reader = log.reader(&[]).unwrap();
        let batch = reader.next_batch(10, Duration::from_millis(10)).unwrap();
        let ids: Vec<Uuid> = (batch.entries.iter())
            .map(|entry| serde_json::from_slice::<Event>(&entry.payload).unwrap().id)
            .collect();
        assert_eq!(ids, [event.id, next.id]);
    }

    #[tokio::test]
    async fn the_log_is_read_with_plans_that_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let _log = small_log(&path);
        assert!(crate::sqlite::plans_are_fixed(
            &open_for_reading(&path).unwrap()
        ));
    }
}

//! Checkpoints of a SQLite write-ahead log, mostly off the writer's thread.
//!
//! By default the connection that commits also copies the write-ahead log back into the
//! database file every thousand pages, and syncs it, inside that commit: the one writer
//! of the log and the one writer of the read model would each stall for it, and every
//! request waiting on them with it. A [`Checkpointer`] copies the pages on a thread of its
//! own, beside the writer (a passive checkpoint never blocks it).
//!
//! Under a steady load the copy never finds a moment when nobody uses the log, so the log
//! would grow without end. Once it is long and copied, the writer restarts it from its
//! beginning between two commits ([`Restarts::after_commit`]): the pages are in the
//! database by then, so that only waits for the reads under way.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::Connection;

/// How often the log is copied back. Each pass copies what the writer committed since,
/// and syncs it if the writer syncs (the event log; the read model is never synced): the
/// passes are short and their syncs small, because the log's commits wait behind any sync
/// on the disk. (500 removals a second for 20 s: commits of the log
/// over 5 ms were 23 and 45 in two runs with a pass every 100 ms, 8 and 8 every 25 ms; the
/// log now often empties and starts over by itself, without a restart by the writer.)
const INTERVAL: Duration = Duration::from_millis(25);

/// A log longer than this (in pages) is restarted once it is copied.
const RESTART_PAGES: i64 = 4096;

/// Passes made back to back before a restart, each shorter than the one before.
const CATCH_UP_PASSES: usize = 3;

/// A log left this long after a restart is cut back to it, so that a burst does not keep
/// its disk space.
const WAL_KEPT_BYTES: i64 = 64 << 20;

/// A connection kept waiting for a lock (a copy pass, a restart) tries again this often,
/// up to `BUSY_TRIES` times: SQLite's busy timeout sleeps up to 100 ms between tries, far
/// longer than a copy pass or a read takes.
const BUSY_STEP: Duration = Duration::from_millis(1);
const BUSY_TRIES: i32 = 5_000;

/// A restart waits this many steps at most for the reads under way, then gives up until
/// it is due again: a long read must not hold the writer, and every request behind it.
const RESTART_TRIES: i32 = 20;

/// Long passes in a row after which a restart is due even though a read kept some pages
/// from being copied: the restart copies them, so that the log cannot grow without end.
const LONG_PASSES_MAX: u32 = 10;

fn wait_a_little(tries: i32) -> bool {
    thread::sleep(BUSY_STEP);
    tries < BUSY_TRIES
}

fn wait_for_a_restart(tries: i32) -> bool {
    thread::sleep(BUSY_STEP);
    tries < RESTART_TRIES
}

pub struct Checkpointer {
    restarts: Restarts,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The writer's part: restarting the log when the checkpointer says it is due.
#[derive(Clone)]
pub struct Restarts {
    due: Arc<AtomicBool>,
    /// The file's name in metrics.
    file: &'static str,
}

impl Checkpointer {
    /// Turns automatic checkpoints off on `writer` and starts copying the log of the
    /// database at `path` from a connection of its own, until dropped. The writer must
    /// call [`Restarts::after_commit`] of [`Checkpointer::restarts`].
    pub fn spawn(writer: &Connection, path: &Path, name: &'static str) -> anyhow::Result<Self> {
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        writer.pragma_update(None, "journal_size_limit", WAL_KEPT_BYTES)?;
        writer.busy_handler(Some(wait_a_little))?;
        let conn = Connection::open(path)
            .with_context(|| format!("opening {} to checkpoint it", path.display()))?;
        conn.busy_handler(Some(wait_a_little))?;
        // Syncs as the writer does. A synced writer's database file is synced before the
        // log's pages are taken as copied: what it made durable in the log stays durable
        // once the log starts over. An unsynced one (the read model) syncs nothing.
        let synchronous: i64 = writer.pragma_query_value(None, "synchronous", |row| row.get(0))?;
        conn.pragma_update(None, "synchronous", synchronous)?;
        let restarts = Restarts {
            due: Arc::new(AtomicBool::new(false)),
            file: name,
        };
        let due = restarts.due.clone();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name(format!("{name}-checkpoint"))
            .spawn(move || {
                let mut long_passes = 0;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    match copy(&conn) {
                        Ok(Copied::Short) => long_passes = 0,
                        Ok(Copied::Long { all }) => {
                            long_passes += 1;
                            if all || long_passes >= LONG_PASSES_MAX {
                                due.store(true, Ordering::Relaxed);
                                long_passes = 0;
                            }
                        }
                        Err(error) => {
                            tracing::warn!(error = %error, file = name, "checkpoint failed; retrying")
                        }
                    }
                }
                // Stopping: copy what is left and empty the log, so that a stopped service
                // leaves each database whole in its file and no log to read at the next
                // start.
                let truncated = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                if let Err(error) = truncated {
                    tracing::warn!(error = %error, file = name, "the last checkpoint failed");
                }
            })
            .context("starting a checkpointer")?;
        Ok(Self {
            restarts,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn restarts(&self) -> Restarts {
        self.restarts.clone()
    }
}

enum Copied {
    Short,
    /// Past `RESTART_PAGES`; `all` if every page was copied.
    Long {
        all: bool,
    },
}

/// Copies what it can without waiting. A long log is copied again at once, a few times,
/// so that the restart finds next to nothing left to copy: each pass copies what the
/// writer committed during the one before.
fn copy(conn: &Connection) -> rusqlite::Result<Copied> {
    // (busy, pages in the log, pages copied); a pass that found the copy under way
    // elsewhere (another process's checkpointer) copied nothing: `busy` is 1.
    let passive = || -> rusqlite::Result<(bool, i64, i64)> {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
    };
    let (_, pages, _) = passive()?;
    if pages <= RESTART_PAGES {
        return Ok(Copied::Short);
    }
    let mut all = false;
    for _ in 0..CATCH_UP_PASSES {
        let (busy, pages, copied) = passive()?;
        all = !busy && pages > 0 && copied == pages;
    }
    Ok(Copied::Long { all })
}

impl Restarts {
    /// Restarts the log if it is due; to be called by the writer outside a transaction.
    /// A restart that cannot start at once (a long read) is left for the next time it is
    /// due; only an error of the database is returned.
    pub fn after_commit(&self, writer: &Connection) -> rusqlite::Result<()> {
        if !self.due.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let started = Instant::now();
        writer.busy_handler(Some(wait_for_a_restart))?;
        let restarted = writer.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
        writer.busy_handler(Some(wait_a_little))?;
        crate::metrics::wal_restart(self.file, started.elapsed());
        match restarted {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                Ok(())
            }
            other => other,
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

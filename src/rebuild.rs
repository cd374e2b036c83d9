//! `membershipd rebuild`: folds the whole log into a new read model and says whether it
//! equals the live one. The check that the read model is what the log says it is, and
//! the way to make a fresh one without stopping the service.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags};

use crate::log::LogReader;
use crate::projector::{Decoded, apply_mirrored, decode, finish_mirrored};
use crate::read_model;
use crate::settings::Settings;
use crate::startup::open_existing_log;

/// How many entries one projector transaction takes while rebuilding.
const BATCH_MAX: usize = 10_000;

/// The rebuild's page cache.
const REBUILD_CACHE_BYTES: i64 = 256 << 20;

/// What a rebuild found.
pub struct Rebuilt {
    pub path: PathBuf,
    pub events: usize,
    pub elapsed: Duration,
    /// `None` when there is no live read model to compare with.
    pub difference: Option<Difference>,
}

pub enum Difference {
    Equal,
    /// The first line of the dumps that differs: (rebuilt, live).
    Differs(String, String),
}

/// Rebuilds into `into` (replacing any file there), then compares with the live read
/// model. Read the comparison only when the service is stopped or idle: a live read model
/// that moves on while this runs differs by what it applied since.
pub async fn run(settings: &Settings, into: Option<PathBuf>) -> anyhow::Result<Rebuilt> {
    let path = into.unwrap_or_else(|| settings.data.dir.join("read.rebuilt.db"));
    let live = settings.read_model_path();
    if same_file(&path, &live) {
        bail!(
            "{} is the live read model: rebuild into another file, then move it over",
            path.display()
        );
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
        }
    }
    let log = open_existing_log(settings).await?;
    // Without the indexes only requests read until the log is folded (1,000,000 entries,
    // three rebuilds each way in turn: a median of 19.30 s against 20.98 s).
    let conn = read_model::open_for_rebuilding(&path)?;
    // A rebuild that stops half way is started again from scratch (its file is removed
    // above), so it needs neither a journal nor syncs until it is done.
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    // A page cache that holds the whole hot part of the model: nothing else reads the
    // file meanwhile, and its few commits are cheap however large the cache is. No memory
    // map: a rebuild writes nearly every page it reads, which SQLite then copies out of
    // the map into the cache anyway (three rebuilds of a 301,003-entry log each way: a
    // median of 7.06 s without the map, 7.71 s with it).
    conn.pragma_update(None, "cache_size", -(REBUILD_CACHE_BYTES / 1024))?;
    conn.pragma_update(None, "mmap_size", 0)?;
    let started = Instant::now();
    let reader = log.reader(&[])?;
    let (conn, events) = tokio::task::spawn_blocking(move || {
        let (conn, events) = replay(reader, conn)?;
        read_model::add_read_indexes(&conn)?;
        anyhow::Ok((conn, events))
    })
    .await
    .context("the rebuild panicked")??;
    // Back to what the service expects of a read model, and on disk (nothing was synced
    // while it was built) before anyone is told to move it over the live one.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    crate::files::sync_to_disk(&path)?;
    let elapsed = started.elapsed();
    let difference = if live.exists() {
        Some(compare(&conn, &live)?)
    } else {
        None
    };
    Ok(Rebuilt {
        path,
        events,
        elapsed,
        difference,
    })
}

/// Folds the whole log into `conn`: this thread applies while another reads and decodes
/// the next batch (a sixth of the work, and the two cores of a small machine).
fn replay(
    mut reader: Box<dyn LogReader>,
    mut conn: Connection,
) -> anyhow::Result<(Connection, usize)> {
    let (send, batches) = mpsc::sync_channel::<anyhow::Result<(Vec<Decoded>, bool)>>(1);
    let decoder = thread::Builder::new()
        .name("rebuild-reader".into())
        .spawn(move || {
            loop {
                let batch = reader
                    .next_batch(BATCH_MAX, Duration::from_millis(100))
                    .map_err(anyhow::Error::from)
                    .and_then(|batch| Ok((decode(&batch.entries)?, batch.at_end)));
                let last = !matches!(batch, Ok((_, false)));
                // The applier has stopped (on an error of its own) when nobody receives.
                if send.send(batch).is_err() || last {
                    return;
                }
            }
        })
        .context("starting the rebuild's reader")?;
    let mut events = 0;
    // The new model starts empty, and this is its one writer.
    let mut mirror = read_model::Mirror::default();
    let mut apply_all = || -> anyhow::Result<()> {
        loop {
            let batch = batches.recv().context("the rebuild's reader stopped")?;
            let (decoded, at_end) = batch?;
            events += decoded.len();
            if !decoded.is_empty() {
                apply_mirrored(&mut conn, &decoded, &mut mirror)?;
            }
            if at_end {
                return finish_mirrored(&mut conn, &mirror);
            }
        }
    };
    let replayed = apply_all();
    drop(batches);
    let _ = decoder.join();
    replayed.map(|()| (conn, events))
}

/// Whether two paths name one file, as far as can be told without either existing.
fn same_file(a: &Path, b: &Path) -> bool {
    let resolved = |p: &Path| {
        p.parent()
            .and_then(|dir| dir.canonicalize().ok())
            .zip(p.file_name())
            .map(|(dir, name)| dir.join(name))
    };
    a == b || matches!((resolved(a), resolved(b)), (Some(a), Some(b)) if a == b)
}

fn compare(rebuilt: &Connection, live: &Path) -> anyhow::Result<Difference> {
    let live = Connection::open_with_flags(live, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening the live read model {}", live.display()))?;
    Ok(match read_model::first_difference(rebuilt, &live)? {
        None => Difference::Equal,
        Some((ours, theirs)) => Difference::Differs(ours, theirs),
    })
}

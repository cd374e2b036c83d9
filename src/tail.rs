//! `membershipd events tail`: follows the configured log from its beginning and prints one
//! line per event with its outcome. Outcomes are decided as the service decides them: each
//! event is applied, in log order, by the projector's own code to a private read model in
//! a temporary directory, deleted on exit. Nothing is appended to the log, and the
//! service's own read model is left alone. With `--json`, it prints what the service's
//! event feed serves, read from that private read model by the feed's own query: one item
//! per line, `{"position", "outcome", "code", "event"}`, rejected events included.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use time::UtcOffset;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use uuid::Uuid;

use crate::domain::{Event, EventData, Outcome};
use crate::log::EventLog;
use crate::projector;
use crate::read_model;
use crate::settings::Settings;

#[derive(Debug, Clone, Copy, Default)]
pub struct TailOptions {
    /// Exit once the end of the log is reached, instead of waiting for new events.
    pub until_end: bool,
    /// Print the feed's items (JSON, one per line) instead of a line of text per event.
    pub json: bool,
}

/// Prints the log's events until a signal (SIGINT, SIGTERM) stops it, or, with
/// `until_end`, until the end of the log; both are a success. A log that cannot be read
/// is an error.
pub async fn run(settings: &Settings, options: TailOptions) -> anyhow::Result<()> {
    let log = crate::startup::open_existing_log(settings).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let follow = Follow {
        batch_max: settings.projector.batch_max,
        poll: Duration::from_millis(settings.projector.poll_ms),
        until_end: options.until_end,
        json: options.json,
    };
    let stopping = stop.clone();
    // The log is read with blocking calls: off the async executor, like the projector.
    let mut follower =
        tokio::task::spawn_blocking(move || follow.run(&*log, &stopping, &mut io::stdout().lock()));
    tokio::select! {
        done = &mut follower => return done.context("the tail thread panicked")?,
        signalled = stop_signal() => {
            signalled?;
            stop.store(true, Ordering::Relaxed);
        }
    }
    follower.await.context("the tail thread panicked")?
}

#[cfg(unix)]
async fn stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.context("listening for SIGINT"),
        _ = terminate.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn stop_signal() -> anyhow::Result<()> {
    tokio::signal::ctrl_c()
        .await
        .context("listening for Ctrl-C")
}

struct Follow {
    batch_max: usize,
    /// The longest one read waits for new events: bounds how fast a signal is obeyed.
    poll: Duration,
    until_end: bool,
    json: bool,
}

impl Follow {
    fn run(
        &self,
        log: &dyn EventLog,
        stop: &AtomicBool,
        out: &mut impl Write,
    ) -> anyhow::Result<()> {
        match self.print_events(log, stop, out) {
            // The reader went away (`| head`): nothing is left to print to.
            Err(error)
                if error
                    .downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    fn print_events(
        &self,
        log: &dyn EventLog,
        stop: &AtomicBool,
        out: &mut impl Write,
    ) -> anyhow::Result<()> {
        let model = TempDir::create()?;
        let mut conn = read_model::open_for_writing(&model.path().join("read.db"))?;
        let mut reader = log.reader(&[])?;
        // Where the feed was printed to, with `--json`.
        let mut printed: Option<i64> = None;
        while !stop.load(Ordering::Relaxed) {
            let batch = reader.next_batch(self.batch_max, self.poll)?;
            if batch.entries.is_empty() {
                if batch.at_end && self.until_end {
                    break;
                }
                continue;
            }
            let mut decided: HashMap<Uuid, Outcome> =
                projector::apply_batch(&mut conn, &batch.entries)?
                    .into_iter()
                    .collect();
            if self.json {
                printed = print_feed(&conn, log, printed, out)?;
                out.flush()?;
                continue;
            }
            for entry in &batch.entries {
                // `apply_batch` has read every entry as an event already.
                let event: Event = serde_json::from_slice(&entry.payload)?;
                // An id seen before has no outcome of its own: the first one's stands.
                let outcome = decided.remove(&event.id);
                writeln!(out, "{}", line(&event, outcome.as_ref())?)?;
            }
            out.flush()?;
        }
        Ok(())
    }
}

/// Prints the feed's items after `after`, page by page, as the service's feed serves them;
/// where it got to.
fn print_feed(
    conn: &rusqlite::Connection,
    log: &dyn EventLog,
    mut after: Option<i64>,
    out: &mut impl Write,
) -> anyhow::Result<Option<i64>> {
    const PAGE: u64 = 1000;
    let every = read_model::FeedFilter {
        include_rejected: true,
        ..read_model::FeedFilter::default()
    };
    loop {
        let page = read_model::feed_page(conn, after, PAGE, &every)?;
        let events = log.events_at(&page.positions())?;
        let page = page.with_events(events)?;
        for item in &page.items {
            writeln!(out, "{}", item.to_json()?)?;
        }
        if page.next == after || page.items.is_empty() {
            return Ok(after);
        }
        after = page.next;
    }
}

/// RFC 3339 in UTC to the millisecond, so that the columns line up.
const TIME: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// `<time>  <type>  <outcome>  <actor>  <summary>  (event <id>)`, e.g.
/// `2025-06-01T10:00:00.123Z  MemberRemoved      applied                      svc.ops  tdurden from "Paper Street Soap Company"  (event 0197…)`.
fn line(event: &Event, outcome: Option<&Outcome>) -> anyhow::Result<String> {
    let outcome = match outcome {
        Some(applied @ Outcome::Applied) => applied.code().to_owned(),
        Some(Outcome::Rejected(reason)) => format!("rejected: {}", reason.code()),
        None => "duplicate".to_owned(),
    };
    Ok(format!(
        "{}  {:<17}  {:<27}  {}  {}  (event {})",
        event.time.to_offset(UtcOffset::UTC).format(TIME)?,
        event.data.type_name(),
        outcome,
        event.actor.username,
        summary(&event.data),
        event.id,
    ))
}

/// What the event asks for, in words. Names are quoted (and escaped) as Rust strings.
fn summary(data: &EventData) -> String {
    match data {
        EventData::UserCreated(e) => {
            let mut text = format!("{} <{}>", e.username, e.email);
            if let Some(client) = &e.client_id {
                text.push_str(&format!(", service account of the client {client:?}"));
            }
            text
        }
        EventData::UserUpdated(e) => format!("{} <{}>", e.username, e.email),
        EventData::UserDeleted(e) => format!("{} <{}>", e.username, e.email),
        EventData::GroupCreated(e) | EventData::GroupUpdated(e) => {
            let kind = serde_json::to_value(e.group_type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!("{:?} ({kind})", e.name.as_str())
        }
        EventData::GroupDeleted(e) => format!("{:?}", e.name.as_str()),
        EventData::MemberAdded(m) => format!("{} to {:?}", m.username, m.group_name.as_str()),
        EventData::MemberRemoved(m) => {
            format!("{} from {:?}", m.username, m.group_name.as_str())
        }
        EventData::ChildGroupAdded(n) => format!(
            "{:?} into {:?}",
            n.child_group_name.as_str(),
            n.group_name.as_str()
        ),
        EventData::ChildGroupRemoved(n) => format!(
            "{:?} out of {:?}",
            n.child_group_name.as_str(),
            n.group_name.as_str()
        ),
        EventData::UserSuspended(e) | EventData::UserReinstated(e) => {
            format!("{} <{}>", e.username, e.email)
        }
        EventData::PasswordSet(e) => format!("for the user {}", e.user_id),
        EventData::TokenRevoked(e) => format!("token {} of the user {}", e.token_id, e.user_id),
    }
}

/// A directory only this user can read (the read model holds password hashes), removed
/// with everything in it when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("membershipd-tail-{}", Uuid::new_v4()));
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

//! The projector: the one writer of the read model. It reads the log in order, lets
//! `domain::apply` decide each event's outcome, and commits the changes, the outcomes and
//! the log positions in one transaction, so an event takes effect exactly once however
//! often it is delivered.
//!
//! Architecture Invariant: only this module writes the read model.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, Transaction, params};
use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use crate::checkpoint::{Checkpointer, Restarts};
use crate::domain::{
    self, DomainError, Event, EventData, GroupDeleted, GroupDetails, GroupRef, IDEMPOTENCY_KEY_TTL,
    Membership, Nesting, Outcome, PasswordSet, TokenRevoked, UserCreated, UserDeleted, UserRef,
    UserStatus, UserUpdated,
};
use crate::log::{Entry, EventLog, LogReader, Position};
use crate::read_model::{self, Mirror, SqliteState, Unsynced};
use crate::sqlite::Rows;

#[derive(Debug, Clone)]
pub struct ProjectorSettings {
    pub read_model_path: PathBuf,
    /// Events applied per read-model transaction.
    pub batch_max: usize,
    /// How long one read of the log waits for new events; bounds how fast it stops.
    pub poll_ms: u64,
}

/// Where handlers wait for the outcome of the events they appended.
#[derive(Default)]
pub struct Outcomes {
    waiting: Mutex<HashMap<Uuid, oneshot::Sender<Outcome>>>,
    caught_up: watch::Sender<bool>,
    /// Counts the projector's commits: the feed's readers wait on it for news.
    applied: watch::Sender<u64>,
    /// Entries the projector knows are in the log and not yet applied.
    behind: AtomicU64,
    /// The time of the newest event applied, in Unix milliseconds; 0 before any.
    newest_ms: AtomicI64,
}

/// A claim on one event's outcome. Dropping it (say, on a timeout) withdraws the claim.
pub struct Pending {
    event: Uuid,
    outcome: oneshot::Receiver<Outcome>,
    outcomes: Arc<Outcomes>,
}

impl Outcomes {
    /// Register before appending, so that a fast projector cannot answer before anyone asks.
    pub fn expect(self: &Arc<Self>, event: Uuid) -> Pending {
        let (tell, outcome) = oneshot::channel();
        self.lock().insert(event, tell);
        Pending {
            event,
            outcome,
            outcomes: self.clone(),
        }
    }

    /// Changes whenever the projector commits applied events.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Resolves once the projector has read to the end of the log since start-up.
    pub async fn caught_up(&self) {
        let mut caught_up = self.caught_up.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = caught_up.wait_for(|done| *done).await;
    }

    /// How far the read model is behind the log: in events, as of the projector's last
    /// read; and in time, the age of the newest applied event while events wait.
    pub fn lag(&self) -> (u64, Duration) {
        let behind = self.behind.load(Ordering::Relaxed);
        let newest_ms = self.newest_ms.load(Ordering::Relaxed);
        let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let lag = match behind {
            0 => Duration::ZERO,
            _ if newest_ms == 0 => Duration::ZERO,
            _ => Duration::from_millis(now_ms.saturating_sub(newest_ms).max(0) as u64),
        };
        (behind, lag)
    }

    fn publish(&self, decided: Vec<(Uuid, Outcome)>) {
        let mut waiting = self.lock();
        for (event, outcome) in decided {
            if let Some(tell) = waiting.remove(&event) {
                let _ = tell.send(outcome);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, oneshot::Sender<Outcome>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Pending {
    /// The event's outcome, or `None` if it is not known by `deadline`.
    pub async fn wait_until(mut self, deadline: tokio::time::Instant) -> Option<Outcome> {
        tokio::time::timeout_at(deadline, &mut self.outcome)
            .await
            .ok()
            .and_then(Result::ok)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.outcomes.lock().remove(&self.event);
    }
}

pub struct Projector {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    checkpointer: Checkpointer,
    unsynced: Unsynced,
}

impl Projector {
    pub fn spawn(
        log: Arc<dyn EventLog>,
        outcomes: Arc<Outcomes>,
        settings: ProjectorSettings,
    ) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let unsynced = Unsynced::claim(&settings.read_model_path)?;
        let conn = read_model::open_for_writing(&settings.read_model_path)?;
        let checkpointer = Checkpointer::spawn(&conn, &settings.read_model_path, "read-model")?;
        let restarts = checkpointer.restarts();
        let stopping = stop.clone();
        let thread = thread::Builder::new()
            .name("projector".into())
            .spawn(move || run(conn, &*log, &outcomes, &settings, &stopping, &restarts))
            .context("starting the projector")?;
        Ok(Self {
            stop,
            thread,
            checkpointer,
            unsynced,
        })
    }

    /// Stops after the batch under way, copies the read model's write-ahead log into it
    /// and syncs it.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        drop(self.checkpointer);
        if let Err(error) = self.unsynced.release() {
            // The marker stays: the next start after a stop of the machine rebuilds.
            tracing::warn!(
                error = format!("{error:#}"),
                "syncing the read model failed"
            );
        }
    }
}

const RETRY_MAX: Duration = Duration::from_secs(5);

/// Runs until stopped. A failure is logged and retried, with a growing pause, from the
/// stored positions, which are exactly as far as the committed changes go.
fn run(
    mut conn: Connection,
    log: &dyn EventLog,
    outcomes: &Outcomes,
    settings: &ProjectorSettings,
    stop: &AtomicBool,
    restarts: &Restarts,
) {
    let poll = Duration::from_millis(settings.poll_ms);
    let mut pause = poll;
    while !stop.load(Ordering::Relaxed) {
        let result = stored_positions(&conn)
            .and_then(|after| log.reader(&after).map_err(Into::into))
            .and_then(|reader| {
                follow(
                    &mut conn, reader, outcomes, settings, stop, restarts, &mut pause,
                )
            });
        if let Err(error) = result {
            tracing::error!(
                error = format!("{error:#}"),
                retry_in_ms = pause.as_millis() as u64,
                "projector failed; retrying"
            );
            thread::sleep(pause);
            pause = (pause * 2).min(RETRY_MAX);
        }
    }
}

fn follow(
    conn: &mut Connection,
    mut reader: Box<dyn LogReader>,
    outcomes: &Outcomes,
    settings: &ProjectorSettings,
    stop: &AtomicBool,
    restarts: &Restarts,
    pause: &mut Duration,
) -> anyhow::Result<()> {
    let poll = Duration::from_millis(settings.poll_ms);
    while !stop.load(Ordering::Relaxed) {
        let batch = reader.next_batch(settings.batch_max, poll)?;
        if batch.at_end {
            outcomes.caught_up.send_replace(true);
        }
        if batch.entries.is_empty() {
            let behind = if batch.at_end {
                Some(0)
            } else {
                reader.behind()
            };
            if let Some(behind) = behind {
                outcomes.behind.store(behind, Ordering::Relaxed);
            }
            continue;
        }
        let started = std::time::Instant::now();
        let (decided, newest) = apply_decoded(conn, &decode(&batch.entries)?)?;
        crate::metrics::projector_batch(batch.entries.len(), started.elapsed());
        if let Some(newest) = newest {
            let ms = (newest.unix_timestamp_nanos() / 1_000_000) as i64;
            outcomes.newest_ms.fetch_max(ms, Ordering::Relaxed);
        }
        if let Some(behind) = reader.behind() {
            outcomes.behind.store(behind, Ordering::Relaxed);
        }
        outcomes.publish(decided);
        outcomes.applied.send_modify(|commits| *commits += 1);
        if let Err(error) = restarts.after_commit(conn) {
            // The batch is committed and answered; the next restart is tried when due.
            tracing::warn!(error = %error, "restarting the read model's write-ahead log failed");
        }
        *pause = poll;
    }
    Ok(())
}

fn stored_positions(conn: &Connection) -> anyhow::Result<Vec<Position>> {
    let mut statement = conn.prepare("SELECT partition, offset FROM positions")?;
    let positions = statement
        .query_map([], |row| {
            Ok(Position {
                partition: row.get(0)?,
                offset: row.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(positions)
}

/// Applies a batch in one transaction and returns each event's outcome.
pub(crate) fn apply_batch(
    conn: &mut Connection,
    batch: &[Entry],
) -> anyhow::Result<Vec<(Uuid, Outcome)>> {
    Ok(apply_decoded(conn, &decode(batch)?)?.0)
}

/// Each event's outcome, and the time of the newest event in the batch.
type Decided = (Vec<(Uuid, Outcome)>, Option<OffsetDateTime>);

/// A log entry read as an event.
pub(crate) struct Decoded {
    position: Position,
    event: Event,
}

/// Reads each entry as an event. An entry this version cannot read is not skipped:
/// skipping would make this read model silently differ from one built by a version that
/// can. The projector stops there (retrying, loudly) until an operator deploys a version
/// that reads it.
pub(crate) fn decode(batch: &[Entry]) -> anyhow::Result<Vec<Decoded>> {
    let decode_one = |entry: &Entry| {
        let unreadable = || {
            format!(
                "the log entry at {:?} is not an event this version can read",
                entry.position
            )
        };
        let payload = std::str::from_utf8(&entry.payload).with_context(unreadable)?;
        let event: Event = serde_json::from_str(payload).with_context(unreadable)?;
        Ok(Decoded {
            position: entry.position.clone(),
            event,
        })
    };
    batch.iter().map(decode_one).collect()
}

/// Applies decoded entries in one transaction; returns each event's outcome and the time
/// of the newest event.
pub(crate) fn apply_decoded(conn: &mut Connection, batch: &[Decoded]) -> anyhow::Result<Decided> {
    apply_in(conn, batch, None)
}

/// As [`apply_decoded`], into a read model that `mirror` holds exactly (see [`Mirror`]):
/// `apply` reads groups, users and memberships by id from the mirror, and every change
/// made to them is noted there too. On an error the mirror may be ahead of the model,
/// and neither is to be used again (a rebuild stops).
pub(crate) fn apply_mirrored(
    conn: &mut Connection,
    batch: &[Decoded],
    mirror: &mut Mirror,
) -> anyhow::Result<Decided> {
    apply_in(conn, batch, Some(mirror))
}

/// After the last mirrored batch: writes what `mirror` still keeps back (memberships),
/// so that the model holds what the mirror does.
pub(crate) fn finish_mirrored(conn: &mut Connection, mirror: &Mirror) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    mirror.write_members(&tx)?;
    tx.commit()
        .context("committing the memberships of a rebuild")
}

fn apply_in(
    conn: &mut Connection,
    batch: &[Decoded],
    mut mirror: Option<&mut Mirror>,
) -> anyhow::Result<Decided> {
    let tx = conn.transaction()?;
    let mut decided = Vec::with_capacity(batch.len());
    let mut counted = Vec::with_capacity(batch.len());
    let mut newest = None;
    let mut reached: HashMap<&str, i64> = HashMap::new();
    let mut appends = Appends::of(&tx, batch.len())?;
    let mut changed_groups = HashSet::new();
    for Decoded { position, event } in batch {
        reached.insert(&position.partition, position.offset);
        newest = newest.max(Some(event.time));
        let applied = apply_once(
            &tx,
            event,
            position.offset,
            &mut appends,
            mirror.as_deref_mut(),
        )?;
        if let Some(outcome) = applied {
            if outcome == Outcome::Applied && mirror.is_some() {
                changed_groups.extend(event.data.changed_group());
            }
            counted.push((event.data.type_name(), outcome.code()));
            decided.push((event.id, outcome));
        }
    }
    appends.write(&tx)?;
    if let Some(mirror) = mirror.as_deref() {
        write_versions(&tx, mirror, &changed_groups)?;
    }
    {
        let mut save = tx.prepare_cached(
            "INSERT INTO positions (partition, offset) VALUES (?1, ?2)
             ON CONFLICT (partition) DO UPDATE SET offset = excluded.offset",
        )?;
        for (partition, offset) in reached {
            save.execute(params![partition, offset])?;
        }
    }
    tx.commit().context("committing a projector batch")?;
    for (event_type, outcome) in counted {
        crate::metrics::projected(event_type, outcome);
    }
    Ok((decided, newest))
}

/// What a batch appends to `outcomes` and `feed`, kept until its end and then written
/// many rows to a statement (a row a statement was a fifth of a rebuild's time); and
/// whether an event already has an outcome, this batch's included.
struct Appends {
    /// The greatest event id among the recorded outcomes. An event whose id is greater
    /// has none yet, without a lookup: ids are mostly made in log order (version 7), so
    /// this spares nearly every event's search of `outcomes`. Ids compare as their bytes,
    /// as SQLite compares blobs.
    greatest: Option<Uuid>,
    outcomes: Vec<(Uuid, &'static str)>,
    /// The ids in `outcomes`.
    ids: HashSet<Uuid>,
    feed: Vec<FeedRow>,
}

struct FeedRow {
    position: i64,
    event_type: &'static str,
    group: Option<Uuid>,
    user: Option<Uuid>,
    outcome: &'static str,
}

impl Appends {
    fn of(tx: &Transaction, events: usize) -> rusqlite::Result<Self> {
        let greatest = tx.query_row("SELECT max(event_id) FROM outcomes", [], |row| row.get(0))?;
        Ok(Self {
            greatest,
            outcomes: Vec::with_capacity(events),
            ids: HashSet::with_capacity(events),
            feed: Vec::with_capacity(events),
        })
    }

    /// Whether event `id` has an outcome.
    fn has_outcome(&self, tx: &Transaction, id: Uuid) -> rusqlite::Result<bool> {
        if self.greatest.is_none_or(|greatest| id > greatest) {
            return Ok(false);
        }
        if self.ids.contains(&id) {
            return Ok(true);
        }
        tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM outcomes WHERE event_id = ?1)")?
            .query_row([&id], |row| row.get(0))
    }

    fn outcome(&mut self, id: Uuid, outcome: &Outcome) {
        self.outcomes.push((id, outcome.code()));
        self.ids.insert(id);
        self.greatest = self.greatest.max(Some(id));
    }

    fn write(&self, tx: &Transaction) -> rusqlite::Result<()> {
        OUTCOME_ROWS.insert(tx, &self.outcomes, |statement, at, (id, outcome)| {
            statement.raw_bind_parameter(at, id)?;
            statement.raw_bind_parameter(at + 1, outcome)
        })?;
        FEED_ROWS.insert(tx, &self.feed, |statement, at, row| {
            statement.raw_bind_parameter(at, row.position)?;
            statement.raw_bind_parameter(at + 1, row.event_type)?;
            statement.raw_bind_parameter(at + 2, row.group)?;
            statement.raw_bind_parameter(at + 3, row.user)?;
            statement.raw_bind_parameter(at + 4, row.outcome)
        })
    }
}

static OUTCOME_ROWS: LazyLock<Rows> =
    LazyLock::new(|| Rows::new("INSERT INTO outcomes (event_id, outcome)", 2));
static FEED_ROWS: LazyLock<Rows> = LazyLock::new(|| {
    Rows::new(
        "INSERT INTO feed (position, type, group_id, user_id, outcome)",
        5,
    )
});

/// Applies an event unless it was applied before (a redelivery), recording its outcome,
/// and, for the events stream, its entry in the feed at its `position`.
fn apply_once(
    tx: &Transaction,
    event: &Event,
    position: i64,
    appends: &mut Appends,
    mirror: Option<&mut Mirror>,
) -> anyhow::Result<Option<Outcome>> {
    let id = event.id;
    if appends.has_outcome(tx, id)? {
        return Ok(None);
    }
    let state = match mirror.as_deref() {
        Some(mirror) => SqliteState::mirrored(tx, mirror),
        None => SqliteState::new(tx),
    };
    let outcome = domain::apply_event(&state, event)?;
    if outcome == Outcome::Applied {
        let write = || write_effect(tx, event).with_context(|| format!("applying event {id}"));
        match mirror {
            // The group's version is written once per batch, by `write_versions`, and a
            // membership when the table is next read, by `Mirror::write_members`.
            Some(mirror) => {
                if !is_membership(&event.data) {
                    write()?;
                }
                mirror_effect(mirror, event);
            }
            None => {
                write()?;
                record_change(tx, event)?;
            }
        }
    }
    appends.outcome(id, &outcome);
    if !event.data.is_secret() {
        appends.feed.push(FeedRow {
            position,
            event_type: event.data.type_name(),
            group: event.data.group(),
            user: event.data.user(),
            outcome: outcome.code(),
        });
    }
    if outcome != Outcome::Rejected(DomainError::DuplicateRequest) {
        record_key_use(tx, event)?;
    }
    Ok(Some(outcome))
}

/// Notes the event under its request's idempotency key, taking the key for the request
/// if it is free; and forgets keys past [`IDEMPOTENCY_KEY_TTL`] by this event's time, so
/// that what is kept depends on the log alone.
fn record_key_use(tx: &Transaction, event: &Event) -> anyhow::Result<()> {
    let Some(idempotency) = event.idempotency_key() else {
        return Ok(());
    };
    let nanos = |time: OffsetDateTime| i64::try_from(time.unix_timestamp_nanos());
    // Twice the key's life: a key in use is never forgotten early by an event whose
    // instance's clock runs ahead.
    tx.prepare_cached("DELETE FROM idempotency WHERE time_ns <= ?1")?
        .execute([nanos(event.time - IDEMPOTENCY_KEY_TTL * 2)?])?;
    let actor = event.actor.user_id;
    let correlation_id = event.correlation_id;
    tx.prepare_cached(
        "INSERT INTO idempotency
             (actor_id, key, fingerprint, correlation_id, aggregate_id, time_ns, events,
              expected)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, '[]', ?7)
         ON CONFLICT (actor_id, key) DO UPDATE SET
             fingerprint = excluded.fingerprint, correlation_id = excluded.correlation_id,
             aggregate_id = excluded.aggregate_id, time_ns = excluded.time_ns,
             events = '[]', expected = excluded.expected
         WHERE idempotency.time_ns <= ?6 - ?8",
    )?
    .execute(params![
        actor,
        idempotency.key,
        idempotency.fingerprint,
        correlation_id,
        event.aggregate_id,
        nanos(event.time)?,
        idempotency.events,
        nanos(OffsetDateTime::UNIX_EPOCH + IDEMPOTENCY_KEY_TTL)?,
    ])?;
    tx.prepare_cached(
        "UPDATE idempotency SET events = json_insert(events, '$[#]', ?3)
         WHERE actor_id = ?1 AND key = ?2 AND correlation_id = ?4",
    )?
    .execute(params![
        actor,
        idempotency.key,
        event.id.to_string(),
        correlation_id
    ])?;
    Ok(())
}

/// A change to a group counts in its version (its history is its applied events in the
/// feed); a group is created at version [`FIRST_VERSION`].
fn record_change(tx: &Transaction, event: &Event) -> anyhow::Result<()> {
    let Some(group) = event.data.changed_group() else {
        return Ok(());
    };
    let bump = if matches!(event.data, EventData::GroupCreated(_)) {
        "UPDATE groups SET last_change = ?2 WHERE id = ?1"
    } else {
        "UPDATE groups SET version = version + 1, last_change = ?2 WHERE id = ?1"
    };
    tx.prepare_cached(bump)?
        .execute(params![group, event.correlation_id])?;
    Ok(())
}

/// A group's version when it is created.
const FIRST_VERSION: u64 = 1;

/// Writes the versions that `mirror` holds of the groups a mirrored batch changed: a
/// group's row is written once per batch instead of once per change (a rebuild changes
/// each of its groups many times a batch).
fn write_versions(tx: &Transaction, mirror: &Mirror, groups: &HashSet<Uuid>) -> anyhow::Result<()> {
    let mut write =
        tx.prepare_cached("UPDATE groups SET version = ?2, last_change = ?3 WHERE id = ?1")?;
    for group in groups {
        // A group deleted in the batch has no row left to write.
        if let Some((version, last_change)) = mirror.versions.get(group) {
            write.execute(params![group, version, last_change])?;
        }
    }
    Ok(())
}

/// How long after a revoked token's expiry its revocation is still kept, in event time.
const REVOCATION_MARGIN_S: i64 = 24 * 3600;

/// Makes an applied event's change to the read model: one small writer per event type.
fn write_effect(tx: &Transaction, event: &Event) -> anyhow::Result<()> {
    let time = event
        .time
        .format(&time::format_description::well_known::Rfc3339)?;
    match &event.data {
        EventData::UserCreated(e) => user_created(tx, e, &time),
        EventData::UserUpdated(e) => user_updated(tx, e, &time),
        EventData::UserDeleted(e) => user_deleted(tx, e),
        EventData::GroupUpdated(e) => group_updated(tx, e),
        EventData::GroupDeleted(e) => group_deleted(tx, e),
        EventData::GroupCreated(e) => group_created(tx, e, &time),
        EventData::MemberAdded(m) => member_added(tx, m),
        EventData::MemberRemoved(m) => member_removed(tx, m),
        EventData::ChildGroupAdded(n) => child_group_added(tx, n),
        EventData::ChildGroupRemoved(n) => child_group_removed(tx, n),
        EventData::PasswordSet(e) => password_set(tx, e),
        EventData::UserSuspended(e) => user_suspended(tx, e, &time),
        EventData::UserReinstated(e) => user_reinstated(tx, e, &time),
        EventData::TokenRevoked(e) => token_revoked(tx, e, event),
    }
}

/// Whether the event adds or removes a membership: what a [`Mirror`] writes itself.
fn is_membership(data: &EventData) -> bool {
    matches!(
        data,
        EventData::MemberAdded(_) | EventData::MemberRemoved(_)
    )
}

/// Notes an applied event's change to what a [`Mirror`] holds, as [`write_effect`] and
/// [`record_change`] make it in the read model. Every event type is named, so that a new
/// one cannot be left out unnoticed.
fn mirror_effect(mirror: &mut Mirror, event: &Event) {
    if let Some(group) = event.data.changed_group() {
        let change = event.correlation_id;
        if matches!(event.data, EventData::GroupCreated(_)) {
            mirror.versions.insert(group, (FIRST_VERSION, change));
        } else if let Some(version) = mirror.versions.get_mut(&group) {
            *version = (version.0 + 1, change);
        }
    }
    match &event.data {
        EventData::UserCreated(e) => {
            mirror.add_user(UserRef {
                id: e.user_id,
                username: e.username.clone(),
                email: e.email.clone(),
            });
        }
        EventData::UserUpdated(e) => {
            if mirror.users.contains_key(&e.user_id) {
                mirror.remove_user(e.user_id);
                mirror.add_user(UserRef {
                    id: e.user_id,
                    username: e.username.clone(),
                    email: e.email.clone(),
                });
            }
        }
        EventData::UserDeleted(e) => mirror.remove_user(e.user_id),
        EventData::GroupCreated(e) => {
            let group = GroupRef {
                id: e.group_id,
                name: e.name.clone(),
                group_type: e.group_type,
            };
            mirror.groups.insert(e.group_id, group);
        }
        EventData::GroupUpdated(e) => {
            if let Some(group) = mirror.groups.get_mut(&e.group_id) {
                group.name = e.name.clone();
                group.group_type = e.group_type;
            }
        }
        EventData::GroupDeleted(e) => {
            mirror.groups.remove(&e.group_id);
            mirror.versions.remove(&e.group_id);
        }
        EventData::MemberAdded(m) => mirror.add_member(m.group_id, m.user_id),
        EventData::MemberRemoved(m) => mirror.remove_member(m.group_id, m.user_id),
        EventData::ChildGroupAdded(n) => mirror.add_parent(n.child_group_id),
        EventData::ChildGroupRemoved(n) => mirror.remove_parent(n.child_group_id),
        EventData::PasswordSet(_)
        | EventData::UserSuspended(_)
        | EventData::UserReinstated(_)
        | EventData::TokenRevoked(_) => {}
    }
}

fn user_created(tx: &Transaction, e: &UserCreated, time: &str) -> anyhow::Result<()> {
    tx.prepare_cached(
        "INSERT INTO users (id, username, username_key, email, email_key, client_id,
                                scopes, profile, created, modified)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?9, ?7, ?8, ?8)",
    )?
    .execute(params![
        e.user_id,
        e.username.as_str(),
        e.username.key(),
        e.email.as_str(),
        e.email.key(),
        e.client_id,
        serde_json::to_string(&e.profile)?,
        time,
        read_model::scopes_text(&e.scopes),
    ])?;
    Ok(())
}

fn user_updated(tx: &Transaction, e: &UserUpdated, time: &str) -> anyhow::Result<()> {
    tx.prepare_cached(
        "UPDATE users SET username = ?2, username_key = ?3, email = ?4, email_key = ?5,
                              profile = ?6, modified = ?7
             WHERE id = ?1",
    )?
    .execute(params![
        e.user_id,
        e.username.as_str(),
        e.username.key(),
        e.email.as_str(),
        e.email.key(),
        serde_json::to_string(&e.profile)?,
        time,
    ])?;
    Ok(())
}

fn user_deleted(tx: &Transaction, e: &UserDeleted) -> anyhow::Result<()> {
    // Its memberships were removed by the events before this one. Its password
    // row stays, unused (logins go through `users`): passwords come on a stream of
    // their own, in no order with this one, and removing the row here would leave
    // it or not depending on which stream an instance read first.
    tx.prepare_cached("DELETE FROM users WHERE id = ?1")?
        .execute([e.user_id])?;
    Ok(())
}

fn group_updated(tx: &Transaction, e: &GroupDetails) -> anyhow::Result<()> {
    tx.prepare_cached(
        "UPDATE groups SET name = ?2, name_key = ?3, type = ?4, description = ?5,
                               custom = ?6, external_id = ?7
             WHERE id = ?1",
    )?
    .execute(params![
        e.group_id,
        e.name.as_str(),
        e.name.key(),
        serde_json::to_value(e.group_type)?.as_str(),
        e.description,
        serde_json::to_string(&e.custom)?,
        e.external_id,
    ])?;
    Ok(())
}

fn group_deleted(tx: &Transaction, e: &GroupDeleted) -> anyhow::Result<()> {
    tx.prepare_cached("DELETE FROM groups WHERE id = ?1")?
        .execute([e.group_id])?;
    Ok(())
}

fn group_created(tx: &Transaction, e: &GroupDetails, time: &str) -> anyhow::Result<()> {
    tx.prepare_cached(
        "INSERT INTO groups (id, name, name_key, type, description, custom, created,
                                 version, last_change, external_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, X'', ?9)",
    )?
    .execute(params![
        e.group_id,
        e.name.as_str(),
        e.name.key(),
        serde_json::to_value(e.group_type)?.as_str(),
        e.description,
        serde_json::to_string(&e.custom)?,
        time,
        FIRST_VERSION,
        e.external_id,
    ])?;
    Ok(())
}

fn member_added(tx: &Transaction, m: &Membership) -> anyhow::Result<()> {
    tx.prepare_cached("INSERT INTO members (group_id, user_id) VALUES (?1, ?2)")?
        .execute(params![m.group_id, m.user_id])?;
    Ok(())
}

fn member_removed(tx: &Transaction, m: &Membership) -> anyhow::Result<()> {
    tx.prepare_cached("DELETE FROM members WHERE group_id = ?1 AND user_id = ?2")?
        .execute(params![m.group_id, m.user_id])?;
    Ok(())
}

fn child_group_added(tx: &Transaction, n: &Nesting) -> anyhow::Result<()> {
    tx.prepare_cached("INSERT INTO child_groups (parent_id, child_id) VALUES (?1, ?2)")?
        .execute(params![n.group_id, n.child_group_id])?;
    Ok(())
}

fn child_group_removed(tx: &Transaction, n: &Nesting) -> anyhow::Result<()> {
    tx.prepare_cached("DELETE FROM child_groups WHERE parent_id = ?1 AND child_id = ?2")?
        .execute(params![n.group_id, n.child_group_id])?;
    Ok(())
}

fn password_set(tx: &Transaction, e: &PasswordSet) -> anyhow::Result<()> {
    tx.prepare_cached(
        "INSERT INTO passwords (user_id, hash) VALUES (?1, ?2)
             ON CONFLICT (user_id) DO UPDATE
             SET hash = excluded.hash, version = passwords.version + 1",
    )?
    .execute(params![e.user_id, e.password_hash])?;
    Ok(())
}

fn user_suspended(tx: &Transaction, e: &UserStatus, time: &str) -> anyhow::Result<()> {
    tx.prepare_cached(
        "UPDATE users SET suspended = 1, suspensions = suspensions + 1, modified = ?2
             WHERE id = ?1",
    )?
    .execute(params![e.user_id, time])?;
    Ok(())
}

fn user_reinstated(tx: &Transaction, e: &UserStatus, time: &str) -> anyhow::Result<()> {
    tx.prepare_cached("UPDATE users SET suspended = 0, modified = ?2 WHERE id = ?1")?
        .execute(params![e.user_id, time])?;
    Ok(())
}

fn token_revoked(tx: &Transaction, e: &TokenRevoked, event: &Event) -> anyhow::Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO revoked_tokens (token_id, user_id, expires_s)
             VALUES (?1, ?2, ?3)",
    )?
    .execute(params![e.token_id, e.user_id, e.expires.unix_timestamp()])?;
    // Revocations of tokens that expired well before this event's time are kept no
    // longer: by event time, so that every instance forgets them alike, and with a
    // margin for an instance whose clock is behind the one that wrote the event.
    tx.prepare_cached("DELETE FROM revoked_tokens WHERE expires_s < ?1")?
        .execute([event.time.unix_timestamp() - REVOCATION_MARGIN_S])?;
    Ok(())
}

#[cfg(test)]
mod proptests;

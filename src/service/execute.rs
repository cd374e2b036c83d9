//! A command's path: authorize and decide against one snapshot of the read model, stamp
//! the events, append them, wait until this instance's projector has applied them
//! (read-your-writes), and judge the request by their outcomes.

use rusqlite::Connection;
use time::OffsetDateTime;
use tokio::time::Instant;
use uuid::Uuid;

use super::access::{
    authorize, authorize_self_or_admin, check_own_status, check_provisioner_reach,
};
use super::{IfMatch, Principal, Service, ServiceError, Write};
use crate::auth::Bearer;
use crate::domain::{
    self, Actor, Command, DomainError, Event, EventData, ExpectedVersion, IDEMPOTENCY_KEY_TTL,
    Idempotency, Metadata, Outcome, State,
};
use crate::log::LogError;
use crate::read_model::{self, ClientCredential, SqliteState, Standing};

/// What a decision proposes to append.
struct Proposal {
    actor: Actor,
    events: Vec<EventData>,
    expected: Option<ExpectedVersion>,
}

enum Decision {
    /// A retry under an idempotency key already used: answered as the first request was.
    Replay(FirstUse),
    Append(Proposal),
}

impl Service {
    /// Decides, appends and waits for the outcome. Returns once every event the command
    /// produced shows in this instance's read model (or at once if it produced none:
    /// `None`), with what the request was about: its first event's aggregate (the new
    /// user or group of a create), which a retry under the same idempotency key gets too.
    pub async fn execute(
        &self,
        principal: Principal,
        write: Write,
        command: Command,
    ) -> Result<Option<Uuid>, ServiceError> {
        let proposal = match self.decide(principal, &write, command).await? {
            Decision::Replay(first) => return first.answer().map(Some),
            Decision::Append(proposal) => proposal,
        };
        if proposal.events.is_empty() {
            return Ok(None);
        }
        let actor = proposal.actor.user_id;
        let events = stamp(proposal, &write);
        let aggregate = events[0].aggregate_id;
        let outcomes = self.append_and_wait(events, write.log_id).await?;
        if let Some(first) = self.lost_to_a_retry(actor, write, &outcomes).await? {
            return first.answer().map(Some);
        }
        judge(&outcomes)?;
        Ok(Some(aggregate))
    }

    /// Runs a command for a caller who must be an administrator.
    pub async fn execute_for(
        &self,
        caller: Bearer,
        write: Write,
        command: Command,
    ) -> Result<Option<Uuid>, ServiceError> {
        self.execute(Principal::Caller(caller), write, command)
            .await
    }

    /// The aggregate the first request under the caller's `Idempotency-Key` answered
    /// with, if `write` has a key that a request already used: for calls that must read
    /// before they decide, so that a retry is recognised before anything it changed is
    /// looked up. `None`: no request used the key yet.
    pub async fn replay(
        &self,
        caller: Bearer,
        write: &Write,
    ) -> Result<Option<Uuid>, ServiceError> {
        let Some(key) = write.idempotency.clone() else {
            return Ok(None);
        };
        let client = self.admin.credential.clone();
        let first = self
            .read(move |conn| {
                super::access::authenticate(conn, &caller, &client)?;
                first_use(conn, caller.user, &key, Expiry::Check)
            })
            .await?;
        first.map(FirstUse::answer).transpose()
    }

    /// Authorizes the principal and decides, all in one snapshot.
    async fn decide(
        &self,
        principal: Principal,
        write: &Write,
        command: Command,
    ) -> Result<Decision, ServiceError> {
        let key = write.idempotency.clone();
        let if_match = write.if_match.clone();
        let client = self.admin.credential.clone();
        self.read(move |conn| {
            let standing = actor_of(conn, principal, &client)?;
            let actor = standing.actor.clone();
            if let Some(key) = &key
                && let Some(first) = first_use(conn, actor.user_id, key, Expiry::Check)?
            {
                return Ok(Decision::Replay(first));
            }
            let state = SqliteState::new(conn);
            let expected = match &if_match {
                Some(if_match) => check_if_match(&state, if_match, &command)?,
                None => None,
            };
            check_own_status(&state, &actor, &command)?;
            let events = domain::decide(&state, command)?;
            check_provisioner_reach(conn, &standing, &events)?;
            Ok(Decision::Append(Proposal {
                actor,
                events,
                expected,
            }))
        })
        .await
    }

    /// Appends `events` and waits for each outcome, within one bound for both.
    async fn append_and_wait(
        &self,
        events: Vec<Event>,
        log_id: Uuid,
    ) -> Result<Vec<(Uuid, Outcome)>, ServiceError> {
        let pending: Vec<_> = (events.iter())
            .map(|event| (event.id, self.outcomes.expect(event.id)))
            .collect();
        let first = events[0].id;
        let ids = events.iter().map(|event| event.id);
        let _ = super::APPENDED.try_with(|appended| appended.borrow_mut().extend(ids));
        let deadline = Instant::now() + self.wait_timeout;
        self.append(events, first, log_id, deadline).await?;
        let durable = std::time::Instant::now();
        let mut outcomes = Vec::with_capacity(pending.len());
        for (event_id, pending) in pending {
            let outcome = pending.wait_until(deadline).await.ok_or({
                ServiceError::Unavailable {
                    event_id: Some(event_id),
                }
            })?;
            outcomes.push((event_id, outcome));
        }
        crate::metrics::outcome_wait(durable.elapsed());
        Ok(outcomes)
    }

    async fn append(
        &self,
        events: Vec<Event>,
        first: Uuid,
        log_id: Uuid,
        deadline: Instant,
    ) -> Result<(), ServiceError> {
        // Not acknowledged is not the same as not written: past the queue, the 503 names
        // the event, which may still take effect.
        let may_land = ServiceError::Unavailable {
            event_id: Some(first),
        };
        let (count, started) = (events.len(), std::time::Instant::now());
        let appended = tokio::time::timeout_at(deadline, self.log.append(events)).await;
        let failure = match &appended {
            Ok(Ok(())) => None,
            Ok(Err(LogError::Busy)) => Some("busy"),
            Ok(Err(LogError::Unavailable(_))) => Some("unavailable"),
            Err(_) => Some("timeout"),
        };
        crate::metrics::append(count, started.elapsed(), failure);
        match appended {
            Ok(Ok(())) => Ok(()),
            Ok(Err(LogError::Busy)) => Err(ServiceError::Unavailable { event_id: None }),
            Ok(Err(LogError::Unavailable(error))) => {
                tracing::warn!(logId = %log_id, error = format!("{error:#}"), "append failed");
                Err(may_land)
            }
            Err(_) => Err(may_land),
        }
    }

    /// The first request under this request's idempotency key, when a retry of it got into
    /// the log first (this one's events were rejected as duplicates).
    async fn lost_to_a_retry(
        &self,
        actor: Uuid,
        write: Write,
        outcomes: &[(Uuid, Outcome)],
    ) -> Result<Option<FirstUse>, ServiceError> {
        let duplicate = Outcome::Rejected(DomainError::DuplicateRequest);
        let Some(key) = write.idempotency else {
            return Ok(None);
        };
        if !outcomes.iter().any(|(_, outcome)| *outcome == duplicate) {
            return Ok(None);
        }
        let first = self
            .read(move |conn| first_use(conn, actor, &key, Expiry::Ignore))
            .await?
            .ok_or_else(|| anyhow::anyhow!("a duplicate request without its first use"))?;
        Ok(Some(first))
    }
}

/// Who a command runs as: the caller, authorized, or the service itself.
fn actor_of(
    conn: &Connection,
    principal: Principal,
    client: &ClientCredential,
) -> Result<Standing, ServiceError> {
    match principal {
        Principal::Caller(caller) => authorize(conn, &caller, client),
        Principal::CallerOrUser { caller, user } => {
            authorize_self_or_admin(conn, &caller, client, &user)
        }
        Principal::Service(actor) => Ok(Standing {
            actor,
            scopes: Vec::new(),
        }),
    }
}

/// The decided events in their envelopes: ids, one time, the actor, the request's logId,
/// and the request's idempotency key and expected version.
fn stamp(proposal: Proposal, write: &Write) -> Vec<Event> {
    let time = OffsetDateTime::now_utc();
    let mut events: Vec<Event> = (proposal.events.into_iter())
        .map(|data| {
            let meta = Metadata {
                id: Uuid::now_v7(),
                time,
                actor: proposal.actor.clone(),
                correlation_id: write.log_id,
            };
            Event::new(meta, data)
        })
        .collect();
    if let Some(key) = &write.idempotency {
        domain::key_events(&mut events, &key.key, &key.fingerprint);
    }
    if let Some(expected) = proposal.expected {
        domain::expect_version(&mut events, expected);
    }
    events
}

/// The request that first used an idempotency key, as this instance has applied it.
struct FirstUse {
    aggregate: Uuid,
    outcomes: Vec<(Uuid, Outcome)>,
}

impl FirstUse {
    fn answer(self) -> Result<Uuid, ServiceError> {
        judge(&self.outcomes)?;
        Ok(self.aggregate)
    }
}

/// When a first use counts: always once the log says a request lost to it; otherwise
/// only within [`IDEMPOTENCY_KEY_TTL`] by this instance's clock.
#[derive(Clone, Copy)]
enum Expiry {
    Check,
    Ignore,
}

/// The first use of `key` by `actor`: the same request again, or 422 if the key came with
/// another request. A first request whose events have not all been applied here yet is
/// answered 503, to be asked again.
fn first_use(
    conn: &Connection,
    actor: Uuid,
    key: &Idempotency,
    expiry: Expiry,
) -> Result<Option<FirstUse>, ServiceError> {
    let Some(found) = SqliteState::new(conn).idempotent_request(actor, &key.key)? else {
        return Ok(None);
    };
    let expired = OffsetDateTime::now_utc() >= found.time + IDEMPOTENCY_KEY_TTL;
    if matches!(expiry, Expiry::Check) && expired {
        return Ok(None);
    }
    if found.fingerprint != key.fingerprint {
        return Err(ServiceError::IdempotencyKeyReused);
    }
    let first = read_model::key_use_outcomes(conn, actor, &key.key)?;
    if first.outcomes.len() < first.expected {
        return Err(ServiceError::Unavailable { event_id: None });
    }
    Ok(Some(FirstUse {
        aggregate: first.aggregate,
        outcomes: first.outcomes,
    }))
}

/// The group `command` is on and its version, which its events will expect, if `if_match`
/// accepts it: 412 otherwise, 404 if there is no such group, 400 if the command is on no
/// group. `*` asks only that the group exists, so it sets no expectation.
fn check_if_match(
    state: &SqliteState,
    if_match: &IfMatch,
    command: &Command,
) -> Result<Option<ExpectedVersion>, ServiceError> {
    let group = command.group().ok_or_else(|| {
        ServiceError::InvalidRequest("If-Match is taken only by calls on a group.".into())
    })?;
    let group = state.require_group(group)?;
    let version = state
        .group_version(group.id)?
        .ok_or(DomainError::GroupNotFound)?;
    match if_match {
        IfMatch::Any => Ok(None),
        IfMatch::Tags(tags) if tags.contains(&format!("\"{version}\"")) => {
            Ok(Some(ExpectedVersion {
                group_id: group.id,
                version,
            }))
        }
        IfMatch::Tags(_) => Err(ServiceError::PreconditionFailed {
            event_id: None,
            version: Some(version),
            applied: 0,
        }),
    }
}

/// The answer to a command from its events' outcomes. Each event is applied on its own,
/// so a concurrent change may reject some and not others. In a command of several events,
/// a rejection that leaves things as the command wanted (the membership was already there,
/// or already gone) counts as done; any other makes the answer 409 (412 for a version
/// that no longer holds), which says how many of the events took effect.
fn judge(outcomes: &[(Uuid, Outcome)]) -> Result<(), ServiceError> {
    let events = outcomes.len();
    let mut applied = 0;
    let mut refused = None;
    for (event_id, outcome) in outcomes {
        match outcome {
            Outcome::Applied => applied += 1,
            Outcome::Rejected(reason) if events > 1 && reason.is_already_so() => {}
            Outcome::Rejected(reason) => {
                refused.get_or_insert((*event_id, reason.clone()));
            }
        }
    }
    match refused {
        None => Ok(()),
        Some((event_id, DomainError::VersionMismatch)) => Err(ServiceError::PreconditionFailed {
            event_id: Some(event_id),
            version: None,
            applied,
        }),
        Some((event_id, reason)) => Err(ServiceError::ConcurrentModification {
            event_id,
            reason,
            applied,
            events,
        }),
    }
}

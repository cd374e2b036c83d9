//! The two paths every request takes. Queries: authorize, then read one snapshot of the
//! read model. Commands: authorize and decide against one snapshot, append the events,
//! then wait until this instance's projector has applied them (read-your-writes).

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{Bearer, Hasher, Tokens};
use crate::domain::{
    self, Actor, Command, Event, IDEMPOTENCY_KEY_TTL, Idempotency, Metadata, Outcome, State,
    UserIdentifier,
};
use crate::http::ApiError;
use crate::log::{EventLog, LogError};
use crate::projector::Outcomes;
use crate::read_model::{self, ClientCredential, ReadModel, ReadersBusy, SqliteState};
use crate::throttle::LoginThrottle;

pub struct Service {
    pub log: Arc<dyn EventLog>,
    pub read_model: Arc<ReadModel>,
    pub outcomes: Arc<Outcomes>,
    pub tokens: Tokens,
    pub hasher: Hasher,
    pub logins: LoginThrottle,
    pub admin: AdminClient,
    pub wait_timeout: Duration,
    pub page_size_max: u64,
}

/// The bootstrap API client, whose tokens act as its service account.
pub struct AdminClient {
    /// Its id, and the digest of its secret that its tokens carry.
    pub credential: ClientCredential,
    /// argon2 hash of the secret; the secret itself is not kept.
    pub secret_hash: String,
}

/// Who a command is run for: a caller to authorize, or the service itself at start-up.
pub enum Principal {
    /// A caller who must be in System Administrators.
    Caller(Bearer),
    /// A caller who must be in System Administrators, or be this user.
    CallerOrUser {
        caller: Bearer,
        user: UserIdentifier,
    },
    Service(Actor),
}

impl Service {
    /// Runs `query` for an administrator, in one snapshot of the read model.
    pub async fn query<T, F>(&self, caller: Bearer, query: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let client = self.admin.credential.clone();
        self.read(move |conn| {
            authorize(conn, &caller, &client)?;
            query(conn)
        })
        .await
    }

    /// Runs `query` for the caller, if it is `user` or an administrator (see
    /// [`authorize_self_or_admin`]), in one snapshot of the read model.
    pub async fn query_self_or_admin<T, F>(
        &self,
        caller: Bearer,
        user: UserIdentifier,
        query: F,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &UserIdentifier) -> Result<T, ApiError> + Send + 'static,
    {
        let client = self.admin.credential.clone();
        self.read(move |conn| {
            authorize_self_or_admin(conn, &caller, &client, &user)?;
            query(conn, &user)
        })
        .await
    }

    /// Reads without authorization; for the token endpoint and start-up.
    pub async fn read<T, F>(&self, query: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    {
        match self.read_model.read(move |conn| Ok(query(conn))).await {
            Ok(answer) => answer,
            Err(error) if error.is::<ReadersBusy>() => {
                Err(ApiError::Unavailable { event_id: None })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Decides, appends and waits for the outcome. Returns once every event the command
    /// produced shows in this instance's read model (or at once if it produced none),
    /// with what the request was about: its first event's aggregate (the new user or
    /// group of a create), which a retry under the same idempotency key gets too.
    pub async fn execute(
        &self,
        principal: Principal,
        write: Write,
        command: Command,
    ) -> Result<Option<Uuid>, ApiError> {
        let Write {
            log_id,
            if_match,
            idempotency,
        } = write;
        let key = idempotency.clone();
        let client = self.admin.credential.clone();
        let decision = self
            .read(move |conn| {
                let actor = match principal {
                    Principal::Caller(caller) => authorize(conn, &caller, &client)?,
                    Principal::CallerOrUser { caller, user } => {
                        authorize_self_or_admin(conn, &caller, &client, &user)?
                    }
                    Principal::Service(actor) => actor,
                };
                let state = SqliteState(conn);
                if let Some(key) = &key
                    && let Some(first) = first_use(conn, actor.user_id, key, Expiry::Check)?
                {
                    return Ok(Decision::Replay(first));
                }
                let expected = match &if_match {
                    Some(if_match) => check_if_match(&state, if_match, &command)?,
                    None => None,
                };
                check_own_status(&state, &actor, &command)?;
                let decided = domain::decide(&state, command)?;
                Ok(Decision::Append(actor, decided, expected))
            })
            .await?;
        let (actor, decided, expected) = match decision {
            Decision::Replay(first) => return first.answer(),
            Decision::Append(actor, decided, expected) => (actor, decided, expected),
        };
        if decided.is_empty() {
            return Ok(None);
        }
        let time = OffsetDateTime::now_utc();
        let mut events: Vec<Event> = decided
            .into_iter()
            .map(|data| {
                let meta = Metadata {
                    id: Uuid::now_v7(),
                    time,
                    actor: actor.clone(),
                    correlation_id: log_id,
                };
                Event::new(meta, data)
            })
            .collect();
        if let Some(key) = &idempotency {
            domain::key_events(&mut events, &key.key, &key.fingerprint);
        }
        if let Some((group, version)) = expected {
            domain::expect_version(&mut events, group, version);
        }
        let pending: Vec<_> = events
            .iter()
            .map(|event| (event.id, self.outcomes.expect(event.id)))
            .collect();
        let (first, aggregate) = (events[0].id, events[0].aggregate_id);
        // One bound for the whole write: appending and applying share it.
        let deadline = tokio::time::Instant::now() + self.wait_timeout;
        match tokio::time::timeout_at(deadline, self.log.append(events)).await {
            Ok(Ok(())) => {}
            Ok(Err(LogError::Busy)) => return Err(ApiError::Unavailable { event_id: None }),
            // Not acknowledged is not the same as not written: the 503 names the event,
            // which may still take effect.
            Ok(Err(LogError::Unavailable(error))) => {
                tracing::warn!(log_id = %log_id, error = format!("{error:#}"), "append failed");
                return Err(ApiError::Unavailable {
                    event_id: Some(first),
                });
            }
            Err(_) => {
                return Err(ApiError::Unavailable {
                    event_id: Some(first),
                });
            }
        }
        let mut outcomes = Vec::with_capacity(pending.len());
        for (event_id, pending) in pending {
            match pending.wait_until(deadline).await {
                Some(outcome) => outcomes.push((event_id, outcome)),
                None => {
                    return Err(ApiError::Unavailable {
                        event_id: Some(event_id),
                    });
                }
            }
        }
        let duplicate = Outcome::Rejected(domain::DomainError::DuplicateRequest);
        if let Some(key) = idempotency.filter(|_| outcomes.iter().any(|(_, o)| *o == duplicate)) {
            // A retry of this request got there first: answer as it was answered.
            let actor = actor.user_id;
            let first = self
                .read(move |conn| first_use(conn, actor, &key, Expiry::Ignore))
                .await?
                .ok_or_else(|| anyhow::anyhow!("a duplicate request without its first use"))?;
            return first.answer();
        }
        judge(&outcomes)?;
        Ok(Some(aggregate))
    }
}

enum Decision {
    Replay(FirstUse),
    Append(Actor, Vec<domain::EventData>, Option<(Uuid, u64)>),
}

/// The request that first used an idempotency key, as this instance has applied it.
struct FirstUse {
    aggregate: Uuid,
    outcomes: Vec<(Uuid, Outcome)>,
}

impl FirstUse {
    fn answer(self) -> Result<Option<Uuid>, ApiError> {
        judge(&self.outcomes)?;
        Ok(Some(self.aggregate))
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
) -> Result<Option<FirstUse>, ApiError> {
    let Some(found) = SqliteState(conn).idempotent_request(actor, &key.key)? else {
        return Ok(None);
    };
    let expired = OffsetDateTime::now_utc() >= found.time + IDEMPOTENCY_KEY_TTL;
    if matches!(expiry, Expiry::Check) && expired {
        return Ok(None);
    }
    if found.fingerprint != key.fingerprint {
        return Err(ApiError::IdempotencyKeyReused);
    }
    let first = read_model::key_use_outcomes(conn, actor, &key.key)?;
    if first.outcomes.len() < first.expected {
        return Err(ApiError::Unavailable { event_id: None });
    }
    Ok(Some(FirstUse {
        aggregate: first.aggregate,
        outcomes: first.outcomes,
    }))
}

impl Service {
    /// The answer the first request under the caller's `Idempotency-Key` got, if `write`
    /// has a key that a request already used: for calls that must read before they
    /// decide, so that a retry is recognised before anything it changed is looked up.
    pub async fn replay(
        &self,
        caller: Bearer,
        write: &Write,
    ) -> Result<Option<Option<Uuid>>, ApiError> {
        let Some(key) = write.idempotency.clone() else {
            return Ok(None);
        };
        let client = self.admin.credential.clone();
        let first = self
            .read(move |conn| {
                authenticate(conn, &caller, &client)?;
                first_use(conn, caller.user, &key, Expiry::Check)
            })
            .await?;
        first.map(FirstUse::answer).transpose()
    }
}

/// What a write request brings besides its command: its logId, and its preconditions.
#[derive(Debug, Clone)]
pub struct Write {
    pub log_id: Uuid,
    /// `If-Match`: the group the command is on must be at one of these versions.
    pub if_match: Option<IfMatch>,
    /// `Idempotency-Key`: a retry of the same request gets the first answer.
    pub idempotency: Option<Idempotency>,
}

impl Write {
    pub fn new(log_id: Uuid) -> Self {
        Self {
            log_id,
            if_match: None,
            idempotency: None,
        }
    }
}

/// The versions an `If-Match` header accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any version, as long as the group exists.
    Any,
    /// Strong entity tags, quotes included, compared byte for byte with `"<version>"`.
    Tags(Vec<String>),
}

/// The group `command` is on and its version, which its events will expect, if `if_match`
/// accepts it: 412 otherwise, 404 if there is no such group, 400 if the command is on no
/// group. `*` asks only that the group exists, so it sets no expectation.
fn check_if_match(
    state: &SqliteState,
    if_match: &IfMatch,
    command: &Command,
) -> Result<Option<(Uuid, u64)>, ApiError> {
    let group = command.group().ok_or_else(|| {
        ApiError::BadRequest("If-Match is taken only by calls on a group.".into())
    })?;
    let group = state.require_group(group)?;
    let version = state
        .group_version(group.id)?
        .ok_or(domain::DomainError::GroupNotFound)?;
    match if_match {
        IfMatch::Any => Ok(None),
        IfMatch::Tags(tags) if tags.contains(&format!("\"{version}\"")) => {
            Ok(Some((group.id, version)))
        }
        IfMatch::Tags(_) => Err(ApiError::PreconditionFailed {
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
fn judge(outcomes: &[(Uuid, Outcome)]) -> Result<(), ApiError> {
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
        Some((event_id, domain::DomainError::VersionMismatch)) => {
            Err(ApiError::PreconditionFailed {
                event_id: Some(event_id),
                version: None,
                applied,
            })
        }
        Some((event_id, reason)) => Err(ApiError::ConcurrentModification {
            event_id,
            reason,
            applied,
            events,
        }),
    }
}

/// Nobody suspends or reinstates itself: an administrator who could would lock itself
/// out by mistake, and a suspended user cannot call anything. Checked before anything
/// else is decided, so that the answer is this one whatever else the update would meet.
fn check_own_status(state: &SqliteState, actor: &Actor, command: &Command) -> Result<(), ApiError> {
    let Command::UpdateUser {
        user,
        suspended: Some(suspended),
        ..
    } = command
    else {
        return Ok(());
    };
    let Some(found) = state.user(user)?.filter(|found| found.id == actor.user_id) else {
        return Ok(());
    };
    let changes = state
        .user_details(found.id)?
        .is_some_and(|current| current.suspended != *suspended);
    if changes {
        return Err(domain::DomainError::OwnStatus.into());
    }
    Ok(())
}

/// The caller as an actor, if its token still stands (401 otherwise), and it is `user` or
/// in System Administrators. A caller who is neither learns nothing about `user`.
pub fn authorize_self_or_admin(
    conn: &Connection,
    caller: &Bearer,
    client: &ClientCredential,
    user: &UserIdentifier,
) -> Result<Actor, ApiError> {
    let actor = authenticate(conn, caller, client)?;
    if read_model::is_administrator(conn, caller.user)? {
        return Ok(actor);
    }
    match SqliteState(conn).user(user)? {
        Some(found) if found.id == caller.user => Ok(actor),
        _ => Err(ApiError::Forbidden),
    }
}

/// The caller as an actor, if its token still stands (401 otherwise) and it is in System
/// Administrators (directly or through child groups). Both are looked up on every
/// request, so a removal, a suspension or a revocation takes effect at once.
fn authorize(
    conn: &Connection,
    caller: &Bearer,
    client: &ClientCredential,
) -> Result<Actor, ApiError> {
    let actor = authenticate(conn, caller, client)?;
    if !read_model::is_administrator(conn, caller.user)? {
        return Err(ApiError::Forbidden);
    }
    Ok(actor)
}

/// The caller as an actor, if its token still stands: see [`read_model::token_stands`].
fn authenticate(
    conn: &Connection,
    caller: &Bearer,
    client: &ClientCredential,
) -> Result<Actor, ApiError> {
    if !read_model::token_stands(conn, caller, client)? {
        return Err(ApiError::Unauthorized);
    }
    read_model::actor(conn, caller.user)?.ok_or(ApiError::Unauthorized)
}

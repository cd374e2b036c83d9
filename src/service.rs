//! The two paths every request takes. Queries: authorize, then read one snapshot of the
//! read model. Commands: authorize and decide against one snapshot, append the events,
//! then wait until this instance's projector has applied them (read-your-writes).

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{Hasher, Tokens};
use crate::domain::{self, Actor, Command, Event, Metadata, Outcome, State, UserIdentifier};
use crate::http::ApiError;
use crate::log::{EventLog, LogError};
use crate::projector::Outcomes;
use crate::read_model::{self, ReadModel, ReadersBusy, SqliteState};

pub struct Service {
    pub log: Arc<dyn EventLog>,
    pub read_model: Arc<ReadModel>,
    pub outcomes: Arc<Outcomes>,
    pub tokens: Tokens,
    pub hasher: Hasher,
    pub admin: AdminClient,
    pub wait_timeout: Duration,
    pub page_size_max: u64,
}

/// The bootstrap API client, whose tokens act as its service account.
pub struct AdminClient {
    pub client_id: String,
    /// argon2 hash of the configured secret; the secret itself is not kept.
    pub secret_hash: String,
}

/// Who a command is run for: a caller to authorize, or the service itself at start-up.
pub enum Principal {
    /// A caller who must be in System Administrators.
    Caller(Uuid),
    /// A caller who must be in System Administrators, or be this user.
    CallerOrUser {
        caller: Uuid,
        user: UserIdentifier,
    },
    Service(Actor),
}

impl Service {
    /// Runs `query` for an administrator, in one snapshot of the read model.
    pub async fn query<T, F>(&self, caller: Uuid, query: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    {
        self.read(move |conn| {
            authorize(conn, caller)?;
            query(conn)
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
    /// produced shows in this instance's read model (or at once if it produced none).
    pub async fn execute(
        &self,
        principal: Principal,
        log_id: Uuid,
        command: Command,
    ) -> Result<(), ApiError> {
        let (actor, decided) = self
            .read(move |conn| {
                let actor = match principal {
                    Principal::Caller(caller) => authorize(conn, caller)?,
                    Principal::CallerOrUser { caller, user } => {
                        authorize_self_or_admin(conn, caller, &user)?
                    }
                    Principal::Service(actor) => actor,
                };
                let decided = domain::decide(&SqliteState(conn), command)?;
                Ok((actor, decided))
            })
            .await?;
        if decided.is_empty() {
            return Ok(());
        }
        let time = OffsetDateTime::now_utc();
        let events: Vec<Event> = decided
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
        let pending: Vec<_> = events
            .iter()
            .map(|event| (event.id, self.outcomes.expect(event.id)))
            .collect();
        let first = events[0].id;
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
        judge(pending, deadline).await
    }
}

/// The answer to a command from its events' outcomes, once all are known. Each event is
/// applied on its own, so a concurrent change may reject some and not others. In a
/// command of several events, a rejection that leaves things as the command wanted (the
/// membership was already there, or already gone) counts as done; any other makes the
/// answer 409, which says how many of the events took effect.
async fn judge(
    pending: Vec<(Uuid, crate::projector::Pending)>,
    deadline: tokio::time::Instant,
) -> Result<(), ApiError> {
    let events = pending.len();
    let mut applied = 0;
    let mut refused = None;
    for (event_id, pending) in pending {
        match pending.wait_until(deadline).await {
            Some(Outcome::Applied) => applied += 1,
            Some(Outcome::Rejected(reason)) if events > 1 && reason.is_already_so() => {}
            Some(Outcome::Rejected(reason)) => {
                refused.get_or_insert((event_id, reason));
            }
            None => {
                return Err(ApiError::Unavailable {
                    event_id: Some(event_id),
                });
            }
        }
    }
    match refused {
        None => Ok(()),
        Some((event_id, reason)) => Err(ApiError::ConcurrentModification {
            event_id,
            reason,
            applied,
            events,
        }),
    }
}

/// The caller as an actor, if it is `user` or in System Administrators. A caller who is
/// neither learns nothing about `user`.
pub fn authorize_self_or_admin(
    conn: &Connection,
    caller: Uuid,
    user: &UserIdentifier,
) -> Result<Actor, ApiError> {
    if read_model::is_administrator(conn, caller)? {
        return read_model::actor(conn, caller)?.ok_or(ApiError::Forbidden);
    }
    match SqliteState(conn).user(user)? {
        Some(found) if found.id == caller => {
            read_model::actor(conn, caller)?.ok_or(ApiError::Forbidden)
        }
        _ => Err(ApiError::Forbidden),
    }
}

/// The caller as an actor, if it is in System Administrators (directly or through child
/// groups). Looked up on every request, so a removal takes effect at once.
fn authorize(conn: &Connection, caller: Uuid) -> Result<Actor, ApiError> {
    if !read_model::is_administrator(conn, caller)? {
        return Err(ApiError::Forbidden);
    }
    read_model::actor(conn, caller)?.ok_or(ApiError::Forbidden)
}

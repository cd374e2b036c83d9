//! The service: every way in (the Contensis API today) calls it, and it knows none of
//! them. Two paths: queries authorize and read one snapshot of the read model; commands
//! authorize and decide against one snapshot, append the events, then wait until this
//! instance's projector has applied them (read-your-writes). Errors are `ServiceError`s,
//! which each protocol renders in its own form.
//!
//! Architecture Invariant: nothing here knows HTTP.

mod access;
mod clients;
mod error;
mod execute;
mod feed;
mod logins;
mod queries;

use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::watch;
use uuid::Uuid;

use crate::auth::{Bearer, Hasher, Tokens};
use crate::domain::{Actor, Idempotency, UserIdentifier};
use crate::log::EventLog;
use crate::projector::Outcomes;
use crate::read_model::{ClientCredential, ReadModel, ReadersBusy};
use crate::throttle::LoginThrottle;

pub use crate::read_model::ListRequest;
pub use clients::{ClientId, NewClient};
pub use error::ServiceError;
pub use feed::FeedRequest;
pub use logins::{Grant, LoginError, RevocationError, Token, client_username};
pub use queries::{GroupScope, List, UserScope};

tokio::task_local! {
    /// The ids of the events a request appended, for its log line: a protocol that wants
    /// them runs the request in [`APPENDED`]`.scope(..)`; elsewhere nothing is noted.
    pub static APPENDED: std::cell::RefCell<Vec<Uuid>>;
}

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
    /// How long a `scim` client's tokens live.
    pub provisioning_ttl_s: u64,
    /// Set when the server is stopping: long polls and streams give their connections back.
    pub stopping: watch::Sender<bool>,
    /// Set once the read model has caught up with the log and the bootstrap is done:
    /// before, only the health endpoints answer.
    pub serving: std::sync::atomic::AtomicBool,
}

/// What readiness looks at.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// The read model has caught up with the log since start, and the bootstrap is done.
    pub caught_up: bool,
    /// The log takes appends (on Kafka: the brokers answer), checked within a second.
    pub log: bool,
    /// The service is not stopping.
    pub running: bool,
}

impl Readiness {
    pub fn ready(self) -> bool {
        self.caught_up && self.log && self.running
    }
}

impl Service {
    /// Whether the service is ready for traffic, and why not.
    pub async fn readiness(&self) -> Readiness {
        const LOG_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
        let log = tokio::time::timeout(LOG_CHECK_TIMEOUT, self.log.check()).await;
        Readiness {
            caught_up: self.is_serving(),
            log: matches!(log, Ok(Ok(()))),
            running: !*self.stopping.borrow(),
        }
    }

    pub fn is_serving(&self) -> bool {
        self.serving.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The levels of the queues and pools, and the projector's lag, for metrics.
    pub fn levels(&self) -> crate::metrics::Levels {
        let (lag_events, lag) = self.outcomes.lag();
        crate::metrics::Levels {
            log_queue: self.log.queue_depth(),
            lag_events,
            lag,
            readers_busy: self.read_model.busy(),
            hashers_busy: self.hasher.busy(),
            hash_queue: self.hasher.queued(),
        }
    }
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

impl Service {
    /// Runs `query` for an administrator, in one snapshot of the read model.
    pub(crate) async fn query<T, F>(&self, caller: Bearer, query: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ServiceError> + Send + 'static,
    {
        let client = self.admin.credential.clone();
        self.read(move |conn| {
            access::authorize(conn, &caller, &client)?;
            query(conn)
        })
        .await
    }

    /// Runs `query` for the caller, if it is `user` or an administrator, in one snapshot
    /// of the read model.
    pub(crate) async fn query_self_or_admin<T, F>(
        &self,
        caller: Bearer,
        user: UserIdentifier,
        query: F,
    ) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &UserIdentifier) -> Result<T, ServiceError> + Send + 'static,
    {
        let client = self.admin.credential.clone();
        self.read(move |conn| {
            access::authorize_self_or_admin(conn, &caller, &client, &user)?;
            query(conn, &user)
        })
        .await
    }

    /// The events at these positions of the log's events stream, which the read model
    /// points to (the feed, histories), read off the async executor.
    pub(crate) async fn events_at(
        &self,
        positions: Vec<i64>,
    ) -> Result<Vec<Vec<u8>>, ServiceError> {
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let log = self.log.clone();
        let read = tokio::task::spawn_blocking(move || log.events_at(&positions)).await;
        match read {
            Ok(Ok(events)) => Ok(events),
            Ok(Err(error)) => {
                tracing::warn!(
                    error = format!("{:#}", anyhow::Error::from(error)),
                    "reading events from the log failed"
                );
                Err(ServiceError::Unavailable { event_id: None })
            }
            Err(panicked) => Err(anyhow::Error::from(panicked)
                .context("reading events from the log")
                .into()),
        }
    }

    /// Reads one snapshot without authorization; for logins and start-up.
    pub(crate) async fn read<T, F>(&self, query: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ServiceError> + Send + 'static,
    {
        match self.read_model.read(move |conn| Ok(query(conn))).await {
            Ok(answer) => answer,
            Err(error) if error.is::<ReadersBusy>() => {
                Err(ServiceError::Unavailable { event_id: None })
            }
            Err(error) => Err(error.into()),
        }
    }
}

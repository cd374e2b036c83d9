//! What the service answers when it does not do what it was asked: the domain's refusals,
//! and what only the service knows (who may call, preconditions, retries, availability).
//! Each protocol renders these in its own form; nothing here knows one.

use uuid::Uuid;

use crate::domain::{DomainError, Refusal};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The caller's token no longer stands: revoked, its user suspended or gone, or its
    /// credential changed.
    #[error("the token does not stand")]
    Unauthorized,
    #[error("only members of System Administrators may do this")]
    Forbidden,
    #[error(transparent)]
    Refused(#[from] DomainError),
    /// A request the service cannot take as asked, in words for the caller.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the existing password is missing or wrong")]
    ExistingPasswordInvalid,
    #[error("too many failed attempts")]
    TooManyRequests { retry_after_s: u64 },
    #[error("the idempotency key came with another request")]
    IdempotencyKeyReused,
    #[error("the group is not at the version the request names")]
    PreconditionFailed {
        /// Set when the request's event was appended and then rejected.
        event_id: Option<Uuid>,
        /// The group's version when the request was checked, when known.
        version: Option<u64>,
        /// How many of the request's changes took effect before another change to the
        /// group got in between them.
        applied: usize,
    },
    #[error("another change got there first")]
    ConcurrentModification {
        /// The first event that was rejected.
        event_id: Uuid,
        reason: DomainError,
        /// How many of the request's events took effect, of how many.
        applied: usize,
        events: usize,
    },
    /// The log or the read model could not take or confirm the request in time.
    #[error("the change cannot be confirmed now")]
    Unavailable {
        /// Set when the request's event may still take effect.
        event_id: Option<Uuid>,
    },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<Refusal> for ServiceError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Domain(error) => Self::Refused(error),
            Refusal::Store(error) => Self::Unexpected(error),
        }
    }
}

//! The domain core: validated values, events, and the pure decisions over them.
//!
//! Architecture Invariant: nothing here knows actix, rusqlite, rdkafka, tokio or the
//! clock. Ids and time arrive as inputs, so every instance decides alike.

mod decide;
mod error;
mod event;
mod ids;
#[cfg(test)]
pub(crate) mod memory;
mod state;

pub use decide::{
    Command, IDEMPOTENCY_KEY_TTL, MemberChange, NewGroup, NewUser, Outcome, Refusal, Set, apply,
    apply_event, decide, expect_version, key_events,
};
pub use error::{DomainError, LINKS_PER_DELETION_MAX};
pub use event::{
    Actor, Custom, Event, EventData, ExpectedVersion, GroupDeleted, GroupDetails, GroupType,
    Idempotency, Membership, Metadata, Nesting, PasswordSet, Profile, Provisioned, Scope,
    TokenRevoked, UserCreated, UserDeleted, UserStatus, UserUpdated,
};
pub use ids::{
    Email, GroupIdentifier, GroupName, IDENTIFIER_MAX_CHARS, InvalidName, InvalidPassword,
    NAME_MAX_CHARS, Password, UserIdentifier, Username, check_free_text,
};
pub use state::{GroupRef, KeyUse, Reach, Removal, State, UserDetails, UserRef};

#[cfg(test)]
mod tests;

//! The events: the only thing the log holds. Each type has a JSON Schema in `schemas/`,
//! and its wire form (camelCase, `type` + `data`) is a contract with every consumer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::ids::{Email, GroupName, Username};

/// Free-form string properties a client may attach to a user or a group.
pub type Custom = BTreeMap<String, String>;

/// Who asked for a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    pub user_id: Uuid,
    pub username: Username,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupType {
    /// Made by the service itself (System Administrators); never by a client.
    Sys,
    Contensis,
    External,
}

/// One entry of the log: an envelope shared by every type, and the type's own data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// UUID v7, so ids sort by creation time.
    pub id: Uuid,
    #[serde(flatten)]
    pub data: EventData,
    pub schema_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub actor: Actor,
    /// The logId of the request that caused the event.
    pub correlation_id: Uuid,
    /// The user or group the event is about; the Kafka record key.
    pub aggregate_id: Uuid,
    /// Set on every event of a conditional request (`If-Match`): see [`ExpectedVersion`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<ExpectedVersion>,
    /// Set on the events of a request sent with an `Idempotency-Key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency: Option<Idempotency>,
}

/// The group a conditional request was made against, and its version then. The event
/// takes effect only if the group is still at that version, or if the last change to it
/// was made by this same request (an earlier event of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedVersion {
    pub group_id: Uuid,
    pub version: u64,
}

/// A client's key for one request, and a digest of that request, so that a retry is told
/// apart from another request reusing the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Idempotency {
    pub key: String,
    /// A digest of the request's method, path and body.
    pub fingerprint: String,
    /// How many events of the request carry the key.
    pub events: usize,
}

/// Everything an event needs besides its data. Ids and time are inputs, never made here.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub id: Uuid,
    pub time: OffsetDateTime,
    pub actor: Actor,
    pub correlation_id: Uuid,
}

impl Event {
    pub const SCHEMA_VERSION: u32 = 1;

    /// The event's idempotency key, if it counts: never on the credentials stream, which is
    /// in no order with the events, so a key there could be first on one instance and a
    /// duplicate on another.
    pub fn idempotency_key(&self) -> Option<&Idempotency> {
        self.idempotency.as_ref().filter(|_| !self.data.is_secret())
    }

    pub fn new(meta: Metadata, data: EventData) -> Self {
        Self {
            id: meta.id,
            aggregate_id: data.aggregate_id(),
            data,
            schema_version: Self::SCHEMA_VERSION,
            time: meta.time,
            actor: meta.actor,
            correlation_id: meta.correlation_id,
            expected_version: None,
            idempotency: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum EventData {
    UserCreated(UserCreated),
    UserUpdated(UserUpdated),
    /// Ends a user with no memberships left: its removals come first, as `MemberRemoved`.
    UserDeleted(UserDeleted),
    GroupCreated(GroupDetails),
    GroupUpdated(GroupDetails),
    /// Ends a group with no members, child groups or parents left: those come first.
    GroupDeleted(GroupDeleted),
    MemberAdded(Membership),
    MemberRemoved(Membership),
    ChildGroupAdded(Nesting),
    ChildGroupRemoved(Nesting),
    /// The user may no longer log in, and its tokens stop; it keeps its memberships.
    UserSuspended(UserStatus),
    UserReinstated(UserStatus),
    /// Lives on the credentials stream only; see [`EventData::is_secret`].
    PasswordSet(PasswordSet),
    /// One bearer token stops before it expires. On the credentials stream.
    TokenRevoked(TokenRevoked),
}

impl EventData {
    /// The types of the events stream, which consumers are given: every type but those
    /// of the credentials stream (see [`EventData::is_secret`]).
    pub const PUBLIC_TYPES: [&'static str; 12] = [
        "UserCreated",
        "UserUpdated",
        "UserDeleted",
        "GroupCreated",
        "GroupUpdated",
        "GroupDeleted",
        "MemberAdded",
        "MemberRemoved",
        "ChildGroupAdded",
        "ChildGroupRemoved",
        "UserSuspended",
        "UserReinstated",
    ];

    pub fn type_name(&self) -> &'static str {
        match self {
            Self::UserCreated(_) => "UserCreated",
            Self::UserUpdated(_) => "UserUpdated",
            Self::UserDeleted(_) => "UserDeleted",
            Self::GroupCreated(_) => "GroupCreated",
            Self::GroupUpdated(_) => "GroupUpdated",
            Self::GroupDeleted(_) => "GroupDeleted",
            Self::MemberAdded(_) => "MemberAdded",
            Self::MemberRemoved(_) => "MemberRemoved",
            Self::ChildGroupAdded(_) => "ChildGroupAdded",
            Self::ChildGroupRemoved(_) => "ChildGroupRemoved",
            Self::UserSuspended(_) => "UserSuspended",
            Self::UserReinstated(_) => "UserReinstated",
            Self::PasswordSet(_) => "PasswordSet",
            Self::TokenRevoked(_) => "TokenRevoked",
        }
    }

    pub fn aggregate_id(&self) -> Uuid {
        match self {
            Self::UserCreated(e) => e.user_id,
            Self::UserUpdated(e) => e.user_id,
            Self::UserDeleted(e) => e.user_id,
            Self::GroupCreated(e) | Self::GroupUpdated(e) => e.group_id,
            Self::GroupDeleted(e) => e.group_id,
            Self::MemberAdded(e) | Self::MemberRemoved(e) => e.group_id,
            Self::ChildGroupAdded(e) | Self::ChildGroupRemoved(e) => e.group_id,
            Self::UserSuspended(e) | Self::UserReinstated(e) => e.user_id,
            Self::PasswordSet(e) => e.user_id,
            Self::TokenRevoked(e) => e.user_id,
        }
    }

    /// Credential events (secrets, and what stops a token) travel on a stream of their
    /// own that event consumers are not given.
    pub fn is_secret(&self) -> bool {
        matches!(self, Self::PasswordSet(_) | Self::TokenRevoked(_))
    }

    /// The group the event is about, deletions included: what a feed filters on.
    pub fn group(&self) -> Option<Uuid> {
        match self {
            Self::GroupDeleted(e) => Some(e.group_id),
            other => other.changed_group(),
        }
    }

    /// The user the event is about, as a member or as itself: what a feed filters on.
    pub fn user(&self) -> Option<Uuid> {
        match self {
            Self::UserCreated(e) => Some(e.user_id),
            Self::UserUpdated(e) => Some(e.user_id),
            Self::UserDeleted(e) => Some(e.user_id),
            Self::UserSuspended(e) | Self::UserReinstated(e) => Some(e.user_id),
            Self::MemberAdded(e) | Self::MemberRemoved(e) => Some(e.user_id),
            _ => None,
        }
    }

    /// The group whose own history and version this event changes, if any: the group an
    /// event is about, for every group event but its deletion.
    pub fn changed_group(&self) -> Option<Uuid> {
        match self {
            Self::GroupCreated(_)
            | Self::GroupUpdated(_)
            | Self::MemberAdded(_)
            | Self::MemberRemoved(_)
            | Self::ChildGroupAdded(_)
            | Self::ChildGroupRemoved(_) => Some(self.aggregate_id()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserCreated {
    pub user_id: Uuid,
    pub username: Username,
    pub email: Email,
    #[serde(flatten)]
    pub profile: Profile,
    /// Set for a service account: the API client whose tokens act as this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// What that client's tokens may do besides what the account's groups allow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<Scope>,
}

/// What an API client's tokens may do besides what its account's groups allow: a client
/// with scopes is limited to them (see `service::access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// Administer users and groups through SCIM, as an identity provider does.
    #[serde(rename = "scim")]
    Scim,
    /// Read the event feed.
    #[serde(rename = "events:read")]
    EventsRead,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Scim, Scope::EventsRead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scim => "scim",
            Self::EventsRead => "events:read",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == text)
    }
}

/// A user's new details, replacing the old ones whole (a service account keeps its client).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserUpdated {
    pub user_id: Uuid,
    pub username: Username,
    pub email: Email,
    #[serde(flatten)]
    pub profile: Profile,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDeleted {
    pub user_id: Uuid,
    pub username: Username,
    pub email: Email,
}

/// The descriptive part of a user, carried as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firstname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lastname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default)]
    pub custom: Custom,
    #[serde(flatten)]
    pub provisioned: Provisioned,
}

/// What an identity provider that provisions a user (over SCIM) keeps on it beside the
/// profile the Contensis API knows, kept as sent; an update through that API leaves it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provisioned {
    /// The user's id in the identity provider (SCIM `externalId`), compared case-exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The name the provider shows for the user (SCIM `displayName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The kind of the user's email as the provider labels it (`work`, `home`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_type: Option<String>,
    /// Whether the provider marks the user's email as its primary one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_primary: Option<bool>,
}

/// A group's details: all of them when it is created (`GroupCreated`) and when they are
/// replaced (`GroupUpdated`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDetails {
    pub group_id: Uuid,
    pub name: GroupName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub group_type: GroupType,
    #[serde(default)]
    pub custom: Custom,
    /// The group's id in an identity provider that provisions it (SCIM `externalId`),
    /// kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDeleted {
    pub group_id: Uuid,
    pub name: GroupName,
}

/// A user joining or leaving a group, with the names as they were at the time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub group_id: Uuid,
    pub group_name: GroupName,
    pub user_id: Uuid,
    pub username: Username,
    pub email: Email,
}

/// A group placed inside another: the child's members count as the parent's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Nesting {
    pub group_id: Uuid,
    pub group_name: GroupName,
    pub child_group_id: Uuid,
    pub child_group_name: GroupName,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordSet {
    pub user_id: Uuid,
    /// An argon2 PHC string; never the password itself.
    pub password_hash: String,
}

/// A user suspended or reinstated, with its names as they were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserStatus {
    pub user_id: Uuid,
    pub username: Username,
    pub email: Email,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRevoked {
    pub user_id: Uuid,
    /// The token's `jti`; never the token itself.
    pub token_id: Uuid,
    /// When the token would have expired: past it, the revocation need not be kept.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
}

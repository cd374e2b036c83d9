//! What the decisions need to know about the current state, as a trait. The read model
//! implements it over SQLite; the unit tests over memory. The domain never sees which.

use time::OffsetDateTime;
use uuid::Uuid;

use super::decide::Refusal;
use super::error::DomainError;
use super::event::{GroupDetails, GroupType, Profile};
use super::ids::{Email, GroupIdentifier, GroupName, UserIdentifier, Username};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: Uuid,
    pub name: GroupName,
    pub group_type: GroupType,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    pub id: Uuid,
    pub username: Username,
    pub email: Email,
}

/// A user's details as stored: what an update compares itself with.
#[derive(Debug, Clone, PartialEq)]
pub struct UserDetails {
    pub username: Username,
    pub email: Email,
    pub profile: Profile,
    pub suspended: bool,
}

/// Read-only questions about the state. Errors are the store's, never a decision.
pub trait State {
    fn user_details(&self, user: Uuid) -> anyhow::Result<Option<UserDetails>>;
    fn group_details(&self, group: Uuid) -> anyhow::Result<Option<GroupDetails>>;
    fn is_token_revoked(&self, token: Uuid) -> anyhow::Result<bool>;
    fn group(&self, id: &GroupIdentifier) -> anyhow::Result<Option<GroupRef>>;
    fn user(&self, id: &UserIdentifier) -> anyhow::Result<Option<UserRef>>;
    fn is_direct_member(&self, group: Uuid, user: Uuid) -> anyhow::Result<bool>;
    /// The request that first used `key` for `actor`, if any, even expired.
    fn idempotent_request(&self, actor: Uuid, key: &str) -> anyhow::Result<Option<KeyUse>>;
    /// How many changes the group has had (1 when created), if it exists.
    fn group_version(&self, group: Uuid) -> anyhow::Result<Option<u64>>;
    /// The request (its logId) whose event last changed the group, if it exists.
    fn last_change(&self, group: Uuid) -> anyhow::Result<Option<Uuid>>;

    /// The group, or `GroupNotFound`.
    fn require_group(&self, id: &GroupIdentifier) -> Result<GroupRef, Refusal> {
        Ok(self.group(id)?.ok_or(DomainError::GroupNotFound)?)
    }

    /// The user, or `UserNotFound`.
    fn require_user(&self, id: &UserIdentifier) -> Result<UserRef, Refusal> {
        Ok(self.user(id)?.ok_or(DomainError::UserNotFound)?)
    }
    fn is_direct_child(&self, parent: Uuid, child: Uuid) -> anyhow::Result<bool>;
    /// Whether `group` is below `ancestor`, at any depth.
    fn is_below(&self, group: Uuid, ancestor: Uuid) -> anyhow::Result<bool>;
    /// A group below `group` that has `user` as a direct member; the first by name.
    fn member_through(&self, group: Uuid, user: Uuid) -> anyhow::Result<Option<GroupRef>>;
    /// The groups `user` is a direct member of, by name.
    fn groups_of(&self, user: Uuid) -> anyhow::Result<Vec<GroupRef>>;
    /// The direct members of `group`, by username.
    fn members_of(&self, group: Uuid) -> anyhow::Result<Vec<UserRef>>;
    /// The direct child groups of `group`, by name.
    fn children_of(&self, group: Uuid) -> anyhow::Result<Vec<GroupRef>>;
    /// The groups `group` is a direct child of, by name.
    fn parents_of(&self, group: Uuid) -> anyhow::Result<Vec<GroupRef>>;
    /// The first system group (by name) at or above what `removal` touches (see
    /// [`Removal::reach`]) that would have no member left who is not suspended, directly
    /// or through child groups, after it.
    fn left_empty(&self, removal: &Removal) -> anyhow::Result<Option<GroupRef>>;
}

/// The first use of an idempotency key: the request (its logId) and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    pub fingerprint: String,
    pub correlation_id: Uuid,
    pub time: OffsetDateTime,
}

/// A change that takes members away, as far as a system group can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// No change: finds the system groups that are empty now.
    Nothing,
    Member {
        group: Uuid,
        user: Uuid,
    },
    /// The user leaves every group, or is suspended.
    User(Uuid),
    Child {
        parent: Uuid,
        child: Uuid,
    },
    /// The group leaves its parents, and with it everyone below it.
    Group(Uuid),
}

/// A [`Removal`] as the four things a membership walk skips.
#[derive(Debug, Default)]
pub struct Skipped {
    pub group: Option<Uuid>,
    pub edge: Option<(Uuid, Uuid)>,
    pub membership: Option<(Uuid, Uuid)>,
    pub user: Option<Uuid>,
}

/// Where a removal takes effect: only the system groups at or above it can lose a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every system group (`Removal::Nothing`: which are empty now).
    Everywhere,
    /// This group and the groups it is below.
    Group(Uuid),
    /// The groups this user is a direct member of, and the groups they are below.
    GroupsOf(Uuid),
}

impl Removal {
    pub fn reach(&self) -> Reach {
        match *self {
            Self::Nothing => Reach::Everywhere,
            Self::Member { group, .. } | Self::Group(group) => Reach::Group(group),
            Self::Child { parent, .. } => Reach::Group(parent),
            Self::User(user) => Reach::GroupsOf(user),
        }
    }

    pub fn skipped(&self) -> Skipped {
        let none = Skipped::default();
        match *self {
            Self::Nothing => none,
            Self::Member { group, user } => Skipped {
                membership: Some((group, user)),
                ..none
            },
            Self::User(user) => Skipped {
                user: Some(user),
                ..none
            },
            Self::Child { parent, child } => Skipped {
                edge: Some((parent, child)),
                ..none
            },
            Self::Group(group) => Skipped {
                group: Some(group),
                ..none
            },
        }
    }
}

//! What the decisions need to know about the current state, as a trait. The read model
//! implements it over SQLite; the unit tests over memory. The domain never sees which.

use uuid::Uuid;

use super::decide::{DomainError, Refusal};
use super::event::GroupType;
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

/// Read-only questions about the state. Errors are the store's, never a decision.
pub trait State {
    fn group(&self, id: &GroupIdentifier) -> anyhow::Result<Option<GroupRef>>;
    fn user(&self, id: &UserIdentifier) -> anyhow::Result<Option<UserRef>>;
    fn is_direct_member(&self, group: Uuid, user: Uuid) -> anyhow::Result<bool>;

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
    /// Whether `group` would still have a member, directly or through child groups, if
    /// `child` were no longer its direct child.
    fn has_member_without_child(&self, group: Uuid, child: Uuid) -> anyhow::Result<bool>;
    /// Whether anyone but `user` belongs to `group`, directly or through child groups.
    fn has_member_other_than(&self, group: Uuid, user: Uuid) -> anyhow::Result<bool>;
}

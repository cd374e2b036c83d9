//! What the protocols read: users, groups, lists, a group's history, membership checks.
//! Each is authorized and answered from one snapshot of the read model.

use uuid::Uuid;

use super::{Service, ServiceError};
use crate::auth::Bearer;
use crate::domain::{DomainError, GroupIdentifier, State, UserIdentifier};
use crate::read_model::{
    self, GroupView, Groups, HistoryItem, ListRequest, SqliteState, UserView, Users,
};

/// Which users a list is of, as a request names them.
#[derive(Debug, Clone)]
pub enum UserScope {
    All,
    /// The direct members of a group; with `inherited`, also those of every group below.
    MembersOf {
        group: GroupIdentifier,
        inherited: bool,
    },
}

/// Which groups a list is of, as a request names them.
#[derive(Debug, Clone)]
pub enum GroupScope {
    All,
    /// The direct child groups; with `inherited`, every group below; with `include_self`,
    /// the group too.
    ChildrenOf {
        group: GroupIdentifier,
        inherited: bool,
        include_self: bool,
    },
    /// The groups a user is a direct member of; with `inherited`, also every group those
    /// are inside.
    OfUser {
        user: UserIdentifier,
        inherited: bool,
    },
}

/// A page of a list, and how many items the whole list has.
#[derive(Debug)]
pub struct List<T> {
    pub total: u64,
    pub items: Vec<T>,
}

impl<T> From<(u64, Vec<T>)> for List<T> {
    fn from((total, items): (u64, Vec<T>)) -> Self {
        Self { total, items }
    }
}

impl Service {
    /// A user by any identifier, for the user itself or an administrator.
    pub async fn user(
        &self,
        caller: Bearer,
        user: UserIdentifier,
    ) -> Result<UserView, ServiceError> {
        self.query_self_or_admin(caller, user, |conn, user| {
            let found = SqliteState::new(conn).require_user(user)?;
            UserView::load(conn, found.id)?.ok_or_else(|| DomainError::UserNotFound.into())
        })
        .await
    }

    /// The id of a user, if the caller may act on it (as itself or as an administrator):
    /// 403 before 404, so that a caller who may not learns nothing about the user.
    pub async fn user_id(
        &self,
        caller: Bearer,
        user: UserIdentifier,
    ) -> Result<Uuid, ServiceError> {
        self.query_self_or_admin(caller, user, |conn, user| {
            Ok(SqliteState::new(conn).require_user(user)?.id)
        })
        .await
    }

    /// The user a write just made or changed, as stored: the answer to a request that was
    /// authorized when it was decided. Gone if a deletion got in since.
    pub async fn stored_user(&self, user: Uuid) -> Result<UserView, ServiceError> {
        self.read(move |conn| {
            UserView::load(conn, user)?.ok_or_else(|| DomainError::UserNotFound.into())
        })
        .await
    }

    /// A group by id or name, for an administrator.
    pub async fn group(
        &self,
        caller: Bearer,
        group: GroupIdentifier,
    ) -> Result<GroupView, ServiceError> {
        self.query(caller, move |conn| {
            let found = SqliteState::new(conn).require_group(&group)?;
            GroupView::load(conn, found.id)?.ok_or_else(|| DomainError::GroupNotFound.into())
        })
        .await
    }

    /// The group a write just made or changed, as stored (see [`Self::stored_user`]).
    pub async fn stored_group(&self, group: Uuid) -> Result<GroupView, ServiceError> {
        self.read(move |conn| {
            GroupView::load(conn, group)?.ok_or_else(|| DomainError::GroupNotFound.into())
        })
        .await
    }

    pub async fn list_users(
        &self,
        caller: Bearer,
        scope: UserScope,
        request: ListRequest,
    ) -> Result<List<UserView>, ServiceError> {
        self.query(caller, move |conn| {
            let state = SqliteState::new(conn);
            let which = match scope {
                UserScope::All => Users::All,
                UserScope::MembersOf { group, inherited } => Users::MembersOf {
                    group: state.require_group(&group)?.id,
                    inherited,
                },
            };
            Ok(read_model::list_users(conn, which, &request)?.into())
        })
        .await
    }

    pub async fn list_groups(
        &self,
        caller: Bearer,
        scope: GroupScope,
        request: ListRequest,
    ) -> Result<List<GroupView>, ServiceError> {
        self.query(caller, move |conn| {
            let state = SqliteState::new(conn);
            let which = match scope {
                GroupScope::All => Groups::All,
                GroupScope::ChildrenOf {
                    group,
                    inherited,
                    include_self,
                } => Groups::ChildrenOf {
                    group: state.require_group(&group)?.id,
                    inherited,
                    include_self,
                },
                GroupScope::OfUser { user, inherited } => Groups::OfUser {
                    user: state.require_user(&user)?.id,
                    inherited,
                },
            };
            Ok(read_model::list_groups(conn, which, &request)?.into())
        })
        .await
    }

    /// The group's changes, newest first, straight from its events.
    pub async fn history(
        &self,
        caller: Bearer,
        group: GroupIdentifier,
        offset: u64,
        limit: u64,
    ) -> Result<List<HistoryItem>, ServiceError> {
        let (total, positions) = self
            .query(caller, move |conn| {
                let group = SqliteState::new(conn).require_group(&group)?;
                Ok(read_model::list_history(conn, group.id, offset, limit)?)
            })
            .await?;
        let events = self.events_at(positions).await?;
        let items = (events.iter())
            .map(|event| read_model::history_item(event))
            .collect::<anyhow::Result<_>>()?;
        Ok(List { total, items })
    }

    /// Whether the user belongs to the group, directly or through a child group: 404s for
    /// a group or user that does not exist.
    pub async fn is_member(
        &self,
        caller: Bearer,
        group: GroupIdentifier,
        user: UserIdentifier,
    ) -> Result<bool, ServiceError> {
        self.query(caller, move |conn| {
            let state = SqliteState::new(conn);
            let group = state.require_group(&group)?;
            let user = state.require_user(&user)?;
            Ok(belongs(&state, group.id, user.id)?)
        })
        .await
    }

    /// Whether the user belongs to any of the groups, directly or through child groups.
    /// Unknown groups count as none, so that one stale name does not hide the others.
    pub async fn in_any_group(
        &self,
        caller: Bearer,
        user: UserIdentifier,
        groups: Vec<GroupIdentifier>,
    ) -> Result<bool, ServiceError> {
        self.query(caller, move |conn| {
            let state = SqliteState::new(conn);
            let user = state.require_user(&user)?;
            for group in &groups {
                if let Some(group) = state.group(group)?
                    && belongs(&state, group.id, user.id)?
                {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    /// Succeeds for an administrator whose token stands: for calls that must refuse
    /// anyone else before they do something costly.
    pub async fn require_administrator(&self, caller: Bearer) -> Result<(), ServiceError> {
        self.query(caller, |_| Ok(())).await
    }
}

fn belongs(state: &SqliteState, group: Uuid, user: Uuid) -> anyhow::Result<bool> {
    Ok(state.is_direct_member(group, user)? || state.member_through(group, user)?.is_some())
}

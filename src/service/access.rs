//! Who may call: a bearer token that still stands, and what its user may do. Both are
//! read from the read model on every request, in the snapshot the request is answered
//! from, so a removal, a suspension or a revocation takes effect at once.

use rusqlite::Connection;

use super::ServiceError;
use crate::auth::Bearer;
use crate::domain::{
    Actor, Command, DomainError, EventData, GroupIdentifier, GroupType, State, UserIdentifier,
};
use crate::read_model::{self, ClientCredential, SqliteState};

/// The caller as an actor, if its token still stands (401 otherwise), and it is `user` or
/// in System Administrators. A caller who is neither learns nothing about `user`.
pub(super) fn authorize_self_or_admin(
    conn: &Connection,
    caller: &Bearer,
    client: &ClientCredential,
    user: &UserIdentifier,
) -> Result<Actor, ServiceError> {
    let actor = authenticate(conn, caller, client)?;
    if administers(conn, caller)? {
        return Ok(actor);
    }
    match SqliteState(conn).user(user)? {
        Some(found) if found.id == caller.user => Ok(actor),
        _ => Err(ServiceError::Forbidden),
    }
}

/// The caller as an actor, if its token still stands (401 otherwise) and it is in System
/// Administrators (directly or through child groups).
pub(super) fn authorize(
    conn: &Connection,
    caller: &Bearer,
    client: &ClientCredential,
) -> Result<Actor, ServiceError> {
    let actor = authenticate(conn, caller, client)?;
    if !administers(conn, caller)? {
        return Err(ServiceError::Forbidden);
    }
    Ok(actor)
}

/// Whether the caller may administer users and groups: a member of System
/// Administrators, or, on a SCIM request, a provisioning credential.
fn administers(conn: &Connection, caller: &Bearer) -> anyhow::Result<bool> {
    Ok(read_model::is_administrator(conn, caller.user)?
        || (caller.scim && read_model::is_provisioner(conn, caller.user)?))
}

/// The caller as an actor, if its token still stands: see [`read_model::token_stands`].
pub(super) fn authenticate(
    conn: &Connection,
    caller: &Bearer,
    client: &ClientCredential,
) -> Result<Actor, ServiceError> {
    read_model::token_stands(conn, caller, client)?.ok_or(ServiceError::Unauthorized)
}

/// What a provisioning credential may not reach: System Administrators, and the accounts
/// of administrators, so that an identity provider's token can neither make anyone an
/// administrator nor lock the administrators out. Checked on the decided events, so that
/// every command that would reach them is refused whole (403), whatever its form.
pub(super) fn check_provisioner_reach(
    conn: &Connection,
    actor: &Actor,
    events: &[EventData],
) -> Result<(), ServiceError> {
    if !read_model::is_provisioner(conn, actor.user_id)?
        || read_model::is_administrator(conn, actor.user_id)?
    {
        return Ok(());
    }
    let state = SqliteState(conn);
    for event in events {
        let group = match event {
            EventData::GroupDeleted(e) => Some(e.group_id),
            other => other.changed_group(),
        };
        if let Some(group) = group
            && (state.group(&GroupIdentifier::Id(group))?)
                .is_some_and(|found| found.group_type == GroupType::Sys)
        {
            return Err(ServiceError::Forbidden);
        }
        let user = match event {
            EventData::UserUpdated(e) => Some(e.user_id),
            EventData::UserDeleted(e) => Some(e.user_id),
            EventData::UserSuspended(e) | EventData::UserReinstated(e) => Some(e.user_id),
            EventData::PasswordSet(e) => Some(e.user_id),
            _ => None,
        };
        if let Some(user) = user
            && read_model::is_administrator(conn, user)?
        {
            return Err(ServiceError::Forbidden);
        }
    }
    Ok(())
}

/// Nobody suspends or reinstates itself: an administrator who could would lock itself
/// out by mistake, and a suspended user cannot call anything. Checked before anything
/// else is decided, so that the answer is this one whatever else the update would meet.
pub(super) fn check_own_status(
    state: &SqliteState,
    actor: &Actor,
    command: &Command,
) -> Result<(), ServiceError> {
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
        return Err(DomainError::OwnStatus.into());
    }
    Ok(())
}

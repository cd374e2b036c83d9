//! Who may call: a bearer token that still stands, and what its user may do. Both are
//! read from the read model on every request, in the snapshot the request is answered
//! from, so a removal, a suspension or a revocation takes effect at once.

use rusqlite::Connection;

use super::ServiceError;
use crate::auth::Bearer;
use crate::domain::{Actor, Command, DomainError, EventData, Scope, State, UserIdentifier};
use crate::read_model::{self, ClientCredential, SqliteState, Standing};

/// The caller, if its token still stands (401 otherwise), and it is `user` or an
/// administrator. A caller who is neither learns nothing about `user`. An API client with
/// scopes is never "the user": it has only its scopes.
pub(super) fn authorize_self_or_admin(
    conn: &Connection,
    caller: &Bearer,
    client: &ClientCredential,
    user: &UserIdentifier,
) -> Result<Standing, ServiceError> {
    let standing = authenticate(conn, caller, client)?;
    if administers(conn, caller, &standing)? {
        return Ok(standing);
    }
    match SqliteState::new(conn).user(user)? {
        Some(found) if found.id == caller.user && standing.scopes.is_empty() => Ok(standing),
        _ => Err(ServiceError::Forbidden),
    }
}

/// The caller, if its token still stands (401 otherwise) and it may administer users and
/// groups (403 otherwise).
pub(super) fn authorize(
    conn: &Connection,
    caller: &Bearer,
    client: &ClientCredential,
) -> Result<Standing, ServiceError> {
    let standing = authenticate(conn, caller, client)?;
    if !administers(conn, caller, &standing)? {
        return Err(ServiceError::Forbidden);
    }
    Ok(standing)
}

/// The caller, if its token still stands and it may read the event feed: an
/// administrator, or a client with the `events:read` scope.
pub(super) fn authorize_feed(
    conn: &Connection,
    caller: &Bearer,
    client: &ClientCredential,
) -> Result<Standing, ServiceError> {
    let standing = authenticate(conn, caller, client)?;
    let reads = match standing.scopes.is_empty() {
        true => read_model::is_administrator(conn, caller.user)?,
        false => standing.scopes.contains(&Scope::EventsRead),
    };
    if !reads {
        return Err(ServiceError::Forbidden);
    }
    Ok(standing)
}

/// Whether the caller may administer users and groups: a member of System Administrators
/// whose client has no scopes, or, on a SCIM request, a client with the `scim` scope. A
/// client with scopes has only those, whatever groups its account is in.
fn administers(conn: &Connection, caller: &Bearer, standing: &Standing) -> anyhow::Result<bool> {
    Ok(match standing.scopes.is_empty() {
        true => read_model::is_administrator(conn, caller.user)?,
        false => caller.scim && standing.scopes.contains(&Scope::Scim),
    })
}

/// The caller, if its token still stands: see [`read_model::token_stands`].
pub(super) fn authenticate(
    conn: &Connection,
    caller: &Bearer,
    client: &ClientCredential,
) -> Result<Standing, ServiceError> {
    read_model::token_stands(conn, caller, client)?.ok_or(ServiceError::Unauthorized)
}

/// What a client with the `scim` scope may not reach: System Administrators and every
/// group below it (whose members are administrators), the accounts of administrators, and
/// the accounts of API clients (its own and the others'), so that an identity provider's
/// token can neither make anyone an administrator, nor lock the administrators out, nor
/// take over another client. Checked on the decided events, so that every command that
/// would reach them is refused whole (403), whatever its form. Checked when decided: a
/// change an administrator makes meanwhile (nesting the group below System
/// Administrators, say) is not looked at again when the event is applied.
pub(super) fn check_provisioner_reach(
    conn: &Connection,
    standing: &Standing,
    events: &[EventData],
) -> Result<(), ServiceError> {
    if !standing.scopes.contains(&Scope::Scim) {
        return Ok(());
    }
    let state = SqliteState::new(conn);
    for event in events {
        let groups = match event {
            EventData::ChildGroupAdded(n) | EventData::ChildGroupRemoved(n) => {
                vec![n.group_id, n.child_group_id]
            }
            other => other.group().into_iter().collect(),
        };
        for group in groups {
            if state.in_system_group(group)? {
                return Err(ServiceError::Forbidden);
            }
        }
        let user = match event {
            EventData::UserUpdated(e) => Some(e.user_id),
            EventData::UserDeleted(e) => Some(e.user_id),
            EventData::UserSuspended(e) | EventData::UserReinstated(e) => Some(e.user_id),
            EventData::PasswordSet(e) => Some(e.user_id),
            _ => None,
        };
        if let Some(user) = user
            && (read_model::is_administrator(conn, user)?
                || read_model::is_service_account(conn, user)?)
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

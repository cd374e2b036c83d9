//! The decisions. `decide` turns a command into events or refuses it; `apply` says whether
//! an event, once in the log, takes effect. Both share the same checks, so a request that
//! passed `decide` is only rejected by `apply` when another event got there first.

use uuid::Uuid;

use super::error::{DomainError, LINKS_PER_DELETION_MAX};
use super::event::{
    Event, EventData, ExpectedVersion, GroupDeleted, GroupDetails, GroupType, Idempotency,
    Membership, Nesting, PasswordSet, Profile, Provisioned, Scope, TokenRevoked, UserCreated,
    UserDeleted, UserStatus, UserUpdated,
};
use super::ids::{Email, GroupIdentifier, GroupName, UserIdentifier, Username};
use super::state::{GroupRef, Removal, State, UserRef};

/// How long an idempotency key stands for its first request. A retry within it gets the
/// first answer; after it, the key is free for a new request.
pub const IDEMPOTENCY_KEY_TTL: time::Duration = time::Duration::hours(24);

/// A store failure or a refusal: the two ways a decision can fail.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub profile: Profile,
    pub client_id: Option<String>,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewGroup {
    pub name: GroupName,
    pub description: Option<String>,
    pub group_type: GroupType,
    pub custom: super::event::Custom,
    pub external_id: Option<String>,
}

/// A value a change sets, or leaves as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Set<T> {
    Keep,
    To(T),
}

impl<T> Set<T> {
    fn or(self, current: T) -> T {
        match self {
            Self::Keep => current,
            Self::To(value) => value,
        }
    }
}

/// What a change does to a group's direct members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// Adds those not yet members, removes those who are; the others are as wanted.
    Edit {
        add: Vec<UserIdentifier>,
        remove: Vec<UserIdentifier>,
    },
    /// Exactly these members: the difference, as adds and removes.
    Replace(Vec<UserIdentifier>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    CreateUser {
        user_id: Uuid,
        user: NewUser,
        /// Hashed outside: hashing is salted, so not a pure function.
        password_hash: Option<String>,
    },
    /// Creates the group with these direct members.
    CreateGroup {
        group_id: Uuid,
        group: NewGroup,
        members: Vec<UserIdentifier>,
    },
    /// Renames a group, changes its external id, and changes its direct members, decided
    /// together (an identity provider's PATCH or PUT of a group).
    ChangeGroup {
        group: GroupIdentifier,
        name: Set<GroupName>,
        external_id: Set<Option<String>>,
        members: MemberChange,
    },
    /// Replaces the user's details, and suspends or reinstates it when `suspended` says
    /// so; what already holds makes no event.
    UpdateUser {
        user: UserIdentifier,
        username: Username,
        email: Email,
        /// Without its `provisioned` part, which `provisioned` sets or keeps.
        profile: Profile,
        provisioned: Set<Provisioned>,
        suspended: Option<bool>,
    },
    /// Removes the user from its groups, then deletes it.
    DeleteUser { user: UserIdentifier },
    SetPassword {
        user: UserIdentifier,
        password_hash: String,
    },
    UpdateGroup {
        group: GroupIdentifier,
        details: NewGroup,
        /// The request named no type: the group keeps the one it has.
        keep_type: bool,
    },
    /// Empties the group, takes it out of its parents, then deletes it.
    DeleteGroup { group: GroupIdentifier },
    AddMember {
        group: GroupIdentifier,
        user: UserIdentifier,
    },
    /// All the users, or none when any is missing.
    AddMembers {
        group: GroupIdentifier,
        users: Vec<UserIdentifier>,
    },
    RemoveMember {
        group: GroupIdentifier,
        user: UserIdentifier,
    },
    AddChildGroup {
        group: GroupIdentifier,
        child: GroupIdentifier,
    },
    /// All the child groups, or none when any is missing or would close a cycle.
    AddChildGroups {
        group: GroupIdentifier,
        children: Vec<GroupIdentifier>,
    },
    RemoveChildGroup {
        group: GroupIdentifier,
        child: GroupIdentifier,
    },
    /// Stops one bearer token of `user`; nothing if it is stopped already.
    RevokeToken {
        user: Uuid,
        token_id: Uuid,
        expires: time::OffsetDateTime,
    },
}

impl Command {
    /// The group the command is on, whose version an `If-Match` names.
    pub fn group(&self) -> Option<&GroupIdentifier> {
        match self {
            Self::UpdateGroup { group, .. }
            | Self::ChangeGroup { group, .. }
            | Self::DeleteGroup { group }
            | Self::AddMember { group, .. }
            | Self::AddMembers { group, .. }
            | Self::RemoveMember { group, .. }
            | Self::AddChildGroup { group, .. }
            | Self::AddChildGroups { group, .. }
            | Self::RemoveChildGroup { group, .. } => Some(group),
            Self::CreateUser { .. }
            | Self::CreateGroup { .. }
            | Self::UpdateUser { .. }
            | Self::DeleteUser { .. }
            | Self::SetPassword { .. }
            | Self::RevokeToken { .. } => None,
        }
    }
}

/// Puts a request's idempotency key on its events, with how many carry it: every event
/// but those on the credentials stream, where keys do not count (see
/// [`Event::idempotency_key`]).
pub fn key_events(events: &mut [Event], key: &str, fingerprint: &str) {
    let keyed = events.iter().filter(|e| !e.data.is_secret()).count();
    for event in events.iter_mut().filter(|e| !e.data.is_secret()) {
        event.idempotency = Some(Idempotency {
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            events: keyed,
        });
    }
}

/// Makes every one of `events` conditional on `group` being at `version` (see
/// [`ExpectedVersion`]): so that the request lands whole or, if another change to the
/// group got in first, not at all.
pub fn expect_version(events: &mut [Event], expected: ExpectedVersion) {
    for event in events {
        event.expected_version = Some(expected);
    }
}

/// Whether an event in the log takes effect, envelope included: an event of a request
/// whose idempotency key an earlier request of the same actor holds (within
/// [`IDEMPOTENCY_KEY_TTL`]) is a duplicate, and a conditional event (see
/// [`expect_version`]) is rejected when its group moved on without it.
pub fn apply_event(state: &impl State, event: &Event) -> anyhow::Result<Outcome> {
    if let Some(idempotency) = event.idempotency_key() {
        let first = state.idempotent_request(event.actor.user_id, &idempotency.key)?;
        if first.is_some_and(|first| {
            first.correlation_id != event.correlation_id
                && event.time < first.time + IDEMPOTENCY_KEY_TTL
        }) {
            return Ok(Outcome::Rejected(DomainError::DuplicateRequest));
        }
    }
    if let Some(expected) = event.expected_version {
        let still = state.group_version(expected.group_id)? == Some(expected.version)
            || state.last_change(expected.group_id)? == Some(event.correlation_id);
        if !still {
            return Ok(Outcome::Rejected(DomainError::VersionMismatch));
        }
    }
    apply(state, &event.data)
}

/// The events a command produces. An empty list means the state already holds.
pub fn decide(state: &impl State, command: Command) -> Result<Vec<EventData>, Refusal> {
    match command {
        Command::CreateUser {
            user_id,
            user,
            password_hash,
        } => create_user(state, user_id, user, password_hash),
        Command::CreateGroup {
            group_id,
            group,
            members,
        } => create_group(state, group_id, group, &members),
        Command::ChangeGroup {
            group,
            name,
            external_id,
            members,
        } => {
            let group = state.require_group(&group)?;
            let mut events = rename_group(state, &group, name, external_id)?;
            events.extend(change_members(state, group, members)?);
            check_links(&events)?;
            Ok(events)
        }
        Command::UpdateUser {
            user,
            username,
            email,
            profile,
            provisioned,
            suspended,
        } => {
            let user_id = state.require_user(&user)?.id;
            let updated = UserUpdated {
                user_id,
                username,
                email,
                profile,
            };
            update_user(state, updated, provisioned, suspended)
        }
        Command::DeleteUser { user } => delete_user(state, state.require_user(&user)?),
        Command::SetPassword {
            user,
            password_hash,
        } => Ok(vec![EventData::PasswordSet(PasswordSet {
            user_id: state.require_user(&user)?.id,
            password_hash,
        })]),
        Command::UpdateGroup {
            group,
            details,
            keep_type,
        } => update_group(state, state.require_group(&group)?, details, keep_type),
        Command::DeleteGroup { group } => delete_group(state, state.require_group(&group)?),
        Command::AddMembers { group, users } => {
            add_members(state, state.require_group(&group)?, &users)
        }
        Command::AddMember { group, user } => {
            let (group, user) = resolve(state, &group, &user)?;
            if state.is_direct_member(group.id, user.id)? {
                return Ok(vec![]);
            }
            Ok(vec![EventData::MemberAdded(membership(group, user))])
        }
        Command::RemoveMember { group, user } => {
            let (group, user) = resolve(state, &group, &user)?;
            check_removable(state, &group, &user)?;
            Ok(vec![EventData::MemberRemoved(membership(group, user))])
        }
        Command::AddChildGroup { group, child } => {
            let (group, child) = (state.require_group(&group)?, state.require_group(&child)?);
            add_children(state, group, &[GroupIdentifier::Id(child.id)])
        }
        Command::AddChildGroups { group, children } => {
            add_children(state, state.require_group(&group)?, &children)
        }
        Command::RemoveChildGroup { group, child } => {
            let group = state.require_group(&group)?;
            let child = state.require_group(&child)?;
            check_unnestable(state, &group, child.id)?;
            Ok(vec![EventData::ChildGroupRemoved(nesting(group, child))])
        }
        Command::RevokeToken {
            user,
            token_id,
            expires,
        } => {
            let revoked = TokenRevoked {
                user_id: user,
                token_id,
                expires,
            };
            let already = state.is_token_revoked(token_id)?;
            Ok(if already {
                vec![]
            } else {
                vec![EventData::TokenRevoked(revoked)]
            })
        }
    }
}

fn create_group(
    state: &impl State,
    group_id: Uuid,
    group: NewGroup,
    members: &[UserIdentifier],
) -> Result<Vec<EventData>, Refusal> {
    let created = GroupDetails {
        group_id,
        name: group.name,
        description: group.description,
        group_type: group.group_type,
        custom: group.custom,
        external_id: group.external_id,
    };
    check_group_creatable(state, &created)?;
    let new = GroupRef {
        id: group_id,
        name: created.name.clone(),
        group_type: created.group_type,
    };
    let mut events = vec![EventData::GroupCreated(created)];
    for user in found_users(state, members)? {
        events.push(EventData::MemberAdded(membership(new.clone(), user)));
    }
    check_links(&events)?;
    Ok(events)
}

/// The users named, each once, or `UsersNotFound` naming every one that is missing.
fn found_users(state: &impl State, users: &[UserIdentifier]) -> Result<Vec<UserRef>, Refusal> {
    let mut missing = Vec::new();
    let mut found: Vec<UserRef> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in users {
        match state.user(id)? {
            Some(user) if !seen.insert(user.id) => {}
            Some(user) => found.push(user),
            None => missing.push(id.to_string()),
        }
    }
    if !missing.is_empty() {
        return Err(DomainError::UsersNotFound { missing }.into());
    }
    Ok(found)
}

/// The group renamed and its external id changed, as one `GroupUpdated` if anything
/// changes.
fn rename_group(
    state: &impl State,
    group: &GroupRef,
    name: Set<GroupName>,
    external_id: Set<Option<String>>,
) -> Result<Vec<EventData>, Refusal> {
    let current = state
        .group_details(group.id)?
        .ok_or(DomainError::GroupNotFound)?;
    let updated = GroupDetails {
        name: name.or(current.name.clone()),
        external_id: external_id.or(current.external_id.clone()),
        ..current.clone()
    };
    if updated == current {
        return Ok(vec![]);
    }
    check_group_updatable(state, &updated)?;
    Ok(vec![EventData::GroupUpdated(updated)])
}

/// The adds, then the removes, that make the group's direct members what `change` asks.
/// A removal of someone who is not a member is already so, and makes no event.
fn change_members(
    state: &impl State,
    group: GroupRef,
    change: MemberChange,
) -> Result<Vec<EventData>, Refusal> {
    let (add, remove) = match change {
        MemberChange::Edit { add, remove } => {
            let mut seen = std::collections::HashSet::new();
            let remove = (remove.iter())
                .filter_map(|user| state.user(user).transpose())
                .filter(|user| user.as_ref().map_or(true, |user| seen.insert(user.id)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            (found_users(state, &add)?, remove)
        }
        MemberChange::Replace(wanted) => {
            let wanted = found_users(state, &wanted)?;
            let ids: std::collections::HashSet<Uuid> = wanted.iter().map(|w| w.id).collect();
            let current = state.members_of(group.id)?;
            let remove = (current.into_iter())
                .filter(|member| !ids.contains(&member.id))
                .collect();
            (wanted, remove)
        }
    };
    let mut events = Vec::new();
    for user in add {
        if !state.is_direct_member(group.id, user.id)? {
            events.push(EventData::MemberAdded(membership(group.clone(), user)));
        }
    }
    for user in remove {
        if state.is_direct_member(group.id, user.id)? {
            check_removable(state, &group, &user)?;
            events.push(EventData::MemberRemoved(membership(group.clone(), user)));
        }
    }
    Ok(events)
}

fn create_user(
    state: &impl State,
    user_id: Uuid,
    user: NewUser,
    password_hash: Option<String>,
) -> Result<Vec<EventData>, Refusal> {
    let created = UserCreated {
        user_id,
        username: user.username,
        email: user.email,
        profile: user.profile,
        client_id: user.client_id,
        scopes: user.scopes,
    };
    check_user_creatable(state, &created)?;
    let mut events = vec![EventData::UserCreated(created)];
    if let Some(password_hash) = password_hash {
        events.push(EventData::PasswordSet(PasswordSet {
            user_id,
            password_hash,
        }));
    }
    Ok(events)
}

/// The user's new details, if they differ from the stored ones, then its new status, if
/// that differs: nothing at all for an update that changes nothing.
fn update_user(
    state: &impl State,
    mut updated: UserUpdated,
    provisioned: Set<Provisioned>,
    suspended: Option<bool>,
) -> Result<Vec<EventData>, Refusal> {
    let current = state
        .user_details(updated.user_id)?
        .ok_or(DomainError::UserNotFound)?;
    updated.profile.provisioned = provisioned.or(current.profile.provisioned.clone());
    // A status event names the user as it is after the update.
    let status = UserStatus {
        user_id: updated.user_id,
        username: updated.username.clone(),
        email: updated.email.clone(),
    };
    let mut events = Vec::new();
    let same = (&updated.username, &updated.email, &updated.profile)
        == (&current.username, &current.email, &current.profile);
    if !same {
        check_user_updatable(state, &updated)?;
        events.push(EventData::UserUpdated(updated));
    }
    match suspended.filter(|s| *s != current.suspended) {
        Some(true) => {
            check_suspendable(state, status.user_id)?;
            events.push(EventData::UserSuspended(status));
        }
        Some(false) => events.push(EventData::UserReinstated(status)),
        None => {}
    }
    Ok(events)
}

/// The user's memberships end one by one, then the user.
fn delete_user(state: &impl State, user: UserRef) -> Result<Vec<EventData>, Refusal> {
    if state.left_empty(&Removal::User(user.id))?.is_some() {
        return Err(DomainError::LastAdministrator.into());
    }
    let mut events: Vec<EventData> = state
        .groups_of(user.id)?
        .into_iter()
        .map(|group| EventData::MemberRemoved(membership(group, user.clone())))
        .collect();
    check_links(&events)?;
    events.push(EventData::UserDeleted(UserDeleted {
        user_id: user.id,
        username: user.username,
        email: user.email,
    }));
    Ok(events)
}

fn update_group(
    state: &impl State,
    group: GroupRef,
    details: NewGroup,
    keep_type: bool,
) -> Result<Vec<EventData>, Refusal> {
    let current = state
        .group_details(group.id)?
        .ok_or(DomainError::GroupNotFound)?;
    let updated = GroupDetails {
        group_id: group.id,
        name: details.name,
        description: details.description,
        group_type: if keep_type {
            group.group_type
        } else {
            details.group_type
        },
        custom: details.custom,
        // The Contensis API does not know it: an update there keeps it.
        external_id: current.external_id.clone(),
    };
    if updated == current {
        return Ok(vec![]);
    }
    check_group_updatable(state, &updated)?;
    Ok(vec![EventData::GroupUpdated(updated)])
}

/// The group's members, children and parents go one by one, then the group.
fn delete_group(state: &impl State, group: GroupRef) -> Result<Vec<EventData>, Refusal> {
    if group.group_type == GroupType::Sys {
        return Err(DomainError::SystemGroup.into());
    }
    if state.left_empty(&Removal::Group(group.id))?.is_some() {
        return Err(DomainError::LastAdministrator.into());
    }
    let mut events = Vec::new();
    for user in state.members_of(group.id)? {
        events.push(EventData::MemberRemoved(membership(group.clone(), user)));
    }
    for child in state.children_of(group.id)? {
        events.push(EventData::ChildGroupRemoved(nesting(group.clone(), child)));
    }
    for parent in state.parents_of(group.id)? {
        events.push(EventData::ChildGroupRemoved(nesting(parent, group.clone())));
    }
    check_links(&events)?;
    events.push(EventData::GroupDeleted(GroupDeleted {
        group_id: group.id,
        name: group.name,
    }));
    Ok(events)
}

/// Every user named, or none when any is missing; those already members make no event.
fn add_members(
    state: &impl State,
    group: GroupRef,
    users: &[UserIdentifier],
) -> Result<Vec<EventData>, Refusal> {
    let mut events = Vec::new();
    for user in found_users(state, users)? {
        if !state.is_direct_member(group.id, user.id)? {
            events.push(EventData::MemberAdded(membership(group.clone(), user)));
        }
    }
    Ok(events)
}

/// Every group named as a child, or none when any is missing or would close a cycle.
fn add_children(
    state: &impl State,
    group: GroupRef,
    children: &[GroupIdentifier],
) -> Result<Vec<EventData>, Refusal> {
    let mut missing = Vec::new();
    let mut found: Vec<GroupRef> = Vec::new();
    for id in children {
        match state.group(id)? {
            Some(child) if found.iter().any(|f| f.id == child.id) => {}
            Some(child) => found.push(child),
            None => missing.push(id.to_string()),
        }
    }
    if !missing.is_empty() {
        return Err(DomainError::GroupsNotFound { missing }.into());
    }
    // The new edges all leave `group`, so none can close a cycle through another:
    // checking each against the state is enough.
    let mut events = Vec::new();
    for child in found {
        if !state.is_direct_child(group.id, child.id)? {
            check_nestable(state, group.id, child.id)?;
            events.push(EventData::ChildGroupAdded(nesting(group.clone(), child)));
        }
    }
    Ok(events)
}

/// Whether an event in the log takes effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Its precondition no longer held when it was applied; it changes nothing.
    Rejected(DomainError),
}

impl Outcome {
    const APPLIED: &str = "applied";

    /// The outcome as the read model stores it: `applied`, or the rejection's code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Applied => Self::APPLIED,
            Self::Rejected(reason) => reason.code(),
        }
    }

    /// The outcome a stored code names, with none of a rejection's details.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            Self::APPLIED => Some(Self::Applied),
            code => DomainError::from_code(code).map(Self::Rejected),
        }
    }
}

/// Decides whether `event` takes effect on `state`. The caller performs the effect.
pub fn apply(state: &impl State, event: &EventData) -> anyhow::Result<Outcome> {
    let checked = match event {
        EventData::UserCreated(e) => check_user_creatable(state, e),
        EventData::UserUpdated(e) => check_user_updatable(state, e),
        EventData::UserDeleted(e) => state
            .require_user(&UserIdentifier::Id(e.user_id))
            .and_then(|user| check_deletable(state.groups_of(user.id)?.is_empty())),
        EventData::GroupCreated(e) => check_group_creatable(state, e),
        EventData::GroupUpdated(e) => check_group_updatable(state, e),
        EventData::GroupDeleted(e) => state
            .require_group(&GroupIdentifier::Id(e.group_id))
            .and_then(|group| {
                if group.group_type == GroupType::Sys {
                    return Err(DomainError::SystemGroup.into());
                }
                check_deletable(
                    state.members_of(group.id)?.is_empty()
                        && state.children_of(group.id)?.is_empty()
                        && state.parents_of(group.id)?.is_empty(),
                )
            }),
        EventData::MemberAdded(m) => resolve_ids(state, m).and_then(|(group, user)| {
            if state.is_direct_member(group.id, user.id)? {
                return Err(DomainError::AlreadyMember.into());
            }
            Ok(())
        }),
        EventData::MemberRemoved(m) => {
            resolve_ids(state, m).and_then(|(group, user)| check_removable(state, &group, &user))
        }
        EventData::ChildGroupAdded(n) => {
            let exists = |id| state.group(&GroupIdentifier::Id(id));
            match (exists(n.group_id)?, exists(n.child_group_id)?) {
                (Some(_), Some(_)) if state.is_direct_child(n.group_id, n.child_group_id)? => {
                    Err(DomainError::AlreadyMember.into())
                }
                (Some(_), Some(_)) => check_nestable(state, n.group_id, n.child_group_id),
                _ => Err(DomainError::GroupNotFound.into()),
            }
        }
        EventData::ChildGroupRemoved(n) => match state.group(&GroupIdentifier::Id(n.group_id))? {
            Some(group) => check_unnestable(state, &group, n.child_group_id),
            None => Err(DomainError::GroupNotFound.into()),
        },
        EventData::UserSuspended(e) => state
            .user_details(e.user_id)?
            .ok_or_else(|| DomainError::UserNotFound.into())
            .and_then(|user| match user.suspended {
                true => Err(DomainError::StatusUnchanged.into()),
                false => check_suspendable(state, e.user_id),
            }),
        EventData::UserReinstated(e) => match state.user_details(e.user_id)? {
            Some(user) if user.suspended => Ok(()),
            Some(_) => Err(DomainError::StatusUnchanged.into()),
            None => Err(DomainError::UserNotFound.into()),
        },
        // A password is keyed by user id and replaces any earlier one, and a revocation
        // only adds to the revoked: nothing can conflict.
        EventData::PasswordSet(_) | EventData::TokenRevoked(_) => Ok(()),
    };
    match checked {
        Ok(()) => Ok(Outcome::Applied),
        Err(Refusal::Domain(reason)) => Ok(Outcome::Rejected(reason)),
        Err(Refusal::Store(error)) => Err(error),
    }
}

fn check_user_creatable(state: &impl State, user: &UserCreated) -> Result<(), Refusal> {
    if state.user(&UserIdentifier::Id(user.user_id))?.is_some() {
        return Err(DomainError::IdTaken.into());
    }
    if state
        .user(&UserIdentifier::Username(user.username.clone()))?
        .is_some()
    {
        return Err(DomainError::UsernameTaken.into());
    }
    if let Some(id) = as_email(&user.username)
        && state.user(&id)?.is_some()
    {
        return Err(DomainError::UsernameTaken.into());
    }
    // Finds another user's email, or a username that looks like this email.
    if state
        .user(&UserIdentifier::Email(user.email.clone()))?
        .is_some()
    {
        return Err(DomainError::EmailTaken.into());
    }
    Ok(())
}

/// A username that reads as an email, as the identifier it would be: it may not name
/// another user's email, so that an identifier with '@' always names one user.
fn as_email(username: &Username) -> Option<UserIdentifier> {
    let email = username
        .looks_like_email()
        .then(|| Email::parse(username.as_str()).ok())?;
    email.map(UserIdentifier::Email)
}

/// The new username and email may not belong to another user.
fn check_user_updatable(state: &impl State, user: &UserUpdated) -> Result<(), Refusal> {
    state.require_user(&UserIdentifier::Id(user.user_id))?;
    let other = |found: Option<UserRef>| found.is_some_and(|f| f.id != user.user_id);
    if other(state.user(&UserIdentifier::Username(user.username.clone()))?) {
        return Err(DomainError::UsernameTaken.into());
    }
    if let Some(id) = as_email(&user.username)
        && other(state.user(&id)?)
    {
        return Err(DomainError::UsernameTaken.into());
    }
    if other(state.user(&UserIdentifier::Email(user.email.clone()))?) {
        return Err(DomainError::EmailTaken.into());
    }
    Ok(())
}

/// A group may take any free name, and any type but `sys`; a system group keeps its
/// name and type, since the service finds its administrators by them.
fn check_group_updatable(state: &impl State, group: &GroupDetails) -> Result<(), Refusal> {
    let current = state.require_group(&GroupIdentifier::Id(group.group_id))?;
    if (current.group_type == GroupType::Sys || group.group_type == GroupType::Sys)
        && (current.group_type != group.group_type || current.name.key() != group.name.key())
    {
        return Err(DomainError::SystemGroup.into());
    }
    if state
        .group(&GroupIdentifier::Name(group.name.clone()))?
        .is_some_and(|found| found.id != group.group_id)
    {
        return Err(DomainError::GroupNameTaken.into());
    }
    Ok(())
}

pub(super) fn check_links(removals: &[EventData]) -> Result<(), Refusal> {
    if removals.len() > LINKS_PER_DELETION_MAX {
        return Err(DomainError::TooManyLinks.into());
    }
    Ok(())
}

/// A deletion is applied only once everything it ended came first in the log.
fn check_deletable(nothing_left: bool) -> Result<(), Refusal> {
    if nothing_left {
        Ok(())
    } else {
        Err(DomainError::MembershipsRemain.into())
    }
}

fn check_group_creatable(state: &impl State, group: &GroupDetails) -> Result<(), Refusal> {
    if state.group(&GroupIdentifier::Id(group.group_id))?.is_some() {
        return Err(DomainError::IdTaken.into());
    }
    if state
        .group(&GroupIdentifier::Name(group.name.clone()))?
        .is_some()
    {
        return Err(DomainError::GroupNameTaken.into());
    }
    Ok(())
}

/// A group may not contain itself, at any depth: membership must stay a tree-like order.
fn check_nestable(state: &impl State, group: Uuid, child: Uuid) -> Result<(), Refusal> {
    if group == child || state.is_below(group, child)? {
        return Err(DomainError::GroupCycle.into());
    }
    Ok(())
}

/// A child group can leave only a group it is directly in, and never take the last
/// member of a system group with it (at any depth above).
fn check_unnestable(state: &impl State, group: &GroupRef, child: Uuid) -> Result<(), Refusal> {
    if !state.is_direct_child(group.id, child)? {
        return Err(DomainError::GroupNotChild.into());
    }
    let removal = Removal::Child {
        parent: group.id,
        child,
    };
    if state.left_empty(&removal)?.is_some() {
        return Err(DomainError::LastAdministrator.into());
    }
    Ok(())
}

/// A suspended user no longer counts for System Administrators, so the last one who
/// does cannot be suspended.
fn check_suspendable(state: &impl State, user: Uuid) -> Result<(), Refusal> {
    if state.left_empty(&Removal::User(user))?.is_some() {
        return Err(DomainError::LastAdministrator.into());
    }
    Ok(())
}

fn check_removable(state: &impl State, group: &GroupRef, user: &UserRef) -> Result<(), Refusal> {
    if !state.is_direct_member(group.id, user.id)? {
        let through = state.member_through(group.id, user.id)?;
        return Err(DomainError::UserNotInGroup {
            inherited_through: through.map(|g| g.name),
        }
        .into());
    }
    // A system group must keep someone in it, or nobody could administer the service.
    let removal = Removal::Member {
        group: group.id,
        user: user.id,
    };
    if state.left_empty(&removal)?.is_some() {
        return Err(DomainError::LastAdministrator.into());
    }
    Ok(())
}

fn resolve(
    state: &impl State,
    group: &GroupIdentifier,
    user: &UserIdentifier,
) -> Result<(GroupRef, UserRef), Refusal> {
    let group = state.require_group(group)?;
    let user = state.require_user(user)?;
    Ok((group, user))
}

fn resolve_ids(state: &impl State, m: &Membership) -> Result<(GroupRef, UserRef), Refusal> {
    resolve(
        state,
        &GroupIdentifier::Id(m.group_id),
        &UserIdentifier::Id(m.user_id),
    )
}

fn nesting(group: GroupRef, child: GroupRef) -> Nesting {
    Nesting {
        group_id: group.id,
        group_name: group.name,
        child_group_id: child.id,
        child_group_name: child.name,
    }
}

fn membership(group: GroupRef, user: UserRef) -> Membership {
    Membership {
        group_id: group.id,
        group_name: group.name,
        user_id: user.id,
        username: user.username,
        email: user.email,
    }
}

//! The service makes what it needs to be administered at all: the System Administrators
//! group and a service account for the bootstrap API client, as ordinary events, and puts
//! the account in the group when the account is new or the group has no member.
//!
//! Each step is decided from the read model, so starting again appends nothing, and an
//! account an administrator later removed from the group stays removed. The last member
//! can never be removed, so an empty group means that an earlier start was cut short.
//! Instances sharing a log may bootstrap at once: a step that loses the race is rejected
//! by `apply` like any other, and the next look finds what the winner made.

use anyhow::bail;
use uuid::Uuid;

use crate::domain::{
    Actor, Command, Custom, Email, GroupIdentifier, GroupName, GroupType, NewGroup, NewUser,
    Profile, Removal, State, UserIdentifier, Username,
};
use crate::read_model::{self, SqliteState};
use crate::service::{Principal, Service, ServiceError, Write};

pub const SYSTEM_ADMINISTRATORS: &str = "System Administrators";

/// Create the account, create the group, add the account: at most three steps, plus room
/// for steps lost to another instance.
const STEPS_MAX: usize = 6;

/// What the read model holds of the bootstrap.
struct Seen {
    account: Option<Uuid>,
    group: Option<GroupSeen>,
}

struct GroupSeen {
    has_member: bool,
    account_is_member: bool,
}

pub async fn ensure_administrator(service: &Service, client_id: &str) -> anyhow::Result<()> {
    let username = Username::parse(crate::service::client_username(client_id))?;
    let mut created_account = false;
    for _ in 0..STEPS_MAX {
        let seen = look(service, client_id).await?;
        let Some(account) = seen.account else {
            let user_id = Uuid::new_v4();
            let actor = Actor {
                user_id,
                username: username.clone(),
            };
            created_account |= run(
                service,
                &actor,
                create_account(user_id, client_id, &username)?,
            )
            .await?;
            continue;
        };
        let actor = Actor {
            user_id: account,
            username: username.clone(),
        };
        let command = match seen.group {
            None => create_group()?,
            Some(group) if !group.has_member || (created_account && !group.account_is_member) => {
                Command::AddMember {
                    group: GroupIdentifier::Name(GroupName::parse(SYSTEM_ADMINISTRATORS)?),
                    user: UserIdentifier::Id(account),
                }
            }
            Some(_) => return Ok(()),
        };
        run(service, &actor, command).await?;
    }
    bail!("bootstrapping the administrators did not settle in {STEPS_MAX} steps")
}

async fn look(service: &Service, client_id: &str) -> anyhow::Result<Seen> {
    let client_id = client_id.to_owned();
    let name = GroupIdentifier::Name(GroupName::parse(SYSTEM_ADMINISTRATORS)?);
    service
        .read(move |conn| {
            let account = read_model::service_account(conn, &client_id)?;
            let state = SqliteState::new(conn);
            let group = match state.group(&name)? {
                None => None,
                Some(group) => Some(GroupSeen {
                    // Whether a system group is empty, counting child groups' members.
                    has_member: state.left_empty(&Removal::Nothing)?.is_none(),
                    account_is_member: match account {
                        Some(account) => state.is_direct_member(group.id, account)?,
                        None => false,
                    },
                }),
            };
            Ok(Seen { account, group })
        })
        .await
        .map_err(explain)
}

fn create_account(user_id: Uuid, client_id: &str, username: &Username) -> anyhow::Result<Command> {
    let user = NewUser {
        username: username.clone(),
        // `.invalid` is reserved (RFC 2606): this address can never receive mail.
        email: Email::parse(format!("{client_id}@clients.membership.invalid"))?,
        profile: Profile {
            firstname: Some("Service account".into()),
            lastname: Some(client_id.into()),
            ..Profile::default()
        },
        client_id: Some(client_id.into()),
        scopes: Vec::new(),
    };
    Ok(Command::CreateUser {
        user_id,
        user,
        password_hash: None,
    })
}

fn create_group() -> anyhow::Result<Command> {
    Ok(Command::CreateGroup {
        group_id: Uuid::new_v4(),
        group: NewGroup {
            name: GroupName::parse(SYSTEM_ADMINISTRATORS)?,
            description: Some("Members may call every API of this service.".into()),
            group_type: GroupType::Sys,
            custom: Custom::new(),
            external_id: None,
        },
        members: Vec::new(),
    })
}

/// Runs one step. `Ok(false)` when another instance got there first: its event was
/// applied, ours rejected, and the next look sees the winner's.
async fn run(service: &Service, actor: &Actor, command: Command) -> anyhow::Result<bool> {
    let step = match &command {
        Command::CreateUser { .. } => "created the service account",
        Command::CreateGroup { .. } => "created System Administrators",
        _ => "added the service account to System Administrators",
    };
    match service
        .execute(
            Principal::Service(actor.clone()),
            Write::new(Uuid::now_v7()),
            command,
        )
        .await
    {
        Ok(_) => {
            tracing::info!(client_id = %actor.username, "{step}");
            Ok(true)
        }
        Err(ServiceError::ConcurrentModification { .. }) => Ok(false),
        Err(error) => Err(explain(error)),
    }
}

fn explain(error: ServiceError) -> anyhow::Error {
    match error {
        ServiceError::Unexpected(error) => error.context("bootstrapping the administrators"),
        other => anyhow::Error::new(other).context("bootstrapping the administrators"),
    }
}

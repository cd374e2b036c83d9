//! The service makes what it needs to be administered at all: the System Administrators
//! group and a service account for the bootstrap API client, as ordinary events, and puts
//! the account in the group when the account is new or the group has no member. Each step
//! checks the read model first, so starting again appends nothing, and an account an
//! administrator later removed from the group stays removed. The last member can never be
//! removed, so an empty group means that an earlier start was interrupted.

use uuid::Uuid;

use crate::domain::{
    Actor, Command, Custom, Email, GroupIdentifier, GroupName, GroupType, NewGroup, NewUser,
    Profile, State, UserIdentifier, Username,
};
use crate::http::ApiError;
use crate::read_model::{self, SqliteState};
use crate::service::{Principal, Service};

pub const SYSTEM_ADMINISTRATORS: &str = "System Administrators";

pub async fn ensure_administrator(service: &Service, client_id: &str) -> anyhow::Result<()> {
    let group = GroupIdentifier::Name(GroupName::parse(SYSTEM_ADMINISTRATORS)?);
    let username = Username::parse(format!("svc.{client_id}"))?;
    let (account, new_account) = match find_account(service, client_id).await? {
        Some(id) => (id, false),
        None => (create_account(service, client_id, &username).await?, true),
    };
    let actor = Actor {
        user_id: account,
        username,
    };
    let existing = {
        let group = group.clone();
        service
            .read(move |conn| {
                let state = SqliteState(conn);
                let Some(found) = state.group(&group)? else {
                    return Ok(None);
                };
                // No user has the nil id, so this asks whether the group has any member.
                Ok(Some(state.has_member_other_than(found.id, Uuid::nil())?))
            })
            .await?
    };
    if existing.is_none() {
        let command = Command::CreateGroup {
            group_id: Uuid::new_v4(),
            group: NewGroup {
                name: GroupName::parse(SYSTEM_ADMINISTRATORS)?,
                description: Some("Members may call every API of this service.".into()),
                group_type: GroupType::Sys,
                custom: Custom::new(),
            },
        };
        run(service, &actor, command).await?;
        tracing::info!("created System Administrators");
    }
    let has_member = existing.unwrap_or(false);
    if new_account || !has_member {
        let command = Command::AddMember {
            group,
            user: UserIdentifier::Id(account),
        };
        run(service, &actor, command).await?;
    }
    Ok(())
}

async fn create_account(
    service: &Service,
    client_id: &str,
    username: &Username,
) -> anyhow::Result<Uuid> {
    let user_id = Uuid::new_v4();
    let actor = Actor {
        user_id,
        username: username.clone(),
    };
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
    };
    let command = Command::CreateUser {
        user_id,
        user,
        password_hash: None,
    };
    run(service, &actor, command).await?;
    tracing::info!(user_id = %user_id, client_id, "created the service account");
    Ok(user_id)
}

async fn find_account(service: &Service, client_id: &str) -> anyhow::Result<Option<Uuid>> {
    let client_id = client_id.to_owned();
    service
        .read(move |conn| Ok(read_model::service_account(conn, &client_id)?))
        .await
        .map_err(explain)
}

async fn run(service: &Service, actor: &Actor, command: Command) -> anyhow::Result<()> {
    service
        .execute(Principal::Service(actor.clone()), Uuid::now_v7(), command)
        .await
        .map_err(explain)
}

fn explain(error: ApiError) -> anyhow::Error {
    match error {
        ApiError::Internal(error) => error.context("bootstrapping the administrators"),
        other => anyhow::anyhow!(
            "bootstrapping the administrators: {other} ({})",
            other.code()
        ),
    }
}

//! Membership of users in groups: add, remove (the seed call), check, list.

use actix_web::{HttpRequest, HttpResponse, web};

use super::extract::{Caller, group_param, user_param};
use super::{ApiError, ListQuery};
use crate::domain::{Command, DomainError, InvalidName, UserIdentifier};
use crate::service::{Service, ServiceError, UserScope, Write};

/// `DELETE .../groups/{groupIdentifier}/users/{userIdentifier}`
pub async fn remove(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let command = Command::RemoveMember {
        group: group_param(&req)?,
        user: user_param(&req)?,
    };
    service.execute_for(caller.0, write, command).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The most users or groups one bulk add may name.
const BULK_MAX: usize = 1000;

/// The identifiers of a bulk add, each parsed, at most [`BULK_MAX`].
fn identifiers<T>(
    given: &[String],
    parse: fn(&str) -> Result<T, InvalidName>,
) -> Result<Vec<T>, ApiError> {
    if given.len() > BULK_MAX {
        return Err(ApiError::BadRequest(format!(
            "A bulk add takes at most {BULK_MAX} identifiers; send several."
        )));
    }
    given
        .iter()
        .enumerate()
        .map(|(index, text)| {
            parse(text).map_err(|reason| {
                ApiError::BadRequest(format!(
                    "The identifier at index {index} is not valid: it {reason}."
                ))
            })
        })
        .collect()
}

/// `POST .../groups/{groupIdentifier}/users`: a JSON array of user identifiers (ids, as
/// documented, or usernames or emails). All of them become members, or none does: 404
/// `UserNotFound` with `data.missing` naming each identifier that matched no user.
pub async fn add_many(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
    body: web::Json<Vec<String>>,
) -> Result<HttpResponse, ApiError> {
    let group = group_param(&req)?;
    let add = |users| Command::AddMembers { group, users };
    bulk_add(
        &service,
        caller,
        write,
        body.into_inner(),
        UserIdentifier::parse,
        add,
    )
    .await
}

/// Runs a bulk add over the `given` identifiers; a 404 names the missing ones as given.
pub(super) async fn bulk_add<T: ToString>(
    service: &Service,
    caller: Caller,
    write: Write,
    given: Vec<String>,
    parse: fn(&str) -> Result<T, InvalidName>,
    command: impl FnOnce(Vec<T>) -> Command,
) -> Result<HttpResponse, ApiError> {
    let ids = identifiers(&given, parse)?;
    // The domain names a missing identifier in its canonical form (a lowercase GUID).
    let canonical: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let as_given = |missing: Vec<String>| -> Vec<String> {
        missing
            .into_iter()
            .map(|m| match canonical.iter().position(|c| *c == m) {
                Some(index) => given[index].clone(),
                None => m,
            })
            .collect()
    };
    match service.execute_for(caller.0, write, command(ids)).await {
        Ok(_) => Ok(HttpResponse::NoContent().finish()),
        Err(ServiceError::Refused(DomainError::UsersNotFound { missing })) => {
            let missing = as_given(missing);
            Err(DomainError::UsersNotFound { missing }.into())
        }
        Err(ServiceError::Refused(DomainError::GroupsNotFound { missing })) => {
            let missing = as_given(missing);
            Err(DomainError::GroupsNotFound { missing }.into())
        }
        Err(error) => Err(error.into()),
    }
}

/// `PUT .../groups/{groupIdentifier}/users/{userIdentifier}`; adding a member twice is fine.
pub async fn add(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let command = Command::AddMember {
        group: group_param(&req)?,
        user: user_param(&req)?,
    };
    service.execute_for(caller.0, write, command).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `HEAD .../groups/{groupIdentifier}/users/{userIdentifier}`: 204 if the user belongs to
/// the group directly or through a child group, 404 otherwise.
pub async fn check(
    service: web::Data<Service>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (group, user) = (group_param(&req)?, user_param(&req)?);
    if !service.is_member(caller.0, group, user).await? {
        return Err(ApiError::NotMember);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// A member call on `.../groups/{groupIdentifier}/users/`: the user identifier is empty
/// (the group is still checked first, as the contract orders the checks). Without the
/// trailing slash it is a call on the collection, which does not have that method (405).
pub async fn empty_user(_caller: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    group_param(&req)?;
    Err(ApiError::invalid_identifier(
        "userIdentifier",
        InvalidName::Empty,
    ))
}

/// `GET .../groups/{groupIdentifier}/users?includeInherited=`: the direct members (with
/// `includeInherited`, also those through child groups, each once), by username unless
/// `order` says otherwise, a page at a time.
pub async fn list(
    service: web::Data<Service>,
    caller: Caller,
    query: web::Query<ListQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let scope = UserScope::MembersOf {
        group: group_param(&req)?,
        inherited: query.include_inherited,
    };
    query.users(&service, caller, scope).await
}

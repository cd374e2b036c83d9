//! Membership of users in groups: add, remove (the seed call), check, list.

use actix_web::{HttpRequest, HttpResponse, web};

use super::extract::{Caller, LogId, group_param, user_param};
use super::{ApiError, PageQuery, PagedList};
use crate::domain::{Command, InvalidName, State};
use crate::read_model::{MembersPage, SqliteState};
use crate::service::Service;

/// `DELETE .../groups/{groupIdentifier}/users/{userIdentifier}`
pub async fn remove(
    service: web::Data<Service>,
    caller: Caller,
    log_id: LogId,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let command = Command::RemoveMember {
        group: group_param(&req)?,
        user: user_param(&req)?,
    };
    service.execute_for(caller, log_id, command).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT .../groups/{groupIdentifier}/users/{userIdentifier}`; adding a member twice is fine.
pub async fn add(
    service: web::Data<Service>,
    caller: Caller,
    log_id: LogId,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let command = Command::AddMember {
        group: group_param(&req)?,
        user: user_param(&req)?,
    };
    service.execute_for(caller, log_id, command).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `HEAD .../groups/{groupIdentifier}/users/{userIdentifier}`: 204 if the user belongs to
/// the group directly or through a child group, 404 otherwise.
pub async fn check(
    service: web::Data<Service>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let group = group_param(&req)?;
    let user = user_param(&req)?;
    service
        .query(caller.0, move |conn| {
            let state = SqliteState(conn);
            let group = state.require_group(&group)?;
            let user = state.require_user(&user)?;
            if state.is_direct_member(group.id, user.id)?
                || state.member_through(group.id, user.id)?.is_some()
            {
                Ok(())
            } else {
                Err(ApiError::NotMember)
            }
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A member call on `.../groups/{groupIdentifier}/users/`: the user identifier is empty
/// (the group is still checked first, as the contract orders the checks). Without the
/// trailing slash it is a call on the collection, which does not have that method.
pub async fn empty_user(_caller: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if !req.uri().path().ends_with('/') {
        return Err(ApiError::MethodNotAllowed);
    }
    group_param(&req)?;
    Err(ApiError::invalid_identifier(
        "userIdentifier",
        InvalidName::Empty,
    ))
}

/// `GET .../groups/{groupIdentifier}/users`: the direct members, a page at a time.
pub async fn list(
    service: web::Data<Service>,
    caller: Caller,
    query: web::Query<PageQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let group = group_param(&req)?;
    let page = query.page(service.page_size_max)?;
    let list = service
        .query(caller.0, move |conn| {
            let group = SqliteState(conn).require_group(&group)?;
            let members = MembersPage::load(conn, group.id, page.offset(), page.size)?;
            Ok(PagedList::new(page, members.total_count, members.items))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

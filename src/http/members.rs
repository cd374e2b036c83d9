//! Membership of users in groups: add, remove (the seed call), check, list.

use actix_web::{HttpRequest, HttpResponse, web};

use super::extract::{Caller, LogId, group_at, user_at};
use super::{ApiError, PageQuery, PagedList};
use crate::domain::{Command, DomainError, State};
use crate::read_model::{MembersPage, SqliteState};
use crate::service::{Principal, Service};

/// `DELETE .../groups/{groupIdentifier}/users/{userIdentifier}`
pub async fn remove(
    service: web::Data<Service>,
    caller: Caller,
    log_id: LogId,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let group = group_at(&req, 2)?;
    let user = user_at(&req, 0)?;
    let command = Command::RemoveMember { group, user };
    service
        .execute(Principal::Caller(caller.0), log_id.0, command)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT .../groups/{groupIdentifier}/users/{userIdentifier}`; adding a member twice is fine.
pub async fn add(
    service: web::Data<Service>,
    caller: Caller,
    log_id: LogId,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let group = group_at(&req, 2)?;
    let user = user_at(&req, 0)?;
    let command = Command::AddMember { group, user };
    service
        .execute(Principal::Caller(caller.0), log_id.0, command)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `HEAD .../groups/{groupIdentifier}/users/{userIdentifier}`: 204 if the user belongs to
/// the group directly or through a child group, 404 otherwise.
pub async fn check(
    service: web::Data<Service>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let group = group_at(&req, 2)?;
    let user = user_at(&req, 0)?;
    service
        .query(caller.0, move |conn| {
            let state = SqliteState(conn);
            let group = state.group(&group)?.ok_or(DomainError::GroupNotFound)?;
            let user = state.user(&user)?.ok_or(DomainError::UserNotFound)?;
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

/// `GET .../groups/{groupIdentifier}/users`: the direct members, a page at a time.
pub async fn list(
    service: web::Data<Service>,
    caller: Caller,
    query: web::Query<PageQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let group = group_at(&req, 1)?;
    let page = query.page(service.page_size_max)?;
    let list = service
        .query(caller.0, move |conn| {
            let group = SqliteState(conn)
                .group(&group)?
                .ok_or(DomainError::GroupNotFound)?;
            let members = MembersPage::load(conn, group.id, page.index, page.size)?;
            Ok(PagedList::new(page, members.total_count, members.items))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

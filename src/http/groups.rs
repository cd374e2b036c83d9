//! Groups: `POST .../groups`, `GET .../groups` (a paged list), `GET .../groups/{g}`, and
//! child groups: `PUT`/`DELETE .../groups/{g}/groups/{child}`, `GET .../groups/{g}/groups`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::extract::{Caller, LogId, child_group_param, group_param};
use super::users::{custom, text};
use super::{ApiError, ListQuery, PageQuery, PagedList};
use crate::domain::{Command, DomainError, GroupName, GroupType, NewGroup, State};
use crate::read_model::{self, GroupView, Listed, SqliteState};
use crate::service::Service;

/// The Contensis group model as a client sends it. The documentation's own example
/// capitalises `Description`, so both spellings are taken.
#[derive(Debug, Deserialize)]
pub struct NewGroupBody {
    name: Option<String>,
    #[serde(alias = "Description")]
    description: Option<String>,
    #[serde(rename = "type")]
    group_type: Option<String>,
    custom: Option<Map<String, Value>>,
}

impl NewGroupBody {
    fn parse(self) -> Result<NewGroup, ApiError> {
        let name = GroupName::parse(self.name.unwrap_or_default())
            .map_err(|e| ApiError::unprocessable("name", e))?;
        let group_type = match self.group_type.as_deref() {
            None | Some("contensis") => GroupType::Contensis,
            Some("external") => GroupType::External,
            Some("sys") => {
                return Err(ApiError::unprocessable(
                    "type",
                    "must not be 'sys': system groups are made by the service itself",
                ));
            }
            Some(_) => {
                return Err(ApiError::unprocessable(
                    "type",
                    "must be 'contensis' or 'external'",
                ));
            }
        };
        Ok(NewGroup {
            name,
            description: text("description", self.description)?,
            group_type,
            custom: custom(self.custom)?,
        })
    }
}

/// `POST .../groups`: 201 with the group as stored.
pub async fn create(
    service: web::Data<Service>,
    caller: Caller,
    log_id: LogId,
    body: web::Json<NewGroupBody>,
) -> Result<HttpResponse, ApiError> {
    let group = body.into_inner().parse()?;
    let group_id = Uuid::new_v4();
    let command = Command::CreateGroup { group_id, group };
    service.execute_for(caller, log_id, command).await?;
    let view = service
        .read(move |conn| {
            GroupView::load(conn, group_id)?.ok_or_else(|| {
                anyhow::anyhow!("created group {group_id} is not in the read model").into()
            })
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("groups/{group_id}")))
        .json(view))
}

/// `PUT .../groups/{groupIdentifier}/groups/{childGroupIdentifier}`: the child's members
/// count as the group's members. 409 `GroupCycle` if the group would end up inside itself.
pub async fn add_child(
    service: web::Data<Service>,
    caller: Caller,
    log_id: LogId,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let command = Command::AddChildGroup {
        group: group_param(&req)?,
        child: child_group_param(&req)?,
    };
    service.execute_for(caller, log_id, command).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET .../groups/{groupIdentifier}`: the group by id or name.
pub async fn get(
    service: web::Data<Service>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let group = group_param(&req)?;
    let view = service
        .query(caller.0, move |conn| {
            let found = SqliteState(conn).require_group(&group)?;
            GroupView::load(conn, found.id)?.ok_or_else(|| DomainError::GroupNotFound.into())
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET .../groups?q=&order=&pageIndex=&pageSize=`: groups a page at a time, by name
/// unless `order` says otherwise.
pub async fn list(
    service: web::Data<Service>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page(service.page_size_max)?;
    let q = query.search()?;
    let sorts = query.sorts(Listed::Groups, "name")?;
    let list = service
        .query(caller.0, move |conn| {
            let (total, items) =
                read_model::list_groups(conn, q.as_deref(), &sorts, page.offset(), page.size)?;
            Ok(PagedList::new(page, total, items))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// `DELETE .../groups/{groupIdentifier}/groups/{childGroupIdentifier}`: 409
/// `GroupNotChild` if it is not a direct child, `LastAdministrator` if it would take the
/// last member of System Administrators with it.
pub async fn remove_child(
    service: web::Data<Service>,
    caller: Caller,
    log_id: LogId,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let command = Command::RemoveChildGroup {
        group: group_param(&req)?,
        child: child_group_param(&req)?,
    };
    service.execute_for(caller, log_id, command).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET .../groups/{groupIdentifier}/groups`: the direct child groups, a page at a time.
pub async fn list_children(
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
            let (total, items) =
                read_model::list_child_groups(conn, group.id, page.offset(), page.size)?;
            Ok(PagedList::new(page, total, items))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

//! Groups: `POST .../groups`, `GET .../groups` (a paged list), `GET`, `PUT` and `DELETE`
//! `.../groups/{g}`, and child groups: `PUT`/`DELETE .../groups/{g}/groups/{child}`,
//! `GET .../groups/{g}/groups`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::extract::{Caller, child_group_param, group_param};
use super::members::bulk_add;
use super::users::{custom, text};
use super::{ApiError, ListQuery, PageQuery, PagedList};
use crate::domain::{Command, GroupIdentifier, GroupName, GroupType, NewGroup};
use crate::read_model::GroupView;
use crate::service::{GroupScope, Service, Write};

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
    /// The group to create; without a type, a `contensis` group.
    fn parse(self) -> Result<NewGroup, ApiError> {
        let group_type = match self.group_type.as_deref() {
            None => GroupType::Contensis,
            Some("sys") => {
                return Err(ApiError::unprocessable(
                    "type",
                    "must not be 'sys': system groups are made by the service itself",
                ));
            }
            Some(other) => parse_type(other)?,
        };
        self.parse_with(group_type, None)
    }

    /// The group's new details; without a type, the type it has. Whether a type may
    /// change is the domain's call, since only it knows the current one.
    fn parse_update(self, kept: Option<&str>) -> Result<(NewGroup, bool), ApiError> {
        let keep_type = self.group_type.is_none();
        let group_type = match self.group_type.as_deref() {
            None => GroupType::Contensis,
            Some(other) => parse_type(other)?,
        };
        Ok((self.parse_with(group_type, kept)?, keep_type))
    }

    /// A name that parses as a GUID is refused (on this API such an identifier is an id),
    /// unless it is `kept`: the name an identity provider gave the group, left as it is.
    fn parse_with(self, group_type: GroupType, kept: Option<&str>) -> Result<NewGroup, ApiError> {
        let name = self.name.unwrap_or_default();
        let name = match kept == Some(name.as_str()) {
            true => GroupName::parse(name),
            false => GroupName::parse_plain(name),
        }
        .map_err(|e| ApiError::unprocessable("name", e))?;
        Ok(NewGroup {
            name,
            description: text("description", self.description)?,
            group_type,
            custom: custom(self.custom)?,
            external_id: None,
        })
    }
}

fn parse_type(text: &str) -> Result<GroupType, ApiError> {
    match text {
        "contensis" => Ok(GroupType::Contensis),
        "external" => Ok(GroupType::External),
        "sys" => Ok(GroupType::Sys),
        _ => Err(ApiError::unprocessable(
            "type",
            "must be 'contensis' or 'external'",
        )),
    }
}

/// `POST .../groups`: 201 with the group as stored.
pub async fn create(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    body: web::Json<NewGroupBody>,
) -> Result<HttpResponse, ApiError> {
    let group = body.into_inner().parse()?;
    let group_id = Uuid::new_v4();
    let command = Command::CreateGroup {
        group_id,
        group,
        members: Vec::new(),
    };
    // A retry under the same idempotency key answers with what the first request made.
    let group_id = service
        .execute_for(caller.0, write, command)
        .await?
        .unwrap_or(group_id);
    let view = load(&service, group_id).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("groups/{group_id}")))
        .insert_header(etag(&view))
        .json(view))
}

/// The group's version as an entity tag, for `If-Match` on later writes.
fn etag(view: &GroupView) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{}\"", view.version))
}

/// The group as stored; gone if a deletion got in since it was written.
async fn load(service: &Service, group_id: Uuid) -> Result<GroupView, ApiError> {
    Ok(service.stored_group(group_id).await?)
}

/// `PUT .../groups/{groupIdentifier}`: replaces the group's details; 200 with the group.
/// A system group keeps its name and type (403 `SystemGroup`).
pub async fn update(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
    body: web::Json<NewGroupBody>,
) -> Result<HttpResponse, ApiError> {
    let group = group_param(&req)?;
    let body = body.into_inner();
    // Only a name this API would not set needs the one it replaces.
    let provider_only = body
        .name
        .as_deref()
        .is_some_and(GroupName::is_provider_only);
    let kept = match provider_only {
        true => Some(find(&service, caller, group.clone()).await?.name),
        false => None,
    };
    let (details, keep_type) = body.parse_update(kept.as_deref())?;
    let command = Command::UpdateGroup {
        group: group.clone(),
        details,
        keep_type,
    };
    // The group the update (or, for a retry, the first request) was about; an update
    // that changed nothing appended nothing, and the group is where the request named it.
    let view = match service.execute_for(caller.0, write, command).await? {
        Some(group_id) => load(&service, group_id).await?,
        None => find(&service, caller, group).await?,
    };
    Ok(HttpResponse::Ok().insert_header(etag(&view)).json(view))
}

/// The group by id or name, for an administrator.
async fn find(
    service: &Service,
    caller: Caller,
    group: GroupIdentifier,
) -> Result<GroupView, ApiError> {
    Ok(service.group(caller.0, group).await?)
}

/// `DELETE .../groups/{groupIdentifier}`: removes every member, child group and parent
/// (one event each), then the group. 403 `SystemGroup` for System Administrators, 409
/// `LastAdministrator` if the administrators belong to it only through this group.
pub async fn delete(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let command = Command::DeleteGroup {
        group: group_param(&req)?,
    };
    service.execute_for(caller.0, write, command).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT .../groups/{groupIdentifier}/groups/{childGroupIdentifier}`: the child's members
/// count as the group's members. 409 `GroupCycle` if the group would end up inside itself.
pub async fn add_child(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let command = Command::AddChildGroup {
        group: group_param(&req)?,
        child: child_group_param(&req)?,
    };
    service.execute_for(caller.0, write, command).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST .../groups/{groupIdentifier}/groups`: a JSON array of group identifiers, all
/// made child groups or none: 404 `GroupNotFound` with `data.missing` naming the unknown
/// ones, 409 `GroupCycle` if any would put the group inside itself. The official client's
/// `addChildGroups`.
pub async fn add_children(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
    body: web::Json<Vec<String>>,
) -> Result<HttpResponse, ApiError> {
    let group = group_param(&req)?;
    let add = |children| Command::AddChildGroups { group, children };
    bulk_add(
        &service,
        caller,
        write,
        body.into_inner(),
        GroupIdentifier::parse,
        add,
    )
    .await
}

/// `GET .../groups/{groupIdentifier}`: the group by id or name.
pub async fn get(
    service: web::Data<Service>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let view = find(&service, caller, group_param(&req)?).await?;
    Ok(HttpResponse::Ok().insert_header(etag(&view)).json(view))
}

/// `GET .../groups?q=&order=&pageIndex=&pageSize=`: groups a page at a time, by name
/// unless `order` says otherwise.
pub async fn list(
    service: web::Data<Service>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    query.groups(&service, caller, GroupScope::All).await
}

/// `DELETE .../groups/{groupIdentifier}/groups/{childGroupIdentifier}`: 409
/// `GroupNotChild` if it is not a direct child, `LastAdministrator` if it would take the
/// last member of System Administrators with it.
pub async fn remove_child(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let command = Command::RemoveChildGroup {
        group: group_param(&req)?,
        child: child_group_param(&req)?,
    };
    service.execute_for(caller.0, write, command).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET .../groups/{groupIdentifier}/groups?includeInherited=&includeSelf=`: the direct
/// child groups (with `includeInherited`, every group below; with `includeSelf`, the group
/// too), by name unless `order` says otherwise, a page at a time.
pub async fn list_children(
    service: web::Data<Service>,
    caller: Caller,
    query: web::Query<ListQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let scope = GroupScope::ChildrenOf {
        group: group_param(&req)?,
        inherited: query.include_inherited,
        include_self: query.include_self,
    };
    query.groups(&service, caller, scope).await
}

/// `GET .../groups/{groupIdentifier}/history?pageIndex=&pageSize=`: the group's changes,
/// newest first: who added or removed which member or child group, when, in which request
/// (`logId`), straight from the events.
pub async fn history(
    service: web::Data<Service>,
    caller: Caller,
    query: web::Query<PageQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let group = group_param(&req)?;
    let page = query.page(service.page_size_max)?;
    let list = (service.history(caller.0, group, page.offset(), page.size)).await?;
    Ok(HttpResponse::Ok().json(PagedList::of(page, list)))
}

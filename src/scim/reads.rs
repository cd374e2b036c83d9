//! `GET /Users`, `GET /Users/{id}`, `GET /Groups`, `GET /Groups/{id}`: users and groups
//! as SCIM shows them, each read from the service like every other protocol's reads.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use scim_v2::models::errors::ScimType;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::resources::{self, MEMBERS_SHOWN_MAX, Paging, Projection};
use super::{ScimCaller, ScimError, scim_json};
use crate::domain::{GroupIdentifier, UserIdentifier};
use crate::read_model::filter::{Filter as ReadFilter, Over};
use crate::read_model::{GroupView, Listed, Sort, UserView};
use crate::service::{GroupScope, ListRequest, Service, UserScope};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadQuery {
    attributes: Option<String>,
    excluded_attributes: Option<String>,
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
}

impl ReadQuery {
    fn projection(&self) -> Projection {
        Projection::new(
            self.attributes.as_deref(),
            self.excluded_attributes.as_deref(),
        )
    }
}

/// A SCIM id: this service's ids are UUIDs, so anything else names nothing.
pub(super) fn id_of(text: &str, kind: &str) -> Result<Uuid, ScimError> {
    Uuid::try_parse(text).map_err(|_| ScimError::not_found(format!("There is no {kind} {text}.")))
}

/// Lists in the order resources were made, ties broken by id: stable across pages.
fn by_creation(listed: Listed) -> Vec<Sort> {
    listed.sort("created").into_iter().collect()
}

/// A page of a list, `filter` holding for each item.
fn page(offset: u64, limit: u64, listed: Listed, filter: Option<ReadFilter>) -> ListRequest {
    ListRequest {
        search: None,
        filter,
        sorts: by_creation(listed),
        offset,
        limit,
    }
}

/// The groups a user is a direct member of, as (id, name).
pub(super) async fn groups_of(
    service: &Service,
    caller: ScimCaller,
    user: Uuid,
) -> Result<Vec<(String, String)>, ScimError> {
    let scope = GroupScope::OfUser {
        user: UserIdentifier::Id(user),
        inherited: false,
    };
    let request = page(0, MEMBERS_SHOWN_MAX, Listed::Groups, None);
    let groups = service.list_groups(caller.0, scope, request).await?;
    Ok((groups.items.into_iter())
        .map(|group| (group.id.to_string(), group.name))
        .collect())
}

/// A user as SCIM shows it, computing its groups only when they are shown.
async fn show_user(
    service: &Service,
    caller: ScimCaller,
    req: &HttpRequest,
    projection: &Projection,
    user: &UserView,
) -> Result<Value, ScimError> {
    let groups = match projection.shows("groups") {
        true => groups_of(service, caller, user.id).await?,
        false => Vec::new(),
    };
    Ok(projection.apply(resources::user(req, user, &groups)))
}

pub async fn user(
    service: web::Data<Service>,
    caller: ScimCaller,
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<ReadQuery>,
) -> Result<HttpResponse, ScimError> {
    service.require_administrator(caller.0).await?;
    let id = id_of(&id, "user")?;
    let user = service.user(caller.0, UserIdentifier::Id(id)).await?;
    let shown = show_user(&service, caller, &req, &query.projection(), &user).await?;
    Ok(scim_json(StatusCode::OK, &shown))
}

pub async fn users(
    service: web::Data<Service>,
    caller: ScimCaller,
    req: HttpRequest,
    query: web::Query<ReadQuery>,
) -> Result<HttpResponse, ScimError> {
    service.require_administrator(caller.0).await?;
    let paging = Paging::new(query.start_index, query.count, service.page_size_max);
    let filter = resources::filter(query.filter.as_deref(), Over::Users)?;
    let request = page(paging.offset(), paging.count, Listed::Users, filter);
    let list = service
        .list_users(caller.0, UserScope::All, request)
        .await?;
    let projection = query.projection();
    let mut shown = Vec::with_capacity(list.items.len());
    for user in &list.items {
        shown.push(show_user(&service, caller, &req, &projection, user).await?);
    }
    Ok(scim_json(
        StatusCode::OK,
        &resources::list(paging, list.total, shown),
    ))
}

/// What to do with a group too large to show its members in one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TooMany {
    /// A read of the one group: 400 `tooMany`, saying how to read it.
    Refuse,
    /// A list, or the answer to a write that was made: the group without `members`.
    Omit,
}

/// The ids of a group's direct members; for a group too large to show in one answer, as
/// `too_many` says.
async fn members_of(
    service: &Service,
    caller: ScimCaller,
    group: &GroupView,
    too_many: TooMany,
) -> Result<Option<Vec<Uuid>>, ScimError> {
    let scope = UserScope::MembersOf {
        group: GroupIdentifier::Id(group.id),
        inherited: false,
    };
    let request = page(0, MEMBERS_SHOWN_MAX, Listed::Users, None);
    let members = service.list_users(caller.0, scope, request).await?;
    if members.total > MEMBERS_SHOWN_MAX && too_many == TooMany::Omit {
        return Ok(None);
    }
    if members.total > MEMBERS_SHOWN_MAX {
        return Err(ScimError::new(
            StatusCode::BAD_REQUEST,
            Some(ScimType::TooMany),
            format!(
                "The group has {} members, more than the {MEMBERS_SHOWN_MAX} one answer shows: \
                 read it with excludedAttributes=members.",
                members.total
            ),
        ));
    }
    Ok(Some(
        members.items.into_iter().map(|user| user.id).collect(),
    ))
}

pub(super) async fn show_group(
    service: &Service,
    caller: ScimCaller,
    req: &HttpRequest,
    projection: &Projection,
    group: &GroupView,
    too_many: TooMany,
) -> Result<Value, ScimError> {
    let members = match projection.shows("members") {
        true => members_of(service, caller, group, too_many).await?,
        false => None,
    };
    let shown = resources::group(req, group, members.as_deref());
    Ok(projection.apply(shown))
}

pub async fn group(
    service: web::Data<Service>,
    caller: ScimCaller,
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<ReadQuery>,
) -> Result<HttpResponse, ScimError> {
    let id = id_of(&id, "group")?;
    let group = service.group(caller.0, GroupIdentifier::Id(id)).await?;
    let projection = query.projection();
    let shown = show_group(&service, caller, &req, &projection, &group, TooMany::Refuse).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, resources::etag(group.version)))
        .content_type(super::SCIM_JSON)
        .json(shown))
}

pub async fn groups(
    service: web::Data<Service>,
    caller: ScimCaller,
    req: HttpRequest,
    query: web::Query<ReadQuery>,
) -> Result<HttpResponse, ScimError> {
    service.require_administrator(caller.0).await?;
    let paging = Paging::new(query.start_index, query.count, service.page_size_max);
    let filter = resources::filter(query.filter.as_deref(), Over::Groups)?;
    let request = page(paging.offset(), paging.count, Listed::Groups, filter);
    let list = service
        .list_groups(caller.0, GroupScope::All, request)
        .await?;
    let projection = query.projection();
    let mut shown = Vec::with_capacity(list.items.len());
    for group in &list.items {
        shown.push(show_group(&service, caller, &req, &projection, group, TooMany::Omit).await?);
    }
    Ok(scim_json(
        StatusCode::OK,
        &resources::list(paging, list.total, shown),
    ))
}

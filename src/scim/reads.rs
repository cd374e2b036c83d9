//! `GET /Users`, `GET /Users/{id}`, `GET /Groups`, `GET /Groups/{id}`: users and groups
//! as SCIM shows them, each read from the service like every other protocol's reads.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use scim_v2::models::errors::ScimType;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::resources::{self, Equals, MEMBERS_SHOWN_MAX, Paging, Projection};
use super::{ScimCaller, ScimError, scim_json};
use crate::domain::{DomainError, Email, GroupIdentifier, GroupName, UserIdentifier, Username};
use crate::read_model::{GroupView, Listed, Sort, UserView};
use crate::service::{GroupScope, ListRequest, Service, ServiceError, UserScope};

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

/// The first `limit` of a list, with its total.
fn page(offset: u64, limit: u64, listed: Listed) -> ListRequest {
    ListRequest {
        search: None,
        sorts: by_creation(listed),
        offset,
        limit,
    }
}

/// A lookup that found nothing is an empty result, not an error.
fn found<T>(result: Result<T, ServiceError>) -> Result<Option<T>, ScimError> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(ServiceError::Refused(DomainError::UserNotFound | DomainError::GroupNotFound)) => {
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

fn unfilterable(attribute: &str) -> ScimError {
    ScimError::new(
        StatusCode::BAD_REQUEST,
        Some(ScimType::InvalidFilter),
        format!("Filtering on {attribute} is not answered so far."),
    )
}

/// The groups a user is a direct member of, as (id, name).
async fn groups_of(
    service: &Service,
    caller: ScimCaller,
    user: Uuid,
) -> Result<Vec<(String, String)>, ScimError> {
    let scope = GroupScope::OfUser {
        user: UserIdentifier::Id(user),
        inherited: false,
    };
    let request = page(0, MEMBERS_SHOWN_MAX, Listed::Groups);
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
    let (total, users) = match resources::equals(query.filter.as_deref())? {
        None => {
            let request = page(paging.offset(), paging.count, Listed::Users);
            let list = service
                .list_users(caller.0, UserScope::All, request)
                .await?;
            (list.total, list.items)
        }
        Some(equals) => {
            let found = match user_named(&equals)? {
                Some(user) => found(service.user(caller.0, user).await)?,
                None => None,
            };
            one_page(found, paging)
        }
    };
    let projection = query.projection();
    let mut shown = Vec::with_capacity(users.len());
    for user in &users {
        shown.push(show_user(&service, caller, &req, &projection, user).await?);
    }
    Ok(scim_json(
        StatusCode::OK,
        &resources::list(paging, total, shown),
    ))
}

/// The user a filter names, if any user could have that name (a `userName` with `@` is
/// no username here).
fn user_named(equals: &Equals) -> Result<Option<UserIdentifier>, ScimError> {
    let value = equals.value.clone();
    Ok(match equals.attribute.as_str() {
        "username" => Username::parse(value).ok().map(UserIdentifier::Username),
        "id" => Uuid::try_parse(&value).ok().map(UserIdentifier::Id),
        "emails" | "emails.value" => Email::parse(value).ok().map(UserIdentifier::Email),
        other => return Err(unfilterable(other)),
    })
}

/// The page of a result of at most one resource.
fn one_page<T>(found: Option<T>, paging: Paging) -> (u64, Vec<T>) {
    let total = u64::from(found.is_some());
    let shown = found.filter(|_| paging.offset() == 0 && paging.count > 0);
    (total, shown.into_iter().collect())
}

/// A group's direct members as (id, username), or 400 `tooMany` for a group too large to
/// show in one answer.
async fn members_of(
    service: &Service,
    caller: ScimCaller,
    group: &GroupView,
) -> Result<Vec<(String, String)>, ScimError> {
    let scope = UserScope::MembersOf {
        group: GroupIdentifier::Id(group.id),
        inherited: false,
    };
    let request = page(0, MEMBERS_SHOWN_MAX, Listed::Users);
    let members = service.list_users(caller.0, scope, request).await?;
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
    Ok((members.items.into_iter())
        .map(|user| (user.id.to_string(), user.username))
        .collect())
}

pub(super) async fn show_group(
    service: &Service,
    caller: ScimCaller,
    req: &HttpRequest,
    projection: &Projection,
    group: &GroupView,
) -> Result<Value, ScimError> {
    let members = match projection.shows("members") {
        true => Some(members_of(service, caller, group).await?),
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
    let shown = show_group(&service, caller, &req, &query.projection(), &group).await?;
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
    let (total, groups) = match resources::equals(query.filter.as_deref())? {
        None => {
            let request = page(paging.offset(), paging.count, Listed::Groups);
            let list = service
                .list_groups(caller.0, GroupScope::All, request)
                .await?;
            (list.total, list.items)
        }
        Some(equals) => {
            let value = equals.value.clone();
            let named = match equals.attribute.as_str() {
                "displayname" => GroupName::parse(value).ok().map(GroupIdentifier::Name),
                "id" => Uuid::try_parse(&value).ok().map(GroupIdentifier::Id),
                "externalid" => {
                    let found = service.group_by_external_id(caller.0, value).await?;
                    let page = one_page(found, paging);
                    return list_groups(&service, caller, &req, &query, paging, page).await;
                }
                other => return Err(unfilterable(other)),
            };
            let found = match named {
                Some(group) => found(service.group(caller.0, group).await)?,
                None => None,
            };
            one_page(found, paging)
        }
    };
    list_groups(&service, caller, &req, &query, paging, (total, groups)).await
}

/// A page of groups as a list response.
async fn list_groups(
    service: &Service,
    caller: ScimCaller,
    req: &HttpRequest,
    query: &ReadQuery,
    paging: Paging,
    (total, groups): (u64, Vec<GroupView>),
) -> Result<HttpResponse, ScimError> {
    let projection = query.projection();
    let mut shown = Vec::with_capacity(groups.len());
    for group in &groups {
        shown.push(show_group(service, caller, req, &projection, group).await?);
    }
    Ok(scim_json(
        StatusCode::OK,
        &resources::list(paging, total, shown),
    ))
}

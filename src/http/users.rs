//! Users: `POST .../users`, `GET .../users` (a paged list), `GET .../users/{userIdentifier}`,
//! and the groups of a user: `GET .../users/{u}/groups`, `HEAD .../users/{u}/groups/{g,...}`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::extract::{Caller, LogId, groups_param, user_param};
use super::{ApiError, ListQuery, PageQuery, PagedList};
use crate::auth::HashError;
use crate::domain::{Command, Custom, DomainError, Email, NewUser, Profile, State, Username};
use crate::read_model::{self, Listed, SqliteState, UserView};
use crate::service::Service;

/// Longest free-text field (names, timezone, language), in characters.
const TEXT_MAX_CHARS: usize = 256;
const CUSTOM_MAX_ENTRIES: usize = 64;
const CUSTOM_KEY_MAX_CHARS: usize = 64;
const CUSTOM_VALUE_MAX_CHARS: usize = 1024;
const PASSWORD_MIN_CHARS: usize = 8;
const PASSWORD_MAX_BYTES: usize = 1024;

/// The Contensis user model as a client sends it. Both spellings of the name fields are
/// taken: the documentation's (`firstname`) and the JavaScript client's (`firstName`).
#[derive(Debug, Deserialize)]
pub struct NewUserBody {
    username: Option<String>,
    email: Option<String>,
    #[serde(alias = "firstName")]
    firstname: Option<String>,
    #[serde(alias = "lastName")]
    lastname: Option<String>,
    timezone: Option<String>,
    language: Option<String>,
    custom: Option<Map<String, Value>>,
    credentials: Option<CredentialsBody>,
}

#[derive(Debug, Deserialize)]
pub struct CredentialsBody {
    password: Option<String>,
}

/// An optional free-text field: bounded and printable.
pub(super) fn text(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    if value.chars().count() > TEXT_MAX_CHARS {
        return Err(ApiError::unprocessable(
            field,
            format!("must be at most {TEXT_MAX_CHARS} characters long"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            field,
            "must not contain control characters",
        ));
    }
    Ok(Some(value))
}

/// Custom properties: a bounded object of string values.
pub(super) fn custom(value: Option<Map<String, Value>>) -> Result<Custom, ApiError> {
    let map = value.unwrap_or_default();
    if map.len() > CUSTOM_MAX_ENTRIES {
        return Err(ApiError::unprocessable(
            "custom",
            format!("must have at most {CUSTOM_MAX_ENTRIES} properties"),
        ));
    }
    map.into_iter()
        .map(|(key, value)| {
            let field = format!("custom.{key}");
            if key.is_empty() || key.chars().count() > CUSTOM_KEY_MAX_CHARS {
                return Err(ApiError::unprocessable(
                    field,
                    format!("must be named with 1 to {CUSTOM_KEY_MAX_CHARS} characters"),
                ));
            }
            match value {
                Value::String(text) if text.chars().count() <= CUSTOM_VALUE_MAX_CHARS => {
                    Ok((key, text))
                }
                _ => Err(ApiError::unprocessable(
                    field,
                    format!("must be a string of at most {CUSTOM_VALUE_MAX_CHARS} characters"),
                )),
            }
        })
        .collect()
}

impl NewUserBody {
    fn parse(self) -> Result<(NewUser, Option<String>), ApiError> {
        let username = Username::parse(self.username.unwrap_or_default())
            .map_err(|e| ApiError::unprocessable("username", e))?;
        let email = Email::parse(self.email.unwrap_or_default())
            .map_err(|e| ApiError::unprocessable("email", e))?;
        let profile = Profile {
            firstname: text("firstname", self.firstname)?,
            lastname: text("lastname", self.lastname)?,
            timezone: text("timezone", self.timezone)?,
            language: text("language", self.language)?,
            custom: custom(self.custom)?,
        };
        let password = self.credentials.and_then(|c| c.password);
        let password_fits =
            |p: &String| p.chars().count() >= PASSWORD_MIN_CHARS && p.len() <= PASSWORD_MAX_BYTES;
        if password.as_ref().is_some_and(|p| !password_fits(p)) {
            return Err(ApiError::unprocessable(
                "credentials.password",
                format!(
                    "must be {PASSWORD_MIN_CHARS} characters to {PASSWORD_MAX_BYTES} bytes long"
                ),
            ));
        }
        let user = NewUser {
            username,
            email,
            profile,
            client_id: None,
        };
        Ok((user, password))
    }
}

/// `POST .../users`: 201 with the user as stored; the password is never echoed.
pub async fn create(
    service: web::Data<Service>,
    caller: Caller,
    log_id: LogId,
    body: web::Json<NewUserBody>,
) -> Result<HttpResponse, ApiError> {
    let (user, password) = body.into_inner().parse()?;
    let password_hash = match password {
        Some(password) => {
            // Hashing is deliberately slow: refuse non-administrators before paying for it.
            service.query(caller.0, |_| Ok(())).await?;
            let hash = service.hasher.hash(password).await.map_err(|e| match e {
                HashError::Busy => ApiError::Unavailable { event_id: None },
                HashError::Failed(error) => error.context("hashing a password").into(),
            })?;
            Some(hash)
        }
        None => None,
    };
    let user_id = Uuid::new_v4();
    let command = Command::CreateUser {
        user_id,
        user,
        password_hash,
    };
    service.execute_for(caller, log_id, command).await?;
    let view = service
        .read(move |conn| {
            UserView::load(conn, user_id)?.ok_or_else(|| {
                anyhow::anyhow!("created user {user_id} is not in the read model").into()
            })
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("users/{user_id}")))
        .json(view))
}

/// `GET .../users/{userIdentifier}`: the user by id, username or email.
pub async fn get(
    service: web::Data<Service>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let user = user_param(&req)?;
    let view = service
        .query(caller.0, move |conn| {
            let found = SqliteState(conn).require_user(&user)?;
            UserView::load(conn, found.id)?.ok_or_else(|| DomainError::UserNotFound.into())
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET .../users?q=&order=&pageIndex=&pageSize=`: users a page at a time, by username
/// unless `order` says otherwise.
pub async fn list(
    service: web::Data<Service>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page(service.page_size_max)?;
    let q = query.search()?;
    let sorts = query.sorts(Listed::Users, "username")?;
    let list = service
        .query(caller.0, move |conn| {
            let (total, items) =
                read_model::list_users(conn, q.as_deref(), &sorts, page.offset(), page.size)?;
            Ok(PagedList::new(page, total, items))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// How many groups one membership check may list.
const CHECKED_GROUPS_MAX: usize = 20;

/// Paging and `includeInherited`. Not a flattened `PageQuery`: query strings are text,
/// and serde cannot read numbers and booleans from text through `flatten`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserGroupsQuery {
    #[serde(default)]
    include_inherited: bool,
    page_index: Option<u64>,
    page_size: Option<u64>,
}

/// `GET .../users/{userIdentifier}/groups?includeInherited=`: the user's groups, by name.
pub async fn groups_of(
    service: web::Data<Service>,
    caller: Caller,
    query: web::Query<UserGroupsQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let user = user_param(&req)?;
    let paging = PageQuery {
        page_index: query.page_index,
        page_size: query.page_size,
    };
    let page = paging.page(service.page_size_max)?;
    let inherited = query.include_inherited;
    let list = service
        .query(caller.0, move |conn| {
            let user = SqliteState(conn).require_user(&user)?;
            let (total, items) =
                read_model::list_user_groups(conn, user.id, inherited, page.offset(), page.size)?;
            Ok(PagedList::new(page, total, items))
        })
        .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// `HEAD .../users/{userIdentifier}/groups/{g1,g2,...}`: 204 if the user belongs to any of
/// the groups, directly or through child groups; 404 if to none (unknown groups count as
/// none, so that one stale name does not hide the others).
pub async fn in_any_group(
    service: web::Data<Service>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let user = user_param(&req)?;
    let groups = groups_param(&req, CHECKED_GROUPS_MAX)?;
    service
        .query(caller.0, move |conn| {
            let state = SqliteState(conn);
            let user = state.require_user(&user)?;
            for group in &groups {
                let Some(group) = state.group(group)? else {
                    continue;
                };
                if state.is_direct_member(group.id, user.id)?
                    || state.member_through(group.id, user.id)?.is_some()
                {
                    return Ok(());
                }
            }
            Err(ApiError::NotMember)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

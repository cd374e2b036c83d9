//! Users: `POST .../users`, `GET .../users` (a paged list), `GET`, `PUT`, `PATCH` and
//! `DELETE .../users/{userIdentifier}` (`@current` names the caller), `POST
//! .../users/{u}/credentials/password`, and the groups of a user: `GET .../users/{u}/groups`,
//! `HEAD .../users/{u}/groups/{g,...}`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::extract::{Caller, Write, groups_param, user_param, user_param_or_current};
use super::token::peer;
use super::{ApiError, ListQuery};
use crate::auth::HashError;
use crate::domain::{
    Command, Custom, DomainError, Email, NewUser, Profile, State, UserIdentifier, Username,
};
use crate::read_model::{self, Groups, SqliteState, UserView, Users};
use crate::service::{Principal, Service};
use crate::throttle::RetryAfter;

/// Longest free-text field (names, timezone, language), in characters.
const TEXT_MAX_CHARS: usize = 256;
const CUSTOM_MAX_ENTRIES: usize = 64;
const CUSTOM_KEY_MAX_CHARS: usize = 64;
const CUSTOM_VALUE_MAX_CHARS: usize = 1024;
const PASSWORD_MIN_CHARS: usize = 8;
const PASSWORD_MAX_BYTES: usize = 1024;

/// The Contensis user model as a client sends it. Both spellings of the name fields are
/// taken: the documentation's (`firstname`) and the JavaScript client's (`firstName`).
/// When a body has both (a user read from this service, then edited through the client's
/// types), the client's spelling is the edited one and wins.
#[derive(Debug, Deserialize)]
pub struct NewUserBody {
    username: Option<String>,
    email: Option<String>,
    firstname: Option<String>,
    #[serde(rename = "firstName")]
    first_name: Option<String>,
    lastname: Option<String>,
    #[serde(rename = "lastName")]
    last_name: Option<String>,
    timezone: Option<String>,
    language: Option<String>,
    custom: Option<Map<String, Value>>,
    credentials: Option<CredentialsBody>,
    status: Option<Value>,
}

/// What a body asks of a user besides its details.
struct Asked {
    password: Option<String>,
    /// `status.suspended`, when the body sets it.
    suspended: Option<bool>,
}

/// `status` as a body may send it: `suspended` true or false; `locked` and
/// `passwordResetRequired` only as shown (false), since accounts are suspended, never
/// locked; other fields are left alone.
fn suspended(status: Option<Value>) -> Result<Option<bool>, ApiError> {
    let fields = match status {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(fields)) => fields,
        Some(_) => return Err(ApiError::unprocessable("status", "must be an object")),
    };
    for (name, value) in &fields {
        match (name.as_str(), value) {
            ("suspended", Value::Bool(_) | Value::Null)
            | ("locked" | "passwordResetRequired", Value::Bool(false) | Value::Null) => {}
            ("suspended", _) => {
                return Err(ApiError::unprocessable(
                    "status.suspended",
                    "must be true or false",
                ));
            }
            ("locked" | "passwordResetRequired", _) => {
                return Err(ApiError::unprocessable(
                    format!("status.{name}"),
                    "can only be false: an account is suspended, never locked",
                ));
            }
            _ => {}
        }
    }
    Ok(fields.get("suspended").and_then(Value::as_bool))
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

/// The password policy: a 422 naming `field` when `password` breaks it.
fn check_password(field: &str, password: &str) -> Result<(), ApiError> {
    if password.chars().count() < PASSWORD_MIN_CHARS || password.len() > PASSWORD_MAX_BYTES {
        return Err(ApiError::unprocessable(
            field,
            format!("must be {PASSWORD_MIN_CHARS} characters to {PASSWORD_MAX_BYTES} bytes long"),
        ));
    }
    Ok(())
}

/// Hashes off the executor, bounded by `hashers_max` and fairly among addresses.
async fn hash(service: &Service, req: &HttpRequest, password: String) -> Result<String, ApiError> {
    service
        .hasher
        .hash(peer(req), password)
        .await
        .map_err(hash_error)
}

fn hash_error(error: HashError) -> ApiError {
    match error {
        HashError::Busy => ApiError::Unavailable { event_id: None },
        HashError::Failed(error) => error.context("hashing a password").into(),
    }
}

impl NewUserBody {
    fn parse(self) -> Result<(NewUser, Asked), ApiError> {
        let username = Username::parse(self.username.unwrap_or_default())
            .map_err(|e| ApiError::unprocessable("username", e))?;
        let email = Email::parse(self.email.unwrap_or_default())
            .map_err(|e| ApiError::unprocessable("email", e))?;
        let profile = Profile {
            firstname: text("firstname", self.first_name.or(self.firstname))?,
            lastname: text("lastname", self.last_name.or(self.lastname))?,
            timezone: text("timezone", self.timezone)?,
            language: text("language", self.language)?,
            custom: custom(self.custom)?,
        };
        let password = self.credentials.and_then(|c| c.password);
        if let Some(password) = &password {
            check_password("credentials.password", password)?;
        }
        let user = NewUser {
            username,
            email,
            profile,
            client_id: None,
        };
        let suspended = suspended(self.status)?;
        Ok((
            user,
            Asked {
                password,
                suspended,
            },
        ))
    }
}

/// `POST .../users`: 201 with the user as stored; the password is never echoed.
pub async fn create(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
    body: web::Json<NewUserBody>,
) -> Result<HttpResponse, ApiError> {
    let (user, asked) = body.into_inner().parse()?;
    if asked.suspended == Some(true) {
        return Err(ApiError::unprocessable(
            "status.suspended",
            "must be false: a user is created active, and suspended with PUT or PATCH",
        ));
    }
    let password_hash = match asked.password {
        Some(password) => {
            // Hashing is deliberately slow: refuse non-administrators before paying for it.
            service.query(caller.0, |_| Ok(())).await?;
            Some(hash(&service, &req, password).await?)
        }
        None => None,
    };
    let user_id = Uuid::new_v4();
    let command = Command::CreateUser {
        user_id,
        user,
        password_hash,
    };
    // A retry under the same idempotency key answers with what the first request made.
    let user_id = service
        .execute_for(caller, write, command)
        .await?
        .unwrap_or(user_id);
    let view = load(&service, user_id).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("users/{user_id}")))
        .json(view))
}

/// The user as stored; gone if a deletion got in since it was found.
async fn load(service: &Service, user_id: Uuid) -> Result<UserView, ApiError> {
    service
        .read(move |conn| {
            UserView::load(conn, user_id)?.ok_or_else(|| DomainError::UserNotFound.into())
        })
        .await
}

/// `PUT .../users/{userIdentifier}`: replaces the user's details; 200 with the user. The
/// user itself may do it, as may an administrator. Passwords change through their own call.
pub async fn update(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
    body: web::Json<NewUserBody>,
) -> Result<HttpResponse, ApiError> {
    let user = user_param_or_current(&req, caller)?;
    replace(&service, caller, write, user, body.into_inner()).await
}

/// `PATCH .../users/{userIdentifier}`, a JSON merge patch (RFC 7396) over the user as
/// shown: what the body names changes, `null` clears, the rest stays. The official
/// client updates users this way.
pub async fn patch(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    // A retry is answered before the user is looked up: the first request may have
    // renamed it.
    if let Some(first) = service.replay(caller.0, &write).await? {
        let user_id = first.ok_or_else(|| anyhow::anyhow!("a user update of no user"))?;
        return Ok(HttpResponse::Ok().json(load(&service, user_id).await?));
    }
    let user_id = authorized_user(&service, caller, user_param_or_current(&req, caller)?).await?;
    let mut merged = serde_json::to_value(load(&service, user_id).await?)
        .map_err(|e| anyhow::Error::new(e).context("showing a user"))?;
    // The user as shown spells `firstname`: patch that, whichever spelling the client used
    // (the client's wins when both are there), so that `"firstName": null` clears it.
    let mut patch = body.into_inner();
    for (client, shown) in [("firstName", "firstname"), ("lastName", "lastname")] {
        if let Some(value) = patch.remove(client) {
            patch.insert(shown.to_owned(), value);
        }
    }
    merge_patch(&mut merged, &Value::Object(patch));
    let body: NewUserBody = serde_json::from_value(merged)
        .map_err(|e| ApiError::BadRequest(format!("The body does not fit this call: {e}.")))?;
    replace(&service, caller, write, UserIdentifier::Id(user_id), body).await
}

/// RFC 7396: objects merge key by key, `null` removes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(fields) = target else {
        unreachable!("made an object above")
    };
    for (key, change) in changes {
        if change.is_null() {
            fields.remove(key);
        } else {
            merge_patch(fields.entry(key.clone()).or_insert(Value::Null), change);
        }
    }
}

async fn replace(
    service: &Service,
    caller: Caller,
    write: Write,
    user: UserIdentifier,
    body: NewUserBody,
) -> Result<HttpResponse, ApiError> {
    let (details, asked) = body.parse()?;
    if asked.password.is_some() {
        return Err(ApiError::unprocessable(
            "credentials.password",
            "must be absent: a password changes through POST .../credentials/password",
        ));
    }
    let command = Command::UpdateUser {
        user: user.clone(),
        username: details.username,
        email: details.email,
        profile: details.profile,
        suspended: asked.suspended,
    };
    let principal = Principal::CallerOrUser {
        caller: caller.0,
        user: user.clone(),
    };
    // The user the update (or, for a retry, the first request) was about; an update that
    // changed nothing appended nothing, and the user is where the request named it.
    let user_id = match service.execute(principal, write, command).await? {
        Some(user_id) => user_id,
        None => authorized_user(service, caller, user).await?,
    };
    Ok(HttpResponse::Ok().json(load(service, user_id).await?))
}

/// The id of `user`, if the caller may act on it (as itself or as an administrator): 403
/// before 404, so that a caller who may not learns nothing about the user.
async fn authorized_user(
    service: &Service,
    caller: Caller,
    user: UserIdentifier,
) -> Result<Uuid, ApiError> {
    service
        .query_self_or_admin(caller.0, user, |conn, user| {
            Ok(SqliteState(conn).require_user(user)?.id)
        })
        .await
}

/// `DELETE .../users/{userIdentifier}`: removes the user from each of its groups (one
/// `MemberRemoved` each), then deletes it. 409 `LastAdministrator` if it is the last.
pub async fn delete(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let command = Command::DeleteUser {
        user: user_param(&req)?,
    };
    service.execute_for(caller, write, command).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
pub struct PasswordBody {
    existing: Option<String>,
    new: Option<String>,
}

/// `POST .../users/{userIdentifier}/credentials/password`: the user itself, with its
/// `existing` password, or an administrator, with or without it. 409 if `existing` is
/// wrong (or missing for a non-administrator), 422 if `new` breaks the policy.
pub async fn set_password(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
    body: web::Json<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    // Its event travels on the credentials stream, where keys do not count (see
    // `Event::idempotency_key`): a retry could not be recognised, so refuse the key.
    if write.idempotency.is_some() {
        return Err(ApiError::BadRequest(
            "A password change takes no Idempotency-Key: retry it with the new password as \
             `existing`."
                .into(),
        ));
    }
    let user = user_param_or_current(&req, caller)?;
    let PasswordBody { existing, new } = body.into_inner();
    let user_id = authorized_user(&service, caller, user).await?;
    let (stored, is_admin) = service
        .read(move |conn| {
            let is_admin = read_model::is_administrator(conn, caller.0.user)?;
            Ok((read_model::password_of(conn, user_id)?, is_admin))
        })
        .await?;
    let new = new.unwrap_or_default();
    check_password("new", &new)?;
    let existing_ok = match (existing, stored) {
        (Some(existing), Some(stored)) => {
            verify_existing(&service, peer(&req), user_id, existing, stored).await?
        }
        (Some(_), None) => false,
        (None, _) => is_admin,
    };
    if !existing_ok {
        return Err(ApiError::ExistingPasswordInvalid);
    }
    let command = Command::SetPassword {
        user: UserIdentifier::Id(user_id),
        password_hash: hash(&service, &req, new).await?,
    };
    let principal = Principal::CallerOrUser {
        caller: caller.0,
        user: UserIdentifier::Id(user_id),
    };
    service.execute(principal, write, command).await?;
    Ok(HttpResponse::Ok().finish())
}

/// Checks a user's `existing` password, throttled like a login as that user: a stolen
/// token must not make guessing the password any faster.
async fn verify_existing(
    service: &Service,
    address: std::net::IpAddr,
    user: Uuid,
    existing: String,
    stored: String,
) -> Result<bool, ApiError> {
    let name = user.to_string();
    service
        .logins
        .attempt(&name, address)
        .map_err(|RetryAfter(retry_after_s)| ApiError::TooManyRequests { retry_after_s })?;
    let verified = service.hasher.verify(address, existing, stored).await;
    match &verified {
        Ok(true) => service.logins.succeeded(&name, address),
        Ok(false) => {}
        Err(_) => service.logins.not_tried(&name, address),
    }
    verified.map_err(hash_error)
}

/// `GET .../users/{userIdentifier}`: the user by id, username or email (`@current` for
/// the caller). A user may read itself; anyone else takes an administrator.
pub async fn get(
    service: web::Data<Service>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let user_id = authorized_user(&service, caller, user_param_or_current(&req, caller)?).await?;
    Ok(HttpResponse::Ok().json(load(&service, user_id).await?))
}

/// `GET .../users?q=&order=&pageIndex=&pageSize=`: users a page at a time, by username
/// unless `order` says otherwise.
pub async fn list(
    service: web::Data<Service>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let all = |_: &Connection| Ok(Users::All);
    query.users(&service, caller, all).await
}

/// How many groups one membership check may list.
const CHECKED_GROUPS_MAX: usize = 20;

/// `GET .../users/{userIdentifier}/groups?includeInherited=`: the user's groups (with
/// `includeInherited`, also the groups those are inside), by name unless `order` says
/// otherwise.
pub async fn groups_of(
    service: web::Data<Service>,
    caller: Caller,
    query: web::Query<ListQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let user = user_param(&req)?;
    let inherited = query.include_inherited;
    let scope = move |conn: &Connection| {
        let user = SqliteState(conn).require_user(&user)?;
        Ok(Groups::OfUser {
            user: user.id,
            inherited,
        })
    };
    query.groups(&service, caller, scope).await
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

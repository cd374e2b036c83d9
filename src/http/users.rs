//! Users: `POST .../users`, `GET .../users` (a paged list), `GET`, `PUT`, `PATCH` and
//! `DELETE .../users/{userIdentifier}` (`@current` names the caller), `POST
//! .../users/{u}/credentials/password`, and the groups of a user: `GET .../users/{u}/groups`,
//! `HEAD .../users/{u}/groups/{g,...}`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::extract::{Caller, groups_param, user_param, user_param_or_current};
use super::token::peer;
use super::{ApiError, ListQuery};
use crate::domain::{
    Command, Custom, Email, NewUser, Password, Profile, Set, UserIdentifier, Username,
    check_free_text,
};
use crate::read_model::UserView;
use crate::service::{GroupScope, Principal, Service, UserScope, Write};

const CUSTOM_MAX_ENTRIES: usize = 64;
const CUSTOM_KEY_MAX_CHARS: usize = 64;
const CUSTOM_VALUE_MAX_CHARS: usize = 1024;

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
    password: Option<Password>,
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

/// An optional free-text field: bounded and printable (`domain::check_free_text`).
pub(super) fn text(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    check_free_text(&value).map_err(|e| ApiError::unprocessable(field, e))?;
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

/// A password within the policy, or a 422 naming `field`.
fn password(field: &str, text: String) -> Result<Password, ApiError> {
    Password::parse(text).map_err(|e| ApiError::unprocessable(field, e))
}

impl NewUserBody {
    /// The body's user. Its username may not contain '@' (on this API an identifier with
    /// '@' is an email), unless it is `kept`: the username an identity provider gave the
    /// user, left as it is.
    fn parse(self, kept: Option<&str>) -> Result<(NewUser, Asked), ApiError> {
        let username = self.username.unwrap_or_default();
        let username = match kept == Some(username.as_str()) {
            true => Username::parse(username),
            false => Username::parse_plain(username),
        }
        .map_err(|e| ApiError::unprocessable("username", e))?;
        let email = Email::parse(self.email.unwrap_or_default())
            .map_err(|e| ApiError::unprocessable("email", e))?;
        let profile = Profile {
            firstname: text("firstname", self.first_name.or(self.firstname))?,
            lastname: text("lastname", self.last_name.or(self.lastname))?,
            timezone: text("timezone", self.timezone)?,
            language: text("language", self.language)?,
            custom: custom(self.custom)?,
            provisioned: Default::default(),
        };
        let password = (self.credentials.and_then(|c| c.password))
            .map(|text| password("credentials.password", text))
            .transpose()?;
        let user = NewUser {
            username,
            email,
            profile,
            client_id: None,
            scopes: Vec::new(),
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
    let (user, asked) = body.into_inner().parse(None)?;
    if asked.suspended == Some(true) {
        return Err(ApiError::unprocessable(
            "status.suspended",
            "must be false: a user is created active, and suspended with PUT or PATCH",
        ));
    }
    let user_id = (service.create_user(caller.0, write, user, asked.password, peer(&req))).await?;
    let view = load(&service, user_id).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("users/{user_id}")))
        .json(view))
}

/// The user as stored; gone if a deletion got in since it was found.
async fn load(service: &Service, user_id: Uuid) -> Result<UserView, ApiError> {
    Ok(service.stored_user(user_id).await?)
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
    if let Some(user_id) = service.replay(caller.0, &write).await? {
        return Ok(HttpResponse::Ok().json(load(&service, user_id).await?));
    }
    let user = service
        .user(caller.0, user_param_or_current(&req, caller)?)
        .await?;
    let user_id = user.id;
    let mut merged =
        serde_json::to_value(user).map_err(|e| anyhow::Error::new(e).context("showing a user"))?;
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
    // Only a username this API would not set needs the one it replaces.
    let provider_only = body
        .username
        .as_deref()
        .is_some_and(Username::is_provider_only);
    let kept = match provider_only {
        true => Some(service.user(caller.0, user.clone()).await?.username),
        false => None,
    };
    let (details, asked) = body.parse(kept.as_deref())?;
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
        // This API does not know them: an update here keeps them.
        provisioned: Set::Keep,
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
        None => service.user_id(caller.0, user).await?,
    };
    Ok(HttpResponse::Ok().json(load(service, user_id).await?))
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
    service.execute_for(caller.0, write, command).await?;
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
    let new = password("new", new.unwrap_or_default())?;
    (service.change_password(caller.0, write, user, existing, new, peer(&req))).await?;
    Ok(HttpResponse::Ok().finish())
}

/// `GET .../users/{userIdentifier}`: the user by id, username or email (`@current` for
/// the caller). A user may read itself; anyone else takes an administrator.
pub async fn get(
    service: web::Data<Service>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let user = service
        .user(caller.0, user_param_or_current(&req, caller)?)
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

/// `GET .../users?q=&order=&pageIndex=&pageSize=`: users a page at a time, by username
/// unless `order` says otherwise.
pub async fn list(
    service: web::Data<Service>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    query.users(&service, caller, UserScope::All).await
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
    let scope = GroupScope::OfUser {
        user: user_param(&req)?,
        inherited: query.include_inherited,
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
    if !service.in_any_group(caller.0, user, groups).await? {
        return Err(ApiError::NotMember);
    }
    Ok(HttpResponse::NoContent().finish())
}

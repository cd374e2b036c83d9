//! `POST /Users`, `PUT`, `PATCH` and `DELETE /Users/{id}`: an identity provider's changes
//! to users, as the Contensis API's commands. A user's attributes are folded into a
//! [`Draft`] (empty for a POST, the user as stored for a PUT or PATCH), then checked whole
//! and made one command: `UpdateUser` with `active` as its suspension, so that a
//! deactivation is the same `UserSuspended` event as a suspension anywhere else.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use scim_v2::filter::{AttrExp, CompValue, CompareOp, PatchPath, ValFilter};
use scim_v2::models::errors::ScimType;
use scim_v2::schema_urns;
use serde_json::Value;
use uuid::Uuid;

use super::body::{
    Op, attributes, boolean, external_id, invalid, operations, short_name, write_of,
};
use super::resources::{Projection, location, user_version};
use super::{ScimCaller, ScimError, scim_json};
use crate::domain::{
    Command, Custom, Email, NewUser, Password, Profile, Provisioned, Set, UserIdentifier, Username,
    check_free_text,
};
use crate::read_model::UserView;
use crate::service::{IfMatch, Service, Write};

/// Attributes of the core User schema and of the enterprise extension that this service
/// does not keep: accepted and ignored, so that a provider's default mappings work.
const NOT_KEPT: &[&str] = &[
    "nickname",
    "profileurl",
    "title",
    "usertype",
    "locale",
    "phonenumbers",
    "addresses",
    "ims",
    "photos",
    "entitlements",
    "roles",
    "x509certificates",
    "employeenumber",
    "costcenter",
    "organization",
    "division",
    "department",
    "manager",
];

/// A user as a request leaves it, before it is checked.
#[derive(Debug, Default)]
struct Draft {
    username: Option<String>,
    email: Option<String>,
    firstname: Option<String>,
    lastname: Option<String>,
    timezone: Option<String>,
    language: Option<String>,
    provisioned: Provisioned,
    /// Kept through a PUT or PATCH: SCIM does not show it.
    custom: Custom,
    active: Option<bool>,
    password: Option<String>,
}

/// How a body's attributes are taken: a POST or PUT ignores names it does not know; a
/// PATCH path that names nothing a user has is `invalidPath`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    Lenient,
    Strict,
}

impl Draft {
    /// The user as stored, for a PATCH; for a PUT, only what SCIM does not show.
    fn of(user: &UserView, whole: bool) -> Self {
        let profile = &user.profile;
        let custom = profile.custom.clone();
        if !whole {
            return Self {
                custom,
                ..Self::default()
            };
        }
        Self {
            username: Some(user.username.clone()),
            email: Some(user.email.clone()),
            firstname: profile.firstname.clone(),
            lastname: profile.lastname.clone(),
            timezone: profile.timezone.clone(),
            language: profile.language.clone(),
            provisioned: profile.provisioned.clone(),
            custom,
            active: None,
            password: None,
        }
    }

    /// Every attribute of a POST or PUT body, as a replace of each.
    fn body(mut self, body: Value) -> Result<Self, ScimError> {
        for (name, value) in attributes(body)? {
            self.attribute(Op::Replace, &name, None, value, Names::Lenient)?;
        }
        Ok(self)
    }

    fn patch(mut self, body: Value) -> Result<Self, ScimError> {
        let fields = attributes(body)?;
        for operation in operations(&fields)? {
            let (op, value) = (operation.op, operation.value.clone());
            match operation.path {
                None => {
                    // Keys may be dotted: `"name.givenName"`.
                    for (name, value) in attributes(value)? {
                        let (name, sub) = match name.split_once('.') {
                            Some((name, sub)) => (name, Some(sub)),
                            None => (name.as_str(), None),
                        };
                        self.attribute(op, name, sub, value, Names::Strict)?;
                    }
                }
                Some((_, PatchPath::Attr(path))) => {
                    let name = short_name(&path.name);
                    let sub = path.sub_attr.map(|s| s.to_lowercase());
                    self.attribute(op, &name, sub.as_deref(), value, Names::Strict)?;
                }
                Some((text, PatchPath::Value(path))) => {
                    let name = short_name(&path.attr.name);
                    let sub = path.sub_attr.as_deref().map(str::to_lowercase);
                    if name != "emails" || !is_work_email(&path.filter) {
                        return Err(invalid(
                            ScimType::InvalidPath,
                            format!("The path {text} names nothing a user has here."),
                        ));
                    }
                    self.email_at(op, sub.as_deref(), value)?;
                }
            }
        }
        Ok(self)
    }

    /// One attribute's operation (`sub` for `name.givenName` and the like).
    fn attribute(
        &mut self,
        op: Op,
        name: &str,
        sub: Option<&str>,
        value: Value,
        names: Names,
    ) -> Result<(), ScimError> {
        let cleared = op == Op::Remove;
        let text = |field: &str| match cleared {
            true => Ok(None),
            false => free_text(field, &value),
        };
        match (name, sub) {
            ("username", None) if cleared => return Err(required("userName")),
            ("username", None) => self.username = Some(string("userName", &value)?),
            ("name", None) if cleared => (self.firstname, self.lastname) = (None, None),
            ("name", None) => {
                let Value::Object(parts) = &value else {
                    return Err(invalid(ScimType::InvalidValue, "name must be an object."));
                };
                for (part, value) in parts {
                    let part = part.to_lowercase();
                    self.attribute(op, "name", Some(&part), value.clone(), names)?;
                }
            }
            ("name", Some("givenname")) => self.firstname = text("name.givenName")?,
            ("name", Some("familyname")) => self.lastname = text("name.familyName")?,
            ("name", Some(_)) => {} // formatted, middleName, honorifics: not kept.
            ("displayname", None) => self.provisioned.display_name = text("displayName")?,
            ("externalid", None) if cleared => self.provisioned.external_id = None,
            ("externalid", None) => self.provisioned.external_id = external_id(&value)?,
            ("preferredlanguage", None) => self.language = text("preferredLanguage")?,
            ("timezone", None) => self.timezone = text("timezone")?,
            ("emails", None) if cleared => return Err(required("emails")),
            ("emails", None) => self.set_email(chosen_email(&value)?)?,
            ("active", None) if cleared => return Err(required("active")),
            ("active", None) => self.active = Some(boolean("active", &value)?),
            ("password", None) if cleared => {}
            ("password", None) => self.password = Some(string("password", &value)?),
            // Read-only, computed or sent back as read: ignored.
            ("id" | "meta" | "schemas" | "groups", _) => {}
            (extension, None) if extension == schema_urns::ENTERPRISE_USER.to_lowercase() => {}
            (other, _) if NOT_KEPT.contains(&other) => {}
            (other, _) if names == Names::Strict => {
                return Err(invalid(
                    ScimType::InvalidPath,
                    format!("A user has no attribute {other} here."),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// `emails[type eq "work"]` (an email object) or `emails[type eq "work"].value`.
    fn email_at(&mut self, op: Op, sub: Option<&str>, value: Value) -> Result<(), ScimError> {
        match (op, sub) {
            (Op::Remove, _) => return Err(required("emails")),
            (_, Some("value")) => self.email = Some(string("emails.value", &value)?),
            (_, Some("type")) => self.provisioned.email_type = free_text("emails.type", &value)?,
            (_, Some("primary")) => {
                self.provisioned.email_primary = Some(boolean("emails.primary", &value)?);
            }
            (_, Some(_)) => {} // display: not kept.
            (_, None) => self.set_email(chosen_email(&value)?)?,
        }
        Ok(())
    }

    /// The user's email as one item of `emails` has it, its type and primary with it.
    fn set_email(&mut self, item: &Value) -> Result<(), ScimError> {
        self.email = Some(string("emails.value", &item["value"])?);
        self.provisioned.email_type = free_text("emails.type", &item["type"])?;
        self.provisioned.email_primary = match &item["primary"] {
            Value::Null => None,
            primary => Some(boolean("emails.primary", primary)?),
        };
        Ok(())
    }

    /// The user, checked: a username and an email are required.
    fn user(self) -> Result<(NewUser, Option<bool>, Option<Password>), ScimError> {
        let username = self.username.ok_or_else(|| required("userName"))?;
        let username = Username::parse(username)
            .map_err(|e| invalid(ScimType::InvalidValue, format!("userName {e}.")))?;
        let email = self.email.ok_or_else(|| required("emails"))?;
        let email = Email::parse(email)
            .map_err(|e| invalid(ScimType::InvalidValue, format!("The email {e}.")))?;
        let password = (self.password)
            .map(Password::parse)
            .transpose()
            .map_err(|e| invalid(ScimType::InvalidValue, format!("password {e}.")))?;
        let profile = Profile {
            firstname: self.firstname,
            lastname: self.lastname,
            timezone: self.timezone,
            language: self.language,
            custom: self.custom,
            provisioned: self.provisioned,
        };
        let user = NewUser {
            username,
            email,
            profile,
            client_id: None,
            scopes: Vec::new(),
        };
        Ok((user, self.active, password))
    }
}

fn required(attribute: &str) -> ScimError {
    invalid(
        ScimType::InvalidValue,
        format!("{attribute} is required; it can be replaced, not removed."),
    )
}

fn string(attribute: &str, value: &Value) -> Result<String, ScimError> {
    (value.as_str().map(str::to_owned)).ok_or_else(|| {
        invalid(
            ScimType::InvalidValue,
            format!("{attribute} must be a string."),
        )
    })
}

/// An optional free-text attribute: bounded and printable; null clears it.
fn free_text(attribute: &str, value: &Value) -> Result<Option<String>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    let text = string(attribute, value)?;
    check_free_text(&text)
        .map_err(|e| invalid(ScimType::InvalidValue, format!("{attribute} {e}.")))?;
    Ok(Some(text))
}

/// Whether a value filter picks the work email (`type eq "work"`), the only one kept.
fn is_work_email(filter: &ValFilter) -> bool {
    matches!(filter, ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(t)))
        if path.name.eq_ignore_ascii_case("type") && t.eq_ignore_ascii_case("work"))
}

/// The one of `emails` kept: the primary one, else the first of type work, else the
/// first.
fn chosen_email(value: &Value) -> Result<&Value, ScimError> {
    let emails = match value {
        Value::Array(items) => items.as_slice(),
        Value::Object(_) => std::slice::from_ref(value),
        _ => return Err(invalid(ScimType::InvalidValue, "emails must be a list.")),
    };
    let is_work =
        |item: &&Value| (item["type"].as_str()).is_some_and(|t| t.eq_ignore_ascii_case("work"));
    (emails
        .iter()
        .find(|e| boolean("primary", &e["primary"]).unwrap_or(false)))
    .or_else(|| emails.iter().find(is_work))
    .or_else(|| emails.first())
    .ok_or_else(|| required("emails"))
}

/// The write of a PUT or PATCH of `current`: its `If-Match` (never required) names the
/// version the user has (`meta.version`), or nothing changes (412). Checked against the
/// user as read: users have no version in the log to make the check part of the append.
fn user_write(req: &HttpRequest, current: &UserView) -> Result<Write, ScimError> {
    let write = write_of(req)?;
    let holds = match &write.if_match {
        None | Some(IfMatch::Any) => true,
        Some(IfMatch::Tags(tags)) => tags.contains(&user_version(current)),
    };
    if !holds {
        return Err(ScimError::new(
            StatusCode::PRECONDITION_FAILED,
            None,
            "The user has changed since the version If-Match names.",
        ));
    }
    Ok(Write {
        if_match: None,
        ..write
    })
}

fn user_id(id: &str) -> Result<Uuid, ScimError> {
    super::reads::id_of(id, "user")
}

/// The answer to a write of a user: the user as it now stands.
fn answer(
    req: &HttpRequest,
    status: StatusCode,
    user: &UserView,
    groups: &[(String, String)],
) -> HttpResponse {
    let shown = Projection::default().apply(super::resources::user(req, user, groups));
    let mut response = scim_json(status, &shown);
    if status == StatusCode::CREATED {
        let at = location(req, &format!("/Users/{}", user.id));
        if let Ok(at) = header::HeaderValue::from_str(&at) {
            response.headers_mut().insert(header::LOCATION, at);
        }
    }
    response
}

/// `POST`: 201 with the user. A user created inactive is created, then suspended.
pub async fn create(
    service: web::Data<Service>,
    caller: ScimCaller,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse, ScimError> {
    let (user, active, password) = Draft::default().body(body.into_inner())?.user()?;
    let write = write_of(&req)?;
    let peer = crate::http::peer(&req);
    let user_id = service
        .create_user(caller.0, write, user, password, peer)
        .await?;
    let mut created = service.stored_user(user_id).await?;
    if active == Some(false) {
        let inactive = Draft {
            active,
            ..Draft::of(&created, true)
        };
        created = update(&service, caller, &req, &created, inactive).await?;
    }
    Ok(answer(&req, StatusCode::CREATED, &created, &[]))
}

/// The user made what `draft` says, as one `UpdateUser`; a password changes only
/// through the Contensis API.
async fn update(
    service: &Service,
    caller: ScimCaller,
    req: &HttpRequest,
    current: &UserView,
    draft: Draft,
) -> Result<UserView, ScimError> {
    let (user, active, password) = draft.user()?;
    if password.is_some() {
        return Err(invalid(
            ScimType::Mutability,
            "A password is set when the user is created; it changes through the Contensis API.",
        ));
    }
    let NewUser {
        username,
        email,
        mut profile,
        ..
    } = user;
    let provisioned = std::mem::take(&mut profile.provisioned);
    let command = Command::UpdateUser {
        user: UserIdentifier::Id(current.id),
        username,
        email,
        profile,
        provisioned: Set::To(provisioned),
        suspended: active.map(|active| !active),
    };
    service
        .execute_for(caller.0, user_write(req, current)?, command)
        .await?;
    Ok(service.stored_user(current.id).await?)
}

/// `PUT`: the user as sent; what it leaves out is cleared (but `active`, which stays as
/// it is, and `groups`, which is read-only). 200 with the user.
pub async fn replace(
    service: web::Data<Service>,
    caller: ScimCaller,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ScimError> {
    change(&service, caller, &req, &id, |current| {
        Draft::of(current, false).body(body.into_inner())
    })
    .await
}

/// `PATCH`: the operations folded over the user as stored; 200 with the user.
pub async fn patch(
    service: web::Data<Service>,
    caller: ScimCaller,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ScimError> {
    change(&service, caller, &req, &id, |current| {
        Draft::of(current, true).patch(body.into_inner())
    })
    .await
}

/// The user `id` made what `draft` makes of it; 200 with the user as it then stands.
async fn change(
    service: &Service,
    caller: ScimCaller,
    req: &HttpRequest,
    id: &str,
    draft: impl FnOnce(&UserView) -> Result<Draft, ScimError>,
) -> Result<HttpResponse, ScimError> {
    let current = service
        .user(caller.0, UserIdentifier::Id(user_id(id)?))
        .await?;
    let user = update(service, caller, req, &current, draft(&current)?).await?;
    let groups = super::reads::groups_of(service, caller, user.id).await?;
    Ok(answer(req, StatusCode::OK, &user, &groups))
}

/// `DELETE`: as the Contensis DELETE, the user's memberships end first, one event each.
pub async fn delete(
    service: web::Data<Service>,
    caller: ScimCaller,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let command = Command::DeleteUser {
        user: UserIdentifier::Id(user_id(&id)?),
    };
    service
        .execute_for(caller.0, write_of(&req)?, command)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(operations: Value) -> Result<Draft, ScimError> {
        let body = json!({ "schemas": [schema_urns::PATCH_OP], "Operations": operations });
        let draft = Draft {
            username: Some("alice@contoso.com".into()),
            email: Some("alice@contoso.com".into()),
            ..Draft::default()
        };
        draft.patch(body)
    }

    #[test]
    fn entra_and_okta_deactivations_read_as_inactive() {
        for operations in [
            json!([{ "op": "Replace", "path": "active", "value": "False" }]),
            json!([{ "op": "replace", "value": { "active": false } }]),
            json!([{ "op": "replace", "path": "active", "value": "false" }]),
        ] {
            assert_eq!(
                patched(operations.clone()).unwrap().active,
                Some(false),
                "{operations}"
            );
        }
        let on = patched(json!([{ "op": "Replace", "path": "active", "value": "True" }]));
        assert_eq!(on.unwrap().active, Some(true));
        let odd = patched(json!([{ "op": "Replace", "path": "active", "value": "yes" }]));
        assert_eq!(odd.unwrap_err().scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn the_work_email_and_dotted_names_are_found_however_they_are_sent() {
        let draft = patched(json!([
            { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "a@x.com" },
            { "op": "replace", "value": { "name.givenName": "Alice", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "R&D" } },
            { "op": "Add", "path": "name.familyName", "value": "Liddell" },
        ]))
        .unwrap();
        assert_eq!(draft.email.as_deref(), Some("a@x.com"));
        assert_eq!(draft.firstname.as_deref(), Some("Alice"));
        assert_eq!(draft.lastname.as_deref(), Some("Liddell"));
        let emails = json!([
            { "value": "home@x.com", "type": "home" },
            { "value": "work@x.com", "type": "work" },
        ]);
        assert_eq!(chosen_email(&emails).unwrap()["value"], "work@x.com");
        let primary = json!([{ "value": "a@x.com" }, { "value": "b@x.com", "primary": "True" }]);
        assert_eq!(chosen_email(&primary).unwrap()["value"], "b@x.com");
    }

    #[test]
    fn what_a_user_must_have_cannot_be_removed_and_unknown_paths_are_refused() {
        for (operations, scim_type) in [
            (
                json!([{ "op": "remove", "path": "userName" }]),
                ScimType::InvalidValue,
            ),
            (
                json!([{ "op": "remove", "path": "emails" }]),
                ScimType::InvalidValue,
            ),
            (
                json!([{ "op": "replace", "path": "nickName2", "value": "x" }]),
                ScimType::InvalidPath,
            ),
            (json!([{ "op": "remove" }]), ScimType::NoTarget),
            (
                json!([{ "op": "replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "1" }]),
                ScimType::InvalidPath,
            ),
        ] {
            let error = patched(operations.clone()).unwrap_err();
            assert_eq!(error.scim_type, Some(scim_type), "{operations}");
        }
        let draft = Draft::default()
            .body(json!({ "userName": "bob", "groups": [] }))
            .unwrap();
        assert_eq!(
            draft.user().unwrap_err().scim_type,
            Some(ScimType::InvalidValue)
        );
    }
}

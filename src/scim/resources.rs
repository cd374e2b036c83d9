//! Users and groups as SCIM shows them (RFC 7643 sections 4.1 and 4.2), and what every
//! read takes: `attributes` / `excludedAttributes`, a filter, and 1-based paging.

use std::str::FromStr;

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter};
use scim_v2::models::errors::ScimType;
use scim_v2::schema_urns;
use serde_json::{Value, json};
use uuid::Uuid;

use super::ScimError;
use crate::read_model::filter::{Attribute, Filter as ReadFilter, Op, Operand, Over};
use crate::read_model::{GroupView, UserView};

/// The most members a group shows inside itself; a larger group is read with
/// `excludedAttributes=members`, its members through the Contensis API's paged list.
pub const MEMBERS_SHOWN_MAX: u64 = 1000;

/// The absolute URL of `path` under `/scim/v2`, as the client reached this service.
pub fn location(req: &HttpRequest, path: &str) -> String {
    let info = req.connection_info();
    format!("{}://{}/scim/v2{path}", info.scheme(), info.host())
}

/// A user, with the groups it is a direct member of (`id`, name).
pub fn user(req: &HttpRequest, user: &UserView, groups: &[(String, String)]) -> Value {
    let profile = &user.profile;
    let suspended = user.status["suspended"].as_bool().unwrap_or(false);
    let groups: Vec<Value> = (groups.iter())
        .map(|(id, name)| {
            json!({
                "value": id,
                "$ref": location(req, &format!("/Groups/{id}")),
                "display": name,
                "type": "direct",
            })
        })
        .collect();
    let mut shown = json!({
        "schemas": [schema_urns::USER],
        "id": user.id,
        "userName": user.username,
        "emails": [{
            "value": user.email,
            "type": profile.provisioned.email_type.as_deref().unwrap_or("work"),
            "primary": profile.provisioned.email_primary.unwrap_or(true),
        }],
        "active": !suspended,
        "groups": groups,
        "meta": {
            "resourceType": "User",
            "created": user.created,
            "lastModified": user.modified,
            "location": location(req, &format!("/Users/{}", user.id)),
            "version": user_version(user),
        },
    });
    // What is not set is not shown, so that a removal shows as one.
    let name = [
        ("givenName", &profile.firstname),
        ("familyName", &profile.lastname),
    ];
    let name: serde_json::Map<String, Value> = (name.into_iter())
        .filter_map(|(part, value)| Some((part.to_owned(), json!(value.as_ref()?))))
        .collect();
    if !name.is_empty() {
        shown["name"] = Value::Object(name);
    }
    let optional = [
        ("externalId", &profile.provisioned.external_id),
        ("displayName", &profile.provisioned.display_name),
        ("preferredLanguage", &profile.language),
        ("timezone", &profile.timezone),
    ];
    for (attribute, value) in optional {
        if let Some(value) = value {
            shown[attribute] = json!(value);
        }
    }
    shown
}

/// A user's `meta.version`, and the tag an `If-Match` names: its last change's time,
/// which changes whenever the user does.
pub fn user_version(user: &UserView) -> String {
    format!("\"{}\"", user.modified)
}

/// A group, with the ids of its direct members when they are asked for.
pub fn group(req: &HttpRequest, group: &GroupView, members: Option<&[Uuid]>) -> Value {
    let mut shown = json!({
        "schemas": [schema_urns::GROUP],
        "id": group.id,
        "displayName": group.name,
        "meta": {
            "resourceType": "Group",
            "created": group.created,
            "location": location(req, &format!("/Groups/{}", group.id)),
            "version": etag(group.version),
        },
    });
    if let Some(external_id) = &group.external_id {
        shown["externalId"] = json!(external_id);
    }
    if let Some(members) = members {
        shown["members"] = (members.iter())
            .map(|id| {
                json!({
                    "value": id,
                    "$ref": location(req, &format!("/Users/{id}")),
                    "type": "User",
                })
            })
            .collect();
    }
    shown
}

/// A group's version as SCIM's `meta.version` and the ETag: the Contensis API's tag.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// What a read returns of each resource: `attributes` names the only ones (besides
/// `id` and `schemas`, always returned), `excludedAttributes` ones to leave out.
#[derive(Debug, Default, Clone)]
pub struct Projection {
    only: Option<Vec<String>>,
    except: Vec<String>,
}

impl Projection {
    pub fn new(attributes: Option<&str>, excluded: Option<&str>) -> Self {
        let names = |list: &str| -> Vec<String> {
            (list.split(','))
                .map(|name| name.trim().to_lowercase())
                .filter(|name| !name.is_empty())
                .map(|name| match name.rsplit_once(':') {
                    // A name may be given with its schema URN.
                    Some((_, short)) => short.to_owned(),
                    None => name,
                })
                .collect()
        };
        Self {
            only: attributes.map(names),
            except: excluded.map(names).unwrap_or_default(),
        }
    }

    /// Whether the attribute (top level, any case) is returned.
    pub fn shows(&self, attribute: &str) -> bool {
        let attribute = attribute.to_lowercase();
        if ["id", "schemas"].contains(&attribute.as_str()) {
            return true;
        }
        let named = |list: &[String]| {
            (list.iter())
                .any(|name| name == &attribute || name.starts_with(&format!("{attribute}.")))
        };
        !named(&self.except) && self.only.as_deref().is_none_or(named)
    }

    pub fn apply(&self, mut resource: Value) -> Value {
        if let Some(fields) = resource.as_object_mut() {
            fields.retain(|name, _| self.shows(name));
        }
        resource
    }
}

/// A page of a list as SCIM asks for it: `startIndex` 1-based (below 1 is 1), `count`
/// at most `max` (0: only the total).
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub start_index: u64,
    pub count: u64,
}

impl Paging {
    pub fn new(start_index: Option<i64>, count: Option<i64>, max: u64) -> Self {
        Self {
            start_index: start_index.unwrap_or(1).max(1) as u64,
            count: count.map_or(max, |count| (count.max(0) as u64).min(max)),
        }
    }

    pub fn offset(self) -> u64 {
        self.start_index - 1
    }
}

/// A list response: the total, and the page's resources.
pub fn list(paging: Paging, total: u64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [schema_urns::LIST_RESPONSE],
        "totalResults": total,
        "startIndex": paging.start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// A list's `filter` in the read model's terms, for users or groups: every operator and
/// `and` / `or` / `not`, attribute names in any case, over the attributes this service
/// keeps; `emails[type eq "work" and value eq "..."]` (the one work email) too, and the
/// form some providers send, `emails[type eq "work"].value eq "..."`. 400 `invalidFilter`
/// for one that does not parse or names what the resources do not have.
pub fn filter(text: Option<&str>, over: Over) -> Result<Option<ReadFilter>, ScimError> {
    let Some(text) = text.map(str::trim).filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    let text = value_path_quirk(text);
    let parsed = Filter::from_str(&text)
        .map_err(|e| invalid_filter(format!("The filter does not parse: {e}.")))?;
    Ok(Some(convert(&parsed, over)?))
}

fn invalid_filter(detail: String) -> ScimError {
    ScimError::new(
        StatusCode::BAD_REQUEST,
        Some(ScimType::InvalidFilter),
        detail,
    )
}

/// `emails[type eq "work"].value eq "x"`, which RFC 7644 does not allow, as the valid
/// `emails[type eq "work" and value eq "x"]`.
fn value_path_quirk(text: &str) -> String {
    let Some((head, tail)) = text.split_once("].value ") else {
        return text.to_owned();
    };
    let Some((attribute, inner)) = head.split_once('[') else {
        return text.to_owned();
    };
    let (op, value) = tail.trim().split_once(' ').unwrap_or((tail, ""));
    format!("{attribute}[{inner} and value {op} {value}]")
}

fn convert(filter: &Filter, over: Over) -> Result<ReadFilter, ScimError> {
    let all = |items: &[Filter]| -> Result<Vec<ReadFilter>, ScimError> {
        items.iter().map(|item| convert(item, over)).collect()
    };
    Ok(match filter {
        Filter::Attr(AttrExp::Present(path)) => ReadFilter::Present(attribute(path, over)?),
        Filter::Attr(AttrExp::Comparison(path, op, value)) => {
            compared(attribute(path, over)?, op, value)?
        }
        Filter::Not(inner) => ReadFilter::Not(Box::new(convert(inner, over)?)),
        Filter::And(items) => ReadFilter::And(all(items.as_slice())?),
        Filter::Or(items) => ReadFilter::Or(all(items.as_slice())?),
        Filter::ValuePath(path)
            if over == Over::Users && path.attr.name.eq_ignore_ascii_case("emails") =>
        {
            email_filter(&path.filter)?
        }
        Filter::ValuePath(path) => {
            return Err(invalid_filter(format!(
                "{} has no values to filter.",
                path.attr.name
            )));
        }
    })
}

/// A filter inside `emails[...]`: a user's one email is its `value`, of type `work`,
/// primary.
fn email_filter(filter: &ValFilter) -> Result<ReadFilter, ScimError> {
    let all = |items: &[ValFilter]| -> Result<Vec<ReadFilter>, ScimError> {
        items.iter().map(email_filter).collect()
    };
    let always = |holds: bool| match holds {
        true => ReadFilter::Present(Attribute::Email),
        false => ReadFilter::Not(Box::new(ReadFilter::Present(Attribute::Email))),
    };
    Ok(match filter {
        ValFilter::Attr(AttrExp::Present(path)) => match path.name.to_lowercase().as_str() {
            "value" | "type" | "primary" => always(true),
            other => return Err(invalid_filter(format!("An email has no {other}."))),
        },
        ValFilter::Attr(AttrExp::Comparison(path, op, value)) => {
            match path.name.to_lowercase().as_str() {
                "value" => compared(Attribute::Email, op, value)?,
                "type" => always(*op == CompareOp::Eq && *value == CompValue::Str("work".into())),
                "primary" => always(*op == CompareOp::Eq && *value == CompValue::True),
                other => return Err(invalid_filter(format!("An email has no {other}."))),
            }
        }
        ValFilter::Not(inner) => ReadFilter::Not(Box::new(email_filter(inner)?)),
        ValFilter::And(items) => ReadFilter::And(all(items.as_slice())?),
        ValFilter::Or(items) => ReadFilter::Or(all(items.as_slice())?),
    })
}

/// The attribute a path names on a user or a group, any case, with or without its URN.
fn attribute(path: &AttrPath, over: Over) -> Result<Attribute, ScimError> {
    let name = path.name.to_lowercase();
    let sub = path.sub_attr.as_deref().map(str::to_lowercase);
    let found = match (over, name.as_str(), sub.as_deref()) {
        (_, "id", None) => Some(Attribute::Id),
        (Over::Users, "username", None) => Some(Attribute::Username),
        (Over::Users, "emails", None | Some("value")) => Some(Attribute::Email),
        (Over::Users, "name", Some("givenname")) => Some(Attribute::GivenName),
        (Over::Users, "name", Some("familyname")) => Some(Attribute::FamilyName),
        (Over::Users, "active", None) => Some(Attribute::Active),
        (Over::Users, "externalid", None) => Some(Attribute::ExternalId),
        (Over::Users, "displayname", None) => Some(Attribute::DisplayName),
        (Over::Groups, "displayname", None) => Some(Attribute::Name),
        (Over::Groups, "externalid", None) => Some(Attribute::ExternalId),
        (_, "meta", Some("created")) => Some(Attribute::Created),
        (Over::Users, "meta", Some("lastmodified")) => Some(Attribute::Modified),
        _ => None,
    };
    found.ok_or_else(|| invalid_filter(format!("Filtering on {path} is not answered here.")))
}

/// A comparison, if its value is of the attribute's type: `active` with `true` or `false`
/// by `eq` or `ne`, every other attribute with a string.
fn compared(
    attribute: Attribute,
    op: &CompareOp,
    value: &CompValue,
) -> Result<ReadFilter, ScimError> {
    let operand = operand(value);
    let fits = match (attribute, &operand) {
        (Attribute::Active, Operand::Bool(_)) => matches!(op, CompareOp::Eq | CompareOp::Ne),
        (Attribute::Active, _) => false,
        (_, operand) => matches!(operand, Operand::Text(_)),
    };
    if !fits {
        return Err(invalid_filter(format!(
            "{attribute:?} cannot be compared with {value} by {op}."
        )));
    }
    Ok(ReadFilter::Compare(attribute, operator(op), operand))
}

fn operator(op: &CompareOp) -> Op {
    match op {
        CompareOp::Eq => Op::Eq,
        CompareOp::Ne => Op::Ne,
        CompareOp::Co => Op::Co,
        CompareOp::Sw => Op::Sw,
        CompareOp::Ew => Op::Ew,
        CompareOp::Gt => Op::Gt,
        CompareOp::Ge => Op::Ge,
        CompareOp::Lt => Op::Lt,
        CompareOp::Le => Op::Le,
    }
}

fn operand(value: &CompValue) -> Operand {
    match value {
        CompValue::Str(text) => Operand::Text(text.clone()),
        CompValue::True => Operand::Bool(true),
        CompValue::False => Operand::Bool(false),
        CompValue::Null => Operand::Null,
        CompValue::Number(number) => Operand::Text(number.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_clamps_as_scim_says() {
        let paging = Paging::new(Some(0), Some(1000), 100);
        assert_eq!(
            (paging.start_index, paging.count, paging.offset()),
            (1, 100, 0)
        );
        let paging = Paging::new(None, Some(0), 100);
        assert_eq!(paging.count, 0);
        let paging = Paging::new(Some(11), None, 100);
        assert_eq!((paging.offset(), paging.count), (10, 100));
    }

    #[test]
    fn a_projection_keeps_id_and_names_in_any_case() {
        let resource =
            json!({ "id": "1", "schemas": [], "userName": "a", "emails": [], "members": [] });
        let only = Projection::new(Some("USERNAME"), None).apply(resource.clone());
        assert_eq!(only, json!({ "id": "1", "schemas": [], "userName": "a" }));
        let except = Projection::new(None, Some("members")).apply(resource);
        assert!(except.get("members").is_none() && except.get("emails").is_some());
        let urn = Projection::new(
            None,
            Some("urn:ietf:params:scim:schemas:core:2.0:Group:members"),
        );
        assert!(!urn.shows("members"));
    }

    #[test]
    fn filters_read_in_any_case_and_what_is_not_kept_is_refused() {
        let found = filter(Some(r#"UserName eq "Bjensen""#), Over::Users).unwrap();
        assert_eq!(
            found,
            Some(ReadFilter::Compare(
                Attribute::Username,
                Op::Eq,
                Operand::Text("Bjensen".into())
            ))
        );
        let quirk = filter(
            Some(r#"emails[type eq "work"].value eq "b@x.com""#),
            Over::Users,
        );
        let valid = filter(
            Some(r#"emails[type eq "work" and value eq "b@x.com"]"#),
            Over::Users,
        );
        assert_eq!(quirk.unwrap(), valid.unwrap());
        assert_eq!(filter(None, Over::Users).unwrap(), None);
        for (refused, over) in [
            (r#"nickName eq "b""#, Over::Users),
            ("userName eq", Over::Users),
            (r#"members eq "x""#, Over::Groups),
            ("userName eq true", Over::Users),
            ("userName eq null", Over::Users),
            (r#"active eq "true""#, Over::Users),
            ("active gt true", Over::Users),
            ("emails[value eq null]", Over::Users),
        ] {
            let error = filter(Some(refused), over).unwrap_err();
            assert_eq!(error.scim_type, Some(ScimType::InvalidFilter), "{refused}");
        }
    }
}

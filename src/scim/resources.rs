//! Users and groups as SCIM shows them (RFC 7643 sections 4.1 and 4.2), and what every
//! read takes: `attributes` / `excludedAttributes`, a filter, and 1-based paging.

use std::str::FromStr;

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter};
use scim_v2::models::errors::ScimType;
use scim_v2::schema_urns;
use serde_json::{Value, json};

use super::ScimError;
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
    let name = [profile.firstname.as_deref(), profile.lastname.as_deref()];
    let display = match name {
        [None, None] => user.username.clone(),
        [first, last] => [first, last]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
    };
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
    json!({
        "schemas": [schema_urns::USER],
        "id": user.id,
        "userName": user.username,
        "name": {
            "givenName": profile.firstname,
            "familyName": profile.lastname,
        },
        "displayName": display,
        "emails": [{ "value": user.email, "type": "work", "primary": true }],
        "active": !suspended,
        "groups": groups,
        "meta": {
            "resourceType": "User",
            "created": user.created,
            "lastModified": user.modified,
            "location": location(req, &format!("/Users/{}", user.id)),
        },
    })
}

/// A group, with its direct members (`id`, username) when they are asked for.
pub fn group(req: &HttpRequest, group: &GroupView, members: Option<&[(String, String)]>) -> Value {
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
            .map(|(id, username)| {
                json!({
                    "value": id,
                    "$ref": location(req, &format!("/Users/{id}")),
                    "display": username,
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

/// What a list's filter asks for, as far as this service answers filters so far: one
/// attribute equal to a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equals {
    /// The attribute, in lower case, with a sub-attribute as `emails.value`.
    pub attribute: String,
    pub value: String,
}

/// The filter, if any, as an `attribute eq "value"`: 400 `invalidFilter` for one that
/// does not parse or asks for more.
pub fn equals(filter: Option<&str>) -> Result<Option<Equals>, ScimError> {
    let Some(text) = filter.map(str::trim).filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    let invalid = |detail: String| {
        ScimError::new(
            StatusCode::BAD_REQUEST,
            Some(ScimType::InvalidFilter),
            detail,
        )
    };
    let parsed =
        Filter::from_str(text).map_err(|e| invalid(format!("The filter does not parse: {e}.")))?;
    match parsed {
        Filter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(value))) => {
            Ok(Some(Equals {
                attribute: attribute_name(&path),
                value,
            }))
        }
        _ => Err(invalid(
            "Only a filter of one attribute equal to a string (such as \
             userName eq \"bjensen\") is answered so far."
                .into(),
        )),
    }
}

fn attribute_name(path: &AttrPath) -> String {
    let mut name = path.name.to_lowercase();
    if let Some(sub) = &path.sub_attr {
        name = format!("{name}.{}", sub.to_lowercase());
    }
    name
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
    fn an_equality_filter_is_read_and_anything_else_refused() {
        let found = equals(Some(r#"UserName eq "Bjensen""#)).unwrap().unwrap();
        assert_eq!(
            (found.attribute.as_str(), found.value.as_str()),
            ("username", "Bjensen")
        );
        let email = equals(Some(r#"emails.value eq "b@x.com""#))
            .unwrap()
            .unwrap();
        assert_eq!(email.attribute, "emails.value");
        assert_eq!(equals(None).unwrap(), None);
        for refused in [
            r#"userName sw "b""#,
            "userName eq",
            r#"a eq "1" or b eq "2""#,
        ] {
            let error = equals(Some(refused)).unwrap_err();
            assert_eq!(error.scim_type, Some(ScimType::InvalidFilter), "{refused}");
        }
    }
}

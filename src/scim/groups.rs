//! `POST /Groups`, `PUT`, `PATCH` and `DELETE /Groups/{id}`: an identity provider's
//! changes to groups, each one `Service` command decided as a whole. A PATCH's operations
//! are folded, in order, into one change (a rename, an external id, the members added and
//! removed, or the members wanted), so the member list is never read, edited and written
//! back: each membership that changes is an event of its own, checked when it is applied,
//! exactly as the Contensis API's calls are.

use std::collections::BTreeSet;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use scim_v2::filter::{AttrExp, CompValue, CompareOp, PatchPath, ValFilter};
use scim_v2::models::errors::ScimType;
use serde_json::Value;
use uuid::Uuid;

use super::body::{Op, attributes, external_id, invalid, operations, short_name, write_of};
use super::reads::{TooMany, show_group};
use super::resources::{Projection, location};
use super::{ScimCaller, ScimError};
use crate::domain::{
    Command, Custom, GroupIdentifier, GroupName, GroupType, MemberChange, NewGroup, Set,
    UserIdentifier,
};
use crate::read_model::GroupView;
use crate::service::Service;

fn display_name(value: &Value) -> Result<GroupName, ScimError> {
    let text = value
        .as_str()
        .ok_or_else(|| invalid(ScimType::InvalidValue, "displayName must be a string."))?;
    GroupName::parse(text).map_err(|e| invalid(ScimType::InvalidValue, format!("displayName {e}.")))
}

/// The users `members` names (`[{"value": id}, ...]`; a single member object too).
fn member_ids(value: &Value) -> Result<Vec<Uuid>, ScimError> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        Value::Object(_) => std::slice::from_ref(value),
        Value::Null => &[],
        _ => return Err(invalid(ScimType::InvalidValue, "members must be a list.")),
    };
    items
        .iter()
        .map(|item| {
            // Members without a type are users; a group as a member is not taken here.
            if item["type"]
                .as_str()
                .is_some_and(|t| !t.eq_ignore_ascii_case("user"))
            {
                return Err(invalid(
                    ScimType::InvalidValue,
                    "Only users can be members here.",
                ));
            }
            (item["value"].as_str())
                .and_then(|id| Uuid::try_parse(id).ok())
                .ok_or_else(|| {
                    invalid(
                        ScimType::InvalidValue,
                        "A member's value must be a user id.",
                    )
                })
        })
        .collect()
}

fn users(ids: Vec<Uuid>) -> Vec<UserIdentifier> {
    ids.into_iter().map(UserIdentifier::Id).collect()
}

/// A group as a POST or PUT sends it: its name, external id and, if given, members.
struct GroupBody {
    name: GroupName,
    external_id: Option<String>,
    members: Option<Vec<Uuid>>,
}

impl GroupBody {
    /// Read-only and unknown attributes (`id`, `meta`, `schemas`) are ignored.
    fn parse(body: Value) -> Result<Self, ScimError> {
        let fields = attributes(body)?;
        let name = fields
            .get("displayname")
            .ok_or_else(|| invalid(ScimType::InvalidValue, "displayName is required."))?;
        Ok(Self {
            name: display_name(name)?,
            external_id: fields
                .get("externalid")
                .map(external_id)
                .transpose()?
                .flatten(),
            members: fields.get("members").map(member_ids).transpose()?,
        })
    }
}

pub async fn create(
    service: web::Data<Service>,
    caller: ScimCaller,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse, ScimError> {
    let body = GroupBody::parse(body.into_inner())?;
    let group_id = Uuid::new_v4();
    let command = Command::CreateGroup {
        group_id,
        group: NewGroup {
            name: body.name,
            description: None,
            // Made by an identity provider, which keeps it.
            group_type: GroupType::External,
            custom: Custom::new(),
            external_id: body.external_id,
        },
        members: users(body.members.unwrap_or_default()),
    };
    let made = service
        .execute_for(caller.0, write_of(&req)?, command)
        .await?;
    let group = service.stored_group(made.unwrap_or(group_id)).await?;
    let mut created = HttpResponse::Created();
    created.insert_header((
        header::LOCATION,
        location(&req, &format!("/Groups/{}", group.id)),
    ));
    answer(&service, caller, &req, &group, created).await
}

/// The answer to a write of `group`: the group as it now stands, with its ETag (without
/// members if it has too many to show).
async fn answer(
    service: &Service,
    caller: ScimCaller,
    req: &HttpRequest,
    group: &GroupView,
    mut response: HttpResponseBuilder,
) -> Result<HttpResponse, ScimError> {
    let projection = Projection::default();
    let shown = show_group(service, caller, req, &projection, group, TooMany::Omit).await?;
    Ok(response
        .insert_header((header::ETAG, super::resources::etag(group.version)))
        .content_type(super::SCIM_JSON)
        .json(shown))
}

fn group_id(id: &str) -> Result<GroupIdentifier, ScimError> {
    super::reads::id_of(id, "group").map(GroupIdentifier::Id)
}

/// `PUT`: the name and external id as sent (absent clears it), and the members as sent
/// if the body has them; without `members`, memberships are left alone.
pub async fn replace(
    service: web::Data<Service>,
    caller: ScimCaller,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ScimError> {
    let group = group_id(&id)?;
    let body = GroupBody::parse(body.into_inner())?;
    let members = match body.members {
        Some(members) => MemberChange::Replace(users(members)),
        None => MemberChange::Edit {
            add: Vec::new(),
            remove: Vec::new(),
        },
    };
    let command = Command::ChangeGroup {
        group: group.clone(),
        name: Set::To(body.name),
        external_id: Set::To(body.external_id),
        members,
    };
    service
        .execute_for(caller.0, write_of(&req)?, command)
        .await?;
    let group = service.group(caller.0, group).await?;
    answer(&service, caller, &req, &group, HttpResponse::Ok()).await
}

pub async fn delete(
    service: web::Data<Service>,
    caller: ScimCaller,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let command = Command::DeleteGroup {
        group: group_id(&id)?,
    };
    service
        .execute_for(caller.0, write_of(&req)?, command)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The members a PATCH wants, folded operation by operation; sets, so that each id
/// counts once and folding stays linear in the request's size.
enum Members {
    Edit {
        add: BTreeSet<Uuid>,
        remove: BTreeSet<Uuid>,
    },
    Replace(BTreeSet<Uuid>),
}

impl Members {
    fn add(&mut self, ids: Vec<Uuid>) {
        for id in ids {
            match self {
                Self::Edit { add, remove } => {
                    remove.remove(&id);
                    add.insert(id);
                }
                Self::Replace(wanted) => {
                    wanted.insert(id);
                }
            }
        }
    }

    fn remove(&mut self, ids: Vec<Uuid>) {
        for id in ids {
            match self {
                Self::Edit { add, remove } => {
                    add.remove(&id);
                    remove.insert(id);
                }
                Self::Replace(wanted) => {
                    wanted.remove(&id);
                }
            }
        }
    }

    fn into_change(self) -> MemberChange {
        let users = |ids: BTreeSet<Uuid>| ids.into_iter().map(UserIdentifier::Id).collect();
        match self {
            Self::Edit { add, remove } => MemberChange::Edit {
                add: users(add),
                remove: users(remove),
            },
            Self::Replace(wanted) => MemberChange::Replace(users(wanted)),
        }
    }
}

/// What a PATCH asks of a group, folded from its operations in order.
struct Patch {
    name: Set<GroupName>,
    external_id: Set<Option<String>>,
    members: Members,
}

impl Patch {
    fn parse(body: Value) -> Result<Self, ScimError> {
        let fields = attributes(body)?;
        let mut patch = Self {
            name: Set::Keep,
            external_id: Set::Keep,
            members: Members::Edit {
                add: BTreeSet::new(),
                remove: BTreeSet::new(),
            },
        };
        for operation in operations(&fields)? {
            match operation.path {
                None => patch.without_path(operation.op, operation.value)?,
                Some((text, path)) => patch.at_path(operation.op, text, path, operation.value)?,
            }
        }
        Ok(patch)
    }

    /// An operation without a path: its value's attributes are the targets.
    fn without_path(&mut self, op: Op, value: &Value) -> Result<(), ScimError> {
        for (name, value) in attributes(value.clone())? {
            self.attribute(op, &name, value)?;
        }
        Ok(())
    }

    fn at_path(
        &mut self,
        op: Op,
        path: &str,
        parsed: PatchPath,
        value: &Value,
    ) -> Result<(), ScimError> {
        match parsed {
            PatchPath::Attr(attr) if attr.sub_attr.is_none() => {
                self.attribute(op, &short_name(&attr.name), value.clone())
            }
            PatchPath::Value(target)
                if short_name(&target.attr.name) == "members" && op == Op::Remove =>
            {
                let ValFilter::Attr(AttrExp::Comparison(on, CompareOp::Eq, CompValue::Str(id))) =
                    target.filter
                else {
                    return Err(invalid(
                        ScimType::InvalidFilter,
                        "Members are removed by value eq \"id\".",
                    ));
                };
                if !on.name.eq_ignore_ascii_case("value") {
                    return Err(invalid(
                        ScimType::InvalidFilter,
                        "Members are removed by value eq \"id\".",
                    ));
                }
                // An id no user could have is no member: nothing to remove.
                self.members
                    .remove(Uuid::try_parse(&id).into_iter().collect());
                Ok(())
            }
            _ => Err(invalid(
                ScimType::InvalidPath,
                format!("The path {path} names nothing a group has here."),
            )),
        }
    }

    /// One attribute's operation: `displayName`, `externalId` or `members`; read-only
    /// ones sent back as they are (`id`, `meta`, `schemas`) are ignored.
    fn attribute(&mut self, op: Op, name: &str, value: Value) -> Result<(), ScimError> {
        match (name, op) {
            ("displayname", Op::Remove) => Err(invalid(
                ScimType::Mutability,
                "displayName is required; it can be replaced, not removed.",
            )),
            ("displayname", _) => {
                self.name = Set::To(display_name(&value)?);
                Ok(())
            }
            ("externalid", Op::Remove) => {
                self.external_id = Set::To(None);
                Ok(())
            }
            ("externalid", _) => {
                self.external_id = Set::To(external_id(&value)?);
                Ok(())
            }
            ("members", Op::Add) => {
                self.members.add(member_ids(&value)?);
                Ok(())
            }
            // Without a value, every member goes (RFC 7644 section 3.5.2.2).
            ("members", Op::Remove) if value.is_null() => {
                self.members = Members::Replace(BTreeSet::new());
                Ok(())
            }
            ("members", Op::Remove) => {
                self.members.remove(member_ids(&value)?);
                Ok(())
            }
            ("members", Op::Replace) => {
                self.members = Members::Replace(member_ids(&value)?.into_iter().collect());
                Ok(())
            }
            ("id" | "meta" | "schemas", _) => Ok(()),
            (other, _) => Err(invalid(
                ScimType::InvalidPath,
                format!("A group has no attribute {other} here."),
            )),
        }
    }
}

/// `PATCH`: 204 once every change shows in this instance's reads; a change that changes
/// nothing (a member already there, or already gone) appends nothing.
pub async fn patch(
    service: web::Data<Service>,
    caller: ScimCaller,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ScimError> {
    let group = group_id(&id)?;
    let patch = Patch::parse(body.into_inner())?;
    let command = Command::ChangeGroup {
        group,
        name: patch.name,
        external_id: patch.external_id,
        members: patch.members.into_change(),
    };
    service
        .execute_for(caller.0, write_of(&req)?, command)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

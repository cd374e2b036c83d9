//! What every SCIM write reads from its request: attribute names in any case and with or
//! without their schema URN, a PATCH's operations, the `If-Match`, and the values users
//! and groups share (`externalId`).

use std::str::FromStr;

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use scim_v2::filter::PatchPath;
use scim_v2::models::errors::ScimType;
use serde_json::{Map, Value};

use super::ScimError;
use crate::service::Write;

/// The longest `externalId` kept, in characters.
const EXTERNAL_ID_MAX_CHARS: usize = 256;
/// The most operations one PATCH may have.
const OPERATIONS_MAX: usize = 1000;

pub fn invalid(scim_type: ScimType, detail: impl Into<String>) -> ScimError {
    ScimError::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
}

/// The request's logId, and its `If-Match` on the group's version (`meta.version`, the
/// ETag): never required; one that no longer holds is 412 and changes nothing.
pub fn write_of(req: &HttpRequest) -> Result<Write, ScimError> {
    let if_match = crate::http::if_match(req).map_err(|e| invalid(ScimType::InvalidSyntax, e))?;
    Ok(Write {
        if_match,
        ..Write::new(crate::http::log_id(req).0)
    })
}

/// The attributes of a body, their names in lower case without a schema URN prefix
/// (`urn:ietf:params:scim:schemas:core:2.0:Group:displayName` is `displayname`). An
/// extension's attributes sent as one object under its URN come out as that URN.
pub fn attributes(body: Value) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(fields) = body else {
        return Err(invalid(
            ScimType::InvalidSyntax,
            "The body must be a JSON object.",
        ));
    };
    Ok((fields.into_iter())
        .map(
            |(name, value)| match value.is_object() && is_schema_urn(&name) {
                true => (name.to_lowercase(), value),
                false => (short_name(&name), value),
            },
        )
        .collect())
}

/// Whether the name is a schema's URN (`urn:...:2.0:User`) rather than an attribute's.
fn is_schema_urn(name: &str) -> bool {
    name.starts_with("urn:")
        && name
            .rsplit(':')
            .next()
            .is_some_and(|last| last.starts_with(char::is_uppercase))
}

pub fn short_name(name: &str) -> String {
    let short = match name.rsplit_once(':') {
        Some((urn, short)) if urn.starts_with("urn:") => short,
        _ => name,
    };
    short.to_lowercase()
}

pub fn external_id(value: &Value) -> Result<Option<String>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) if text.chars().count() <= EXTERNAL_ID_MAX_CHARS => {
            Ok(Some(text.clone()))
        }
        _ => Err(invalid(
            ScimType::InvalidValue,
            format!("externalId must be a string of at most {EXTERNAL_ID_MAX_CHARS} characters."),
        )),
    }
}

/// A boolean, also as the strings providers send (`"True"`, `"False"`, any case).
pub fn boolean(name: &str, value: &Value) -> Result<bool, ScimError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(invalid(
            ScimType::InvalidValue,
            format!("{name} must be true or false."),
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

/// One operation of a PATCH: its op (any letter case), its path if it has one, parsed,
/// and its value.
pub struct Operation<'a> {
    pub op: Op,
    pub path: Option<(&'a str, PatchPath)>,
    pub value: &'a Value,
}

/// A PATCH body's operations, in order, each checked as it comes.
pub fn operations(fields: &Map<String, Value>) -> Result<Vec<Operation<'_>>, ScimError> {
    let operations = fields
        .get("operations")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(ScimType::InvalidSyntax, "A PATCH needs its Operations."))?;
    if operations.len() > OPERATIONS_MAX {
        return Err(invalid(
            ScimType::TooMany,
            format!("A PATCH may have at most {OPERATIONS_MAX} operations."),
        ));
    }
    operations.iter().map(operation).collect()
}

fn operation(operation: &Value) -> Result<Operation<'_>, ScimError> {
    let op = match operation["op"].as_str().map(str::to_lowercase).as_deref() {
        Some("add") => Op::Add,
        Some("remove") => Op::Remove,
        Some("replace") => Op::Replace,
        _ => {
            return Err(invalid(
                ScimType::InvalidSyntax,
                "op must be add, remove or replace.",
            ));
        }
    };
    let path = match operation["path"]
        .as_str()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        None if op == Op::Remove => {
            return Err(invalid(ScimType::NoTarget, "A remove needs a path."));
        }
        None => None,
        Some(text) => Some((
            text,
            PatchPath::from_str(text).map_err(|e| {
                invalid(
                    ScimType::InvalidPath,
                    format!("The path does not parse: {e}."),
                )
            })?,
        )),
    };
    Ok(Operation {
        op,
        path,
        value: &operation["value"],
    })
}

//! What a SCIM client asks first (RFC 7644 section 4): the service provider's
//! configuration, its resource types, and the schemas of its resources, which name only
//! the attributes this service keeps. None of them takes a filter (403 `sensitive`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use scim_v2::models::errors::ScimType;
use scim_v2::schema_urns;
use serde_json::{Value, json};

use super::resources::{self, Paging, location};
use super::{ScimCaller, ScimError, scim_json};
use crate::service::Service;

/// Query parameters the discovery endpoints look at.
#[derive(Debug, serde::Deserialize)]
pub struct DiscoveryQuery {
    filter: Option<String>,
}

/// The caller must be allowed SCIM at all, and may not filter a discovery document.
async fn admit(
    service: &Service,
    caller: ScimCaller,
    query: &DiscoveryQuery,
) -> Result<(), ScimError> {
    service.require_administrator(caller.0).await?;
    if query.filter.is_some() {
        return Err(ScimError::new(
            StatusCode::FORBIDDEN,
            Some(ScimType::Sensitive),
            "Discovery documents take no filter.",
        ));
    }
    Ok(())
}

pub async fn service_provider_config(
    service: web::Data<Service>,
    caller: ScimCaller,
    query: web::Query<DiscoveryQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ScimError> {
    admit(&service, caller, &query).await?;
    let config = json!({
        "schemas": [schema_urns::SERVICE_PROVIDER_CONFIG],
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": service.page_size_max },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A bearer token of an administrator or an API client with the scim scope, \
                            in the Authorization header.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": location(&req, "/ServiceProviderConfig"),
        },
    });
    Ok(scim_json(StatusCode::OK, &config))
}

/// The resource types, by id (`User`, `Group`).
fn resource_type_documents(req: &HttpRequest) -> Vec<Value> {
    [
        (
            "User",
            "/Users",
            schema_urns::USER,
            "A person who may log in",
        ),
        ("Group", "/Groups", schema_urns::GROUP, "A group of users"),
    ]
    .into_iter()
    .map(|(id, endpoint, schema, description)| {
        json!({
            "schemas": [schema_urns::RESOURCE_TYPE],
            "id": id,
            "name": id,
            "endpoint": endpoint,
            "description": description,
            "schema": schema,
            "meta": {
                "resourceType": "ResourceType",
                "location": location(req, &format!("/ResourceTypes/{id}")),
            },
        })
    })
    .collect()
}

pub async fn resource_types(
    service: web::Data<Service>,
    caller: ScimCaller,
    query: web::Query<DiscoveryQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ScimError> {
    admit(&service, caller, &query).await?;
    Ok(scim_json(
        StatusCode::OK,
        &list(resource_type_documents(&req)),
    ))
}

pub async fn resource_type(
    service: web::Data<Service>,
    caller: ScimCaller,
    query: web::Query<DiscoveryQuery>,
    req: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    admit(&service, caller, &query).await?;
    one_of(resource_type_documents(&req), &name, "resource type")
}

pub async fn schemas(
    service: web::Data<Service>,
    caller: ScimCaller,
    query: web::Query<DiscoveryQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ScimError> {
    admit(&service, caller, &query).await?;
    Ok(scim_json(StatusCode::OK, &list(schema_documents(&req))))
}

pub async fn schema(
    service: web::Data<Service>,
    caller: ScimCaller,
    query: web::Query<DiscoveryQuery>,
    req: HttpRequest,
    urn: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    admit(&service, caller, &query).await?;
    one_of(schema_documents(&req), &urn, "schema")
}

/// The document of `documents` whose id is `id`, or a 404 naming the `kind` of document.
fn one_of(documents: Vec<Value>, id: &str, kind: &str) -> Result<HttpResponse, ScimError> {
    let found = (documents.into_iter())
        .find(|document| document["id"] == id)
        .ok_or_else(|| ScimError::not_found(format!("There is no {kind} {id}.")))?;
    Ok(scim_json(StatusCode::OK, &found))
}

/// A list response holding every one of `resources`.
fn list(resources: Vec<Value>) -> Value {
    let all = resources.len() as u64;
    let paging = Paging {
        start_index: 1,
        count: all,
    };
    resources::list(paging, all, resources)
}

/// An attribute's definition (RFC 7643 section 7), with the usual defaults: single
/// valued, optional, case-insensitive, read-write, returned by default, not unique.
fn attribute(name: &str, kind: &str, description: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "description": description,
        "required": false,
        "caseExact": false,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    })
}

/// `attribute` with some of its characteristics changed.
fn with(mut attribute: Value, changes: Value) -> Value {
    if let (Some(fields), Value::Object(changes)) = (attribute.as_object_mut(), changes) {
        fields.extend(changes);
    }
    attribute
}

/// A multi-valued reference to users or groups (`members`, `groups`), with the name of
/// what it references if `display`.
fn references(
    name: &str,
    description: &str,
    mutability: &str,
    types: &[&str],
    display: bool,
) -> Value {
    let reference = with(
        attribute("$ref", "reference", "The URI of the referenced resource."),
        json!({ "referenceTypes": types, "mutability": mutability }),
    );
    let sub_attributes: Vec<Value> = [
        Some(with(
            attribute("value", "string", "The id of the referenced resource."),
            json!({ "mutability": mutability }),
        )),
        Some(reference),
        display.then(|| {
            with(
                attribute("display", "string", "The referenced resource's name."),
                json!({ "mutability": "readOnly" }),
            )
        }),
        Some(with(
            attribute("type", "string", "What the reference is to."),
            json!({ "canonicalValues": types, "mutability": mutability }),
        )),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    with(
        attribute(name, "complex", description),
        json!({
            "multiValued": true,
            "mutability": mutability,
            "subAttributes": sub_attributes,
        }),
    )
}

fn user_schema() -> Value {
    let name = with(
        attribute("name", "complex", "The user's name."),
        json!({ "subAttributes": [
            attribute("givenName", "string", "The user's first name."),
            attribute("familyName", "string", "The user's last name."),
        ]}),
    );
    let emails = with(
        attribute(
            "emails",
            "complex",
            "The user's email (one is kept: the primary, else the first work one, else the \
             first).",
        ),
        json!({
            "multiValued": true,
            "required": true,
            "subAttributes": [
                with(
                    attribute("value", "string", "An email address."),
                    json!({ "required": true }),
                ),
                with(
                    attribute("type", "string", "The kind of address."),
                    json!({ "canonicalValues": ["work", "home", "other"] }),
                ),
                attribute("primary", "boolean", "Whether it is the user's primary address."),
            ],
        }),
    );
    json!({
        "id": schema_urns::USER,
        "name": "User",
        "description": "A person who may log in.",
        "attributes": [
            with(
                attribute("userName", "string", "Unique; compared in any case, kept as sent."),
                json!({ "required": true, "uniqueness": "server" }),
            ),
            name,
            attribute("displayName", "string", "The name to show for the user."),
            emails,
            with(
                attribute(
                    "active",
                    "boolean",
                    "False while the user is suspended; a user always has it (true when a \
                     creation does not say), so it is replaced, never removed.",
                ),
                json!({ "required": true }),
            ),
            attribute("preferredLanguage", "string", "The user's language."),
            attribute("timezone", "string", "The user's time zone."),
            references("groups", "The groups the user is a direct member of.", "readOnly", &["direct"], true),
        ],
    })
}

fn group_schema() -> Value {
    json!({
        "id": schema_urns::GROUP,
        "name": "Group",
        "description": "A group of users.",
        "attributes": [
            with(
                attribute("displayName", "string", "Unique; compared in any case."),
                json!({ "required": true, "uniqueness": "server" }),
            ),
            references("members", "The group's direct members.", "readWrite", &["User"], false),
        ],
    })
}

fn schema_documents(req: &HttpRequest) -> Vec<Value> {
    [user_schema(), group_schema()]
        .into_iter()
        .map(|mut schema| {
            let id = schema["id"].as_str().unwrap_or_default().to_owned();
            schema["schemas"] = json!([schema_urns::SCHEMA]);
            schema["meta"] = json!({
                "resourceType": "Schema",
                "location": location(req, &format!("/Schemas/{id}")),
            });
            schema
        })
        .collect()
}

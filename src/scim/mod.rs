//! SCIM 2.0 (RFC 7643, RFC 7644) under `/scim/v2`: the protocol identity providers
//! (Microsoft Entra ID, Okta) provision through. A second protocol over the same
//! `Service` as the Contensis API: it parses SCIM requests into domain values, calls the
//! service, and renders `ServiceError` as the SCIM error form (`error.rs`).
//!
//! Served: the discovery documents (`/ServiceProviderConfig`, `/ResourceTypes`,
//! `/Schemas`), users and groups (`/Users`, `/Groups`: reads with filters and paging,
//! and every write), `/Bulk` (501), and the SCIM error form for everything under
//! `/scim/v2`.
//!
//! Architecture Invariant: nothing here touches SQLite or the log; like `src/http`, it
//! calls `Service`.

mod body;
mod discovery;
mod error;
mod groups;
mod reads;
mod resources;
mod users;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use std::future::{Ready, ready};

pub use error::ScimError;

use crate::auth::Bearer;
use crate::service::Service;

/// The media type of every SCIM answer.
pub const SCIM_JSON: &str = "application/scim+json";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/scim/v2")
            .route(
                "/ServiceProviderConfig",
                web::get().to(discovery::service_provider_config),
            )
            .route("/ResourceTypes", web::get().to(discovery::resource_types))
            .route(
                "/ResourceTypes/{name}",
                web::get().to(discovery::resource_type),
            )
            .route("/Schemas", web::get().to(discovery::schemas))
            .route("/Schemas/{urn}", web::get().to(discovery::schema))
            // The discovery documents are read-only.
            .route("/ServiceProviderConfig", not_allowed("GET"))
            .route("/ResourceTypes", not_allowed("GET"))
            .route("/ResourceTypes/{name}", not_allowed("GET"))
            .route("/Schemas", not_allowed("GET"))
            .route("/Schemas/{urn}", not_allowed("GET"))
            .route("/Users", web::get().to(reads::users))
            .route("/Users", web::post().to(users::create))
            .route("/Users/{id}", web::get().to(reads::user))
            .route("/Users/{id}", web::put().to(users::replace))
            .route("/Users/{id}", web::patch().to(users::patch))
            .route("/Users/{id}", web::delete().to(users::delete))
            .route("/Users", not_allowed("GET, POST"))
            .route("/Users/{id}", not_allowed("GET, PUT, PATCH, DELETE"))
            .app_data(json_config())
            .app_data(web::QueryConfig::default().error_handler(|error, _| {
                let detail = format!("The query string is not valid: {error}.");
                ScimError::new(
                    StatusCode::BAD_REQUEST,
                    Some(scim_v2::models::errors::ScimType::InvalidValue),
                    detail,
                )
                .into()
            }))
            .route("/Groups", web::get().to(reads::groups))
            .route("/Groups", web::post().to(groups::create))
            .route("/Groups/{id}", web::get().to(reads::group))
            .route("/Groups/{id}", web::put().to(groups::replace))
            .route("/Groups/{id}", web::patch().to(groups::patch))
            .route("/Groups/{id}", web::delete().to(groups::delete))
            .route("/Groups", not_allowed("GET, POST"))
            .route("/Groups/{id}", not_allowed("GET, PUT, PATCH, DELETE"))
            .route("/Bulk", web::post().to(bulk))
            .route("/Bulk", not_allowed("POST"))
            .route("/.search", web::post().to(search))
            .route("/.search", not_allowed("POST"))
            .default_service(web::to(no_such_resource)),
    );
}

/// SCIM bodies: `application/scim+json` or `application/json`, with or without a
/// charset, at most 1 MiB (a PATCH of a thousand members); a body that is no JSON is
/// `invalidSyntax`.
fn json_config() -> web::JsonConfig {
    const BODY_MAX_BYTES: usize = 1 << 20;
    web::JsonConfig::default()
        .limit(BODY_MAX_BYTES)
        .content_type(|mime| {
            mime.type_() == "application" && (mime.subtype() == "json" || mime.subtype() == "scim")
        })
        .error_handler(|error, _| {
            let detail = format!("The body could not be read as SCIM JSON: {error}.");
            let status = actix_web::ResponseError::status_code(&error);
            ScimError::new(
                status,
                Some(scim_v2::models::errors::ScimType::InvalidSyntax),
                detail,
            )
            .into()
        })
}

/// A SCIM caller: a bearer token that verifies. Whether it still stands, and what it may
/// do, the service decides.
#[derive(Debug, Clone, Copy)]
pub struct ScimCaller(pub Bearer);

impl FromRequest for ScimCaller {
    type Error = ScimError;
    type Future = Ready<Result<Self, ScimError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            crate::http::bearer_of(req)
                .map(|bearer| {
                    ScimCaller(Bearer {
                        scim: true,
                        ..bearer
                    })
                })
                .ok_or_else(ScimError::unauthorized),
        )
    }
}

/// An answer in the SCIM media type.
fn scim_json(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(SCIM_JSON)
        .json(body)
}

/// Bulk operations are not supported (`bulk.supported` is false).
async fn bulk(service: web::Data<Service>, caller: ScimCaller) -> Result<HttpResponse, ScimError> {
    service.require_administrator(caller.0).await?;
    Err(ScimError::new(
        StatusCode::NOT_IMPLEMENTED,
        None,
        "Bulk operations are not supported; send each request on its own.",
    ))
}

/// Searches by POST (RFC 7644 section 3.4.3) are not served: filters go in the query of
/// a GET.
async fn search(
    service: web::Data<Service>,
    caller: ScimCaller,
) -> Result<HttpResponse, ScimError> {
    service.require_administrator(caller.0).await?;
    Err(ScimError::new(
        StatusCode::NOT_IMPLEMENTED,
        None,
        "Searches by POST are not supported; send the filter in the query of a GET.",
    ))
}

/// Every other method on a resource: 405 with the `Allow` header RFC 9110 asks for,
/// listing the methods the routes above serve (`tests/tidy.rs` checks the list against
/// schemas/openapi.json).
fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::route().to(move |req: HttpRequest| async move {
        Err::<HttpResponse, _>(ScimError::method_not_allowed(req.path(), allow))
    })
}

async fn no_such_resource(req: HttpRequest) -> Result<HttpResponse, ScimError> {
    Err(ScimError::not_found(format!(
        "No SCIM resource at {}.",
        req.path()
    )))
}

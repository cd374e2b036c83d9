//! The HTTP API: routes, extractors, and the mapping of every error to a response.
//! Handlers parse input into domain values once, then hand over to [`crate::service`].
//!
//! Architecture Invariant: handlers never touch SQLite or the log directly.

mod clients;
mod error;
mod extract;
mod feed;
mod groups;
mod members;
mod token;
mod users;

use actix_web::error::{JsonPayloadError, QueryPayloadError, UrlencodedError};
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::read_model::{Listed, Sort};
use crate::service::{GroupScope, List, ListRequest, Service, UserScope};

pub use error::{ApiError, OAuthError};
pub use extract::{InFlight, LogId, bearer_of, if_match, log_and_render_errors, log_id};
pub use feed::Streams;
pub use token::peer;

/// Both prefixes serve the same calls: the documentation's and the one the official
/// JavaScript client uses.
pub const PREFIXES: [&str; 2] = ["/api/management/security", "/api/security"];

pub fn routes(body_max_bytes: usize) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.app_data(json_config(body_max_bytes))
            .app_data(
                web::FormConfig::default()
                    .limit(4096)
                    .error_handler(form_error),
            )
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .app_data(web::PayloadConfig::new(body_max_bytes))
            .app_data(extract::BodyLimit(body_max_bytes))
            .service(web::resource("/health").route(web::get().to(health)))
            .service(web::resource("/health/live").route(web::get().to(live)))
            .service(web::resource("/health/ready").route(web::get().to(ready)))
            .service(web::resource("/openapi.json").route(web::get().to(openapi)))
            .service(
                web::resource("/authenticate/connect/token").route(web::post().to(token::issue)),
            )
            .service(
                web::resource("/authenticate/connect/revocation")
                    .route(web::post().to(token::revoke)),
            );
        // Identifier segments may be empty (`[^/]*`), so that an empty identifier is a
        // 400 rather than an unknown route; collections take an optional trailing slash,
        // as the documentation writes them (`POST .../groups/`). Resources, not routes,
        // so that a known path with another method is a 405. A path is matched against
        // the resources in turn, a regex each: the calls on one membership, which this
        // service is above all for, come first (`users{slash:/}` before them, since their
        // pattern also matches its paths).
        for prefix in PREFIXES {
            cfg.service(
                web::scope(prefix)
                    .service(
                        web::resource("/groups/{group:[^/]*}/users{slash:/}")
                            .route(web::get().to(members::list))
                            .route(web::post().to(members::add_many))
                            // A member method names a member with an empty identifier:
                            // refuse it as such.
                            .route(web::put().to(members::empty_user))
                            .route(web::delete().to(members::empty_user))
                            .route(web::head().to(members::empty_user)),
                    )
                    .service(
                        web::resource("/groups/{group:[^/]*}/users/{user:[^/]*}")
                            .route(web::put().to(members::add))
                            .route(web::delete().to(members::remove))
                            .route(web::head().to(members::check)),
                    )
                    .service(
                        web::resource("/users{slash:/?}")
                            .route(web::post().to(users::create))
                            .route(web::get().to(users::list)),
                    )
                    .service(web::resource("/events{slash:/?}").route(web::get().to(feed::list)))
                    .service(web::resource("/events/stream").route(web::get().to(feed::stream)))
                    .service(
                        web::resource("/clients{slash:/?}")
                            .route(web::post().to(clients::create))
                            .route(web::get().to(clients::list)),
                    )
                    .service(
                        web::resource("/clients/{client:[^/]*}")
                            .route(web::delete().to(clients::revoke)),
                    )
                    .service(
                        web::resource("/groups{slash:/?}")
                            .route(web::post().to(groups::create))
                            .route(web::get().to(groups::list)),
                    )
                    .service(
                        web::resource("/users/{user:[^/]*}")
                            .route(web::get().to(users::get))
                            .route(web::put().to(users::update))
                            .route(web::patch().to(users::patch))
                            .route(web::delete().to(users::delete)),
                    )
                    .service(
                        web::resource("/users/{user:[^/]*}/credentials/password")
                            .route(web::post().to(users::set_password)),
                    )
                    .service(
                        web::resource("/users/{user:[^/]*}/groups{slash:/?}")
                            .route(web::get().to(users::groups_of)),
                    )
                    .service(
                        web::resource("/users/{user:[^/]*}/groups/{groups:[^/]*}")
                            .route(web::head().to(users::in_any_group)),
                    )
                    .service(
                        web::resource("/groups/{group:[^/]*}")
                            .route(web::get().to(groups::get))
                            .route(web::put().to(groups::update))
                            .route(web::delete().to(groups::delete)),
                    )
                    .service(
                        web::resource("/groups/{group:[^/]*}/users")
                            .route(web::get().to(members::list))
                            .route(web::post().to(members::add_many)),
                    )
                    .service(
                        web::resource("/groups/{group:[^/]*}/groups{slash:/?}")
                            .route(web::get().to(groups::list_children))
                            .route(web::post().to(groups::add_children)),
                    )
                    .service(
                        web::resource("/groups/{group:[^/]*}/history")
                            .route(web::get().to(groups::history)),
                    )
                    .service(
                        web::resource("/groups/{group:[^/]*}/groups/{child:[^/]*}")
                            .route(web::put().to(groups::add_child))
                            .route(web::delete().to(groups::remove_child)),
                    ),
            );
        }
    }
}

/// `GET /metrics`, on the main listener or on `http.metrics_addr` alone.
pub fn metrics_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(metrics)));
}

/// The Prometheus text format, with the levels sampled now. Unauthenticated, like
/// `/health`: it carries counts and timings by route template, never a name or a secret.
async fn metrics(
    service: web::Data<Service>,
    streams: web::Data<Streams>,
    metrics: web::Data<&'static crate::metrics::Metrics>,
) -> HttpResponse {
    let text = metrics.render(&service, streams.open());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(text)
}

/// The OpenAPI 3.1 description of every call, kept in `schemas/openapi.json` and checked
/// against the router (`tests/tidy.rs`) and against the running server (schemathesis).
const OPENAPI: &str = include_str!("../../schemas/openapi.json");

/// `GET /openapi.json`: the description above, as it was built into this binary.
async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// `GET /health/live`: 200 while the process answers, from its first moment.
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "live" }))
}

/// `GET /health/ready`: 200 when the read model has caught up with the log, the log takes
/// appends (the brokers answer) and the service is not stopping; else 503 saying which.
async fn ready(service: web::Data<crate::service::Service>) -> HttpResponse {
    let readiness = service.readiness().await;
    let mut answer = match readiness.ready() {
        true => HttpResponse::Ok(),
        false => HttpResponse::ServiceUnavailable(),
    };
    let status = if readiness.ready() {
        "ready"
    } else {
        "not ready"
    };
    answer.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    answer.json(serde_json::json!({ "status": status, "checks": readiness }))
}

fn json_config(body_max_bytes: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(body_max_bytes)
        .error_handler(move |error, _req| {
            match error {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => ApiError::PayloadTooLarge(body_max_bytes),
                JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
                JsonPayloadError::Deserialize(e) if e.is_data() => {
                    ApiError::BadRequest(format!("The body does not fit this call: {e}."))
                }
                _ => ApiError::BadRequest("The body is not valid JSON.".into()),
            }
            .into()
        })
}

fn form_error(_: UrlencodedError, _: &actix_web::HttpRequest) -> actix_web::Error {
    OAuthError::new("invalid_request").into()
}

fn query_error(error: QueryPayloadError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("The query string is not valid: {error}.")).into()
}

/// The Contensis paged list; the counts are computed from the total, never guessed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PagedList<T> {
    page_index: u64,
    page_size: u64,
    total_count: u64,
    page_count: u64,
    items: Vec<T>,
}

impl<T> PagedList<T> {
    pub fn of(page: Page, list: List<T>) -> Self {
        Self {
            page_index: page.index,
            page_size: page.size,
            total_count: list.total,
            page_count: list.total.div_ceil(page.size),
            items: list.items,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub index: u64,
    pub size: u64,
}

impl Page {
    /// Items before this page; [`PageQuery::page`] made sure it fits.
    pub fn offset(self) -> u64 {
        self.index * self.size
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    page_index: Option<u64>,
    page_size: Option<u64>,
}

const PAGE_SIZE_DEFAULT: u64 = 25;
/// The longest `q` a list takes, in characters.
const SEARCH_MAX_CHARS: usize = 256;
/// The most keys an `order` may have.
const ORDER_KEYS_MAX: usize = 4;

/// The query of a list call: paging, a `q` search and an `order`; for lists of members
/// and groups, `includeInherited` (through child groups, at any depth) and, for child
/// groups, `includeSelf`. Not a flattened [`PageQuery`]: query strings are text, and
/// serde cannot read numbers and booleans from text through `flatten`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    page_index: Option<u64>,
    page_size: Option<u64>,
    q: Option<String>,
    order: Option<String>,
    #[serde(default)]
    include_inherited: bool,
    #[serde(default)]
    include_self: bool,
}

impl ListQuery {
    /// Answers a list of users (by username unless `order` says otherwise), over the users
    /// `scope` names, all from one snapshot.
    pub async fn users(
        &self,
        service: &Service,
        caller: extract::Caller,
        scope: UserScope,
    ) -> Result<HttpResponse, ApiError> {
        let (page, request) = self.request(service, Listed::Users, "username")?;
        let list = service.list_users(caller.0, scope, request).await?;
        Ok(HttpResponse::Ok().json(PagedList::of(page, list)))
    }

    /// Answers a list of groups (by name unless `order` says otherwise), over the groups
    /// `scope` names, all from one snapshot.
    pub async fn groups(
        &self,
        service: &Service,
        caller: extract::Caller,
        scope: GroupScope,
    ) -> Result<HttpResponse, ApiError> {
        let (page, request) = self.request(service, Listed::Groups, "name")?;
        let list = service.list_groups(caller.0, scope, request).await?;
        Ok(HttpResponse::Ok().json(PagedList::of(page, list)))
    }

    fn request(
        &self,
        service: &Service,
        listed: Listed,
        default_order: &str,
    ) -> Result<(Page, ListRequest), ApiError> {
        let page = self.page(service.page_size_max)?;
        let request = ListRequest {
            search: self.search()?,
            filter: None,
            sorts: self.sorts(listed, default_order)?,
            offset: page.offset(),
            limit: page.size,
        };
        Ok((page, request))
    }

    pub fn page(&self, size_max: u64) -> Result<Page, ApiError> {
        let paging = PageQuery {
            page_index: self.page_index,
            page_size: self.page_size,
        };
        paging.page(size_max)
    }

    /// The search text, if any: bounded and printable.
    pub fn search(&self) -> Result<Option<String>, ApiError> {
        let Some(q) = self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) else {
            return Ok(None);
        };
        if q.chars().count() > SEARCH_MAX_CHARS || q.chars().any(char::is_control) {
            return Err(ApiError::BadRequest(format!(
                "q must be at most {SEARCH_MAX_CHARS} printable characters."
            )));
        }
        Ok(Some(q.to_owned()))
    }

    /// The sort keys of `order` (comma-separated properties, `-` for descending), or the
    /// `default` property.
    pub fn sorts(&self, listed: Listed, default: &str) -> Result<Vec<Sort>, ApiError> {
        let order = self.order.as_deref().unwrap_or(default);
        let properties: Vec<&str> = order
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if properties.len() > ORDER_KEYS_MAX {
            return Err(ApiError::BadRequest(format!(
                "order may name at most {ORDER_KEYS_MAX} properties."
            )));
        }
        properties
            .into_iter()
            .map(|property| {
                listed.sort(property).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "order cannot use '{property}': it takes {}.",
                        listed.sortable().join(", ")
                    ))
                })
            })
            .collect()
    }
}

impl PageQuery {
    pub fn page(&self, size_max: u64) -> Result<Page, ApiError> {
        let size = self.page_size.unwrap_or(PAGE_SIZE_DEFAULT.min(size_max));
        if size == 0 || size > size_max {
            return Err(ApiError::BadRequest(format!(
                "pageSize must be between 1 and {size_max}."
            )));
        }
        let index = self.page_index.unwrap_or(0);
        let offset_fits = index
            .checked_mul(size)
            .is_some_and(|offset| i64::try_from(offset).is_ok());
        if !offset_fits {
            return Err(ApiError::BadRequest(
                "pageIndex is beyond any possible result.".into(),
            ));
        }
        Ok(Page { index, size })
    }
}

//! What handlers take from a request besides the body: the logId, the authenticated
//! caller, and identifiers decoded from the raw path.

use std::future::{Ready, ready};
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use blake2::{Blake2s256, Digest};
use percent_encoding::percent_decode_str;
use uuid::Uuid;

use super::error::{ApiError, OAuthError};
use crate::auth::Bearer;
use crate::domain::{GroupIdentifier, Idempotency, InvalidName, UserIdentifier};
use crate::service::{IfMatch, Service, Write};

/// The id of one request: in its Error body, on its log lines, and as the correlation id
/// of the events it appends.
#[derive(Debug, Clone, Copy)]
pub struct LogId(pub Uuid);

/// The most entity tags one `If-Match` may list.
const IF_MATCH_TAGS_MAX: usize = 16;

impl FromRequest for Write {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = req
            .extensions_mut()
            .remove::<KeyHeader>()
            .and_then(|header| header.0)
            .transpose();
        let if_match = if_match(req).map_err(ApiError::BadRequest);
        ready(if_match.and_then(|if_match| {
            Ok(Write {
                log_id: log_id(req).0,
                if_match,
                idempotency: key?,
            })
        }))
    }
}

/// `If-Match`: `*`, or a list of entity tags, compared strongly (RFC 9110): byte for byte
/// with the tag this service writes (`"7"`), so a weak tag (`W/"7"`) never matches. A
/// header that is neither is refused with a message for the caller, which each protocol
/// renders as its own 400.
pub fn if_match(req: &HttpRequest) -> Result<Option<IfMatch>, String> {
    let mut headers = req.headers().get_all(header::IF_MATCH).peekable();
    if headers.peek().is_none() {
        return Ok(None);
    }
    let invalid = || "If-Match must be * or a list of entity tags such as \"7\".".to_owned();
    let mut tags = Vec::new();
    for value in headers {
        let text = value.to_str().map_err(|_| invalid())?;
        for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if tag == "*" {
                return Ok(Some(IfMatch::Any));
            }
            let opaque = tag.strip_prefix("W/").unwrap_or(tag);
            if opaque.len() < 2 || !opaque.starts_with('"') || !opaque.ends_with('"') {
                return Err(invalid());
            }
            tags.push(tag.to_owned());
        }
    }
    if tags.is_empty() {
        return Err(invalid());
    }
    if tags.len() > IF_MATCH_TAGS_MAX {
        return Err(format!(
            "If-Match may list at most {IF_MATCH_TAGS_MAX} entity tags."
        ));
    }
    Ok(Some(IfMatch::Tags(tags)))
}

/// The largest body a request may have, as the routes were configured.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    const DEFAULT: usize = 256 * 1024;
}

const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The longest `Idempotency-Key`, in bytes.
const IDEMPOTENCY_KEY_MAX_BYTES: usize = 255;

/// The `Idempotency-Key` of a request, read by the middleware (which alone sees the body
/// before the handler) and taken by the [`Write`] extractor.
struct KeyHeader(Option<Result<Idempotency, ApiError>>);

/// The key and a fingerprint of the request (method, path and query, body), the body put
/// back for the handler. Keys are 1 to 255 visible ASCII characters.
async fn idempotency(req: &mut ServiceRequest) -> Result<Idempotency, ApiError> {
    let key = req
        .headers()
        .get(IDEMPOTENCY_KEY)
        .map(|value| value.as_bytes().to_vec())
        .unwrap_or_default();
    let visible = key.iter().all(|b| (0x21..=0x7e).contains(b));
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_MAX_BYTES || !visible {
        return Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX_BYTES} visible ASCII characters."
        )));
    }
    // The body as sent (still compressed, if it is), bounded like any body.
    let limit = req
        .app_data::<BodyLimit>()
        .map_or(BodyLimit::DEFAULT, |l| l.0);
    let payload = req
        .extract::<web::Payload>()
        .await
        .map_err(|e| ApiError::from_status(e.as_response_error().status_code(), &e))?;
    let body = payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(limit))?
        .map_err(|_| ApiError::BadRequest("The request body could not be read.".into()))?;
    let mut digest = Blake2s256::new();
    for part in [
        req.method().as_str().as_bytes(),
        b"\n",
        req.uri()
            .path_and_query()
            .map_or("", |p| p.as_str())
            .as_bytes(),
        b"\n",
        &body,
    ] {
        digest.update(part);
    }
    req.set_payload(Payload::from(body));
    let fingerprint = digest.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Idempotency {
        key: String::from_utf8(key).expect("visible ASCII"),
        fingerprint,
        // Counted once the request's events are made.
        events: 0,
    })
}

pub fn log_id(req: &HttpRequest) -> LogId {
    req.extensions()
        .get::<LogId>()
        .copied()
        .unwrap_or(LogId(Uuid::new_v4()))
}

/// The requests being answered, and how many have come, so that a stop can wait for
/// them to end and for new ones to stop coming (see `startup`).
#[derive(Debug, Default)]
pub struct InFlight {
    now: AtomicUsize,
    ever: AtomicUsize,
}

impl InFlight {
    /// Requests being answered, and requests that came since the start.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.now.load(Ordering::SeqCst),
            self.ever.load(Ordering::SeqCst),
        )
    }
}

/// Counts a request in flight while it lives.
struct Counted<'a>(&'a InFlight);

impl<'a> Counted<'a> {
    fn new(in_flight: &'a InFlight) -> Self {
        in_flight.ever.fetch_add(1, Ordering::SeqCst);
        in_flight.now.fetch_add(1, Ordering::SeqCst);
        Self(in_flight)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Gives every request a logId, renders every error as the Error body carrying it, and
/// writes one log line per request. Once the service is stopping, a new request is
/// answered 503 `Stopping` (closing its connection) without being handled, while those
/// in flight finish.
pub async fn log_and_render_errors(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = LogId(Uuid::now_v7());
    req.extensions_mut().insert(id);
    if req.headers().contains_key(IDEMPOTENCY_KEY) {
        let key = idempotency(&mut req).await;
        req.extensions_mut().insert(KeyHeader(Some(key)));
    }
    let method = req.method().clone();
    let path = req.path().to_owned();
    let started = std::time::Instant::now();
    let in_flight = req.app_data::<web::Data<InFlight>>().cloned();
    let _counted = in_flight.as_ref().map(|in_flight| Counted::new(in_flight));
    let service = req.app_data::<web::Data<crate::service::Service>>();
    // What an operator watches answers during the replay, too.
    let operating = path == "/health" || path.starts_with("/health/") || path == "/metrics";
    let mut appended = Vec::new();
    let turned_away = match service {
        Some(service) if *service.stopping.borrow() => Some(ApiError::Stopping),
        // Until the read model has caught up, it would answer from the past.
        Some(service) if !service.is_serving() && !operating => Some(ApiError::Starting),
        _ => None,
    };
    let res = match turned_away {
        Some(error) => {
            let (req, _) = req.into_parts();
            ServiceResponse::new(req, error.render(id.0))
        }
        None => {
            let handled = crate::service::APPENDED.scope(Default::default(), async {
                let res = next.call(req).await;
                (
                    res,
                    crate::service::APPENDED.with(|appended| appended.take()),
                )
            });
            let (res, ids) = handled.await;
            appended = ids;
            res?.map_into_boxed_body()
        }
    };
    let status = res.status();
    let from_actix;
    let failure = match res.response().error() {
        // Other protocols' errors are rendered in their own form already.
        Some(error)
            if error.as_error::<OAuthError>().is_some()
                || error.as_error::<crate::scim::ScimError>().is_some() =>
        {
            None
        }
        Some(error) => match error.as_error::<ApiError>() {
            Some(api_error) => Some(api_error),
            None => {
                from_actix = ApiError::from_status(status, error);
                Some(&from_actix)
            }
        },
        // Routing answers these itself, without an error: give them the Error body too.
        None if matches!(
            status,
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
        ) =>
        {
            from_actix = ApiError::from_status(status, &"routing");
            Some(&from_actix)
        }
        None => None,
    };
    let code = failure.map(ApiError::code);
    let internal = match failure {
        Some(ApiError::Internal(error)) => Some(format!("{error:#}")),
        _ => None,
    };
    let response = failure.map(|error| {
        let mut response = error.render(id.0);
        // A 405 says which methods the path has (RFC 9110, 15.5.6), as routing did.
        if let Some(allow) = res.headers().get(header::ALLOW) {
            response.headers_mut().insert(header::ALLOW, allow.clone());
        }
        response
    });
    let res = match response {
        Some(response) => res.into_response(response),
        None => res,
    };
    let elapsed = started.elapsed();
    let latency_ms = elapsed.as_millis() as u64;
    let status = res.status().as_u16();
    // The route's template (`/api/management/security/groups/{group}/users/{user}`), so
    // that lines and metrics group by call; the path beside it, for the one request.
    let route = (res.request().match_pattern())
        .map(|pattern| pattern.replace(":[^/]*}", "}").replace("{slash:/?}", ""));
    crate::metrics::request(method.as_str(), route.clone(), status, elapsed);
    let route = route.unwrap_or_default();
    // The events the request appended, whatever became of them.
    let events = (!appended.is_empty()).then(|| {
        let ids: Vec<String> = appended.iter().map(Uuid::to_string).collect();
        ids.join(",")
    });
    match internal {
        Some(error) => {
            tracing::error!(logId = %id.0, %method, route, path, status, latency_ms, code, events, error, "request failed")
        }
        None => {
            tracing::info!(logId = %id.0, %method, route, path, status, latency_ms, code, events, "request")
        }
    }
    Ok(res)
}

/// A bearer token that verified: well formed, signed here, not expired. Whether it still
/// stands (not revoked, its user neither suspended nor deleted, its credential unchanged)
/// and what its user may do are checked by the service, against the read model.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Bearer);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(req))
    }
}

fn caller(req: &HttpRequest) -> Result<Caller, ApiError> {
    bearer_of(req).map(Caller).ok_or(ApiError::Unauthorized)
}

/// The request's bearer token, if it has one that verifies (well formed, signed here, not
/// expired): for every protocol served over HTTP, each with its own 401.
pub fn bearer_of(req: &HttpRequest) -> Option<Bearer> {
    let service = req.app_data::<web::Data<Service>>()?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())?;
    let (scheme, token) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    service.tokens.verify(token.trim())
}

/// The raw text of the path segment that the matched pattern names `{name...}`,
/// percent-decoded exactly once and strictly: broken escapes and bytes that are not UTF-8
/// are refused, where a lenient decoder would quietly change the identifier. Patterns
/// keep each parameter in a segment of its own, so segments line up by index.
fn raw_param(req: &HttpRequest, name: &str) -> Result<String, InvalidName> {
    decode_strictly(raw_segment(req, name))
}

/// The path segment that the matched pattern names `{name...}`, still percent-encoded.
fn raw_segment<'r>(req: &'r HttpRequest, name: &str) -> &'r str {
    let pattern = req.match_pattern().unwrap_or_default();
    let open = format!("{{{name}");
    let index = pattern_segments(&pattern).position(|segment| segment.starts_with(&open));
    index
        .and_then(|i| req.uri().path().split('/').nth(i))
        .unwrap_or_default()
}

fn decode_strictly(raw: &str) -> Result<String, InvalidName> {
    let bytes = raw.as_bytes();
    for (i, byte) in bytes.iter().enumerate() {
        if *byte == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return Err(InvalidName::BrokenEncoding);
        }
    }
    percent_decode_str(raw)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| InvalidName::BrokenEncoding)
}

/// Splits a route pattern at the slashes outside `{...}`: a parameter's regex may
/// contain slashes of its own (`{group:[^/]*}`).
fn pattern_segments(pattern: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0_u32;
    pattern.split(move |c| {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        c == '/' && depth == 0
    })
}

/// The group named by the path's `{group}` segment.
pub fn group_param(req: &HttpRequest) -> Result<GroupIdentifier, ApiError> {
    raw_param(req, "group")
        .and_then(|text| GroupIdentifier::parse(&text))
        .map_err(|e| ApiError::invalid_identifier("groupIdentifier", e))
}

/// The groups named by the path's `{groups}` segment: a comma-separated list, split
/// before decoding, so that `%2C` stays a comma inside one name. At most `max` of them.
pub fn groups_param(req: &HttpRequest, max: usize) -> Result<Vec<GroupIdentifier>, ApiError> {
    let parts: Vec<&str> = raw_segment(req, "groups").split(',').collect();
    if parts.len() > max {
        return Err(ApiError::BadRequest(format!(
            "At most {max} group identifiers may be listed."
        )));
    }
    parts
        .into_iter()
        .map(|raw| {
            decode_strictly(raw)
                .and_then(|text| GroupIdentifier::parse(&text))
                .map_err(|e| ApiError::invalid_identifier("groupIdentifier", e))
        })
        .collect()
}

/// The group named by the path's `{child}` segment.
pub fn child_group_param(req: &HttpRequest) -> Result<GroupIdentifier, ApiError> {
    raw_param(req, "child")
        .and_then(|text| GroupIdentifier::parse(&text))
        .map_err(|e| ApiError::invalid_identifier("childGroupIdentifier", e))
}

/// The `{userIdentifier}` of a call on one user, where `@current` names the caller, as
/// the official client's `getCurrent` does. No username or email can be `@current`.
pub fn user_param_or_current(
    req: &HttpRequest,
    caller: Caller,
) -> Result<UserIdentifier, ApiError> {
    if req.match_info().get("user") == Some(CURRENT_USER) {
        return Ok(UserIdentifier::Id(caller.0.user));
    }
    user_param(req)
}

const CURRENT_USER: &str = "@current";

/// The user named by the path's `{user}` segment.
pub fn user_param(req: &HttpRequest) -> Result<UserIdentifier, ApiError> {
    raw_param(req, "user")
        .and_then(|text| UserIdentifier::parse(&text))
        .map_err(|e| ApiError::invalid_identifier("userIdentifier", e))
}

//! One error type for the whole API, one table from error to status and `data.code`
//! ([`ApiError::status_and_code`], with [`domain_status`] for the domain's refusals, whose
//! codes the domain's own table gives), one conversion from the service's errors, and one
//! place that renders the Contensis Error body.

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::{DomainError, InvalidName};
use crate::service::ServiceError;

/// The Contensis Error model, fields in the documented order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    log_id: Uuid,
    message: String,
    data: Value,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// How long a client should wait before retrying a 503, in seconds.
const RETRY_AFTER_S: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Authorization has been denied for this request.")]
    Unauthorized,
    #[error("The {parameter} is not valid: it {reason}.")]
    InvalidIdentifier {
        parameter: &'static str,
        reason: String,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("The field '{field}' is not valid: it {reason}.")]
    Unprocessable { field: String, reason: String },
    #[error("Only members of System Administrators may do this.")]
    Forbidden,
    #[error("No resource matches this path.")]
    RouteNotFound,
    #[error("This method is not allowed on this resource.")]
    MethodNotAllowed,
    #[error("The request body must be JSON (Content-Type: application/json).")]
    UnsupportedMediaType,
    #[error("The request body is larger than the limit of {0} bytes.")]
    PayloadTooLarge(usize),
    #[error("The user is not a member of the group, directly or through child groups.")]
    NotMember,
    #[error("{}", precondition_message(*.applied))]
    PreconditionFailed {
        /// Set when the request's event was appended and then rejected.
        event_id: Option<Uuid>,
        /// The group's version when the request was checked, when known.
        version: Option<u64>,
        /// How many of the request's changes took effect before another change to the
        /// group got in between them.
        applied: usize,
    },
    #[error(
        "This Idempotency-Key came with another request; a key stands for one request for 24 hours."
    )]
    IdempotencyKeyReused,
    #[error("The existing password is missing or wrong.")]
    ExistingPasswordInvalid,
    #[error("Too many failed attempts; retry in {retry_after_s} s.")]
    TooManyRequests { retry_after_s: u64 },
    #[error("{}", domain_message(.0))]
    Domain(DomainError),
    #[error("{}", concurrent_message(*.applied, *.events))]
    ConcurrentModification {
        /// The first event that was rejected.
        event_id: Uuid,
        reason: DomainError,
        /// How many of the request's events took effect, of how many.
        applied: usize,
        events: usize,
    },
    #[error("The service cannot confirm the change right now; retry later.")]
    Unavailable { event_id: Option<Uuid> },
    #[error("As many event streams are open as the service serves; retry later.")]
    TooManyStreams,
    #[error("The service is stopping; retry in a moment, here or on another instance.")]
    Stopping,
    #[error("The service is starting: it is reading the log; retry in a moment.")]
    Starting,
    #[error("An unexpected error occurred; quote the logId when reporting it.")]
    Internal(#[from] anyhow::Error),
}

fn precondition_message(applied: usize) -> String {
    if applied == 0 {
        "The group is not at the version If-Match names; nothing was changed. Read it and \
         retry."
            .into()
    } else {
        format!(
            "Another change to the group got in while this request was applied; {applied} of \
             its changes took effect. Read it and retry."
        )
    }
}

fn concurrent_message(applied: usize, events: usize) -> String {
    if applied == 0 {
        "Another change got there first; the request had no effect. Read and retry.".into()
    } else {
        format!(
            "Another change got there first; {applied} of the request's {events} changes took \
             effect. Read and retry."
        )
    }
}

fn domain_message(error: &DomainError) -> String {
    match error {
        DomainError::UserNotInGroup {
            inherited_through: Some(child),
        } => format!(
            "The user is not a direct member of the group; it belongs to it only through \
             the child group '{child}', from which it must be removed instead."
        ),
        DomainError::LastAdministrator => {
            "This would leave System Administrators without a member, so nobody could \
             administer the service."
                .into()
        }
        DomainError::UsersNotFound { missing } => {
            format!("These users were not found: {}.", missing.join(", "))
        }
        DomainError::GroupsNotFound { missing } => {
            format!("These groups were not found: {}.", missing.join(", "))
        }
        other => sentence(other),
    }
}

/// A short error message as a sentence: capitalised, with a full stop.
pub(super) fn sentence(error: &impl std::fmt::Display) -> String {
    let text = error.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => text,
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        Self::Domain(error)
    }
}

/// The service's errors as the Contensis API answers them: the one place they meet HTTP.
impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Unauthorized => Self::Unauthorized,
            ServiceError::Forbidden => Self::Forbidden,
            ServiceError::Refused(error) => Self::Domain(error),
            ServiceError::InvalidRequest(message) => Self::BadRequest(message),
            ServiceError::ExistingPasswordInvalid => Self::ExistingPasswordInvalid,
            ServiceError::TooManyRequests { retry_after_s } => {
                Self::TooManyRequests { retry_after_s }
            }
            ServiceError::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            ServiceError::PreconditionFailed {
                event_id,
                version,
                applied,
            } => Self::PreconditionFailed {
                event_id,
                version,
                applied,
            },
            ServiceError::ConcurrentModification {
                event_id,
                reason,
                applied,
                events,
            } => Self::ConcurrentModification {
                event_id,
                reason,
                applied,
                events,
            },
            ServiceError::Unavailable { event_id } => Self::Unavailable { event_id },
            ServiceError::Unexpected(error) => Self::Internal(error),
        }
    }
}

impl ApiError {
    pub fn invalid_identifier(parameter: &'static str, reason: InvalidName) -> Self {
        Self::InvalidIdentifier {
            parameter,
            reason: reason.to_string(),
        }
    }

    pub fn unprocessable(field: impl Into<String>, reason: impl ToString) -> Self {
        Self::Unprocessable {
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    /// The table: every error's status and the stable `data.code` of its Error body.
    /// A domain refusal's code is the domain's (see `domain::DomainError`).
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            Self::Unauthorized => (S::UNAUTHORIZED, "Unauthorized"),
            Self::InvalidIdentifier { .. } => (S::BAD_REQUEST, "InvalidIdentifier"),
            Self::BadRequest(_) => (S::BAD_REQUEST, "BadRequest"),
            Self::Unprocessable { .. } => (S::UNPROCESSABLE_ENTITY, "ValidationFailed"),
            Self::Forbidden => (S::FORBIDDEN, "Forbidden"),
            Self::RouteNotFound => (S::NOT_FOUND, "NotFound"),
            Self::MethodNotAllowed => (S::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            Self::UnsupportedMediaType => (S::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType"),
            Self::PayloadTooLarge(_) => (S::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
            Self::NotMember => (S::NOT_FOUND, "NotMember"),
            Self::ExistingPasswordInvalid => (S::CONFLICT, "ExistingPasswordInvalid"),
            Self::TooManyRequests { .. } => (S::TOO_MANY_REQUESTS, "TooManyRequests"),
            Self::PreconditionFailed { .. } => (S::PRECONDITION_FAILED, "PreconditionFailed"),
            Self::IdempotencyKeyReused => (S::UNPROCESSABLE_ENTITY, "IdempotencyKeyReused"),
            Self::Domain(error) => (domain_status(error), error.code()),
            Self::ConcurrentModification { .. } => (S::CONFLICT, "ConcurrentModification"),
            Self::Unavailable { .. } => (S::SERVICE_UNAVAILABLE, "Unavailable"),
            Self::TooManyStreams => (S::SERVICE_UNAVAILABLE, "TooManyStreams"),
            Self::Stopping => (S::SERVICE_UNAVAILABLE, "Stopping"),
            Self::Starting => (S::SERVICE_UNAVAILABLE, "Starting"),
            Self::Internal(_) => (S::INTERNAL_SERVER_ERROR, "ServerError"),
        }
    }

    /// The stable `data.code` of the Error body.
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    fn data(&self) -> Value {
        let mut data = json!({ "code": self.code() });
        let extra = match self {
            Self::InvalidIdentifier { parameter, .. } => json!({ "parameter": parameter }),
            Self::Unprocessable { field, .. } => json!({ "field": field }),
            Self::Domain(DomainError::UserNotInGroup {
                inherited_through: Some(child),
            }) => json!({ "inheritedThrough": child.as_str() }),
            Self::Domain(
                DomainError::UsersNotFound { missing } | DomainError::GroupsNotFound { missing },
            ) => json!({ "missing": missing }),
            Self::ConcurrentModification {
                event_id,
                reason,
                applied,
                events,
            } => json!({
                "eventId": event_id,
                "reason": reason.code(),
                "applied": applied,
                "events": events,
            }),
            Self::Unavailable {
                event_id: Some(event_id),
            } => json!({ "eventId": event_id }),
            Self::PreconditionFailed {
                event_id,
                version,
                applied,
            } => {
                let mut data = serde_json::Map::new();
                if *applied > 0 {
                    data.insert("applied".into(), json!(applied));
                }
                if let Some(event_id) = event_id {
                    data.insert("eventId".into(), json!(event_id));
                }
                if let Some(version) = version {
                    data.insert("version".into(), json!(version));
                }
                Value::Object(data)
            }
            _ => json!({}),
        };
        if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
            data.extend(extra);
        }
        data
    }

    /// The Error body, with the request's logId. The request's log line is written by
    /// the middleware, once.
    pub fn render(&self, log_id: Uuid) -> HttpResponse {
        let status = self.status_code();
        let mut response = HttpResponse::build(status);
        match self {
            Self::Unauthorized => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            Self::Unavailable { .. } | Self::TooManyStreams | Self::Starting => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_S));
            }
            // The connection goes too: the next request should find another instance.
            Self::Stopping => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_S));
                response.insert_header((header::CONNECTION, "close"));
            }
            Self::TooManyRequests { retry_after_s } => {
                response.insert_header((header::RETRY_AFTER, *retry_after_s));
            }
            _ => {}
        }
        response.json(ErrorBody {
            log_id,
            message: self.to_string(),
            data: self.data(),
            kind: "error",
        })
    }

    /// Errors raised inside actix itself (routing, extractors we did not configure),
    /// mapped by status so that every error has the same body.
    pub fn from_status(status: StatusCode, detail: &dyn std::fmt::Display) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::RouteNotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::BadRequest("The request body is too large.".into())
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            s if s.is_client_error() => {
                Self::BadRequest("The request could not be understood.".into())
            }
            _ => Self::Internal(anyhow::anyhow!("{detail}")),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// actix calls this as soon as a handler fails; the middleware then renders the
    /// error again with the request's logId, which is the body the client gets.
    fn error_response(&self) -> HttpResponse<BoxBody> {
        self.render(Uuid::nil())
    }
}

/// The status of each domain refusal on the Contensis API. No arm stands for several
/// unnamed ones, so a new refusal has no status until it is given one here.
fn domain_status(error: &DomainError) -> StatusCode {
    use DomainError as E;
    match error {
        E::GroupNotFound | E::UserNotFound | E::GroupsNotFound { .. } | E::UsersNotFound { .. } => {
            StatusCode::NOT_FOUND
        }
        E::SystemGroup | E::OwnStatus => StatusCode::FORBIDDEN,
        E::VersionMismatch => StatusCode::PRECONDITION_FAILED,
        E::UserNotInGroup { .. }
        | E::AlreadyMember
        | E::GroupCycle
        | E::GroupNotChild
        | E::LastAdministrator
        | E::UsernameTaken
        | E::EmailTaken
        | E::GroupNameTaken
        | E::IdTaken
        | E::MembershipsRemain
        | E::TooManyLinks
        | E::DuplicateRequest
        | E::StatusUnchanged => StatusCode::CONFLICT,
    }
}

/// An OAuth error (RFC 6749 section 5.2, RFC 7009): a body of its own kind, with a
/// description where the code alone would not say what to do.
#[derive(Debug, thiserror::Error)]
#[error("{code}")]
pub struct OAuthError {
    pub code: &'static str,
    pub description: Option<String>,
    /// Set for a 429: retry after this many seconds.
    pub retry_after_s: Option<u64>,
}

impl OAuthError {
    pub fn new(code: &'static str) -> Self {
        Self {
            code,
            description: None,
            retry_after_s: None,
        }
    }

    pub fn described(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            description: Some(description.into()),
            ..Self::new(code)
        }
    }

    /// Too many failed logins: 429, before any secret is checked.
    pub fn slow_down(retry_after_s: u64) -> Self {
        Self {
            retry_after_s: Some(retry_after_s),
            ..Self::described(
                "slow_down",
                format!("Too many failed attempts; retry in {retry_after_s} s."),
            )
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self.code {
            _ if self.retry_after_s.is_some() => StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            "invalid_token" => StatusCode::UNAUTHORIZED,
            "access_denied" => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let status = self.status_code();
        let mut response = HttpResponse::build(status);
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        match (status, self.retry_after_s) {
            (_, Some(retry_after_s)) => {
                response.insert_header((header::RETRY_AFTER, retry_after_s));
            }
            (StatusCode::SERVICE_UNAVAILABLE, None) => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_S));
            }
            (StatusCode::UNAUTHORIZED, None) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        let mut body = json!({ "error": self.code });
        if let Some(description) = &self.description {
            body["error_description"] = json!(description);
        }
        response.json(body)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// One of every error the API answers.
    fn every() -> Vec<ApiError> {
        let mut every = vec![
            ApiError::Unauthorized,
            ApiError::invalid_identifier("groupIdentifier", InvalidName::Empty),
            ApiError::BadRequest("bad".into()),
            ApiError::unprocessable("email", "is not an email"),
            ApiError::Forbidden,
            ApiError::RouteNotFound,
            ApiError::MethodNotAllowed,
            ApiError::UnsupportedMediaType,
            ApiError::PayloadTooLarge(1),
            ApiError::NotMember,
            ApiError::ExistingPasswordInvalid,
            ApiError::TooManyRequests { retry_after_s: 1 },
            ApiError::PreconditionFailed {
                event_id: None,
                version: Some(1),
                applied: 0,
            },
            ApiError::IdempotencyKeyReused,
            ApiError::ConcurrentModification {
                event_id: Uuid::nil(),
                reason: DomainError::UserNotInGroup {
                    inherited_through: None,
                },
                applied: 0,
                events: 1,
            },
            ApiError::Unavailable { event_id: None },
            ApiError::TooManyStreams,
            ApiError::Stopping,
            ApiError::Starting,
            ApiError::Internal(anyhow::anyhow!("unexpected")),
        ];
        every.extend(DomainError::every().into_iter().map(ApiError::Domain));
        every
    }

    /// Each code and its status, from the table.
    fn table() -> BTreeMap<&'static str, u16> {
        let mut table = BTreeMap::new();
        for error in every() {
            let (status, code) = error.status_and_code();
            let known = table.insert(code, status.as_u16());
            assert!(
                known.is_none_or(|known| known == status.as_u16()),
                "{code} has two statuses"
            );
        }
        table
    }

    #[test]
    fn every_service_error_has_a_code_of_the_table() {
        let table = table();
        let errors = [
            ServiceError::Unauthorized,
            ServiceError::Forbidden,
            ServiceError::Refused(DomainError::LastAdministrator),
            ServiceError::InvalidRequest("bad".into()),
            ServiceError::ExistingPasswordInvalid,
            ServiceError::TooManyRequests { retry_after_s: 1 },
            ServiceError::IdempotencyKeyReused,
            ServiceError::Unavailable { event_id: None },
            ServiceError::Unexpected(anyhow::anyhow!("unexpected")),
        ];
        for error in errors {
            let shown = format!("{error:?}");
            let api = ApiError::from(error);
            assert!(table.contains_key(api.code()), "{shown} has no code");
        }
    }

    /// The statuses the README gives codes: `409 \`UsernameTaken\` / \`EmailTaken\``, or a
    /// table row `| 404 | \`GroupNotFound\`, \`UserNotFound\` |`. Only codes in
    /// CamelCase count; OAuth's `invalid_client` and the like are not the table's.
    fn documented(readme: &str) -> Vec<(u16, String, usize)> {
        let mut found = Vec::new();
        for (number, line) in readme.lines().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            for (at, word) in words.iter().enumerate() {
                let Ok(status) = word.parse::<u16>() else {
                    continue;
                };
                if !(400..600).contains(&status) {
                    continue;
                }
                for next in &words[at + 1..] {
                    let next = next.trim_end_matches([',', ';', ')', '.']);
                    if ["|", "/", "or"].contains(&next) {
                        continue;
                    }
                    let Some(code) = next.strip_prefix('`').and_then(|c| c.strip_suffix('`'))
                    else {
                        break;
                    };
                    if !code.starts_with(|c: char| c.is_ascii_uppercase())
                        || !code.chars().all(|c| c.is_ascii_alphanumeric())
                    {
                        break;
                    }
                    found.push((status, code.to_owned(), number + 1));
                }
            }
        }
        found
    }

    #[test]
    fn the_readme_gives_each_code_the_status_of_the_table() {
        let table = table();
        let readme = include_str!("../../README.md");
        let documented = documented(readme);
        assert!(documented.len() > 30, "{documented:?}");
        for (status, code, line) in documented {
            match table.get(code.as_str()) {
                Some(&known) => assert_eq!(
                    known, status,
                    "README.md:{line} gives {code} the status {status}; the table says {known}"
                ),
                None => panic!("README.md:{line} names {code}, which no error has"),
            }
        }
    }

    #[test]
    fn the_readme_check_reads_both_forms() {
        let found = documented(
            "| 404 | `GroupNotFound`, `UserNotFound` | no such group\n\
             409 `UsernameTaken` / `EmailTaken`; 400 `{\"error\"}`, 429 `slow_down`",
        );
        let codes: Vec<(u16, &str)> = found.iter().map(|(s, c, _)| (*s, c.as_str())).collect();
        assert_eq!(
            codes,
            [
                (404, "GroupNotFound"),
                (404, "UserNotFound"),
                (409, "UsernameTaken"),
                (409, "EmailTaken")
            ]
        );
    }
}

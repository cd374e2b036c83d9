//! The SCIM error form (RFC 7644 section 3.12): `schemas`, `status` as a string, a
//! `scimType` where one applies, and a `detail`. The service's errors become these in one
//! place, as they become the Contensis Error body in `http/error.rs`.

use actix_web::body::BoxBody;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use scim_v2::models::errors::{ScimHttpError, ScimType};

use super::SCIM_JSON;
use crate::domain::DomainError;
use crate::service::ServiceError;

/// How long a client should wait before retrying a 503, in seconds.
const RETRY_AFTER_S: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[error("{status} {detail}")]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<ScimType>,
    pub detail: String,
    /// A 405's `Allow` header: the methods the resource serves.
    pub allow: Option<&'static str>,
}

impl ScimError {
    pub fn new(status: StatusCode, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
            allow: None,
        }
    }

    /// 405: the resource serves only the methods `allow` lists.
    pub fn method_not_allowed(path: &str, allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                format!("{path} serves only {allow}."),
            )
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            None,
            "A bearer token of an administrator or an API client with the scim scope is required.",
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }
}

impl From<ServiceError> for ScimError {
    fn from(error: ServiceError) -> Self {
        use StatusCode as S;
        let detail = error.to_string();
        match error {
            ServiceError::Unauthorized => Self::unauthorized(),
            ServiceError::Forbidden => Self::new(S::FORBIDDEN, None, detail),
            ServiceError::Refused(reason) => refused(reason),
            ServiceError::InvalidRequest(detail) => {
                Self::new(S::BAD_REQUEST, Some(ScimType::InvalidValue), detail)
            }
            ServiceError::ExistingPasswordInvalid => Self::new(S::BAD_REQUEST, None, detail),
            ServiceError::TooManyRequests { .. } => Self::new(S::TOO_MANY_REQUESTS, None, detail),
            ServiceError::IdempotencyKeyReused => Self::new(S::UNPROCESSABLE_ENTITY, None, detail),
            ServiceError::PreconditionFailed { .. } => {
                Self::new(S::PRECONDITION_FAILED, None, detail)
            }
            ServiceError::ConcurrentModification { .. } => Self::new(S::CONFLICT, None, detail),
            ServiceError::Unavailable { .. } => Self::new(S::SERVICE_UNAVAILABLE, None, detail),
            ServiceError::Unexpected(error) => {
                tracing::error!(error = format!("{error:#}"), "a SCIM request failed");
                Self::new(
                    S::INTERNAL_SERVER_ERROR,
                    None,
                    "An unexpected error occurred.",
                )
            }
        }
    }
}

/// A domain refusal in SCIM's terms: a name that is taken is `uniqueness`.
fn refused(reason: DomainError) -> ScimError {
    use DomainError as E;
    use StatusCode as S;
    let detail = reason.to_string();
    match reason {
        E::GroupNotFound | E::UserNotFound => ScimError::new(S::NOT_FOUND, None, detail),
        // Members that name no user are a bad value in the request, not a missing resource.
        E::GroupsNotFound { missing } | E::UsersNotFound { missing } => ScimError::new(
            S::BAD_REQUEST,
            Some(ScimType::InvalidValue),
            format!("{detail}: {}", missing.join(", ")),
        ),
        E::UsernameTaken | E::EmailTaken | E::GroupNameTaken | E::IdTaken => {
            ScimError::new(S::CONFLICT, Some(ScimType::Uniqueness), detail)
        }
        E::SystemGroup | E::OwnStatus => ScimError::new(S::FORBIDDEN, None, detail),
        E::VersionMismatch => ScimError::new(S::PRECONDITION_FAILED, None, detail),
        E::TooManyLinks => ScimError::new(S::BAD_REQUEST, Some(ScimType::TooMany), detail),
        E::UserNotInGroup { .. }
        | E::AlreadyMember
        | E::GroupCycle
        | E::GroupNotChild
        | E::LastAdministrator
        | E::MembershipsRemain
        | E::DuplicateRequest
        | E::StatusUnchanged => ScimError::new(S::CONFLICT, None, detail),
    }
}

impl ResponseError for ScimError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let body = ScimHttpError {
            scim_type: self.scim_type.clone(),
            detail: Some(self.detail.clone()),
            status: self.status.as_u16().to_string(),
            ..ScimHttpError::default()
        };
        let mut response = HttpResponse::build(self.status);
        match self.status {
            StatusCode::UNAUTHORIZED => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_S));
            }
            _ => {}
        }
        if let Some(allow) = self.allow {
            response.insert_header((header::ALLOW, allow));
        }
        response.content_type(SCIM_JSON).json(body)
    }
}

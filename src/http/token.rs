//! `POST /authenticate/connect/token`: OAuth 2.0 client credentials for the bootstrap
//! client, and the password grant (also called `contensis_classic`) for users. `POST
//! /authenticate/connect/revocation` (RFC 7009): a caller revokes one of its own tokens.
//! The decisions are the service's (`service::logins`); this file speaks OAuth.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::OAuthError;
use super::error::sentence;
use super::extract::{Caller, log_id};
use crate::service::{Grant, LoginError, RevocationError, Service, Write};

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The address a request came from, as the socket says: a proxy in front is counted as
/// one address (see the README's Security section).
pub fn peer(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |addr| addr.ip())
}

impl From<LoginError> for OAuthError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::InvalidClient => Self::new("invalid_client"),
            LoginError::InvalidGrant => Self::new("invalid_grant"),
            LoginError::SlowDown { retry_after_s } => Self::slow_down(retry_after_s),
            LoginError::Busy => Self::new("temporarily_unavailable"),
            LoginError::Unexpected(error) => {
                tracing::error!(error = format!("{error:#}"), "a login failed");
                Self::new("server_error")
            }
        }
    }
}

impl TokenForm {
    fn grant(self) -> Result<Grant, OAuthError> {
        let missing = || OAuthError::new("invalid_request");
        match self.grant_type.as_deref() {
            Some("client_credentials") => Ok(Grant::Client {
                client_id: self.client_id.ok_or_else(missing)?,
                secret: self.client_secret.ok_or_else(missing)?,
            }),
            Some("password" | "contensis_classic") => Ok(Grant::Password {
                login: self.username.ok_or_else(missing)?,
                password: self.password.ok_or_else(missing)?,
            }),
            Some(_) => Err(OAuthError::new("unsupported_grant_type")),
            None => Err(missing()),
        }
    }
}

pub async fn issue(
    service: web::Data<Service>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, OAuthError> {
    let grant = form.into_inner().grant()?;
    let issued = service.login(grant, peer(&req)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": issued.ttl_s,
        })))
}

#[derive(Debug, Deserialize)]
pub struct RevocationForm {
    token: Option<String>,
    token_type_hint: Option<String>,
}

/// `POST /authenticate/connect/revocation`: the caller (its bearer token in
/// `Authorization`, 401 unless it stands) revokes `token`, one of its own, which may be
/// the one it calls with. 200 once the token answers 401 on this instance; 200 and nothing
/// appended for a token revoked already. 400 for a token this service did not issue or
/// that has expired, where RFC 7009 would answer 200: a caller who names a token that does
/// not verify has made a mistake worth telling. 403 for another user's token.
pub async fn revoke(
    service: web::Data<Service>,
    caller: Caller,
    req: HttpRequest,
    form: web::Form<RevocationForm>,
) -> Result<HttpResponse, actix_web::Error> {
    let RevocationForm {
        token,
        token_type_hint,
    } = form.into_inner();
    if token_type_hint.is_some_and(|hint| hint != "access_token") {
        return Err(OAuthError::described(
            "unsupported_token_type",
            "Only access tokens are issued here, so only they can be revoked.",
        )
        .into());
    }
    let token = token.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
        OAuthError::described("invalid_request", "The form must name the token to revoke.")
    })?;
    let write = Write::new(log_id(&req).0);
    match service.revoke(caller.0, write, token.trim()).await {
        Ok(()) => Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .finish()),
        Err(error @ RevocationError::NotOurs) => {
            Err(OAuthError::described("invalid_request", sentence(&error)).into())
        }
        Err(error @ RevocationError::NotTheCallers) => {
            Err(OAuthError::described("access_denied", sentence(&error)).into())
        }
        Err(RevocationError::Service(error)) => Err(super::ApiError::from(error).into()),
    }
}

//! `POST /authenticate/connect/token`: OAuth 2.0 client credentials for the bootstrap
//! client, and the password grant (also called `contensis_classic`) for users. `POST
//! /authenticate/connect/revocation` (RFC 7009): a caller revokes one of its own tokens.
//!
//! Failed grants are counted per (client id or username, address) and per address; past
//! the budget the answer is 429 before any secret is hashed (see `throttle`).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

use super::OAuthError;
use super::extract::{Caller, log_id};
use crate::auth::{Credential, HashError};
use crate::domain::{Command, UserIdentifier};
use crate::read_model;
use crate::service::{Principal, Service, Write};
use crate::throttle::RetryAfter;

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
pub(super) fn peer(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |addr| addr.ip())
}

pub async fn issue(
    service: web::Data<Service>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, OAuthError> {
    let form = form.into_inner();
    let address = peer(&req);
    let (user, credential, suspensions) = match form.grant_type.as_deref() {
        Some("client_credentials") => client_credentials(&service, address, form).await?,
        Some("password" | "contensis_classic") => password(&service, address, form).await?,
        Some(_) => return Err(OAuthError::new("unsupported_grant_type")),
        None => return Err(OAuthError::new("invalid_request")),
    };
    let token = service
        .tokens
        .issue(user, credential, suspensions)
        .map_err(|error| {
            tracing::error!(error = format!("{error:#}"), "issuing a token failed");
            OAuthError::new("server_error")
        })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": service.tokens.ttl_s,
        })))
}

/// Runs a login `attempt` as `name` from `address`: refused at once when either count is
/// full, counted from the start (so that concurrent guesses share the budget), given back
/// on success (clearing its own count) or when it could not be decided.
async fn throttled<T>(
    service: &Service,
    name: &str,
    address: IpAddr,
    attempt: impl Future<Output = Result<T, OAuthError>>,
) -> Result<T, OAuthError> {
    service
        .logins
        .attempt(name, address)
        .map_err(|RetryAfter(wait_s)| OAuthError::slow_down(wait_s))?;
    let result = attempt.await;
    match &result {
        Ok(_) => service.logins.succeeded(name, address),
        Err(error) if matches!(error.code, "invalid_client" | "invalid_grant") => {}
        Err(_) => service.logins.not_tried(name, address),
    }
    result
}

async fn client_credentials(
    service: &Service,
    address: IpAddr,
    form: TokenForm,
) -> Result<(Uuid, Credential, u64), OAuthError> {
    let (Some(client_id), Some(secret)) = (form.client_id, form.client_secret) else {
        return Err(OAuthError::new("invalid_request"));
    };
    let name = client_id.clone();
    throttled(service, &name, address, async {
        let client = &service.admin.credential;
        let known = client_id
            .as_bytes()
            .ct_eq(client.client_id.as_bytes())
            .into();
        let hash = service.admin.secret_hash.clone();
        // The secret is checked even for an unknown client, so timing tells nothing.
        let secret_ok = verify(service, address, secret, hash).await?;
        if !(known && secret_ok) {
            return Err(OAuthError::new("invalid_client"));
        }
        let (account, status) = service
            .read(move |conn| {
                let Some(account) = read_model::service_account(conn, &client_id)? else {
                    return Ok(None);
                };
                let status = read_model::account_status(conn, account)?;
                Ok(status.map(|status| (account, status)))
            })
            .await
            .map_err(|_| OAuthError::new("server_error"))?
            .filter(|(_, status)| !status.suspended)
            .ok_or(OAuthError::new("invalid_client"))?;
        Ok((
            account,
            Credential::Client(client.digest),
            status.suspensions,
        ))
    })
    .await
}

async fn password(
    service: &Service,
    address: IpAddr,
    form: TokenForm,
) -> Result<(Uuid, Credential, u64), OAuthError> {
    let (Some(login), Some(password)) = (form.username, form.password) else {
        return Err(OAuthError::new("invalid_request"));
    };
    let login_key = login.to_lowercase();
    let found = service
        .read({
            let login_key = login_key.clone();
            move |conn| Ok(read_model::password_hash(conn, &login_key)?)
        })
        .await
        .map_err(|_| OAuthError::new("server_error"))?;
    // A user is counted as one name, whether it is named by username or by email (and
    // alike for a change of password, see `users::set_password`).
    let name = found
        .as_ref()
        .map_or(login_key, |login| login.user.to_string());
    throttled(service, &name, address, async {
        // An unknown login still costs one verification, so timing does not reveal users.
        let hash = found.as_ref().map_or_else(
            || service.admin.secret_hash.clone(),
            |login| login.hash.clone(),
        );
        let password_ok = verify(service, address, password, hash).await?;
        // A suspended user is told no more than a wrong password would tell it.
        match found {
            Some(login) if password_ok && !login.status.suspended => Ok((
                login.user,
                Credential::Password(login.version),
                login.status.suspensions,
            )),
            _ => Err(OAuthError::new("invalid_grant")),
        }
    })
    .await
}

async fn verify(
    service: &Service,
    address: IpAddr,
    secret: String,
    hash: String,
) -> Result<bool, OAuthError> {
    service
        .hasher
        .verify(address, secret, hash)
        .await
        .map_err(|e| match e {
            HashError::Busy => OAuthError::new("temporarily_unavailable"),
            HashError::Failed(error) => {
                tracing::error!(error = format!("{error:#}"), "verifying a secret failed");
                OAuthError::new("server_error")
            }
        })
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
    let caller = caller.0;
    // A caller whose own token no longer stands learns nothing about the one it names.
    service
        .query_self_or_admin(caller, UserIdentifier::Id(caller.user), |_, _| Ok(()))
        .await?;
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
    let revoked = service.tokens.verify(token.trim()).ok_or_else(|| {
        OAuthError::described(
            "invalid_request",
            "The token is not one this service issued, or it has expired.",
        )
    })?;
    if revoked.user != caller.user {
        return Err(OAuthError::described(
            "access_denied",
            "A token can be revoked only by the user it was issued to.",
        )
        .into());
    }
    let expires = OffsetDateTime::from_unix_timestamp(revoked.expires_s as i64)
        .map_err(|e| anyhow::Error::new(e).context("reading a token's expiry"))
        .map_err(super::ApiError::from)?;
    let command = Command::RevokeToken {
        user: caller.user,
        token_id: revoked.token_id,
        expires,
    };
    let principal = Principal::CallerOrUser {
        caller,
        user: UserIdentifier::Id(caller.user),
    };
    service
        .execute(principal, Write::new(log_id(&req).0), command)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .finish())
}

//! `POST /authenticate/connect/token`: OAuth 2.0 client credentials for the bootstrap
//! client, and the password grant (also called `contensis_classic`) for users.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::OAuthError;
use crate::auth::HashError;
use crate::read_model;
use crate::service::Service;

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

pub async fn issue(
    service: web::Data<Service>,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, OAuthError> {
    let form = form.into_inner();
    let user = match form.grant_type.as_deref() {
        Some("client_credentials") => client_credentials(&service, form).await?,
        Some("password" | "contensis_classic") => password(&service, form).await?,
        Some(_) => return Err(OAuthError("unsupported_grant_type")),
        None => return Err(OAuthError("invalid_request")),
    };
    let token = service.tokens.issue(user).map_err(|error| {
        tracing::error!(error = format!("{error:#}"), "issuing a token failed");
        OAuthError("server_error")
    })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": service.tokens.ttl_s,
        })))
}

async fn client_credentials(service: &Service, form: TokenForm) -> Result<Uuid, OAuthError> {
    let (Some(client_id), Some(secret)) = (form.client_id, form.client_secret) else {
        return Err(OAuthError("invalid_request"));
    };
    let known = client_id
        .as_bytes()
        .ct_eq(service.admin.client_id.as_bytes())
        .into();
    let hash = service.admin.secret_hash.clone();
    // The secret is checked even for an unknown client, so timing tells nothing.
    let secret_ok = verify(service, secret, hash).await?;
    if !(known && secret_ok) {
        return Err(OAuthError("invalid_client"));
    }
    service
        .read(move |conn| Ok(read_model::service_account(conn, &client_id)?))
        .await
        .map_err(|_| OAuthError("server_error"))?
        .ok_or(OAuthError("invalid_client"))
}

async fn password(service: &Service, form: TokenForm) -> Result<Uuid, OAuthError> {
    let (Some(login), Some(password)) = (form.username, form.password) else {
        return Err(OAuthError("invalid_request"));
    };
    let login_key = login.to_lowercase();
    let found = service
        .read(move |conn| Ok(read_model::password_hash(conn, &login_key)?))
        .await
        .map_err(|_| OAuthError("server_error"))?;
    // An unknown login still costs one verification, so timing does not reveal users.
    let hash = found.as_ref().map_or_else(
        || service.admin.secret_hash.clone(),
        |(_, hash)| hash.clone(),
    );
    let password_ok = verify(service, password, hash).await?;
    match found {
        Some((user, _)) if password_ok => Ok(user),
        _ => Err(OAuthError("invalid_grant")),
    }
}

async fn verify(service: &Service, secret: String, hash: String) -> Result<bool, OAuthError> {
    service
        .hasher
        .verify(secret, hash)
        .await
        .map_err(|e| match e {
            HashError::Busy => OAuthError("temporarily_unavailable"),
            HashError::Failed(error) => {
                tracing::error!(error = format!("{error:#}"), "verifying a secret failed");
                OAuthError("server_error")
            }
        })
}

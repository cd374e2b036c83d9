//! Provisioning credentials, for an identity provider's SCIM calls (see
//! `service::provisioning`): `POST .../provisioning` makes one and shows its token once;
//! `DELETE .../provisioning/{name}` revokes it. Administrators only.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use super::extract::Caller;
use super::token::peer;
use crate::service::{ProvisionerName, Service, Write};

#[derive(Debug, Deserialize)]
pub struct NewProvisionerBody {
    name: Option<String>,
}

fn name(text: &str) -> Result<ProvisionerName, ApiError> {
    ProvisionerName::parse(text).map_err(|e| ApiError::unprocessable("name", e))
}

/// 201 with the credential's account and its bearer token, which is not kept: a lost
/// token is revoked and made again.
pub async fn create(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
    body: web::Json<NewProvisionerBody>,
) -> Result<HttpResponse, ApiError> {
    let name = name(body.name.as_deref().unwrap_or_default())?;
    let made = service
        .create_provisioner(caller.0, write, name.clone(), peer(&req))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "name": name.as_str(),
            "userId": made.user_id,
            "username": made.username,
            "token": made.token,
            "tokenType": "Bearer",
            "expiresIn": made.expires_in_s,
        })))
}

/// 204; 404 if there is no such credential.
pub async fn revoke(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let name = name(req.match_info().get("name").unwrap_or_default())?;
    service.revoke_provisioner(caller.0, write, name).await?;
    Ok(HttpResponse::NoContent().finish())
}

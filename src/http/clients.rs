//! API clients (see `service::clients`): `POST .../clients` makes one and shows its secret
//! once, `GET .../clients` lists them, `DELETE .../clients/{clientId}` revokes one.
//! Administrators only.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::extract::Caller;
use super::token::peer;
use crate::domain::Scope;
use crate::service::{ClientId, Service, Write};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewClientBody {
    client_id: Option<String>,
    scopes: Option<Vec<Value>>,
}

fn client_id(text: &str) -> Result<ClientId, ApiError> {
    ClientId::parse(text).map_err(|e| ApiError::unprocessable("clientId", e))
}

/// The scopes asked for: at least one, each known, each once.
fn scopes(asked: Option<Vec<Value>>) -> Result<Vec<Scope>, ApiError> {
    let known: Vec<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
    let refused = || {
        let reason = format!("must list at least one of {}", known.join(", "));
        ApiError::unprocessable("scopes", reason)
    };
    let mut scopes = (asked.unwrap_or_default().iter())
        .map(|scope| scope.as_str().and_then(Scope::parse).ok_or_else(refused))
        .collect::<Result<Vec<_>, _>>()?;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(refused());
    }
    Ok(scopes)
}

/// 201 with the client, its secret and, for a `scim` client, a long-lived token: neither
/// is kept, so a lost one means revoking the client and making it again.
pub async fn create(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
    body: web::Json<NewClientBody>,
) -> Result<HttpResponse, ApiError> {
    // A retry could not be given the secret: only its hash is kept.
    if write.idempotency.is_some() {
        return Err(ApiError::BadRequest(
            "A client is made without an Idempotency-Key: its secret is shown once, so a \
             retry could not be answered with it. If the answer was lost, revoke the client \
             and make it again."
                .into(),
        ));
    }
    let body = body.into_inner();
    let id = client_id(body.client_id.as_deref().unwrap_or_default())?;
    let scopes = scopes(body.scopes)?;
    let made = service
        .create_client(caller.0, write, id, scopes, peer(&req))
        .await?;
    let mut shown = json!(made.view);
    shown["clientSecret"] = json!(made.secret);
    if let Some((token, ttl_s)) = made.token {
        shown["token"] = json!({ "accessToken": token, "tokenType": "Bearer", "expiresIn": ttl_s });
    }
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(shown))
}

/// 200 with every client, the bootstrap client's included; never a secret.
pub async fn list(service: web::Data<Service>, caller: Caller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service.clients(caller.0).await?))
}

/// 204; 404 if there is no such client.
pub async fn revoke(
    service: web::Data<Service>,
    caller: Caller,
    write: Write,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = client_id(req.match_info().get("client").unwrap_or_default())?;
    service.revoke_client(caller.0, write, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

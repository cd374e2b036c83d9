//! API clients: what other systems call the service with. Each is a service account of
//! its own, bound to a client id, whose secret (its password, hashed like any other) gets
//! tokens with `client_credentials`, and whose scopes are all its tokens may do: `scim`
//! for an identity provider (administering users and groups through SCIM, with a
//! long-lived token for providers that take a bearer secret), `events:read` for a
//! downstream consumer of the feed. The bootstrap client is the same kind of account,
//! without scopes, in System Administrators. Revoking a client deletes its account, and
//! its tokens stop.

use std::net::IpAddr;

use uuid::Uuid;

use super::{Service, ServiceError, Write, client_username};
use crate::auth::{Bearer, Credential};
use crate::domain::{
    Command, DomainError, Email, NewUser, Profile, Scope, UserIdentifier, Username,
};
use crate::read_model::{self, ClientView};

/// Longest client id, in characters.
const CLIENT_ID_MAX_CHARS: usize = 64;

/// A client id: lower-case letters, digits and `-` (`entra-prod`), starting with a letter
/// or digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(text: &str) -> Result<Self, String> {
        let fits = (1..=CLIENT_ID_MAX_CHARS).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_alphanumeric())
            && (text.chars()).all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        match fits {
            true => Ok(Self(text.to_owned())),
            false => Err(format!(
                "must be 1 to {CLIENT_ID_MAX_CHARS} lower-case letters, digits or '-', \
                 starting with a letter or digit"
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client as made: its account, its secret and, for a `scim` client, a long-lived
/// token; shown this once, never kept.
#[derive(Debug)]
pub struct NewClient {
    pub view: ClientView,
    pub secret: String,
    pub token: Option<(String, u64)>,
}

impl Service {
    /// Makes an API client with `scopes` (at least one): administrators only.
    pub async fn create_client(
        &self,
        caller: Bearer,
        write: Write,
        client_id: ClientId,
        scopes: Vec<Scope>,
        address: IpAddr,
    ) -> Result<NewClient, ServiceError> {
        self.require_administrator(caller).await?;
        if client_id.as_str() == self.admin.credential.client_id {
            return Err(ServiceError::InvalidRequest(
                "That is the bootstrap client's id, which the configuration sets.".into(),
            ));
        }
        let secret = crate::secrets::generate();
        let password_hash = self.hasher.hash(address, secret.clone()).await?;
        let id = client_id.as_str();
        let user = NewUser {
            username: Username::parse(client_username(id)).map_err(invalid)?,
            // `.invalid` is reserved (RFC 2606): this address can never receive mail.
            email: Email::parse(format!("{id}@clients.membership.invalid")).map_err(invalid)?,
            profile: Profile {
                firstname: Some("API client".into()),
                lastname: Some(id.into()),
                ..Profile::default()
            },
            client_id: Some(id.into()),
            scopes: scopes.clone(),
        };
        let user_id = Uuid::new_v4();
        let command = Command::CreateUser {
            user_id,
            user,
            password_hash: Some(password_hash),
        };
        let user_id = self
            .execute_for(caller, write, command)
            .await?
            .unwrap_or(user_id);
        let view = self.client(id.to_owned(), user_id).await?;
        // Its first password: the credential version a token of it carries.
        let token = match scopes.contains(&Scope::Scim) {
            true => {
                let ttl_s = self.provisioning_ttl_s;
                let token = (self.tokens).issue_for(user_id, Credential::Password(1), 0, ttl_s)?;
                Some((token, ttl_s))
            }
            false => None,
        };
        Ok(NewClient {
            view,
            secret,
            token,
        })
    }

    /// The client as made: gone if a revocation got in since.
    async fn client(&self, client_id: String, user_id: Uuid) -> Result<ClientView, ServiceError> {
        let found = self
            .read(move |conn| Ok(read_model::client(conn, &client_id)?))
            .await?;
        found
            .filter(|client| client.user_id == user_id)
            .ok_or(DomainError::UserNotFound.into())
    }

    /// Every API client, the bootstrap client's included: administrators only.
    pub async fn clients(&self, caller: Bearer) -> Result<Vec<ClientView>, ServiceError> {
        self.query(caller, |conn| Ok(read_model::list_clients(conn)?))
            .await
    }

    /// Revokes an API client: its account is deleted (its memberships, if any, first),
    /// and its tokens stop. The bootstrap client is retired by changing its secret.
    pub async fn revoke_client(
        &self,
        caller: Bearer,
        write: Write,
        client_id: ClientId,
    ) -> Result<(), ServiceError> {
        self.require_administrator(caller).await?;
        if client_id.as_str() == self.admin.credential.client_id {
            return Err(ServiceError::InvalidRequest(
                "The bootstrap client is retired by changing its secret in the configuration."
                    .into(),
            ));
        }
        let id = client_id.as_str().to_owned();
        let account = self
            .read(move |conn| Ok(read_model::service_account(conn, &id)?))
            .await?
            .ok_or(DomainError::UserNotFound)?;
        let command = Command::DeleteUser {
            user: UserIdentifier::Id(account),
        };
        self.execute_for(caller, write, command).await?;
        Ok(())
    }
}

fn invalid(error: crate::domain::InvalidName) -> ServiceError {
    ServiceError::InvalidRequest(format!("The client id {error}."))
}

//! Provisioning credentials: what an identity provider (Entra ID, Okta) calls SCIM with.
//! Each is a service account of its own, not in System Administrators, whose long-lived
//! bearer token may administer users and groups through SCIM only; it is named as the
//! actor of the events it causes. Revoking it deletes the account, and its token stops.

use std::net::IpAddr;

use uuid::Uuid;

use super::{Service, ServiceError, Write};
use crate::auth::{Bearer, Credential};
use crate::domain::{Command, DomainError, Email, NewUser, Profile, UserIdentifier, Username};
use crate::read_model::{self, PROVISIONING_CLIENT_PREFIX};

/// Longest name of a provisioning credential, in characters.
const NAME_MAX_CHARS: usize = 64;

/// A provisioning credential's name: lower-case letters, digits and `-` (`entra-prod`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionerName(String);

impl ProvisionerName {
    pub fn parse(text: &str) -> Result<Self, String> {
        let fits = (1..=NAME_MAX_CHARS).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_alphanumeric())
            && (text.chars()).all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        match fits {
            true => Ok(Self(text.to_owned())),
            false => Err(format!(
                "must be 1 to {NAME_MAX_CHARS} lower-case letters, digits or '-', starting \
                 with a letter or digit"
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn client_id(&self) -> String {
        format!("{PROVISIONING_CLIENT_PREFIX}{}", self.0)
    }
}

/// A provisioning credential as made: its account, and its token, shown this once.
#[derive(Debug)]
pub struct Provisioner {
    pub user_id: Uuid,
    pub username: String,
    pub token: String,
    pub expires_in_s: u64,
}

impl Service {
    /// Makes a provisioning credential: administrators only. Its account has a password
    /// nobody knows (its token's credential), so that it never logs in otherwise.
    pub async fn create_provisioner(
        &self,
        caller: Bearer,
        write: Write,
        name: ProvisionerName,
        address: IpAddr,
    ) -> Result<Provisioner, ServiceError> {
        self.require_administrator(caller).await?;
        let password_hash = self
            .hasher
            .hash(address, crate::secrets::generate())
            .await?;
        let username = format!("scim.{}", name.as_str());
        let user = NewUser {
            username: Username::parse(username.clone()).map_err(invalid)?,
            // `.invalid` is reserved (RFC 2606): this address can never receive mail.
            email: Email::parse(format!("{}@provisioning.membership.invalid", name.as_str()))
                .map_err(invalid)?,
            profile: Profile {
                firstname: Some("Provisioning".into()),
                lastname: Some(name.as_str().into()),
                ..Profile::default()
            },
            client_id: Some(name.client_id()),
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
        let ttl_s = self.provisioning_ttl_s;
        // Its first password: the credential version a token of it carries.
        let token = self
            .tokens
            .issue_for(user_id, Credential::Password(1), 0, ttl_s)?;
        Ok(Provisioner {
            user_id,
            username,
            token,
            expires_in_s: ttl_s,
        })
    }

    /// Revokes a provisioning credential: its account is deleted (its memberships, if
    /// any, first), and its token stops.
    pub async fn revoke_provisioner(
        &self,
        caller: Bearer,
        write: Write,
        name: ProvisionerName,
    ) -> Result<(), ServiceError> {
        self.require_administrator(caller).await?;
        let client_id = name.client_id();
        let account = self
            .read(move |conn| Ok(read_model::service_account(conn, &client_id)?))
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
    ServiceError::InvalidRequest(format!("The provisioning credential's name {error}."))
}

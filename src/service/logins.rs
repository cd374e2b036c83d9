//! Secrets: logins (the bootstrap client's secret, a user's password), password changes,
//! users created with a password, and token revocation. Failed logins are counted per
//! (name, address) and per address (see `throttle`), and every hash waits its turn fairly
//! among addresses (see `auth::Hasher`).

use std::future::Future;
use std::net::IpAddr;

use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Principal, Service, ServiceError, Write};
use crate::auth::{Bearer, Credential, HashError};
use crate::domain::{Command, NewUser, Password, Scope, UserIdentifier};
use crate::read_model;
use crate::throttle::RetryAfter;

/// What a login presents.
/// An issued bearer token, and how many seconds it lives.
#[derive(Debug)]
pub struct Token {
    pub token: String,
    pub ttl_s: u64,
}

/// The username of an API client's account: `svc.` and its id, as the bootstrap client's.
pub fn client_username(client_id: &str) -> String {
    format!("svc.{client_id}")
}

pub enum Grant {
    /// The bootstrap client's id and secret.
    Client { client_id: String, secret: String },
    /// A user's username or email, and password.
    Password { login: String, password: String },
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the client is unknown or its secret wrong")]
    InvalidClient,
    #[error("the user is unknown, suspended, or its password wrong")]
    InvalidGrant,
    #[error("too many failed attempts")]
    SlowDown { retry_after_s: u64 },
    #[error("too many secrets are being checked at once")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why a token was not revoked.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error("the token is not one this service issued, or it has expired")]
    NotOurs,
    #[error("a token can be revoked only by the user it was issued to")]
    NotTheCallers,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<HashError> for LoginError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => Self::Busy,
            HashError::Failed(error) => Self::Unexpected(error.context("checking a secret")),
        }
    }
}

impl From<HashError> for ServiceError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => Self::Unavailable { event_id: None },
            HashError::Failed(error) => Self::Unexpected(error.context("hashing a password")),
        }
    }
}

impl From<ServiceError> for LoginError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Unavailable { .. } => Self::Busy,
            other => Self::Unexpected(anyhow::Error::new(other)),
        }
    }
}

impl Service {
    /// A bearer token for the grant, asked from `address`, and how long it lives: an API
    /// client with the `scim` scope gets a provisioning token's lifetime.
    pub async fn login(&self, grant: Grant, address: IpAddr) -> Result<Token, LoginError> {
        let (user, credential, suspensions, ttl_s) = match grant {
            Grant::Client { client_id, secret } if client_id != self.admin.credential.client_id => {
                self.api_client_login(client_id, secret, address).await?
            }
            Grant::Client { client_id, secret } => {
                let (user, credential, suspensions) =
                    self.client_login(client_id, secret, address).await?;
                (user, credential, suspensions, self.tokens.ttl_s)
            }
            Grant::Password { login, password } => {
                let (user, credential, suspensions) =
                    self.password_login(login, password, address).await?;
                (user, credential, suspensions, self.tokens.ttl_s)
            }
        };
        let token = self
            .tokens
            .issue_for(user, credential, suspensions, ttl_s)?;
        Ok(Token { token, ttl_s })
    }

    /// A client made through the API (see `clients.rs`): its account's password is its
    /// secret. An unknown client costs one verification too, so timing tells nothing.
    async fn api_client_login(
        &self,
        client_id: String,
        secret: String,
        address: IpAddr,
    ) -> Result<(Uuid, Credential, u64, u64), LoginError> {
        let name = client_id.clone();
        self.throttled(&name, address, async {
            let found = self
                .read(move |conn| {
                    let Some(account) = read_model::service_account(conn, &client_id)? else {
                        return Ok(None);
                    };
                    let scopes = read_model::scopes_of(conn, account)?;
                    let login = read_model::login_of(conn, account)?;
                    Ok(login.map(|login| (login, scopes)))
                })
                .await?;
            let hash = found.as_ref().map_or_else(
                || self.admin.secret_hash.clone(),
                |(login, _)| login.hash.clone(),
            );
            let secret_ok = self.hasher.verify(address, secret, hash).await?;
            match found {
                Some((login, scopes)) if secret_ok && !login.status.suspended => {
                    let ttl_s = match scopes.contains(&Scope::Scim) {
                        true => self.provisioning_ttl_s,
                        false => self.tokens.ttl_s,
                    };
                    let credential = Credential::Password(login.version);
                    Ok((login.user, credential, login.status.suspensions, ttl_s))
                }
                _ => Err(LoginError::InvalidClient),
            }
        })
        .await
    }

    async fn client_login(
        &self,
        client_id: String,
        secret: String,
        address: IpAddr,
    ) -> Result<(Uuid, Credential, u64), LoginError> {
        let name = client_id.clone();
        self.throttled(&name, address, async {
            let client = &self.admin.credential;
            let known = client_id
                .as_bytes()
                .ct_eq(client.client_id.as_bytes())
                .into();
            let hash = self.admin.secret_hash.clone();
            // The secret is checked even for an unknown client, so timing tells nothing.
            let secret_ok = self.hasher.verify(address, secret, hash).await?;
            if !(known && secret_ok) {
                return Err(LoginError::InvalidClient);
            }
            let account = self
                .read(move |conn| {
                    let Some(account) = read_model::service_account(conn, &client_id)? else {
                        return Ok(None);
                    };
                    let status = read_model::account_status(conn, account)?;
                    Ok(status.map(|status| (account, status)))
                })
                .await?;
            match account {
                Some((account, status)) if !status.suspended => Ok((
                    account,
                    Credential::Client(client.digest),
                    status.suspensions,
                )),
                _ => Err(LoginError::InvalidClient),
            }
        })
        .await
    }

    async fn password_login(
        &self,
        login: String,
        password: String,
        address: IpAddr,
    ) -> Result<(Uuid, Credential, u64), LoginError> {
        let login_key = login.to_lowercase();
        let found = self
            .read({
                let login_key = login_key.clone();
                move |conn| Ok(read_model::password_hash(conn, &login_key)?)
            })
            .await?;
        // A user is counted as one name, whether it is named by username or by email (and
        // alike for a change of its password).
        let name = (found.as_ref()).map_or(login_key, |login| login.user.to_string());
        self.throttled(&name, address, async {
            // An unknown login still costs one verification, so timing does not reveal users.
            let hash = found.as_ref().map_or_else(
                || self.admin.secret_hash.clone(),
                |login| login.hash.clone(),
            );
            let password_ok = self.hasher.verify(address, password, hash).await?;
            // A suspended user is told no more than a wrong password would tell it.
            match found {
                Some(login) if password_ok && !login.status.suspended => Ok((
                    login.user,
                    Credential::Password(login.version),
                    login.status.suspensions,
                )),
                _ => Err(LoginError::InvalidGrant),
            }
        })
        .await
    }

    /// Runs a login `attempt` as `name` from `address`: refused at once when either count
    /// is full, counted from the start (so that concurrent guesses share the budget), and
    /// given back on success (clearing its own count) or when it could not be decided.
    async fn throttled<T>(
        &self,
        name: &str,
        address: IpAddr,
        attempt: impl Future<Output = Result<T, LoginError>>,
    ) -> Result<T, LoginError> {
        self.logins
            .attempt(name, address)
            .map_err(|RetryAfter(retry_after_s)| LoginError::SlowDown { retry_after_s })?;
        let result = attempt.await;
        match &result {
            Ok(_) => self.logins.succeeded(name, address),
            Err(LoginError::InvalidClient | LoginError::InvalidGrant) => {}
            Err(_) => self.logins.not_tried(name, address),
        }
        result
    }

    /// Creates a user, with its password hashed if it has one: administrators only, and
    /// refused before the (deliberately slow) hashing. The new user's id, or, for a retry
    /// under the same idempotency key, the one the first request made.
    pub async fn create_user(
        &self,
        caller: Bearer,
        write: Write,
        user: NewUser,
        password: Option<Password>,
        address: IpAddr,
    ) -> Result<Uuid, ServiceError> {
        let password_hash = match password {
            Some(password) => {
                self.require_administrator(caller).await?;
                Some(self.hasher.hash(address, password.into_inner()).await?)
            }
            None => None,
        };
        let user_id = Uuid::new_v4();
        let command = Command::CreateUser {
            user_id,
            user,
            password_hash,
        };
        let made = self.execute_for(caller, write, command).await?;
        Ok(made.unwrap_or(user_id))
    }

    /// Sets a user's password: the user itself with its `existing` password, or an
    /// administrator, with or without it. A wrong `existing` counts as a failed login of
    /// that user, so that a stolen token does not make guessing the password faster.
    pub async fn change_password(
        &self,
        caller: Bearer,
        write: Write,
        user: UserIdentifier,
        existing: Option<String>,
        new: Password,
        address: IpAddr,
    ) -> Result<(), ServiceError> {
        let (user_id, stored, is_admin) = self
            .query_self_or_admin(caller, user, move |conn, user| {
                let user_id =
                    crate::domain::State::require_user(&read_model::SqliteState::new(conn), user)?
                        .id;
                let is_admin = read_model::is_administrator(conn, caller.user)?;
                Ok((user_id, read_model::password_of(conn, user_id)?, is_admin))
            })
            .await?;
        let existing_ok = match (existing, stored) {
            (Some(existing), Some(stored)) => {
                self.verify_existing(address, user_id, existing, stored)
                    .await?
            }
            (Some(_), None) => false,
            (None, _) => is_admin,
        };
        if !existing_ok {
            return Err(ServiceError::ExistingPasswordInvalid);
        }
        let command = Command::SetPassword {
            user: UserIdentifier::Id(user_id),
            password_hash: self.hasher.hash(address, new.into_inner()).await?,
        };
        let principal = Principal::CallerOrUser {
            caller,
            user: UserIdentifier::Id(user_id),
        };
        self.execute(principal, write, command).await?;
        Ok(())
    }

    async fn verify_existing(
        &self,
        address: IpAddr,
        user: Uuid,
        existing: String,
        stored: String,
    ) -> Result<bool, ServiceError> {
        let name = user.to_string();
        self.logins
            .attempt(&name, address)
            .map_err(|RetryAfter(retry_after_s)| ServiceError::TooManyRequests { retry_after_s })?;
        let verified = self.hasher.verify(address, existing, stored).await;
        match &verified {
            Ok(true) => self.logins.succeeded(&name, address),
            Ok(false) => {}
            Err(_) => self.logins.not_tried(&name, address),
        }
        Ok(verified?)
    }

    /// Revokes `token`, one of the caller's own (possibly the one it calls with): once
    /// this answers, the token answers 401 on this instance. Nothing is appended for a
    /// token revoked already.
    pub async fn revoke(
        &self,
        caller: Bearer,
        write: Write,
        token: &str,
    ) -> Result<(), RevocationError> {
        // A caller whose own token no longer stands learns nothing about the one it names.
        let principal = UserIdentifier::Id(caller.user);
        self.query_self_or_admin(caller, principal.clone(), |_, _| Ok(()))
            .await?;
        let revoked = self.tokens.verify(token).ok_or(RevocationError::NotOurs)?;
        if revoked.user != caller.user {
            return Err(RevocationError::NotTheCallers);
        }
        let expires = OffsetDateTime::from_unix_timestamp(revoked.expires_s as i64)
            .map_err(|e| ServiceError::Unexpected(anyhow::Error::new(e)))?;
        let command = Command::RevokeToken {
            user: caller.user,
            token_id: revoked.token_id,
            expires,
        };
        let principal = Principal::CallerOrUser {
            caller,
            user: principal,
        };
        self.execute(principal, write, command).await?;
        Ok(())
    }
}

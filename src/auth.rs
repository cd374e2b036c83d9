//! Secrets and tokens: argon2 for passwords and client secrets, HS256 JWTs for bearer
//! tokens. Nothing here logs a secret or stores one in the clear.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::settings::Secret;

const ISSUER: &str = "membershipd";

/// An argon2 PHC string, with a fresh random salt.
pub fn hash_secret(secret: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a secret: {e}"))
}

/// Compares in constant time, as argon2's verifier does. A malformed hash never matches.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many secrets are being hashed at once")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Runs argon2 off the executor, a bounded number at a time: each run takes a core for
/// tens of milliseconds and about 19 MiB, so unbounded, a burst of logins could exhaust
/// memory and starve the read model of blocking threads. Past the bound: `Busy`.
pub struct Hasher {
    permits: Arc<Semaphore>,
}

impl Hasher {
    pub fn new(hashers_max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(hashers_max)),
        }
    }

    pub async fn hash(&self, secret: String) -> Result<String, HashError> {
        self.run(move || hash_secret(&secret))
            .await?
            .map_err(Into::into)
    }

    pub async fn verify(&self, secret: String, hash: String) -> Result<bool, HashError> {
        self.run(move || verify_secret(&secret, &hash)).await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| HashError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| HashError::Failed(anyhow::anyhow!("a hashing task failed: {e}")))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    iss: String,
    iat: u64,
    exp: u64,
}

/// Issues and checks bearer tokens. A token names a user; what the user may do is looked
/// up on every request, so a removal from System Administrators takes effect at once.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub ttl_s: u64,
}

impl Tokens {
    pub fn new(secret: &Secret, ttl_s: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // The issuer is this service, so there is no clock skew to allow for.
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            ttl_s,
        }
    }

    pub fn issue(&self, user: Uuid) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let claims = Claims {
            sub: user,
            iss: ISSUER.into(),
            iat: now,
            exp: now + self.ttl_s,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The user a token was issued to, if it is well formed, ours, and not expired.
    pub fn verify(&self, token: &str) -> Option<Uuid> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(secret: &str) -> Tokens {
        Tokens::new(&Secret::new(secret), 60)
    }

    #[test]
    fn a_token_names_the_user_it_was_issued_to() {
        let user = Uuid::new_v4();
        let tokens = tokens("a-secret-of-at-least-thirty-two-bytes!");
        assert_eq!(tokens.verify(&tokens.issue(user).unwrap()), Some(user));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = tokens("one-secret-of-at-least-thirty-two-bytes")
            .issue(Uuid::new_v4())
            .unwrap();
        assert_eq!(
            tokens("another-secret-of-at-least-32-bytes!!").verify(&token),
            None
        );
    }

    #[test]
    fn a_secret_verifies_against_its_hash_only() {
        let hash = hash_secret("pr0j3ctM4yh3m").unwrap();
        assert!(verify_secret("pr0j3ctM4yh3m", &hash));
        assert!(!verify_secret("pr0j3ctM4yh3n", &hash));
        assert!(!verify_secret("pr0j3ctM4yh3m", "not a hash"));
    }
}

//! Secrets and tokens: argon2 for passwords and client secrets, HS256 JWTs for bearer
//! tokens. Nothing here logs a secret or stores one in the clear.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use blake2::{Blake2s256, Digest};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::settings::Secret;
use crate::throttle::address_key;

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
/// memory and starve the read model of blocking threads.
///
/// Requests wait in a bounded queue, and fairly: one address (an IPv6 address by its /64,
/// as the login counts go) holds at most half of the hashers at once, so a flood from one
/// address leaves the rest to everyone else, and it may have only so many requests
/// waiting, so it cannot fill the queue either. Past a bound: `Busy`.
pub struct Hasher {
    running: Arc<Semaphore>,
    hashers_max: usize,
    /// Hashers one address may hold at once.
    share: usize,
    /// Requests running or waiting, at most, and from one address.
    admitted_max: usize,
    per_address_max: usize,
    admitted: Arc<Mutex<Admitted>>,
}

#[derive(Default)]
struct Admitted {
    total: usize,
    lanes: HashMap<IpAddr, Lane>,
}

struct Lane {
    requests: usize,
    share: Arc<Semaphore>,
}

/// A request's place in the queue, given back when its hashing is over.
struct Ticket {
    admitted: Arc<Mutex<Admitted>>,
    address: IpAddr,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut admitted = self.admitted.lock().unwrap_or_else(|e| e.into_inner());
        admitted.total -= 1;
        if let Some(lane) = admitted.lanes.get_mut(&self.address) {
            lane.requests -= 1;
            if lane.requests == 0 {
                admitted.lanes.remove(&self.address);
            }
        }
    }
}

impl Hasher {
    pub fn new(hashers_max: usize, queue_max: usize, per_address_max: usize) -> Self {
        Self {
            running: Arc::new(Semaphore::new(hashers_max)),
            hashers_max,
            // Half, so that another address always finds a hasher (with one hasher, none
            // can be kept for anyone).
            share: (hashers_max / 2).max(1),
            admitted_max: hashers_max + queue_max,
            per_address_max,
            admitted: Arc::default(),
        }
    }

    /// Hashes running now.
    pub fn busy(&self) -> usize {
        self.hashers_max - self.running.available_permits()
    }

    /// Requests admitted and waiting for a hasher.
    pub fn queued(&self) -> usize {
        let admitted = self
            .admitted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .total;
        admitted.saturating_sub(self.busy())
    }

    /// Hashes `secret` for a request from `address`.
    pub async fn hash(&self, address: IpAddr, secret: String) -> Result<String, HashError> {
        self.run(address, move || hash_secret(&secret))
            .await?
            .map_err(Into::into)
    }

    pub async fn verify(
        &self,
        address: IpAddr,
        secret: String,
        hash: String,
    ) -> Result<bool, HashError> {
        self.run(address, move || verify_secret(&secret, &hash))
            .await
    }

    fn admit(&self, address: IpAddr) -> Result<(Ticket, Arc<Semaphore>), HashError> {
        let address = address_key(address);
        let mut admitted = self.admitted.lock().unwrap_or_else(|e| e.into_inner());
        if admitted.total >= self.admitted_max {
            return Err(HashError::Busy);
        }
        let share = self.share;
        let lane = admitted.lanes.entry(address).or_insert_with(|| Lane {
            requests: 0,
            share: Arc::new(Semaphore::new(share)),
        });
        if lane.requests >= self.per_address_max {
            return Err(HashError::Busy);
        }
        lane.requests += 1;
        let share = lane.share.clone();
        admitted.total += 1;
        let ticket = Ticket {
            admitted: self.admitted.clone(),
            address,
        };
        Ok((ticket, share))
    }

    async fn run<T: Send + 'static>(
        &self,
        address: IpAddr,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (ticket, share) = self.admit(address)?;
        let closed = |_| HashError::Failed(anyhow::anyhow!("the hashers were closed"));
        // The address's share first, so that its waiting requests never hold a hasher.
        let own = share.acquire_owned().await.map_err(closed)?;
        let hasher = self.running.clone().acquire_owned().await.map_err(closed)?;
        tokio::task::spawn_blocking(move || {
            let _held = (ticket, own, hasher);
            work()
        })
        .await
        .map_err(|e| HashError::Failed(anyhow::anyhow!("a hashing task failed: {e}")))
    }
}

/// What a token was issued on: a user's password at a version (how many times it has been
/// set), or the bootstrap client's secret (a keyed digest of it). A token whose credential
/// has changed since is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Password(u64),
    Client(u64),
}

impl Credential {
    fn encode(self) -> String {
        match self {
            Self::Password(version) => format!("p:{version}"),
            Self::Client(digest) => format!("c:{digest:016x}"),
        }
    }

    fn decode(text: &str) -> Option<Self> {
        match text.split_once(':')? {
            ("p", version) => version.parse().ok().map(Self::Password),
            ("c", digest) => u64::from_str_radix(digest, 16).ok().map(Self::Client),
            _ => None,
        }
    }
}

/// A bearer token that verified: whom it names, on what credential, and its own id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bearer {
    pub user: Uuid,
    pub credential: Credential,
    pub token_id: Uuid,
    /// How many times its user had been suspended when it was issued: a later suspension
    /// stops it for good, even once the user is reinstated.
    pub suspensions: u64,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_s: u64,
    /// It came with a SCIM request, where a client with the `scim` scope may act (see
    /// `service::access`); set by the SCIM extractor, never by the token.
    pub scim: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    iat: u64,
    exp: u64,
    jti: Uuid,
    /// The credential the token was issued on, see [`Credential`].
    cred: String,
    /// See [`Bearer::suspensions`].
    sus: u64,
}

/// Issues and checks bearer tokens. A token names a user; what the user may do, and
/// whether the token still stands (its credential unchanged, the user neither suspended
/// nor deleted, the token not revoked), is looked up on every request.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    audience: Option<String>,
    /// Keys [`Tokens::client_digest`], so that a token shows nothing of the client secret.
    key: Secret,
    pub ttl_s: u64,
}

impl Tokens {
    pub fn new(secret: &Secret, ttl_s: u64, audience: Option<String>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        let mut required = vec!["exp", "iss", "sub", "iat", "jti"];
        match &audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        // The issuer is this service, so there is no clock skew to allow for.
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            audience,
            key: secret.clone(),
            ttl_s,
        }
    }

    /// The bootstrap client's credential version: a digest of its secret keyed with the
    /// signing key. A new secret gives a new digest, and the old tokens stop.
    pub fn client_digest(&self, client_secret: &Secret) -> u64 {
        let mut digest = Blake2s256::new();
        digest.update(self.key.expose().as_bytes());
        digest.update(b"\0membership client secret\0");
        digest.update(client_secret.expose().as_bytes());
        let bytes: [u8; 8] = digest.finalize()[..8].try_into().expect("8 bytes");
        u64::from_be_bytes(bytes)
    }

    pub fn issue(
        &self,
        user: Uuid,
        credential: Credential,
        suspensions: u64,
    ) -> anyhow::Result<String> {
        self.issue_for(user, credential, suspensions, self.ttl_s)
    }

    /// A token that lives `ttl_s` seconds.
    pub fn issue_for(
        &self,
        user: Uuid,
        credential: Credential,
        suspensions: u64,
        ttl_s: u64,
    ) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let claims = Claims {
            sub: user,
            iss: ISSUER.into(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + ttl_s,
            jti: Uuid::new_v4(),
            cred: credential.encode(),
            sus: suspensions,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The token's claims, if it is well formed, ours, and not expired. Whether it still
    /// stands is the read model's to say.
    pub fn verify(&self, token: &str) -> Option<Bearer> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        Some(Bearer {
            user: claims.sub,
            credential: Credential::decode(&claims.cred)?,
            token_id: claims.jti,
            suspensions: claims.sus,
            expires_s: claims.exp,
            scim: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(secret: &str) -> Tokens {
        Tokens::new(&Secret::new(secret), 60, None)
    }

    #[test]
    fn a_token_names_the_user_and_credential_it_was_issued_on() {
        let user = Uuid::new_v4();
        let tokens = tokens("a-secret-of-at-least-thirty-two-bytes!");
        for credential in [Credential::Password(3), Credential::Client(u64::MAX)] {
            let bearer = tokens
                .verify(&tokens.issue(user, credential, 0).unwrap())
                .unwrap();
            assert_eq!((bearer.user, bearer.credential), (user, credential));
        }
        let one = tokens.verify(&tokens.issue(user, Credential::Password(1), 0).unwrap());
        let two = tokens.verify(&tokens.issue(user, Credential::Password(1), 0).unwrap());
        assert_ne!(one.unwrap().token_id, two.unwrap().token_id);
    }

    #[test]
    fn an_audience_once_configured_is_required() {
        let secret = Secret::new("a-secret-of-at-least-thirty-two-bytes!");
        let plain = Tokens::new(&secret, 60, None);
        let audience = Tokens::new(&secret, 60, Some("https://membership.test".into()));
        let user = Uuid::new_v4();
        let token = audience.issue(user, Credential::Password(1), 0).unwrap();
        assert!(audience.verify(&token).is_some());
        let without = plain.issue(user, Credential::Password(1), 0).unwrap();
        assert!(audience.verify(&without).is_none());
    }

    #[test]
    fn the_client_digest_changes_with_the_secret() {
        let tokens = tokens("a-secret-of-at-least-thirty-two-bytes!");
        let one = tokens.client_digest(&Secret::new("one client secret"));
        assert_eq!(one, tokens.client_digest(&Secret::new("one client secret")));
        assert_ne!(
            one,
            tokens.client_digest(&Secret::new("another client secret"))
        );
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = tokens("one-secret-of-at-least-thirty-two-bytes")
            .issue(Uuid::new_v4(), Credential::Password(1), 0)
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

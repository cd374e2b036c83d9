//! Tokens made by hand, as a forger or a clock would: signed with a key of the test's
//! choosing, and read without checking.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use uuid::Uuid;

/// An HS256 token with the service's claims for a user's first password, signed with
/// `secret`.
pub fn sign_token(secret: &str, sub: Uuid, iat: u64, exp: u64) -> String {
    let claims = json!({
        "sub": sub, "iss": "membershipd", "iat": iat, "exp": exp,
        "jti": Uuid::new_v4(), "cred": "p:1", "sus": 0,
    });
    sign_claims(secret, &claims)
}

/// A token of `claims`, signed with `secret`.
pub fn sign_claims(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signing a token")
}

/// The claims of a token, read without checking its signature or expiry.
#[track_caller]
pub fn claims_of(token: &str) -> Value {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.insecure_disable_signature_validation();
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(b""),
        &validation,
    )
    .expect("a token's claims")
    .claims
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

//! What a request may present besides a session cookie: API keys, Supabase
//! access tokens, and the CSRF token that pairs with a browser session.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Every API key starts with this, so that it is recognisable in a
/// `Authorization` header, in logs and by secret scanners.
pub const API_KEY_PREFIX: &str = "ck_";
/// Characters of a key kept in clear, to tell a user's keys apart.
const SHOWN_PREFIX_CHARS: usize = 10;

/// A new API key, as shown once to its owner.
#[derive(Debug)]
pub struct NewKey {
    pub key: String,
    pub hash: Vec<u8>,
    pub prefix: String,
}

/// A new random API key: `ck_` and 32 random bytes.
pub fn new_api_key() -> NewKey {
    let secret: [u8; 32] = rand::random();
    let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    NewKey {
        hash: api_key_hash(&key),
        prefix: key[..SHOWN_PREFIX_CHARS].to_owned(),
        key,
    }
}

/// Keys are random and long, so one SHA-256 is enough to store them safely
/// (no password stretching needed) and cheap enough for every request.
pub fn api_key_hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// The CSRF token of a session: derived from its secret token, so it needs
/// no storage, dies with the session, and a page on another origin (which
/// cannot read the HttpOnly cookie) cannot compute it.
pub fn csrf_token(session_token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"coliseum csrf v1\0");
    hasher.update(session_token.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// The claims of a Supabase access token that Coliseum uses.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct SupabaseClaims {
    pub sub: String,
    pub email: String,
    pub role: String,
}

/// Why a Supabase token was refused (the reason goes into the `401`).
#[derive(Debug, thiserror::Error)]
#[error("the access token is not valid: {0}")]
pub struct BadToken(String);

/// Checks a Supabase access token: HS256 only (so `alg: none` and any
/// other algorithm fail), a valid signature with the project's JWT secret,
/// an unexpired `exp`, a `nbf` (when present) that has passed, the
/// `authenticated` audience and role (an `anon` key is no sign-in), and a
/// non-empty `sub` and `email`. The email comes back normalized as signup
/// normalizes it (trimmed, lower case), so both find the same account.
pub fn verify_supabase_token(token: &str, secret: &str) -> Result<SupabaseClaims, BadToken> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
    validation.set_audience(&["authenticated"]);
    validation.leeway = 30;
    validation.validate_nbf = true;
    let data = jsonwebtoken::decode::<SupabaseClaims>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation)
        .map_err(|error| BadToken(error.to_string()))?;
    let mut claims = data.claims;
    claims.email = claims.email.trim().to_lowercase();
    if claims.role != "authenticated" {
        return Err(BadToken(format!("role `{}` is not a signed-in user", claims.role)));
    }
    if claims.sub.is_empty() || claims.email.is_empty() {
        return Err(BadToken("`sub` and `email` must not be empty".to_owned()));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";

    fn token(claims: &serde_json::Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("sign")
    }

    fn claims(exp_from_now: i64) -> serde_json::Value {
        json!({
            "sub": "6f1c2d0e-8f43-4c53-a1d5-2b6c4f0e9a11",
            "email": "fan@example.com",
            "role": "authenticated",
            "aud": "authenticated",
            "exp": time::OffsetDateTime::now_utc().unix_timestamp() + exp_from_now,
        })
    }

    #[test]
    fn a_valid_token_gives_its_subject_and_email() {
        let claims = verify_supabase_token(&token(&claims(600), SECRET), SECRET).expect("valid");
        assert_eq!(claims.email, "fan@example.com");
        assert_eq!(claims.sub, "6f1c2d0e-8f43-4c53-a1d5-2b6c4f0e9a11");
    }

    #[test]
    fn expired_wrongly_signed_and_unsigned_tokens_are_refused() {
        assert!(
            verify_supabase_token(&token(&claims(-600), SECRET), SECRET).is_err(),
            "expired"
        );
        assert!(verify_supabase_token(&token(&claims(600), "another secret of enough length!!"), SECRET).is_err());
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims(600).to_string());
        assert!(
            verify_supabase_token(&format!("{header}.{body}."), SECRET).is_err(),
            "alg none"
        );
        let mut anon = claims(600);
        anon["role"] = json!("anon");
        assert!(
            verify_supabase_token(&token(&anon, SECRET), SECRET).is_err(),
            "anon key"
        );
        let mut no_sub = claims(600);
        no_sub.as_object_mut().expect("object").remove("sub");
        assert!(
            verify_supabase_token(&token(&no_sub, SECRET), SECRET).is_err(),
            "no sub"
        );
    }

    #[test]
    fn a_token_not_valid_yet_is_refused_and_its_email_is_normalized_as_signup_does() {
        let mut early = claims(600);
        early["nbf"] = json!(time::OffsetDateTime::now_utc().unix_timestamp() + 300);
        assert!(
            verify_supabase_token(&token(&early, SECRET), SECRET).is_err(),
            "nbf in the future"
        );
        let mut started = claims(600);
        started["nbf"] = json!(time::OffsetDateTime::now_utc().unix_timestamp() - 5);
        let mut shouting = started.clone();
        shouting["email"] = json!("  Fan@Example.COM ");
        let verified = verify_supabase_token(&token(&shouting, SECRET), SECRET).expect("valid");
        assert_eq!(verified.email, "fan@example.com");
        let mut blank = claims(600);
        blank["email"] = json!("   ");
        assert!(
            verify_supabase_token(&token(&blank, SECRET), SECRET).is_err(),
            "blank email"
        );
    }

    #[test]
    fn api_keys_are_prefixed_random_and_hashed() {
        let (a, b) = (new_api_key(), new_api_key());
        assert!(a.key.starts_with("ck_") && a.key.len() == 46, "{}", a.key);
        assert_ne!(a.key, b.key);
        assert_eq!(api_key_hash(&a.key), a.hash);
        assert!(a.key.starts_with(&a.prefix));
    }

    #[test]
    fn csrf_tokens_differ_per_session() {
        assert_eq!(csrf_token("s1"), csrf_token("s1"));
        assert_ne!(csrf_token("s1"), csrf_token("s2"));
    }
}

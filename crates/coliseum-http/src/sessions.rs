//! Passwords and browser sessions: Argon2id hashes, random session tokens
//! kept server-side only as SHA-256 hashes, and the cookie that carries them.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub const SESSION_COOKIE: &str = "coliseum_session";
pub const MIN_PASSWORD_CHARS: usize = 10;
pub const SESSION_LIFETIME: time::Duration = time::Duration::days(14);

/// Hashes a password with Argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Checks a password against a PHC string; any malformed hash is a mismatch.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// A hash to verify against when the email is unknown, so that a miss takes
/// as long as a wrong password and says nothing about which emails exist.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never matches").unwrap_or_default())
}

/// A new session token (for the cookie) and its hash (for the store).
pub fn new_session_token() -> (String, Vec<u8>) {
    let token: [u8; 32] = rand::random();
    let text = URL_SAFE_NO_PAD.encode(token);
    let hash = token_hash(&text);
    (text, hash)
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The `Set-Cookie` value that carries a session.
pub fn session_cookie(token: &str, secure: bool) -> String {
    let max_age = SESSION_LIFETIME.whole_seconds();
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// The `Set-Cookie` value that clears it.
pub fn cleared_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}")
}

/// The session token in a `Cookie` header, if any.
pub fn token_from_cookies(cookie_header: &str) -> Option<&str> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// How long a node may serve a session from memory before asking the store
/// again. Logging out on this node ends the session at once; on another
/// node of a cluster, within this long.
pub const SESSION_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// Credentials the store confirmed recently (sessions, API keys, Supabase
/// subjects), by hash: a signed-in read should not cost a database round
/// trip (it would cap signed-in reads at a fraction of anonymous ones).
#[derive(Debug)]
pub struct CredentialCache<V> {
    entries: std::sync::RwLock<std::collections::HashMap<Vec<u8>, (V, std::time::Instant)>>,
    /// Counts what was forgotten: what a credential allows changed (a
    /// logout, a plan, a revoked key), and whoever holds one open (a live
    /// connection) checks it again.
    changes: tokio::sync::watch::Sender<u64>,
}

impl<V> Default for CredentialCache<V> {
    fn default() -> Self {
        Self {
            entries: std::sync::RwLock::default(),
            changes: tokio::sync::watch::channel(0).0,
        }
    }
}

impl<V> CredentialCache<V> {
    /// Changes whenever an entry is forgotten.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The users of sessions and Supabase subjects.
pub type SessionCache = CredentialCache<coliseum_store::User>;

/// Entries kept at most; past it the cache starts over (cheaper than
/// tracking age, and a store round trip refills it).
const SESSION_CACHE_MAX: usize = 100_000;

impl<V: Clone> CredentialCache<V> {
    /// The value confirmed less than [`SESSION_CACHE_TTL`] ago.
    pub fn get(&self, hash: &[u8]) -> Option<V> {
        let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (value, at) = entries.get(hash)?;
        (at.elapsed() < SESSION_CACHE_TTL).then(|| value.clone())
    }

    /// The cached value, else what `fetch` finds (cached when found).
    pub async fn get_or_fetch<E, Fut>(&self, hash: &[u8], fetch: impl FnOnce() -> Fut) -> Result<Option<V>, E>
    where
        Fut: std::future::Future<Output = Result<Option<V>, E>>,
    {
        if let Some(value) = self.get(hash) {
            return Ok(Some(value));
        }
        let found = fetch().await?;
        if let Some(value) = &found {
            self.put(hash.to_vec(), value.clone());
        }
        Ok(found)
    }

    pub fn put(&self, hash: Vec<u8>, value: V) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= SESSION_CACHE_MAX {
            entries.clear();
        }
        entries.insert(hash, (value, std::time::Instant::now()));
    }

    pub fn forget(&self, hash: &[u8]) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.remove(hash);
        drop(entries);
        self.changed();
    }

    /// Forgets every entry: after a change (a plan bought) that any of
    /// them may carry.
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a phc string"));
    }

    #[test]
    fn cookies_round_trip() {
        let (token, hash) = new_session_token();
        assert_eq!(token_hash(&token), hash);
        let header = format!("theme=dark; {SESSION_COOKIE}={token}; other=1");
        assert_eq!(token_from_cookies(&header), Some(token.as_str()));
        assert!(session_cookie(&token, true).contains("HttpOnly; SameSite=Lax"));
        assert!(session_cookie(&token, true).ends_with("; Secure"));
        assert!(!session_cookie(&token, false).contains("Secure"));
    }
}

//! Passwords and browser sessions: Argon2id hashes, random session tokens
//! kept server-side only as SHA-256 hashes, and the cookie that carries them;
//! and the cache of what the store said of a credential.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coliseum_engine::single_flight::Gates;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

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
pub const SESSION_CACHE_TTL: Duration = Duration::from_secs(2);

/// From this age the first request that finds a credential asks the store
/// again while the others go on with what is kept: a credential in use is
/// confirmed before it expires, so its requests do not all wait for the
/// store at once (a dashboard's reads did, every two seconds, each asking).
const SESSION_CACHE_REFRESH: Duration = Duration::from_secs(1);

/// Credentials the store confirmed recently (sessions, API keys, Supabase
/// subjects), by hash: a signed-in read should not cost a database round
/// trip (it would cap signed-in reads at a fraction of anonymous ones).
#[derive(Debug)]
pub struct CredentialCache<V> {
    entries: RwLock<Entries<V>>,
    /// Who asks the store about a credential now (for one still kept, one
    /// request at a time); a logout voids their answers.
    asking: Gates<Vec<u8>>,
    /// Counts what was forgotten: what a credential allows changed (a
    /// logout, a plan, a revoked key), and whoever holds one open (a live
    /// connection) checks it again.
    changes: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug)]
struct Entries<V> {
    /// The answer and when it was asked for (the tokio clock, which tests
    /// can stop).
    by_hash: HashMap<Vec<u8>, (V, Instant)>,
    /// Counts clearings, under the same lock as the entries, so that an
    /// answer asked for before one is not kept after it.
    cleared: u64,
}

impl<V> Default for CredentialCache<V> {
    fn default() -> Self {
        Self {
            entries: RwLock::new(Entries {
                by_hash: HashMap::new(),
                cleared: 0,
            }),
            asking: Gates::default(),
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

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries<V>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries<V>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The users of sessions and Supabase subjects.
pub type SessionCache = CredentialCache<coliseum_store::User>;

/// Entries kept at most; past it the cache starts over (cheaper than
/// tracking age, and a store round trip refills it).
const SESSION_CACHE_MAX: usize = 100_000;

impl<V: Clone> CredentialCache<V> {
    /// What the store confirmed less than [`SESSION_CACHE_TTL`] before,
    /// and how long before.
    fn cached(&self, hash: &[u8]) -> Option<(V, Duration)> {
        let entries = self.read();
        let (value, asked) = entries.by_hash.get(hash)?;
        let age = asked.elapsed();
        (age < SESSION_CACHE_TTL).then(|| (value.clone(), age))
    }

    /// The cached value, else what `fetch` finds (kept when found). A value
    /// past [`SESSION_CACHE_REFRESH`] is served while one request asks
    /// again, and still served to that one if the store fails to answer.
    pub async fn get_or_fetch<E, Fut>(&self, hash: &[u8], fetch: impl FnOnce() -> Fut) -> Result<Option<V>, E>
    where
        Fut: std::future::Future<Output = Result<Option<V>, E>>,
    {
        let kept = self.cached(hash);
        // Seen as asking until the answer is kept, so that a logout
        // meanwhile voids it.
        let asking = match &kept {
            Some((value, age)) if *age < SESSION_CACHE_REFRESH => return Ok(Some(value.clone())),
            // One request asks again; the others are served what is kept.
            Some((value, _)) => match self.asking.enter_if_idle(hash.to_vec()) {
                Some(asking) => asking,
                None => return Ok(Some(value.clone())),
            },
            // Not kept: every request asks (as many as come at once), so
            // that one failing does not hold the others in a queue.
            None => self.asking.enter(hash.to_vec()),
        };
        let (cleared, voids) = (self.read().cleared, asking.voids());
        let asked = Instant::now();
        let found = match fetch().await {
            Ok(found) => found,
            Err(error) => return self.cached(hash).map(|(value, _)| Some(value)).ok_or(error),
        };
        let mut entries = self.write();
        match &found {
            // A logout or a plan change while the store answered: the
            // answer may predate it.
            Some(_) if entries.cleared != cleared || asking.voids() != voids => {}
            Some(value) => {
                if entries.by_hash.len() >= SESSION_CACHE_MAX {
                    entries.by_hash.clear();
                }
                entries.by_hash.insert(hash.to_vec(), (value.clone(), asked));
            }
            // Ended elsewhere (another node, the session's lifetime, a
            // logout cut short before it forgot): whoever holds it open
            // checks it again. A made-up credential was never kept.
            None => {
                if entries.by_hash.remove(hash).is_some() {
                    drop(entries);
                    self.changed();
                }
            }
        }
        Ok(found)
    }

    /// Forgets `hash`'s answer. Whoever holds a credential open (a live
    /// connection) is told to check it again when the store just `ended`
    /// it or an answer was kept here: not for a hash nobody could hold, such
    /// as a logout with a made-up cookie, which would make every live
    /// connection on the node ask the store.
    pub fn forget(&self, hash: &[u8], ended: bool) {
        let mut entries = self.write();
        let held = entries.by_hash.remove(hash).is_some();
        // Under the entries' lock, as the answers are kept: a question
        // about this credential in flight now is not kept after.
        self.asking.void(hash);
        drop(entries);
        if ended || held {
            self.changed();
        }
    }

    /// Forgets every entry: after a change (a plan bought) that any of
    /// them may carry.
    pub fn clear(&self) {
        let mut entries = self.write();
        entries.by_hash.clear();
        entries.cleared += 1;
        drop(entries);
        self.changed();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password("anything", "not a phc string"));
    }

    /// A fetch that counts its calls and answers `value` after `delay`.
    async fn counted(calls: &AtomicUsize, value: Option<u32>, delay: Duration) -> Result<Option<u32>, ()> {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        Ok(value)
    }

    /// A cache holding `1` for `token`, asked for once.
    async fn holding_one() -> (Arc<CredentialCache<u32>>, Arc<AtomicUsize>) {
        let cache = Arc::new(CredentialCache::<u32>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let first = cache
            .get_or_fetch(b"token", || counted(&calls, Some(1), Duration::ZERO))
            .await;
        assert_eq!(first, Ok(Some(1)));
        (cache, calls)
    }

    /// Asks for `token` in a task of its own, with a fetch that answers
    /// `value` after 300 ms; returns once that fetch is under way.
    async fn asking_slowly(
        cache: &Arc<CredentialCache<u32>>,
        calls: &Arc<AtomicUsize>,
        value: Option<u32>,
    ) -> tokio::task::JoinHandle<Result<Option<u32>, ()>> {
        let (cache, calls) = (cache.clone(), calls.clone());
        let asking = tokio::spawn(async move {
            cache
                .get_or_fetch(b"token", || counted(&calls, value, Duration::from_millis(300)))
                .await
        });
        tokio::task::yield_now().await;
        asking
    }

    #[tokio::test(start_paused = true)]
    async fn a_credential_in_use_is_asked_for_again_by_one_request_while_the_others_go_on() {
        let (cache, calls) = holding_one().await;
        tokio::time::sleep(SESSION_CACHE_REFRESH).await;
        let refreshing = asking_slowly(&cache, &calls, Some(2)).await;
        let before = Instant::now();
        for _ in 0..20 {
            let meanwhile = cache
                .get_or_fetch(b"token", || counted(&calls, Some(3), Duration::ZERO))
                .await;
            assert_eq!(meanwhile, Ok(Some(1)), "served what is kept");
        }
        assert_eq!(Instant::now(), before, "nobody waited for the refresh");
        assert_eq!(refreshing.await.expect("joins"), Ok(Some(2)));
        let after = cache
            .get_or_fetch(b"token", || counted(&calls, Some(4), Duration::ZERO))
            .await;
        assert_eq!(after, Ok(Some(2)), "the new answer is kept");
        assert_eq!(calls.load(Ordering::SeqCst), 2, "the store was asked once more");
        // Kept from when the store was asked, 300 ms before it answered.
        tokio::time::sleep(SESSION_CACHE_TTL - Duration::from_millis(200)).await;
        let failing = cache
            .get_or_fetch(b"token", || async { Err::<Option<u32>, ()>(()) })
            .await;
        assert_eq!(failing, Err(()), "expired two seconds after it was asked for");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_serves_what_is_kept_and_an_ended_credential_is_dropped() {
        let (cache, calls) = holding_one().await;
        tokio::time::sleep(SESSION_CACHE_REFRESH).await;
        let failed = cache
            .get_or_fetch(b"token", || async { Err::<Option<u32>, ()>(()) })
            .await;
        assert_eq!(failed, Ok(Some(1)), "the store failed; the answer kept still holds");
        // Ended on another node: dropped at once, not served for the rest of its time.
        let ended = cache
            .get_or_fetch(b"token", || counted(&calls, None, Duration::ZERO))
            .await;
        assert_eq!(ended, Ok(None));
        let failing = cache
            .get_or_fetch(b"token", || async { Err::<Option<u32>, ()>(()) })
            .await;
        assert_eq!(failing, Err(()), "nothing is kept for it any more");
        let again = cache
            .get_or_fetch(b"token", || counted(&calls, Some(5), Duration::ZERO))
            .await;
        assert_eq!(again, Ok(Some(5)), "asked again");
        tokio::time::sleep(SESSION_CACHE_TTL).await;
        let expired = cache
            .get_or_fetch(b"token", || async { Err::<Option<u32>, ()>(()) })
            .await;
        assert_eq!(expired, Err(()), "nothing older than the TTL is served");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_asked_for_before_a_logout_or_a_plan_change_is_not_kept_after_it() {
        // A logout while the first question is in flight.
        let cache = Arc::new(CredentialCache::<u32>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let asking = asking_slowly(&cache, &calls, Some(1)).await;
        cache.forget(b"token", true);
        assert_eq!(asking.await.expect("joins"), Ok(Some(1)));
        let after = cache
            .get_or_fetch(b"token", || counted(&calls, None, Duration::ZERO))
            .await;
        assert_eq!(after, Ok(None), "the store is asked again");

        // A plan change while a refresh is in flight.
        let (cache, calls) = holding_one().await;
        tokio::time::sleep(SESSION_CACHE_REFRESH).await;
        let refreshing = asking_slowly(&cache, &calls, Some(2)).await;
        cache.clear();
        assert_eq!(refreshing.await.expect("joins"), Ok(Some(2)));
        let after = cache
            .get_or_fetch(b"token", || counted(&calls, Some(3), Duration::ZERO))
            .await;
        assert_eq!(after, Ok(Some(3)), "the store is asked again");

        // A logout of another credential, asked about at the same time
        // (anyone may send a logout with any cookie), voids only that one.
        let (cache, calls) = holding_one().await;
        tokio::time::sleep(SESSION_CACHE_REFRESH).await;
        let refreshing = asking_slowly(&cache, &calls, Some(2)).await;
        let stranger = tokio::spawn({
            let (cache, calls) = (cache.clone(), calls.clone());
            async move {
                cache
                    .get_or_fetch(b"stranger", || counted(&calls, Some(9), Duration::from_millis(300)))
                    .await
            }
        });
        tokio::task::yield_now().await;
        cache.forget(b"stranger", false);
        assert_eq!(refreshing.await.expect("joins"), Ok(Some(2)));
        assert_eq!(stranger.await.expect("joins"), Ok(Some(9)));
        let after = cache
            .get_or_fetch(b"token", || counted(&calls, Some(3), Duration::ZERO))
            .await;
        assert_eq!(after, Ok(Some(2)), "the refreshed answer is kept");
        let voided = cache
            .get_or_fetch(b"stranger", || counted(&calls, None, Duration::ZERO))
            .await;
        assert_eq!(voided, Ok(None), "the logged-out one is asked again");
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn live_connections_check_again_when_a_kept_credential_ends_and_only_then() {
        let (cache, calls) = holding_one().await;
        let mut changes = cache.changes();
        // A logout with a cookie nobody holds, and a question about one.
        cache.forget(b"made up", false);
        let unknown = cache
            .get_or_fetch(b"made up", || counted(&calls, None, Duration::ZERO))
            .await;
        assert_eq!(unknown, Ok(None));
        assert!(!changes.has_changed().expect("open"), "nobody held it");
        // The kept one found ended when asked again (ended on another node,
        // or by a logout that stopped before it forgot).
        tokio::time::sleep(SESSION_CACHE_REFRESH).await;
        let ended = cache
            .get_or_fetch(b"token", || counted(&calls, None, Duration::ZERO))
            .await;
        assert_eq!(ended, Ok(None));
        assert!(changes.has_changed().expect("open"), "its holders check again");
        changes.mark_unchanged();
        // The logout that follows finds nothing kept and no session ended.
        cache.forget(b"token", false);
        assert!(!changes.has_changed().expect("open"));
        cache.forget(b"token", true);
        assert!(changes.has_changed().expect("open"), "a session the store ended");
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

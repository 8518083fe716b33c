//! The storage interface of Coliseum: small traits named for what the engine
//! and the server need, the records that cross them, and the error type.
//! Each backend (`coliseum-store-sqlite`, `coliseum-store-postgres`) implements
//! them with its own SQL and migrations; [`conformance`] is the scenario suite
//! both must pass.
//!
//! Invariant: no driver type crosses these traits.

pub mod conformance;
mod records;

use async_trait::async_trait;

pub use records::{
    Appended, LogStats, NewEntry, NewSession, NewUser, StoredEntry, User, UserCredentials, truncate_to_micros,
};

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or did not answer in time; a retry may succeed.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A write broke a rule of the data (a duplicate key, a missing row).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else: a bug or a corrupt store.
    #[error("store failure: {0}")]
    Internal(String),
}

/// The Passport log: append-only, idempotent by `event_id`, ordered by `seq`.
#[async_trait]
pub trait PassportLog: Send + Sync {
    /// Appends `entries` in one transaction and commits once. Returns, in
    /// order, each entry's fate: a new `seq`, or `Duplicate` when an entry
    /// with the same `event_id` is already stored. The caller guarantees that
    /// the event ids within one call are distinct. Sequence numbers become
    /// visible in order: every `seq` below a returned one is already visible.
    async fn append_entries(&self, entries: &[NewEntry]) -> Result<Vec<Appended>, StoreError>;

    /// How many `append_entries` calls may usefully run at once. A backend
    /// that can do part of an append (claiming ids) while another append
    /// holds the log says more than one; calls beyond it only wait.
    fn concurrent_appends(&self) -> usize {
        1
    }

    /// Up to `limit` entries with `seq > after`, in `seq` order.
    async fn read_after(&self, after: i64, limit: u32) -> Result<Vec<StoredEntry>, StoreError>;

    /// The head of the log and how much of it is unrecognized. Cheap: it
    /// reads no more than an index end and the (rare) unrecognized entries.
    async fn log_stats(&self) -> Result<LogStats, StoreError>;

    /// How many entries the log holds: a full count, for tests and tools.
    async fn count_entries(&self) -> Result<i64, StoreError>;
}

/// Users and their browser sessions.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Creates the user, or updates the password, role, plan and links of the
    /// user with that email (emails compare case-insensitively).
    async fn upsert_user(&self, user: &NewUser) -> Result<User, StoreError>;

    async fn user_credentials(&self, email: &str) -> Result<Option<UserCredentials>, StoreError>;

    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;

    /// The user of an unexpired session, by the hash of its token.
    async fn session_user(&self, token_hash: &[u8], now: time::OffsetDateTime) -> Result<Option<User>, StoreError>;

    /// Ends a session at once; unknown tokens are ignored.
    async fn revoke_session(&self, token_hash: &[u8]) -> Result<(), StoreError>;
}

/// Everything a Coliseum node needs from its database.
#[async_trait]
pub trait Store: PassportLog + Accounts + std::fmt::Debug {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;
}

//! The records that cross the storage interface.

use coliseum_domain::passport::Entry;
use coliseum_domain::plans::{Plan, Role};
use time::OffsetDateTime;

/// An entry ready to append to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub event_id: String,
    pub entry_type: String,
    pub recognized: bool,
    /// UTC, whole microseconds.
    pub timestamp: OffsetDateTime,
    pub received_at: OffsetDateTime,
    pub user_id: Option<String>,
    pub artist_id: Option<String>,
    pub live_event_id: Option<String>,
    /// Normalized keys (trimmed, lower case).
    pub city: Option<String>,
    pub genre: Option<String>,
    /// The envelope as received, compact JSON.
    pub envelope: String,
}

impl NewEntry {
    pub fn from_entry(entry: Entry, received_at: OffsetDateTime) -> Self {
        Self {
            recognized: entry.is_recognized(),
            event_id: entry.event_id,
            entry_type: entry.type_name,
            timestamp: entry.timestamp,
            received_at: truncate_to_micros(received_at),
            user_id: entry.user_id,
            artist_id: entry.artist_id,
            live_event_id: entry.live_event_id,
            city: entry.city.map(|c| c.key),
            genre: entry.genre.map(|g| g.key),
            envelope: entry.envelope,
        }
    }
}

/// Both stores keep microseconds; comparing what went in with what comes
/// out needs the same precision.
pub fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1000 * 1000).unwrap_or(at)
}

/// An entry read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: i64,
    pub entry: NewEntry,
}

/// The fate of one appended entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    Accepted { seq: i64 },
    Duplicate,
}

/// The size of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogStats {
    /// The highest `seq` stored, 0 when empty.
    pub head_seq: i64,
    pub unrecognized: i64,
}

/// A user to create or update.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    /// An Argon2id PHC string; never the password itself.
    pub password_hash: String,
    pub role: Role,
    pub plan: Plan,
    pub artists: Vec<String>,
    pub live_events: Vec<String>,
}

/// A user as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub plan: Plan,
    pub artists: Vec<String>,
    pub live_events: Vec<String>,
}

/// A user with the hash to check a password against.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

/// A browser session, stored by the SHA-256 of its token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_hash: Vec<u8>,
    pub user_id: i64,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

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

/// A session in force, as its owner may see it: no token, only its hash
/// (to recognize the one in use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub token_hash: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// An API key to store: only the hash of the secret is kept.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub user_id: i64,
    pub name: String,
    /// SHA-256 of the whole key.
    pub key_hash: Vec<u8>,
    /// The key's first characters, so that its owner can tell keys apart.
    pub prefix: String,
    pub created_at: OffsetDateTime,
}

/// An API key as its owner sees it in a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub prefix: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// What a Stripe event means for a customer, already verified and mapped.
#[derive(Debug, Clone)]
pub struct StripeChange {
    pub event_id: String,
    pub customer_id: String,
    /// Orders the events of one customer: later states have larger values,
    /// whatever order they arrive in.
    pub order: i64,
    /// The user this event links the customer to, if it names one.
    pub link_user: Option<i64>,
    /// The plan the customer has after this event; `None` when it says
    /// nothing about the plan (a link only).
    pub plan: Option<Plan>,
    pub received_at: OffsetDateTime,
}

/// What recording a Stripe event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeOutcome {
    /// The event id was seen before; nothing changed.
    Duplicate,
    /// The customer is not linked to a user yet; the event is kept and
    /// applied when the link arrives.
    Pending,
    /// The customer's user, with the plan now in force (`changed` when this
    /// call changed it).
    Applied { user_id: i64, plan: Plan, changed: bool },
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Assigned by the store; ignored on append.
    pub id: i64,
    pub at: OffsetDateTime,
    /// Who acted: `user:<id>`, `stripe`, `operator` or `anonymous`.
    pub actor: String,
    /// What was done, e.g. `login`, `login.failed`, `plan.changed`.
    pub action: String,
    /// What it was done to, e.g. `user:<id>`, `api_key:<id>`, `pipeline`.
    pub subject: String,
    pub request_id: String,
    /// A JSON object with the details that matter for this action.
    pub detail: String,
}

/// The audit record an action writes in the action's own transaction, made
/// from its outcome (`None`: nothing to record, such as a plan that did not
/// change). The action and its record happen together or not at all.
pub type AuditOf<'a, T> = &'a (dyn Fn(&T) -> Option<AuditRecord> + Send + Sync);

/// Which audit records to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub subject: Option<String>,
    pub since: Option<OffsetDateTime>,
    /// Only records with a smaller id (the cursor of the previous page).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// The plan after applying a customer's kept Stripe events (`(order, plan)`,
/// sorted by order) on top of `current`, and the order of the last one
/// applied: an event no later than the last applied one, or one that says
/// nothing about the plan, changes nothing.
pub fn latest_plan(
    applied_order: i64,
    current: Plan,
    waiting: &[(i64, Option<String>)],
) -> Result<(i64, Plan), crate::StoreError> {
    let mut latest = (applied_order, current);
    for (order, plan) in waiting {
        if let Some(plan) = plan
            && *order > latest.0
        {
            let plan = plan
                .parse()
                .map_err(|e| crate::StoreError::Internal(format!("stored plan: {e}")))?;
            latest = (*order, plan);
        }
    }
    Ok(latest)
}

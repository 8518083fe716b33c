//! Alert rules and their notifications: what the evaluator keeps so that
//! any node can continue it, and the record of every delivery.

use time::OffsetDateTime;

/// A rule's stored configuration (an admin's edit; `None`: the defaults)
/// and state (the evaluator's), as the JSON the domain reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlertRule {
    pub rule: String,
    pub config: Option<String>,
    pub state: Option<String>,
    /// Grows with every write of the rule: what an evaluation's write expects.
    pub version: i64,
}

/// A notification about to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// Unique per rule, incident, notification and route: a second claim
    /// of the same key (another node, a retry after a crash) records nothing.
    pub key: String,
    pub rule: String,
    /// `firing`, `resolved`, `flapping` or `repeat`.
    pub kind: String,
    /// `slack`, `email` or `pagerduty`.
    pub route: String,
    /// `sending`, or `silenced` for one recorded and never sent.
    pub status: String,
    pub at: OffsetDateTime,
    /// What the message said, as JSON.
    pub detail: String,
}

/// A notification and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    pub id: i64,
    pub notification: NewNotification,
    /// `sending`, `sent`, `failed` or `silenced`.
    pub status: String,
    pub attempts: i32,
    /// The last failure, when there was one.
    pub error: Option<String>,
}

//! Reports made, the links that share them, and who opened those links.
//! The files themselves live in object storage; the store keeps what is
//! known about them.

use time::OffsetDateTime;

/// A report about to be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    /// Random, URL-safe.
    pub id: String,
    pub user_id: i64,
    /// `artist`, `live_event`, `leaderboard` or `platform`.
    pub template: String,
    /// `pdf` or `json`.
    pub format: String,
    /// The request's parameters, compact JSON.
    pub params: String,
    pub created_at: OffsetDateTime,
}

/// A report as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRecord {
    pub id: String,
    pub user_id: i64,
    pub template: String,
    pub format: String,
    pub params: String,
    pub created_at: OffsetDateTime,
    /// `None` while it is being made.
    pub size_bytes: Option<i64>,
    /// The log position its figures are complete up to, once made.
    pub watermark: Option<i64>,
}

/// How many reports a user may have made since an instant (PLANS.md's
/// monthly allowance, from the start of the month).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportQuota {
    pub max: u32,
    pub since: OffsetDateTime,
}

/// A new link to a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShare {
    /// The link's secret: at least 128 random bits, URL-safe.
    pub token: String,
    pub report_id: String,
    pub user_id: i64,
    /// Argon2id, PHC string; `None`: no password.
    pub password_hash: Option<String>,
    pub created_at: OffsetDateTime,
    /// `None`: never expires (Enterprise only).
    pub expires_at: Option<OffsetDateTime>,
}

/// Why a link stopped working before its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareEnd {
    Revoked,
    /// Replaced by a new token.
    Rotated,
}

impl ShareEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Rotated => "rotated",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "revoked" => Some(Self::Revoked),
            "rotated" => Some(Self::Rotated),
            _ => None,
        }
    }
}

/// A link as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRecord {
    pub id: i64,
    pub token: String,
    pub report_id: String,
    pub user_id: i64,
    pub password_hash: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    /// When and why it ended before expiring.
    pub ended: Option<(OffsetDateTime, ShareEnd)>,
    /// How many times it was opened.
    pub views: i64,
}

impl ShareRecord {
    /// Whether the link serves its report at `now`.
    pub fn in_force(&self, now: OffsetDateTime) -> bool {
        self.ended.is_none() && self.expires_at.is_none_or(|expiry| now < expiry)
    }
}

/// One opening of a link: never the address itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareView {
    pub at: OffsetDateTime,
    /// A keyed hash of the viewer's address: tells repeat visits apart
    /// without keeping who they were.
    pub address_hash: String,
    /// The browser's family ("Chrome", "curl"), not the whole user agent.
    pub agent: String,
}

/// How an Enterprise account brands its reports: its name, accent colour
/// and logo in place of Coliseum's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportBrand {
    pub name: String,
    /// `#rrggbb`.
    pub accent: String,
    /// A PNG, checked before it is stored.
    pub logo_png: Option<Vec<u8>>,
    pub updated_at: OffsetDateTime,
}

/// A report to make and send on a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSchedule {
    pub user_id: i64,
    pub template: String,
    pub format: String,
    /// Compact JSON.
    pub params: String,
    /// `week` or `month`.
    pub every: String,
    /// Minutes after midnight UTC.
    pub at_minute: i32,
    /// 0 (Monday) to 6, for weekly schedules.
    pub weekday: Option<i32>,
    /// 1 to 28, for monthly schedules.
    pub day: Option<i32>,
    pub recipients: Vec<String>,
    /// `attachment` or `link`.
    pub deliver: String,
    pub only_if_changed: bool,
    pub created_at: OffsetDateTime,
    /// The first delivery.
    pub next_at: OffsetDateTime,
}

/// A schedule as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRecord {
    pub id: i64,
    pub schedule: NewSchedule,
    /// Failed attempts at the delivery now due.
    pub attempts: i32,
    /// The report made for the delivery now due, kept across retries.
    pub pending_report_id: Option<String>,
    /// A digest of the figures last delivered (for `only_if_changed`).
    pub last_digest: Option<String>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub schedule_id: i64,
    pub at: OffsetDateTime,
    /// `sent`, `skipped`, `retrying` or `failed`.
    pub status: String,
    /// The attempt's number for this occurrence (1 for the first).
    pub attempt: i32,
    pub report_id: Option<String>,
    /// Why it failed or was skipped.
    pub detail: Option<String>,
}

/// How the schedule goes on after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleAfter {
    pub next_at: OffsetDateTime,
    pub attempts: i32,
    pub pending_report_id: Option<String>,
    /// `None` keeps the digest recorded before.
    pub last_digest: Option<String>,
}

/// A delivery as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub delivery: NewDelivery,
}

//! The storage interface of Coliseum: small traits named for what the engine
//! and the server need, the records that cross them, and the error type.
//! Each backend (`coliseum-store-sqlite`, `coliseum-store-postgres`) implements
//! them with its own SQL and migrations; [`conformance`] is the scenario suite
//! both must pass.
//!
//! Invariant: no driver type crosses these traits.

mod alerts;
#[cfg(feature = "conformance")]
pub mod conformance;
mod records;
mod reports;
mod rollups;
pub mod rows;

use async_trait::async_trait;
use time::OffsetDateTime;

pub use alerts::{NewNotification, NotificationRecord, StoredAlertRule};
pub use records::{
    ApiKey, Appended, AuditOf, AuditQuery, AuditRecord, LogStats, NewApiKey, NewEntry, NewSession, NewUser,
    SessionRecord, StoredEntry, StripeChange, StripeOutcome, User, UserCredentials, latest_plan, truncate_to_micros,
};
pub use reports::{
    DeliveryRecord, NewDelivery, NewReport, NewSchedule, NewShare, ReportBrand, ReportQuota, ReportRecord,
    ScheduleAfter, ScheduleRecord, ShareEnd, ShareRecord, ShareView,
};
pub use rollups::{
    AppliedBatch, CellFilter, CellKey, DISPLAY_NAME_CONFLICT, DeadLetter, DeadLetterState, DerivedPart, DisplayName,
    DnaMutation, FIRST_BUCKET, FanDay, FanDayKey, Grain, MAX_SEEKED_BUCKETS, MOVE_CURSOR, NameKind, PipelineState,
    ProcessedBatch, SumsBy, cursor_moved,
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
    /// A write would pass a limit the store enforces (an account's keys).
    #[error("{0}")]
    LimitReached(String),
    /// Anything else: a bug or a corrupt store.
    #[error("store failure: {0}")]
    Internal(String),
}

impl StoreError {
    /// An account already holds [`MAX_API_KEYS`](coliseum_domain::plans::MAX_API_KEYS) keys in force.
    pub fn too_many_api_keys() -> Self {
        Self::LimitReached(format!(
            "an account has at most {} API keys in force; revoke one first",
            coliseum_domain::plans::MAX_API_KEYS
        ))
    }
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

    /// The head of the log and how much of it is unrecognized, for the
    /// health figures. A backend may count only the entries appended since
    /// its last reading and the whole log now and then (PostgreSQL, every
    /// minute), so a change made outside the engine may show late.
    async fn log_stats(&self) -> Result<LogStats, StoreError>;

    /// The head of the log alone: an index end, for callers that ask often.
    async fn head_seq(&self) -> Result<i64, StoreError>;

    /// The types of unrecognized entries with how many of each, the most
    /// frequent first (ties by name), at most `limit` of them.
    async fn unrecognized_types(&self, limit: u32) -> Result<Vec<(String, i64)>, StoreError>;

    /// How many entries the log holds: a full count, for tests and tools.
    async fn count_entries(&self) -> Result<i64, StoreError>;
}

/// Being the processing node: held until dropped, or lost (the database
/// connection that holds it broke, so another node may now lead).
#[async_trait]
pub trait Lead: Send + Sync + std::fmt::Debug {
    /// Resolves when the lead is lost; never, while it holds.
    async fn lost(&mut self);
}

/// The lead of a store no other node can open.
#[derive(Debug)]
struct Owned;

#[async_trait]
impl Lead for Owned {
    async fn lost(&mut self) {
        std::future::pending::<()>().await;
    }
}

/// The derived tables the processor maintains and the reads sum: rollup
/// cells, fan-days, and the processor's cursor and pause flag.
#[async_trait]
pub trait Rollups: Send + Sync {
    async fn pipeline_state(&self) -> Result<PipelineState, StoreError>;

    /// Pausing stops processing, never ingestion; it survives a restart.
    /// `audit` is written in the same transaction.
    async fn set_paused(&self, paused: bool, audit: &AuditRecord) -> Result<(), StoreError>;

    /// Adds the batch's deltas, writes its dead letters and moves the cursor
    /// from `from_seq` to `to_seq`, all in one transaction, and returns the
    /// batch's number (one more than the last one's). When the cursor is
    /// not at `from_seq` (another processor moved it) nothing changes and the
    /// answer is `Conflict`: the same entries are never counted twice. A
    /// store that keeps a journal ([`Rollups::keeps_journal`]) records the
    /// batch in it, complete up to `as_of`, in the same transaction.
    async fn apply_batch(&self, batch: &ProcessedBatch, as_of: OffsetDateTime) -> Result<i64, StoreError>;

    /// Whether applied batches are journaled for other nodes to follow:
    /// PostgreSQL, which nodes share; not SQLite, which one node owns.
    fn keeps_journal(&self) -> bool {
        false
    }

    /// Up to `limit` journaled batches numbered after `after`, in order.
    /// A batch pruned from the journal is missing from the answer: the
    /// caller sees the gap in the numbers.
    async fn journal_after(&self, _after: i64, _limit: u32) -> Result<Vec<AppliedBatch>, StoreError> {
        Ok(Vec::new())
    }

    /// Forgets the journaled batches applied before `before`; returns how many.
    async fn prune_journal(&self, _before: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Becomes the one node that processes, among every node of this
    /// store, for as long as the returned [`Lead`] holds; `None` while
    /// another node holds it. A store one node owns (SQLite) always grants it.
    async fn try_lead(&self) -> Result<Option<Box<dyn Lead>>, StoreError> {
        Ok(Some(Box::new(Owned)))
    }

    /// Every cell of `grain` with `from_bucket <= bucket < to_bucket`.
    async fn kpi_cells(
        &self,
        grain: Grain,
        from_bucket: i64,
        to_bucket: i64,
    ) -> Result<Vec<(CellKey, coliseum_domain::kpi::Kpis)>, StoreError>;

    /// The first bucket of `grain` that holds any cell, `None` while none
    /// does: nothing before it needs reading.
    async fn first_bucket(&self, grain: Grain) -> Result<Option<i64>, StoreError>;

    /// Sums per artist of the cells of `grain` with `from <= bucket < to`
    /// that match `filter` (cells without an artist left out).
    async fn sum_cells_by_artist(
        &self,
        grain: Grain,
        from: i64,
        to: i64,
        filter: &CellFilter,
    ) -> Result<Vec<(String, coliseum_domain::kpi::Kpis)>, StoreError>;

    /// Sums per bucket of the cells of `grain` with `from <= bucket < to`
    /// that match `filter`, in bucket order.
    async fn sum_cells_by_bucket(
        &self,
        grain: Grain,
        from: i64,
        to: i64,
        filter: &CellFilter,
    ) -> Result<Vec<(i64, coliseum_domain::kpi::Kpis)>, StoreError>;

    /// Every fan-day with `from_day <= day < to_day`.
    async fn fan_days(&self, from_day: i64, to_day: i64) -> Result<Vec<(FanDayKey, FanDay)>, StoreError>;
}

/// Entries the processor could not count: kept with why, retried with
/// backoff, replayed by an admin.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Dead letters with `seq > after`, in `seq` order; replayed ones only when asked.
    async fn dead_letters(&self, after: i64, limit: u32, include_replayed: bool)
    -> Result<Vec<DeadLetter>, StoreError>;

    /// The newest `limit` dead letters not yet replayed, newest first.
    async fn newest_dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError>;

    /// How many dead letters are not yet replayed.
    async fn open_dead_letters(&self) -> Result<i64, StoreError>;

    /// Dead letters due for another attempt at `now`, with their entries.
    async fn due_dead_letters(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<(DeadLetter, StoredEntry)>, StoreError>;

    /// Makes dead letters (one by `seq`, or all) due at `now` with a fresh
    /// count of attempts. Returns how many; replayed ones are left alone.
    /// The audit record of that count is written in the same transaction.
    async fn replay_dead_letters(
        &self,
        seq: Option<i64>,
        now: time::OffsetDateTime,
        audit: AuditOf<'_, u64>,
    ) -> Result<u64, StoreError>;
}

/// Recomputing every derived table from the log (`coliseum rebuild`).
#[async_trait]
pub trait Rebuilds: Send + Sync {
    /// Empties every derived table and puts the cursor back to 0 (the pause
    /// flag is kept): the start of a rebuild.
    async fn reset_derived(&self) -> Result<(), StoreError>;

    /// The end of a rebuild: writes the rows computed from the whole log up
    /// to `to_seq` into the tables `reset_derived` emptied, and moves the
    /// cursor from 0 to `to_seq` with the absolute revenue the rebuild
    /// counted (`revenue_gross`), in one transaction committed only when
    /// [`DerivedPart::End`] arrives (a sender dropped before it changes
    /// nothing). Every key arrives at most once, so nothing is merged: rows
    /// are appended, fastest in key order. `Conflict` when the cursor is not at 0.
    async fn load_derived(
        &self,
        to_seq: i64,
        revenue_gross: i64,
        parts: tokio::sync::mpsc::Receiver<DerivedPart>,
    ) -> Result<(), StoreError>;
}

/// The DNA mutations recorded as scores move (SCORING.md).
#[async_trait]
pub trait DnaHistory: Send + Sync {
    /// Appends DNA mutations.
    async fn record_mutations(&self, mutations: &[DnaMutation]) -> Result<(), StoreError>;

    /// The DNA mutations of one `domain` and `range` recorded from `since`
    /// to `until`, both included, oldest first: what the movers are made
    /// of. Mutations of every domain and range are recorded together, and
    /// reading them all for one board was most of what a movers read cost.
    async fn mutations_of(
        &self,
        domain: &str,
        range: &str,
        since: time::OffsetDateTime,
        until: time::OffsetDateTime,
    ) -> Result<Vec<DnaMutation>, StoreError>;

    /// Deletes at most `limit` of the oldest mutations of one `domain` and
    /// `range` recorded before `before`, and says how many it deleted.
    /// Movers read the last week only, so older mutations are never read
    /// again; deleting a board at a time goes through the index movers read
    /// by, and a bounded delete leaves the writer free between chunks.
    async fn prune_mutations(
        &self,
        domain: &str,
        range: &str,
        before: time::OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError>;
}

/// Display names of artists, live events, cities and genres (PASSPORT.md),
/// written with each processed batch.
#[async_trait]
pub trait DisplayNamesStore: Send + Sync {
    /// Every display name kept (one per kind and id).
    async fn display_names(&self) -> Result<Vec<DisplayName>, StoreError>;
}

/// Users and their browser sessions.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Creates the user, or updates the password, role, plan and links of the
    /// user with that email (emails compare case-insensitively).
    async fn upsert_user(&self, user: &NewUser) -> Result<User, StoreError>;

    async fn user_credentials(&self, email: &str) -> Result<Option<UserCredentials>, StoreError>;

    /// Starts a session; `audit` (the login) is written in the same transaction.
    async fn create_session(&self, session: &NewSession, audit: &AuditRecord) -> Result<(), StoreError>;

    /// The user of an unexpired session, by the hash of its token.
    async fn session_user(&self, token_hash: &[u8], now: time::OffsetDateTime) -> Result<Option<User>, StoreError>;

    /// Ends a session at once; unknown tokens are ignored. The audit record
    /// of the session's user (the logout) is written in the same
    /// transaction, only when a session ended. Says whether a stored
    /// session was ended, expired or not.
    async fn revoke_session(&self, token_hash: &[u8], audit: AuditOf<'_, i64>) -> Result<bool, StoreError>;

    /// The user's sessions in force at `now`, newest first.
    async fn sessions_of(&self, user_id: i64, now: time::OffsetDateTime) -> Result<Vec<SessionRecord>, StoreError>;

    /// Ends every session of the user but the one whose token hashes to
    /// `keep`; returns the ended sessions' hashes (for caches to forget).
    /// `audit` is written in the same transaction when any ended.
    async fn revoke_other_sessions(
        &self,
        user_id: i64,
        keep: &[u8],
        audit: &AuditRecord,
    ) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Creates a user; `None` when the email is taken (signup never
    /// changes an existing account, unlike [`Accounts::upsert_user`]). The
    /// audit record of the new user's id is written in the same transaction.
    async fn create_user(&self, user: &NewUser, audit: AuditOf<'_, i64>) -> Result<Option<User>, StoreError>;

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError>;

    /// The user an external identity provider (Supabase) knows as
    /// `external_id`: found by that id, else a new Free fan with that email
    /// and no password. An email that already belongs to an account is a
    /// conflict: accounts are never linked by email alone.
    async fn external_user(&self, external_id: &str, email: &str) -> Result<User, StoreError>;

    /// Creates a key, within the plan's count; the audit record of the new
    /// key is written in the same transaction.
    async fn create_api_key(&self, key: &NewApiKey, audit: AuditOf<'_, ApiKey>) -> Result<ApiKey, StoreError>;

    /// A user's keys, revoked ones included, oldest first.
    async fn api_keys(&self, user_id: i64) -> Result<Vec<ApiKey>, StoreError>;

    /// Revokes one of the user's keys; `None` when the user has no key with
    /// that id. Revoking twice keeps the first instant. The audit record of
    /// the revoked key is written in the same transaction, only when the key
    /// was still in force.
    async fn revoke_api_key(
        &self,
        user_id: i64,
        key_id: i64,
        now: time::OffsetDateTime,
        audit: AuditOf<'_, ApiKey>,
    ) -> Result<Option<ApiKey>, StoreError>;

    /// The owner of an unrevoked key, and the key's id, by the key's hash.
    async fn api_key_user(&self, key_hash: &[u8]) -> Result<Option<(User, i64)>, StoreError>;
}

/// Plans bought through Stripe.
#[async_trait]
pub trait Billing: Send + Sync {
    /// Records a Stripe event once (by id), links its customer when it
    /// names a user, and, once the customer is linked, applies every kept
    /// event of that customer in `order`: an event older than the last one
    /// applied never changes the plan. All in one transaction, with the
    /// audit record of the outcome.
    async fn record_stripe_event(
        &self,
        change: &StripeChange,
        audit: AuditOf<'_, StripeOutcome>,
    ) -> Result<StripeOutcome, StoreError>;

    /// The Stripe customer linked to a user, if any.
    async fn stripe_customer(&self, user_id: i64) -> Result<Option<String>, StoreError>;
}

/// Reports made and the links that share them.
#[async_trait]
pub trait Reports: Send + Sync {
    /// Records a report about to be made, counted against `quota` in the
    /// same transaction as the count (two requests cannot both take the
    /// last one), with its `audit` record: `None`, and nothing written,
    /// when the quota is used up. Reports being made count.
    async fn reserve_report(
        &self,
        report: &NewReport,
        quota: Option<ReportQuota>,
        audit: &AuditRecord,
    ) -> Result<Option<ReportRecord>, StoreError>;

    /// The report is made and stored: its size and watermark.
    async fn complete_report(&self, id: &str, size_bytes: i64, watermark: i64) -> Result<(), StoreError>;

    /// Forgets a report that could not be made, and with it its use of the quota.
    async fn discard_report(&self, id: &str) -> Result<(), StoreError>;

    /// How many reports the user made (or is making) at or after `since`.
    async fn reports_made_since(&self, user_id: i64, since: OffsetDateTime) -> Result<i64, StoreError>;

    async fn report(&self, id: &str) -> Result<Option<ReportRecord>, StoreError>;

    /// The user's reports, newest first, after the report `after` (a cursor).
    async fn reports_of(&self, user_id: i64, after: Option<&str>, limit: u32) -> Result<Vec<ReportRecord>, StoreError>;

    /// A new link, with its `audit` record.
    async fn create_share(&self, share: &NewShare, audit: &AuditRecord) -> Result<ShareRecord, StoreError>;

    /// A link by its token, whatever its state.
    async fn share(&self, token: &str) -> Result<Option<ShareRecord>, StoreError>;

    /// The user's links, newest first, ended ones included.
    async fn shares_of(&self, user_id: i64) -> Result<Vec<ShareRecord>, StoreError>;

    /// Ends one of the user's links at `now` as `end`; with `Rotated`,
    /// `replacement` (a new token) takes over its report, password and
    /// expiry, in the same transaction. Returns the replacement when
    /// rotated, the ended link when revoked; `None` when the user has no
    /// link in force with that token. The `audit` record is written with it.
    async fn end_share(
        &self,
        user_id: i64,
        token: &str,
        end: ShareEnd,
        replacement: Option<&str>,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<Option<ShareRecord>, StoreError>;

    /// Counts one opening of a link.
    async fn record_share_view(&self, share_id: i64, view: &ShareView) -> Result<(), StoreError>;

    /// A link's openings, newest first.
    async fn share_views(&self, share_id: i64, limit: u32) -> Result<Vec<ShareView>, StoreError>;

    /// The account's own branding of its reports, if it set one.
    async fn report_brand(&self, user_id: i64) -> Result<Option<ReportBrand>, StoreError>;

    /// Sets the account's branding, or with `None` goes back to
    /// Coliseum's, with its `audit` record.
    async fn set_report_brand(
        &self,
        user_id: i64,
        brand: Option<&ReportBrand>,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
}

/// Reports made and sent on a schedule, and each delivery.
#[async_trait]
pub trait ReportSchedules: Send + Sync {
    /// A new schedule, within `max` per account (`LimitReached` beyond),
    /// with its `audit` record.
    async fn create_schedule(
        &self,
        schedule: &NewSchedule,
        max: u32,
        audit: &AuditRecord,
    ) -> Result<ScheduleRecord, StoreError>;

    /// The user's schedules, oldest first.
    async fn schedules_of(&self, user_id: i64) -> Result<Vec<ScheduleRecord>, StoreError>;

    /// Deletes one of the user's schedules (its deliveries with it); `false`
    /// when the user has no such schedule. The `audit` record when deleted.
    async fn delete_schedule(&self, user_id: i64, id: i64, audit: &AuditRecord) -> Result<bool, StoreError>;

    /// Takes one schedule due at `now` for this node: its next attempt is
    /// moved to `lease_until` in the same statement, so that no other node
    /// takes it meanwhile (a node that dies mid-delivery leaves it to be
    /// taken again then).
    async fn claim_due_schedule(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<ScheduleRecord>, StoreError>;

    /// Records an attempt and moves the schedule on, in one transaction.
    async fn record_delivery(&self, delivery: &NewDelivery, after: &ScheduleAfter) -> Result<(), StoreError>;

    /// A schedule's deliveries, newest first.
    async fn deliveries(&self, schedule_id: i64, limit: u32) -> Result<Vec<DeliveryRecord>, StoreError>;
}

/// The append-only audit log.
#[async_trait]
pub trait Audit: Send + Sync {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError>;

    /// Records matching every given filter, newest first.
    async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;
}

/// Alert rules and notifications (the DIA panel's alerts).
#[async_trait]
pub trait Alerts: Send + Sync {
    /// Every rule with a stored configuration or state, by name.
    async fn alert_rules(&self) -> Result<Vec<StoredAlertRule>, StoreError>;

    /// Replaces a rule's configuration; `audit` is written in the same transaction.
    async fn save_alert_config(&self, rule: &str, config: &str, audit: &AuditRecord) -> Result<(), StoreError>;

    /// Holds the right to evaluate the rules until `until`: `true` when
    /// `owner` holds it. It is taken when it lapsed (before `now`), and
    /// from an owner that does not lead by one that does.
    async fn claim_alert_lease(
        &self,
        owner: &str,
        leads: bool,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Replaces a rule's state if its version is still `version`, and
    /// records `notifications` in the same transaction: `None` (and nothing
    /// written) when the rule changed meanwhile; else each notification's
    /// id, or `None` for one whose key was recorded already.
    async fn commit_alert_evaluation(
        &self,
        rule: &str,
        version: i64,
        state: &str,
        notifications: &[NewNotification],
    ) -> Result<Option<Vec<Option<i64>>>, StoreError>;

    /// Sets what became of a notification's delivery.
    async fn finish_notification(
        &self,
        id: i64,
        status: &str,
        attempts: i32,
        error: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Takes up to `limit` notifications still `sending` whose delivery
    /// began before `stale` (its node stopped): each is marked begun `now`
    /// and returned to be sent again.
    async fn retake_stale_notifications(
        &self,
        stale: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError>;

    /// Up to `limit` notifications with `id < before` (all with `None`), newest first.
    async fn notifications(&self, before: Option<i64>, limit: u32) -> Result<Vec<NotificationRecord>, StoreError>;
}

/// Everything a Coliseum node needs from its database. Each part is its own
/// trait, so that a consumer can take only the part it uses (an
/// `Arc<dyn Store>` converts to any of them) and a new capability adds a
/// trait rather than methods to one giant.
#[async_trait]
pub trait Store:
    PassportLog
    + Rollups
    + DeadLetters
    + Rebuilds
    + DnaHistory
    + DisplayNamesStore
    + Accounts
    + Billing
    + Reports
    + ReportSchedules
    + Audit
    + Alerts
    + std::fmt::Debug
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;
}

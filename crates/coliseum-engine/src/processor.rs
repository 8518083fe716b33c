//! The processor: tails the log after its cursor, turns each batch of
//! entries into additive deltas, and writes the deltas and the cursor's move
//! in one transaction, so a crash at any point neither loses nor counts twice.
//! Entries that cannot be counted go to the dead letters in that same
//! transaction and are retried with backoff; they never block the entries
//! behind them. After each commit the applied batch is handed to the
//! [`AppliedSink`]s (the hot state) and the new watermark is published.
//!
//! Driven step by step ([`Processor::step`], [`Processor::run_until_idle`])
//! by tests and `coliseum rebuild`; [`Processor::run`] is the service loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use coliseum_domain::clock::Clock;
use coliseum_domain::kpi::RevenueCeiling;
use coliseum_domain::money::FxTable;
use coliseum_store::{
    AuditOf, AuditRecord, DeadLetter, DeadLetterState, ProcessedBatch, Store, StoreError, StoredEntry,
};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::deltas::Deltas;
use crate::stats::PipelineStats;

/// How often a following node reads the journal of applied batches.
const FOLLOW_EVERY: Duration = Duration::from_millis(100);
/// How often a node that may process tries for the lead.
const LEAD_TRY_EVERY: Duration = Duration::from_secs(1);
/// Journaled batches read at once.
const JOURNAL_READ: u32 = 64;
/// How long applied batches stay in the journal: how far behind a following node may fall.
const JOURNAL_KEPT: time::Duration = time::Duration::hours(1);
const JOURNAL_PRUNE_EVERY: Duration = Duration::from_secs(60);

/// How the processor batches and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessorConfig {
    /// The most log entries read and applied in one transaction.
    pub batch_entries: u32,
    /// Attempts (the first included) before an entry is left for an operator.
    pub max_attempts: i32,
    /// The wait before the second attempt; it doubles with each attempt.
    pub first_retry: Duration,
    /// The longest the idle loop sleeps without a signal: how soon it notices
    /// due retries, or a pause or resume made by another node.
    pub idle_wait: Duration,
    /// The longest a read may still serve figures computed before a batch
    /// was applied (a board younger than this is served as it is). An
    /// entry is visible in every served read by then, and the pipeline's
    /// latency counts to that moment, not to the commit.
    pub served_within: Duration,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            batch_entries: 25_000,
            max_attempts: 5,
            first_retry: Duration::from_secs(1),
            idle_wait: Duration::from_secs(1),
            served_within: Duration::ZERO,
        }
    }
}

/// How far the served figures reach: every entry up to `seq` is in them,
/// and they are complete up to `as_of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    pub seq: i64,
    pub as_of: OffsetDateTime,
}

/// What sees every batch right after it is committed: the hot state.
pub trait AppliedSink: Send + Sync {
    /// Shared, not copied: a sink may keep the batch for later.
    fn applied(&self, batch: &Arc<ProcessedBatch>, watermark: Watermark);

    /// The log held nothing new: the figures are complete up to a later `as_of`.
    fn advanced(&self, _watermark: Watermark) {}
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Consumed this many log entries (counted, skipped or dead-lettered).
    Processed(usize),
    /// Nothing after the cursor.
    Idle,
    /// An operator paused the pipeline.
    Paused,
}

/// The processor. Every node has one; one node at a time processes (it
/// holds the store's lead), and the others follow the batches it applies.
pub struct Processor {
    store: Arc<dyn Store>,
    fx: Arc<FxTable>,
    clock: Arc<dyn Clock>,
    stats: Arc<PipelineStats>,
    config: ProcessorConfig,
    sinks: Vec<Arc<dyn AppliedSink>>,
    watermark: watch::Sender<Watermark>,
    /// The number of the last batch the sinks reflect.
    applied: AtomicI64,
    /// Whether this node processes now.
    leading: AtomicBool,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("config", &self.config)
            .field("watermark", &*self.watermark.borrow())
            .finish_non_exhaustive()
    }
}

impl Processor {
    /// A processor starting from the store's cursor. The sinks must already
    /// reflect everything up to that cursor.
    pub async fn new(
        store: Arc<dyn Store>,
        fx: Arc<FxTable>,
        clock: Arc<dyn Clock>,
        stats: Arc<PipelineStats>,
        config: ProcessorConfig,
        sinks: Vec<Arc<dyn AppliedSink>>,
    ) -> Result<Self, StoreError> {
        let state = store.pipeline_state().await?;
        let (watermark, _) = watch::channel(Watermark {
            seq: state.processed_seq,
            as_of: clock.now(),
        });
        Ok(Self {
            store,
            fx,
            clock,
            stats,
            config,
            sinks,
            watermark,
            applied: AtomicI64::new(state.batches),
            leading: AtomicBool::new(false),
        })
    }

    /// The sinks were loaded from the store as of batch `number`: the
    /// batches after it are the ones to apply, or to follow.
    pub fn assume_applied(&self, number: i64) {
        self.applied.store(number, Ordering::Release);
    }

    /// Whether this node processes now (it holds the lead).
    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }

    /// The watermark, updated after every applied batch.
    pub fn watermark(&self) -> watch::Receiver<Watermark> {
        self.watermark.subscribe()
    }

    /// Stops processing (ingestion goes on); survives a restart. `audit`
    /// is written with the flag, in one transaction.
    pub async fn pause(&self, audit: &AuditRecord) -> Result<(), StoreError> {
        self.store.set_paused(true, audit).await
    }

    /// Resumes processing at once; `audit` is written with the flag.
    pub async fn resume(&self, audit: &AuditRecord) -> Result<(), StoreError> {
        self.store.set_paused(false, audit).await?;
        self.stats.log_appended.notify_one();
        Ok(())
    }

    /// Makes dead letters (one, or all) due now; the loop picks them up at
    /// once. The audit record of the count is written in the same transaction.
    pub async fn replay_dead_letters(&self, seq: Option<i64>, audit: AuditOf<'_, u64>) -> Result<u64, StoreError> {
        let replayed = self.store.replay_dead_letters(seq, self.clock.now(), audit).await?;
        self.stats.log_appended.notify_one();
        Ok(replayed)
    }

    /// Reads the next batch after the cursor and applies it.
    pub async fn step(&self) -> Result<Step, StoreError> {
        self.follow().await?;
        match self.prepare(None).await? {
            Next::Batch(prepared) => {
                let count = prepared.received.len();
                self.commit(prepared).await?;
                Ok(Step::Processed(count))
            }
            Next::Idle(read_at) => {
                self.advance(read_at);
                Ok(Step::Idle)
            }
            Next::Paused => Ok(Step::Paused),
            Next::Behind => Err(StoreError::Conflict(
                "another node applied a batch meanwhile".to_owned(),
            )),
        }
    }

    /// Steps until nothing is left after the cursor (or the pipeline is
    /// paused), reading and computing each batch while the one before it is
    /// being written; returns how many entries it consumed.
    pub async fn run_until_idle(&self) -> Result<u64, StoreError> {
        self.drain(|| false).await
    }

    /// [`Processor::run_until_idle`], but returning between two batches as
    /// soon as `stop` says so: a shutdown never waits for a whole backlog.
    async fn drain(&self, stop: impl Fn() -> bool) -> Result<u64, StoreError> {
        let mut consumed = 0;
        let mut next = self.prepare(None).await?;
        loop {
            let prepared = match next {
                Next::Batch(prepared) => prepared,
                Next::Idle(read_at) => {
                    self.advance(read_at);
                    return Ok(consumed);
                }
                Next::Paused => return Ok(consumed),
                Next::Behind => {
                    self.follow().await?;
                    next = self.prepare(None).await?;
                    continue;
                }
            };
            consumed += prepared.received.len() as u64;
            let after = (prepared.batch.to_seq, prepared.ceiling);
            let (committed, upcoming) = tokio::join!(self.commit(prepared), self.prepare(Some(after)));
            committed?;
            if stop() {
                // The batch read ahead is dropped unwritten: it is read again at the next start.
                return Ok(consumed);
            }
            next = upcoming?;
        }
    }

    /// Reads the batch after `after` (the batch before, not yet written:
    /// its cursor and revenue ceiling; the stored ones when `None`) and
    /// computes its deltas on a blocking thread, so that it can overlap the
    /// write of the batch before it.
    async fn prepare(&self, after: Option<(i64, RevenueCeiling)>) -> Result<Next, StoreError> {
        let state = self.store.pipeline_state().await?;
        if after.is_none() && state.batches != self.applied.load(Ordering::Acquire) {
            return Ok(Next::Behind);
        }
        if state.paused {
            return Ok(Next::Paused);
        }
        let (from_seq, before) = after.unwrap_or((state.processed_seq, RevenueCeiling::after(state.revenue_gross)));
        let read_at = self.clock.now();
        let entries = self.store.read_after(from_seq, self.config.batch_entries).await?;
        let Some(last) = entries.last() else {
            return Ok(Next::Idle(read_at));
        };
        // Everything received before this read began is in the log up to its end.
        let complete = entries.len() < self.config.batch_entries as usize;
        let as_of = if complete { read_at } else { last.entry.received_at };
        let to_seq = last.seq;
        let (fx, config, now) = (self.fx.clone(), self.config, self.clock.now());
        tokio::task::spawn_blocking(move || {
            let mut deltas = Deltas::default();
            let mut dead_letters = Vec::new();
            let mut ceiling = before;
            for stored in &entries {
                if let Err(failure) = deltas.add(stored.seq, &stored.entry, &fx, &mut ceiling) {
                    tracing::debug!(seq = stored.seq, event_id = %stored.entry.event_id, error = %failure, "entry not counted");
                    dead_letters.push(failed(&config, stored, failure.to_string(), 1, now, now));
                }
            }
            if let Some(first) = dead_letters.first() {
                // One line a batch, not one an entry: a missing rate can fail thousands.
                tracing::warn!(count = dead_letters.len(), first_reason = %first.reason, "entries not counted; they wait in the dead letters");
            }
            Next::Batch(Prepared {
                batch: Arc::new(ProcessedBatch {
                    from_seq,
                    to_seq,
                    cells: deltas.cells.into_iter().collect(),
                    fan_days: deltas.fan_days.into_iter().collect(),
                    dead_letters,
                    revenue_gross: ceiling.gross() - before.gross(),
                    names: deltas.names.into_vec(),
                }),
                ceiling,
                as_of,
                received: entries.iter().map(|e| e.entry.received_at).collect(),
            })
        })
        .await
        .map_err(|error| StoreError::Internal(format!("computing a batch failed: {error}")))
    }

    async fn commit(&self, prepared: Prepared) -> Result<(), StoreError> {
        self.apply(&prepared.batch, prepared.as_of, &prepared.received).await
    }

    /// Nothing new: the figures are complete up to `read_at`.
    fn advance(&self, read_at: OffsetDateTime) {
        self.watermark.send_modify(|w| w.as_of = w.as_of.max(read_at));
        let watermark = *self.watermark.borrow();
        for sink in &self.sinks {
            sink.advanced(watermark);
        }
    }

    /// Tries the dead letters that are due again; returns how many it tried.
    pub async fn retry_due(&self) -> Result<usize, StoreError> {
        let state = self.store.pipeline_state().await?;
        if state.paused || state.batches != self.applied.load(Ordering::Acquire) {
            return Ok(0);
        }
        let now = self.clock.now();
        let due = self.store.due_dead_letters(now, self.config.batch_entries).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut deltas = Deltas::default();
        let mut dead_letters = Vec::with_capacity(due.len());
        let mut ceiling = RevenueCeiling::after(state.revenue_gross);
        for (letter, stored) in &due {
            let next = match deltas.add(stored.seq, &stored.entry, &self.fx, &mut ceiling) {
                Ok(()) => DeadLetter {
                    state: DeadLetterState::Replayed,
                    next_attempt_at: None,
                    ..letter.clone()
                },
                Err(failure) => failed(
                    &self.config,
                    stored,
                    failure.to_string(),
                    letter.attempts + 1,
                    letter.first_failed_at,
                    now,
                ),
            };
            dead_letters.push(next);
        }
        let batch = ProcessedBatch {
            from_seq: state.processed_seq,
            to_seq: state.processed_seq,
            cells: deltas.cells.into_iter().collect(),
            fan_days: deltas.fan_days.into_iter().collect(),
            dead_letters,
            revenue_gross: ceiling.gross() - state.revenue_gross,
            names: deltas.names.into_vec(),
        };
        let as_of = self.watermark.borrow().as_of;
        self.apply(&Arc::new(batch), as_of, &[]).await?;
        Ok(due.len())
    }

    /// The service loop, until `shutdown` turns true. Store failures are
    /// logged and retried; nothing is skipped.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut failures = 0_u32;
        while !*shutdown.borrow() {
            let outcome = match self.drain(|| *shutdown.borrow()).await {
                Ok(_) => self.retry_due().await.map(|tried| tried > 0),
                Err(error) => Err(error),
            };
            let wait = match outcome {
                Ok(true) => {
                    failures = 0;
                    continue;
                }
                Ok(false) => {
                    failures = 0;
                    self.config.idle_wait
                }
                // Another processor moved the cursor: read it again at once.
                Err(StoreError::Conflict(_)) => continue,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    metrics::counter!("coliseum_processor_failures_total").increment(1);
                    tracing::error!(error = %error, "the processor could not apply a batch; retrying");
                    Duration::from_millis(100 * 2_u64.pow(failures.min(6)))
                }
            };
            tokio::select! {
                () = self.stats.log_appended.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!("processor stopped");
    }

    /// Hands an applied batch to the sinks, with the instant the node that
    /// applied it gave it (so that every node's state as of an instant,
    /// what the plans behind live are served, is the same), and publishes
    /// the watermark, never earlier than it was.
    fn reflect(&self, number: i64, batch: &Arc<ProcessedBatch>, as_of: OffsetDateTime) {
        let applied = Watermark {
            seq: batch.to_seq,
            as_of,
        };
        for sink in &self.sinks {
            sink.applied(batch, applied);
        }
        self.applied.store(number, Ordering::Release);
        self.watermark.send_modify(|watermark| {
            *watermark = Watermark {
                seq: batch.to_seq,
                as_of: as_of.max(watermark.as_of),
            };
        });
    }

    /// Applies to the sinks every batch another node applied that they do
    /// not have yet (from the store's journal); returns how many.
    pub async fn follow(&self) -> Result<u64, StoreError> {
        self.follow_through(i64::MAX).await
    }

    async fn follow_through(&self, last: i64) -> Result<u64, StoreError> {
        let mut followed = 0;
        loop {
            let after = self.applied.load(Ordering::Acquire);
            if after >= last {
                return Ok(followed);
            }
            let batches = self.store.journal_after(after, JOURNAL_READ).await?;
            if batches.is_empty() {
                return Ok(followed);
            }
            for applied in batches.into_iter().take_while(|b| b.number <= last) {
                let expected = self.applied.load(Ordering::Acquire) + 1;
                if applied.number != expected {
                    return Err(StoreError::Internal(format!(
                        "batch {expected} is no longer in the journal: this node fell too far behind \
                         the processing node; restart it to load the figures afresh"
                    )));
                }
                self.reflect(applied.number, &Arc::new(applied.batch), applied.as_of);
                followed += 1;
                metrics::counter!("coliseum_followed_batches_total").increment(1);
            }
        }
    }

    /// While following: the figures are complete up to now when every
    /// batch applied is here and the processing node has consumed the log.
    async fn follow_idle(&self) -> Result<(), StoreError> {
        let read_at = self.clock.now();
        let head = self.store.head_seq().await?;
        let state = self.store.pipeline_state().await?;
        if state.batches == self.applied.load(Ordering::Acquire) && state.processed_seq >= head {
            self.advance(read_at);
        }
        Ok(())
    }

    /// The node's service loop, until `shutdown` turns true: processes
    /// while it holds the store's lead (if `may_lead`), and otherwise
    /// follows the node that does, trying for the lead every second. A node
    /// that takes over first applies everything the last one applied.
    pub async fn run_in_cluster(&self, mut shutdown: watch::Receiver<bool>, may_lead: bool) {
        // A store one node owns (SQLite) has nothing to follow.
        let follow = self.store.keeps_journal();
        let mut follows = tokio::time::interval(FOLLOW_EVERY);
        let mut tries = tokio::time::interval(LEAD_TRY_EVERY);
        while !*shutdown.borrow() {
            tokio::select! {
                _ = follows.tick(), if follow => {
                    let outcome = match self.follow().await {
                        Ok(0) => self.follow_idle().await,
                        Ok(_) => Ok(()),
                        Err(error) => Err(error),
                    };
                    if let Err(error) = outcome {
                        tracing::error!(error = %error, "following the processing node failed; retrying");
                    }
                }
                _ = tries.tick(), if may_lead => match self.store.try_lead().await {
                    Ok(Some(lead)) => self.lead(lead, shutdown.clone()).await,
                    Ok(None) => {}
                    Err(error) => tracing::warn!(error = %error, "the processing lead could not be tried"),
                },
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!("this node stopped processing and following");
    }

    /// Processes while `lead` holds and the node runs.
    async fn lead(&self, mut lead: Box<dyn coliseum_store::Lead>, shutdown: watch::Receiver<bool>) {
        tracing::info!("this node holds the processing lead: it processes");
        self.leading.store(true, Ordering::Relaxed);
        metrics::gauge!("coliseum_processor_leading").set(1.0);
        let prune = async {
            let mut every = tokio::time::interval(JOURNAL_PRUNE_EVERY);
            loop {
                every.tick().await;
                let before = self.clock.now() - JOURNAL_KEPT;
                if let Err(error) = self.store.prune_journal(before).await {
                    tracing::warn!(error = %error, "the journal of applied batches was not pruned");
                }
            }
        };
        tokio::select! {
            () = self.run(shutdown) => {}
            () = lead.lost() => tracing::error!("the processing lead was lost: following again"),
            () = prune => {}
        }
        self.leading.store(false, Ordering::Relaxed);
        metrics::gauge!("coliseum_processor_leading").set(0.0);
    }

    async fn apply(
        &self,
        batch: &Arc<ProcessedBatch>,
        as_of: OffsetDateTime,
        received: &[OffsetDateTime],
    ) -> Result<(), StoreError> {
        // The batch's instant, as every node will know it (the journal's):
        // the figures are complete up to it once the batch is applied.
        let as_of = as_of.max(self.watermark.borrow().as_of);
        let number = self.store.apply_batch(batch, as_of).await?;
        if number != self.applied.load(Ordering::Acquire) + 1 {
            // Another node applied batches since this one last looked (a
            // lead that was just lost elsewhere): theirs first, in order.
            self.follow_through(number - 1).await?;
        }
        self.reflect(number, batch, as_of);

        // Receipt to the moment every served read includes the entry.
        let visible_at = self.clock.now() + self.config.served_within;
        for received_at in received {
            let ms = (visible_at - *received_at).whole_milliseconds().max(0);
            self.stats.latency.record(u64::try_from(ms).unwrap_or(u64::MAX), 1);
            metrics::histogram!("coliseum_visibility_latency_seconds").record(ms as f64 / 1000.0);
        }
        let failed = batch
            .dead_letters
            .iter()
            .filter(|l| l.state != DeadLetterState::Replayed && l.attempts == 1)
            .count() as u64;
        self.stats.processed.record(received.len() as u64);
        self.stats.processed_window.record(received.len() as u64);
        self.stats.failed_window.record(failed);
        metrics::counter!("coliseum_processed_entries_total").increment(received.len() as u64);
        metrics::counter!("coliseum_dead_letters_total").increment(failed);
        metrics::gauge!("coliseum_processed_seq").set(batch.to_seq as f64);
        Ok(())
    }
}

/// A dead letter for `stored` after its `attempts`-th failure.
pub(crate) fn failed(
    config: &ProcessorConfig,
    stored: &StoredEntry,
    reason: String,
    attempts: i32,
    first_failed_at: OffsetDateTime,
    now: OffsetDateTime,
) -> DeadLetter {
    let exhausted = attempts >= config.max_attempts;
    let backoff = config.first_retry * 2_u32.saturating_pow(attempts.saturating_sub(1).unsigned_abs());
    DeadLetter {
        seq: stored.seq,
        event_id: stored.entry.event_id.clone(),
        reason,
        attempts,
        state: if exhausted {
            DeadLetterState::Dead
        } else {
            DeadLetterState::Retrying
        },
        first_failed_at,
        last_failed_at: now,
        next_attempt_at: (!exhausted).then(|| now + backoff),
    }
}

/// What the next step holds.
enum Next {
    Batch(Prepared),
    /// Nothing after the cursor, as read at this instant.
    Idle(OffsetDateTime),
    Paused,
    /// Another node applied batches this one's figures do not have yet.
    Behind,
}

/// A batch read and computed, not yet written.
struct Prepared {
    batch: Arc<ProcessedBatch>,
    /// The revenue ceiling once the batch is written.
    ceiling: RevenueCeiling,
    as_of: OffsetDateTime,
    /// When each of its entries was received, for the latency figures.
    received: Vec<OffsetDateTime>,
}

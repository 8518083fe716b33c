//! The group-commit writer. Every accepted entry of every concurrent request
//! goes through one task that gathers whatever has arrived (up to a count, or
//! for a few milliseconds), deduplicates it, writes it in one transaction,
//! commits once, and only then answers each waiting request. One commit (one
//! fsync) serves many requests: this is how a durable store keeps up with
//! thousands of single-entry webhooks a second.
//!
//! Memory is bounded: a request must first take one permit per entry from a
//! fixed pool, and is turned away at once (`Overloaded`) when the pool is
//! empty, instead of queueing without limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coliseum_store::{Appended, NewEntry, PassportLog, StoreError};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::stats::PipelineStats;

/// How the writer batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestConfig {
    /// The most entries written in one transaction.
    pub max_batch_entries: usize,
    /// How long the writer waits for more entries once it holds some.
    pub linger: Duration,
    /// The most entries waiting for or inside a commit at once.
    pub queue_entries: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_batch_entries: 5000,
            linger: Duration::from_millis(1),
            queue_entries: 50_000,
        }
    }
}

/// Why entries were not written. Nothing in the request was acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("the ingest queue is full; retry shortly")]
    Overloaded,
    #[error("the engine is shutting down")]
    ShuttingDown,
    #[error("the store is unavailable: {0}")]
    StoreUnavailable(String),
    #[error("the store failed: {0}")]
    StoreFailed(String),
}

impl From<&StoreError> for IngestError {
    fn from(error: &StoreError) -> Self {
        match error {
            StoreError::Unavailable(message) => Self::StoreUnavailable(message.clone()),
            other => Self::StoreFailed(other.to_string()),
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<Appended>, IngestError>>;

enum Message {
    Write {
        entries: Vec<NewEntry>,
        reply: Reply,
    },
    /// Written after everything queued before it; then the writer exits.
    Stop,
}

/// The handle requests submit entries through. Cheap to clone.
#[derive(Debug, Clone)]
pub struct IngestWriter {
    sender: mpsc::UnboundedSender<Message>,
    permits: Arc<Semaphore>,
    config: IngestConfig,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Write { entries, .. } => write!(f, "Write({} entries)", entries.len()),
            Message::Stop => f.write_str("Stop"),
        }
    }
}

impl IngestWriter {
    /// Starts the writer task. Await the handle after [`IngestWriter::shutdown`]
    /// to know that everything acknowledged is committed.
    pub fn start(
        store: Arc<dyn PassportLog>,
        config: IngestConfig,
        stats: Arc<PipelineStats>,
    ) -> (Self, JoinHandle<()>) {
        // The channel itself is unbounded, but nothing enters it without
        // permits, so its length is bounded by `queue_entries`.
        let (sender, receiver) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(config.queue_entries));
        let task = tokio::spawn(run(store, config, stats, receiver));
        (
            Self {
                sender,
                permits,
                config,
            },
            task,
        )
    }

    /// Writes `entries` (in one commit with whatever else is waiting) and
    /// returns each one's fate once that commit is durable.
    pub async fn submit(&self, entries: Vec<NewEntry>) -> Result<Vec<Appended>, IngestError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = u32::try_from(entries.len()).map_err(|_| IngestError::Overloaded)?;
        let _permits = match self.permits.clone().try_acquire_many_owned(wanted) {
            Ok(permits) => permits,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(IngestError::ShuttingDown),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                metrics::counter!("coliseum_ingest_overloaded_total").increment(1);
                return Err(IngestError::Overloaded);
            }
        };
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Message::Write { entries, reply })
            .map_err(|_| IngestError::ShuttingDown)?;
        answer.await.map_err(|_| IngestError::ShuttingDown)?
    }

    /// Entries waiting for or inside a commit.
    pub fn queued_entries(&self) -> usize {
        self.config
            .queue_entries
            .saturating_sub(self.permits.available_permits())
    }

    /// Refuses new entries and lets the writer finish what it holds.
    pub fn shutdown(&self) {
        self.permits.close();
        let _ = self.sender.send(Message::Stop);
    }
}

async fn run(
    store: Arc<dyn PassportLog>,
    config: IngestConfig,
    stats: Arc<PipelineStats>,
    mut receiver: mpsc::UnboundedReceiver<Message>,
) {
    // Commits in flight at once: as many as the store can overlap usefully.
    let concurrency = store.concurrent_appends().max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut stopping = false;
    while !stopping {
        // A slot first: whatever arrives while every slot is busy joins the
        // next batch, so batches grow with the load.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let Some(first) = receiver.recv().await else { break };
        let mut batch = Batch::default();
        stopping = batch.take(first);
        let deadline = tokio::time::Instant::now() + config.linger;
        while !stopping && batch.entries < config.max_batch_entries {
            let next = match receiver.try_recv() {
                Ok(message) => Some(message),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline, receiver.recv()).await.ok().flatten()
                }
            };
            match next {
                Some(message) => stopping = batch.take(message),
                None => break,
            }
        }
        if !batch.jobs.is_empty() {
            let (store, stats) = (store.clone(), stats.clone());
            tokio::spawn(async move {
                commit(store.as_ref(), &stats, batch.jobs).await;
                drop(slot);
            });
        }
    }
    // Stopped only once every commit in flight has answered.
    let _ = slots.acquire_many(u32::try_from(concurrency).unwrap_or(u32::MAX)).await;
    tracing::info!("ingest writer stopped");
}

/// The jobs gathered for one commit.
#[derive(Default)]
struct Batch {
    jobs: Vec<(Vec<NewEntry>, Reply)>,
    entries: usize,
}

impl Batch {
    /// Adds a message; true when it asks the writer to stop.
    fn take(&mut self, message: Message) -> bool {
        match message {
            Message::Write { entries, reply } => {
                self.entries += entries.len();
                self.jobs.push((entries, reply));
                false
            }
            Message::Stop => true,
        }
    }
}

/// Writes the jobs' entries in one call and answers every job.
async fn commit(store: &dyn PassportLog, stats: &PipelineStats, jobs: Vec<(Vec<NewEntry>, Reply)>) {
    // An event id seen twice in one commit is written once; the later copies
    // are duplicates, as they would be in a later commit.
    let mut first_index: HashMap<String, usize> = HashMap::new();
    let mut unique: Vec<NewEntry> = Vec::new();
    let mut replies = Vec::with_capacity(jobs.len());
    for (entries, reply) in jobs {
        let slots: Vec<Option<usize>> = entries
            .into_iter()
            .map(|entry| match first_index.get(&entry.event_id) {
                Some(_) => None,
                None => {
                    first_index.insert(entry.event_id.clone(), unique.len());
                    unique.push(entry);
                    Some(unique.len() - 1)
                }
            })
            .collect();
        replies.push((slots, reply));
    }

    let started = Instant::now();
    let outcome = store.append_entries(&unique).await;
    metrics::histogram!("coliseum_ingest_commit_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("coliseum_ingest_batch_entries").record(unique.len() as f64);

    match outcome {
        Ok(appended) => {
            let accepted = appended
                .iter()
                .filter(|a| matches!(a, Appended::Accepted { .. }))
                .count() as u64;
            stats.accepted.record(accepted);
            if accepted > 0 {
                stats.log_appended.notify_one();
            }
            metrics::counter!("coliseum_ingest_entries_total", "outcome" => "accepted").increment(accepted);
            let mut duplicates = 0_u64;
            for (slots, reply) in replies {
                let fates: Vec<Appended> = slots
                    .into_iter()
                    .map(|slot| {
                        slot.and_then(|i| appended.get(i).copied())
                            .unwrap_or(Appended::Duplicate)
                    })
                    .collect();
                duplicates += fates.iter().filter(|f| **f == Appended::Duplicate).count() as u64;
                let _ = reply.send(Ok(fates));
            }
            metrics::counter!("coliseum_ingest_entries_total", "outcome" => "duplicate").increment(duplicates);
        }
        Err(error) => {
            tracing::error!(error = %error, entries = unique.len(), "commit failed; nothing in it was acknowledged");
            metrics::counter!("coliseum_ingest_commit_failures_total").increment(1);
            let reason = IngestError::from(&error);
            for (_, reply) in replies {
                let _ = reply.send(Err(reason.clone()));
            }
        }
    }
}

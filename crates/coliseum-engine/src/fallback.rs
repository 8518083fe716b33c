//! The SQL fallback: what memory does not hold (buckets older than the hot
//! window) is summed from the rollup tables, with three guards so that
//! cold queries degrade only themselves:
//!
//! - **bounded, by cost, in lanes**: at most [`PER_LANE`] queries of each
//!   lane run at once. Scans may read many cells (a long range without an
//!   index on what it selects, such as every artist's sums over a month
//!   of hours with a city); the quick reads (a live event's cells, a short
//!   range, one artist's series) are KPI series or parts of boards, each
//!   in a lane of its own. A burst of cold queries waits for its turn
//!   instead of taking every database connection, slow scans queue behind
//!   each other, never in front of the quick reads, and a burst of new
//!   boards never holds up the KPI tiles (nor the other way round);
//! - **single flight**: one query per distinct question at a time; the
//!   others asking it wait for its answer;
//! - **kept**: an answer is reused while none of the buckets it covers has
//!   changed (the caller's stamp, from the hot state), or for `max_age`
//!   after it was read, as leaderboards are; when the answers kept outweigh
//!   their bound, those read least recently make room.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coliseum_domain::kpi::Kpis;
use coliseum_store::{CellFilter, Grain, Rollups, StoreError};

use crate::bounded::Bounded;
use crate::single_flight::Gates;

/// SQL fallbacks of one lane running at once at most: six in all (the
/// SQLite pool has 12 connections, the PostgreSQL one 16: the rest stay
/// for writes and for everything else).
pub const PER_LANE: usize = 2;
/// Rows held by kept answers at most.
const KEPT_ROWS: usize = 1_000_000;

/// A question to the rollups: sums over buckets `first..=last` of `grain`
/// matching `filter`, per artist or per bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    pub grain: Grain,
    pub first: i64,
    pub last: i64,
    pub filter: CellFilter,
    pub by: By,
}

impl Question {
    /// Whether it reads few cells: a live event's (through its index), or
    /// any of a short range (two days of hours, a week of days). Anything
    /// else may scan every cell of a long range.
    fn is_quick(&self) -> bool {
        let span = self.last.saturating_sub(self.first).saturating_add(1);
        self.filter.index().is_some()
            // One artist's series, seeked bucket by bucket: a month of them
            // is quick, a longer one reads that artist's every cell of it.
            || (self.by == By::Bucket && self.filter.seeks_by_bucket(span) && span <= 31 * 24)
            || match self.grain {
                Grain::Hour => span <= 48,
                Grain::Day => span <= 7,
            }
    }
}

/// Which bound a question runs under.
#[derive(Debug, Clone, Copy)]
enum Lane {
    /// A quick KPI series (per bucket).
    Series,
    /// A quick part of a board (per artist).
    Parts,
    Scan,
}

/// How long questions of one lane waited for their turn, and how long the
/// database then took: a slow cold read shows here whether it queued or
/// read much.
struct LaneTimers {
    wait: metrics::Histogram,
    query: metrics::Histogram,
}

impl Lane {
    const ALL: [Lane; 3] = [Lane::Series, Lane::Parts, Lane::Scan];

    fn of(question: &Question) -> Self {
        match (question.is_quick(), question.by) {
            (false, _) => Lane::Scan,
            (true, By::Bucket) => Lane::Series,
            (true, By::Artist) => Lane::Parts,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Lane::Series => "series",
            Lane::Parts => "parts",
            Lane::Scan => "scan",
        }
    }

    fn timers(self) -> &'static LaneTimers {
        static TIMERS: std::sync::OnceLock<[LaneTimers; Lane::ALL.len()]> = std::sync::OnceLock::new();
        let timers = TIMERS.get_or_init(|| {
            Lane::ALL.map(|lane| LaneTimers {
                wait: metrics::histogram!("coliseum_read_sql_wait_seconds", "lane" => lane.label()),
                query: metrics::histogram!("coliseum_read_sql_seconds", "lane" => lane.label()),
            })
        });
        &timers[self as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum By {
    Artist,
    Bucket,
}

/// Sums per artist or per bucket.
#[derive(Debug, Clone)]
pub enum Answer {
    ByArtist(Arc<Vec<(Arc<str>, Kpis)>>),
    ByBucket(Arc<Vec<(i64, Kpis)>>),
}

impl Answer {
    /// What it counts against the cache's bound: its rows, and one for the
    /// answer itself, so that many empty answers are bounded too.
    fn rows(&self) -> usize {
        1 + match self {
            Answer::ByArtist(rows) => rows.len(),
            Answer::ByBucket(rows) => rows.len(),
        }
    }
}

struct Kept {
    stamp: u64,
    read: Instant,
    answer: Answer,
}

pub struct Fallback {
    store: Arc<dyn Rollups>,
    max_age: Duration,
    /// One per [`Lane`], in its order.
    lanes: [tokio::sync::Semaphore; Lane::ALL.len()],
    cache: Mutex<Bounded<Question, Kept>>,
    gates: Gates<Question>,
}

impl std::fmt::Debug for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fallback").finish_non_exhaustive()
    }
}

impl Fallback {
    pub fn new(store: Arc<dyn Rollups>, max_age: Duration) -> Self {
        Self {
            store,
            max_age,
            lanes: std::array::from_fn(|_| tokio::sync::Semaphore::new(PER_LANE)),
            cache: Mutex::new(Bounded::new(KEPT_ROWS)),
            gates: Gates::default(),
        }
    }

    /// The answer to `question` as of `stamp` (the newest change to its
    /// buckets), from the cache when it is still right.
    pub async fn answer(&self, question: &Question, stamp: u64) -> Result<Answer, StoreError> {
        if let Some(answer) = self.kept(question, stamp) {
            return Ok(answer);
        }
        let _turn = self.gates.turn(question.clone()).await;
        // Whoever held the gate may have answered it meanwhile.
        if let Some(answer) = self.kept(question, stamp) {
            return Ok(answer);
        }
        // Its age counts from before the query: what commits while it runs
        // is missing from it.
        let as_of = Instant::now();
        let answer = {
            let lane = Lane::of(question);
            let _permit = self.lanes[lane as usize]
                .acquire()
                .await
                .map_err(|e| StoreError::Internal(format!("the SQL fallback is closed: {e}")))?;
            let timers = lane.timers();
            timers.wait.record(as_of.elapsed());
            let asked = Instant::now();
            let answer = self.ask(question).await;
            timers.query.record(asked.elapsed());
            answer?
        };
        let kept = Kept {
            stamp,
            read: as_of,
            answer: answer.clone(),
        };
        let rows = answer.rows();
        let dropped = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(question.clone(), kept, rows);
        // Freed with the lock released.
        drop(dropped);
        Ok(answer)
    }

    fn kept(&self, question: &Question, stamp: u64) -> Option<Answer> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let kept = cache.get(question)?;
        if kept.stamp == stamp {
            return Some(kept.answer.clone());
        }
        if kept.read.elapsed() < self.max_age {
            // Served for its age: whatever is made from it is as old.
            crate::read_age::note(kept.read);
            return Some(kept.answer.clone());
        }
        None
    }

    async fn ask(&self, q: &Question) -> Result<Answer, StoreError> {
        Ok(match q.by {
            By::Artist => {
                let rows = self
                    .store
                    .sum_cells_by_artist(q.grain, q.first, q.last + 1, &q.filter)
                    .await?;
                Answer::ByArtist(Arc::new(
                    rows.into_iter().map(|(artist, k)| (Arc::from(artist), k)).collect(),
                ))
            }
            By::Bucket => Answer::ByBucket(Arc::new(
                self.store
                    .sum_cells_by_bucket(q.grain, q.first, q.last + 1, &q.filter)
                    .await?,
            )),
        })
    }
}

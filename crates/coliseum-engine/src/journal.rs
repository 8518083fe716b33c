//! The batches applied lately, kept so that a read can be answered as of a
//! past instant: the figures now, less what the batches applied since then
//! added. This is how a plan that sees the state of its last boundary gets
//! exactly that, even for a query nobody asked before the boundary
//! (PLANS.md: freshness is what the plans sell).
//!
//! Only hour cells are kept (a day cell repeats its hour's figures), for
//! [`KEPT_FOR`] and at most [`MAX_CELLS`]; past that the oldest go, and
//! the journal then reaches back only to the newest batch it dropped.

use std::collections::VecDeque;
use std::sync::Arc;

use coliseum_domain::kpi::Kpis;
use coliseum_store::{CellKey, Grain, ProcessedBatch};
use time::OffsetDateTime;

use crate::processor::Watermark;

/// The longest freshness period (5 minutes) and a margin for the refresher.
pub const KEPT_FOR: time::Duration = time::Duration::minutes(7);
/// Hour cells kept at most: about 200 MB at the peak of a backlog. In
/// steady traffic five minutes of batches hold a few thousand.
pub const MAX_CELLS: usize = 1_500_000;

#[derive(Debug)]
struct Journaled {
    /// The hot state's version once this batch was applied.
    version: u64,
    /// The watermark just before and just after it.
    before: Watermark,
    after: Watermark,
    cells: Arc<Vec<(CellKey, Kpis)>>,
    /// The memory its cells hold.
    bytes: usize,
}

/// What was applied after an instant, and the watermark at that instant.
#[derive(Debug, Default)]
pub struct Since {
    /// The hour cells of the batches applied after the instant, batch by
    /// batch (shared, not copied: they are read outside the hot state's lock).
    pub batches: Vec<Arc<Vec<(CellKey, Kpis)>>>,
    /// The watermark at the instant (or at the oldest instant the journal
    /// reaches, when it does not reach back that far).
    pub watermark: Option<Watermark>,
}

#[derive(Debug, Default)]
pub struct Journal {
    batches: VecDeque<Journaled>,
    cells: usize,
    /// The memory the batches' cells hold.
    bytes: usize,
    /// The state before this instant cannot be rebuilt: batches applied
    /// after it were dropped.
    reaches_back_to: Option<OffsetDateTime>,
}

impl Journal {
    /// Records a batch the hot state has just applied, as `version`.
    pub fn record(&mut self, version: u64, before: Watermark, after: Watermark, batch: &Arc<ProcessedBatch>) {
        let cells: Vec<(CellKey, Kpis)> = batch
            .cells
            .iter()
            .filter(|(key, _)| key.grain == Grain::Hour)
            .cloned()
            .collect();
        let bytes = cells.capacity() * std::mem::size_of::<(CellKey, Kpis)>()
            + cells.iter().map(|(key, _)| names_bytes(key)).sum::<usize>();
        self.cells += cells.len();
        self.bytes += bytes;
        self.batches.push_back(Journaled {
            version,
            before,
            after,
            cells: Arc::new(cells),
            bytes,
        });
        let oldest_needed = after.as_of - KEPT_FOR;
        while let Some(oldest) = self.batches.front() {
            let expired = oldest.after.as_of < oldest_needed;
            if !expired && self.cells <= MAX_CELLS {
                break;
            }
            if !expired {
                // Dropped while still needed: states before it are out of reach.
                self.reaches_back_to = Some(oldest.after.as_of);
            }
            self.cells -= oldest.cells.len();
            self.bytes -= oldest.bytes;
            self.batches.pop_front();
        }
    }

    /// The memory the journaled cells hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The hour cells applied after `instant` by batches up to `version`
    /// (what a value computed at `version` holds that the state at
    /// `instant` did not), and the watermark at `instant`. When the journal
    /// does not reach back to `instant`, it answers for the oldest instant
    /// it reaches.
    pub fn since(&self, instant: OffsetDateTime, version: u64) -> Since {
        let instant = self.reaches_back_to.map_or(instant, |reach| instant.max(reach));
        let mut since = Since::default();
        for journaled in self
            .batches
            .iter()
            .filter(|j| j.after.as_of > instant && j.version <= version)
        {
            if since.watermark.is_none() {
                since.watermark = Some(Watermark {
                    seq: journaled.before.seq,
                    as_of: journaled.before.as_of.min(instant),
                });
            }
            since.batches.push(journaled.cells.clone());
        }
        since
    }
}

/// The bytes of a cell's names.
fn names_bytes(key: &CellKey) -> usize {
    [&key.artist, &key.city, &key.genre, &key.live_event]
        .iter()
        .map(|name| name.capacity())
        .sum()
}

impl Since {
    /// The watermark at the instant: the journal's, or when nothing came
    /// after it, `live`'s no later than the instant.
    pub fn watermark_at(&self, live: Watermark, instant: OffsetDateTime) -> Watermark {
        self.watermark.unwrap_or(Watermark {
            seq: live.seq,
            as_of: live.as_of.min(instant),
        })
    }

    /// Every hour cell applied after the instant.
    pub fn cells(&self) -> impl Iterator<Item = &(CellKey, Kpis)> {
        self.batches.iter().flat_map(|cells| cells.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn watermark(seq: i64, seconds: i64) -> Watermark {
        Watermark {
            seq,
            as_of: datetime!(2026-12-01 12:00 UTC) + time::Duration::seconds(seconds),
        }
    }

    fn batch(artist: &str, plays: i64) -> Arc<ProcessedBatch> {
        let key = |grain| CellKey {
            grain,
            bucket: 1,
            artist: artist.to_owned(),
            city: String::new(),
            genre: String::new(),
            live_event: String::new(),
        };
        let kpis = Kpis {
            plays,
            ..Kpis::default()
        };
        Arc::new(ProcessedBatch {
            cells: vec![(key(Grain::Hour), kpis), (key(Grain::Day), kpis)],
            ..ProcessedBatch::default()
        })
    }

    #[test]
    fn what_came_after_an_instant_up_to_a_version_with_the_watermark_at_the_instant() {
        let mut journal = Journal::default();
        journal.record(1, watermark(0, 0), watermark(10, 10), &batch("a", 1));
        journal.record(2, watermark(10, 10), watermark(20, 20), &batch("b", 2));
        journal.record(3, watermark(20, 20), watermark(30, 30), &batch("c", 3));
        let at = |s| watermark(0, s).as_of;
        let since = journal.since(at(15), 3);
        let artists: Vec<&str> = since.cells().map(|(k, _)| k.artist.as_str()).collect();
        assert_eq!(
            artists,
            ["b", "c"],
            "hour cells only, of the batches read after the instant"
        );
        assert_eq!(since.watermark, Some(watermark(10, 10)));
        let since = journal.since(at(15), 2);
        assert_eq!(since.cells().count(), 1, "not what the value had not seen yet");
        let since = journal.since(at(35), 3);
        assert!(
            since.cells().next().is_none() && since.watermark.is_none(),
            "nothing after: the value is the state"
        );
    }

    #[test]
    fn old_batches_go_and_past_the_bound_the_journal_says_how_far_it_reaches() {
        let mut journal = Journal::default();
        journal.record(1, watermark(0, 0), watermark(10, 10), &batch("a", 1));
        journal.record(2, watermark(10, 10), watermark(20, 600), &batch("b", 1));
        assert_eq!(journal.batches.len(), 1, "older than seven minutes: dropped");
        assert_eq!(journal.reaches_back_to, None);
        journal.cells = MAX_CELLS;
        journal.record(3, watermark(20, 600), watermark(30, 610), &batch("c", 1));
        assert_eq!(journal.batches.len(), 1);
        assert_eq!(journal.reaches_back_to, Some(watermark(0, 600).as_of));
        let since = journal.since(watermark(0, 0).as_of, 3);
        assert_eq!(since.watermark.map(|w| w.as_of), Some(watermark(0, 600).as_of));
    }
}

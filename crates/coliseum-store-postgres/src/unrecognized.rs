//! The count of unrecognized entries in the log, kept between readings so
//! that each reading counts only the entries appended since the last one.
//! The health figures read it every few seconds, and an open admin panel
//! twice a second; counting the whole log each time read every unrecognized
//! entry's row (0.1–0.2 s at 10M entries; SQLite counts its partial index
//! alone, which PostgreSQL cannot do until a vacuum marks the pages
//! all-visible). The log only grows
//! and its sequence numbers become visible in order (each append commits
//! under the writer's lock), so the entries after the last reading's head
//! are exactly the ones it did not count. A whole count every
//! [`RECOUNT_EVERY`] still bounds how long a change made outside the engine
//! (a restored backup, a row deleted by hand) stays unseen.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the whole log is counted again.
pub const RECOUNT_EVERY: Duration = Duration::from_secs(60);

/// The last count, shared by a store's callers.
#[derive(Debug, Default)]
pub struct UnrecognizedTally {
    last: Mutex<Option<Counted>>,
}

/// Unrecognized entries up to and including `head`.
#[derive(Debug, Clone, Copy)]
struct Counted {
    head: i64,
    count: i64,
    /// When the whole log was last counted.
    recounted: Instant,
}

/// Where a reading starts: count the unrecognized entries after `after`
/// (up to the head the same statement reads) and hand the result to
/// [`UnrecognizedTally::counted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since {
    pub after: i64,
    before: i64,
}

impl UnrecognizedTally {
    /// Where the next reading starts: after the last head, or at the start
    /// of the log when there is none or the last whole count is too old.
    pub fn since(&self, now: Instant) -> Since {
        match *self.lock() {
            Some(last) if now.duration_since(last.recounted) < RECOUNT_EVERY => Since {
                after: last.head,
                before: last.count,
            },
            _ => Since { after: 0, before: 0 },
        }
    }

    /// The count up to `head`, from the `fresh` entries counted after
    /// `since.after`; kept for the next reading unless a reading that saw
    /// more of the log was kept meanwhile.
    pub fn counted(&self, since: Since, head: i64, fresh: i64, now: Instant) -> i64 {
        let count = since.before + fresh;
        let mut last = self.lock();
        let recounted = match *last {
            _ if since.after == 0 => now,
            Some(kept) if kept.head == since.after => kept.recounted,
            // Another reading moved on from where this one started.
            Some(_) => return count,
            None => now,
        };
        if last.is_none_or(|kept| kept.head <= head) {
            *last = Some(Counted { head, count, recounted });
        }
        count
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Counted>> {
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_counts_from_the_last_head_and_the_whole_log_once_a_minute() {
        let tally = UnrecognizedTally::default();
        let t0 = Instant::now();
        let first = tally.since(t0);
        assert_eq!(first.after, 0, "nothing counted yet: the whole log");
        assert_eq!(tally.counted(first, 100, 7, t0), 7);

        let next = tally.since(t0 + Duration::from_secs(5));
        assert_eq!(next.after, 100);
        assert_eq!(tally.counted(next, 150, 2, t0 + Duration::from_secs(5)), 9);

        let later = tally.since(t0 + RECOUNT_EVERY);
        assert_eq!(later.after, 0, "a minute after the whole count, again from the start");
        assert_eq!(tally.counted(later, 160, 8, t0 + RECOUNT_EVERY), 8);
        assert_eq!(tally.since(t0 + RECOUNT_EVERY).after, 160);
    }

    #[test]
    fn readings_that_overlap_keep_the_one_that_saw_most() {
        let tally = UnrecognizedTally::default();
        let t0 = Instant::now();
        let start = tally.since(t0);
        tally.counted(start, 100, 4, t0);
        let (a, b) = (tally.since(t0), tally.since(t0));
        assert_eq!(tally.counted(a, 200, 3, t0), 7);
        // `b` started at the same head but answers after `a` was kept: its
        // own answer is right for its head, and `a`'s stays.
        assert_eq!(tally.counted(b, 180, 2, t0), 6);
        assert_eq!(tally.since(t0), Since { after: 200, before: 7 });
        // A whole count that saw less of the log than is kept is not kept.
        assert_eq!(tally.counted(Since { after: 0, before: 0 }, 150, 5, t0), 5);
        assert_eq!(tally.since(t0).after, 200);
    }
}

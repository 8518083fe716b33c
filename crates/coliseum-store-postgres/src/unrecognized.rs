//! The count of unrecognized entries in the log, kept between readings so
//! that each reading counts only the entries appended since the last one.
//! The health figures read it every 5 and 10 s, and an open admin panel
//! twice a second; counting the whole log each time read every
//! unrecognized entry's row (0.05–0.7 s at 10M entries, by plan and cache
//! warmth; SQLite counts its partial index alone, which PostgreSQL cannot
//! do until a vacuum marks the pages all-visible). The log only grows, and
//! its sequence numbers become visible in order (an append takes its
//! numbers under the writer's lock and commits before releasing it), so
//! the entries after the last reading's head are exactly those it did not
//! count. A whole count every [`RECOUNT_EVERY`] bounds how long a change
//! made outside the engine (a restored backup, rows deleted by hand, and
//! retention or erasure of log rows, should they come) stays unseen.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the whole log is counted again.
pub const RECOUNT_EVERY: Duration = Duration::from_secs(60);

/// The last count, shared by a store's callers.
#[derive(Debug, Default)]
pub struct UnrecognizedTally {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    kept: Option<Counted>,
    /// When the whole count in flight started, if one is: the others count
    /// from the kept head meanwhile. A failed one clears it; one that never
    /// reports (its caller stopped waiting) stops counting as in flight
    /// after [`RECOUNT_EVERY`].
    recounting: Option<Instant>,
}

/// Unrecognized entries up to and including `head`.
#[derive(Debug, Clone, Copy)]
struct Counted {
    head: i64,
    count: i64,
    /// When the whole count this one adds to started.
    recounted: Instant,
    /// Changes with every count kept.
    generation: u64,
}

/// Where a reading starts: count the unrecognized entries after `after`
/// (up to the head the same statement reads) and hand the result to
/// [`UnrecognizedTally::counted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since {
    pub after: i64,
    start: Start,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// The whole log, from a count that started then.
    Whole(Instant),
    /// After a kept count.
    Kept { count: i64, generation: u64 },
}

impl UnrecognizedTally {
    /// Where the next reading starts: after the kept head, or at the start
    /// of the log when nothing is kept or the last whole count is
    /// [`RECOUNT_EVERY`] old (for one reading at a time).
    pub fn since(&self, now: Instant) -> Since {
        let mut state = self.lock();
        let recount_due = |kept: &Counted| now.saturating_duration_since(kept.recounted) >= RECOUNT_EVERY;
        let in_flight = state
            .recounting
            .is_some_and(|started| now.saturating_duration_since(started) < RECOUNT_EVERY);
        match state.kept {
            Some(kept) if in_flight || !recount_due(&kept) => Since {
                after: kept.head,
                start: Start::Kept {
                    count: kept.count,
                    generation: kept.generation,
                },
            },
            _ => {
                state.recounting = Some(now);
                Since {
                    after: 0,
                    start: Start::Whole(now),
                }
            }
        }
    }

    /// The count up to `head`, from the `fresh` entries counted after
    /// `since.after`. A whole count is kept unless a later one was; a
    /// count from a kept one is kept if nothing else was kept since it
    /// started.
    pub fn counted(&self, since: Since, head: i64, fresh: i64) -> i64 {
        let mut state = self.lock();
        let generation = state.kept.map_or(0, |kept| kept.generation) + 1;
        match since.start {
            Start::Whole(started) => {
                if state.recounting == Some(started) {
                    state.recounting = None;
                }
                if state.kept.is_none_or(|kept| kept.recounted <= started) {
                    state.kept = Some(Counted {
                        head,
                        count: fresh,
                        recounted: started,
                        generation,
                    });
                }
                fresh
            }
            Start::Kept {
                count,
                generation: from,
            } => {
                let count = count + fresh;
                if let Some(kept) = state.kept
                    && kept.generation == from
                {
                    state.kept = Some(Counted {
                        head,
                        count,
                        generation,
                        ..kept
                    });
                }
                count
            }
        }
    }

    /// A reading from `since` that failed: a whole count in flight is not
    /// any more, so the next reading may start one.
    pub fn failed(&self, since: Since) {
        let mut state = self.lock();
        if let Start::Whole(started) = since.start
            && state.recounting == Some(started)
        {
            state.recounting = None;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
        assert_eq!(tally.counted(first, 100, 7), 7);

        let next = tally.since(t0 + Duration::from_secs(5));
        assert_eq!(next.after, 100);
        assert_eq!(tally.counted(next, 150, 2), 9);

        let later = tally.since(t0 + RECOUNT_EVERY);
        assert_eq!(later.after, 0, "a minute after the whole count, again from the start");
        assert_eq!(tally.counted(later, 160, 8), 8, "the whole count corrects the sum");
        assert_eq!(tally.since(t0 + RECOUNT_EVERY).after, 160);
    }

    #[test]
    fn one_whole_count_at_a_time_and_the_others_count_on_meanwhile() {
        let tally = UnrecognizedTally::default();
        let t0 = Instant::now();
        tally.counted(tally.since(t0), 100, 4);
        let due = t0 + RECOUNT_EVERY;
        let whole = tally.since(due);
        assert_eq!(whole.after, 0);
        let meanwhile = tally.since(due);
        assert_eq!(meanwhile.after, 100, "a second caller does not count the whole log too");
        assert_eq!(tally.counted(meanwhile, 120, 1), 5);
        // The whole count, started before that reading was kept, still
        // replaces it: it is what the log holds, whatever was counted before.
        assert_eq!(tally.counted(whole, 110, 3), 3);
        assert_eq!(tally.since(due).after, 110);
        // A whole count that never reported stops blocking the next one.
        let lost = tally.since(due + RECOUNT_EVERY);
        assert_eq!(lost.after, 0);
        assert_eq!(tally.since(due + RECOUNT_EVERY).after, 110);
        assert_eq!(tally.since(due + RECOUNT_EVERY * 2).after, 0);
    }

    #[test]
    fn a_failed_whole_count_lets_the_next_reading_count_the_whole_log() {
        let tally = UnrecognizedTally::default();
        let t0 = Instant::now();
        tally.counted(tally.since(t0), 100, 4);
        let due = t0 + RECOUNT_EVERY;
        let whole = tally.since(due);
        assert_eq!(tally.since(due).after, 100, "in flight: the others count on");
        tally.failed(whole);
        assert_eq!(tally.since(due).after, 0, "failed: the next one counts the whole log");
    }

    #[test]
    fn an_older_whole_count_does_not_replace_a_newer_one() {
        let tally = UnrecognizedTally::default();
        let t0 = Instant::now();
        let (older, newer) = (tally.since(t0), tally.since(t0 + Duration::from_secs(1)));
        assert_eq!(
            (older.after, newer.after),
            (0, 0),
            "nothing kept yet: both count the whole log"
        );
        assert_eq!(tally.counted(newer, 120, 5), 5);
        assert_eq!(tally.counted(older, 100, 4), 4);
        assert_eq!(tally.since(t0 + Duration::from_secs(2)).after, 120);
    }

    #[test]
    fn a_reading_from_a_count_replaced_meanwhile_is_not_kept() {
        let tally = UnrecognizedTally::default();
        let t0 = Instant::now();
        tally.counted(tally.since(t0), 100, 4);
        let (a, b) = (tally.since(t0), tally.since(t0));
        assert_eq!(tally.counted(a, 200, 3), 7);
        // `b` started from the same count but answers after `a` was kept:
        // its own answer is right for its head, and `a`'s stays.
        assert_eq!(tally.counted(b, 180, 2), 6);
        let next = tally.since(t0);
        assert_eq!(next.after, 200);
        assert_eq!(tally.counted(next, 200, 0), 7);
        // A reading from the count before a whole count (here one that
        // found an entry gone from the log) does not bring the old sum back.
        let stale = tally.since(t0);
        let whole = tally.since(t0 + RECOUNT_EVERY);
        assert_eq!(tally.counted(whole, 200, 6), 6);
        assert_eq!(tally.counted(stale, 210, 1), 8);
        let after = tally.since(t0 + RECOUNT_EVERY);
        assert_eq!(after.after, 200);
        assert_eq!(tally.counted(after, 210, 1), 7);
    }
}

//! Values computed recently, shared by every reader who asks for the same
//! key: each key is computed once at a time (the others wait for it), and
//! the value is served to every reader for `max_age` from when its
//! computation began. Under live traffic the data changes with every batch,
//! so "until the data changes" would mean computing every read again; a
//! value may instead be as old as a leaderboard may be (the engine's
//! `--ranking-max-age-ms`), counted from when the data it was made from
//! was read (`read_age`), and that age is already part of the pipeline's
//! receipt-to-visible latency. The held values are bounded by their weight;
//! the least recently read make room.
//!
//! A value past its age is computed again by the first reader who asks;
//! readers who ask while that runs are served the held value for a short
//! [`GRACE`] more instead of waiting. Otherwise every popular value, once
//! a `max_age` elapsed, held up all of its readers for as long as its
//! computation queued behind the others'. A reader who wants data read
//! after a given instant (a live push after a change) never gets one.

use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::bounded::Bounded;
use crate::single_flight::Gates;

/// How long past its maximum age a value is still served while another
/// reader computes it again: with the default maximum age (250 ms), an
/// entry is visible in every served read within 750 ms of its commit,
/// inside the pipeline's one-second target (BENCHMARKS.md) and far inside
/// the 30 s the freshest plan promises (PLANS.md).
pub const GRACE: Duration = Duration::from_millis(500);

/// The longest a value kept for `max_age` may be served once newer data
/// is applied: what the pipeline's receipt-to-visible latency counts.
pub fn served_within(max_age: Duration) -> Duration {
    if max_age.is_zero() { max_age } else { max_age + GRACE }
}

pub struct Recent<K, V> {
    max_age: Duration,
    /// [`GRACE`], shorter in tests.
    grace: Duration,
    held: Mutex<Bounded<K, Held<V>>>,
    gates: Gates<K>,
}

struct Held<V> {
    /// When the oldest data it was made from was read.
    read_at: Instant,
    /// When it was made.
    made: Instant,
    value: V,
}

impl<K, V> std::fmt::Debug for Recent<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recent")
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Recent<K, V> {
    /// Values served for `max_age` (zero: never kept, every read computes),
    /// `budget` in total weight.
    pub fn new(max_age: Duration, budget: usize) -> Self {
        Self {
            max_age,
            grace: GRACE,
            held: Mutex::new(Bounded::new(budget)),
            gates: Gates::default(),
        }
    }

    /// The value for `key`: a recent one if held, else the one `compute`
    /// makes, kept with `weight` if it succeeds. Readers of a key being
    /// computed wait for that computation instead of starting their own,
    /// or take the held value if it is younger than the maximum age plus
    /// the grace.
    pub async fn get_or_compute<E, F>(
        &self,
        key: &K,
        weight: impl FnOnce(&V) -> usize,
        compute: impl FnOnce() -> F,
    ) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if self.max_age.is_zero() {
            return compute().await;
        }
        self.served_or_computed(key, None, weight, compute).await
    }

    /// The value for `key` made from data read at `read_since` or later, or
    /// made after this reader began to wait: for a reader that saw the data
    /// change then, and wants the change.
    /// Held values older than that are computed again (once, as above).
    pub async fn get_or_compute_after<E, F>(
        &self,
        key: &K,
        read_since: Instant,
        weight: impl FnOnce(&V) -> usize,
        compute: impl FnOnce() -> F,
    ) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        self.served_or_computed(key, Some(read_since), weight, compute).await
    }

    async fn served_or_computed<E, F>(
        &self,
        key: &K,
        read_since: Option<Instant>,
        weight: impl FnOnce(&V) -> usize,
        compute: impl FnOnce() -> F,
    ) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.fresh(key, read_since, None) {
            return Ok(value);
        }
        if read_since.is_none()
            && self.gates.busy(key)
            && let Some(value) = self.younger_than(key, self.max_age + self.grace)
        {
            return Ok(value);
        }
        let arrived = Instant::now();
        let _turn = self.gates.turn(key.clone()).await;
        // What the reader before made while this one waited is as new as
        // anything this one could make, however long it took.
        if let Some(value) = self.fresh(key, read_since, Some(arrived)) {
            return Ok(value);
        }
        // Its age counts from before it reads anything, or from when what
        // it reads was read if that is older (`read_age`): whatever is
        // applied after that is missing from it.
        let (value, read_at) = crate::read_age::oldest_read(Instant::now(), compute()).await;
        let value = value?;
        if self.max_age.is_zero() {
            return Ok(value);
        }
        let weight = weight(&value);
        let held = Held {
            read_at,
            made: Instant::now(),
            value: value.clone(),
        };
        let dropped = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), held, weight);
        // Freed with the lock released.
        drop(dropped);
        Ok(value)
    }

    /// The value held for `key` if its data was read less than `age` ago.
    fn younger_than(&self, key: &K, age: Duration) -> Option<V> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let held = held.get(key)?;
        if held.read_at.elapsed() < age {
            crate::read_age::note(held.read_at);
            return Some(held.value.clone());
        }
        None
    }

    /// The value held for `key` if it is younger than the maximum age (and
    /// its data was read at `read_since` or later), or was made after
    /// `made_since`.
    fn fresh(&self, key: &K, read_since: Option<Instant>, made_since: Option<Instant>) -> Option<V> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let held = held.get(key)?;
        let young = held.read_at.elapsed() < self.max_age && read_since.is_none_or(|since| held.read_at >= since);
        let new = made_since.is_some_and(|since| held.made >= since);
        if young || new {
            // Served for its age: a computation using it is as old.
            crate::read_age::note(held.read_at);
            return Some(held.value.clone());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    async fn counted(count: &AtomicUsize, value: u32) -> Result<u32, String> {
        count.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(value)
    }

    #[tokio::test]
    async fn concurrent_readers_of_a_key_share_one_computation() {
        let recent = Arc::new(Recent::new(Duration::from_secs(60), 100));
        let count = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let (recent, count) = (recent.clone(), count.clone());
                tokio::spawn(async move { recent.get_or_compute(&"board", |_| 1, || counted(&count, 7)).await })
            })
            .collect();
        for reader in readers {
            assert_eq!(reader.await.expect("reader"), Ok(7));
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // Another key is its own computation.
        assert_eq!(
            recent.get_or_compute(&"other", |_| 1, || counted(&count, 8)).await,
            Ok(8)
        );
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_value_is_served_for_its_age_then_computed_again() {
        let recent = Recent::new(Duration::from_millis(500), 100);
        let count = AtomicUsize::new(0);
        assert_eq!(recent.get_or_compute(&1, |_| 1, || counted(&count, 1)).await, Ok(1));
        assert_eq!(recent.get_or_compute(&1, |_| 1, || counted(&count, 2)).await, Ok(1));
        tokio::time::sleep(Duration::from_millis(520)).await;
        assert_eq!(recent.get_or_compute(&1, |_| 1, || counted(&count, 3)).await, Ok(3));
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_value_made_from_older_data_is_as_old_as_it() {
        let recent = Recent::new(Duration::from_millis(100), 100);
        let count = AtomicUsize::new(0);
        let read_earlier = Instant::now() - Duration::from_millis(80);
        let made = recent
            .get_or_compute(
                &1,
                |_| 1,
                || async {
                    crate::read_age::note(read_earlier);
                    counted(&count, 1).await
                },
            )
            .await;
        assert_eq!(made, Ok(1));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            recent.get_or_compute(&1, |_| 1, || counted(&count, 2)).await,
            Ok(2),
            "its data was read over 100 ms ago"
        );
    }

    #[tokio::test]
    async fn a_reader_waiting_for_a_slow_computation_takes_its_value() {
        let recent = Arc::new(Recent::new(Duration::from_millis(30), 100));
        let count = Arc::new(AtomicUsize::new(0));
        let slow = |recent: Arc<Recent<u32, u32>>, count: Arc<AtomicUsize>, value| async move {
            recent
                .get_or_compute(
                    &1,
                    |_| 1,
                    || async {
                        count.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<u32, String>(value)
                    },
                )
                .await
        };
        let first = tokio::spawn(slow(recent.clone(), count.clone(), 1));
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = tokio::spawn(slow(recent.clone(), count.clone(), 2));
        assert_eq!(first.await.expect("first"), Ok(1));
        assert_eq!(
            second.await.expect("second"),
            Ok(1),
            "made while it waited, though older than 30 ms"
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    /// A computation of key 1 that waits for `release`, started once it
    /// has begun.
    async fn held_computation(
        recent: &Arc<Recent<u32, u32>>,
        value: u32,
    ) -> (tokio::task::JoinHandle<Result<u32, String>>, Arc<tokio::sync::Notify>) {
        let (started, release) = (
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(tokio::sync::Notify::new()),
        );
        let computing = tokio::spawn({
            let (recent, started, release) = (recent.clone(), started.clone(), release.clone());
            async move {
                recent
                    .get_or_compute(
                        &1,
                        |_| 1,
                        || async move {
                            started.notify_one();
                            release.notified().await;
                            Ok(value)
                        },
                    )
                    .await
            }
        });
        started.notified().await;
        (computing, release)
    }

    /// A `Recent` of 50 ms values served for `grace` more while computed again.
    fn with_grace(grace: Duration) -> Arc<Recent<u32, u32>> {
        let mut recent = Recent::new(Duration::from_millis(50), 100);
        recent.grace = grace;
        Arc::new(recent)
    }

    #[tokio::test]
    async fn an_aged_value_is_served_briefly_while_another_reader_computes_it() {
        let recent = with_grace(Duration::from_secs(60));
        let count = AtomicUsize::new(0);
        assert_eq!(recent.get_or_compute(&1, |_| 1, || counted(&count, 1)).await, Ok(1));
        tokio::time::sleep(Duration::from_millis(60)).await;

        let (computing, release) = held_computation(&recent, 2).await;
        let served = tokio::time::timeout(
            Duration::from_millis(100),
            recent.get_or_compute(&1, |_| 1, || counted(&count, 3)),
        )
        .await;
        assert_eq!(served, Ok(Ok(1)), "the held value, at once, while it is computed again");
        assert_eq!(count.load(Ordering::SeqCst), 1, "that reader computed nothing");
        // A reader who wants data read after now never gets the held value.
        let wants_newer = tokio::spawn({
            let (recent, since) = (recent.clone(), Instant::now());
            async move {
                recent
                    .get_or_compute_after(&1, since, |_| 1, || async { Ok::<u32, String>(9) })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!wants_newer.is_finished(), "it waits for the computation under way");
        release.notify_one();
        assert_eq!(computing.await.expect("computed"), Ok(2));
        assert_eq!(wants_newer.await.expect("newer"), Ok(2), "made while it waited");
    }

    #[tokio::test]
    async fn past_its_grace_a_reader_waits_for_the_computation_under_way() {
        let recent = with_grace(Duration::from_millis(20));
        assert_eq!(
            recent
                .get_or_compute(&1, |_| 1, || async { Ok::<u32, String>(1) })
                .await,
            Ok(1)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (computing, release) = held_computation(&recent, 4).await;
        let waiting = tokio::spawn({
            let recent = recent.clone();
            async move {
                recent
                    .get_or_compute(&1, |_| 1, || async { Ok::<u32, String>(5) })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "past its grace, the held value is not served");
        release.notify_one();
        assert_eq!(computing.await.expect("computed"), Ok(4));
        assert_eq!(waiting.await.expect("waiting"), Ok(4), "the value made while it waited");
    }

    #[tokio::test]
    async fn a_reader_after_a_change_gets_a_value_read_since() {
        let recent = Recent::new(Duration::from_secs(60), 100);
        let count = AtomicUsize::new(0);
        assert_eq!(recent.get_or_compute(&1, |_| 1, || counted(&count, 1)).await, Ok(1));
        let changed = Instant::now();
        assert_eq!(
            recent
                .get_or_compute_after(&1, changed, |_| 1, || counted(&count, 2))
                .await,
            Ok(2),
            "the held value was read before the change"
        );
        assert_eq!(
            recent
                .get_or_compute_after(&1, changed, |_| 1, || counted(&count, 3))
                .await,
            Ok(2),
            "this one was read after it"
        );
        assert_eq!(recent.get_or_compute(&1, |_| 1, || counted(&count, 4)).await, Ok(2));
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failures_and_a_zero_age_keep_nothing() {
        let recent = Recent::new(Duration::from_secs(60), 100);
        let failed: Result<u32, String> = recent
            .get_or_compute(&1, |_| 1, || async { Err("down".to_owned()) })
            .await;
        assert_eq!(failed, Err("down".to_owned()));
        let count = AtomicUsize::new(0);
        assert_eq!(recent.get_or_compute(&1, |_| 1, || counted(&count, 5)).await, Ok(5));
        assert_eq!(count.load(Ordering::SeqCst), 1, "the failure was not kept");

        let never = Recent::new(Duration::ZERO, 100);
        assert_eq!(never.get_or_compute(&1, |_| 1, || counted(&count, 1)).await, Ok(1));
        assert_eq!(never.get_or_compute(&1, |_| 1, || counted(&count, 2)).await, Ok(2));
    }

    #[tokio::test]
    async fn the_least_recently_read_make_room() {
        let recent = Recent::new(Duration::from_secs(60), 10);
        let count = AtomicUsize::new(0);
        for key in 0..3 {
            recent
                .get_or_compute(&key, |_| 4, || counted(&count, key))
                .await
                .expect("value");
        }
        assert_eq!(count.load(Ordering::SeqCst), 3);
        // Key 2 is held; key 0 made room for it.
        assert_eq!(recent.get_or_compute(&2, |_| 4, || counted(&count, 9)).await, Ok(2));
        assert_eq!(recent.get_or_compute(&0, |_| 4, || counted(&count, 9)).await, Ok(9));
        assert_eq!(count.load(Ordering::SeqCst), 4);
    }
}

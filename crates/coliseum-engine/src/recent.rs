//! Values computed recently, shared by every reader who asks for the same
//! key: each key is computed once at a time (the others wait for it), and
//! the value is served to every reader for `max_age` from when its
//! computation began. Under live traffic the data changes with every batch,
//! so "until the data changes" would mean computing every read again; a
//! value may instead be as old as a leaderboard may be (the engine's
//! `--ranking-max-age-ms`), and that age is already part of the pipeline's
//! receipt-to-visible latency. The held values are bounded by their weight;
//! the least recently read make room.

use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::bounded::Bounded;
use crate::single_flight::Gates;

pub struct Recent<K, V> {
    max_age: Duration,
    held: Mutex<Bounded<K, (Instant, V)>>,
    gates: Gates<K>,
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
            held: Mutex::new(Bounded::new(budget)),
            gates: Gates::default(),
        }
    }

    /// The value for `key`: a recent one if held, else the one `compute`
    /// makes, kept with `weight` if it succeeds. Readers of a key being
    /// computed wait for that computation instead of starting their own.
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
        if let Some(value) = self.fresh(key) {
            return Ok(value);
        }
        let _turn = self.gates.turn(key.clone()).await;
        if let Some(value) = self.fresh(key) {
            return Ok(value);
        }
        // Its age counts from before it reads anything: whatever is applied
        // while it is computed is missing from it.
        let began = Instant::now();
        let value = compute().await?;
        let weight = weight(&value);
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), (began, value.clone()), weight);
        Ok(value)
    }

    fn fresh(&self, key: &K) -> Option<V> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let (began, value) = held.get(key)?;
        (began.elapsed() < self.max_age).then(|| value.clone())
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
        let recent = Recent::new(Duration::from_millis(100), 100);
        let count = AtomicUsize::new(0);
        assert_eq!(recent.get_or_compute(&1, |_| 1, || counted(&count, 1)).await, Ok(1));
        assert_eq!(recent.get_or_compute(&1, |_| 1, || counted(&count, 2)).await, Ok(1));
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(recent.get_or_compute(&1, |_| 1, || counted(&count, 3)).await, Ok(3));
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

//! One computation per key at a time: whoever asks while it runs waits its
//! turn, and then usually finds the answer kept. A key's gate leaves the map
//! once nobody else waits at it (gates are cloned only under the map's
//! lock), so that gates of keys asked once do not pile up, also when the
//! holder is dropped midway (a client gone, a request cancelled).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

type Gate = Arc<tokio::sync::Mutex<()>>;

pub struct Gates<K> {
    gates: Mutex<HashMap<K, Gate>>,
}

impl<K: Hash + Eq + Clone> Default for Gates<K> {
    fn default() -> Self {
        Self {
            gates: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> Gates<K> {
    /// Waits until no one else computes `key`, and holds it until dropped.
    pub async fn turn(&self, key: K) -> Turn<'_, K> {
        let gate = self
            .gates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        Turn {
            gates: self,
            key,
            held: gate.lock_owned().await,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.gates.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// A key's turn: its gate is held until this is dropped.
pub struct Turn<'a, K: Hash + Eq + Clone> {
    gates: &'a Gates<K>,
    key: K,
    held: OwnedMutexGuard<()>,
}

impl<K: Hash + Eq + Clone> Drop for Turn<'_, K> {
    fn drop(&mut self) {
        let mut gates = self.gates.gates.lock().unwrap_or_else(|p| p.into_inner());
        let gate = OwnedMutexGuard::mutex(&self.held);
        // Held by the map and by this turn only: nobody waits.
        if gates
            .get(&self.key)
            .is_some_and(|kept| Arc::ptr_eq(kept, gate) && Arc::strong_count(kept) <= 2)
        {
            gates.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_turn_at_a_time_and_no_gate_left_behind() {
        let gates: Arc<Gates<&str>> = Arc::default();
        let first = gates.turn("board").await;
        let waiting = tokio::spawn({
            let gates = gates.clone();
            async move {
                let _turn = gates.turn("board").await;
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the second waits for the first");
        drop(first);
        waiting.await.expect("the second gets its turn");
        assert_eq!(gates.len(), 0, "no gate is left once nobody waits");
    }

    #[tokio::test]
    async fn a_turn_dropped_midway_frees_the_key() {
        let gates: Arc<Gates<&str>> = Arc::default();
        let held = gates.turn("board").await;
        // A request waiting for its turn, cancelled (its client went away).
        let cancelled = tokio::spawn({
            let gates = gates.clone();
            async move {
                let _turn = gates.turn("board").await;
                std::future::pending::<()>().await;
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        cancelled.abort();
        let _ = cancelled.await;
        drop(held);
        assert_eq!(gates.len(), 0);
        let again = tokio::time::timeout(std::time::Duration::from_secs(1), gates.turn("board")).await;
        assert!(again.is_ok(), "a later request is not stuck behind the cancelled one");
    }
}

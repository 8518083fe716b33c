//! One computation per key at a time: whoever asks while it runs waits its
//! turn, and then usually finds the answer kept. A key's gate counts who
//! holds it or waits at it, and leaves the map with the last of them, also
//! when that one is dropped while waiting or midway (a client gone, a
//! request cancelled), so that gates of keys asked once do not pile up.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// A key's gate and how many hold it or wait at it.
type Gate = (Arc<tokio::sync::Mutex<()>>, usize);

#[derive(Debug)]
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
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
            let (gate, count) = gates.entry(key.clone()).or_default();
            *count += 1;
            gate.clone()
        };
        // Counted from here on: dropped while waiting, it still leaves.
        let presence = Presence { gates: self, key };
        Turn {
            _held: gate.lock_owned().await,
            _presence: presence,
        }
    }

    /// Counts as busy at `key` until dropped, without waiting for a turn:
    /// for work that may run beside others of its key but must be seen
    /// by [`Self::busy`].
    pub fn enter(&self, key: K) -> Presence<'_, K> {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates.entry(key.clone()).or_default().1 += 1;
        Presence { gates: self, key }
    }

    /// Whether someone computes `key`, waits to, or is present.
    pub fn busy<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
    {
        self.gates.lock().unwrap_or_else(|p| p.into_inner()).contains_key(key)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.gates.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// A key's turn: its gate is held until this is dropped.
pub struct Turn<'a, K: Hash + Eq + Clone> {
    // Released before the presence leaves, so that a gate leaves the map
    // unlocked.
    _held: OwnedMutexGuard<()>,
    _presence: Presence<'a, K>,
}

impl<K: Hash + Eq + Clone> Turn<'_, K> {
    /// Whether the gate is held (always, while the turn lives).
    #[cfg(test)]
    fn holds(&self) -> bool {
        OwnedMutexGuard::mutex(&self._held).try_lock().is_err()
    }
}

/// One holder of or waiter at a key's gate, or one present at it.
pub struct Presence<'a, K: Hash + Eq + Clone> {
    gates: &'a Gates<K>,
    key: K,
}

impl<K: Hash + Eq + Clone> Drop for Presence<'_, K> {
    fn drop(&mut self) {
        let mut gates = self.gates.gates.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, count)) = gates.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                gates.remove(&self.key);
            }
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
        assert!(first.holds());
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

    #[tokio::test]
    async fn a_waiter_cancelled_once_the_holder_is_gone_frees_the_key() {
        let gates: Arc<Gates<&str>> = Arc::default();
        let held = gates.turn("board").await;
        let waiter = tokio::spawn({
            let gates = gates.clone();
            async move {
                let _turn = gates.turn("board").await;
                std::future::pending::<()>().await;
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // The holder leaves first, then the waiter goes before or after its turn.
        drop(held);
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(gates.len(), 0, "no gate is left by the cancelled waiter");
    }
}

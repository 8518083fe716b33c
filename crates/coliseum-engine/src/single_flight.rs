//! One computation per key at a time: whoever asks while it runs waits its
//! turn, and then usually finds the answer kept. A key's gate counts who
//! holds it, waits at it or is present at it without a turn ([`Gates::enter`],
//! for work that may run beside others of its key but must be seen), and
//! leaves the map with the last of them, also when that one is dropped while
//! waiting or midway (a client gone, a request cancelled), so that gates of
//! keys asked once do not pile up. While a gate is in the map it also counts
//! how often what is computed at it was voided ([`Gates::void`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// A key's gate, how many hold it, wait at it or are present, and how
/// often it was voided.
type Gate = (Arc<tokio::sync::Mutex<()>>, usize, u64);

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
            let (gate, count, _) = gates.entry(key.clone()).or_default();
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

    /// Present at `key` if nobody else is (see [`Self::enter`]); `None`
    /// when someone is.
    pub fn enter_if_idle(&self, key: K) -> Option<Presence<'_, K>> {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        if gates.contains_key(&key) {
            return None;
        }
        gates.insert(key.clone(), (Arc::default(), 1, 0));
        Some(Presence { gates: self, key })
    }

    /// Voids what is computed at `key` now, if anyone is there: each of
    /// them sees [`Presence::voids`] change. Says whether anyone was.
    pub fn void<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
    {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates.get_mut(key).map(|(_, _, voids)| *voids += 1).is_some()
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

impl<K: Hash + Eq + Clone> Presence<'_, K> {
    /// How often what is computed at its key was voided since the first
    /// who is there now came: compared before and after a computation.
    pub fn voids(&self) -> u64 {
        let gates = self.gates.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates.get(&self.key).map_or(0, |(_, _, voids)| *voids)
    }
}

impl<K: Hash + Eq + Clone> Drop for Presence<'_, K> {
    fn drop(&mut self) {
        let mut gates = self.gates.gates.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, count, _)) = gates.get_mut(&self.key) {
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

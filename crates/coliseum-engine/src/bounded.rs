//! A cache bounded by the weight of what it holds, that makes room by
//! dropping the values read least recently. Starting over when full (what
//! the read caches did before) threw away the popular boards and tiles with
//! the rare ones, and under many distinct queries the cache filled every
//! few seconds: every board was then summed and sorted again from nothing.
//!
//! What a cache drops is handed back to the caller, to be freed once the
//! caller has let go of its locks: a quarter of a cache of hundreds of
//! megabytes takes long enough to free (pages given back to the system) to
//! stall every reader waiting on the lock.

use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug)]
struct Held<V> {
    value: V,
    weight: usize,
    /// When it was last read or written, in this cache's own ticks.
    touched: u64,
}

#[derive(Debug)]
pub struct Bounded<K, V> {
    values: HashMap<K, Held<V>>,
    weight: usize,
    budget: usize,
    ticks: u64,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    /// A cache of values weighing `budget` at most together.
    pub fn new(budget: usize) -> Self {
        Self {
            values: HashMap::new(),
            weight: 0,
            budget,
            ticks: 0,
        }
    }

    /// The value for `key`, now the most recently read.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        self.ticks += 1;
        let held = self.values.get_mut(key)?;
        held.touched = self.ticks;
        Some(&held.value)
    }

    /// Keeps `value` for `key` (replacing what was there), first dropping
    /// the least recently read values down to three quarters of the budget
    /// if it would not fit. A value heavier than the whole budget is not
    /// kept. Returns the values dropped, the one replaced among them.
    #[must_use = "free what the cache dropped once its lock is released"]
    pub fn insert(&mut self, key: K, value: V, weight: usize) -> Vec<V> {
        self.ticks += 1;
        let mut dropped = Vec::new();
        if let Some(replaced) = self.values.remove(&key) {
            self.weight -= replaced.weight;
            dropped.push(replaced.value);
        }
        if weight > self.budget {
            dropped.push(value);
            return dropped;
        }
        if self.weight + weight > self.budget {
            dropped.extend(self.shrink_to((self.budget / 4 * 3).saturating_sub(weight)));
        }
        self.weight += weight;
        let touched = self.ticks;
        self.values.insert(key, Held { value, weight, touched });
        dropped
    }

    /// What the values weigh together.
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// Bounds the values to `budget` from now on, dropping the least
    /// recently read at once if they weigh more; returns those.
    #[must_use = "free what the cache dropped once its lock is released"]
    pub fn set_budget(&mut self, budget: usize) -> Vec<V> {
        self.budget = budget;
        if self.weight > budget {
            return self.shrink_to(budget / 4 * 3);
        }
        Vec::new()
    }

    /// Drops the least recently read values until the rest weigh `target`
    /// at most, and returns them. Every value was touched at a tick of its
    /// own, so the oldest to keep is one tick.
    fn shrink_to(&mut self, target: usize) -> Vec<V> {
        let mut by_age: Vec<(u64, usize)> = self.values.values().map(|held| (held.touched, held.weight)).collect();
        by_age.sort_unstable_by_key(|(touched, _)| *touched);
        let mut weight = self.weight;
        let mut keep_from = u64::MAX;
        for (touched, held) in by_age {
            if weight <= target {
                keep_from = touched;
                break;
            }
            weight -= held;
        }
        self.weight = weight;
        self.values
            .extract_if(|_, held| held.touched < keep_from)
            .map(|(_, held)| held.value)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_read_make_room_and_the_weight_stays_within_budget() {
        let mut cache: Bounded<u32, &str> = Bounded::new(100);
        assert!(cache.insert(1, "popular", 40).is_empty());
        assert!(cache.insert(2, "rare", 40).is_empty());
        assert_eq!(cache.get(&1), Some(&"popular"));
        assert_eq!(cache.insert(3, "new", 30), ["rare"], "handed back to be freed");
        assert_eq!(cache.get(&2), None, "read least recently: dropped");
        assert_eq!(cache.get(&1), Some(&"popular"), "read since: kept");
        assert_eq!(cache.get(&3), Some(&"new"));
        assert_eq!(cache.weight(), 70);
        assert_eq!(cache.insert(3, "replaced", 10), ["new"]);
        assert_eq!(cache.weight(), 50, "a replaced value's weight goes with it");
        assert_eq!(cache.insert(4, "too heavy", 101), ["too heavy"]);
        assert_eq!(cache.get(&4), None);
        assert_eq!(cache.weight(), 50);
        assert_eq!(cache.set_budget(45), ["popular"]);
        assert!(cache.weight() <= 45, "a smaller budget drops values at once");
        assert_eq!(cache.get(&3), Some(&"replaced"), "the most recently read stays");
    }
}

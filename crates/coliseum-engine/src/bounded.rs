//! A cache bounded by the weight of what it holds, that makes room by
//! dropping the values read least recently. Starting over when full (what
//! the read caches did before) threw away the popular boards and tiles with
//! the rare ones, and under many distinct queries the cache filled every
//! few seconds: every board was then summed and sorted again from nothing.

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
    /// kept.
    pub fn insert(&mut self, key: K, value: V, weight: usize) {
        self.ticks += 1;
        if let Some(replaced) = self.values.remove(&key) {
            self.weight -= replaced.weight;
        }
        if weight > self.budget {
            return;
        }
        if self.weight + weight > self.budget {
            self.shrink_to((self.budget / 4 * 3).saturating_sub(weight));
        }
        self.weight += weight;
        let touched = self.ticks;
        self.values.insert(key, Held { value, weight, touched });
    }

    /// What the values weigh together.
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// Bounds the values to `budget` from now on, dropping the least
    /// recently read at once if they weigh more.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
        if self.weight > budget {
            self.shrink_to(budget / 4 * 3);
        }
    }

    /// Drops the least recently read values until the rest weigh `target`
    /// at most.
    fn shrink_to(&mut self, target: usize) {
        let mut by_age: Vec<(u64, K)> = self.values.iter().map(|(k, held)| (held.touched, k.clone())).collect();
        by_age.sort_unstable_by_key(|(touched, _)| *touched);
        for (_, key) in by_age {
            if self.weight <= target {
                break;
            }
            if let Some(dropped) = self.values.remove(&key) {
                self.weight -= dropped.weight;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_read_make_room_and_the_weight_stays_within_budget() {
        let mut cache: Bounded<u32, &str> = Bounded::new(100);
        cache.insert(1, "popular", 40);
        cache.insert(2, "rare", 40);
        assert_eq!(cache.get(&1), Some(&"popular"));
        cache.insert(3, "new", 30);
        assert_eq!(cache.get(&2), None, "read least recently: dropped");
        assert_eq!(cache.get(&1), Some(&"popular"), "read since: kept");
        assert_eq!(cache.get(&3), Some(&"new"));
        assert_eq!(cache.weight(), 70);
        cache.insert(3, "replaced", 10);
        assert_eq!(cache.weight(), 50, "a replaced value's weight goes with it");
        cache.insert(4, "too heavy", 101);
        assert_eq!(cache.get(&4), None);
        assert_eq!(cache.weight(), 50);
        cache.set_budget(45);
        assert!(cache.weight() <= 45, "a smaller budget drops values at once");
        assert_eq!(cache.get(&3), Some(&"replaced"), "the most recently read stays");
    }
}

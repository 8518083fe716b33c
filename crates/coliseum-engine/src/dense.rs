//! Sums per artist by interned id in a dense array: a few megabytes that
//! stay in cache, where a hash map keyed by name hashes and compares every
//! row. The array is the thread's own and is left zeroed between sums, so a
//! sum allocates only its result.

use std::cell::RefCell;

use coliseum_domain::kpi::Kpis;

use crate::packed::PackedSums;

thread_local! {
    static DENSE: RefCell<Vec<Option<Kpis>>> = const { RefCell::new(Vec::new()) };
    static DENSE_VALUES: RefCell<Vec<Option<i64>>> = const { RefCell::new(Vec::new()) };
}

/// The sums of every `(id, kpis)` that `rows` hands to its callback, one
/// row per id, in the order ids were first seen. Ids at or above `ids` are
/// ignored.
pub fn sum_by_id(ids: usize, rows: impl FnOnce(&mut dyn FnMut(u32, &Kpis))) -> PackedSums {
    DENSE.with_borrow_mut(|dense| {
        if dense.len() < ids {
            dense.resize(ids, None);
        }
        let mut touched: Vec<u32> = Vec::new();
        rows(&mut |id, kpis| {
            if let Some(slot) = dense.get_mut(id as usize).filter(|_| (id as usize) < ids) {
                *slot.get_or_insert_with(|| {
                    touched.push(id);
                    Kpis::default()
                }) += *kpis;
            }
        });
        touched
            .into_iter()
            .map(|id| (id, dense[id as usize].take().unwrap_or_default()))
            .collect()
    })
}

/// The sums of every `(id, value)` that `rows` hands to its callback, one
/// row per id whose sum is not zero, ids ascending. Ids at or above `ids`
/// are ignored.
pub fn sum_values_by_id(ids: usize, rows: impl FnOnce(&mut dyn FnMut(u32, i64))) -> Vec<(u32, i64)> {
    DENSE_VALUES.with_borrow_mut(|dense| {
        if dense.len() < ids {
            dense.resize(ids, None);
        }
        let mut touched: Vec<u32> = Vec::new();
        rows(&mut |id, value| {
            if let Some(slot) = dense.get_mut(id as usize).filter(|_| (id as usize) < ids) {
                let sum = slot.get_or_insert_with(|| {
                    touched.push(id);
                    0
                });
                *sum = sum.saturating_add(value);
            }
        });
        // In id order: a scan of the array when most ids were touched,
        // sorting the few otherwise.
        let mut sums = Vec::with_capacity(touched.len());
        if touched.len() * 16 > ids {
            for (id, slot) in dense.iter_mut().enumerate().take(ids) {
                if let Some(sum) = slot.take().filter(|sum| *sum != 0) {
                    sums.push((id as u32, sum));
                }
            }
        } else {
            touched.sort_unstable();
            for id in touched {
                if let Some(sum) = dense[id as usize].take().filter(|sum| *sum != 0) {
                    sums.push((id, sum));
                }
            }
        }
        sums
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plays(n: i64) -> Kpis {
        Kpis {
            plays: n,
            ..Kpis::default()
        }
    }

    #[test]
    fn sums_each_id_once_and_leaves_the_array_clean() {
        let summed = sum_by_id(10, |add| {
            add(3, &plays(1));
            add(1, &plays(2));
            add(3, &plays(4));
            add(12, &plays(8));
        });
        assert_eq!(summed.iter().collect::<Vec<_>>(), vec![(3, plays(5)), (1, plays(2))]);
        let again = sum_by_id(10, |add| add(3, &plays(1)));
        assert_eq!(
            again.iter().collect::<Vec<_>>(),
            vec![(3, plays(1))],
            "nothing left over from the sum before"
        );
    }

    #[test]
    fn sums_values_in_id_order_without_zeros_whether_few_or_many() {
        let few = sum_values_by_id(100, |add| {
            add(40, 2);
            add(7, 1);
            add(40, -2);
            add(9, -3);
            add(150, 1);
        });
        assert_eq!(few, vec![(7, 1), (9, -3)]);
        let many = sum_values_by_id(10, |add| {
            for id in (0..10).rev() {
                add(id, i64::from(id) - 4);
            }
            add(9, i64::MAX);
        });
        let expected: Vec<(u32, i64)> = [
            (0, -4),
            (1, -3),
            (2, -2),
            (3, -1),
            (5, 1),
            (6, 2),
            (7, 3),
            (8, 4),
            (9, i64::MAX),
        ]
        .to_vec();
        assert_eq!(many, expected, "saturating, not wrapping");
        assert!(sum_values_by_id(10, |_| {}).is_empty(), "nothing left over");
    }
}

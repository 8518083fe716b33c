//! Sums per artist by interned id in a dense array: a few megabytes that
//! stay in cache, where a hash map keyed by name hashes and compares every
//! row. The array is the thread's own and is left zeroed between sums, so a
//! sum allocates only its result.

use std::cell::RefCell;

use coliseum_domain::kpi::Kpis;

use crate::packed::PackedSums;

thread_local! {
    static DENSE: RefCell<Vec<Option<Kpis>>> = const { RefCell::new(Vec::new()) };
    static DENSE_VALUES: RefCell<(Vec<i64>, Vec<u64>)> = const { RefCell::new((Vec::new(), Vec::new())) };
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
        let summed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rows(&mut |id, kpis| {
                if let Some(slot) = dense.get_mut(id as usize).filter(|_| (id as usize) < ids) {
                    *slot.get_or_insert_with(|| {
                        touched.push(id);
                        Kpis::default()
                    }) += *kpis;
                }
            })
        }));
        // As in `sum_values_by_id`: never leave the array dirty.
        if let Err(panic) = summed {
            dense.fill(None);
            std::panic::resume_unwind(panic);
        }
        touched
            .into_iter()
            .map(|id| (id, dense[id as usize].take().unwrap_or_default()))
            .collect()
    })
}

/// Values summed by id into the thread's dense array (see
/// [`sum_values_by_id`]): a board sums hundreds of thousands of rows, and a
/// plain method call per row is inlined where a `dyn` callback is not.
pub struct ValueSums<'a> {
    dense: &'a mut [i64],
    /// One bit per id, set when its slot was zero when added to: the ids
    /// to read back, in id order, skipping 64 untouched ids a word. A scan
    /// of the whole array for the few non-zero slots of a filtered board
    /// (or sorting the ids of the many of a whole one) was most of what a
    /// board's first sum cost.
    touched: &'a mut [u64],
}

impl ValueSums<'_> {
    /// Adds `value` to `id`'s sum, saturating; ids beyond the array are
    /// ignored.
    #[inline]
    pub fn add(&mut self, id: u32, value: i64) {
        let Some(slot) = self.dense.get_mut(id as usize) else {
            return;
        };
        if *slot == 0
            && let Some(word) = self.touched.get_mut(id as usize / 64)
        {
            *word |= 1 << (id % 64);
        }
        *slot = slot.saturating_add(value);
    }
}

/// The sums of every `(id, value)` that `rows` adds, one row per id whose
/// sum is not zero, ids ascending. Ids at or above `ids` are ignored.
pub fn sum_values_by_id(ids: usize, rows: impl FnOnce(&mut ValueSums<'_>)) -> Vec<(u32, i64)> {
    DENSE_VALUES.with_borrow_mut(|(dense, touched)| {
        if dense.len() < ids {
            dense.resize(ids, 0);
        }
        let words = ids.div_ceil(64);
        if touched.len() < words {
            touched.resize(words, 0);
        }
        let mut sums = ValueSums {
            dense: &mut dense[..ids],
            touched: &mut touched[..words],
        };
        // A sum cut short by a panic leaves the arrays zeroed all the same:
        // the thread lives on in the blocking pool, and its next sum starts
        // from them.
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rows(&mut sums))) {
            sums.dense.fill(0);
            sums.touched.fill(0);
            std::panic::resume_unwind(panic);
        }
        let ValueSums { dense, touched } = sums;
        // Every slot and bit is left zero.
        let mut summed = Vec::with_capacity(touched.iter().map(|word| word.count_ones() as usize).sum());
        for (at, word) in touched.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                let id = at * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let sum = std::mem::take(&mut dense[id]);
                if sum != 0 {
                    summed.push((id as u32, sum));
                }
            }
        }
        summed
    })
}

/// Calls `read` with the thread's dense array holding each of `values`
/// at its id (zero elsewhere), and leaves it zeroed again: a lookup by id
/// that costs the values given, not the number of artists.
pub fn with_values_by_id<R>(values: impl Iterator<Item = (u32, i64)> + Clone, read: impl FnOnce(&[i64]) -> R) -> R {
    DENSE_VALUES.with_borrow_mut(|(dense, _)| {
        let ids = values.clone().map(|(id, _)| id as usize + 1).max().unwrap_or(0);
        if dense.len() < ids {
            dense.resize(ids, 0);
        }
        for (id, value) in values.clone() {
            dense[id as usize] = value;
        }
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(dense)));
        for (id, _) in values {
            dense[id as usize] = 0;
        }
        read.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_by_id_and_the_array_is_left_zeroed() {
        let values = [(3_u32, 7_i64), (130, -2)];
        let read = with_values_by_id(values.iter().copied(), |dense| (dense[3], dense[130], dense[4]));
        assert_eq!(read, (7, -2, 0));
        with_values_by_id(std::iter::empty(), |dense| {
            assert!(dense.iter().all(|value| *value == 0), "left zeroed");
        });
        assert_eq!(sum_values_by_id(200, |sums| sums.add(3, 1)), vec![(3, 1)]);
    }

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
        let few = sum_values_by_id(100, |sums| {
            sums.add(40, 2);
            sums.add(7, 1);
            sums.add(40, -2);
            sums.add(9, -3);
            sums.add(40, 0);
            sums.add(150, 1);
        });
        assert_eq!(few, vec![(7, 1), (9, -3)]);
        // Across words of the bitmap, one id back to zero and then not.
        let spread = sum_values_by_id(200, |sums| {
            sums.add(199, 1);
            sums.add(64, 3);
            sums.add(130, 5);
            sums.add(63, -1);
            sums.add(130, -5);
            sums.add(130, 2);
            sums.add(0, 4);
        });
        assert_eq!(spread, vec![(0, 4), (63, -1), (64, 3), (130, 2), (199, 1)]);
        let many = sum_values_by_id(10, |sums| {
            for id in (0..10).rev() {
                sums.add(id, i64::from(id) - 4);
            }
            sums.add(9, i64::MAX);
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

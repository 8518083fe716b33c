//! Sums per artist by interned id in a dense array: a few megabytes that
//! stay in cache, where a hash map keyed by name hashes and compares every
//! row. The array is the thread's own and is left zeroed between sums, so a
//! sum allocates only its result.

use std::cell::RefCell;

use coliseum_domain::kpi::Kpis;

thread_local! {
    static DENSE: RefCell<Vec<Option<Kpis>>> = const { RefCell::new(Vec::new()) };
}

/// The sums of every `(id, kpis)` that `rows` hands to its callback, one
/// row per id, in the order ids were first seen. Ids at or above `ids` are
/// ignored.
pub fn sum_by_id(ids: usize, rows: impl FnOnce(&mut dyn FnMut(u32, &Kpis))) -> Vec<(u32, Kpis)> {
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
        assert_eq!(summed, vec![(3, plays(5)), (1, plays(2))]);
        let again = sum_by_id(10, |add| add(3, &plays(1)));
        assert_eq!(again, vec![(3, plays(1))], "nothing left over from the sum before");
    }
}

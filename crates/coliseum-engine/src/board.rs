//! A leaderboard's order: artists by one metric's value, highest first, ties
//! by name, with standard competition ranks (1, 2, 2, 4). A board is built
//! once from every artist's value, then *moved* as batches change some of
//! them: under live traffic a 30-day board of 50,000 artists changes by a
//! few hundred artists a batch, and summing and sorting all of them again
//! every quarter of a second was most of what reads cost. Moving a board is
//! one merge of the artists that stay in place with the few that moved.
//!
//! Most boards are only ever read from their first page, so a new board
//! picks its first [`TOP`] artists by selection and sorts the rest only when
//! a later page, an artist's place or a move asks for the whole order. The
//! whole order keeps ids only: values are the board's by id, and ranks
//! follow from values, so a sorted board holds 16 bytes an artist, not 28.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use crate::hot::Names;

/// The ranks a board finds without sorting every artist: the longest first
/// page.
pub const TOP: usize = 100;

/// One ranked artist, as a page shows it. Ranks never exceed the number
/// of artists, which ids count in 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranked {
    pub rank: u32,
    /// The artist's interned id: [`Board::name`] gives its name.
    pub id: u32,
    pub value: i64,
}

/// An artist's value by id, in 12 bytes rather than the 16 a tuple pads to:
/// a cached board holds one for every artist with a value, ranked or not,
/// and most boards are never sorted past their first page, so these are
/// most of what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed(4))]
struct Valued {
    id: u32,
    value: i64,
}

impl Valued {
    fn id(self) -> u32 {
        self.id
    }

    fn value(self) -> i64 {
        self.value
    }

    fn pair(self) -> (u32, i64) {
        (self.id, self.value)
    }
}

/// Artists ranked by value.
#[derive(Debug)]
pub struct Board {
    names: Arc<Names>,
    /// The first ranked artists, in rank order: all of them, or `top` of
    /// them when there are more.
    first: Vec<Ranked>,
    /// How many `first` holds when there are more ranked artists.
    top: usize,
    /// How many artists are ranked (their value is above zero).
    ranked: usize,
    /// Every ranked artist's id in rank order, sorted when first asked for.
    order: OnceLock<Box<[u32]>>,
    /// Every artist whose value is not zero, by id ascending: the ranked
    /// ones and those below zero (refunds, retracted votes), never ranked
    /// but where a past state of the board, or a later one, starts from.
    values: Vec<Valued>,
}

/// Where an artist sorts: higher values first, then names in order.
type Key = (Reverse<i64>, u32);

impl Board {
    /// Bytes a board holds per artist with a value: its value by id, and
    /// its id in the whole order once sorted.
    pub const BYTES_PER_ARTIST: usize = std::mem::size_of::<Valued>() + std::mem::size_of::<u32>();

    /// The board of artists with these `values` (at most one per id).
    /// `names` must name every id.
    pub fn new(names: Arc<Names>, values: Vec<(u32, i64)>) -> Self {
        Self::with_top(names, values, TOP)
    }

    fn with_top(names: Arc<Names>, values: Vec<(u32, i64)>, top: usize) -> Self {
        let mut values: Vec<Valued> = values
            .into_iter()
            .filter(|(_, value)| *value != 0)
            .map(|(id, value)| Valued { id, value })
            .collect();
        values.sort_unstable_by_key(|valued| valued.id());
        Self::of_values(names, values, top)
    }

    /// The board of `values` (ids ascending, none zero), its first `top`
    /// artists selected, the rest left unsorted until asked for.
    fn of_values(names: Arc<Names>, values: Vec<Valued>, top: usize) -> Self {
        let ranked = values.iter().filter(|valued| valued.value() > 0).count();
        let first = ranks_of(first_in_order(&names, &values, top));
        Self {
            names,
            first,
            top,
            ranked,
            order: OnceLock::new(),
            values,
        }
    }

    /// This board after some artists' values changed by `deltas` (ids
    /// ascending, one each). `names` must name every id, these and the
    /// board's: names only ever grow, and those of the board keep their
    /// order among themselves, so the artists that did not move stay sorted.
    pub fn moved(&self, names: Arc<Names>, deltas: &[(u32, i64)]) -> Self {
        let mut values = Vec::with_capacity(self.values.len() + deltas.len());
        let mut movers: Vec<(u32, i64)> = Vec::with_capacity(deltas.len());
        let mut old = self.values.iter().copied().peekable();
        // Whether every mover rose, and how many of them became ranked.
        let (mut only_rises, mut newly_ranked) = (true, 0);
        for &(id, delta) in deltas {
            while let Some(other) = old.next_if(|other| other.id() < id) {
                values.push(other);
            }
            let before = old.next_if(|other| other.id() == id).map_or(0, Valued::value);
            let after = before.saturating_add(delta);
            if after != 0 {
                values.push(Valued { id, value: after });
            }
            if after != before {
                movers.push((id, after));
                only_rises &= after > before;
                newly_ranked += usize::from(before <= 0 && after > 0);
            }
        }
        values.extend(old);
        let Some(order) = self.order.get() else {
            // A board nobody read past its first page. When every mover
            // rose (plays, votes and attendance only ever do), nobody
            // outside the first artists and the movers can pass them: the
            // new first artists are among those few. Otherwise it selects
            // again, which is as cheap as the merge and still sorts nothing.
            if only_rises {
                return Self {
                    first: self.first_after_rises(&names, &movers),
                    top: self.top,
                    ranked: self.ranked + newly_ranked,
                    order: OnceLock::new(),
                    names,
                    values,
                };
            }
            return Self::of_values(names, values, self.top);
        };
        let mut moving = Bits::default();
        for (id, _) in &movers {
            moving.set(*id);
        }
        let arriving = in_order(&names, &movers);
        let staying = order.iter().filter(|id| !moving.get(**id));
        let mut merged: Vec<(u32, i64)> = Vec::with_capacity(order.len() + arriving.len());
        let mut arriving = arriving.into_iter().peekable();
        // The artists that stay keep their values: read by id from the
        // thread's dense array, not by a search each.
        crate::dense::with_values_by_id(values.iter().map(|valued| valued.pair()), |value_of| {
            for &id in staying {
                let value = value_of[id as usize];
                let key = (Reverse(value), names.place(id));
                while let Some((_, arrives, arrives_with)) = arriving.next_if(|(arrives, _, _)| *arrives < key) {
                    merged.push((arrives, arrives_with));
                }
                merged.push((id, value));
            }
        });
        merged.extend(arriving.map(|(_, id, value)| (id, value)));
        Self {
            first: with_ranks(merged[..merged.len().min(self.top)].iter().copied()),
            top: self.top,
            ranked: merged.len(),
            order: OnceLock::from(merged.into_iter().map(|(id, _)| id).collect::<Box<[u32]>>()),
            names,
            values,
        }
    }

    /// The first artists of this board once `movers` (ids ascending, with
    /// their new values) rose: the best of the first artists that did not
    /// move and the movers.
    fn first_after_rises(&self, names: &Names, movers: &[(u32, i64)]) -> Vec<Ranked> {
        let moved = |id: u32| movers.binary_search_by_key(&id, |(mover, _)| *mover).is_ok();
        let key = |id: u32, value: i64| ((Reverse(value), names.place(id)), id, value);
        let mut candidates: Vec<(Key, u32, i64)> = self
            .first
            .iter()
            .filter(|entry| !moved(entry.id))
            .map(|entry| key(entry.id, entry.value))
            .chain(
                movers
                    .iter()
                    .filter(|(_, value)| *value > 0)
                    .map(|&(id, value)| key(id, value)),
            )
            .collect();
        if candidates.len() > self.top {
            candidates.select_nth_unstable(self.top);
            candidates.truncate(self.top);
        }
        candidates.sort_unstable();
        ranks_of(candidates)
    }

    /// How many artists are ranked.
    pub fn ranked(&self) -> usize {
        self.ranked
    }

    /// The ranked artists at `positions` (within [`Self::ranked`]): from
    /// the first ones kept when they cover them, else from the whole order.
    pub fn page(&self, positions: Range<usize>) -> Cow<'_, [Ranked]> {
        if positions.end <= self.first.len() {
            return Cow::Borrowed(&self.first[positions]);
        }
        let order = self.order();
        let positions = positions.start.min(order.len())..positions.end.min(order.len());
        let Some(&first_id) = order.get(positions.start) else {
            return Cow::Owned(Vec::new());
        };
        // A standard competition rank is one more than the number of
        // artists with a higher value, all of them before it in order.
        let mut previous = self.value(first_id);
        let mut rank = order[..positions.start].partition_point(|&id| self.value(id) > previous) + 1;
        let mut page = Vec::with_capacity(positions.len());
        for at in positions {
            let id = order[at];
            let value = self.value(id);
            if value != previous {
                (rank, previous) = (at + 1, value);
            }
            page.push(Ranked {
                rank: u32::try_from(rank).unwrap_or(u32::MAX),
                id,
                value,
            });
        }
        Cow::Owned(page)
    }

    /// Whether the whole order is at hand: [`Self::sort`] sorts nothing.
    pub fn is_ordered(&self) -> bool {
        self.first.len() == self.ranked || self.order.get().is_some()
    }

    /// Sorts the whole order, if not yet sorted: milliseconds for a board
    /// of every artist (see [`Self::is_ordered`]).
    pub fn sort(&self) {
        self.order();
    }

    /// Every ranked artist's id, in order.
    fn order(&self) -> &[u32] {
        self.order.get_or_init(|| {
            if self.first.len() == self.ranked {
                return self.first.iter().map(|entry| entry.id).collect();
            }
            at_least(&self.names, self.values.iter().map(|valued| valued.pair()), 1)
                .into_iter()
                .map(|(_, id, _)| id)
                .collect()
        })
    }

    /// Every ranked artist, in order.
    pub fn entries(&self) -> Vec<Ranked> {
        self.page(0..self.ranked).into_owned()
    }

    /// How many artists have a value other than zero: the ranked ones and
    /// those below zero.
    pub fn valued(&self) -> usize {
        self.values.len()
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.name(id)
    }

    pub fn names(&self) -> &Arc<Names> {
        &self.names
    }

    /// The artist's value, zero when it has none.
    pub fn value(&self, id: u32) -> i64 {
        self.values
            .binary_search_by_key(&id, |other| other.id())
            .map_or(0, |at| self.values[at].value())
    }

    /// Where `artist` stands, if ranked: found by its key, not by a scan.
    pub fn position(&self, artist: &str) -> Option<usize> {
        let id = self.names.find(artist)?;
        let value = self.value(id);
        if value <= 0 {
            return None;
        }
        let wanted = (Reverse(value), self.names.place(id));
        let order = self.order();
        let at = order.partition_point(|&other| (Reverse(self.value(other)), self.names.place(other)) < wanted);
        (*order.get(at)? == id).then_some(at)
    }

    /// The position of the first entry ranked after an artist named
    /// `artist` with `value`, whether or not that artist is on the board.
    pub fn after(&self, value: i64, artist: &str) -> usize {
        self.order().partition_point(|&id| {
            let of = self.value(id);
            of > value || (of == value && self.name(id) <= artist)
        })
    }
}

/// The first `top` artists of `values` above zero, in rank order, with
/// their keys: the `top`-th highest value found by selection, then only the
/// artists at or above it sorted.
fn first_in_order(names: &Names, values: &[Valued], top: usize) -> Vec<(Key, u32, i64)> {
    let mut positive: Vec<i64> = values
        .iter()
        .map(|valued| valued.value())
        .filter(|value| *value > 0)
        .collect();
    if top == 0 || positive.is_empty() {
        return Vec::new();
    }
    let least = if positive.len() > top {
        let (_, nth, _) = positive.select_nth_unstable_by_key(top - 1, |value| Reverse(*value));
        *nth
    } else {
        1
    };
    let mut order = at_least(names, values.iter().map(|valued| valued.pair()), least);
    order.truncate(top);
    order
}

/// The artists of `values` above zero, in rank order, with their keys.
fn in_order(names: &Names, values: &[(u32, i64)]) -> Vec<(Key, u32, i64)> {
    at_least(names, values.iter().copied(), 1)
}

/// The artists of `values` whose value is `least` or more, in rank order,
/// with their keys.
fn at_least(names: &Names, values: impl Iterator<Item = (u32, i64)>, least: i64) -> Vec<(Key, u32, i64)> {
    let mut order: Vec<(Key, u32, i64)> = values
        .filter(|(_, value)| *value >= least)
        .map(|(id, value)| ((Reverse(value), names.place(id)), id, value))
        .collect();
    order.sort_unstable();
    order
}

/// Artists in rank order, with their keys, ranked.
fn ranks_of(order: Vec<(Key, u32, i64)>) -> Vec<Ranked> {
    with_ranks(order.into_iter().map(|(_, id, value)| (id, value)))
}

/// Standard competition ranks for `(id, value)` in order.
fn with_ranks(ordered: impl Iterator<Item = (u32, i64)>) -> Vec<Ranked> {
    let mut out: Vec<Ranked> = Vec::with_capacity(ordered.size_hint().0);
    for (index, (id, value)) in ordered.enumerate() {
        let rank = match out.last() {
            Some(previous) if previous.value == value => previous.rank,
            _ => u32::try_from(index + 1).unwrap_or(u32::MAX),
        };
        out.push(Ranked { rank, id, value });
    }
    out
}

/// A set of ids.
#[derive(Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn set(&mut self, id: u32) {
        let word = id as usize / 64;
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (id % 64);
    }

    fn get(&self, id: u32) -> bool {
        self.0
            .get(id as usize / 64)
            .is_some_and(|word| word & (1 << (id % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The first `count` of 80 names, in an order other than their ids',
    /// so that ties are broken by name and not by id.
    fn names(count: usize) -> Arc<Names> {
        let all: Vec<Arc<str>> = (0..count)
            .map(|i| Arc::from(format!("art_{:03}", (i * 37) % 1000)))
            .collect();
        Arc::new(Names::default().extended(&all))
    }

    /// Every artist whose value is not zero, by id ascending.
    fn values(board: &Board) -> Vec<(u32, i64)> {
        board.values.iter().map(|valued| valued.pair()).collect()
    }

    fn view(board: &Board) -> Vec<(u64, String, i64)> {
        board
            .entries()
            .iter()
            .map(|r| (u64::from(r.rank), board.name(r.id).to_owned(), r.value))
            .collect()
    }

    #[test]
    fn ranks_are_standard_competition_ranks_with_ties_by_name() {
        let names = Arc::new(Names::default().extended(&["", "b", "a", "c", "d", "z", "y"].map(Arc::from)));
        let board = Board::new(names, vec![(1, 5), (2, 5), (3, 9), (4, 1), (5, 0), (6, -2)]);
        let expected = [(1, "c", 9), (2, "a", 5), (2, "b", 5), (4, "d", 1)].map(|(r, a, v)| (r, a.to_owned(), v));
        assert_eq!(view(&board), expected);
        assert_eq!(
            values(&board),
            [(1, 5), (2, 5), (3, 9), (4, 1), (6, -2)],
            "below zero kept, zero not"
        );
        assert_eq!(board.position("b"), Some(2));
        assert_eq!(board.position("y"), None, "below zero: not ranked");
        assert_eq!(board.position("z"), None);
        assert_eq!(board.position("nobody"), None);
        assert_eq!(board.after(5, "a"), 2);
        assert_eq!(board.after(5, "aa"), 2, "an artist not on the board");
        assert_eq!(board.after(100, "a"), 0);
        assert_eq!(board.after(0, "a"), 4);
    }

    #[test]
    fn a_value_by_id_takes_twelve_bytes() {
        assert_eq!(std::mem::size_of::<Valued>(), 12);
    }

    #[test]
    fn the_whole_order_is_sorted_only_when_asked_for() {
        let values: Vec<(u32, i64)> = (0..80).map(|id| (id, i64::from(id % 7) + 1)).collect();
        let board = Board::with_top(names(80), values.clone(), 10);
        assert_eq!(board.ranked(), 80);
        assert!(!board.is_ordered(), "a first page of ten: nothing else sorted");
        assert_eq!(board.page(0..10).len(), 10);
        assert!(!board.is_ordered());
        assert_eq!(board.entries().len(), 80);
        assert!(board.is_ordered());
        assert!(
            Board::with_top(names(80), values, 100).is_ordered(),
            "every artist fits the first page"
        );
    }

    proptest! {
        /// A board moved by any changes is the board built from the values
        /// after them: the same order, ranks and values.
        #[test]
        fn a_moved_board_is_the_board_of_the_new_values(
            start in proptest::collection::vec((0_u32..60, -3_i64..8), 0..60),
            changes in proptest::collection::vec((0_u32..80, -6_i64..6), 0..40),
            rises_only in proptest::bool::ANY,
        ) {
            let before_names = names(60);
            let after_names = names(80);
            let dedup = |rows: Vec<(u32, i64)>| {
                let mut by_id = std::collections::BTreeMap::new();
                for (id, value) in rows {
                    *by_id.entry(id).or_insert(0) += value;
                }
                by_id
            };
            let start = dedup(start);
            // Only rises (as plays, votes and attendance) take a path of their own.
            let deltas: Vec<(u32, i64)> = dedup(changes)
                .into_iter()
                .map(|(id, delta)| (id, if rises_only { delta.abs() + 1 } else { delta }))
                .collect();
            // A small first page, so that selection, ties at its edge and
            // the whole order are all exercised.
            let board = Board::with_top(before_names, start.clone().into_iter().collect(), 5);
            let mut end = start;
            for (id, delta) in &deltas {
                *end.entry(*id).or_insert(0) += delta;
            }
            let rebuilt = Board::new(after_names.clone(), end.into_iter().collect());
            // Moved before anyone read past the first page, and after.
            let selected = board.moved(after_names.clone(), &deltas);
            prop_assert_eq!(selected.page(0..selected.ranked().min(5)), &rebuilt.entries()[..rebuilt.ranked().min(5)]);
            board.sort();
            let merged = board.moved(after_names, &deltas);
            prop_assert_eq!(merged.page(0..merged.ranked().min(5)), &rebuilt.entries()[..rebuilt.ranked().min(5)]);
            for moved in [selected, merged] {
                prop_assert_eq!(view(&moved), view(&rebuilt));
                // Pages deep in the order, sorted by the merge or not.
                let whole = rebuilt.entries();
                for start in 0..moved.ranked() {
                    let end = (start + 3).min(moved.ranked());
                    prop_assert_eq!(moved.page(start..end), &whole[start..end]);
                }
                prop_assert_eq!(values(&moved), values(&rebuilt));
                prop_assert_eq!(moved.valued(), rebuilt.valued());
                prop_assert_eq!(moved.ranked(), rebuilt.ranked());
                for entry in rebuilt.entries() {
                    let position = moved.position(moved.name(entry.id));
                    prop_assert_eq!(position.map(|p| moved.entries()[p].id), Some(entry.id));
                }
            }
        }

        /// The first page found by selection is the whole order's first page.
        #[test]
        fn the_selected_first_page_is_the_start_of_the_whole_order(
            values in proptest::collection::vec(-3_i64..6, 0..80),
            top in 0_usize..12,
        ) {
            let names = names(80);
            let values: Vec<(u32, i64)> = values.into_iter().enumerate().map(|(id, v)| (id as u32, v)).collect();
            let board = Board::with_top(names.clone(), values.clone(), top);
            let whole = Board::with_top(names, values, 1_000);
            let shown = board.ranked().min(top);
            prop_assert_eq!(board.ranked(), whole.ranked());
            prop_assert_eq!(board.page(0..shown), &whole.entries()[..shown]);
            prop_assert_eq!(board.entries(), whole.entries());
            // Any page of the whole order, its first rank found from the
            // values before it.
            let entries = whole.entries();
            for start in 0..board.ranked() {
                let end = (start + 3).min(board.ranked());
                prop_assert_eq!(board.page(start..end), &entries[start..end]);
            }
        }
    }
}

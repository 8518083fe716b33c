//! Every cell of an hour bucket, by artist, city, genre and live event, so
//! that an artist's or a live event's hourly series with a city or genre
//! filter is read from memory over every hour the state keeps. The slices by
//! city and genre are kept for the last 25 hours only: over a month they
//! would take a gigabyte, because each slice repeats every artist's sums.
//! The cells themselves are the rollups' hour rows, which DESIGN.md keeps
//! out of memory as too many; closed, they are packed as variable-length
//! integers grouped by artist, about 16 bytes a cell in resident memory at
//! the benchmark's scale (BENCHMARKS.md, tenth step). A live event's cells
//! are found through a short list of the runs of rows that are its.

use std::collections::HashMap;

use coliseum_domain::kpi::Kpis;
use integer_encoding::VarInt;

use super::bucket::CellSums;

/// Cities, genres and live events as small numbers, for every bucket's
/// cells to name in a byte or two. 0 is "none"; a word is never forgotten
/// (they are few beside the cells: places and live events, not fans).
#[derive(Debug, Default)]
pub struct Words(HashMap<Box<str>, u32>);

impl Words {
    pub fn intern(&mut self, word: &str) -> u32 {
        if word.is_empty() {
            return 0;
        }
        if let Some(&id) = self.0.get(word) {
            return id;
        }
        let id = u32::try_from(self.0.len() + 1).unwrap_or(u32::MAX);
        self.0.insert(word.into(), id);
        id
    }

    /// The memory it holds: the map's slots and the words.
    pub fn bytes(&self) -> usize {
        super::map_bytes::<(Box<str>, u32)>(self.0.capacity()) + self.0.keys().map(|word| word.len()).sum::<usize>()
    }

    /// The word's number; `None` for a word no cell named, and for `""`:
    /// the API refuses blank filters, and the slices hold no `""` either.
    pub fn find(&self, word: &str) -> Option<u32> {
        self.0.get(word).copied()
    }
}

/// A cell's place: its live event, city and genre, as [`Words`] numbers.
/// In this order, an artist's rows of one live event lie together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Place {
    pub live: u32,
    pub city: u32,
    pub genre: u32,
}

/// Which cells a read sums: those of the named city, genre and live event
/// (any, where not named).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub city: Option<u32>,
    pub genre: Option<u32>,
    pub live: Option<u32>,
}

impl Wanted {
    fn matches(&self, place: Place) -> bool {
        self.city.is_none_or(|c| c == place.city)
            && self.genre.is_none_or(|g| g == place.genre)
            && self.live.is_none_or(|l| l == place.live)
    }
}

/// The cells of one hour: those packed at the last pass, and those added
/// since in a map (every cell while the hour is young, a few late entries
/// afterwards). A late entry never unpacks the hour: packed figures have no
/// fixed width to change in place, and a backlog touching hundreds of
/// packed hours would unpack them all at once.
#[derive(Debug, Default)]
pub struct Cells {
    packed: Option<Packed>,
    added: HashMap<(u32, Place), CellSums>,
}

impl Cells {
    /// Adds to the cell of `artist` at `place`.
    pub fn add(&mut self, artist: u32, place: Place, kpis: &Kpis) {
        self.added.entry((artist, place)).or_default().add(kpis);
    }

    /// Packs the cells added since the last pass with those packed then.
    pub fn close(&mut self) {
        if self.added.is_empty() {
            return;
        }
        let mut rows: Vec<((u32, Place), CellSums)> = std::mem::take(&mut self.added).into_iter().collect();
        if let Some(packed) = self.packed.take() {
            rows.reserve(packed.ends.len());
            packed.for_each(|artist, place, kpis| {
                let mut sums = CellSums::default();
                sums.add(&kpis);
                rows.push(((artist, place), sums));
            });
        }
        rows.sort_unstable_by_key(|(key, _)| *key);
        // A cell both packed and added since is one row.
        let mut merged: Vec<((u32, Place), CellSums)> = Vec::with_capacity(rows.len());
        for (key, sums) in rows {
            match merged.last_mut() {
                Some((last, total)) if *last == key => total.add(&sums.kpis()),
                _ => merged.push((key, sums)),
            }
        }
        self.packed = Some(Packed::of(&merged));
    }

    /// The memory it holds beyond its own size: the packed cells, and the
    /// slots of the map of those added since.
    pub fn heap_bytes(&self) -> usize {
        self.packed.as_ref().map_or(0, Packed::heap_bytes)
            + super::map_bytes::<((u32, Place), CellSums)>(self.added.capacity())
    }

    /// The sums of `artist`'s cells (every artist's, with `None`) that
    /// match `wanted`; `None` when no cell does.
    pub fn sum(&self, artist: Option<u32>, wanted: &Wanted) -> Option<Kpis> {
        let mut sum: Option<Kpis> = None;
        let mut add = |place: Place, kpis: Kpis| {
            if wanted.matches(place) {
                *sum.get_or_insert_with(Kpis::default) += kpis;
            }
        };
        if let Some(packed) = &self.packed {
            match (artist, wanted.live) {
                (Some(artist), _) => packed.artist_rows(artist, &mut add),
                // The list of live events holds the rows of one (never 0).
                (None, Some(live)) if live != 0 => packed.live_rows(live, &mut add),
                (None, _) => packed.for_each(|_, place, kpis| add(place, kpis)),
            }
        }
        self.added
            .iter()
            .filter(|((of, _), _)| artist.is_none_or(|a| a == *of))
            .for_each(|((_, place), sums)| add(*place, sums.kpis()));
        sum
    }
}

/// Closed cells: each artist's rows one after the other in `bytes`, the
/// artists in order.
#[derive(Debug)]
pub struct Packed {
    artists: Artists,
    /// Where each artist's rows end in `bytes` (and the next one's begin).
    ends: Box<[u32]>,
    /// Per row: city, genre and live event, a mask of the figures that are
    /// not zero, then those figures, all variable-length.
    bytes: Box<[u8]>,
    /// (live event, start, end) in `bytes` of each run of consecutive rows
    /// of one live event (a run may go on from one artist to the next), in
    /// order.
    live: Box<[(u32, u32, u32)]>,
}

impl Packed {
    /// Packs rows sorted by artist, then place (live event first), each
    /// (artist, place) once.
    fn of(rows: &[((u32, Place), CellSums)]) -> Self {
        let mut artists = Vec::new();
        let mut ends = Vec::new();
        let mut bytes = Vec::with_capacity(rows.len() * 10);
        let mut live = Vec::new();
        for ((artist, place), sums) in rows {
            if artists.last() != Some(artist) {
                if !artists.is_empty() {
                    ends.push(offset(bytes.len()));
                }
                artists.push(*artist);
            }
            let start = offset(bytes.len());
            encode(&mut bytes, *place, sums.kpis());
            if place.live != 0 {
                let end = offset(bytes.len());
                // Rows sorted by artist, then live event: a run of one
                // live event's rows goes on while they follow each other.
                match live.last_mut() {
                    Some((of, _, run_end)) if *of == place.live && *run_end == start => *run_end = end,
                    _ => live.push((place.live, start, end)),
                }
            }
        }
        if !artists.is_empty() {
            ends.push(offset(bytes.len()));
        }
        live.sort_unstable();
        Self {
            artists: Artists::of(&artists),
            ends: ends.into(),
            bytes: bytes.into(),
            live: live.into(),
        }
    }

    fn heap_bytes(&self) -> usize {
        let artists = match &self.artists {
            Artists::Sorted(ids) => std::mem::size_of_val::<[u32]>(ids),
            Artists::Bits { words, before } => {
                std::mem::size_of_val::<[u64]>(words) + std::mem::size_of_val::<[u32]>(before)
            }
        };
        artists
            + std::mem::size_of_val::<[u32]>(&self.ends)
            + self.bytes.len()
            + std::mem::size_of_val::<[(u32, u32, u32)]>(&self.live)
    }

    /// The bytes of the artist at position `at`.
    fn rows_at(&self, at: usize) -> &[u8] {
        let start = if at == 0 { 0 } else { self.ends[at - 1] as usize };
        &self.bytes[start..self.ends[at] as usize]
    }

    fn artist_rows(&self, artist: u32, f: &mut impl FnMut(Place, Kpis)) {
        if let Some(at) = self.artists.position(artist) {
            decode_all(self.rows_at(at), f);
        }
    }

    fn live_rows(&self, live: u32, f: &mut impl FnMut(Place, Kpis)) {
        let from = self.live.partition_point(|(l, _, _)| *l < live);
        for (_, start, end) in self.live[from..].iter().take_while(|(l, _, _)| *l == live) {
            decode_all(&self.bytes[*start as usize..*end as usize], |place, kpis| {
                f(place, kpis)
            });
        }
    }

    /// Every row, with its artist.
    fn for_each(&self, mut f: impl FnMut(u32, Place, Kpis)) {
        for (at, of) in self.artists.iter().enumerate() {
            decode_all(self.rows_at(at), |place, kpis| f(of, place, kpis));
        }
    }
}

/// The distinct artists of an hour in order, and where each is among them.
/// A series reads one artist's position in each of 720 hours, and a binary
/// search of 12,000 ids is a dozen cache misses: a bitmap with a count of
/// the bits before each word finds it in two, and is smaller than the ids
/// while at least one id in 21 is there. Sparser hours keep the sorted ids.
#[derive(Debug)]
enum Artists {
    Sorted(Box<[u32]>),
    Bits {
        words: Box<[u64]>,
        /// The bits set in the words before each.
        before: Box<[u32]>,
    },
}

impl Artists {
    /// Of ids ascending, each once.
    fn of(ids: &[u32]) -> Self {
        let words = ids.last().map_or(0, |last| *last as usize / 64 + 1);
        if words * 12 > ids.len() * 4 {
            return Self::Sorted(ids.into());
        }
        let mut bits = vec![0_u64; words];
        for id in ids {
            bits[*id as usize / 64] |= 1 << (id % 64);
        }
        let mut count = 0_u32;
        let before = bits
            .iter()
            .map(|word| {
                let at = count;
                count += word.count_ones();
                at
            })
            .collect();
        Self::Bits {
            words: bits.into(),
            before,
        }
    }

    /// Where `id` is among the ids, if there.
    fn position(&self, id: u32) -> Option<usize> {
        match self {
            Self::Sorted(ids) => ids.binary_search(&id).ok(),
            Self::Bits { words, before } => {
                let (word, bit) = (id as usize / 64, id % 64);
                let bits = *words.get(word)?;
                (bits & (1 << bit) != 0)
                    .then(|| before[word] as usize + (bits & ((1 << bit) - 1)).count_ones() as usize)
            }
        }
    }

    /// The ids in order.
    fn iter(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            Self::Sorted(ids) => Box::new(ids.iter().copied()),
            Self::Bits { words, .. } => Box::new(words.iter().enumerate().flat_map(|(at, word)| {
                let mut word = *word;
                std::iter::from_fn(move || {
                    (word != 0).then(|| {
                        let bit = word.trailing_zeros();
                        word &= word - 1;
                        at as u32 * 64 + bit
                    })
                })
            })),
        }
    }
}

fn offset(len: usize) -> u32 {
    u32::try_from(len).expect("an hour's packed cells stay far below 4 GiB")
}

fn encode(bytes: &mut Vec<u8>, place: Place, kpis: Kpis) {
    let mut scratch = [0_u8; 10];
    let mut put = |bytes: &mut Vec<u8>, n: u64| {
        let len = n.encode_var(&mut scratch);
        bytes.extend_from_slice(&scratch[..len]);
    };
    put(bytes, u64::from(place.city));
    put(bytes, u64::from(place.genre));
    put(bytes, u64::from(place.live));
    let figures: [i64; 6] = kpis.into();
    let mask = figures
        .iter()
        .enumerate()
        .filter(|(_, f)| **f != 0)
        .fold(0_u8, |mask, (i, _)| mask | (1 << i));
    bytes.push(mask);
    for figure in figures.into_iter().filter(|f| *f != 0) {
        let len = figure.encode_var(&mut scratch);
        bytes.extend_from_slice(&scratch[..len]);
    }
}

/// Calls `f` with every row in `bytes`, which [`encode`] wrote.
fn decode_all(mut bytes: &[u8], mut f: impl FnMut(Place, Kpis)) {
    fn next<T: VarInt>(bytes: &mut &[u8]) -> T {
        let (n, len) = T::decode_var(bytes).expect("cells are decoded as they were encoded");
        *bytes = &bytes[len..];
        n
    }
    while !bytes.is_empty() {
        let place = Place {
            city: next(&mut bytes),
            genre: next(&mut bytes),
            live: next(&mut bytes),
        };
        let mask = bytes[0];
        bytes = &bytes[1..];
        let mut figures = [0_i64; 6];
        for (i, figure) in figures.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                *figure = next(&mut bytes);
            }
        }
        f(place, Kpis::from(figures));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn place(city: u32, genre: u32, live: u32) -> Place {
        Place { city, genre, live }
    }

    fn wanted(city: Option<u32>, genre: Option<u32>, live: Option<u32>) -> Wanted {
        Wanted { city, genre, live }
    }

    /// (artist, city, genre, live event) and the six figures.
    type Entry = ((u32, u32, u32, u32), [i64; 6]);

    fn figures(kpis: Kpis) -> [i64; 6] {
        kpis.into()
    }

    proptest! {
        /// Added, packed, or packed with late entries beside and then
        /// merged, the cells sum as a plain list of what was added does.
        #[test]
        fn packed_cells_sum_as_the_entries_added(
            entries in prop::collection::vec(
                ((0_u32..6, 0_u32..3, 0_u32..3, 0_u32..3), prop::array::uniform6(-3_000_000_000_i64..3_000_000_000)),
                1..60,
            ),
            late in ((0_u32..6, 0_u32..3, 0_u32..3, 0_u32..3), prop::array::uniform6(-5_i64..5)),
            asked in (prop::option::of(0_u32..6), prop::option::of(0_u32..3), prop::option::of(0_u32..3), prop::option::of(0_u32..3)),
        ) {
            // Counts are kept in 32 bits per cell, as in the slices.
            let entry = |figures: [i64; 6]| {
                let mut figures = figures;
                for i in [0, 1, 2, 4] {
                    figures[i] %= 1_000;
                }
                Kpis::from(figures)
            };
            let (artist, city, genre, live) = asked;
            let want = wanted(city, genre, live);
            let expected = |all: &[Entry]| {
                let matching: Vec<Kpis> = all
                    .iter()
                    .filter(|((a, c, g, l), _)| {
                        let is = |asked: Option<u32>, value: u32| asked.is_none_or(|asked| asked == value);
                        is(artist, *a) && is(city, *c) && is(genre, *g) && is(live, *l)
                    })
                    .map(|(_, f)| entry(*f))
                    .collect();
                (!matching.is_empty()).then(|| matching.into_iter().sum::<Kpis>())
            };
            let mut cells = Cells::default();
            for ((a, c, g, l), f) in &entries {
                cells.add(*a, place(*c, *g, *l), &entry(*f));
            }
            prop_assert_eq!(cells.sum(artist, &want).map(figures), expected(&entries).map(figures));
            cells.close();
            prop_assert!(cells.added.is_empty() && cells.packed.is_some());
            prop_assert_eq!(cells.sum(artist, &want).map(figures), expected(&entries).map(figures));
            let ((a, c, g, l), f) = late;
            cells.add(a, place(c, g, l), &entry(f));
            let mut all = entries.clone();
            all.push(late);
            prop_assert_eq!(cells.sum(artist, &want).map(figures), expected(&all).map(figures));
            cells.close();
            prop_assert_eq!(cells.sum(artist, &want).map(figures), expected(&all).map(figures));
        }
    }

    #[test]
    fn a_live_event_is_found_without_its_artists_other_rows() {
        let mut cells = Cells::default();
        let play = |n| Kpis {
            plays: n,
            ..Kpis::default()
        };
        cells.add(1, place(1, 1, 0), &play(1));
        cells.add(1, place(1, 1, 7), &play(2));
        cells.add(2, place(2, 1, 7), &play(4));
        cells.add(0, place(0, 0, 7), &play(8));
        cells.add(3, place(2, 1, 9), &play(16));
        cells.close();
        let plays = |artist, want| cells.sum(artist, &want).map(|k| k.plays);
        assert_eq!(plays(None, wanted(None, None, Some(7))), Some(14));
        assert_eq!(plays(None, wanted(Some(2), None, Some(7))), Some(4));
        assert_eq!(plays(Some(1), wanted(None, None, Some(7))), Some(2));
        assert_eq!(plays(Some(1), wanted(Some(1), None, None)), Some(3));
        assert_eq!(plays(None, wanted(None, None, Some(8))), None);
        assert_eq!(plays(Some(5), wanted(None, None, None)), None);
    }

    proptest! {
        /// Dense or sparse, the artists are found where the sorted ids
        /// have them, and listed in order.
        #[test]
        fn artists_are_found_at_their_place_dense_or_sparse(
            ids in prop::collection::btree_set(0_u32..4_000, 0..600),
            spread in 1_u32..40,
            asked in prop::collection::vec(0_u32..160_000, 20),
        ) {
            let ids: Vec<u32> = ids.into_iter().map(|id| id * spread).collect();
            let artists = Artists::of(&ids);
            prop_assert_eq!(artists.iter().collect::<Vec<_>>(), ids.clone());
            for id in ids.iter().copied().chain(asked) {
                prop_assert_eq!(artists.position(id), ids.binary_search(&id).ok(), "{}", id);
            }
        }
    }

    #[test]
    fn words_number_from_one_and_never_find_the_empty_word() {
        let mut words = Words::default();
        assert_eq!(words.intern(""), 0);
        assert_eq!(words.intern("lagos"), 1);
        assert_eq!(words.intern("jazz"), 2);
        assert_eq!(words.intern("lagos"), 1);
        assert_eq!(words.find("jazz"), Some(2));
        assert_eq!(words.find(""), None);
        assert_eq!(words.find("oslo"), None);
    }
}

//! One bucket of the hot state: per-artist sums in slices (everything, by
//! city, by genre, by city and genre, by live event). While a bucket can
//! still change often its sums live in hash maps; once it has closed they
//! are packed into sorted arrays, 28 bytes an artist (44 in a slice where
//! any artist's figure needs more than 32 bits) instead of about 110 with
//! a map's keys, spare room and control bytes: the state holds several
//! times the buckets in the same memory.
//!
//! A live event's entries are few, so it keeps one row per city, genre and
//! artist instead of slices, and a read of it with a city or a genre filter
//! sums the rows that match.
//!
//! An hour bucket also keeps its every cell (`cells`): once thinned out to
//! the `all` slice, it reads an artist's or a live event's sums with a city
//! or genre filter from them.

use std::borrow::Cow;
use std::collections::HashMap;

use coliseum_domain::kpi::Kpis;
use coliseum_store::CellKey;

use super::cells::{Cells, Place, Wanted};

/// Which slice of the rollups a read wants.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Slice {
    All,
    City(String),
    Genre(String),
    CityGenre(String, String),
    /// A live event's entries, of one city or genre or both when named.
    LiveEvent {
        live: String,
        city: Option<String>,
        genre: Option<String>,
    },
}

impl Slice {
    /// The bytes of the names it holds, for the caches that key by it.
    pub fn name_bytes(&self) -> usize {
        match self {
            Slice::All => 0,
            Slice::City(word) | Slice::Genre(word) => word.len(),
            Slice::CityGenre(city, genre) => city.len() + genre.len(),
            Slice::LiveEvent { live, city, genre } => {
                live.len() + city.as_ref().map_or(0, String::len) + genre.as_ref().map_or(0, String::len)
            }
        }
    }
}

/// One artist's figures in one slice of one bucket, in 40 bytes instead of
/// 48. Counts of one artist in one hour or day stay far below 2^31; money
/// and engagement keep 64 bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CellSums {
    revenue_minor: i64,
    engagement_tenths: i64,
    plays: i32,
    votes: i32,
    attendance: i32,
    revenue_entries: i32,
}

impl CellSums {
    pub(super) fn add(&mut self, kpis: &Kpis) {
        let narrow = |n: i64| i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX });
        self.revenue_minor += kpis.revenue_minor;
        self.engagement_tenths += kpis.engagement_tenths;
        self.plays = self.plays.saturating_add(narrow(kpis.plays));
        self.votes = self.votes.saturating_add(narrow(kpis.votes));
        self.attendance = self.attendance.saturating_add(narrow(kpis.attendance));
        self.revenue_entries = self.revenue_entries.saturating_add(narrow(kpis.revenue_entries));
    }

    pub fn kpis(&self) -> Kpis {
        Kpis {
            plays: i64::from(self.plays),
            votes: i64::from(self.votes),
            attendance: i64::from(self.attendance),
            revenue_minor: self.revenue_minor,
            revenue_entries: i64::from(self.revenue_entries),
            engagement_tenths: self.engagement_tenths,
        }
    }
}

/// A closed row's figures in 24 bytes instead of 40: money and engagement
/// of one artist in one slice of one hour or day fit in 32 bits but for
/// the rarest rows, and closed rows are most of the hot state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NarrowSums([i32; 6]);

impl NarrowSums {
    /// `sums` in 32 bits a figure, when every figure fits.
    fn of(sums: &CellSums) -> Option<Self> {
        Some(Self([
            i32::try_from(sums.revenue_minor).ok()?,
            i32::try_from(sums.engagement_tenths).ok()?,
            sums.plays,
            sums.votes,
            sums.attendance,
            sums.revenue_entries,
        ]))
    }

    fn widen(self) -> CellSums {
        let [
            revenue_minor,
            engagement_tenths,
            plays,
            votes,
            attendance,
            revenue_entries,
        ] = self.0;
        CellSums {
            revenue_minor: revenue_minor.into(),
            engagement_tenths: engagement_tenths.into(),
            plays,
            votes,
            attendance,
            revenue_entries,
        }
    }
}

/// The figures of closed rows: narrow when every row's fit, else whole.
#[derive(Debug, Clone)]
enum Rows {
    Narrow(Box<[NarrowSums]>),
    Wide(Box<[CellSums]>),
}

impl Rows {
    fn of(sums: Vec<CellSums>) -> Self {
        match sums.iter().map(NarrowSums::of).collect::<Option<Box<[_]>>>() {
            Some(narrow) => Self::Narrow(narrow),
            None => Self::Wide(sums.into()),
        }
    }

    fn get(&self, at: usize) -> CellSums {
        match self {
            Self::Narrow(rows) => rows[at].widen(),
            Self::Wide(rows) => rows[at],
        }
    }

    /// Adds to the row at `at` in place; `false`, leaving it as it was,
    /// when the sum no longer fits a narrow row.
    fn add(&mut self, at: usize, kpis: &Kpis) -> bool {
        match self {
            Self::Wide(rows) => rows[at].add(kpis),
            Self::Narrow(rows) => {
                let mut sums = rows[at].widen();
                sums.add(kpis);
                match NarrowSums::of(&sums) {
                    Some(narrow) => rows[at] = narrow,
                    None => return false,
                }
            }
        }
        true
    }

    fn for_each(&self, mut f: impl FnMut(usize, &CellSums)) {
        match self {
            Self::Narrow(rows) => rows.iter().enumerate().for_each(|(at, row)| f(at, &row.widen())),
            Self::Wide(rows) => rows.iter().enumerate().for_each(|(at, row)| f(at, row)),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Self::Narrow(rows) => std::mem::size_of_val::<[NarrowSums]>(rows),
            Self::Wide(rows) => std::mem::size_of_val::<[CellSums]>(rows),
        }
    }
}

/// Sums by key (an artist; a live event's place and artist): a map while
/// they change, sorted arrays once closed.
#[derive(Debug, Clone)]
enum ByKey<K> {
    Open(HashMap<K, CellSums>),
    Closed { keys: Box<[K]>, sums: Rows },
}

type ByArtist = ByKey<u32>;

impl<K> Default for ByKey<K> {
    fn default() -> Self {
        Self::Open(HashMap::new())
    }
}

impl<K: Copy + Ord + std::hash::Hash> ByKey<K> {
    /// Adds to a key's sums; says whether they are open (again) after. A
    /// closed set takes a late entry in place when its key is there and
    /// the sum still fits its row, and opens again otherwise.
    fn add(&mut self, key: K, kpis: &Kpis) -> bool {
        if let Self::Closed { keys, sums } = self {
            if let Ok(at) = keys.binary_search(&key)
                && sums.add(at, kpis)
            {
                return false;
            }
            let mut map = HashMap::with_capacity(keys.len() + 1);
            sums.for_each(|at, row| {
                map.insert(keys[at], *row);
            });
            *self = Self::Open(map);
        }
        match self {
            Self::Open(map) => map.entry(key).or_default().add(kpis),
            Self::Closed { .. } => {}
        }
        true
    }

    fn close(&mut self) {
        if let Self::Open(map) = self {
            let mut rows: Vec<(K, CellSums)> = map.drain().collect();
            rows.sort_unstable_by_key(|(key, _)| *key);
            *self = Self::Closed {
                keys: rows.iter().map(|(k, _)| *k).collect(),
                sums: Rows::of(rows.into_iter().map(|(_, s)| s).collect()),
            };
        }
    }

    fn get(&self, key: K) -> Option<CellSums> {
        match self {
            Self::Open(map) => map.get(&key).copied(),
            Self::Closed { keys, sums } => keys.binary_search(&key).ok().map(|at| sums.get(at)),
        }
    }

    fn for_each(&self, mut f: impl FnMut(K, &CellSums)) {
        match self {
            Self::Open(map) => map.iter().for_each(|(k, s)| f(*k, s)),
            Self::Closed { keys, sums } => sums.for_each(|at, s| f(keys[at], s)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Open(map) => map.len(),
            Self::Closed { keys, .. } => keys.len(),
        }
    }

    /// What it holds beyond its own size: a map's slots (a key, sums and a
    /// control byte each, used or not), or the two arrays.
    fn heap_bytes(&self) -> usize {
        match self {
            Self::Open(map) => super::map_bytes::<(K, CellSums)>(map.capacity()),
            Self::Closed { keys, sums } => std::mem::size_of_val::<[K]>(keys) + sums.bytes(),
        }
    }
}

/// Per-artist sums of one slice of one bucket, and their total (which also
/// holds entries without an artist).
#[derive(Debug, Default, Clone)]
pub struct SliceSums {
    pub total: Kpis,
    by_artist: ByArtist,
}

impl SliceSums {
    /// Adds; says whether the slice is open (again) afterwards.
    fn add(&mut self, artist: u32, kpis: Kpis) -> bool {
        self.total += kpis;
        self.by_artist.add(artist, &kpis)
    }

    pub fn get(&self, artist: u32) -> Option<CellSums> {
        self.by_artist.get(artist)
    }

    /// Calls `f` with every artist's sums, in no particular order.
    pub fn for_each(&self, f: impl FnMut(u32, &CellSums)) {
        self.by_artist.for_each(f);
    }

    pub fn len(&self) -> usize {
        self.by_artist.len()
    }

    fn heap_bytes(&self) -> usize {
        self.by_artist.heap_bytes()
    }
}

/// The memory a map of slices by name holds: its slots, the names, and
/// what each value holds beyond its slot (`heap_bytes`).
fn named_bytes<V>(map: &HashMap<Box<str>, V>, heap_bytes: impl Fn(&V) -> usize) -> usize {
    super::map_bytes::<(Box<str>, V)>(map.capacity())
        + map
            .iter()
            .map(|(name, value)| name.len() + heap_bytes(value))
            .sum::<usize>()
}

/// The (city, genre) pairs a bucket's live events name, each once, so that
/// a live event's row names its pair in four bytes.
#[derive(Debug, Default)]
struct Places {
    pairs: Vec<(Box<str>, Box<str>)>,
    /// By city, then genre: looked up without allocating.
    index: HashMap<Box<str>, HashMap<Box<str>, u32>>,
}

impl Places {
    fn intern(&mut self, city: &str, genre: &str) -> u32 {
        if let Some(&place) = self.index.get(city).and_then(|genres| genres.get(genre)) {
            return place;
        }
        let place = u32::try_from(self.pairs.len()).unwrap_or(u32::MAX);
        self.pairs.push((city.into(), genre.into()));
        if !self.index.contains_key(city) {
            self.index.insert(city.into(), HashMap::new());
        }
        if let Some(genres) = self.index.get_mut(city) {
            genres.insert(genre.into(), place);
        }
        place
    }

    fn heap_bytes(&self) -> usize {
        self.pairs.capacity() * std::mem::size_of::<(Box<str>, Box<str>)>()
            + self
                .pairs
                .iter()
                .map(|(city, genre)| city.len() + genre.len())
                .sum::<usize>()
            + named_bytes(&self.index, |genres| named_bytes(genres, |_| 0))
    }

    /// Whether `place` is of `city` and `genre` (any, when not named).
    fn matches(&self, place: u32, city: Option<&str>, genre: Option<&str>) -> bool {
        let (of_city, of_genre) = &self.pairs[place as usize];
        city.is_none_or(|city| **of_city == *city) && genre.is_none_or(|genre| **of_genre == *genre)
    }
}

/// One live event's sums by place (city and genre) and artist.
#[derive(Debug, Default)]
struct LiveEventRows(ByKey<(u32, u32)>);

impl LiveEventRows {
    /// Adds; says whether the rows are open (again) afterwards.
    fn add(&mut self, place: u32, artist: u32, kpis: &Kpis) -> bool {
        self.0.add((place, artist), kpis)
    }

    /// The sums of the rows of `city` and `genre` (any, when not named).
    fn slice(&self, places: &Places, city: Option<&str>, genre: Option<&str>) -> SliceSums {
        let mut slice = SliceSums::default();
        self.0.for_each(|(place, artist), sums| {
            if places.matches(place, city, genre) {
                slice.add(artist, sums.kpis());
            }
        });
        slice
    }
}

/// The slice named `value`, made if new: the key is allocated only then.
fn slice_of<'a>(slices: &'a mut HashMap<Box<str>, SliceSums>, value: &str) -> &'a mut SliceSums {
    if !slices.contains_key(value) {
        slices.insert(value.into(), SliceSums::default());
    }
    slices.get_mut(value).expect("present: inserted just above")
}

#[derive(Debug, Default)]
pub struct Bucket {
    all: SliceSums,
    city: HashMap<Box<str>, SliceSums>,
    genre: HashMap<Box<str>, SliceSums>,
    /// By city, then genre.
    city_genre: HashMap<Box<str>, HashMap<Box<str>, SliceSums>>,
    live_event: HashMap<Box<str>, LiveEventRows>,
    /// The places the live events' rows name.
    places: Places,
    /// Every cell by artist and place (hour buckets only), kept when the
    /// slices are thinned out.
    cells: Cells,
    /// Only the `all` slice and the cells are kept (older hour buckets).
    thin: bool,
    /// Every slice and the cells packed; a late entry of a new artist
    /// opens its slice again, and any entry into an hour adds to its cells
    /// unpacked: either clears this until the next pass packs them.
    closed: bool,
}

impl Bucket {
    /// Adds a cell's figures; `place` names it in the bucket's cells, which
    /// only hour buckets keep.
    pub fn add(&mut self, key: &CellKey, artist: u32, kpis: Kpis, place: Option<Place>) {
        let mut opened = self.all.add(artist, kpis);
        if let Some(place) = place {
            // The cells take every entry unpacked, until the next pass.
            self.cells.add(artist, place, &kpis);
            opened = true;
        }
        if !self.thin {
            for (slices, value) in [(&mut self.city, &key.city), (&mut self.genre, &key.genre)] {
                if !value.is_empty() {
                    opened |= slice_of(slices, value).add(artist, kpis);
                }
            }
            if !key.live_event.is_empty() {
                let place = self.places.intern(&key.city, &key.genre);
                if !self.live_event.contains_key(key.live_event.as_str()) {
                    self.live_event
                        .insert(key.live_event.as_str().into(), LiveEventRows::default());
                }
                if let Some(rows) = self.live_event.get_mut(key.live_event.as_str()) {
                    opened |= rows.add(place, artist, &kpis);
                }
            }
            if !key.city.is_empty() && !key.genre.is_empty() {
                if !self.city_genre.contains_key(key.city.as_str()) {
                    self.city_genre.insert(key.city.as_str().into(), HashMap::new());
                }
                if let Some(genres) = self.city_genre.get_mut(key.city.as_str()) {
                    opened |= slice_of(genres, &key.genre).add(artist, kpis);
                }
            }
        }
        self.closed &= !opened;
    }

    /// How many rows summing `slice` here reads (a live event's rows of
    /// every city and genre), without summing them.
    pub fn slice_rows(&self, slice: &Slice) -> usize {
        match slice {
            Slice::LiveEvent { live, .. } if !self.thin => {
                self.live_event.get(live.as_str()).map_or(0, |rows| rows.0.len())
            }
            _ => self.kept_slice(slice).map_or(0, SliceSums::len),
        }
    }

    /// The sums of `slice`: kept as they are, or summed from a live event's
    /// rows.
    pub fn slice(&self, slice: &Slice) -> Option<Cow<'_, SliceSums>> {
        match slice {
            Slice::LiveEvent { live, city, genre } if !self.thin => {
                let rows = self.live_event.get(live.as_str())?;
                let sums = rows.slice(&self.places, city.as_deref(), genre.as_deref());
                (sums.len() > 0).then_some(Cow::Owned(sums))
            }
            _ => self.kept_slice(slice).map(Cow::Borrowed),
        }
    }

    /// The sums of `slice` as the bucket keeps them; `None` for a live
    /// event's, which are summed from its rows, and for every slice but
    /// `all` once the bucket is thin.
    fn kept_slice(&self, slice: &Slice) -> Option<&SliceSums> {
        if self.thin && *slice != Slice::All {
            return None;
        }
        match slice {
            Slice::All => Some(&self.all),
            Slice::City(city) => self.city.get(city.as_str()),
            Slice::Genre(genre) => self.genre.get(genre.as_str()),
            Slice::CityGenre(city, genre) => self.city_genre.get(city.as_str())?.get(genre.as_str()),
            Slice::LiveEvent { .. } => None,
        }
    }

    /// `artist`'s sums (or every artist's, with `None`) over the cells that
    /// match `wanted`: what the slices a thin bucket no longer keeps held.
    /// `None` when no cell matches.
    pub fn cells_sum(&self, artist: Option<u32>, wanted: &Wanted) -> Option<Kpis> {
        self.cells.sum(artist, wanted)
    }

    /// Keeps the `all` slice and the cells only.
    pub fn thin_out(&mut self) {
        if !self.thin {
            self.thin = true;
            self.city = HashMap::new();
            self.genre = HashMap::new();
            self.city_genre = HashMap::new();
            self.live_event = HashMap::new();
            self.places = Places::default();
        }
    }

    pub fn is_thin(&self) -> bool {
        self.thin
    }

    /// The memory its slices hold beyond the bucket's own size, estimated
    /// from their lengths and capacities: what the allocator adds is not
    /// counted.
    pub fn slices_bytes(&self) -> usize {
        self.all.heap_bytes()
            + named_bytes(&self.city, SliceSums::heap_bytes)
            + named_bytes(&self.genre, SliceSums::heap_bytes)
            + named_bytes(&self.city_genre, |genres| named_bytes(genres, SliceSums::heap_bytes))
            + named_bytes(&self.live_event, |rows| rows.0.heap_bytes())
            + self.places.heap_bytes()
    }

    /// The memory its cells hold, estimated likewise.
    pub fn cells_bytes(&self) -> usize {
        self.cells.heap_bytes()
    }

    /// Packs every slice into sorted arrays and the cells with what they
    /// took since, unless that was done and nothing was opened since.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.all.by_artist.close();
        let nested = self.city_genre.values_mut().flat_map(|genres| genres.values_mut());
        self.city
            .values_mut()
            .chain(self.genre.values_mut())
            .chain(nested)
            .for_each(|slice| slice.by_artist.close());
        self.live_event.values_mut().for_each(|rows| rows.0.close());
        self.cells.close();
        self.closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coliseum_store::Grain;

    fn key(city: &str, genre: &str, live_event: &str) -> CellKey {
        CellKey {
            grain: Grain::Hour,
            bucket: 1,
            artist: "a".into(),
            city: city.into(),
            genre: genre.into(),
            live_event: live_event.into(),
        }
    }

    fn plays(n: i64) -> Kpis {
        Kpis {
            plays: n,
            ..Kpis::default()
        }
    }

    fn view(bucket: &Bucket, slice: &Slice) -> Vec<(u32, i64)> {
        let mut rows = Vec::new();
        if let Some(sums) = bucket.slice(slice) {
            sums.for_each(|artist, s| rows.push((artist, s.kpis().plays)));
        }
        rows.sort_unstable();
        rows
    }

    #[test]
    fn slices_sum_the_same_whether_open_closed_or_opened_again() {
        let mut bucket = Bucket::default();
        bucket.add(&key("lagos", "jazz", "l1"), 2, plays(1), None);
        bucket.add(&key("lagos", "pop", ""), 1, plays(2), None);
        bucket.add(&key("", "jazz", ""), 3, plays(4), None);
        let check = |bucket: &Bucket| {
            assert_eq!(view(bucket, &Slice::All), vec![(1, 2), (2, 1), (3, 4)]);
            assert_eq!(view(bucket, &Slice::City("lagos".into())), vec![(1, 2), (2, 1)]);
            assert_eq!(view(bucket, &Slice::Genre("jazz".into())), vec![(2, 1), (3, 4)]);
            assert_eq!(
                view(bucket, &Slice::CityGenre("lagos".into(), "jazz".into())),
                vec![(2, 1)]
            );
            assert_eq!(view(bucket, &live("l1", None, None)), vec![(2, 1)]);
            assert_eq!(bucket.slice(&Slice::All).map(|s| s.total.plays), Some(7));
        };
        check(&bucket);
        bucket.close();
        check(&bucket);
        assert!(bucket.closed);
        // A late entry of an artist already there stays packed…
        bucket.add(&key("lagos", "jazz", "l1"), 2, plays(10), None);
        assert!(bucket.closed);
        assert_eq!(
            view(&bucket, &Slice::CityGenre("lagos".into(), "jazz".into())),
            vec![(2, 11)]
        );
        // …and a new one opens its slices again, until the next close.
        bucket.add(&key("lagos", "jazz", ""), 9, plays(5), None);
        assert!(!bucket.closed);
        assert_eq!(
            view(&bucket, &Slice::City("lagos".into())),
            vec![(1, 2), (2, 11), (9, 5)]
        );
        bucket.close();
        assert_eq!(
            view(&bucket, &Slice::City("lagos".into())),
            vec![(1, 2), (2, 11), (9, 5)]
        );
        assert_eq!(
            bucket.slice(&Slice::City("lagos".into())).map(|s| s.get(9)),
            Some(Some(CellSums {
                plays: 5,
                ..CellSums::default()
            }))
        );
    }

    fn revenue(minor: i64) -> Kpis {
        Kpis {
            revenue_minor: minor,
            revenue_entries: 1,
            ..Kpis::default()
        }
    }

    fn revenues(slice: &SliceSums) -> Vec<(u32, i64)> {
        let mut rows = Vec::new();
        slice.for_each(|artist, sums| rows.push((artist, sums.kpis().revenue_minor)));
        rows.sort_unstable();
        rows
    }

    #[test]
    fn closed_rows_are_narrow_until_a_figure_outgrows_32_bits_and_sum_exactly_either_way() {
        let big = i64::from(i32::MAX);
        let mut slice = SliceSums::default();
        slice.add(1, revenue(5));
        slice.add(2, revenue(big - 1));
        slice.by_artist.close();
        let narrow = slice.heap_bytes();
        assert!(matches!(
            &slice.by_artist,
            ByKey::Closed {
                sums: Rows::Narrow(_),
                ..
            }
        ));
        assert_eq!(narrow, 2 * (4 + 24));
        // A late entry that still fits stays in place…
        assert!(!slice.add(2, revenue(1)));
        assert_eq!(slice.get(2).map(|s| s.kpis().revenue_minor), Some(big));
        // …one that outgrows the row opens the slice again, losing nothing.
        assert!(slice.add(2, revenue(1)));
        assert_eq!(revenues(&slice), vec![(1, 5), (2, big + 1)]);
        slice.by_artist.close();
        assert!(matches!(
            &slice.by_artist,
            ByKey::Closed {
                sums: Rows::Wide(_),
                ..
            }
        ));
        assert_eq!(revenues(&slice), vec![(1, 5), (2, big + 1)]);
        assert_eq!(slice.get(2).map(|s| s.kpis().revenue_entries), Some(3));
        assert!(slice.heap_bytes() > narrow);
        // Whole rows take late entries in place, below zero too.
        assert!(!slice.add(1, revenue(-big * 3)));
        assert_eq!(revenues(&slice), vec![(1, 5 - big * 3), (2, big + 1)]);
        assert_eq!(slice.total.revenue_minor, 6 - big * 2);
    }

    fn live(live: &str, city: Option<&str>, genre: Option<&str>) -> Slice {
        Slice::LiveEvent {
            live: live.into(),
            city: city.map(Into::into),
            genre: genre.map(Into::into),
        }
    }

    #[test]
    fn a_live_event_is_read_whole_or_by_city_and_genre() {
        let mut bucket = Bucket::default();
        bucket.add(&key("lagos", "jazz", "l1"), 2, plays(1), None);
        bucket.add(&key("lagos", "pop", "l1"), 2, plays(2), None);
        bucket.add(&key("accra", "jazz", "l1"), 3, plays(4), None);
        bucket.add(&key("accra", "jazz", "l1"), 3, plays(8), None);
        bucket.add(&key("", "", "l1"), 0, plays(16), None);
        bucket.add(&key("lagos", "jazz", "l2"), 5, plays(32), None);
        bucket.close();
        assert_eq!(view(&bucket, &live("l1", None, None)), vec![(0, 16), (2, 3), (3, 12)]);
        assert_eq!(view(&bucket, &live("l1", Some("lagos"), None)), vec![(2, 3)]);
        assert_eq!(view(&bucket, &live("l1", None, Some("jazz"))), vec![(2, 1), (3, 12)]);
        assert_eq!(view(&bucket, &live("l1", Some("accra"), Some("jazz"))), vec![(3, 12)]);
        assert_eq!(view(&bucket, &live("l2", None, None)), vec![(5, 32)]);
        assert!(bucket.slice(&live("l1", Some("accra"), Some("pop"))).is_none());
        assert!(bucket.slice(&live("l3", None, None)).is_none());
        assert_eq!(
            bucket.slice(&live("l1", None, None)).map(|s| s.total.plays),
            Some(31),
            "the total holds the entries without an artist"
        );
        // Late entries: in place when their row is there, opening the
        // rows again when it is new.
        bucket.add(&key("accra", "jazz", "l1"), 3, plays(64), None);
        assert!(bucket.closed);
        bucket.add(&key("oslo", "jazz", "l1"), 3, plays(128), None);
        assert!(!bucket.closed);
        bucket.close();
        assert_eq!(view(&bucket, &live("l1", None, Some("jazz"))), vec![(2, 1), (3, 204)]);
        assert_eq!(view(&bucket, &live("l1", Some("oslo"), None)), vec![(3, 128)]);
    }

    #[test]
    fn a_thin_bucket_keeps_the_whole_and_its_cells() {
        let place = |city, genre, live| Some(Place { city, genre, live });
        let mut bucket = Bucket::default();
        bucket.add(&key("lagos", "jazz", "l1"), 1, plays(1), place(1, 2, 3));
        bucket.thin_out();
        bucket.add(&key("lagos", "jazz", "l1"), 2, plays(4), place(1, 2, 3));
        bucket.add(&key("accra", "jazz", ""), 2, plays(16), place(4, 2, 0));
        assert_eq!(view(&bucket, &Slice::All), vec![(1, 1), (2, 20)]);
        assert!(bucket.slice(&Slice::City("lagos".into())).is_none());
        assert!(bucket.slice(&live("l1", None, None)).is_none());
        assert!(bucket.is_thin());
        let lagos = Wanted {
            city: Some(1),
            genre: None,
            live: None,
        };
        let l1 = Wanted {
            city: None,
            genre: None,
            live: Some(3),
        };
        bucket.close();
        assert_eq!(bucket.cells_sum(Some(2), &lagos).map(|k| k.plays), Some(4));
        assert_eq!(bucket.cells_sum(None, &l1).map(|k| k.plays), Some(5));
        assert_eq!(bucket.cells_sum(Some(3), &lagos), None);
    }
}

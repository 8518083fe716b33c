//! One bucket of the hot state: per-artist sums in slices (everything, by
//! city, by genre, by city and genre, by live event). While a bucket can
//! still change often its sums live in hash maps; once it has closed they
//! are packed into sorted arrays, 44 bytes an artist instead of about 110
//! with a map's keys, spare room and control bytes: the state holds twice
//! the buckets in the same memory.

use std::collections::HashMap;

use coliseum_domain::kpi::Kpis;
use coliseum_store::CellKey;

/// Which slice of the rollups a read wants.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Slice {
    All,
    City(String),
    Genre(String),
    CityGenre(String, String),
    LiveEvent(String),
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
    fn add(&mut self, kpis: &Kpis) {
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

/// Per-artist sums: a map while they change, sorted arrays once closed.
#[derive(Debug)]
enum ByArtist {
    Open(HashMap<u32, CellSums>),
    Closed { artists: Box<[u32]>, sums: Box<[CellSums]> },
}

impl Default for ByArtist {
    fn default() -> Self {
        Self::Open(HashMap::new())
    }
}

impl ByArtist {
    /// Adds to an artist's sums. A closed slice takes a late entry in place
    /// when the artist is there, and opens again when it is new.
    fn add(&mut self, artist: u32, kpis: &Kpis) -> bool {
        if let Self::Closed { artists, sums } = self {
            if let Ok(i) = artists.binary_search(&artist) {
                sums[i].add(kpis);
                return false;
            }
            let map = artists.iter().copied().zip(sums.iter().copied()).collect();
            *self = Self::Open(map);
        }
        match self {
            Self::Open(map) => map.entry(artist).or_default().add(kpis),
            Self::Closed { .. } => {}
        }
        true
    }

    fn close(&mut self) {
        if let Self::Open(map) = self {
            let mut rows: Vec<(u32, CellSums)> = map.drain().collect();
            rows.sort_unstable_by_key(|(artist, _)| *artist);
            *self = Self::Closed {
                artists: rows.iter().map(|(a, _)| *a).collect(),
                sums: rows.iter().map(|(_, s)| *s).collect(),
            };
        }
    }

    fn get(&self, artist: u32) -> Option<&CellSums> {
        match self {
            Self::Open(map) => map.get(&artist),
            Self::Closed { artists, sums } => artists.binary_search(&artist).ok().map(|i| &sums[i]),
        }
    }

    fn for_each(&self, mut f: impl FnMut(u32, &CellSums)) {
        match self {
            Self::Open(map) => map.iter().for_each(|(a, s)| f(*a, s)),
            Self::Closed { artists, sums } => artists.iter().zip(sums.iter()).for_each(|(a, s)| f(*a, s)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Open(map) => map.len(),
            Self::Closed { artists, .. } => artists.len(),
        }
    }
}

/// Per-artist sums of one slice of one bucket, and their total (which also
/// holds entries without an artist).
#[derive(Debug, Default)]
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
        self.by_artist.get(artist).copied()
    }

    /// Calls `f` with every artist's sums, in no particular order.
    pub fn for_each(&self, f: impl FnMut(u32, &CellSums)) {
        self.by_artist.for_each(f);
    }

    pub fn len(&self) -> usize {
        self.by_artist.len()
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
    live_event: HashMap<Box<str>, SliceSums>,
    /// Only the `all` slice is kept (older hour buckets).
    thin: bool,
    /// Every slice packed; a late entry of a new artist opens its slice
    /// again, and clears this until the next pass closes it.
    closed: bool,
}

impl Bucket {
    pub fn add(&mut self, key: &CellKey, artist: u32, kpis: Kpis) {
        let mut opened = self.all.add(artist, kpis);
        if !self.thin {
            for (slices, value) in [
                (&mut self.city, &key.city),
                (&mut self.genre, &key.genre),
                (&mut self.live_event, &key.live_event),
            ] {
                if !value.is_empty() {
                    opened |= slice_of(slices, value).add(artist, kpis);
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

    pub fn slice(&self, slice: &Slice) -> Option<&SliceSums> {
        if self.thin && *slice != Slice::All {
            return None;
        }
        match slice {
            Slice::All => Some(&self.all),
            Slice::City(city) => self.city.get(city.as_str()),
            Slice::Genre(genre) => self.genre.get(genre.as_str()),
            Slice::CityGenre(city, genre) => self.city_genre.get(city.as_str())?.get(genre.as_str()),
            Slice::LiveEvent(live) => self.live_event.get(live.as_str()),
        }
    }

    /// Keeps the `all` slice only.
    pub fn thin_out(&mut self) {
        if !self.thin {
            self.thin = true;
            self.city = HashMap::new();
            self.genre = HashMap::new();
            self.city_genre = HashMap::new();
            self.live_event = HashMap::new();
        }
    }

    pub fn is_thin(&self) -> bool {
        self.thin
    }

    /// Packs every slice into sorted arrays, unless that was done and no
    /// new artist arrived since.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.all.by_artist.close();
        let nested = self.city_genre.values_mut().flat_map(|genres| genres.values_mut());
        self.city
            .values_mut()
            .chain(self.genre.values_mut())
            .chain(self.live_event.values_mut())
            .chain(nested)
            .for_each(|slice| slice.by_artist.close());
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
        bucket.add(&key("lagos", "jazz", "l1"), 2, plays(1));
        bucket.add(&key("lagos", "pop", ""), 1, plays(2));
        bucket.add(&key("", "jazz", ""), 3, plays(4));
        let check = |bucket: &Bucket| {
            assert_eq!(view(bucket, &Slice::All), vec![(1, 2), (2, 1), (3, 4)]);
            assert_eq!(view(bucket, &Slice::City("lagos".into())), vec![(1, 2), (2, 1)]);
            assert_eq!(view(bucket, &Slice::Genre("jazz".into())), vec![(2, 1), (3, 4)]);
            assert_eq!(
                view(bucket, &Slice::CityGenre("lagos".into(), "jazz".into())),
                vec![(2, 1)]
            );
            assert_eq!(view(bucket, &Slice::LiveEvent("l1".into())), vec![(2, 1)]);
            assert_eq!(bucket.slice(&Slice::All).map(|s| s.total.plays), Some(7));
        };
        check(&bucket);
        bucket.close();
        check(&bucket);
        assert!(bucket.closed);
        // A late entry of an artist already there stays packed…
        bucket.add(&key("lagos", "jazz", "l1"), 2, plays(10));
        assert!(bucket.closed);
        assert_eq!(
            view(&bucket, &Slice::CityGenre("lagos".into(), "jazz".into())),
            vec![(2, 11)]
        );
        // …and a new one opens its slices again, until the next close.
        bucket.add(&key("lagos", "jazz", ""), 9, plays(5));
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

    #[test]
    fn a_thin_bucket_keeps_only_the_whole() {
        let mut bucket = Bucket::default();
        bucket.add(&key("lagos", "jazz", "l1"), 1, plays(1));
        bucket.thin_out();
        bucket.add(&key("lagos", "jazz", "l1"), 2, plays(1));
        assert_eq!(view(&bucket, &Slice::All), vec![(1, 1), (2, 1)]);
        assert!(bucket.slice(&Slice::City("lagos".into())).is_none());
        assert!(bucket.is_thin());
    }
}

//! The hot state: the recent KPI rollups in memory, so that reads of the
//! common shapes never touch SQL. It keeps the last 25 hour buckets and the
//! last 31 day buckets, each split into coarse slices (everything, by city,
//! by genre, by live event) of per-artist sums, never the full cube
//! (DESIGN.md: the cube does not compress). Loaded from the rollup tables at
//! start-up, advanced by every batch the processor commits.
//!
//! Every read sees one applied batch or the next, never half of one: the
//! state changes under one write lock per batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use coliseum_domain::clock::Clock;
use coliseum_domain::kpi::Kpis;
use coliseum_store::{CellKey, Grain, ProcessedBatch, Store, StoreError};

use crate::processor::{AppliedSink, Watermark};

/// Hour buckets kept: the current one and the 24 before (`24h` needs 23).
pub const HOURS_KEPT: i64 = 25;
/// Day buckets kept: the current one and the 30 before (`30d` needs 29).
pub const DAYS_KEPT: i64 = 31;

/// Which slice of the rollups a read wants: at most one dimension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Slice {
    All,
    City(String),
    Genre(String),
    LiveEvent(String),
}

/// One artist's figures in one slice of one bucket, in 40 bytes instead of
/// 48: the per-artist maps are most of the hot state. Counts of one artist in
/// one hour or day stay far below 2^31; money and engagement keep 64 bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct CellSums {
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

    fn kpis(&self) -> Kpis {
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

/// Per-artist sums of one slice of one bucket, and their total (which also
/// holds entries without an artist).
#[derive(Debug, Default)]
struct SliceSums {
    total: Kpis,
    by_artist: HashMap<u32, CellSums>,
}

impl SliceSums {
    fn add(&mut self, artist: u32, kpis: Kpis) {
        self.total += kpis;
        self.by_artist.entry(artist).or_default().add(&kpis);
    }
}

#[derive(Debug, Default)]
struct Bucket {
    all: SliceSums,
    city: HashMap<Box<str>, SliceSums>,
    genre: HashMap<Box<str>, SliceSums>,
    live_event: HashMap<Box<str>, SliceSums>,
}

impl Bucket {
    fn add(&mut self, key: &CellKey, artist: u32, kpis: Kpis) {
        self.all.add(artist, kpis);
        for (slices, value) in [
            (&mut self.city, &key.city),
            (&mut self.genre, &key.genre),
            (&mut self.live_event, &key.live_event),
        ] {
            if !value.is_empty() {
                slices.entry(value.as_str().into()).or_default().add(artist, kpis);
            }
        }
    }

    fn slice(&self, slice: &Slice) -> Option<&SliceSums> {
        match slice {
            Slice::All => Some(&self.all),
            Slice::City(city) => self.city.get(city.as_str()),
            Slice::Genre(genre) => self.genre.get(genre.as_str()),
            Slice::LiveEvent(live) => self.live_event.get(live.as_str()),
        }
    }
}

/// Artist ids as small numbers: the per-artist maps are the bulk of the
/// state, and a `u32` key is a fraction of a `String`. Index 0 is "no artist".
#[derive(Debug)]
struct Artists {
    index: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Default for Artists {
    fn default() -> Self {
        let none: Arc<str> = Arc::from("");
        Self {
            index: HashMap::from([(none.clone(), 0)]),
            names: vec![none],
        }
    }
}

impl Artists {
    fn intern(&mut self, artist: &str) -> u32 {
        if let Some(&index) = self.index.get(artist) {
            return index;
        }
        let index = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        let name: Arc<str> = Arc::from(artist);
        self.names.push(name.clone());
        self.index.insert(name, index);
        index
    }
}

#[derive(Debug)]
struct Inner {
    watermark: Watermark,
    /// Counts applied batches: a cached read is current while it matches.
    version: u64,
    artists: Artists,
    hours: BTreeMap<i64, Bucket>,
    days: BTreeMap<i64, Bucket>,
    /// The version that last changed each bucket: a sum over buckets none
    /// of which changed since it was taken is still right.
    hour_changed: BTreeMap<i64, u64>,
    day_changed: BTreeMap<i64, u64>,
}

/// Per-artist sums over a run of buckets, and the newest change they include.
type TileSums = (u64, Arc<Vec<(Arc<str>, Kpis)>>);

/// Per-artist rows kept in cached tile sums at most (64 bytes each); beyond
/// it the cache starts over. A day of every artist is 50,000 rows.
const CACHED_TILE_ROWS: usize = 2_000_000;

impl Inner {
    fn add_cells<'a>(&mut self, cells: impl Iterator<Item = (&'a CellKey, Kpis)>, first_hour: i64, first_day: i64) {
        // Every change is a new version, the one stamped on what it touched.
        self.version += 1;
        let version = self.version;
        for (key, kpis) in cells {
            let (buckets, changed, first) = match key.grain {
                Grain::Hour => (&mut self.hours, &mut self.hour_changed, first_hour),
                Grain::Day => (&mut self.days, &mut self.day_changed, first_day),
            };
            // Late entries for older buckets live in SQL only.
            if key.bucket >= first {
                let artist = self.artists.intern(&key.artist);
                buckets.entry(key.bucket).or_default().add(key, artist, kpis);
                changed.insert(key.bucket, version);
            }
        }
        self.hours = self.hours.split_off(&first_hour);
        self.days = self.days.split_off(&first_day);
        self.hour_changed = self.hour_changed.split_off(&first_hour);
        self.day_changed = self.day_changed.split_off(&first_day);
    }

    fn sum_by_artist(&self, grain: Grain, first: i64, last: i64, slice: &Slice) -> Vec<(Arc<str>, Kpis)> {
        let buckets = match grain {
            Grain::Hour => &self.hours,
            Grain::Day => &self.days,
        };
        let mut sums: HashMap<u32, Kpis> = HashMap::new();
        for bucket in buckets.range(first..=last).filter_map(|(_, b)| b.slice(slice)) {
            for (&artist, cell) in &bucket.by_artist {
                if artist != 0 {
                    *sums.entry(artist).or_default() += cell.kpis();
                }
            }
        }
        sums.into_iter()
            .map(|(artist, kpis)| (self.artists.names[artist as usize].clone(), kpis))
            .collect()
    }

    /// The newest version that changed any of buckets `first..=last`.
    fn changed(&self, grain: Grain, first: i64, last: i64) -> u64 {
        let changed = match grain {
            Grain::Hour => &self.hour_changed,
            Grain::Day => &self.day_changed,
        };
        changed.range(first..=last).map(|(_, v)| *v).max().unwrap_or(0)
    }
}

/// Per-artist sums read from the hot state, with what they are as of.
#[derive(Debug, Clone)]
pub struct ArtistSums {
    pub version: u64,
    pub watermark: Watermark,
    /// Artists with any figure in the slice (never the "no artist" bucket).
    pub sums: Arc<Vec<(Arc<str>, Kpis)>>,
}

/// The hot state. Cheap to share; reads take a read lock for the sums only.
#[derive(Debug)]
pub struct HotState {
    clock: Arc<dyn Clock>,
    inner: RwLock<Inner>,
    /// Sums over runs of buckets, reused while none of their buckets changes:
    /// a 30-day board under live traffic re-sums only today's hours.
    tiles: std::sync::Mutex<TileCache>,
}

/// Tile sums by (grain, first, last, slice), and how many rows they hold.
#[derive(Debug, Default)]
struct TileCache {
    sums: HashMap<(Grain, i64, i64, Slice), TileSums>,
    rows: usize,
}

impl HotState {
    /// Loads the kept buckets from the store, as of its cursor.
    pub async fn load(store: &dyn Store, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let now = clock.now();
        let state = store.pipeline_state().await?;
        let hot = Self {
            inner: RwLock::new(Inner {
                watermark: Watermark {
                    seq: state.processed_seq,
                    as_of: now,
                },
                version: 0,
                artists: Artists::default(),
                hours: BTreeMap::new(),
                days: BTreeMap::new(),
                hour_changed: BTreeMap::new(),
                day_changed: BTreeMap::new(),
            }),
            clock,
            tiles: std::sync::Mutex::new(TileCache::default()),
        };
        // One bucket at a time: the cells of a month would take several times
        // the memory of the state they build.
        let (first_hour, first_day) = hot.kept_from();
        for (grain, first) in [(Grain::Hour, first_hour), (Grain::Day, first_day)] {
            let last = grain.bucket_of(now) + 1;
            for bucket in first..=last {
                let cells = store.kpi_cells(grain, bucket, bucket + 1).await?;
                hot.add_cells(cells.iter().map(|(k, v)| (k, *v)));
            }
        }
        Ok(hot)
    }

    /// The first hour and day bucket kept now.
    fn kept_from(&self) -> (i64, i64) {
        let now = self.clock.now();
        (
            Grain::Hour.bucket_of(now) - HOURS_KEPT + 1,
            Grain::Day.bucket_of(now) - DAYS_KEPT + 1,
        )
    }

    fn add_cells<'a>(&self, cells: impl Iterator<Item = (&'a CellKey, Kpis)>) {
        let (first_hour, first_day) = self.kept_from();
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.add_cells(cells, first_hour, first_day);
    }

    pub fn watermark(&self) -> Watermark {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).watermark
    }

    pub fn version(&self) -> u64 {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).version
    }

    /// Whether buckets `first..=last` of `grain` are all kept.
    pub fn covers(&self, grain: Grain, first: i64) -> bool {
        let (first_hour, first_day) = self.kept_from();
        match grain {
            Grain::Hour => first >= first_hour,
            Grain::Day => first >= first_day,
        }
    }

    /// Per-artist sums over buckets `first..=last` of `grain` in `slice`, or
    /// `None` when those buckets are not all kept.
    pub fn by_artist(&self, grain: Grain, first: i64, last: i64, slice: &Slice) -> Option<ArtistSums> {
        if !self.covers(grain, first) {
            return None;
        }
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let changed = inner.changed(grain, first, last);
        let key = (grain, first, last, slice.clone());
        let cached = self
            .tiles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sums
            .get(&key)
            .cloned();
        let sums = match cached {
            Some((stamp, sums)) if stamp == changed => sums,
            _ => {
                let sums = Arc::new(inner.sum_by_artist(grain, first, last, slice));
                let mut tiles = self.tiles.lock().unwrap_or_else(|p| p.into_inner());
                if tiles.rows + sums.len() > CACHED_TILE_ROWS {
                    *tiles = TileCache::default();
                }
                tiles.rows += sums.len();
                if let Some((_, replaced)) = tiles.sums.insert(key, (changed, sums.clone())) {
                    tiles.rows -= replaced.len();
                }
                sums
            }
        };
        Some(ArtistSums {
            version: inner.version,
            watermark: inner.watermark,
            sums,
        })
    }

    /// Sums per bucket over `first..=last` of `grain` in `slice`, for one
    /// artist or (with `None`) for everything in the slice; `None` when those
    /// buckets are not all kept. Buckets without figures are left out.
    pub fn series(
        &self,
        grain: Grain,
        first: i64,
        last: i64,
        slice: &Slice,
        artist: Option<&str>,
    ) -> Option<(Watermark, Vec<(i64, Kpis)>)> {
        if !self.covers(grain, first) {
            return None;
        }
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let buckets = match grain {
            Grain::Hour => &inner.hours,
            Grain::Day => &inner.days,
        };
        let artist = match artist {
            None => None,
            Some(artist) => match inner.artists.index.get(artist) {
                Some(&index) => Some(index),
                None => return Some((inner.watermark, Vec::new())),
            },
        };
        let points = buckets
            .range(first..=last)
            .filter_map(|(&bucket, b)| {
                let sums = b.slice(slice)?;
                let kpis = match artist {
                    None => sums.total,
                    Some(index) => sums.by_artist.get(&index)?.kpis(),
                };
                Some((bucket, kpis))
            })
            .collect();
        Some((inner.watermark, points))
    }
}

impl AppliedSink for HotState {
    fn applied(&self, batch: &Arc<ProcessedBatch>, watermark: Watermark) {
        let (first_hour, first_day) = self.kept_from();
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.add_cells(batch.cells.iter().map(|(k, v)| (k, *v)), first_hour, first_day);
        inner.watermark = watermark;
    }

    fn advanced(&self, watermark: Watermark) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.watermark = watermark;
    }
}

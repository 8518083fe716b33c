//! The hot state: the recent KPI rollups in memory, so that reads of the
//! common shapes never touch SQL. It keeps the last 31 day buckets and the
//! last 25 hour buckets split into slices (everything, by city, by genre,
//! by city and genre, by live event) of per-artist sums, and the hour
//! buckets of the 30 days before with the `all` slice only, beside their
//! cells packed by artist (`cells`): enough for one artist's or live
//! event's hourly series with any filter, never the slices of every artist
//! (DESIGN.md: the cube does not compress). Closed buckets are packed
//! (`bucket`). Beside them, the platform totals (`totals`). Loaded from the
//! rollup tables at start-up, advanced by every batch the processor commits.
//!
//! Every read sees one applied batch or the next, never half of one: the
//! state changes under one write lock per batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use coliseum_domain::clock::Clock;
use coliseum_domain::kpi::Kpis;
use coliseum_store::{CellKey, Grain, ProcessedBatch, Rollups, StoreError};
use time::OffsetDateTime;

use crate::bounded::Bounded;
use crate::journal::{Journal, Since};
use crate::packed::{PackedSums, Packer};
use crate::processor::{AppliedSink, Watermark};
use crate::totals::Totals;

mod bucket;
mod cells;

use bucket::Bucket;
pub use bucket::Slice;
use cells::{Place, Wanted, Words};

/// Hour buckets kept with every slice: the current one and the 24 before
/// (`24h` needs 23).
pub const HOURS_KEPT: i64 = 25;
/// Hour buckets kept for the `all` slice: the current one and 30 days
/// before, for the hour edges of custom ranges and an artist's hourly series
/// over 7 or 30 days.
pub const ALL_HOURS_KEPT: i64 = 31 * 24;
/// Day buckets kept: the current one and the 30 before (`30d` needs 29).
pub const DAYS_KEPT: i64 = 31;
/// Hour buckets this far behind the current one are packed: entries up to
/// a few hours late are common, and each new artist in a packed slice opens
/// it again until the next pass, as any entry does an hour's cells.
const HOURS_OPEN: i64 = 7;
/// Likewise for days: today and yesterday stay open.
const DAYS_OPEN: i64 = 2;
/// Seconds between packing passes.
const PACK_EVERY_S: i64 = 30;

/// The bytes of a hash map's slots for `capacity` entries of `T`: the
/// table keeps an eighth of its slots free, and a control byte for each.
pub(crate) fn map_bytes<T>(capacity: usize) -> usize {
    capacity.div_ceil(7) * 8 * (std::mem::size_of::<T>() + 1)
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
    /// The memory it holds: the map's slots, the list, and each name once
    /// (with the two counts of its `Arc`).
    fn bytes(&self) -> usize {
        map_bytes::<(Arc<str>, u32)>(self.index.capacity())
            + self.names.capacity() * std::mem::size_of::<Arc<str>>()
            + self
                .names
                .iter()
                .map(|name| name.len() + 2 * std::mem::size_of::<usize>())
                .sum::<usize>()
    }

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
    /// The cities, genres and live events the hour buckets' cells name.
    words: Words,
    hours: BTreeMap<i64, Bucket>,
    days: BTreeMap<i64, Bucket>,
    /// The version that last changed each bucket: a sum over buckets none
    /// of which changed since it was taken is still right.
    hour_changed: BTreeMap<i64, u64>,
    day_changed: BTreeMap<i64, u64>,
    /// The version that last changed an hour or day bucket older than the
    /// kept ones (a late entry): sums of those read from SQL are right while
    /// it has not moved.
    late_changed: (u64, u64),
    /// The first hour and day buckets the rollups hold any cell of
    /// (`i64::MAX` while they hold none): what is older is not asked of SQL.
    /// A young deployment's `all` and long custom ranges reach far past
    /// its first entries.
    first_held: (i64, i64),
    /// Platform totals per city and genre combination, kept longer than the
    /// per-artist buckets.
    totals: Totals,
    /// When closed buckets were last packed, in Unix seconds.
    packed_at: i64,
    /// The batches applied lately, for reads as of a past boundary.
    journal: Journal,
}

/// The first buckets kept, per-artist and in the platform totals, and the
/// current ones.
#[derive(Debug, Clone, Copy)]
struct Kept {
    /// With every slice.
    hour: i64,
    /// With the `all` slice.
    hour_all: i64,
    day: i64,
    total_hour: i64,
    total_day: i64,
    current_hour: i64,
    current_day: i64,
    /// Now, in Unix seconds.
    now_s: i64,
}

/// Per-artist sums over a run of buckets, and the newest change they include.
type TileSums = (u64, Arc<PackedSums>);

/// One point per bucket with figures, oldest first.
pub type Points = Arc<[(i64, Kpis)]>;

/// An artist's or a live event's series over a run of buckets in a slice,
/// by (grain, first, last, slice, interned artist), with the newest change
/// it includes.
type SeriesCache = Bounded<(Grain, i64, i64, Slice, Option<u32>), (u64, Points)>;

/// Bytes a cached series holds per point, and besides its points (its key
/// and slot): an empty series still counts.
const POINT_BYTES: usize = std::mem::size_of::<(i64, Kpis)>();
const SERIES_BYTES: usize = 128;

/// What cached tile sums may hold until [`HotState::set_tile_cache_budget`]
/// says otherwise: the tile share of the read caches' default budget
/// ([`crate::reads::CacheBudget`]).
const DEFAULT_TILE_CACHE_BYTES: usize = crate::reads::CacheBudget::DEFAULT.tiles;
/// The same for cached series ([`HotState::set_series_cache_budget`]).
const DEFAULT_SERIES_CACHE_BYTES: usize = crate::reads::CacheBudget::DEFAULT.series;

impl Inner {
    fn add_cells<'a>(&mut self, cells: impl Iterator<Item = (&'a CellKey, Kpis)>, kept: Kept) {
        // Every change is a new version, the one stamped on what it touched.
        self.version += 1;
        let version = self.version;
        for (key, kpis) in cells {
            let (buckets, changed, first, late, totals_first, first_held) = match key.grain {
                Grain::Hour => (
                    &mut self.hours,
                    &mut self.hour_changed,
                    kept.hour_all,
                    &mut self.late_changed.0,
                    kept.total_hour,
                    &mut self.first_held.0,
                ),
                Grain::Day => (
                    &mut self.days,
                    &mut self.day_changed,
                    kept.day,
                    &mut self.late_changed.1,
                    kept.total_day,
                    &mut self.first_held.1,
                ),
            };
            *first_held = (*first_held).min(key.bucket);
            self.totals.add(key, kpis, totals_first);
            // Late entries for older buckets live in SQL (and the totals) only.
            if key.bucket >= first {
                let artist = self.artists.intern(&key.artist);
                let place = (key.grain == Grain::Hour).then(|| Place {
                    city: self.words.intern(&key.city),
                    genre: self.words.intern(&key.genre),
                    live: self.words.intern(&key.live_event),
                });
                let bucket = buckets.entry(key.bucket).or_insert_with(|| {
                    let mut bucket = Bucket::default();
                    if key.grain == Grain::Hour && key.bucket < kept.hour {
                        bucket.thin_out();
                    }
                    bucket
                });
                bucket.add(key, artist, kpis, place);
                changed.insert(key.bucket, version);
            } else {
                *late = version;
            }
        }
        self.totals.prune(kept.total_hour, kept.total_day);
        self.hours = self.hours.split_off(&kept.hour_all);
        self.days = self.days.split_off(&kept.day);
        self.hour_changed = self.hour_changed.split_off(&kept.hour_all);
        self.day_changed = self.day_changed.split_off(&kept.day);
        // Hours leave the full window newest last: thin them until one
        // that already is.
        for (_, bucket) in self.hours.range_mut(..kept.hour).rev() {
            if bucket.is_thin() {
                break;
            }
            bucket.thin_out();
        }
        // Packing at most every so often: a backlog of old entries touches
        // closed buckets batch after batch, and packing after each batch
        // would sort them again every time.
        if kept.now_s >= self.packed_at + PACK_EVERY_S {
            self.pack(kept);
            self.report_bytes();
        }
    }

    fn pack(&mut self, kept: Kept) {
        self.packed_at = kept.now_s;
        for (_, bucket) in self.hours.range_mut(..kept.current_hour - HOURS_OPEN + 1) {
            bucket.close();
        }
        for (_, bucket) in self.days.range_mut(..kept.current_day - DAYS_OPEN + 1) {
            bucket.close();
        }
    }

    /// Sets `coliseum_hot_state_bytes` by part, estimated from the lengths
    /// and capacities of what each holds; the buckets' own fixed sizes,
    /// spare room inside B-tree nodes and the allocator's overhead are not
    /// counted.
    fn report_bytes(&self) {
        let sum =
            |buckets: &BTreeMap<i64, Bucket>, part: fn(&Bucket) -> usize| -> usize { buckets.values().map(part).sum() };
        let parts = [
            ("day_slices", sum(&self.days, Bucket::slices_bytes)),
            ("hour_slices", sum(&self.hours, Bucket::slices_bytes)),
            ("hour_cells", sum(&self.hours, Bucket::cells_bytes)),
            ("totals", self.totals.bytes()),
            ("journal", self.journal.bytes()),
            ("names", self.artists.bytes() + self.words.bytes()),
        ];
        for (part, bytes) in parts {
            metrics::gauge!("coliseum_hot_state_bytes", "part" => part).set(bytes as f64);
        }
    }

    fn sum_by_artist(&self, grain: Grain, first: i64, last: i64, slice: &Slice) -> PackedSums {
        let buckets = match grain {
            Grain::Hour => &self.hours,
            Grain::Day => &self.days,
        };
        let mut slices = buckets
            .range(first..=last)
            .filter_map(|(_, b)| b.slice(slice))
            .peekable();
        let Some(only) = slices.next() else {
            return PackedSums::default();
        };
        if slices.peek().is_none() {
            let mut rows = Packer::with_capacity(only.len());
            only.for_each(|artist, cell| {
                if artist != 0 {
                    rows.push(artist, &cell.kpis());
                }
            });
            return rows.finish();
        }
        crate::dense::sum_by_id(self.artists.names.len(), |add| {
            for bucket in std::iter::once(only).chain(slices) {
                bucket.for_each(|artist, cell| {
                    if artist != 0 {
                        add(artist, &cell.kpis());
                    }
                });
            }
        })
    }

    /// The cells `slice` holds, in the words' numbers; `None` when it names
    /// a word no cell has.
    fn wanted(&self, slice: &Slice) -> Option<Wanted> {
        let find = |word: Option<&String>| match word {
            None => Some(None),
            Some(word) => self.words.find(word).map(Some),
        };
        let (city, genre, live) = match slice {
            Slice::All => (None, None, None),
            Slice::City(city) => (Some(city), None, None),
            Slice::Genre(genre) => (None, Some(genre), None),
            Slice::CityGenre(city, genre) => (Some(city), Some(genre), None),
            Slice::LiveEvent { live, city, genre } => (city.as_ref(), genre.as_ref(), Some(live)),
        };
        Some(Wanted {
            city: find(city)?,
            genre: find(genre)?,
            live: find(live)?,
        })
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
    /// The newest change of the buckets summed.
    pub changed: u64,
    /// Artists (interned ids, see [`HotState::names`]) with any figure in
    /// the slice, never the "no artist" bucket.
    pub sums: Arc<PackedSums>,
}

/// The hot state. Cheap to share; reads take a read lock for the sums only.
#[derive(Debug)]
pub struct HotState {
    clock: Arc<dyn Clock>,
    inner: RwLock<Inner>,
    /// Sums over runs of buckets, reused while none of their buckets changes:
    /// a 30-day board under live traffic re-sums only today's hours.
    tiles: std::sync::Mutex<TileCache>,
    /// Series over runs of buckets, reused while none of their buckets
    /// changes: a dashboard's KPI series is read again every few seconds,
    /// and summing a month of hours from cells on each read was most of
    /// what a KPI read cost.
    series: std::sync::Mutex<SeriesCache>,
    /// The artists' names and their order, for ranking by id.
    names: std::sync::Mutex<Arc<Names>>,
}

/// The interned artists' names, and each id's place in name order, so that
/// boards break ties by artist without comparing strings.
#[derive(Debug, Default)]
pub struct Names {
    names: Vec<Arc<str>>,
    /// Ids in name order.
    by_name: Vec<u32>,
    /// Per id, its place in `by_name`.
    place: Vec<u32>,
}

impl Names {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn name(&self, id: u32) -> &Arc<str> {
        &self.names[id as usize]
    }

    /// The id's place in name order: ids compare by name as their places do.
    pub fn place(&self, id: u32) -> u32 {
        self.place[id as usize]
    }

    /// The id named `name`, if any.
    pub fn find(&self, name: &str) -> Option<u32> {
        let at = self.by_name.partition_point(|id| &*self.names[*id as usize] < name);
        let id = *self.by_name.get(at)?;
        (&*self.names[id as usize] == name).then_some(id)
    }

    /// These names and `more` after them (ids from `self.len()` on).
    pub(crate) fn extended(&self, more: &[Arc<str>]) -> Names {
        let mut names = self.names.clone();
        let mut by_name = self.by_name.clone();
        for name in more {
            let id = u32::try_from(names.len()).unwrap_or(u32::MAX);
            let at = by_name.partition_point(|other| *names[*other as usize] < **name);
            by_name.insert(at, id);
            names.push(name.clone());
        }
        let mut place = vec![0; names.len()];
        for (at, id) in by_name.iter().enumerate() {
            place[*id as usize] = u32::try_from(at).unwrap_or(u32::MAX);
        }
        Names { names, by_name, place }
    }
}

/// Tile sums by (grain, first, last, slice), weighed by their bytes;
/// beyond the budget the least recently read make room. Sums of buckets
/// still open to late entries dropped here may live on in the cached
/// boards made from them, which count them against their own budget.
type TileCache = Bounded<(Grain, i64, i64, Slice), TileSums>;

impl HotState {
    /// Loads the kept buckets from the store, as of its cursor.
    pub async fn load(store: &dyn Rollups, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let now = clock.now();
        let state = store.pipeline_state().await?;
        // Read after the cursor: whatever a batch up to it wrote is seen
        // here, and every later batch comes through `applied`.
        let first_held = (
            store.first_bucket(Grain::Hour).await?.unwrap_or(i64::MAX),
            store.first_bucket(Grain::Day).await?.unwrap_or(i64::MAX),
        );
        let hot = Self {
            inner: RwLock::new(Inner {
                watermark: Watermark {
                    seq: state.processed_seq,
                    as_of: now,
                },
                version: 0,
                artists: Artists::default(),
                words: Words::default(),
                hours: BTreeMap::new(),
                days: BTreeMap::new(),
                hour_changed: BTreeMap::new(),
                day_changed: BTreeMap::new(),
                late_changed: (0, 0),
                first_held,
                totals: Totals::default(),
                packed_at: 0,
                journal: Journal::default(),
            }),
            clock,
            tiles: std::sync::Mutex::new(TileCache::new(DEFAULT_TILE_CACHE_BYTES)),
            series: std::sync::Mutex::new(SeriesCache::new(DEFAULT_SERIES_CACHE_BYTES)),
            names: std::sync::Mutex::new(Arc::new(Names::default())),
        };
        // One bucket at a time: the cells of a month would take several times
        // the memory of the state they build. The platform totals reach
        // further back than the per-artist buckets.
        let kept = hot.kept();
        for (grain, first) in [(Grain::Hour, kept.total_hour), (Grain::Day, kept.total_day)] {
            let last = grain.bucket_of(now) + 1;
            for bucket in first..=last {
                let cells = store.kpi_cells(grain, bucket, bucket + 1).await?;
                hot.add_cells(cells.iter().map(|(k, v)| (k, *v)));
                // Packed as it loads: a month of open maps would take twice
                // the memory of the state it ends up as.
                let mut inner = hot.inner.write().unwrap_or_else(|p| p.into_inner());
                inner.pack(kept);
            }
        }
        // Once the whole state is loaded, not after each of its buckets.
        hot.inner.read().unwrap_or_else(|p| p.into_inner()).report_bytes();
        Ok(hot)
    }

    /// Bounds the cached tile sums to `bytes` from now on.
    pub fn set_tile_cache_budget(&self, bytes: usize) {
        let mut tiles = self.tiles.lock().unwrap_or_else(|p| p.into_inner());
        let dropped = tiles.set_budget(bytes);
        crate::reads::report_cache_bytes("tiles", tiles.weight());
        drop(tiles);
        drop(dropped);
    }

    /// Bounds the cached series to `bytes` from now on.
    pub fn set_series_cache_budget(&self, bytes: usize) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let dropped = series.set_budget(bytes);
        crate::reads::report_cache_bytes("series", series.weight());
        drop(series);
        drop(dropped);
    }

    fn kept(&self) -> Kept {
        let now = self.clock.now();
        let (hour, day) = (Grain::Hour.bucket_of(now), Grain::Day.bucket_of(now));
        let (total_hour, total_day) = Totals::kept_from(hour, day);
        Kept {
            hour: hour - HOURS_KEPT + 1,
            hour_all: hour - ALL_HOURS_KEPT + 1,
            day: day - DAYS_KEPT + 1,
            total_hour,
            total_day,
            current_hour: hour,
            current_day: day,
            now_s: now.unix_timestamp(),
        }
    }

    fn add_cells<'a>(&self, cells: impl Iterator<Item = (&'a CellKey, Kpis)>) {
        let kept = self.kept();
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.add_cells(cells, kept);
    }

    /// The first bucket of `grain` whose per-artist sums are kept in `slice`.
    pub fn first_kept(&self, grain: Grain, slice: &Slice) -> i64 {
        let kept = self.kept();
        match grain {
            Grain::Hour if *slice == Slice::All => kept.hour_all,
            Grain::Hour => kept.hour,
            Grain::Day => kept.day,
        }
    }

    /// The first bucket of `grain` the rollups hold any cell of
    /// (`i64::MAX` while none): sums over older buckets are nothing.
    pub fn first_held(&self, grain: Grain) -> i64 {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        match grain {
            Grain::Hour => inner.first_held.0,
            Grain::Day => inner.first_held.1,
        }
    }

    /// The first bucket of `grain` the platform totals keep.
    pub fn first_total(&self, grain: Grain) -> i64 {
        let kept = self.kept();
        match grain {
            Grain::Hour => kept.total_hour,
            Grain::Day => kept.total_day,
        }
    }

    /// The newest version that changed any of buckets `first..=last` of
    /// `grain`, buckets older than the kept ones included: what a sum of
    /// them read from SQL is stamped with, to know when it is stale.
    pub fn stamp(&self, grain: Grain, first: i64, last: i64) -> u64 {
        let first_kept = self.first_kept(grain, &Slice::All);
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let from = first.max(first_kept);
        let kept = if from <= last {
            inner.changed(grain, from, last)
        } else {
            0
        };
        let late = match grain {
            Grain::Hour => inner.late_changed.0,
            Grain::Day => inner.late_changed.1,
        };
        if first < first_kept { kept.max(late) } else { kept }
    }

    /// Platform sums per bucket over `first..=last` of `grain` for a city,
    /// a genre, both or neither; `None` when those buckets are not all kept.
    pub fn platform_series(
        &self,
        grain: Grain,
        first: i64,
        last: i64,
        city: Option<&str>,
        genre: Option<&str>,
    ) -> Option<(Watermark, Vec<(i64, Kpis)>)> {
        if first < self.first_total(grain) {
            return None;
        }
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        Some((inner.watermark, inner.totals.series(grain, first, last, city, genre)))
    }

    pub fn watermark(&self) -> Watermark {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).watermark
    }

    pub fn version(&self) -> u64 {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).version
    }

    /// What batches up to `version` applied after `instant`, and the
    /// watermark then (see [`Journal::since`]).
    pub fn since(&self, instant: OffsetDateTime, version: u64) -> Since {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .journal
            .since(instant, version)
    }

    /// Whether buckets from `first` on of `grain` are all kept in `slice`.
    pub fn covers(&self, grain: Grain, first: i64, slice: &Slice) -> bool {
        first >= self.first_kept(grain, slice)
    }

    /// The first bucket of `grain` from which [`Self::series`] answers an
    /// artist's or a live event's series in `slice`: older hours keep no
    /// slice but `all`, and their cells answer for one artist or event.
    pub fn first_series_kept(&self, grain: Grain, slice: &Slice) -> i64 {
        match grain {
            Grain::Hour => self.kept().hour_all,
            Grain::Day => self.first_kept(grain, slice),
        }
    }

    /// The first bucket of `grain` still open to late entries (the last
    /// hours, today and yesterday): what live traffic changes besides the
    /// current bucket.
    pub fn first_open(&self, grain: Grain) -> i64 {
        let kept = self.kept();
        match grain {
            Grain::Hour => kept.current_hour - HOURS_OPEN + 1,
            Grain::Day => kept.current_day - DAYS_OPEN + 1,
        }
    }

    /// The newest change of buckets `first..=last` of `grain`, or `None`
    /// when they are not all kept in `slice`: sums of them made at the same
    /// stamp still hold.
    pub fn tile_stamp(&self, grain: Grain, first: i64, last: i64, slice: &Slice) -> Option<u64> {
        if !self.covers(grain, first, slice) {
            return None;
        }
        Some(
            self.inner
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .changed(grain, first, last),
        )
    }

    /// Per-artist sums over buckets `first..=last` of `grain` in `slice`, or
    /// `None` when those buckets are not all kept.
    pub fn by_artist(&self, grain: Grain, first: i64, last: i64, slice: &Slice) -> Option<ArtistSums> {
        if !self.covers(grain, first, slice) {
            return None;
        }
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let (version, watermark) = (inner.version, inner.watermark);
        let changed = inner.changed(grain, first, last);
        let key = (grain, first, last, slice.clone());
        if let Some(sums) = self.cached_tile(&key, changed) {
            return Some(ArtistSums {
                version,
                watermark,
                changed,
                sums,
            });
        }
        let sums = Arc::new(inner.sum_by_artist(grain, first, last, slice));
        // The state's lock is not held while the cache makes room: a
        // batch waiting for it would hold up every reader behind it.
        drop(inner);
        let bytes = sums.bytes();
        let mut tiles = self.tiles.lock().unwrap_or_else(|p| p.into_inner());
        let dropped = tiles.insert(key, (changed, sums.clone()), bytes);
        crate::reads::report_cache_bytes("tiles", tiles.weight());
        drop(tiles);
        drop(dropped);
        Some(ArtistSums {
            version,
            watermark,
            changed,
            sums,
        })
    }

    /// Per-artist sums over buckets `first..=last` of `grain` in `slice` if
    /// they are cached and current: what [`Self::by_artist`] answers
    /// without summing, cheap enough for a request's own worker.
    pub fn cached_by_artist(&self, grain: Grain, first: i64, last: i64, slice: &Slice) -> Option<Arc<PackedSums>> {
        if !self.covers(grain, first, slice) {
            return None;
        }
        let changed = self
            .inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .changed(grain, first, last);
        self.cached_tile(&(grain, first, last, slice.clone()), changed)
    }

    /// How many rows [`Self::by_artist`] over the same buckets would read:
    /// its cached sums' rows, or those of every bucket's slice to sum.
    /// `None` when those buckets are not all kept.
    pub fn rows_to_sum(&self, grain: Grain, first: i64, last: i64, slice: &Slice) -> Option<usize> {
        if !self.covers(grain, first, slice) {
            return None;
        }
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let changed = inner.changed(grain, first, last);
        if let Some(sums) = self.cached_tile(&(grain, first, last, slice.clone()), changed) {
            return Some(sums.len());
        }
        let buckets = match grain {
            Grain::Hour => &inner.hours,
            Grain::Day => &inner.days,
        };
        Some(buckets.range(first..=last).map(|(_, b)| b.slice_rows(slice)).sum())
    }

    /// The cached sums for `key` if no bucket changed after `changed`.
    fn cached_tile(&self, key: &(Grain, i64, i64, Slice), changed: u64) -> Option<Arc<PackedSums>> {
        let mut tiles = self.tiles.lock().unwrap_or_else(|p| p.into_inner());
        let (stamp, sums) = tiles.get(key)?;
        (*stamp == changed).then(|| sums.clone())
    }

    /// The artists' names, covering every id below `ids` at least.
    pub fn names(&self, ids: usize) -> Arc<Names> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if names.len() < ids {
            let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
            let more = inner.artists.names.get(names.len()..).unwrap_or_default();
            *names = Arc::new(names.extended(more));
        }
        names.clone()
    }

    /// The names of every artist interned so far.
    pub fn all_names(&self) -> Arc<Names> {
        let ids = self.inner.read().unwrap_or_else(|p| p.into_inner()).artists.names.len();
        self.names(ids)
    }

    /// The ids of artists named `names`, interning new ones.
    pub fn ids_of(&self, names: &[&str]) -> Vec<u32> {
        {
            let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
            let known: Option<Vec<u32>> = names
                .iter()
                .map(|name| inner.artists.index.get(*name).copied())
                .collect();
            if let Some(known) = known {
                return known;
            }
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        names.iter().map(|name| inner.artists.intern(name)).collect()
    }

    /// The ids of artists named in rows read from SQL, interning new ones.
    pub fn intern_rows(&self, rows: &[(Arc<str>, Kpis)]) -> Vec<(u32, Kpis)> {
        {
            let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
            let known: Option<Vec<(u32, Kpis)>> = rows
                .iter()
                .map(|(name, kpis)| inner.artists.index.get(&**name).map(|id| (*id, *kpis)))
                .collect();
            if let Some(known) = known {
                return known;
            }
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        rows.iter()
            .map(|(name, kpis)| (inner.artists.intern(name), *kpis))
            .collect()
    }

    /// Sums per bucket over `first..=last` of `grain` in `slice`, for one
    /// artist or (with `None`) for everything in the slice; `None` when those
    /// buckets are not all kept (for one artist or a live event, from
    /// [`Self::first_series_kept`]). Buckets without figures are left out.
    /// Kept and read again while none of those buckets changes: callers ask
    /// for aligned runs of buckets ([`crate::reads::Tile::aligned`]), so
    /// that under live traffic only the run holding the newest bucket is
    /// summed again.
    pub fn series(
        &self,
        grain: Grain,
        first: i64,
        last: i64,
        slice: &Slice,
        artist: Option<&str>,
    ) -> Option<(Watermark, Points)> {
        let one = artist.is_some() || matches!(slice, Slice::LiveEvent { .. });
        let kept_from = if one {
            self.first_series_kept(grain, slice)
        } else {
            self.first_kept(grain, slice)
        };
        if first < kept_from {
            return None;
        }
        let mut inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        // What the cells of thin hours are asked; `None` when a city, genre
        // or live event named was never seen: no cell of it is anywhere.
        let wanted = inner.wanted(slice);
        let artist = match artist {
            None => None,
            Some(artist) => match inner.artists.index.get(artist) {
                Some(&index) => Some(index),
                None => return Some((inner.watermark, Arc::new([]))),
            },
        };
        // Whatever changes a bucket stamps it with a newer version: a
        // series made since the newest stamp of its buckets is still theirs.
        // Looked up without the state's lock: a batch waiting for it would
        // hold up every reader behind it while the cache makes room.
        let changed = inner.changed(grain, first, last);
        // A city, genre or live event never seen is not kept: any name
        // would otherwise take a place in the cache.
        let key = wanted.is_some().then(|| (grain, first, last, slice.clone(), artist));
        if let Some(key) = &key {
            let watermark = inner.watermark;
            drop(inner);
            let mut cached = self.series.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((stamp, points)) = cached.get(key)
                && *stamp == changed
            {
                return Some((watermark, points.clone()));
            }
            drop(cached);
            inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        }
        // Stamped again: batches may have applied while the lock was let go.
        let changed = inner.changed(grain, first, last);
        let buckets = match grain {
            Grain::Hour => &inner.hours,
            Grain::Day => &inner.days,
        };
        let points: Points = buckets
            .range(first..=last)
            .filter_map(|(&bucket, b)| {
                if b.is_thin() && *slice != Slice::All {
                    return Some((bucket, b.cells_sum(artist, wanted.as_ref()?)?));
                }
                let sums = b.slice(slice)?;
                let kpis = match artist {
                    None => sums.total,
                    Some(index) => sums.get(index)?.kpis(),
                };
                Some((bucket, kpis))
            })
            .collect();
        let watermark = inner.watermark;
        // As for tiles: the state's lock is not held while the cache makes room.
        drop(inner);
        if let Some(key) = key {
            let weight = SERIES_BYTES + slice.name_bytes() + points.len() * POINT_BYTES;
            let mut cached = self.series.lock().unwrap_or_else(|p| p.into_inner());
            let dropped = cached.insert(key, (changed, points.clone()), weight);
            crate::reads::report_cache_bytes("series", cached.weight());
            drop(cached);
            drop(dropped);
        }
        Some((watermark, points))
    }
}

impl AppliedSink for HotState {
    fn applied(&self, batch: &Arc<ProcessedBatch>, watermark: Watermark) {
        let kept = self.kept();
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.add_cells(batch.cells.iter().map(|(k, v)| (k, *v)), kept);
        let before = inner.watermark;
        // Never earlier than what this node knew complete while idle; the
        // journal keeps the batch's own instant, the same on every node.
        inner.watermark = Watermark {
            seq: watermark.seq,
            as_of: watermark.as_of.max(before.as_of),
        };
        let version = inner.version;
        // Under the same lock as the figures: a read that sees version v
        // finds every batch up to v here.
        inner.journal.record(version, before, watermark, batch);
    }

    fn advanced(&self, watermark: Watermark) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.watermark = watermark;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_order_ids_as_their_strings_order_when_extended_piecemeal() {
        let batch = |names: &[&str]| names.iter().map(|n| Arc::from(*n)).collect::<Vec<Arc<str>>>();
        let names = Names::default()
            .extended(&batch(&["", "art_5", "art_10", "zed"]))
            .extended(&batch(&["art_1", "Art_2"]))
            .extended(&batch(&["art_50", "a"]));
        assert_eq!(names.len(), 8);
        for a in 0..8_u32 {
            for b in 0..8_u32 {
                assert_eq!(
                    names.place(a).cmp(&names.place(b)),
                    names.name(a).cmp(names.name(b)),
                    "{} vs {}",
                    names.name(a),
                    names.name(b)
                );
            }
            assert_eq!(names.find(names.name(a)), Some(a));
        }
        assert_eq!(names.find("art_2"), None, "names are case-sensitive");
        assert_eq!(names.find("b"), None);
    }
}

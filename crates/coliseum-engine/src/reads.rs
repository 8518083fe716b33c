//! KPI and leaderboard reads. A range is cut into tiles (runs of hour or day
//! buckets that exactly cover it); each tile is summed from memory where it
//! holds those buckets — platform KPI series from the platform totals (any
//! city and genre), anything else from the hot state's per-artist sums of
//! the slice its filters select (one artist's or live event's hours older
//! than a day from those hours' cells) — and the rest (buckets older than
//! the hot window) from the SQL rollups through the bounded, single-flight,
//! cached [`Fallback`].
//! Rankings are cached until the next applied batch and kept for a while as
//! snapshots, so that a client paging through one never sees an artist twice
//! or misses one while new entries arrive.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use coliseum_domain::clock::Clock;
use coliseum_domain::kpi::{Kpis, Metric};
use coliseum_domain::range::Range;
use coliseum_store::{CellFilter, Grain, Rollups, StoreError};
use time::OffsetDateTime;

use crate::board::Board;
pub use crate::board::Ranked;
use crate::bounded::Bounded;
use crate::fallback::{Answer, By, Fallback, Question};
use crate::hot::{HotState, Slice};
use crate::lane::Lane;
use crate::packed::PackedSums;
use crate::processor::Watermark;
use crate::single_flight::Gates;

/// Rankings kept for pagination cursors, oldest dropped first.
const SNAPSHOTS_KEPT: usize = 64;
/// What the read caches may hold, in bytes: per-artist tile sums, and
/// leaderboards with the parts a move needs. Beyond its budget a
/// cache drops what was read least recently, so that requests naming ever
/// new boards cannot grow memory without bound.
///
/// A day of every artist is 50,000 rows of tile sums (1.3 MiB packed),
/// and the tiles of the common ranges over every slice outweigh 2,000,000
/// rows (53 MiB): with that bound the popular tiles were summed again and
/// again under the mixed benchmark (BENCHMARKS.md, fourth step). A cached
/// board counts its ranking and the parts it keeps for moving forward
/// (those of the buckets still open to late entries, and SQL's). Until
/// BENCHMARKS.md's twelfth step it counted every tile sum it was made from
/// again, and the split below was measured then. Under the mixed benchmark
/// a budget of 640 MiB held about 200 MiB less than 1,120 MiB and served
/// 8.6–10.0k reads/s against 10.7–16.6k/s (BENCHMARKS.md, eighth step;
/// the sixth step measured the same trade before the rows were packed).
/// Once a sorted board kept ids only in its order (16 bytes an artist
/// instead of 28), 800 MiB with two fifths for tile sums (the same 320 MiB
/// as before) held the benchmark's boards in 355–446 MiB and served its
/// mixed reads at rates within the spread of 1,120 MiB's (BENCHMARKS.md,
/// twenty-third step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheBudget {
    pub tiles: usize,
    /// KPI series of artists and live events over runs of buckets.
    pub series: usize,
    pub boards: usize,
}

impl CacheBudget {
    /// The budget when none is set (`--read-cache-mib`).
    pub const DEFAULT: Self = Self::of_mib(DEFAULT_READ_CACHE_MIB);

    /// `mib` MiB in all: two fifths for tile sums, a thirty-fifth for
    /// series (a month of hourly points is 40 KiB), the rest for boards.
    pub const fn of_mib(mib: usize) -> Self {
        let bytes = mib.saturating_mul(1 << 20);
        let (tiles, series) = (bytes / 5 * 2, bytes / 35);
        Self {
            tiles,
            series,
            boards: bytes - tiles - series,
        }
    }
}

/// What the read cache `cache` (`tiles` or `boards`) holds, for `/metrics`.
pub(crate) fn report_cache_bytes(cache: &'static str, bytes: usize) {
    metrics::gauge!("coliseum_read_cache_bytes", "cache" => cache).set(bytes as f64);
}

/// The most rows a board is built from where it is asked for, like a move,
/// instead of in the builds' queue: a live event's board, or a genre's in
/// one city, is a few thousand rows and tens of microseconds, but queued
/// behind every board of all artists it waited as long as they did.
const INLINE_BUILD_ROWS: usize = 16_384;
/// See [`CacheBudget`]; chosen by measurement (BENCHMARKS.md).
pub const DEFAULT_READ_CACHE_MIB: usize = 800;
/// What `all` covers: the hot retention window.
const KEPT_MONTHS: i64 = 24;

/// The optional filters of a read: any combination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Filters {
    pub city: Option<String>,
    pub genre: Option<String>,
    pub live_event: Option<String>,
}

impl Filters {
    /// The hot-state slice these filters select.
    fn slice(&self) -> Slice {
        match (&self.city, &self.genre, &self.live_event) {
            (None, None, None) => Slice::All,
            (Some(city), None, None) => Slice::City(city.clone()),
            (None, Some(genre), None) => Slice::Genre(genre.clone()),
            (Some(city), Some(genre), None) => Slice::CityGenre(city.clone(), genre.clone()),
            (_, _, Some(live)) => Slice::LiveEvent {
                live: live.clone(),
                city: self.city.clone(),
                genre: self.genre.clone(),
            },
        }
    }

    fn cells(&self, artist: Option<&str>) -> CellFilter {
        CellFilter {
            artist: artist.map(str::to_owned),
            city: self.city.clone(),
            genre: self.genre.clone(),
            live_event: self.live_event.clone(),
        }
    }
}

/// A run of buckets of one grain, `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tile {
    pub grain: Grain,
    pub first: i64,
    pub last: i64,
}

/// The tiles covering `[from, to)`: whole days as day buckets, the hours
/// at either end as hour buckets. The bucket holding `to` is included when
/// `to` is not on an hour (the current hour so far). `from` must be on an
/// hour.
///
/// The current hour, which every batch changes, is a tile of its own, and
/// no longer tile holds it: every other tile's sums can be reused under
/// live traffic. It is the last hour that `[.., now)` touches, as
/// [`covered_hours`] counts, so that in the first second of an hour a
/// range ending at `now` keeps the tiles of the second before. A day tile
/// holding it changed with every batch, and every board read after a
/// batch summed that whole day again, for every artist, in the builds'
/// queue: in the last hour of a day (when the day so far is whole in
/// hours), and in ranges ending after today (a custom range for this
/// month).
pub fn tiles(from: OffsetDateTime, to: OffsetDateTime, finest: Grain, now: OffsetDateTime) -> Vec<Tile> {
    let live = covered_hours(now, now).end - 1;
    covering_tiles(from, to, finest)
        .into_iter()
        .flat_map(|tile| tile.around(live))
        .collect()
}

/// The tiles a leaderboard over `[from, to)` is summed from: [`tiles`],
/// with the buckets the hot state keeps for `slice` cut into aligned
/// blocks ([`Tile::aligned`]). Ranges that share days share those blocks'
/// cached sums: a custom range, or a standard one after the day turns,
/// sums only the few blocks nobody summed before instead of every cell of
/// its range. What is older than the hot window stays one tile: it is one
/// SQL question either way.
pub fn board_tiles(
    from: OffsetDateTime,
    to: OffsetDateTime,
    now: OffsetDateTime,
    kept_from: impl Fn(Grain) -> i64,
) -> Vec<Tile> {
    let tiles = tiles(from, to, Grain::Day, now);
    let mut blocks = Vec::with_capacity(tiles.len() * 4);
    // The current hour is a tile of one bucket already: its own block.
    for tile in tiles {
        let (older, kept) = tile.split_at(kept_from(tile.grain));
        blocks.extend(older);
        if let Some(kept) = kept {
            blocks.extend(kept.aligned());
        }
    }
    blocks
}

/// The hour buckets a read over `[from, to)` sums: every hour the range
/// touches, in whole seconds.
pub(crate) fn covered_hours(from: OffsetDateTime, to: OffsetDateTime) -> std::ops::Range<i64> {
    let end = (to.unix_timestamp() + Grain::SECONDS_PER_HOUR - 1).div_euclid(Grain::SECONDS_PER_HOUR);
    Grain::Hour.bucket_of(from)..end
}

fn covering_tiles(from: OffsetDateTime, to: OffsetDateTime, finest: Grain) -> Vec<Tile> {
    let std::ops::Range {
        start: first_hour,
        end: end_hour,
    } = covered_hours(from, to);
    if end_hour <= first_hour {
        return Vec::new();
    }
    let hour = |first: i64, end: i64| Tile {
        grain: Grain::Hour,
        first,
        last: end - 1,
    };
    if finest == Grain::Hour {
        return vec![hour(first_hour, end_hour)];
    }
    let first_day = first_hour.div_euclid(24) + i64::from(first_hour.rem_euclid(24) != 0);
    let end_day = end_hour.div_euclid(24);
    if first_day >= end_day {
        return vec![hour(first_hour, end_hour)];
    }
    let mut tiles = Vec::with_capacity(3);
    if first_hour < first_day * 24 {
        tiles.push(hour(first_hour, first_day * 24));
    }
    tiles.push(Tile {
        grain: Grain::Day,
        first: first_day,
        last: end_day - 1,
    });
    if end_day * 24 < end_hour {
        tiles.push(hour(end_day * 24, end_hour));
    }
    tiles
}

/// What a leaderboard ranks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BoardQuery {
    pub metric: Metric,
    pub range: Range,
    pub filters: Filters,
}

/// A whole leaderboard as of one applied batch.
#[derive(Debug)]
pub struct Ranking {
    /// Names this snapshot in pagination cursors.
    pub id: u64,
    pub query: BoardQuery,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub watermark: Watermark,
    /// The hot state's version it was computed at.
    pub version: u64,
    /// The artists in order; shared with the rankings of the same figures
    /// (a past state nothing changed since, a board no batch touched).
    pub board: Arc<Board>,
}

impl Ranking {
    /// Every ranked artist, in order (sorted first if need be): a copy of
    /// the whole board, for tests and tools; reads take a page.
    pub fn entries(&self) -> Vec<Ranked> {
        self.board.entries()
    }
}

/// Per-artist sums over several parts, by interned id.
fn merge(parts: &[Part]) -> PackedSums {
    let ids = parts
        .iter()
        .flat_map(|part| part.ids().map(|id| id as usize + 1))
        .max()
        .unwrap_or(0);
    crate::dense::sum_by_id(ids, |add| {
        for (id, kpis) in parts.iter().flat_map(|part| part.iter()) {
            add(id, &kpis);
        }
    })
}

/// Per-artist sums over one tile, by interned id.
type Part = Arc<PackedSums>;

/// A board's part of one tile, as its cached board keeps it.
#[derive(Debug, Clone)]
struct KeptPart {
    /// The newest change of the tile's buckets when it was summed; `None`
    /// for a part from SQL, which a move compares with SQL's answer now.
    stamp: Option<u64>,
    /// The sums, where moving the board forward may need them: parts from
    /// SQL and those reaching into the buckets still open to late entries
    /// (the last hours, today and yesterday: see
    /// [`HotState::first_open`]). A board whose other parts change (entries
    /// later than that) is built anew.
    /// Keeping every part counted a board's tile sums against the boards'
    /// budget again, about seven times its own ranking for a month of
    /// every artist: the budget then held a few hundred boards, and under
    /// many distinct queries the others were built again and again.
    sums: Option<Part>,
}

impl KeptPart {
    fn of(tile: &Tile, stamp: Option<u64>, sums: &Part, hot: &HotState) -> Self {
        let kept = stamp.is_none() || tile.last >= hot.first_open(tile.grain);
        Self {
            stamp,
            sums: kept.then(|| sums.clone()),
        }
    }
}

/// What a board is moved forward from: the cached board of the same tiles
/// and what it keeps of its parts.
struct Previous {
    board: Arc<Board>,
    parts: Vec<KeptPart>,
}

/// A board and what its cache keeps of its parts, or `None` when the hot
/// window moved on while it was made (its tiles are others now).
type Made = Option<(Arc<Board>, Vec<KeptPart>)>;

/// The board of `metric` over `tiles` in `slice`, summed from every part:
/// `from_sql` where SQL answered, the hot state's tile sums for the rest.
fn built(hot: &HotState, metric: Metric, tiles: &[Tile], from_sql: Vec<Option<Part>>, slice: &Slice) -> Made {
    let mut parts = Vec::with_capacity(tiles.len());
    let mut kept = Vec::with_capacity(tiles.len());
    for (tile, sql) in tiles.iter().zip(from_sql) {
        let (stamp, sums) = match sql {
            Some(sums) => (None, sums),
            None => {
                let summed = hot.by_artist(tile.grain, tile.first, tile.last, slice)?;
                (Some(summed.changed), summed.sums)
            }
        };
        kept.push(KeptPart::of(tile, stamp, &sums, hot));
        parts.push(sums);
    }
    let names = hot.all_names();
    let values = crate::dense::sum_values_by_id(names.len(), |sums| {
        for part in &parts {
            for (id, value) in part.values(metric) {
                sums.add(id, value);
            }
        }
    });
    Some((Arc::new(Board::new(names, values)), kept))
}

/// `previous` moved forward by the parts whose buckets changed since it
/// was made: under live traffic the current hour's, a few thousand rows
/// where building sums hundreds of thousands. The parts that did not
/// change are not read at all. `None` when a part changed whose sums
/// before are not kept, or the hot window moved on: built anew then.
fn moved_forward(
    hot: &HotState,
    metric: Metric,
    tiles: &[Tile],
    from_sql: &[Option<Part>],
    slice: &Slice,
    previous: &Previous,
) -> Made {
    if previous.parts.len() != tiles.len() {
        return None;
    }
    let mut changed: Vec<(Part, Part)> = Vec::new();
    let mut kept = Vec::with_capacity(tiles.len());
    for ((tile, sql), before) in tiles.iter().zip(from_sql).zip(&previous.parts) {
        let (stamp, now) = match sql {
            // SQL's answer for the same buckets, unchanged: each read of it
            // is a new part, compared by its rows.
            Some(now) if before.sums.as_ref().is_some_and(|sums| sums == now) => {
                kept.push(before.clone());
                continue;
            }
            Some(now) => (None, now.clone()),
            None => {
                if before.stamp.is_some()
                    && before.stamp == Some(hot.tile_stamp(tile.grain, tile.first, tile.last, slice)?)
                {
                    kept.push(before.clone());
                    continue;
                }
                // Its sums before are not kept: the board is built anew,
                // which sums the tile in the builds' lane (or here, for a
                // small board), not in a move.
                before.sums.as_ref()?;
                let summed = hot.by_artist(tile.grain, tile.first, tile.last, slice)?;
                (Some(summed.changed), summed.sums)
            }
        };
        changed.push((before.sums.clone()?, now.clone()));
        kept.push(KeptPart::of(tile, stamp, &now, hot));
    }
    if changed.is_empty() {
        return Some((previous.board.clone(), kept));
    }
    let names = hot.all_names();
    let deltas = crate::dense::sum_values_by_id(names.len(), |sums| {
        for (before, now) in &changed {
            for (id, value) in before.values(metric) {
                sums.add(id, value.saturating_neg());
            }
            for (id, value) in now.values(metric) {
                sums.add(id, value);
            }
        }
    });
    Some((Arc::new(previous.board.moved(names, &deltas)), kept))
}

/// How many rows building a board over `tiles` reads: SQL's parts' and
/// the hot state's ([`HotState::rows_to_sum`]); `usize::MAX` when the hot
/// state no longer keeps a tile.
fn rows_to_build(hot: &HotState, tiles: &[Tile], from_sql: &[Option<Part>], slice: &Slice) -> usize {
    tiles
        .iter()
        .zip(from_sql)
        .map(|(tile, sql)| match sql {
            Some(sums) => sums.len(),
            None => hot
                .rows_to_sum(tile.grain, tile.first, tile.last, slice)
                .unwrap_or(usize::MAX),
        })
        .fold(0, usize::saturating_add)
}

/// Whether moving `previous` forward is cheap enough for a request's own
/// worker: every hot part that changed is of hours (under live traffic the
/// current hour's run, a few thousand rows) or already summed at its
/// newest stamp. A changed day tile before `today` (late entries into
/// yesterday) is up to 16 days of every artist: milliseconds, a job for
/// the builds' lane. Days after it hold only entries from clocks
/// running ahead (five minutes at most), a few rows.
fn cheap_to_move(
    hot: &HotState,
    tiles: &[Tile],
    from_sql: &[Option<Part>],
    slice: &Slice,
    previous: &Previous,
    today: i64,
) -> bool {
    tiles
        .iter()
        .zip(from_sql)
        .zip(&previous.parts)
        .filter(|((tile, sql), _)| sql.is_none() && tile.grain == Grain::Day && tile.first < today)
        .all(|((tile, _), before)| {
            before.stamp.is_some() && before.stamp == hot.tile_stamp(tile.grain, tile.first, tile.last, slice)
                || hot.cached_by_artist(tile.grain, tile.first, tile.last, slice).is_some()
        })
}

/// What a KPI read asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KpiQuery {
    /// `None` for the platform; a live event is a filter.
    pub artist: Option<String>,
    pub range: Range,
    pub bucket: Grain,
    pub filters: Filters,
}

/// KPI totals and their series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiReport {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub watermark: Watermark,
    /// The hot state's version when it was computed: it holds every batch
    /// up to it.
    pub version: u64,
    pub totals: Kpis,
    /// One point per bucket with any figure, oldest first.
    pub series: Vec<(OffsetDateTime, Kpis)>,
}

type CacheKey = (Metric, Filters, Vec<Tile>);

/// A ranking, when it was computed and the tile sums it was made from.
struct Cached {
    ranking: Arc<Ranking>,
    computed: std::time::Instant,
    /// When the oldest of its parts was read, if one was an SQL answer
    /// served for its age (missing a batch its version holds).
    stale_parts: Option<std::time::Instant>,
    parts: Vec<KeptPart>,
}

impl Cached {
    /// When the oldest data it was made from was read.
    fn read_at(&self) -> std::time::Instant {
        self.stale_parts.map_or(self.computed, |stale| stale.min(self.computed))
    }

    /// The bytes it counts against the cache's budget: its artists and the
    /// rows of the parts it keeps (shared with the tile cache while that
    /// holds them). The names a board refers to are shared by every board
    /// made between two new artists, and not counted.
    fn weight(&self) -> usize {
        self.ranking.board.valued() * Board::BYTES_PER_ARTIST
            + self
                .parts
                .iter()
                .filter_map(|part| part.sums.as_ref())
                .map(|sums| sums.bytes())
                .sum::<usize>()
    }
}

/// What names a board at [`Reads::sorting`]: its address, unique while
/// the board is alive, as it is for everyone waiting there.
fn sort_key(board: &Arc<Board>) -> usize {
    Arc::as_ptr(board) as usize
}

/// The read side of the engine.
pub struct Reads {
    hot: Arc<HotState>,
    fallback: Fallback,
    /// CPU-heavy read work, one thread per core: summing and ranking what
    /// no cached value holds yet (a board's first build, a tile's sums;
    /// milliseconds each).
    ///
    /// Moving a board by what changed since it was ranked is not such work
    /// (unless it must sum a day tile again: [`cheap_to_move`]), nor is
    /// building a small board ([`INLINE_BUILD_ROWS`]): they run where they
    /// are asked for. Moves are about a tenth of a millisecond of CPU, but
    /// in a queue of their own, on threads that share two cores with the
    /// request workers, each took over a millisecond of a permit and its
    /// readers waited 60–70 ms for one under live traffic; run where they
    /// are asked, the Enterprise mix read on went from p99 110–115 ms to
    /// 37–57 ms (BENCHMARKS.md, fourteenth step).
    builds: Lane,
    /// Whole orders of boards already built, beside the builds (see
    /// [`Self::ordered`]): one at a time per four cores.
    sorts: Lane,
    /// One sort per board at a time; its other readers wait for it.
    sorting: Gates<usize>,
    /// How long a ranking may still be served once newer batches are
    /// applied. Under continuous ingestion every request would otherwise see
    /// a new version and recompute the whole board.
    max_age: std::time::Duration,
    /// The cached rankings, weighed by [`Cached::weight`].
    cache: Mutex<Bounded<CacheKey, Cached>>,
    /// One computation per leaderboard at a time; the others wait for it.
    gates: Gates<CacheKey>,
    snapshots: Mutex<VecDeque<Arc<Ranking>>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Reads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reads").finish_non_exhaustive()
    }
}

impl Reads {
    pub fn new(
        hot: Arc<HotState>,
        store: Arc<dyn Rollups>,
        clock: Arc<dyn Clock>,
        max_age: std::time::Duration,
        budget: CacheBudget,
    ) -> Self {
        let seed = clock.now().unix_timestamp_nanos() as u64;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        hot.set_tile_cache_budget(budget.tiles);
        hot.set_series_cache_budget(budget.series);
        report_cache_bytes("boards", 0);
        Self {
            hot,
            fallback: Fallback::new(store, max_age),
            builds: Lane::new(cores, "build"),
            sorts: Lane::new(cores.div_ceil(4), "sort"),
            sorting: Gates::default(),
            max_age,
            cache: Mutex::new(Bounded::new(budget.boards)),
            gates: Gates::default(),
            snapshots: Mutex::new(VecDeque::new()),
            // Ids differ between restarts, so an old cursor never names a new snapshot.
            next_id: AtomicU64::new(seed & 0x000f_ffff_ffff_ffff),
        }
    }

    /// `[from, to)` of `range` as of the data's watermark.
    fn bounds(&self, range: Range, watermark: Watermark) -> (OffsetDateTime, OffsetDateTime) {
        self.bounds_at(range, watermark.as_of)
    }

    /// `[from, to)` of `range` for data complete up to `as_of`.
    pub fn bounds_at(&self, range: Range, as_of: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
        let kept_from = (as_of - time::Duration::days(KEPT_MONTHS * 365 / 12)).replace_time(time::Time::MIDNIGHT);
        range.bounds(as_of, kept_from)
    }

    /// The watermark of the figures now.
    pub fn watermark(&self) -> Watermark {
        self.hot.watermark()
    }

    /// What batches up to `version` applied after `instant`, and the
    /// watermark then: what a value computed at `version` holds that the
    /// state at `instant` did not.
    pub fn since(&self, instant: OffsetDateTime, version: u64) -> crate::journal::Since {
        self.hot.since(instant, version)
    }

    /// `ranking`'s board for `query` over other bounds, with an id of its
    /// own for cursors (a past state of a board that nothing changed since).
    pub fn relabelled(
        &self,
        ranking: &Ranking,
        query: BoardQuery,
        bounds: (OffsetDateTime, OffsetDateTime),
        watermark: Watermark,
    ) -> Arc<Ranking> {
        self.new_ranking(query, bounds, watermark, ranking.version, ranking.board.clone())
    }

    /// `ranking`'s board less what `later` added per artist (a past state
    /// of a board), for `query` over other bounds, with an id of its own.
    pub fn less(
        &self,
        ranking: &Ranking,
        query: BoardQuery,
        bounds: (OffsetDateTime, OffsetDateTime),
        watermark: Watermark,
        later: HashMap<&str, i64>,
    ) -> Arc<Ranking> {
        let (names, later): (Vec<&str>, Vec<i64>) = later.into_iter().unzip();
        let ids = self.hot.ids_of(&names);
        let mut deltas: Vec<(u32, i64)> = ids
            .into_iter()
            .zip(later.into_iter().map(i64::saturating_neg))
            .collect();
        deltas.sort_unstable_by_key(|(id, _)| *id);
        // A move, as in `compute_board`: where it is asked for.
        let board = Arc::new(ranking.board.moved(self.hot.all_names(), &deltas));
        self.new_ranking(query, bounds, watermark, ranking.version, board)
    }

    /// Makes `ranking`'s whole order ready, sorting it off the request
    /// workers if it is not yet: for reads past the first page (a later
    /// page, a cursor, an artist's place).
    ///
    /// A board needs this once (its moves keep the order: [`Board::moved`]),
    /// after it is built anew: on a first read, or when a new hour's tiles
    /// replace its parts. Its readers then arrive together (around-me reads
    /// the four standard boards): one sorts while the others wait for it,
    /// and the sort, a few milliseconds of one core, runs in a lane beside
    /// the builds, not queued behind every first build of other boards.
    pub async fn ordered(&self, ranking: &Ranking) -> Result<(), StoreError> {
        if ranking.board.is_ordered() {
            return Ok(());
        }
        let _turn = self.sorting.turn(sort_key(&ranking.board)).await;
        if ranking.board.is_ordered() {
            return Ok(());
        }
        let board = ranking.board.clone();
        self.sorts.run(move || board.sort()).await
    }

    /// A ranking with an id of its own, for cursors.
    fn new_ranking(
        &self,
        query: BoardQuery,
        (from, to): (OffsetDateTime, OffsetDateTime),
        watermark: Watermark,
        version: u64,
        board: Arc<Board>,
    ) -> Arc<Ranking> {
        Arc::new(Ranking {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            query,
            from,
            to,
            watermark,
            version,
            board,
        })
    }

    /// The ranking for `query` as of the newest applied batch.
    pub async fn leaderboard(&self, query: &BoardQuery) -> Result<Arc<Ranking>, StoreError> {
        let asked = std::time::Instant::now();
        let (version, _, _, _, key) = self.board_key(query);
        if let Some(cached) = self.cached(&key, version) {
            return Ok(cached);
        }
        let _turn = self.gates.turn(key).await;
        self.compute_board(query, asked).await
    }

    /// The ranking for `query`, computed by the holder of its gate for a
    /// reader that asked at `asked`.
    async fn compute_board(&self, query: &BoardQuery, asked: std::time::Instant) -> Result<Arc<Ranking>, StoreError> {
        // Whoever held the gate may have computed it, and time has moved on.
        // Its age counts from before the state it is built from was read:
        // a batch applied while it is built is missing from it, and must be
        // served within `max_age` of that moment all the same.
        let as_of = std::time::Instant::now();
        let (version, watermark, from, to, key) = self.board_key(query);
        if let Some(cached) = self.cached(&key, version) {
            return Ok(cached);
        }
        // One begun after the reader asked holds every batch it could want,
        // even when computing it took longer than the max age: otherwise
        // each reader queued at a slow board would compute it again in turn.
        if let Some(begun) = self.begun_since(&key, asked) {
            return Ok(begun);
        }
        // The tiles memory holds are summed in the job that ranks the board:
        // a board new to the caches would otherwise queue for the cores
        // once per tile. The others are SQL's; an SQL answer served for its
        // age makes the board as old as it.
        let slice = query.filters.slice();
        let (from_sql, read_at) = crate::read_age::oldest_read(as_of, async {
            let mut from_sql = Vec::with_capacity(key.2.len());
            for tile in &key.2 {
                from_sql.push(if self.hot.covers(tile.grain, tile.first, &slice) {
                    None
                } else {
                    Some(self.sum_by_artist(*tile, &query.filters).await?)
                });
            }
            Ok::<_, StoreError>(from_sql)
        })
        .await;
        let from_sql = from_sql?;
        let previous = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .map(|cached| Previous {
                board: cached.ranking.board.clone(),
                parts: cached.parts.clone(),
            });
        let (metric, hot, tiles) = (query.metric, self.hot.clone(), key.2.clone());
        // Summing, merging and sorting a board of every artist is
        // milliseconds of CPU: off the request workers. Moving one read
        // before by what changed since is a fraction of that, done here,
        // unless a day tile must be summed again for it (late entries into
        // yesterday): then the move is a job like a build. A small board
        // (a live event's, a genre's in one city) is built here too.
        static MOVES: std::sync::OnceLock<metrics::Histogram> = std::sync::OnceLock::new();
        static SMALL_BUILDS: std::sync::OnceLock<metrics::Histogram> = std::sync::OnceLock::new();
        let ranked = match previous {
            Some(previous)
                if cheap_to_move(
                    &hot,
                    &tiles,
                    &from_sql,
                    &slice,
                    &previous,
                    Grain::Day.bucket_of(watermark.as_of),
                ) =>
            {
                let started = std::time::Instant::now();
                let moved = moved_forward(&hot, metric, &tiles, &from_sql, &slice, &previous);
                MOVES
                    .get_or_init(|| metrics::histogram!("coliseum_read_move_seconds"))
                    .record(started.elapsed());
                match moved {
                    Some(moved) => Some(moved),
                    None => {
                        self.compute(move || built(&hot, metric, &tiles, from_sql, &slice))
                            .await?
                    }
                }
            }
            previous => {
                let small = rows_to_build(&hot, &tiles, &from_sql, &slice) <= INLINE_BUILD_ROWS;
                let build = move || {
                    previous
                        .and_then(|previous| moved_forward(&hot, metric, &tiles, &from_sql, &slice, &previous))
                        .or_else(|| built(&hot, metric, &tiles, from_sql, &slice))
                };
                if small {
                    let started = std::time::Instant::now();
                    let built = build();
                    SMALL_BUILDS
                        .get_or_init(|| metrics::histogram!("coliseum_read_small_build_seconds"))
                        .record(started.elapsed());
                    built
                } else {
                    self.compute(build).await?
                }
            }
        };
        let Some((board, parts)) = ranked else {
            // The hot window moved on between the two: its tiles are others now.
            return Box::pin(self.compute_board(query, asked)).await;
        };
        let ranking = self.new_ranking(query.clone(), (from, to), watermark, version, board);
        {
            let cached = Cached {
                ranking: ranking.clone(),
                computed: as_of,
                stale_parts: (read_at < as_of).then_some(read_at),
                parts,
            };
            let weight = cached.weight();
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let dropped = cache.insert(key, cached, weight);
            report_cache_bytes("boards", cache.weight());
            // Freed with the lock released: see `Bounded`.
            drop(cache);
            drop(dropped);
        }
        let mut snapshots = self.snapshots.lock().unwrap_or_else(|p| p.into_inner());
        if snapshots.len() == SNAPSHOTS_KEPT {
            snapshots.pop_front();
        }
        snapshots.push_back(ranking.clone());
        Ok(ranking)
    }

    /// The version and watermark now, the range's bounds as of it, and the
    /// cache key of the board.
    fn board_key(&self, query: &BoardQuery) -> (u64, Watermark, OffsetDateTime, OffsetDateTime, CacheKey) {
        let version = self.hot.version();
        let watermark = self.hot.watermark();
        let (from, to) = self.bounds(query.range, watermark);
        let slice = query.filters.slice();
        let kept_from = |grain| self.hot.first_kept(grain, &slice);
        let key = (
            query.metric,
            query.filters.clone(),
            board_tiles(from, to, watermark.as_of, kept_from),
        );
        (version, watermark, from, to, key)
    }

    /// The cached ranking for `key` if it is exactly the state of
    /// `version` or young enough (its age noted for whatever is made from it).
    fn cached(&self, key: &CacheKey, version: u64) -> Option<Arc<Ranking>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let cached = cache.get(key)?;
        if cached.ranking.version == version && cached.stale_parts.is_none() {
            return Some(cached.ranking.clone());
        }
        let read_at = cached.read_at();
        if read_at.elapsed() < self.max_age {
            crate::read_age::note(read_at);
            return Some(cached.ranking.clone());
        }
        None
    }

    /// The cached ranking for `key` if what it was made from was read at
    /// `since` or later (its age noted).
    fn begun_since(&self, key: &CacheKey, since: std::time::Instant) -> Option<Arc<Ranking>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let cached = cache.get(key)?;
        let read_at = cached.read_at();
        if read_at >= since {
            crate::read_age::note(read_at);
            return Some(cached.ranking.clone());
        }
        None
    }

    /// A ranking handed out earlier, while it is kept.
    pub fn snapshot(&self, id: u64) -> Option<Arc<Ranking>> {
        self.snapshots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|r| r.id == id)
            .cloned()
    }

    /// The freshest watermark for a ranking still current: `as_of` moves on
    /// while no new batch changes the figures.
    pub fn current_watermark(&self, ranking: &Ranking) -> Watermark {
        let watermark = self.hot.watermark();
        if self.hot.version() == ranking.version && watermark.seq == ranking.watermark.seq {
            watermark
        } else {
            ranking.watermark
        }
    }

    /// KPI totals and series for `query`.
    pub async fn kpis(&self, query: &KpiQuery) -> Result<KpiReport, StoreError> {
        let version = self.hot.version();
        let watermark = self.hot.watermark();
        let (from, to) = self.bounds(query.range, watermark);
        let mut points: std::collections::BTreeMap<i64, Kpis> = std::collections::BTreeMap::new();
        for tile in tiles(from, to, query.bucket, watermark.as_of) {
            for (bucket, kpis) in self
                .sum_by_bucket(tile, &query.filters, query.artist.as_deref())
                .await?
            {
                // Hours of a partial day add up into that day's point.
                let start = tile.grain.start_of(bucket);
                *points.entry(query.bucket.bucket_of(start)).or_default() += kpis;
            }
        }
        let series: Vec<(OffsetDateTime, Kpis)> = points
            .into_iter()
            .filter(|(_, k)| !k.is_zero())
            .map(|(bucket, k)| (query.bucket.start_of(bucket), k))
            .collect();
        Ok(KpiReport {
            from,
            to,
            watermark,
            version,
            totals: series.iter().map(|(_, k)| *k).sum(),
            series,
        })
    }

    /// Runs CPU-heavy work (summing buckets, merging and ranking a board)
    /// off the request workers, at most one job per core at once: a burst
    /// of distinct boards queues here instead of starting hundreds of
    /// threads that each hold megabytes and share two cores.
    async fn compute<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, StoreError> {
        self.builds.run(job).await
    }

    /// Per-artist sums over `tile`, by interned id: the part the hot state
    /// keeps from it, the part before from SQL.
    async fn sum_by_artist(&self, tile: Tile, filters: &Filters) -> Result<Part, StoreError> {
        let slice = filters.slice();
        let (older, kept) = tile.split_at(self.hot.first_kept(tile.grain, &slice));
        let kept = match kept {
            None => None,
            Some(kept) => match self.hot.cached_by_artist(kept.grain, kept.first, kept.last, &slice) {
                Some(sums) => Some(sums),
                None => {
                    let hot = self.hot.clone();
                    self.compute(move || hot.by_artist(kept.grain, kept.first, kept.last, &slice))
                        .await?
                        .map(|summed| summed.sums)
                }
            },
        };
        match (older, kept) {
            (None, Some(kept)) => Ok(kept),
            (Some(older), Some(kept)) => {
                let older = self.sql_by_artist(older, filters).await?;
                if older.is_empty() {
                    return Ok(kept);
                }
                Ok(Arc::new(self.compute(move || merge(&[older, kept])).await?))
            }
            // The hot window moved between the split and the read.
            _ => self.sql_by_artist(tile, filters).await,
        }
    }

    async fn sql_by_artist(&self, tile: Tile, filters: &Filters) -> Result<Part, StoreError> {
        let Some(tile) = self.held_part(tile) else {
            return Ok(Arc::default());
        };
        match self.ask(tile, filters, None, By::Artist).await? {
            Answer::ByArtist(rows) => Ok(Arc::new(self.hot.intern_rows(&rows).into_iter().collect())),
            Answer::ByBucket(_) => Err(StoreError::Internal("the fallback answered per bucket".into())),
        }
    }

    /// Sums per bucket over `tile` for the platform, an artist or a live
    /// event (`filters.live_event`).
    async fn sum_by_bucket(
        &self,
        tile: Tile,
        filters: &Filters,
        artist: Option<&str>,
    ) -> Result<Vec<(i64, Kpis)>, StoreError> {
        // The platform's series come from its totals (any city and genre),
        // the rest from the slice the filters select (or, in hours that
        // keep only `all`, from their cells); SQL for what neither holds.
        let platform = artist.is_none() && filters.live_event.is_none();
        let slice = filters.slice();
        let edge = if platform {
            self.hot.first_total(tile.grain)
        } else {
            self.hot.first_series_kept(tile.grain, &slice)
        };
        let (older, kept) = tile.split_at(edge);
        let mut points = match older {
            Some(older) => self.sql_by_bucket(older, filters, artist).await?,
            None => Vec::new(),
        };
        if let Some(kept) = kept {
            let from_memory = if platform {
                let (city, genre) = (filters.city.as_deref(), filters.genre.as_deref());
                self.hot
                    .platform_series(kept.grain, kept.first, kept.last, city, genre)
                    .map(|(_, memory)| points.extend(memory))
            } else {
                // By aligned runs, which the hot state keeps until they change.
                kept.aligned().try_for_each(|run| {
                    let (_, memory) = self.hot.series(run.grain, run.first, run.last, &slice, artist)?;
                    points.extend_from_slice(&memory);
                    Some(())
                })
            };
            // The window moved between the split and the read.
            if from_memory.is_none() {
                return self.sql_by_bucket(tile, filters, artist).await;
            }
        }
        Ok(points)
    }

    async fn sql_by_bucket(
        &self,
        tile: Tile,
        filters: &Filters,
        artist: Option<&str>,
    ) -> Result<Vec<(i64, Kpis)>, StoreError> {
        let Some(tile) = self.held_part(tile) else {
            return Ok(Vec::new());
        };
        match self.ask(tile, filters, artist, By::Bucket).await? {
            Answer::ByBucket(rows) => Ok(rows.to_vec()),
            Answer::ByArtist(_) => Err(StoreError::Internal("the fallback answered per artist".into())),
        }
    }

    /// The part of `tile` from the first bucket the rollups hold on, if
    /// any: SQL has nothing to sum before it.
    fn held_part(&self, tile: Tile) -> Option<Tile> {
        tile.split_at(self.hot.first_held(tile.grain)).1
    }

    async fn ask(&self, tile: Tile, filters: &Filters, artist: Option<&str>, by: By) -> Result<Answer, StoreError> {
        let question = Question {
            grain: tile.grain,
            first: tile.first,
            last: tile.last,
            filter: filters.cells(artist),
            by,
        };
        let stamp = self.hot.stamp(tile.grain, tile.first, tile.last);
        self.fallback.answer(&question, stamp).await
    }
}

impl Tile {
    /// The tile cut into runs of 1, 2, 4, 8… buckets, each starting at a
    /// multiple of its length: at most two of each length, and the same
    /// runs for every tile that holds them.
    pub fn aligned(self) -> impl Iterator<Item = Tile> {
        let mut first = self.first;
        std::iter::from_fn(move || {
            if first > self.last {
                return None;
            }
            let remaining = self.last - first + 1;
            // The longest run that starts aligned here and fits.
            let mut length: i64 = 1;
            while first.rem_euclid(length * 2) == 0 && length * 2 <= remaining {
                length *= 2;
            }
            let block = Tile {
                first,
                last: first + length - 1,
                ..self
            };
            first += length;
            Some(block)
        })
    }

    /// The tile with hour `live` cut out as a tile of its own: the buckets
    /// before and after it as tiles of the tile's grain, except the other
    /// hours of `live`'s day, which a day tile cannot hold without it.
    fn around(self, live: i64) -> Vec<Tile> {
        let in_hours = match self.grain {
            Grain::Hour => self.first..=self.last,
            Grain::Day => self.first * 24..=self.last * 24 + 23,
        };
        if !in_hours.contains(&live) {
            return vec![self];
        }
        let run = |grain, first, last| (first <= last).then_some(Tile { grain, first, last });
        let day = live.div_euclid(24);
        let (before, after, hours) = match self.grain {
            Grain::Hour => (None, None, in_hours),
            Grain::Day => (
                run(Grain::Day, self.first, day - 1),
                run(Grain::Day, day + 1, self.last),
                day * 24..=day * 24 + 23,
            ),
        };
        [
            before,
            run(Grain::Hour, *hours.start(), live - 1),
            run(Grain::Hour, live, live),
            run(Grain::Hour, live + 1, *hours.end()),
            after,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The part of the tile before bucket `at` and the part from it on.
    fn split_at(self, at: i64) -> (Option<Tile>, Option<Tile>) {
        if at <= self.first {
            (None, Some(self))
        } else if at > self.last {
            (Some(self), None)
        } else {
            (Some(Tile { last: at - 1, ..self }), Some(Tile { first: at, ..self }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    proptest! {
        #[test]
        fn aligned_blocks_cover_a_tile_exactly_and_are_shared(first in -5_000_i64..20_000, len in 1_i64..2_000, cut in 0_i64..2_000) {
            let tile = Tile { grain: Grain::Day, first, last: first + len - 1 };
            let blocks: Vec<Tile> = tile.aligned().collect();
            let mut next = first;
            for block in &blocks {
                let length = block.last - block.first + 1;
                prop_assert_eq!(block.first, next, "contiguous, in order");
                prop_assert!(length.count_ones() == 1, "a power of two: {:?}", block);
                prop_assert_eq!(block.first.rem_euclid(length), 0, "aligned: {:?}", block);
                next = block.last + 1;
            }
            prop_assert_eq!(next, tile.last + 1, "the whole tile");
            let most = 2 * (64 - (len as u64).leading_zeros() as usize);
            prop_assert!(blocks.len() <= most, "{} blocks for {} buckets", blocks.len(), len);
            // A tile that starts later shares every block that fits in it.
            let cut = cut.min(len - 1);
            let later: Vec<Tile> = Tile { first: first + cut, ..tile }.aligned().collect();
            let fits = blocks.iter().filter(|b| b.first >= first + cut).count();
            let shared = later.iter().filter(|b| blocks.contains(b)).count();
            prop_assert_eq!(shared, fits, "every block of the tile within the later one is one of its blocks");
        }
    }

    #[test]
    fn boards_sum_aligned_blocks_of_what_memory_keeps_and_one_tile_of_the_rest() {
        let day = Grain::Day.bucket_of(datetime!(2026-11-20 0:00 UTC));
        let hour = day * 24;
        // A custom range of 13 whole days and 5 hours, memory keeping days
        // from `day - 10` on.
        let kept_from = |grain| match grain {
            Grain::Day => day - 10,
            Grain::Hour => hour - 24,
        };
        let now = datetime!(2026-11-20 4:10 UTC);
        let blocks = board_tiles(
            datetime!(2026-11-07 0:00 UTC),
            datetime!(2026-11-20 5:00 UTC),
            now,
            kept_from,
        );
        let older = tile(Grain::Day, day - 13, day - 11);
        assert_eq!(blocks[0], older, "before the hot window: one tile");
        let days: Vec<Tile> = blocks
            .iter()
            .copied()
            .filter(|b| b.grain == Grain::Day)
            .skip(1)
            .collect();
        assert_eq!(days, tile(Grain::Day, day - 10, day - 1).aligned().collect::<Vec<_>>());
        assert!(days.iter().all(|b| (b.last - b.first + 1).count_ones() == 1));
        let hours: Vec<Tile> = blocks.iter().copied().filter(|b| b.grain == Grain::Hour).collect();
        assert_eq!(
            hours,
            [tile(Grain::Hour, hour, hour + 3), tile(Grain::Hour, hour + 4, hour + 4)]
        );
        // Without a slice in memory, the tiles stay whole.
        assert_eq!(
            board_tiles(
                datetime!(2026-11-07 0:00 UTC),
                datetime!(2026-11-20 5:00 UTC),
                now,
                |_| i64::MAX
            ),
            tiles(
                datetime!(2026-11-07 0:00 UTC),
                datetime!(2026-11-20 5:00 UTC),
                Grain::Day,
                now
            )
        );
    }

    fn tile(grain: Grain, first: i64, last: i64) -> Tile {
        Tile { grain, first, last }
    }

    /// `plays` for `artist` in the hour and the day of `at`.
    fn plays_at(artist: &str, plays: i64, at: OffsetDateTime) -> Arc<coliseum_store::ProcessedBatch> {
        let key = |grain: Grain| coliseum_store::CellKey {
            grain,
            bucket: grain.bucket_of(at),
            artist: artist.to_owned(),
            city: String::new(),
            genre: String::new(),
            live_event: String::new(),
        };
        let kpis = Kpis {
            plays,
            ..Kpis::default()
        };
        Arc::new(coliseum_store::ProcessedBatch {
            cells: vec![(key(Grain::Hour), kpis), (key(Grain::Day), kpis)],
            ..coliseum_store::ProcessedBatch::default()
        })
    }

    /// One play each for one more artist than a board built where it is
    /// asked may rank (`art_0`, `art_1`…), in the hour and the day of `at`.
    fn plays_of_more_than_inline(at: OffsetDateTime) -> Arc<coliseum_store::ProcessedBatch> {
        let cells = (0..=INLINE_BUILD_ROWS)
            .flat_map(|n| plays_at(&format!("art_{n}"), 1, at).cells.clone())
            .collect();
        Arc::new(coliseum_store::ProcessedBatch {
            cells,
            ..coliseum_store::ProcessedBatch::default()
        })
    }

    /// Whether `read` is still pending 300 ms on: waiting for a busy lane.
    async fn still_waiting<F: std::future::Future>(read: std::pin::Pin<&mut F>) -> bool {
        tokio::time::timeout(std::time::Duration::from_millis(300), read)
            .await
            .is_err()
    }

    /// A hot state loaded at `now` from an empty SQLite store, with the
    /// store, the clock and the directory that holds it.
    async fn empty_state_at(
        now: OffsetDateTime,
    ) -> (
        tempfile::TempDir,
        Arc<dyn Rollups>,
        Arc<coliseum_domain::clock::FixedClock>,
        Arc<HotState>,
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store: Arc<dyn Rollups> = Arc::new(coliseum_store_sqlite::SqliteStore::connect(&url).await.expect("open"));
        let clock = Arc::new(coliseum_domain::clock::FixedClock::new(now));
        let hot = Arc::new(HotState::load(store.as_ref(), clock.clone()).await.expect("load"));
        (dir, store, clock, hot)
    }

    #[tokio::test]
    async fn a_board_read_again_is_moved_while_the_build_lane_is_busy() {
        use crate::processor::AppliedSink;
        let now = datetime!(2026-11-20 12:34 UTC);
        let (_dir, store, clock, hot) = empty_state_at(now).await;
        let watermark = |seq| Watermark { seq, as_of: now };
        hot.applied(&plays_at("art_a", 3, now), watermark(1));
        hot.applied(&plays_at("art_b", 2, now), watermark(2));
        // Yesterday is too large a board to build where it is asked.
        hot.applied(&plays_of_more_than_inline(now - time::Duration::days(1)), watermark(3));
        let reads = Reads::new(
            hot.clone(),
            store,
            clock,
            std::time::Duration::ZERO,
            CacheBudget::DEFAULT,
        );
        let query = BoardQuery {
            metric: Metric::Plays,
            range: Range::Month,
            filters: Filters::default(),
        };
        let first = |ranking: &Ranking| ranking.board.name(ranking.board.page(0..1)[0].id).to_owned();
        assert_eq!(first(&reads.leaderboard(&query).await.expect("built")), "art_a");
        let held = reads.builds.hold().await;

        // Plays in the current hour: moved on this worker, not queued.
        hot.applied(&plays_at("art_b", 5, now), watermark(4));
        let moved = tokio::time::timeout(std::time::Duration::from_secs(10), reads.leaderboard(&query))
            .await
            .expect("a move waits for no build lane")
            .expect("moved");
        assert_eq!(moved.version, hot.version());
        assert_eq!(first(&moved), "art_b");

        // A late entry into yesterday: its day tile is summed again, as a
        // job queued in the lane.
        hot.applied(&plays_at("art_a", 10, now - time::Duration::days(1)), watermark(5));
        let read = reads.leaderboard(&query);
        tokio::pin!(read);
        assert!(
            still_waiting(read.as_mut()).await,
            "a move that sums a day tile waits for the build lane"
        );
        drop(held);
        let later = read.await.expect("moved as a job");
        assert_eq!(later.version, hot.version());
        assert_eq!(first(&later), "art_a");
    }

    /// A board first read is built where it is asked when it is small (a
    /// live event's, a genre's in one city), while the build lane is busy
    /// with large ones; a large board waits for the lane.
    #[tokio::test]
    async fn a_small_board_is_built_where_it_is_asked_and_a_large_one_waits() {
        use crate::processor::AppliedSink;
        let now = datetime!(2026-11-20 12:34 UTC);
        let (_dir, store, clock, hot) = empty_state_at(now).await;
        let watermark = |seq| Watermark { seq, as_of: now };
        hot.applied(&plays_at("art_a", 3, now), watermark(1));
        hot.applied(&plays_at("art_b", 2, now), watermark(2));
        let reads = Reads::new(
            hot.clone(),
            store,
            clock,
            std::time::Duration::ZERO,
            CacheBudget::DEFAULT,
        );
        let board = |range| BoardQuery {
            metric: Metric::Plays,
            range,
            filters: Filters::default(),
        };
        let held = reads.builds.hold().await;
        let small = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            reads.leaderboard(&board(Range::Week)),
        )
        .await
        .expect("a small board waits for no build lane")
        .expect("built");
        assert_eq!(small.board.ranked(), 2);
        assert_eq!(small.board.name(small.board.page(0..1)[0].id), "art_a");

        hot.applied(&plays_of_more_than_inline(now - time::Duration::days(1)), watermark(3));
        let large = board(Range::Month);
        let read = reads.leaderboard(&large);
        tokio::pin!(read);
        assert!(
            still_waiting(read.as_mut()).await,
            "a large board waits for the build lane"
        );
        drop(held);
        let large = read.await.expect("built as a job");
        assert_eq!(large.board.ranked(), INLINE_BUILD_ROWS + 3);
    }

    #[tokio::test]
    async fn a_built_boards_order_is_sorted_beside_the_builds_once_for_its_readers() {
        use crate::processor::AppliedSink;
        let now = datetime!(2026-11-20 12:34 UTC);
        let (_dir, store, clock, hot) = empty_state_at(now).await;
        // More artists than a first page: the rest is sorted when asked for.
        let artists = crate::board::TOP as i64 + 50;
        for i in 0..artists {
            let watermark = Watermark { seq: i + 1, as_of: now };
            hot.applied(&plays_at(&format!("art_{i:03}"), i + 1, now), watermark);
        }
        let reads = Reads::new(hot, store, clock, std::time::Duration::ZERO, CacheBudget::DEFAULT);
        let query = BoardQuery {
            metric: Metric::Plays,
            range: Range::Month,
            filters: Filters::default(),
        };
        let ranking = reads.leaderboard(&query).await.expect("built");
        assert!(!ranking.board.is_ordered(), "a new board sorts only its first page");
        let _builds = reads.builds.hold().await;
        let sort = reads.sorts.hold().await;

        // Two readers past the first page at once: one waits for the sort
        // lane, the other for its turn.
        let both = async { tokio::try_join!(reads.ordered(&ranking), reads.ordered(&ranking)) };
        tokio::pin!(both);
        let waiting = std::future::poll_fn(|cx| std::task::Poll::Ready(both.as_mut().poll(cx).is_pending())).await;
        assert!(waiting);
        assert_eq!(
            reads.sorts.started.load(std::sync::atomic::Ordering::Relaxed),
            0,
            "a sort waits for its lane"
        );
        assert!(reads.sorting.busy(&sort_key(&ranking.board)));
        drop(sort);
        tokio::time::timeout(std::time::Duration::from_secs(10), both)
            .await
            .expect("sorted while the build lane is busy")
            .expect("sorted");
        assert!(ranking.board.is_ordered());
        assert_eq!(
            reads.sorts.started.load(std::sync::atomic::Ordering::Relaxed),
            1,
            "sorted once for both"
        );
        assert_eq!(ranking.entries().len(), artists as usize);
        assert_eq!(
            ranking.board.name(ranking.entries()[0].id),
            format!("art_{:03}", artists - 1)
        );
        assert!(!reads.sorting.busy(&sort_key(&ranking.board)), "no gate is left behind");
    }

    #[test]
    fn tiles_cover_a_range_with_days_inside_and_hours_at_the_ends() {
        let day = Grain::Day.bucket_of(datetime!(2026-11-20 0:00 UTC));
        let hour = day * 24;
        // 7d as of 18:04: six whole days, then today's hours so far.
        let now = datetime!(2026-11-20 18:04 UTC);
        assert_eq!(
            tiles(datetime!(2026-11-14 0:00 UTC), now, Grain::Day, now),
            vec![
                tile(Grain::Day, day - 6, day - 1),
                tile(Grain::Hour, hour, hour + 17),
                tile(Grain::Hour, hour + 18, hour + 18)
            ]
        );
        // A custom range from 22:00 to 02:00 two days later, read at 01:30.
        assert_eq!(
            tiles(
                datetime!(2026-11-18 22:00 UTC),
                datetime!(2026-11-20 2:00 UTC),
                Grain::Day,
                datetime!(2026-11-20 1:30 UTC)
            ),
            vec![
                tile(Grain::Hour, hour - 26, hour - 25),
                tile(Grain::Day, day - 1, day - 1),
                tile(Grain::Hour, hour, hour),
                tile(Grain::Hour, hour + 1, hour + 1)
            ]
        );
        // 24h never holds a whole day unless it starts at midnight.
        assert_eq!(
            tiles(datetime!(2026-11-19 19:00 UTC), now, Grain::Day, now),
            vec![
                tile(Grain::Hour, hour - 5, hour + 17),
                tile(Grain::Hour, hour + 18, hour + 18)
            ]
        );
        // In the last hour of a day, that day's hours so far are hour
        // tiles too, the current one of its own: a day tile would change
        // with every batch.
        let late = datetime!(2026-11-20 23:30 UTC);
        assert_eq!(
            tiles(datetime!(2026-11-14 0:00 UTC), late, Grain::Day, late),
            vec![
                tile(Grain::Day, day - 6, day - 1),
                tile(Grain::Hour, hour, hour + 22),
                tile(Grain::Hour, hour + 23, hour + 23)
            ]
        );
        let late = datetime!(2026-11-20 23:00:01 UTC);
        assert_eq!(
            tiles(datetime!(2026-11-19 23:00 UTC), late, Grain::Day, late),
            vec![
                tile(Grain::Hour, hour - 1, hour - 1),
                tile(Grain::Hour, hour, hour + 22),
                tile(Grain::Hour, hour + 23, hour + 23)
            ]
        );
        // So in a range ending after today (November, read on the 20th at
        // 18:04): today is hours around the current one, the days after
        // it a tile of their own.
        assert_eq!(
            tiles(
                datetime!(2026-11-01 0:00 UTC),
                datetime!(2026-12-01 0:00 UTC),
                Grain::Day,
                now
            ),
            vec![
                tile(Grain::Day, day - 19, day - 1),
                tile(Grain::Hour, hour, hour + 17),
                tile(Grain::Hour, hour + 18, hour + 18),
                tile(Grain::Hour, hour + 19, hour + 23),
                tile(Grain::Day, day + 1, day + 10)
            ]
        );
        // A range ending at midnight holds its last day whole, unless that
        // day is today.
        assert_eq!(
            tiles(
                datetime!(2026-11-18 0:00 UTC),
                datetime!(2026-11-20 0:00 UTC),
                Grain::Day,
                now
            ),
            vec![tile(Grain::Day, day - 2, day - 1)]
        );
        assert_eq!(
            tiles(
                datetime!(2026-11-18 0:00 UTC),
                datetime!(2026-11-21 0:00 UTC),
                Grain::Day,
                datetime!(2026-11-20 0:10 UTC)
            ),
            vec![
                tile(Grain::Day, day - 2, day - 1),
                tile(Grain::Hour, hour, hour),
                tile(Grain::Hour, hour + 1, hour + 23)
            ]
        );
        // Hour series never use day buckets. A range ending before the
        // current hour is one tile; one ending with it cuts it out, also in
        // the first second of the next hour, as in the second before.
        let (from, to) = (datetime!(2026-11-14 0:00 UTC), datetime!(2026-11-20 18:00 UTC));
        assert_eq!(
            tiles(from, to, Grain::Hour, datetime!(2026-11-20 19:30 UTC)),
            vec![tile(Grain::Hour, hour - 144, hour + 17)]
        );
        for now in [to - time::Duration::seconds(1), to + time::Duration::milliseconds(400)] {
            assert_eq!(
                tiles(from, to, Grain::Hour, now),
                vec![
                    tile(Grain::Hour, hour - 144, hour + 16),
                    tile(Grain::Hour, hour + 17, hour + 17)
                ],
                "at {now}"
            );
        }
        assert!(
            tiles(
                datetime!(2026-11-20 18:00 UTC),
                datetime!(2026-11-20 18:00 UTC),
                Grain::Day,
                now
            )
            .is_empty()
        );
    }

    proptest! {
        /// Whatever the range and the instant it is read at, its tiles
        /// cover it exactly, in order; the current hour is a tile of its
        /// own, and every other whole day a day tile (where days are used).
        #[test]
        fn tiles_cover_any_range_exactly_with_the_current_hour_alone(
            first in 0_i64..2_000,
            hours in 0_i64..1_500,
            to_seconds in prop_oneof![Just(0_i64), 1_i64..3_600],
            now_seconds in prop_oneof![Just(0_i64), 1_i64..3_600],
            now in 0_i64..4_000,
            finest_is_day: bool,
        ) {
            let base = Grain::Hour.bucket_of(datetime!(2026-11-01 0:00 UTC));
            let at = |hour: i64, seconds: i64| {
                OffsetDateTime::from_unix_timestamp((base + hour) * Grain::SECONDS_PER_HOUR + seconds).expect("instant")
            };
            let finest = if finest_is_day { Grain::Day } else { Grain::Hour };
            let (from, to) = (at(first, 0), at(first + hours, to_seconds));
            let end = base + first + hours + i64::from(to_seconds > 0);
            // The last hour `[.., now)` touches.
            let live = base + now - i64::from(now_seconds == 0);
            let mut next = base + first;
            let mut days = Vec::new();
            for tile in tiles(from, to, finest, at(now, now_seconds)) {
                let (start, last) = match tile.grain {
                    Grain::Hour => (tile.first, tile.last),
                    Grain::Day => (tile.first * 24, tile.last * 24 + 23),
                };
                prop_assert!(tile.first <= tile.last, "{:?}", tile);
                prop_assert_eq!(start, next, "contiguous, in order: {:?}", tile);
                prop_assert!(finest_is_day || tile.grain == Grain::Hour);
                if (start..=last).contains(&live) {
                    prop_assert_eq!(tile, Tile { grain: Grain::Hour, first: live, last: live });
                }
                if tile.grain == Grain::Day {
                    days.extend(tile.first..=tile.last);
                }
                next = last + 1;
            }
            prop_assert_eq!(next, end, "the whole range");
            if finest_is_day {
                let whole_days: Vec<i64> = ((base + first).div_euclid(24)..=end.div_euclid(24))
                    .filter(|day| day * 24 >= base + first && day * 24 + 24 <= end && *day != live.div_euclid(24))
                    .collect();
                prop_assert_eq!(days, whole_days, "every whole day but the current hour's is a day tile");
            }
        }
    }
}

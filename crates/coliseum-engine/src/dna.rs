//! The DNA scores, published: the aggregates scoring reads (fan-days and
//! per-artist daily KPIs) kept in memory with names as numbers, advanced by
//! every applied batch, and scored for the three ranges every few seconds
//! into an immutable [`Publication`] that readers share, so that between two
//! publications every query sees one consistent set of scores.
//!
//! The processor only queues each batch's rows ([`AppliedSink`]); merging
//! and scoring happen on the publisher's thread, so scoring never delays a
//! batch or the KPI boards.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use coliseum_domain::clock::Clock;
use coliseum_domain::kpi::Kpis;
use coliseum_domain::scoring::{self, ArtistScore, DnaBoard, DnaDomain, FanDayRow, NONE, ScoreRange, ScoringConfig};
use coliseum_store::{CellKey, DnaMutation, FanDay, FanDayKey, Grain, ProcessedBatch, Store, StoreError};
use time::OffsetDateTime;

use crate::processor::{AppliedSink, Watermark};

/// How far back the aggregates are loaded: everything hot or archived.
const KEPT_DAYS: i64 = 36 * 31;
/// Publications kept for the cursors that page through them: at each
/// publication, those replaced less than [`CURSOR_LIFE`] ago, at most this
/// many. Each holds every artist's scores and five boards for each range
/// (tens of megabytes at 50,000 artists), and at that scale scoring takes
/// long enough that six publications spanned minutes.
const KEPT_PUBLICATIONS: usize = 6;
/// How long a cursor keeps paging through the scores it started on at least
/// once newer ones are published; after it, from the next publication on,
/// `410 Gone`.
const CURSOR_LIFE: time::Duration = time::Duration::seconds(30);

/// The plans' freshness periods (60 s, 300 s): the boundaries a publication is pinned at.
fn freshness_periods() -> Vec<u32> {
    let mut periods: Vec<u32> = coliseum_domain::plans::Plan::ALL
        .iter()
        .map(|plan| coliseum_domain::plans::Entitlements::of(*plan).freshness_s)
        .filter(|period| *period > 0)
        .collect();
    periods.sort_unstable();
    periods.dedup();
    periods
}
/// How far back movers look (SCORING.md: "the last 7 days").
pub const MOVERS_WINDOW: time::Duration = time::Duration::days(7);
/// Mutations are kept a day beyond what movers read, then deleted: nothing
/// else reads them, and at 50,000 artists a week of them is most of a
/// million rows.
const MUTATIONS_KEPT: time::Duration = MOVERS_WINDOW.saturating_add(time::Duration::days(1));
/// How often the mutations older than [`MUTATIONS_KEPT`] are deleted, and
/// how long after start the first time (the start's own work first).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const PRUNE_FIRST_AFTER: Duration = Duration::from_secs(60);
/// The pause between two chunks of a backlog.
const PRUNE_PAUSE: Duration = Duration::from_millis(20);
/// Mutations deleted by one statement: each chunk holds the store's writer
/// (SQLite has one) for milliseconds, not for the whole backlog.
const PRUNE_CHUNK: u32 = 5_000;

/// Threads a recomputation uses: the machines this runs on have two cores or more.
const SCORING_THREADS: usize = 2;
/// Scores computed for an explicit `as_of`, kept for repeated reads.
const KEPT_EXPLICIT: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DnaSettings {
    /// How often scores are recomputed and published (when anything changed).
    pub interval: Duration,
    pub scoring: ScoringConfig,
}

impl Default for DnaSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            scoring: ScoringConfig::default(),
        }
    }
}

/// Names as dense numbers; `""` is [`NONE`]. Each name is one allocation,
/// shared by the lookup, the list and every publication's scores: a
/// publication names every artist once per range, and several are kept.
#[derive(Debug, Default)]
struct Names {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
    /// What the names hold, kept as they are added: there are millions.
    bytes: usize,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return NONE;
        }
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 4 billion names");
        let name: Arc<str> = name.into();
        // The name once, its two counts, a pointer in the list and one in
        // the lookup beside its id.
        self.bytes += name.len() + 16 + 2 * 16 + 8;
        self.ids.insert(name.clone(), id);
        self.names.push(name);
        id
    }

    fn name(&self, id: u32) -> &str {
        if id == NONE { "" } else { &self.names[id as usize] }
    }

    /// The name of `id`, shared; `None` for [`NONE`].
    fn shared(&self, id: u32) -> Option<Arc<str>> {
        (id != NONE).then(|| self.names[id as usize].clone())
    }
}

/// What scoring reads, in memory.
#[derive(Debug, Default)]
pub struct Aggregates {
    names: Names,
    /// One row per fan-day key (more where its counts pass 16 bits, see
    /// [`FanDayRow`]), sorted by artist, fan, day, city, genre.
    rows: Vec<FanDayRow>,
    /// Undecayed KPI sums by (artist, day).
    kpis: HashMap<(u32, i32), ScoredKpis>,
}

/// The KPIs scoring reads (SCORING.md: revenue, revenue entries, plays and
/// attendance), kept per artist and day: 32 bytes where all six take 48,
/// for every artist's every day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ScoredKpis {
    plays: i64,
    attendance: i64,
    revenue_minor: i64,
    revenue_entries: i64,
}

impl ScoredKpis {
    fn add(&mut self, kpis: &Kpis) {
        self.plays += kpis.plays;
        self.attendance += kpis.attendance;
        self.revenue_minor += kpis.revenue_minor;
        self.revenue_entries += kpis.revenue_entries;
    }

    fn kpis(self) -> Kpis {
        Kpis {
            plays: self.plays,
            attendance: self.attendance,
            revenue_minor: self.revenue_minor,
            revenue_entries: self.revenue_entries,
            ..Kpis::default()
        }
    }
}

/// Artist, fan, day, city, genre: the order the rows are kept in.
type RowKey = (u32, u32, i32, u32, u32);

fn row_key(row: &FanDayRow) -> RowKey {
    (row.artist, row.fan, row.day, row.city, row.genre)
}

/// Adds `more`'s counts to `row`'s (same key). What does not fit in
/// `row`'s 16 bits is returned as another row of the key, to be held
/// after it ([`FanDayRow`]).
fn add_counts(row: &mut FanDayRow, more: &FanDayRow) -> Option<FanDayRow> {
    let mut carry = FanDayRow {
        by_tier: [0; 5],
        influence: 0,
        ..*row
    };
    let add = |mine: &mut u16, theirs: u16, over: &mut u16| {
        let (sum, overflowed) = mine.overflowing_add(theirs);
        if overflowed {
            // The sum is below 2^17: what passes u16::MAX fits 16 bits.
            *over = sum + 1;
            *mine = u16::MAX;
        } else {
            *mine = sum;
        }
    };
    for ((mine, theirs), over) in row.by_tier.iter_mut().zip(more.by_tier).zip(&mut carry.by_tier) {
        add(mine, theirs, over);
    }
    add(&mut row.influence, more.influence, &mut carry.influence);
    (carry.by_tier != [0; 5] || carry.influence != 0).then_some(carry)
}

/// The rows holding `counts` (entries by tier, then influence) of the
/// fan-day `key`: one, or more where a count passes 16 bits. Counts are
/// capped at `u32::MAX` (65,537 rows at most), as they were in 32 bits.
fn rows_of(key: FanDayRow, counts: [i64; 6]) -> impl Iterator<Item = FanDayRow> {
    let mut left = counts.map(|n| u64::try_from(n).unwrap_or(0).min(u64::from(u32::MAX)));
    let mut first = true;
    std::iter::from_fn(move || {
        if !first && left == [0; 6] {
            return None;
        }
        first = false;
        let take = left.map(|n| n.min(u64::from(u16::MAX)) as u16);
        for (n, taken) in left.iter_mut().zip(take) {
            *n -= u64::from(taken);
        }
        Some(FanDayRow {
            by_tier: [take[0], take[1], take[2], take[3], take[4]],
            influence: take[5],
            ..key
        })
    })
}

impl Aggregates {
    /// Bytes held: the rows, the daily KPIs and the names (allocator
    /// overhead aside).
    pub fn memory_bytes(&self) -> usize {
        let rows = self.rows.capacity() * std::mem::size_of::<FanDayRow>();
        let kpis = self.kpis.capacity() * (std::mem::size_of::<((u32, i32), ScoredKpis)>() + 1);
        rows + kpis + self.names.bytes
    }

    /// Says what the aggregates hold on `/metrics`.
    fn report_bytes(&self) {
        metrics::gauge!("coliseum_dna_aggregates_bytes").set(self.memory_bytes() as f64);
    }

    /// How many fan-day rows are held.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    pub fn add_fan_days(&mut self, days: &[(FanDayKey, FanDay)]) {
        let fresh = self.interned(days);
        self.merge(fresh);
    }

    /// Fan-days as rows, in the order given.
    fn interned(&mut self, days: &[(FanDayKey, FanDay)]) -> Vec<FanDayRow> {
        let mut rows = Vec::with_capacity(days.len());
        for (key, day) in days {
            let Ok(day_number) = i32::try_from(key.day) else {
                continue;
            };
            let key = FanDayRow {
                day: day_number,
                artist: self.names.id(&key.artist),
                fan: self.names.id(&key.fan),
                city: self.names.id(&key.city),
                genre: self.names.id(&key.genre),
                by_tier: [0; 5],
                influence: 0,
            };
            let [passive, light, active, committed, patron] = day.by_tier;
            rows.extend(rows_of(key, [passive, light, active, committed, patron, day.influence]));
        }
        rows
    }

    /// Sorts `fresh` and merges it into the rows, summing rows with the
    /// same key. In place: rows already held are summed where they lie and
    /// the new keys are merged in from the back, so a merge moves the rows
    /// once but never copies the whole array into fresh memory (hundreds of
    /// megabytes, faulted in and zeroed by the kernel at every publication).
    ///
    /// Counts are added to the last row of their key, the only one that may
    /// have room: rows that overflow it go after it.
    fn merge(&mut self, mut fresh: Vec<FanDayRow>) {
        fresh.sort_unstable_by_key(row_key);
        // Rows of one key summed where they lie: at start-up `fresh` is
        // every fan-day. Each row read writes one row at most, so the rows
        // kept never pass the one being read.
        let mut kept: usize = 0;
        for at in 0..fresh.len() {
            let row = fresh[at];
            let carry = match kept.checked_sub(1).map(|last| &mut fresh[last]) {
                Some(last) if row_key(last) == row_key(&row) => add_counts(last, &row),
                _ => Some(row),
            };
            if let Some(carry) = carry {
                fresh[kept] = carry;
                kept += 1;
            }
        }
        fresh.truncate(kept);
        let summed = fresh;
        if self.rows.is_empty() {
            // At start-up `fresh` grew by doubling: keep a sixteenth to
            // spare, as below, not up to as much again.
            let spare = summed.len() / 16;
            self.rows = summed;
            self.rows.shrink_to(self.rows.len() + spare);
            return;
        }
        let mut new_keys: Vec<FanDayRow> = Vec::new();
        for row in summed {
            let key = row_key(&row);
            if let Some(last) = new_keys.last_mut().filter(|last| row_key(last) == key) {
                // A row this merge added holds the key's last counts now.
                let carry = add_counts(last, &row);
                new_keys.extend(carry);
                continue;
            }
            let after = self.rows.partition_point(|held| row_key(held) <= key);
            match after.checked_sub(1).filter(|&last| row_key(&self.rows[last]) == key) {
                Some(last) => new_keys.extend(add_counts(&mut self.rows[last], &row)),
                None => new_keys.push(row),
            }
        }
        if new_keys.is_empty() {
            return;
        }
        let held = self.rows.len();
        if self.rows.capacity() < held + new_keys.len() {
            // A sixteenth to spare: growing by doubling would hold twice
            // the rows for good, growing exactly would move them every time.
            self.rows.reserve_exact(new_keys.len() + held / 16);
        }
        self.rows.resize(held + new_keys.len(), new_keys[0]);
        let (mut old, mut new, mut to) = (held, new_keys.len(), self.rows.len());
        while new > 0 {
            to -= 1;
            if old > 0 && row_key(&self.rows[old - 1]) > row_key(&new_keys[new - 1]) {
                old -= 1;
                self.rows[to] = self.rows[old];
            } else {
                new -= 1;
                self.rows[to] = new_keys[new];
            }
        }
    }

    pub fn add_day_cells(&mut self, cells: &[(CellKey, Kpis)]) {
        for (key, kpis) in cells {
            if key.grain != Grain::Day || key.artist.is_empty() {
                continue;
            }
            let Ok(day) = i32::try_from(key.bucket) else { continue };
            let mut scored = ScoredKpis::default();
            scored.add(kpis);
            if scored == ScoredKpis::default() {
                // Votes or engagement alone: nothing scoring reads.
                continue;
            }
            let artist = self.names.id(&key.artist);
            self.kpis.entry((artist, day)).or_default().add(kpis);
        }
    }

    /// Every artist's KPI sums over each range, in [`ScoreRange::ALL`] order.
    fn kpis_over(&self, as_of_day: i64) -> [HashMap<u32, Kpis>; 3] {
        let mut sums: [HashMap<u32, Kpis>; 3] = Default::default();
        for (&(artist, day), kpis) in &self.kpis {
            let age = as_of_day - i64::from(day);
            for (range, sums) in ScoreRange::ALL.iter().zip(&mut sums) {
                if range.counts(age) {
                    *sums.entry(artist).or_default() += kpis.kpis();
                }
            }
        }
        sums
    }

    /// The scores of the three ranges as of a day, each with its five
    /// boards, computed on `threads` threads.
    pub fn score(&self, config: &ScoringConfig, as_of_day: i64, threads: usize) -> Vec<RangeScores> {
        let [days7, days30, all] = self.kpis_over(as_of_day);
        let genre_name = |id: u32| self.names.name(id).to_owned();
        let scores = scoring::score_all(
            config,
            as_of_day,
            &self.rows,
            [&days7, &days30, &all],
            &genre_name,
            threads,
        );
        let ranges = ScoreRange::ALL.into_iter().zip(scores);
        if threads <= 1 {
            return ranges
                .map(|(range, scores)| RangeScores::new(range, scores, &self.names))
                .collect();
        }
        // The boards of the three ranges sorted side by side.
        std::thread::scope(|scope| {
            let handles: Vec<_> = ranges
                .map(|(range, scores)| scope.spawn(move || RangeScores::new(range, scores, &self.names)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        })
    }
}

/// One artist's scores as served.
#[derive(Debug, Clone)]
pub struct Scored {
    pub artist: Arc<str>,
    /// The normalized key of the primary genre, if any.
    pub primary_genre: Option<Arc<str>>,
    pub score: ArtistScore,
}

/// A place on a DNA board.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardEntry {
    pub rank: u64,
    pub artist: Arc<str>,
    /// The reported score (one decimal).
    pub score: f64,
    /// The artist's primary genre, for genre boards.
    pub primary_genre: Option<Arc<str>>,
}

/// A place on a DNA board as kept: the artist by its position among the
/// range's artists. 16 bytes where a [`BoardEntry`] takes 48: a publication
/// holds five boards of every artist for each range, and several
/// publications are kept at once.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Place {
    score: f64,
    rank: u32,
    artist: u32,
}

/// The scores of one range: the population and its five boards.
#[derive(Debug)]
pub struct RangeScores {
    pub range: ScoreRange,
    /// The population, ordered by artist id.
    pub artists: Vec<Scored>,
    /// For each of [`DnaBoard::ALL`]: the population in board order.
    boards: Vec<Vec<Place>>,
    /// For each of [`DnaBoard::ALL`]: the genre boards read so far, by
    /// primary genre. A publication never changes, and filtering a board of
    /// every artist by genre on each read took 7 % of the engine's time
    /// under mixed reads. Only genres some artist has are kept, so together
    /// they hold at most the boards' own places again.
    genre_boards: Vec<Mutex<GenreBoards>>,
}

/// One board's genre boards, by primary genre.
type GenreBoards = HashMap<Arc<str>, Arc<[Place]>>;

/// A DNA board of one range: its places, read a page at a time.
#[derive(Debug)]
pub struct DnaBoardView<'a> {
    scores: &'a RangeScores,
    places: Places<'a>,
}

/// A board's places: a published board itself, or one of its genre boards.
#[derive(Debug)]
enum Places<'a> {
    All(&'a [Place]),
    Genre(Arc<[Place]>),
}

impl std::ops::Deref for Places<'_> {
    type Target = [Place];

    fn deref(&self) -> &[Place] {
        match self {
            Places::All(places) => places,
            Places::Genre(places) => places,
        }
    }
}

impl DnaBoardView<'_> {
    /// How many artists are on the board.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// The entries at `positions` (within [`Self::len`]).
    pub fn page(&self, positions: std::ops::Range<usize>) -> Vec<BoardEntry> {
        self.places[positions]
            .iter()
            .map(|place| {
                let scored = &self.scores.artists[place.artist as usize];
                BoardEntry {
                    rank: u64::from(place.rank),
                    artist: scored.artist.clone(),
                    score: place.score,
                    primary_genre: scored.primary_genre.clone(),
                }
            })
            .collect()
    }

    /// Every entry, in board order.
    pub fn entries(&self) -> Vec<BoardEntry> {
        self.page(0..self.len())
    }
}

impl RangeScores {
    fn new(range: ScoreRange, scores: Vec<ArtistScore>, names: &Names) -> Self {
        let mut artists: Vec<Scored> = scores
            .into_iter()
            .map(|score| Scored {
                artist: names.shared(score.artist).unwrap_or_else(|| "".into()),
                primary_genre: names.shared(score.primary_genre),
                score,
            })
            .collect();
        artists.sort_unstable_by(|a, b| a.artist.cmp(&b.artist));
        let boards: Vec<Vec<Place>> = DnaBoard::ALL
            .iter()
            .map(|&board| {
                let mut order: Vec<(f64, usize)> = artists
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (scoring::reported(board.score_of(&s.score)), i))
                    .collect();
                // Reported score descending, then artist id ascending: the
                // artists are in id order, so their positions compare as ids do.
                order.sort_unstable_by(|(x, i), (y, j)| y.total_cmp(x).then(i.cmp(j)));
                competition_ranks(order.into_iter().map(|(score, i)| (score, i as u32)))
            })
            .collect();
        let genre_boards = boards.iter().map(|_| Mutex::default()).collect();
        Self {
            range,
            artists,
            boards,
            genre_boards,
        }
    }

    fn bytes(&self) -> usize {
        let places: usize = self.boards.iter().map(Vec::capacity).sum::<usize>()
            + self
                .genre_boards
                .iter()
                .map(|kept| {
                    kept.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .values()
                        .map(|b| b.len())
                        .sum::<usize>()
                })
                .sum::<usize>();
        self.artists.capacity() * std::mem::size_of::<Scored>() + places * std::mem::size_of::<Place>()
    }

    pub fn artist(&self, artist: &str) -> Option<&Scored> {
        let found = self.artists.binary_search_by(|s| s.artist.as_ref().cmp(artist));
        found.ok().map(|i| &self.artists[i])
    }

    /// A board, optionally only the artists whose primary genre is `genre`
    /// (ranked among themselves, scored in the whole population). The
    /// unfiltered board is the published one itself, not a copy.
    pub fn board(&self, board: DnaBoard, genre: Option<&str>) -> DnaBoardView<'_> {
        let index = DnaBoard::ALL.iter().position(|b| *b == board).unwrap_or(0);
        let places = match genre {
            None => Places::All(&self.boards[index]),
            Some(genre) => Places::Genre(self.genre_board(index, genre)),
        };
        DnaBoardView { scores: self, places }
    }

    /// Board `index` of the artists whose primary genre is `genre`, kept
    /// once made when any artist has that genre.
    fn genre_board(&self, index: usize, genre: &str) -> Arc<[Place]> {
        let kept = &self.genre_boards[index];
        if let Some(places) = kept.lock().unwrap_or_else(|p| p.into_inner()).get(genre) {
            return places.clone();
        }
        // Made without the lock: readers of other genres do not wait.
        let places: Arc<[Place]> = competition_ranks(
            self.boards[index]
                .iter()
                .filter(|place| self.artists[place.artist as usize].primary_genre.as_deref() == Some(genre))
                .map(|place| (place.score, place.artist)),
        )
        .into();
        if let Some(first) = places.first() {
            let genre = self.artists[first.artist as usize].primary_genre.clone();
            if let Some(genre) = genre {
                kept.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(genre, places.clone());
            }
        }
        places
    }
}

/// Standard competition ranks (1, 2, 2, 4) of `(score, artist)` already in
/// board order.
fn competition_ranks(ordered: impl Iterator<Item = (f64, u32)>) -> Vec<Place> {
    let mut places: Vec<Place> = Vec::new();
    for (position, (score, artist)) in ordered.enumerate() {
        let rank = match places.last() {
            Some(last) if last.score == score => last.rank,
            _ => u32::try_from(position + 1).unwrap_or(u32::MAX),
        };
        places.push(Place { score, rank, artist });
    }
    places
}

/// One consistent set of scores.
#[derive(Debug)]
pub struct Publication {
    /// Names this publication for cursors.
    pub id: u64,
    /// The instant the scores are for.
    pub as_of: OffsetDateTime,
    /// The log position the aggregates reflect.
    pub watermark: Watermark,
    pub config: ScoringConfig,
    ranges: Vec<RangeScores>,
}

impl Publication {
    pub fn range(&self, range: ScoreRange) -> Option<&RangeScores> {
        self.ranges.iter().find(|r| r.range == range)
    }

    /// Bytes held: the scores, the boards and the genre boards made so far
    /// (names, shared with the aggregates, and allocator overhead aside).
    fn bytes(&self) -> usize {
        self.ranges.iter().map(RangeScores::bytes).sum()
    }
}

/// Batches applied since the last merge, shared with the processor (the
/// processor's path only pushes a pointer).
#[derive(Debug, Default)]
struct Incoming {
    batches: Vec<Arc<ProcessedBatch>>,
    watermark: Option<Watermark>,
}

/// An explicit instant and range scores were computed for.
type ExplicitKey = (OffsetDateTime, ScoreRange);
/// An artist's domain score in a range.
type RecordedKey = (Arc<str>, DnaDomain, ScoreRange);

/// The DNA side of the engine.
pub struct Dna {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: DnaSettings,
    aggregates: Mutex<(Aggregates, Watermark)>,
    incoming: Mutex<Incoming>,
    current: RwLock<Arc<Publication>>,
    /// Replaced publications, oldest first, each with when it was replaced.
    recent: Mutex<VecDeque<(OffsetDateTime, Arc<Publication>)>>,
    /// Per freshness period of the plans, the publication in force at its
    /// last boundary: what a reader frozen there is served, however long
    /// after the boundary it first asks.
    pinned: Mutex<Vec<(u32, i64, Arc<Publication>)>>,
    explicit: Mutex<VecDeque<(ExplicitKey, Arc<Publication>)>>,
    /// The last recorded domain score of every (artist, domain, range).
    recorded: Mutex<HashMap<RecordedKey, f64>>,
    /// Whether this node writes its mutations to the store and deletes old
    /// ones: every node until told (see [`Self::record_while`]).
    recording: std::sync::OnceLock<Box<dyn Fn() -> bool + Send + Sync>>,
    /// Held from scoring to serving a publication: each is recorded and
    /// served in the order it was scored.
    publishing: tokio::sync::Mutex<()>,
    /// Batches reached the aggregates that no publication has scored yet:
    /// scores for an explicit instant take the incoming batches too.
    unpublished: std::sync::atomic::AtomicBool,
    next_id: AtomicU64,
}

impl Dna {
    /// Loads the aggregates from the rollups (before the processor starts,
    /// so that every later batch reaches them through [`AppliedSink`]) and
    /// publishes the first scores.
    pub async fn load(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: DnaSettings,
        watermark: Watermark,
    ) -> Result<Arc<Self>, StoreError> {
        let today = Grain::Day.bucket_of(clock.now());
        let mut aggregates = Aggregates::default();
        // A day at a time: the rows arrive as strings and leave as numbers,
        // and are sorted once at the end.
        let mut rows = Vec::new();
        for day in today - KEPT_DAYS..=today + 2 {
            rows.extend(aggregates.interned(&store.fan_days(day, day + 1).await?));
            aggregates.add_day_cells(&store.kpi_cells(Grain::Day, day, day + 1).await?);
        }
        aggregates.merge(rows);
        aggregates.report_bytes();
        let empty = Publication {
            id: 0,
            as_of: clock.now(),
            watermark,
            config: settings.scoring,
            ranges: Vec::new(),
        };
        let dna = Arc::new(Self {
            store,
            clock,
            settings,
            aggregates: Mutex::new((aggregates, watermark)),
            incoming: Mutex::new(Incoming::default()),
            current: RwLock::new(Arc::new(empty)),
            recent: Mutex::new(VecDeque::new()),
            pinned: Mutex::new(Vec::new()),
            explicit: Mutex::new(VecDeque::new()),
            recorded: Mutex::new(HashMap::new()),
            recording: std::sync::OnceLock::new(),
            publishing: tokio::sync::Mutex::new(()),
            unpublished: std::sync::atomic::AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        });
        dna.clone().publish_now().await?;
        Ok(dna)
    }

    /// The scores now being served.
    pub fn current(&self) -> Arc<Publication> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The newest publication made by `instant` (the one a reader frozen at
    /// that boundary saw), or the oldest kept when every kept one is newer.
    /// The placeholder that stands before the first scores is never one.
    pub fn published_by(&self, instant: OffsetDateTime) -> Arc<Publication> {
        let current = self.current();
        if current.as_of <= instant {
            return current;
        }
        {
            let pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, _, publication)) = pinned.iter().find(|(_, at, _)| *at == instant.unix_timestamp()) {
                return publication.clone();
            }
        }
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let scored = || recent.iter().map(|(_, p)| p).filter(|p| !p.ranges.is_empty());
        scored()
            .rev()
            .find(|p| p.as_of <= instant)
            .or_else(|| scored().next())
            .cloned()
            .unwrap_or(current)
    }

    /// A recent publication, for a cursor.
    pub fn publication(&self, id: u64) -> Option<Arc<Publication>> {
        let current = self.current();
        if current.id == id {
            return Some(current);
        }
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().map(|(_, p)| p).find(|p| p.id == id).cloned()
    }

    /// Scores for an explicit instant, computed now (and kept for a while).
    pub async fn at(
        self: &Arc<Self>,
        as_of: OffsetDateTime,
        range: ScoreRange,
    ) -> Result<Arc<Publication>, StoreError> {
        {
            let explicit = self.explicit.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, publication)) = explicit.iter().find(|(key, _)| *key == (as_of, range)) {
                return Ok(publication.clone());
            }
        }
        let dna = self.clone();
        let publication = tokio::task::spawn_blocking(move || {
            let (aggregates, watermark) = &mut *dna.aggregates.lock().unwrap_or_else(|p| p.into_inner());
            dna.take_incoming(aggregates, watermark);
            let as_of_day = Grain::Day.bucket_of(as_of);
            Arc::new(Publication {
                id: dna.next_id.fetch_add(1, Ordering::Relaxed),
                as_of,
                watermark: *watermark,
                config: dna.settings.scoring,
                ranges: aggregates
                    .score(&dna.settings.scoring, as_of_day, SCORING_THREADS)
                    .into_iter()
                    .filter(|scores| scores.range == range)
                    .collect(),
            })
        })
        .await
        .map_err(|error| StoreError::Internal(format!("scoring failed: {error}")))?;
        {
            let mut explicit = self.explicit.lock().unwrap_or_else(|p| p.into_inner());
            explicit.push_back(((as_of, range), publication.clone()));
            if explicit.len() > KEPT_EXPLICIT {
                explicit.pop_front();
            }
        }
        self.report_publications(&self.current());
        Ok(publication)
    }

    /// Publishes every `interval` while anything changed (new batches or a
    /// new day), until `shutdown` turns true. A recomputation that takes
    /// longer than an eighth of the interval stretches the wait to eight
    /// times its length, so that scoring (on both cores while it runs) takes
    /// at most about an eighth of the machine from ingestion and reads.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut wait = self.settings.interval;
        loop {
            if shut_down_within(wait, &mut shutdown).await {
                return;
            }
            let current = self.current();
            let changed = self.has_unpublished();
            let new_day = Grain::Day.bucket_of(self.clock.now()) != Grain::Day.bucket_of(current.as_of);
            if !(changed || new_day) {
                continue;
            }
            let started = std::time::Instant::now();
            if let Err(error) = self.clone().publish_now().await {
                tracing::warn!(%error, "publishing DNA scores failed; the last scores stay served");
            }
            wait = self.settings.interval.max(started.elapsed() * 8);
        }
    }

    /// Whether batches arrived that no publication has scored yet.
    pub fn has_unpublished(&self) -> bool {
        self.unpublished.load(Ordering::Relaxed)
            || self
                .incoming
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .watermark
                .is_some()
    }

    /// Scores the three ranges as of now, records the mutations (on the
    /// node that records them) and then serves the scores. Recorded first:
    /// movers read a publication's mutations up to its instant, and the
    /// body they make is shared for a while, so a publication served before
    /// its mutations were written showed movers without its own changes.
    /// On a task of its own: a caller that stops waiting does not cut a
    /// publication off between its scoring and its serving.
    pub async fn publish_now(self: Arc<Self>) -> Result<Arc<Publication>, StoreError> {
        tokio::spawn(self.publish())
            .await
            .map_err(|error| StoreError::Internal(format!("publishing DNA scores failed: {error}")))?
    }

    async fn publish(self: Arc<Self>) -> Result<Arc<Publication>, StoreError> {
        let _publishing = self.publishing.lock().await;
        let dna = self.clone();
        let (publication, mutations) = tokio::task::spawn_blocking(move || dna.score())
            .await
            .map_err(|error| StoreError::Internal(format!("scoring failed: {error}")))?;
        if self.records()
            && let Err(error) = self.store.record_mutations(&mutations).await
        {
            // The scores are served all the same; the mutations are
            // recorded with a later publication, against the values before.
            tracing::warn!(%error, "recording DNA mutations failed; they are tried again with the next scores");
            self.forget_recorded(&mutations);
        }
        self.serve(publication.clone());
        Ok(publication)
    }

    /// Puts back the recorded values `mutations` moved on from.
    fn forget_recorded(&self, mutations: &[DnaMutation]) {
        let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        for mutation in mutations {
            let domain = DnaDomain::ALL.into_iter().find(|d| d.letter() == mutation.domain);
            let range = ScoreRange::ALL.into_iter().find(|r| r.as_str() == mutation.range);
            if let (Some(domain), Some(range)) = (domain, range) {
                recorded.insert((mutation.artist.as_str().into(), domain, range), mutation.old);
            }
        }
    }

    /// Writes mutations to the store, and deletes old ones, only while
    /// `leading` says so. Every node of a cluster publishes the same scores
    /// from the same batches, and each wrote every mutation again. Each
    /// still keeps its own last recorded values, so a node that takes the
    /// lead goes on from the scores it last published. Set once.
    pub fn record_while(&self, leading: impl Fn() -> bool + Send + Sync + 'static) {
        if self.recording.set(Box::new(leading)).is_err() {
            tracing::warn!("DNA mutations already have a recording node; the first rule stands");
        }
    }

    fn records(&self) -> bool {
        self.recording.get().is_none_or(|leading| leading())
    }

    /// Deletes the mutations movers no longer read, a minute after start and
    /// then hourly, until `shutdown`. A task of its own: the first run on a
    /// store that kept every mutation deletes months of them, and must not
    /// hold up publications meanwhile.
    pub async fn prune_hourly(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut wait = PRUNE_FIRST_AFTER;
        loop {
            if shut_down_within(wait, &mut shutdown).await {
                return;
            }
            wait = PRUNE_EVERY;
            match self.prune_mutations().await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "deleted DNA mutations older than movers read"),
                Err(error) => tracing::warn!(%error, "deleting old DNA mutations failed; retried in an hour"),
            }
        }
    }

    /// Deletes the mutations older than [`MUTATIONS_KEPT`], a board and a
    /// chunk at a time, on the node that records them, and says how many it
    /// deleted.
    pub async fn prune_mutations(&self) -> Result<u64, StoreError> {
        let before = self.clock.now() - MUTATIONS_KEPT;
        let mut deleted = 0;
        if !self.records() {
            return Ok(deleted);
        }
        for domain in DnaDomain::ALL {
            for range in ScoreRange::ALL {
                loop {
                    let chunk = self
                        .store
                        .prune_mutations(domain.letter(), range.as_str(), before, PRUNE_CHUNK)
                        .await?;
                    deleted += chunk;
                    if chunk < u64::from(PRUNE_CHUNK) {
                        break;
                    }
                    // The batches' writes go first between two chunks.
                    tokio::time::sleep(PRUNE_PAUSE).await;
                }
            }
        }
        Ok(deleted)
    }

    fn take_incoming(&self, aggregates: &mut Aggregates, watermark: &mut Watermark) {
        let incoming = std::mem::take(&mut *self.incoming.lock().unwrap_or_else(|p| p.into_inner()));
        if incoming.watermark.is_some() {
            self.unpublished.store(true, Ordering::Relaxed);
        }
        let mut rows = Vec::new();
        for batch in &incoming.batches {
            rows.extend(aggregates.interned(&batch.fan_days));
            aggregates.add_day_cells(&batch.cells);
        }
        aggregates.merge(rows);
        aggregates.report_bytes();
        if let Some(newer) = incoming.watermark {
            *watermark = newer;
        }
    }

    /// The scores of the three ranges as of now, and their mutations.
    fn score(&self) -> (Arc<Publication>, Vec<DnaMutation>) {
        let (aggregates, watermark) = &mut *self.aggregates.lock().unwrap_or_else(|p| p.into_inner());
        self.take_incoming(aggregates, watermark);
        // Under the aggregates' lock: what arrives from here on is the
        // next publication's.
        self.unpublished.store(false, Ordering::Relaxed);
        let as_of = self.clock.now();
        let as_of_day = Grain::Day.bucket_of(as_of);
        let config = self.settings.scoring;
        let ranges = aggregates.score(&config, as_of_day, SCORING_THREADS);
        let publication = Arc::new(Publication {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            as_of,
            watermark: *watermark,
            config,
            ranges,
        });
        let mutations = self.mutations(&publication);
        (publication, mutations)
    }

    /// Makes `publication` the one served, keeping the one it replaces for
    /// cursors and for readers frozen at a boundary it crossed.
    fn serve(&self, publication: Arc<Publication>) {
        let as_of = publication.as_of;
        let previous = std::mem::replace(
            &mut *self.current.write().unwrap_or_else(|p| p.into_inner()),
            publication.clone(),
        );
        if !previous.ranges.is_empty() {
            let mut pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
            for period in freshness_periods() {
                let crossed = crate::served::boundary(publication.as_of, period);
                if crossed > crate::served::boundary(previous.as_of, period) {
                    pinned.retain(|(p, _, _)| *p != period);
                    pinned.push((period, crossed, previous.clone()));
                }
            }
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_back((as_of, previous));
        while recent.len() > KEPT_PUBLICATIONS
            || recent
                .front()
                .is_some_and(|(replaced, _)| *replaced < as_of - CURSOR_LIFE)
        {
            recent.pop_front();
        }
        drop(recent);
        self.report_publications(&publication);
    }

    /// Says on `/metrics` how many publications are held (the one served,
    /// those kept for cursors, for readers frozen at a boundary and for
    /// explicit instants; not the empty one before the first) and what they
    /// hold together. Frozen plans' reads may hold on to a replaced one a
    /// while longer (`served`): not counted.
    fn report_publications(&self, current: &Arc<Publication>) {
        let mut held: Vec<Arc<Publication>> = vec![current.clone()];
        held.extend(
            self.recent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(_, p)| p.clone()),
        );
        held.extend(
            self.pinned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(_, _, p)| p.clone()),
        );
        held.extend(
            self.explicit
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(_, p)| p.clone()),
        );
        held.retain(|p| !p.ranges.is_empty());
        held.sort_unstable_by_key(|p| Arc::as_ptr(p) as usize);
        held.dedup_by(|a, b| Arc::ptr_eq(a, b));
        metrics::gauge!("coliseum_dna_publications").set(held.len() as f64);
        metrics::gauge!("coliseum_dna_publications_bytes").set(held.iter().map(|p| p.bytes()).sum::<usize>() as f64);
    }

    /// Domain scores that moved by the configured points or more against the
    /// last recorded value; the first value seen since start-up is recorded
    /// as it is.
    fn mutations(&self, publication: &Publication) -> Vec<DnaMutation> {
        let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        let mut mutations = Vec::new();
        for scores in &publication.ranges {
            for scored in &scores.artists {
                for domain in DnaDomain::ALL {
                    let new = scoring::reported(DnaBoard::Domain(domain).score_of(&scored.score));
                    let key = (scored.artist.clone(), domain, scores.range);
                    match recorded.get(&key) {
                        Some(&old) if (new - old).abs() + 1e-9 < publication.config.mutation_points => {}
                        Some(&old) => {
                            mutations.push(DnaMutation {
                                artist: scored.artist.to_string(),
                                domain: domain.letter().to_owned(),
                                range: scores.range.as_str().to_owned(),
                                old,
                                new,
                                at: publication.as_of,
                            });
                            recorded.insert(key, new);
                        }
                        None => {
                            recorded.insert(key, new);
                        }
                    }
                }
            }
        }
        mutations
    }
}

impl std::fmt::Debug for Dna {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dna")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AppliedSink for Dna {
    fn applied(&self, batch: &Arc<ProcessedBatch>, watermark: Watermark) {
        let mut incoming = self.incoming.lock().unwrap_or_else(|p| p.into_inner());
        incoming.batches.push(batch.clone());
        incoming.watermark = Some(watermark);
    }
}

/// Waits `wait`, or less when `shutdown` turns true, and says whether it did.
async fn shut_down_within(wait: Duration, shutdown: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = shutdown.changed() => {}
    }
    *shutdown.borrow()
}

/// The largest gains of one domain and range since `since`, from the
/// recorded mutations: for each artist, its last new score minus its first
/// old one; gains only, largest first, then by artist id.
pub fn movers(mutations: &[DnaMutation], domain: DnaDomain, range: ScoreRange) -> Vec<(String, f64, f64)> {
    let mut by_artist: HashMap<&str, (f64, f64)> = HashMap::new();
    for m in mutations
        .iter()
        .filter(|m| m.domain == domain.letter() && m.range == range.as_str())
    {
        by_artist
            .entry(m.artist.as_str())
            .and_modify(|(_, last)| *last = m.new)
            .or_insert((m.old, m.new));
    }
    let mut gains: Vec<(String, f64, f64)> = by_artist
        .into_iter()
        .filter(|(_, (first, last))| last > first)
        .map(|(artist, (first, last))| (artist.to_owned(), first, last))
        .collect();
    gains.sort_by(|a, b| (b.2 - b.1).total_cmp(&(a.2 - a.1)).then_with(|| a.0.cmp(&b.0)));
    gains
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn merging_batches_in_place_sums_each_key_once_in_key_order() {
        let mut state = 9_u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n) as u32
        };
        let mut aggregates = Aggregates::default();
        let mut expected: BTreeMap<RowKey, [u32; 6]> = BTreeMap::new();
        for batch in 0..40 {
            // Batches of every size, keys repeating within and across them,
            // and counts that pass 16 bits in a few batches.
            let fresh: Vec<FanDayRow> = (0..next(300) + u32::from(batch == 0))
                .map(|_| FanDayRow {
                    day: 20_000 + next(3) as i32,
                    artist: next(20),
                    fan: next(30),
                    city: next(2),
                    genre: next(2),
                    by_tier: [next(3) as u16, 0, next(2) as u16, 0, 1],
                    influence: if next(50) == 0 {
                        20_000 + next(45_000) as u16
                    } else {
                        next(2) as u16
                    },
                })
                .collect();
            for row in &fresh {
                add_to(expected.entry(row_key(row)).or_default(), row);
            }
            aggregates.merge(fresh);
            assert!(aggregates.rows.is_sorted_by_key(row_key), "after batch {batch}");
            let mut held: BTreeMap<RowKey, ([u32; 6], u32)> = BTreeMap::new();
            for row in &aggregates.rows {
                let (sums, rows) = held.entry(row_key(row)).or_default();
                add_to(sums, row);
                *rows += 1;
            }
            for (key, (_, rows)) in &held {
                let most = expected[key]
                    .iter()
                    .map(|n| n.div_ceil(u32::from(u16::MAX)))
                    .sum::<u32>();
                assert!(*rows <= most.max(1), "{rows} rows for {key:?}");
            }
            // Of a key's rows, all but the last are full in some count.
            for pair in aggregates.rows.windows(2) {
                if row_key(&pair[0]) == row_key(&pair[1]) {
                    let full = pair[0]
                        .by_tier
                        .iter()
                        .chain([&pair[0].influence])
                        .any(|n| *n == u16::MAX);
                    assert!(full, "a row before the last of its key has room: {:?}", pair[0]);
                }
            }
            let held: Vec<_> = held.into_iter().map(|(key, (sums, _))| (key, sums)).collect();
            let want: Vec<_> = expected.iter().map(|(k, v)| (*k, *v)).collect();
            assert_eq!(held, want, "after batch {batch}");
        }
        assert!(
            aggregates.rows.windows(2).any(|w| row_key(&w[0]) == row_key(&w[1])),
            "some fan-day passed 16 bits"
        );
    }

    fn add_to(sums: &mut [u32; 6], row: &FanDayRow) {
        let counts = row.by_tier.iter().chain([&row.influence]);
        for (sum, n) in sums.iter_mut().zip(counts) {
            *sum += u32::from(*n);
        }
    }

    #[test]
    fn counts_that_overflow_go_after_the_last_row_of_their_key() {
        assert_eq!(std::mem::size_of::<FanDayRow>(), 32);
        let key = |influence: u16| FanDayRow {
            day: 20_000,
            artist: 1,
            fan: 2,
            city: 3,
            genre: 4,
            by_tier: [0, 1, 0, 0, 0],
            influence,
        };
        let (before, after) = (FanDayRow { artist: 0, ..key(5) }, FanDayRow { artist: 9, ..key(5) });
        let mut aggregates = Aggregates::default();
        aggregates.merge(vec![after, key(60_000), before]);
        // The held row overflows: the rest goes after it.
        aggregates.merge(vec![key(60_000)]);
        // Two rows of the batch overflow together, then against the last
        // held row, then against the row this merge added.
        aggregates.merge(vec![key(40_000), after, key(40_000)]);
        // Room only in the last row.
        aggregates.merge(vec![key(1)]);
        let rows: Vec<(u32, u16, u16)> = aggregates
            .rows
            .iter()
            .map(|row| (row.artist, row.by_tier[1], row.influence))
            .collect();
        assert_eq!(
            rows,
            [
                (0, 1, 5),
                (1, 2, 65_535),
                (1, 2, 65_535),
                (1, 0, 65_535),
                (1, 1, 3_396),
                (9, 2, 10)
            ],
            "200,001 influence entries in the fewest rows, in the order they filled"
        );
    }

    #[test]
    fn counts_past_sixteen_bits_become_rows_of_the_same_key() {
        let key = FanDayRow {
            day: 20_000,
            artist: 1,
            fan: 2,
            city: 3,
            genre: 4,
            by_tier: [0; 5],
            influence: 0,
        };
        let rows: Vec<FanDayRow> = rows_of(key, [0, 200_000, 3, -4, 0, 65_535]).collect();
        assert_eq!(rows.len(), 4, "200,000 entries of one tier take four rows");
        let mut sums = [0_u32; 6];
        for row in &rows {
            assert_eq!(row_key(row), row_key(&key));
            add_to(&mut sums, row);
        }
        assert_eq!(sums, [0, 200_000, 3, 0, 0, 65_535], "a negative count is none");
        assert_eq!(
            rows_of(key, [0; 6]).count(),
            1,
            "a fan-day without counts is still one row"
        );
        assert_eq!(
            rows_of(key, [i64::MAX, 0, 0, 0, 0, 0]).count(),
            65_537,
            "capped at u32::MAX as before"
        );
    }
}

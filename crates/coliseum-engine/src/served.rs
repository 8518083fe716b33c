//! Served snapshots: what plans below Enterprise are shown. PLANS.md sells
//! freshness: Public, Free and Basic see the state as of the last 5-minute
//! boundary, Pro as of the last minute, Enterprise the live state. Each
//! board, KPI report or DNA publication read on a tier is frozen at that
//! tier's boundary and served until the next; a refresher recomputes, just
//! after each boundary, everything read on that tier during the period
//! before, so the frozen value is the state of the boundary (to within the
//! refresher's tick). A value nobody read for a whole period is dropped.
//! A value is computed as of its boundary, whenever it is first read: the
//! figures now, over the range as it stood at the boundary, less what the
//! batches applied since added (the hot state's [`crate::journal`]), so a
//! reader who varies a query (a custom range's end, a filter, a bucket)
//! still sees the state of the boundary, never a later one.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coliseum_domain::clock::Clock;
use coliseum_domain::kpi::Kpis;
use coliseum_domain::range::Range;
use coliseum_store::{CellKey, Grain, StoreError};
use time::OffsetDateTime;

use crate::dna::{Dna, Publication};
use crate::reads::{BoardQuery, Filters, KpiQuery, KpiReport, Ranking, Reads, covered_hours};

/// How often the refresher looks for boundaries passed.
const TICK: Duration = Duration::from_millis(200);
/// Frozen values kept at most per kind; past it, values not read in the
/// current period make room, and if none, a new value is not kept.
const KEPT: usize = 20_000;

/// The start of the `period_s`-second period `now` is in, in Unix seconds.
pub fn boundary(now: OffsetDateTime, period_s: u32) -> i64 {
    let period = i64::from(period_s.max(1));
    now.unix_timestamp().div_euclid(period) * period
}

#[derive(Debug)]
struct Frozen<V> {
    /// The boundary the value stands for.
    boundary: i64,
    value: V,
    /// The boundary of the last period in which it was read.
    read_in: i64,
}

/// Values frozen per key and period, bounded by their count and by their
/// weight (a leaderboard weighs its ranked entries): the values of many
/// distinct boards would otherwise hold gigabytes.
#[derive(Debug)]
pub struct FrozenMap<K, V> {
    entries: Mutex<Held<K, V>>,
    weight: fn(&V) -> usize,
    budget: usize,
}

#[derive(Debug)]
struct Held<K, V> {
    values: HashMap<(K, u32), Frozen<V>>,
    weight: usize,
}

impl<K, V> Default for FrozenMap<K, V> {
    fn default() -> Self {
        Self::weighed(|_| 1, KEPT)
    }
}

impl<K, V> FrozenMap<K, V> {
    /// A map holding values of at most `budget` in total `weight`.
    pub fn weighed(weight: fn(&V) -> usize, budget: usize) -> Self {
        Self {
            entries: Mutex::new(Held {
                values: HashMap::new(),
                weight: 0,
            }),
            weight,
            budget,
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> FrozenMap<K, V> {
    /// The value frozen for `key` at the current boundary (or, while the
    /// refresher has not reached it yet, the one before).
    pub fn get(&self, key: &K, period_s: u32, now: OffsetDateTime) -> Option<V> {
        let current = boundary(now, period_s);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let frozen = entries.values.get_mut(&(key.clone(), period_s))?;
        if frozen.boundary < current - i64::from(period_s) {
            return None;
        }
        frozen.read_in = current;
        Some(frozen.value.clone())
    }

    pub fn put(&self, key: K, period_s: u32, now: OffsetDateTime, value: V) {
        let current = boundary(now, period_s);
        let weight = (self.weight)(&value);
        let mut held = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let full = |held: &Held<K, V>| held.values.len() >= KEPT || held.weight + weight > self.budget;
        if full(&held) {
            // Full: what was not read in this period goes first, so that one
            // caller's many new keys cannot flush everyone's frozen values.
            held.retain(self.weight, |(_, period), frozen| {
                frozen.read_in >= boundary(now, *period)
            });
            if full(&held) && !held.values.contains_key(&(key.clone(), period_s)) {
                // Still full of values read this period: this one is served unkept.
                return;
            }
        }
        let read_in = held.values.get(&(key.clone(), period_s)).map_or(current, |f| f.read_in);
        held.weight += weight;
        let frozen = Frozen {
            boundary: current,
            value,
            read_in,
        };
        if let Some(replaced) = held.values.insert((key, period_s), frozen) {
            held.weight -= (self.weight)(&replaced.value);
        }
    }

    /// Keys read during the period before the current boundary whose value
    /// is older than it; forgets those nobody read for a whole period.
    fn due(&self, now: OffsetDateTime) -> Vec<(K, u32)> {
        let mut held = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(self.weight, |(_, period), frozen| {
            frozen.read_in >= boundary(now, *period) - i64::from(*period)
        });
        held.values
            .iter()
            .filter(|((_, period), frozen)| frozen.boundary < boundary(now, *period))
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// A value frozen for `period_s` matching `found`.
    fn find(&self, period_s: u32, found: impl Fn(&V) -> bool) -> Option<V> {
        let held = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        held.values
            .iter()
            .filter(|((_, period), _)| *period == period_s)
            .map(|(_, f)| &f.value)
            .find(|v| found(v))
            .cloned()
    }
}

impl<K: Hash + Eq, V> Held<K, V> {
    /// Keeps the values `keep` says, and their weight.
    fn retain(&mut self, weight: fn(&V) -> usize, keep: impl Fn(&(K, u32), &Frozen<V>) -> bool) {
        self.values.retain(|key, frozen| keep(key, frozen));
        self.weight = self.values.values().map(|frozen| weight(&frozen.value)).sum();
    }
}

/// Artists held by frozen leaderboards at most (16 bytes each ranked, 12
/// below zero), and points by frozen KPI series (64 bytes each).
const FROZEN_RANKED: usize = 4_000_000;
const FROZEN_POINTS: usize = 1_000_000;

/// The reads of the tiers that are not live.
pub struct Served {
    reads: Arc<Reads>,
    dna: Arc<Dna>,
    clock: Arc<dyn Clock>,
    boards: FrozenMap<BoardQuery, Arc<Ranking>>,
    kpis: FrozenMap<KpiQuery, KpiReport>,
    publications: FrozenMap<(), Arc<Publication>>,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served").finish_non_exhaustive()
    }
}

impl Served {
    pub fn new(reads: Arc<Reads>, dna: Arc<Dna>, clock: Arc<dyn Clock>) -> Self {
        Self {
            reads,
            dna,
            clock,
            boards: FrozenMap::weighed(|ranking: &Arc<Ranking>| ranking.board.valued() + 1, FROZEN_RANKED),
            kpis: FrozenMap::weighed(|report: &KpiReport| report.series.len() + 1, FROZEN_POINTS),
            publications: FrozenMap::default(),
        }
    }

    /// The leaderboard for `query` as a reader `freshness_s` behind sees it
    /// (0: live).
    pub async fn leaderboard(&self, query: &BoardQuery, freshness_s: u32) -> Result<Arc<Ranking>, StoreError> {
        if freshness_s == 0 {
            return self.reads.leaderboard(query).await;
        }
        let now = self.clock.now();
        if let Some(ranking) = self.boards.get(query, freshness_s, now) {
            return Ok(ranking);
        }
        let ranking = self.board_at(query, freshness_s, now).await?;
        self.boards.put(query.clone(), freshness_s, now, ranking.clone());
        Ok(ranking)
    }

    /// The board for `query` as it stood at the last `period_s` boundary
    /// before `now`.
    async fn board_at(
        &self,
        query: &BoardQuery,
        period_s: u32,
        now: OffsetDateTime,
    ) -> Result<Arc<Ranking>, StoreError> {
        let (instant, bounds) = self.at_boundary(query.range, period_s, now);
        let live = self.reads.leaderboard(&over(query, bounds)).await?;
        let since = self.reads.since(instant, live.version);
        let mut later: HashMap<&str, i64> = HashMap::new();
        let counted = Counted::new(&query.filters, None, bounds);
        for (key, kpis) in since.cells() {
            if !key.artist.is_empty() && counted.counts(key) {
                *later.entry(key.artist.as_str()).or_default() += kpis.metric(query.metric);
            }
        }
        let watermark = since.watermark_at(live.watermark, instant);
        later.retain(|_, value| *value != 0);
        if later.is_empty() {
            return Ok(self.reads.relabelled(&live, query.clone(), bounds, watermark));
        }
        Ok(self.reads.less(&live, query.clone(), bounds, watermark, later))
    }

    /// The boundary's instant, and `range`'s bounds for the data as it
    /// stood then (complete up to the boundary, or less when processing
    /// was behind).
    fn at_boundary(
        &self,
        range: Range,
        period_s: u32,
        now: OffsetDateTime,
    ) -> (OffsetDateTime, (OffsetDateTime, OffsetDateTime)) {
        let instant = boundary_instant(now, period_s);
        let as_of = instant.min(self.reads.watermark().as_of);
        (instant, self.reads.bounds_at(range, as_of))
    }

    /// Makes `ranking`'s whole order ready before a read past its first
    /// page (see [`Reads::ordered`]).
    pub async fn ordered(&self, ranking: &Ranking) -> Result<(), StoreError> {
        self.reads.ordered(ranking).await
    }

    /// A ranking handed out earlier to a reader `freshness_s` behind, for
    /// its cursors: a live one only to live readers (ids are sequential, and
    /// a cursor must not be a way to the live state).
    pub fn snapshot(&self, id: u64, freshness_s: u32) -> Option<Arc<Ranking>> {
        if freshness_s == 0 {
            return self.reads.snapshot(id);
        }
        self.boards.find(freshness_s, |r| r.id == id)
    }

    pub async fn kpis(&self, query: &KpiQuery, freshness_s: u32) -> Result<KpiReport, StoreError> {
        if freshness_s == 0 {
            return self.reads.kpis(query).await;
        }
        let now = self.clock.now();
        if let Some(report) = self.kpis.get(query, freshness_s, now) {
            return Ok(report);
        }
        let report = self.kpis_at(query, freshness_s, now).await?;
        self.kpis.put(query.clone(), freshness_s, now, report.clone());
        Ok(report)
    }

    /// The KPI report for `query` as it stood at the last `period_s`
    /// boundary before `now`.
    async fn kpis_at(&self, query: &KpiQuery, period_s: u32, now: OffsetDateTime) -> Result<KpiReport, StoreError> {
        let (instant, bounds) = self.at_boundary(query.range, period_s, now);
        let at_bounds = KpiQuery {
            range: Range::Custom {
                from: bounds.0,
                to: bounds.1,
            },
            ..query.clone()
        };
        let live = self.reads.kpis(&at_bounds).await?;
        let since = self.reads.since(instant, live.version);
        let mut points: BTreeMap<i64, Kpis> = live
            .series
            .iter()
            .map(|(start, kpis)| (query.bucket.bucket_of(*start), *kpis))
            .collect();
        let counted = Counted::new(&query.filters, query.artist.as_deref(), bounds);
        for (key, kpis) in since.cells() {
            if counted.counts(key) {
                let bucket = query.bucket.bucket_of(Grain::Hour.start_of(key.bucket));
                *points.entry(bucket).or_default() -= *kpis;
            }
        }
        let series: Vec<(OffsetDateTime, Kpis)> = points
            .into_iter()
            .filter(|(_, kpis)| !kpis.is_zero())
            .map(|(bucket, kpis)| (query.bucket.start_of(bucket), kpis))
            .collect();
        Ok(KpiReport {
            from: bounds.0,
            to: bounds.1,
            watermark: since.watermark_at(live.watermark, instant),
            version: live.version,
            totals: series.iter().map(|(_, kpis)| *kpis).sum(),
            series,
        })
    }

    /// The DNA publication a reader `freshness_s` behind sees.
    pub fn publication(&self, freshness_s: u32) -> Arc<Publication> {
        if freshness_s == 0 {
            return self.dna.current();
        }
        let now = self.clock.now();
        if let Some(publication) = self.publications.get(&(), freshness_s, now) {
            return publication;
        }
        let publication = self.dna.published_by(boundary_instant(now, freshness_s));
        self.publications.put((), freshness_s, now, publication.clone());
        publication
    }

    /// A publication handed out earlier to a reader `freshness_s` behind,
    /// for its cursors (live ones to live readers only).
    pub fn publication_by_id(&self, id: u64, freshness_s: u32) -> Option<Arc<Publication>> {
        if freshness_s == 0 {
            return self.dna.publication(id);
        }
        self.publications.find(freshness_s, |p| p.id == id)
    }

    /// Refreshes what is due at each boundary, until `shutdown` says stop.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !*shutdown.borrow() {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => continue,
            }
            if let Err(error) = self.refresh().await {
                tracing::warn!(error = %error, "served snapshots not refreshed");
            }
        }
    }

    /// Freezes, at the current boundary, every value read in the period before.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        for (query, period) in self.boards.due(now) {
            let ranking = self.board_at(&query, period, now).await?;
            self.boards.put(query, period, now, ranking);
        }
        for (query, period) in self.kpis.due(now) {
            let report = self.kpis_at(&query, period, now).await?;
            self.kpis.put(query, period, now, report);
        }
        for ((), period) in self.publications.due(now) {
            self.publications
                .put((), period, now, self.dna.published_by(boundary_instant(now, period)));
        }
        Ok(())
    }
}

/// The instant of the last `period_s` boundary at or before `now`.
fn boundary_instant(now: OffsetDateTime, period_s: u32) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(boundary(now, period_s)).unwrap_or(now)
}

/// `query` over fixed bounds.
fn over(query: &BoardQuery, (from, to): (OffsetDateTime, OffsetDateTime)) -> BoardQuery {
    BoardQuery {
        range: Range::Custom { from, to },
        ..query.clone()
    }
}

/// Which hour cells count in a read of `filters` (and of `artist`, when
/// given) over `[from, to)`: those of the hour buckets the read sums
/// ([`covered_hours`]), so that a frozen value takes away exactly what the
/// live one it starts from holds. The range is turned into hour buckets
/// once: a frozen read tests every cell applied since its boundary,
/// hundreds of thousands after a few minutes of heavy traffic.
struct Counted<'a> {
    hours: std::ops::Range<i64>,
    filters: &'a Filters,
    artist: Option<&'a str>,
}

impl<'a> Counted<'a> {
    fn new(filters: &'a Filters, artist: Option<&'a str>, (from, to): (OffsetDateTime, OffsetDateTime)) -> Self {
        Self {
            hours: covered_hours(from, to),
            filters,
            artist,
        }
    }

    fn counts(&self, key: &CellKey) -> bool {
        let matches = |wanted: &Option<String>, have: &str| wanted.as_deref().is_none_or(|wanted| wanted == have);
        self.hours.contains(&key.bucket)
            && matches(&self.filters.city, &key.city)
            && matches(&self.filters.genre, &key.genre)
            && matches(&self.filters.live_event, &key.live_event)
            && self.artist.is_none_or(|artist| artist == key.artist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn cells_count_when_their_hour_overlaps_the_range_and_they_match_the_filters() {
        let hour = |h: i64| Grain::Hour.bucket_of(datetime!(2026-11-24 0:00 UTC)) + h;
        let cell = |h: i64, city: &str| CellKey {
            grain: Grain::Hour,
            bucket: hour(h),
            artist: "art_1".to_owned(),
            city: city.to_owned(),
            genre: String::new(),
            live_event: String::new(),
        };
        let bounds = (datetime!(2026-11-24 12:30 UTC), datetime!(2026-11-24 14:10 UTC));
        let anywhere = Filters::default();
        let counted = Counted::new(&anywhere, None, bounds);
        let counting: Vec<i64> = (10..17).filter(|h| counted.counts(&cell(*h, "lagos"))).collect();
        assert_eq!(counting, [12, 13, 14], "the hours that overlap 12:30–14:10");
        let lagos = Filters {
            city: Some("lagos".to_owned()),
            ..Filters::default()
        };
        let counted = Counted::new(&lagos, Some("art_1"), bounds);
        assert!(counted.counts(&cell(13, "lagos")));
        assert!(!counted.counts(&cell(13, "accra")));
        assert!(!Counted::new(&lagos, Some("art_2"), bounds).counts(&cell(13, "lagos")));
    }

    #[test]
    fn values_hold_until_the_next_boundary_then_refresh_only_if_read() {
        let map: FrozenMap<&str, u32> = FrozenMap::default();
        let at = |s: i64| datetime!(2026-11-24 12:00 UTC) + time::Duration::seconds(s);
        assert_eq!(map.get(&"board", 300, at(10)), None);
        map.put("board", 300, at(10), 1);
        assert_eq!(map.get(&"board", 300, at(299)), Some(1), "held within the period");
        assert!(map.due(at(299)).is_empty());
        // Past the boundary: the old value until the refresher puts the new one.
        assert_eq!(map.due(at(301)), [("board", 300)]);
        assert_eq!(map.get(&"board", 300, at(301)), Some(1));
        map.put("board", 300, at(301), 2);
        assert_eq!(map.get(&"board", 300, at(350)), Some(2));
        assert!(map.due(at(350)).is_empty());
        // Not read during a whole period: forgotten rather than refreshed.
        assert_eq!(map.due(at(601)), [("board", 300)], "read in the period before");
        map.put("board", 300, at(601), 3);
        assert!(map.due(at(1201)).is_empty(), "nobody read it from 600 to 900");
        assert_eq!(map.get(&"board", 300, at(1201)), None);
    }

    #[test]
    fn heavy_values_are_bounded_by_weight_and_unread_ones_make_room_first() {
        let map: FrozenMap<u32, Vec<u8>> = FrozenMap::weighed(|v| v.len(), 10);
        let at = |s: i64| datetime!(2026-11-24 12:00 UTC) + time::Duration::seconds(s);
        map.put(1, 300, at(0), vec![0; 6]);
        map.put(2, 300, at(1), vec![0; 6]);
        assert_eq!(map.get(&2, 300, at(2)), None, "over the budget: served unkept");
        assert!(map.get(&1, 300, at(2)).is_some());
        // In the next period, value 1 is not read before 3 arrives: it makes room.
        map.put(3, 300, at(301), vec![0; 7]);
        assert_eq!(map.get(&3, 300, at(302)).map(|v| v.len()), Some(7));
        assert_eq!(map.get(&1, 300, at(302)), None);
        // Replacing a value counts its new weight only.
        map.put(3, 300, at(303), vec![0; 9]);
        assert_eq!(map.get(&3, 300, at(304)).map(|v| v.len()), Some(9));
    }

    #[test]
    fn periods_are_separate_and_aligned_to_the_clock() {
        assert_eq!(
            boundary(datetime!(2026-11-24 12:04:59 UTC), 300),
            boundary(datetime!(2026-11-24 12:00 UTC), 300)
        );
        assert_eq!(
            boundary(datetime!(2026-11-24 12:05 UTC), 300) - boundary(datetime!(2026-11-24 12:04:59 UTC), 300),
            300
        );
        let map: FrozenMap<&str, u32> = FrozenMap::default();
        map.put("k", 300, datetime!(2026-11-24 12:00 UTC), 5);
        assert_eq!(map.get(&"k", 60, datetime!(2026-11-24 12:00 UTC)), None);
        assert_eq!(map.find(300, |v| *v == 5), Some(5));
        assert_eq!(map.find(60, |v| *v == 5), None, "not a Pro reader's value");
    }
}

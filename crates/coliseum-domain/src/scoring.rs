//! The DNA scores of SCORING.md as pure functions over per-fan-per-day
//! aggregates: twelve components in four domains, weight tiers with linear
//! recency decay, percentile normalization and the overall score.
//!
//! Names (artists, fans, cities, genres) arrive as dense numbers chosen by
//! the caller, [`NONE`] meaning "no such dimension", so that a pass over
//! millions of fan-days compares integers, not strings. Weights are integers
//! in thousandths (tier in tenths × decay in hundredths), summed exactly, so
//! that equal values compare equal whatever the order of summation.

use std::collections::HashMap;

use serde::Serialize;

use crate::kpi::Kpis;

/// The number standing for "none": no user, no city, no genre.
pub const NONE: u32 = u32::MAX;

/// The twelve components, in the order of SCORING.md's table.
pub const COMPONENTS: [&str; 12] = [
    "genre_diversity",
    "crossover_potential",
    "cultural_influence",
    "fan_loyalty",
    "repeat_engagement",
    "conversion_rate",
    "revenue_per_fan",
    "average_transaction_value",
    "monetization_efficiency",
    "geographic_reach",
    "touring_viability",
    "city_distribution",
];

/// The tier of influence entries (shares, reposts, comments, mentions are
/// all "active" in PASSPORT.md), as an index into [`ScoringConfig::tier_tenths`].
const INFLUENCE_TIER: usize = 2;
/// Tiers from this index on ("committed", "patron") make a fan converted.
const CONVERTED_TIER: usize = 3;

/// A DNA domain: three components each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DnaDomain {
    Cultural,
    Behavioral,
    Economic,
    Spatial,
}

impl DnaDomain {
    pub const ALL: [DnaDomain; 4] = [Self::Cultural, Self::Behavioral, Self::Economic, Self::Spatial];

    /// The letter of the API and of SCORING.md: `a`, `t`, `g`, `c`.
    pub fn letter(self) -> &'static str {
        match self {
            Self::Cultural => "a",
            Self::Behavioral => "t",
            Self::Economic => "g",
            Self::Spatial => "c",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Cultural => "cultural",
            Self::Behavioral => "behavioral",
            Self::Economic => "economic",
            Self::Spatial => "spatial",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What a DNA board ranks by: the overall score or one domain's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DnaBoard {
    Overall,
    Domain(DnaDomain),
}

impl DnaBoard {
    pub const ALL: [DnaBoard; 5] = [
        Self::Overall,
        Self::Domain(DnaDomain::Cultural),
        Self::Domain(DnaDomain::Behavioral),
        Self::Domain(DnaDomain::Economic),
        Self::Domain(DnaDomain::Spatial),
    ];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|board| board.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Overall => "overall",
            Self::Domain(domain) => domain.letter(),
        }
    }

    /// The board's score in a set of scores.
    pub fn score_of(self, score: &ArtistScore) -> f64 {
        match self {
            Self::Overall => score.overall,
            Self::Domain(domain) => score.domains[domain.index()],
        }
    }
}

/// The ranges DNA scores are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScoreRange {
    Days7,
    Days30,
    All,
}

impl ScoreRange {
    pub const ALL: [ScoreRange; 3] = [Self::Days7, Self::Days30, Self::All];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|range| range.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Days7 => "7d",
            Self::Days30 => "30d",
            Self::All => "all",
        }
    }

    /// Whether an entry `age` whole days old counts.
    pub fn counts(self, age: i64) -> bool {
        age >= 0
            && match self {
                Self::Days7 => age < 7,
                Self::Days30 => age < 30,
                Self::All => true,
            }
    }
}

/// The numbers of SCORING.md a deployment may change; echoed with every score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoringConfig {
    /// Passive, light, active, committed, patron, in tenths of a point.
    pub tier_tenths: [i64; 5],
    /// The decay lost per day of age, in hundredths.
    pub decay_per_day_hundredths: i64,
    /// The decay never goes below this, in hundredths.
    pub decay_floor_hundredths: i64,
    /// Touring viability counts cities with at least this many distinct fans.
    pub touring_min_fans: usize,
    /// Touring viability adds attendance divided by this.
    pub touring_attendance_divisor: i64,
    /// A change of a domain score of at least this many points is a mutation.
    pub mutation_points: f64,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            tier_tenths: [1, 10, 100, 1000, 10_000],
            decay_per_day_hundredths: 3,
            decay_floor_hundredths: 10,
            touring_min_fans: 10,
            touring_attendance_divisor: 100,
            mutation_points: 5.0,
        }
    }
}

impl ScoringConfig {
    /// `decay(age)` in hundredths.
    pub fn decay_hundredths(&self, age: i64) -> i64 {
        (100 - self.decay_per_day_hundredths.saturating_mul(age)).max(self.decay_floor_hundredths)
    }
}

/// One fan's entries for one artist on one UTC day in one city and genre,
/// as scoring reads them. `fan`, `city` and `genre` may be [`NONE`].
///
/// Ten million of them are held at the benchmark's scale, so the counts
/// take 16 bits: 32 bytes a row instead of 44. A fan-day with more
/// entries of one kind than that is held as several rows with the same
/// key, next to each other. Scoring only ever sums a fan-day's counts and
/// weights, or asks whether it has one of a tier, so split rows score
/// exactly as one would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanDayRow {
    /// Days since the Unix epoch (UTC).
    pub day: i32,
    pub artist: u32,
    pub fan: u32,
    pub city: u32,
    pub genre: u32,
    /// Entries by tier: passive, light, active, committed, patron.
    pub by_tier: [u16; 5],
    /// Influence entries (all of the "active" tier).
    pub influence: u16,
}

/// An artist's DNA in one range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArtistScore {
    pub artist: u32,
    /// The genre with the most weight, [`NONE`] without one.
    pub primary_genre: u32,
    /// Raw values in [`COMPONENTS`] order. Revenue figures are in minor
    /// units of the base currency; weights in thousandths of a point.
    pub raw: [f64; 12],
    /// Percentile scores, 0–100, in the same order.
    pub percentile: [f64; 12],
    /// Cultural, behavioral, economic, spatial.
    pub domains: [f64; 4],
    pub overall: f64,
    /// Counted entries by tier.
    pub entries_by_tier: [i64; 5],
}

/// The scores of every artist with a counted entry in the range (the
/// population), in the order of the rows' artists.
///
/// `rows` must be sorted by artist, then fan, then day (each artist's rows
/// together, each fan's rows for it together and in day order); rows after
/// `as_of_day` or too old for `range` are skipped. `kpis` are the artists'
/// undecayed KPI sums over the range. `genre_name` orders genres for the
/// tie-break of primary and home genres.
pub fn score(
    config: &ScoringConfig,
    as_of_day: i64,
    range: ScoreRange,
    rows: &[FanDayRow],
    kpis: &HashMap<u32, Kpis>,
    genre_name: &dyn Fn(u32) -> String,
) -> Vec<ArtistScore> {
    let [days7, days30, all] = score_all(config, as_of_day, rows, [kpis, kpis, kpis], genre_name, 1);
    match range {
        ScoreRange::Days7 => days7,
        ScoreRange::Days30 => days30,
        ScoreRange::All => all,
    }
}

/// [`score`] for the three ranges at once (in [`ScoreRange::ALL`] order),
/// `kpis` given per range: one pass over the rows for every fan's home
/// genres, then the artists split between `threads` threads.
pub fn score_all(
    config: &ScoringConfig,
    as_of_day: i64,
    rows: &[FanDayRow],
    kpis: [&HashMap<u32, Kpis>; 3],
    genre_name: &dyn Fn(u32) -> String,
    threads: usize,
) -> [Vec<ArtistScore>; 3] {
    debug_assert!(
        rows.windows(2)
            .all(|w| (w[0].artist, w[0].fan, w[0].day) <= (w[1].artist, w[1].fan, w[1].day))
    );
    let genres = Genres::of(rows, as_of_day, genre_name);
    let homes = home::home_genres(config, as_of_day, rows, &genres, threads);
    let context = Context {
        config,
        as_of_day,
        genres: &genres,
        homes: &homes,
        kpis,
    };
    // Slices of whole artists, one a thread.
    let mut slices = Vec::new();
    let mut rest = rows;
    for left in (1..=threads.max(1)).rev() {
        let mut cut = rest.len() / left;
        while cut > 0 && cut < rest.len() && rest[cut].artist == rest[cut - 1].artist {
            cut += 1;
        }
        let (slice, tail) = rest.split_at(cut.min(rest.len()));
        slices.push(slice);
        rest = tail;
    }
    let parts = on_threads(slices, |slice| context.artists(slice));
    let mut scores: [Vec<ArtistScore>; 3] = Default::default();
    for part in parts {
        for (range, more) in scores.iter_mut().zip(part) {
            range.extend(more);
        }
    }
    // The three populations ranked side by side.
    let [days7, days30, all] = &mut scores;
    if threads > 1 {
        std::thread::scope(|scope| {
            scope.spawn(|| rank_population(days7));
            rank_population(days30);
            rank_population(all);
        });
    } else {
        for range in [days7, days30, all] {
            rank_population(range);
        }
    }
    scores
}

/// The genres of the counted rows as dense indices in name order (so that
/// the smaller index is the smaller name), and how many each range counts.
struct Genres {
    /// (genre id, dense index) for the ids that occur: a short list, searched
    /// in place (tens of millions of look-ups a recomputation).
    index: Vec<(u32, u16)>,
    /// Dense index → genre id.
    ids: Vec<u32>,
    /// Distinct genres counted in each range.
    count: [usize; 3],
}

/// The dense index standing for "no genre".
const NO_GENRE: u16 = u16::MAX;

impl Genres {
    fn of(rows: &[FanDayRow], as_of_day: i64, genre_name: &dyn Fn(u32) -> String) -> Self {
        // Per genre: the youngest age it is counted at. Genres are few: a
        // short list searched in place beats hashing ten million times.
        let mut youngest: Vec<(u32, i64)> = Vec::new();
        let mut last = NONE;
        let mut last_age = i64::MAX;
        for row in rows {
            let age = as_of_day - i64::from(row.day);
            if row.genre == NONE || age < 0 || (row.genre == last && age >= last_age) {
                continue;
            }
            let at = match youngest.iter().position(|(genre, _)| *genre == row.genre) {
                Some(at) => at,
                None => {
                    youngest.push((row.genre, age));
                    youngest.len() - 1
                }
            };
            youngest[at].1 = youngest[at].1.min(age);
            (last, last_age) = (row.genre, youngest[at].1);
        }
        let mut ids: Vec<(String, u32)> = youngest.iter().map(|&(id, _)| (genre_name(id), id)).collect();
        ids.sort();
        let ids: Vec<u32> = ids.into_iter().map(|(_, id)| id).collect();
        let index = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, u16::try_from(i).unwrap_or(NO_GENRE - 1)))
            .collect();
        let count = ScoreRange::ALL.map(|range| youngest.iter().filter(|&&(_, age)| range.counts(age)).count());
        Self { index, ids, count }
    }

    fn index_of(&self, genre: u32) -> u16 {
        if genre == NONE {
            NO_GENRE
        } else {
            self.index
                .iter()
                .find(|(id, _)| *id == genre)
                .map_or(NO_GENRE, |&(_, index)| index)
        }
    }
}

/// `work` applied to each input, the first on this thread and the others
/// on their own; results in input order.
fn on_threads<I: Send, O: Send>(inputs: Vec<I>, work: impl Fn(I) -> O + Sync) -> Vec<O> {
    let mut inputs = inputs.into_iter();
    let Some(first) = inputs.next() else {
        return Vec::new();
    };
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = inputs.map(|input| scope.spawn(move || work(input))).collect();
        let mut outputs = vec![work(first)];
        outputs.extend(
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))),
        );
        outputs
    })
}

/// A row's weight in thousandths of a point at `age`.
fn row_weight(config: &ScoringConfig, row: &FanDayRow, age: i64) -> i64 {
    let decay = config.decay_hundredths(age);
    row.by_tier
        .iter()
        .zip(config.tier_tenths)
        .map(|(&count, tenths)| i64::from(count) * tenths * decay)
        .sum()
}

/// What every artist's raw values are computed with.
struct Context<'a> {
    config: &'a ScoringConfig,
    as_of_day: i64,
    genres: &'a Genres,
    homes: &'a [[u16; 3]],
    kpis: [&'a HashMap<u32, Kpis>; 3],
}

impl Context<'_> {
    /// The raw values of the artists of `rows` (whole artists), per range.
    fn artists(&self, rows: &[FanDayRow]) -> [Vec<ArtistScore>; 3] {
        let mut scores: [Vec<ArtistScore>; 3] = Default::default();
        let mut start = 0;
        let mut counted: Vec<&FanDayRow> = Vec::new();
        let mut fan_homes: Vec<(u32, [u16; 3])> = Vec::new();
        while start < rows.len() {
            let artist = rows[start].artist;
            let end = start + rows[start..].iter().take_while(|r| r.artist == artist).count();
            // The artist's fans' home genres, gathered in one tight loop: the
            // look-ups miss the cache, and independent misses overlap.
            fan_homes.clear();
            let mut last = NONE;
            for row in &rows[start..end] {
                if row.fan != last && row.fan != NONE {
                    last = row.fan;
                    fan_homes.push((
                        row.fan,
                        self.homes.get(row.fan as usize).copied().unwrap_or([NO_GENRE; 3]),
                    ));
                }
            }
            for (r, range) in ScoreRange::ALL.iter().enumerate() {
                counted.clear();
                counted.extend(
                    rows[start..end]
                        .iter()
                        .filter(|row| range.counts(self.as_of_day - i64::from(row.day))),
                );
                if !counted.is_empty() {
                    let kpis = self.kpis[r].get(&artist).copied().unwrap_or_default();
                    scores[r].push(self.raw_values(r, artist, &counted, &fan_homes, &kpis));
                }
            }
            start = end;
        }
        scores
    }

    /// The twelve raw values of one artist in range `r` from its counted
    /// rows, with its fans' home genres (in fan order).
    fn raw_values(
        &self,
        r: usize,
        artist: u32,
        rows: &[&FanDayRow],
        fan_homes: &[(u32, [u16; 3])],
        kpis: &Kpis,
    ) -> ArtistScore {
        let config = self.config;
        let mut total = 0_i64;
        let mut influence = 0_i64;
        let mut entries_by_tier = [0_i64; 5];
        let mut by_genre: Vec<(u16, i64)> = Vec::new();
        let mut cities: Vec<u32> = Vec::new();
        // Per fan: home genre and weight.
        let mut fan_weights: Vec<(u16, i64)> = Vec::new();
        let (mut loyal, mut converted) = (0_usize, 0_usize);
        let mut fans_by_city: Vec<(u32, i64)> = Vec::new();
        let mut fan_cities: Vec<u32> = Vec::new();
        let mut next_home = 0;

        let mut i = 0;
        while i < rows.len() {
            let fan = rows[i].fan;
            let span = rows[i..].iter().take_while(|row| row.fan == fan).count();
            let fan_rows = &rows[i..i + span];
            i += span;
            let (mut fan_weight, mut days, mut last_day, mut is_converted) = (0_i64, 0_usize, None, false);
            fan_cities.clear();
            for row in fan_rows {
                let age = self.as_of_day - i64::from(row.day);
                let weight = row_weight(config, row, age);
                total += weight;
                fan_weight += weight;
                influence +=
                    i64::from(row.influence) * config.tier_tenths[INFLUENCE_TIER] * config.decay_hundredths(age);
                for (tier, count) in row.by_tier.iter().enumerate() {
                    entries_by_tier[tier] += i64::from(*count);
                }
                if row.genre != NONE {
                    add_to(&mut by_genre, self.genres.index_of(row.genre), weight);
                }
                if row.city != NONE {
                    cities.push(row.city);
                    fan_cities.push(row.city);
                }
                if last_day != Some(row.day) {
                    days += 1;
                    last_day = Some(row.day);
                }
                is_converted |= row.by_tier[CONVERTED_TIER..].iter().any(|&n| n > 0);
            }
            if fan == NONE {
                continue;
            }
            // The counted rows' fans are a subsequence of `fan_homes`.
            while fan_homes[next_home].0 != fan {
                next_home += 1;
            }
            let home = fan_homes[next_home].1[r];
            fan_weights.push((home, fan_weight));
            loyal += usize::from(days >= 2);
            converted += usize::from(is_converted);
            fan_cities.sort_unstable();
            fan_cities.dedup();
            for &city in &fan_cities {
                add_to(&mut fans_by_city, city, 1);
            }
        }
        cities.sort_unstable();
        cities.dedup();

        let fans = fan_weights.len();
        let primary = heaviest(&by_genre);
        let genre_count = self.genres.count[r];
        let genre_diversity = if genre_count > 1 {
            entropy(by_genre.iter().map(|&(_, w)| w)) / (genre_count as f64).ln()
        } else {
            0.0
        };
        let crossover = if primary == NO_GENRE {
            0.0
        } else {
            let with_home = fan_weights.iter().filter(|(home, _)| *home != NO_GENRE);
            let (across, all) = with_home.fold((0_i64, 0_i64), |(across, all), &(home, w)| {
                (across + if home == primary { 0 } else { w }, all + w)
            });
            ratio(across as f64, all as f64)
        };
        let revenue = kpis.revenue_minor as f64;
        let touring_cities = fans_by_city
            .iter()
            .filter(|&&(_, n)| n >= config.touring_min_fans as i64)
            .count();
        let city_distribution = if fans_by_city.len() > 1 {
            entropy(fans_by_city.iter().map(|&(_, n)| n)) / (fans_by_city.len() as f64).ln()
        } else {
            0.0
        };
        let raw = [
            genre_diversity,
            crossover,
            influence as f64,
            ratio(loyal as f64, fans as f64),
            ratio(total as f64, fans as f64),
            ratio(converted as f64, fans as f64),
            ratio(revenue, fans as f64),
            ratio(revenue, kpis.revenue_entries as f64),
            revenue / kpis.plays.max(1) as f64 * 1000.0,
            cities.len() as f64,
            touring_cities as f64 + kpis.attendance as f64 / config.touring_attendance_divisor as f64,
            city_distribution,
        ];
        ArtistScore {
            artist,
            primary_genre: if primary == NO_GENRE {
                NONE
            } else {
                self.genres.ids[primary as usize]
            },
            raw,
            percentile: [0.0; 12],
            domains: [0.0; 4],
            overall: 0.0,
            entries_by_tier,
        }
    }
}

fn add_to<K: PartialEq>(weights: &mut Vec<(K, i64)>, key: K, amount: i64) {
    match weights.iter_mut().find(|(k, _)| *k == key) {
        Some((_, sum)) => *sum += amount,
        None => weights.push((key, amount)),
    }
}

/// The genre with the largest weight, ties to the smallest index (name);
/// [`NO_GENRE`] when empty.
fn heaviest(weights: &[(u16, i64)]) -> u16 {
    let mut best: Option<(u16, i64)> = None;
    for &(key, w) in weights {
        best = match best {
            Some((b, bw)) if bw > w || (bw == w && b < key) => Some((b, bw)),
            _ => Some((key, w)),
        };
    }
    best.map_or(NO_GENRE, |(key, _)| key)
}

/// Shannon entropy (natural log) of a distribution given by weights, summed
/// from the smallest share up so that equal distributions give equal bits.
fn entropy(weights: impl Iterator<Item = i64>) -> f64 {
    let mut weights: Vec<i64> = weights.filter(|&w| w > 0).collect();
    weights.sort_unstable();
    let total: i64 = weights.iter().sum();
    if total <= 0 {
        return 0.0;
    }
    let total = total as f64;
    let h = -weights
        .iter()
        .map(|&w| {
            let p = w as f64 / total;
            p * p.ln()
        })
        .sum::<f64>();
    h.max(0.0)
}

/// A ratio, 0 when the denominator is 0.
fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator == 0.0 {
        0.0
    } else {
        numerator / denominator
    }
}

/// Percentile scores, domain scores and the overall score of a population.
fn rank_population(population: &mut [ArtistScore]) {
    let n = population.len();
    for component in 0..COMPONENTS.len() {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_unstable_by(|&a, &b| population[a].raw[component].total_cmp(&population[b].raw[component]));
        let mut first = 0;
        while first < n {
            let value = population[order[first]].raw[component];
            let ties = order[first..]
                .iter()
                .take_while(|&&i| population[i].raw[component] == value)
                .count();
            // Ranks first+1 ..= first+ties, 1-based; ties share their mean.
            let mean_rank = first as f64 + (ties as f64 + 1.0) / 2.0;
            for &i in &order[first..first + ties] {
                population[i].percentile[component] = percentile(value, mean_rank, n);
            }
            first += ties;
        }
    }
    for score in population.iter_mut() {
        for domain in DnaDomain::ALL {
            let d = domain.index();
            score.domains[d] = score.percentile[3 * d..3 * d + 3].iter().sum::<f64>() / 3.0;
        }
        score.overall = score.domains.iter().sum::<f64>() / 4.0;
    }
}

fn percentile(value: f64, rank: f64, n: usize) -> f64 {
    if value == 0.0 {
        0.0
    } else if n == 1 {
        if value > 0.0 { 100.0 } else { 0.0 }
    } else {
        100.0 * (rank - 1.0) / (n as f64 - 1.0)
    }
}

/// A score as reported: one decimal, halves up.
pub fn reported(score: f64) -> f64 {
    // The tolerance keeps 56.25 (which a sum of percentiles may give as
    // 56.2499999…) rounding up as the exact value would.
    ((score * 10.0) + 0.5 + 1e-9).floor() / 10.0
}

mod home;

#[cfg(test)]
mod tests;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanDayRow {
    /// Days since the Unix epoch (UTC).
    pub day: i32,
    pub artist: u32,
    pub fan: u32,
    pub city: u32,
    pub genre: u32,
    /// Entries by tier: passive, light, active, committed, patron.
    pub by_tier: [u32; 5],
    /// Influence entries (all of the "active" tier).
    pub influence: u32,
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
    debug_assert!(
        rows.windows(2)
            .all(|w| (w[0].artist, w[0].fan, w[0].day) <= (w[1].artist, w[1].fan, w[1].day))
    );
    let weight = |row: &FanDayRow, tier: usize, count: u32| -> Option<i64> {
        let age = as_of_day - i64::from(row.day);
        range
            .counts(age)
            .then(|| i64::from(count) * config.tier_tenths[tier] * config.decay_hundredths(age))
    };
    let counted = |row: &&FanDayRow| range.counts(as_of_day - i64::from(row.day));

    // Every fan's home genre and the number of genres, across all artists.
    let mut fan_genres: HashMap<u32, Vec<(u32, i64)>> = HashMap::new();
    let mut genres: Vec<u32> = Vec::new();
    for row in rows.iter().filter(counted) {
        if row.genre == NONE {
            continue;
        }
        genres.push(row.genre);
        if row.fan != NONE {
            let w: i64 = (0..5).filter_map(|tier| weight(row, tier, row.by_tier[tier])).sum();
            add_to(fan_genres.entry(row.fan).or_default(), row.genre, w);
        }
    }
    genres.sort_unstable();
    genres.dedup();
    let genre_count = genres.len();
    let home: HashMap<u32, u32> = fan_genres
        .into_iter()
        .map(|(fan, weights)| (fan, heaviest(&weights, genre_name)))
        .collect();

    let mut population = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let artist = rows[start].artist;
        let end = start + rows[start..].iter().take_while(|r| r.artist == artist).count();
        let artist_rows: Vec<&FanDayRow> = rows[start..end].iter().filter(counted).collect();
        start = end;
        if artist_rows.is_empty() {
            continue;
        }
        let kpis = kpis.get(&artist).copied().unwrap_or_default();
        population.push(raw_values(
            config,
            artist,
            &artist_rows,
            &kpis,
            &weight,
            genre_count,
            &home,
            genre_name,
        ));
    }
    rank_population(&mut population);
    population
}

/// The twelve raw values of one artist from its counted rows.
#[allow(clippy::too_many_arguments)]
fn raw_values(
    config: &ScoringConfig,
    artist: u32,
    rows: &[&FanDayRow],
    kpis: &Kpis,
    weight: &dyn Fn(&FanDayRow, usize, u32) -> Option<i64>,
    genre_count: usize,
    home: &HashMap<u32, u32>,
    genre_name: &dyn Fn(u32) -> String,
) -> ArtistScore {
    let mut total = 0_i64;
    let mut influence = 0_i64;
    let mut entries_by_tier = [0_i64; 5];
    let mut by_genre: Vec<(u32, i64)> = Vec::new();
    let mut cities: Vec<u32> = Vec::new();
    // Per fan: weight, home genre; then the counts over fans.
    let mut fan_weights: Vec<(u32, i64)> = Vec::new();
    let (mut loyal, mut converted) = (0_usize, 0_usize);
    let mut fans_by_city: Vec<(u32, i64)> = Vec::new();

    let mut i = 0;
    while i < rows.len() {
        let fan = rows[i].fan;
        let span = rows[i..].iter().take_while(|r| r.fan == fan).count();
        let fan_rows = &rows[i..i + span];
        i += span;
        let (mut fan_weight, mut days, mut last_day, mut is_converted) = (0_i64, 0_usize, None, false);
        let mut fan_cities: Vec<u32> = Vec::new();
        for row in fan_rows {
            let row_weight: i64 = (0..5).filter_map(|tier| weight(row, tier, row.by_tier[tier])).sum();
            total += row_weight;
            fan_weight += row_weight;
            influence += weight(row, INFLUENCE_TIER, row.influence).unwrap_or(0);
            for (tier, count) in row.by_tier.iter().enumerate() {
                entries_by_tier[tier] += i64::from(*count);
            }
            if row.genre != NONE {
                add_to(&mut by_genre, row.genre, row_weight);
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
        fan_weights.push((home.get(&fan).copied().unwrap_or(NONE), fan_weight));
        loyal += usize::from(days >= 2);
        converted += usize::from(is_converted);
        fan_cities.sort_unstable();
        fan_cities.dedup();
        for city in fan_cities {
            add_to(&mut fans_by_city, city, 1);
        }
    }
    cities.sort_unstable();
    cities.dedup();

    let fans = fan_weights.len();
    let primary_genre = heaviest(&by_genre, genre_name);
    let genre_diversity = if genre_count > 1 {
        entropy(by_genre.iter().map(|&(_, w)| w)) / (genre_count as f64).ln()
    } else {
        0.0
    };
    let crossover = if primary_genre == NONE {
        0.0
    } else {
        let with_home = fan_weights.iter().filter(|(home, _)| *home != NONE);
        let (across, all) = with_home.fold((0_i64, 0_i64), |(across, all), &(home, w)| {
            (across + if home == primary_genre { 0 } else { w }, all + w)
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
        primary_genre,
        raw,
        percentile: [0.0; 12],
        domains: [0.0; 4],
        overall: 0.0,
        entries_by_tier,
    }
}

fn add_to(weights: &mut Vec<(u32, i64)>, key: u32, amount: i64) {
    match weights.iter_mut().find(|(k, _)| *k == key) {
        Some((_, sum)) => *sum += amount,
        None => weights.push((key, amount)),
    }
}

/// The key with the largest weight, ties to the smallest name; [`NONE`] when empty.
fn heaviest(weights: &[(u32, i64)], name: &dyn Fn(u32) -> String) -> u32 {
    let mut best: Option<(u32, i64)> = None;
    for &(key, w) in weights {
        best = match best {
            Some((b, bw)) if bw > w || (bw == w && name(b) <= name(key)) => Some((b, bw)),
            _ => Some((key, w)),
        };
    }
    best.map_or(NONE, |(key, _)| key)
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

#[cfg(test)]
mod tests;

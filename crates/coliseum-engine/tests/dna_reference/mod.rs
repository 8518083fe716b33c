//! Independent reference implementation of the DNA scoring definition in
//! `SCORING.md`, written from the document alone, for use as a test oracle.
//!
//! Clarity over speed: every component is computed with plain loops and
//! ordered maps, literally as the document states it. Weights are exact
//! integers in thousandths (tier in tenths x decay in hundredths); floating
//! point is used only for ratios, entropies and percentiles.
//!
//! Readings of points the document leaves open (see also the comments on
//! each component):
//! - a city or genre that is empty after trimming is treated as absent;
//! - geographic reach counts the distinct cities of all of the artist's
//!   counted entries, with or without a user;
//! - city distribution and touring viability look only at entries with a
//!   user and a city; city distribution normalizes by the number of cities
//!   in which the artist has at least one fan (the support of the
//!   distribution);
//! - loyalty and conversion look at the fan's entries for that artist;
//! - crossover leaves fans without a home genre out of both numerator and
//!   denominator;
//! - entropies are summed over the weights sorted ascending, so that two
//!   artists with the same multiset of weights get bit-identical values;
//! - negative raw values (net refunds) are ranked like any other value;
//!   only a raw value of exactly 0 is forced to a score of 0.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use time::{Date, Duration, Month, OffsetDateTime, UtcOffset};

/// One recognized Passport entry with an artist, reduced to what SCORING.md reads.
#[derive(Debug, Clone)]
pub struct RefEntry {
    pub artist: String,
    /// user_id, None when the entry has no user
    pub fan: Option<String>,
    pub timestamp: OffsetDateTime,
    /// as given; compared after trim + lowercase
    pub city: Option<String>,
    /// as given; compared after trim + lowercase
    pub genre: Option<String>,
    /// the entry's tier in tenths: 1, 10, 100, 1000 or 10000
    pub tier_tenths: i64,
    /// audio.share, social.share, social.repost, social.comment, social.mention
    pub influence: bool,
    /// KPI plays this entry adds (0 or 1), undecayed
    pub plays: i64,
    /// KPI attendance this entry adds
    pub attendance: i64,
    /// KPI revenue this entry adds, base currency minor units (negative for refunds)
    pub revenue_minor: i64,
    /// treasury.money_spent, treasury.tip or treasury.patronage
    pub revenue_entry: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefRange {
    Days7,
    Days30,
    All,
}

/// Component order: genre diversity, crossover, influence, loyalty, repeat engagement,
/// conversion, revenue per fan, average transaction value, monetization efficiency,
/// geographic reach, touring viability, city distribution.
#[derive(Debug, Clone)]
pub struct RefArtist {
    pub artist: String,
    /// normalized (trimmed, lower-cased)
    pub primary_genre: Option<String>,
    pub raw: [f64; 12],
    pub percentile: [f64; 12],
    /// A, T, G, C, unrounded
    pub domains: [f64; 4],
    /// unrounded
    pub overall: f64,
    /// counted entries by tier, passive..patron
    pub entries_by_tier: [u64; 5],
}

pub const COMPONENT_NAMES: [&str; 12] = [
    "genre diversity",
    "crossover",
    "influence",
    "loyalty",
    "repeat engagement",
    "conversion",
    "revenue per fan",
    "average transaction value",
    "monetization efficiency",
    "geographic reach",
    "touring viability",
    "city distribution",
];

pub const DOMAIN_NAMES: [&str; 4] = ["A", "T", "G", "C"];

/// SCORING.md's rounding for reported scores: one decimal, halves up.
pub fn reported(score: f64) -> f64 {
    let scaled = score * 10.0;
    let floor = scaled.floor();
    // `scaled - floor` is exact, so the half test is exact on the scaled value.
    let rounded = if scaled - floor >= 0.5 { floor + 1.0 } else { floor };
    rounded / 10.0
}

// ---------------------------------------------------------------- inputs

/// Trim and lower-case a city or genre; empty after trimming means absent.
fn normalize(value: Option<&str>) -> Option<String> {
    let trimmed = value?.trim().to_lowercase();
    if trimmed.is_empty() { None } else { Some(trimmed) }
}

/// The UTC calendar day of an instant.
fn utc_day(instant: OffsetDateTime) -> Date {
    instant.to_offset(UtcOffset::UTC).date()
}

/// `decay(age) = max(0.1, 1 - 0.03 x age)`, in hundredths.
fn decay_hundredths(age: i64) -> i64 {
    (100 - 3 * age).max(10)
}

/// Index of a tier (in tenths) in passive..patron order.
fn tier_index(tier_tenths: i64) -> usize {
    match tier_tenths {
        1 => 0,
        10 => 1,
        100 => 2,
        1000 => 3,
        10000 => 4,
        other => panic!("tier_tenths must be 1, 10, 100, 1000 or 10000, got {other}"),
    }
}

/// A counted entry with its derived values.
struct Counted<'a> {
    entry: &'a RefEntry,
    /// UTC day of the entry
    day: Date,
    /// v(e) in thousandths
    weight: i64,
    city: Option<String>,
    genre: Option<String>,
}

/// The entries counted for `as_of` and `range`, per the "Inputs" section.
fn counted_entries(entries: &[RefEntry], as_of: OffsetDateTime, range: RefRange) -> Vec<Counted<'_>> {
    let today = utc_day(as_of);
    let mut counted = Vec::new();
    for entry in entries {
        // timestamp strictly before T
        if entry.timestamp >= as_of {
            continue;
        }
        let day = utc_day(entry.timestamp);
        let age = (today - day).whole_days();
        let in_range = match range {
            RefRange::Days7 => age < 7,
            RefRange::Days30 => age < 30,
            RefRange::All => true,
        };
        if !in_range {
            continue;
        }
        counted.push(Counted {
            entry,
            day,
            weight: entry.tier_tenths * decay_hundredths(age),
            city: normalize(entry.city.as_deref()),
            genre: normalize(entry.genre.as_deref()),
        });
    }
    counted
}

// ---------------------------------------------------------------- helpers

/// The key with the largest weight; ties go to the lexicographically
/// smallest key; an empty map gives None.
fn heaviest(weights: &BTreeMap<String, i64>) -> Option<String> {
    let mut best: Option<(&String, i64)> = None;
    // BTreeMap iterates keys ascending, so only a strictly larger weight
    // replaces the current best: ties keep the smallest key.
    for (key, &weight) in weights {
        let replace = match best {
            None => true,
            Some((_, best_weight)) => weight > best_weight,
        };
        if replace {
            best = Some((key, weight));
        }
    }
    best.map(|(key, _)| key.clone())
}

/// Shannon entropy (natural log) of a distribution given by non-negative
/// integer masses. Summed over the masses sorted ascending so that equal
/// multisets give bit-identical results.
fn entropy(masses: &[i64]) -> f64 {
    let mut sorted: Vec<i64> = masses.iter().copied().filter(|&m| m > 0).collect();
    sorted.sort_unstable();
    let total: i64 = sorted.iter().sum();
    if total <= 0 {
        return 0.0;
    }
    let total = total as f64;
    let mut h = 0.0_f64;
    for mass in sorted {
        let p = mass as f64 / total;
        h -= p * p.ln();
    }
    if h == 0.0 { 0.0 } else { h }
}

/// A ratio of integers; 0 when the denominator is 0.
fn ratio(numerator: i64, denominator: i64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// Percentile scores of one component over the population (step 2).
fn percentiles(raw: &[f64]) -> Vec<f64> {
    let n = raw.len();
    let mut scores = Vec::with_capacity(n);
    for &value in raw {
        if value == 0.0 {
            // raw 0 scores 0 whatever its rank
            scores.push(0.0);
            continue;
        }
        if n == 1 {
            scores.push(if value > 0.0 { 100.0 } else { 0.0 });
            continue;
        }
        let below = raw.iter().filter(|&&other| other < value).count();
        let equal = raw.iter().filter(|&&other| other == value).count();
        // the tied values hold ranks below+1 ..= below+equal; their mean:
        let mean_rank = below as f64 + (equal as f64 + 1.0) / 2.0;
        scores.push(100.0 * (mean_rank - 1.0) / (n as f64 - 1.0));
    }
    scores
}

// ---------------------------------------------------------------- scoring

/// Everything one artist's components read, from its counted entries.
#[derive(Default)]
struct ArtistData {
    /// sum of v(e) over all of the artist's counted entries (with or without a user)
    total_weight: i64,
    /// sum of v(e) over the artist's influence entries
    influence_weight: i64,
    /// v(e) per normalized genre
    genre_weight: BTreeMap<String, i64>,
    /// fan -> the fan's weight for the artist; its keys are the fans
    fan_weight: BTreeMap<String, i64>,
    /// fan -> distinct UTC days with an entry for the artist
    fan_days: BTreeMap<String, BTreeSet<Date>>,
    /// fans with at least one entry of tier >= 100 for the artist
    converted_fans: BTreeSet<String>,
    /// distinct normalized cities of all counted entries
    cities: BTreeSet<String>,
    /// city -> distinct fans with an entry for the artist in that city
    city_fans: BTreeMap<String, BTreeSet<String>>,
    plays: i64,
    attendance: i64,
    revenue_minor: i64,
    revenue_entries: i64,
    entries_by_tier: [u64; 5],
}

/// Every artist of the population, sorted by artist id.
pub fn reference_scores(entries: &[RefEntry], as_of: OffsetDateTime, range: RefRange) -> Vec<RefArtist> {
    let counted = counted_entries(entries, as_of, range);

    // Range-wide facts: the distinct genres, and each user's weight per genre
    // across artists (for home genres).
    let mut all_genres: BTreeSet<String> = BTreeSet::new();
    let mut user_genre_weight: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for c in &counted {
        if let Some(genre) = &c.genre {
            all_genres.insert(genre.clone());
            if let Some(fan) = &c.entry.fan {
                *user_genre_weight
                    .entry(fan.clone())
                    .or_default()
                    .entry(genre.clone())
                    .or_insert(0) += c.weight;
            }
        }
    }
    let mut home_genre: BTreeMap<String, Option<String>> = BTreeMap::new();
    for c in &counted {
        if let Some(fan) = &c.entry.fan {
            let home = user_genre_weight.get(fan).and_then(heaviest);
            home_genre.insert(fan.clone(), home);
        }
    }
    let genre_count = all_genres.len();

    // Per-artist facts.
    let mut artists: BTreeMap<String, ArtistData> = BTreeMap::new();
    for c in &counted {
        let e = c.entry;
        let data = artists.entry(e.artist.clone()).or_default();
        data.total_weight += c.weight;
        if e.influence {
            data.influence_weight += c.weight;
        }
        if let Some(genre) = &c.genre {
            *data.genre_weight.entry(genre.clone()).or_insert(0) += c.weight;
        }
        if let Some(city) = &c.city {
            data.cities.insert(city.clone());
        }
        data.plays += e.plays;
        data.attendance += e.attendance;
        data.revenue_minor += e.revenue_minor;
        if e.revenue_entry {
            data.revenue_entries += 1;
        }
        data.entries_by_tier[tier_index(e.tier_tenths)] += 1;
        if let Some(fan) = &e.fan {
            *data.fan_weight.entry(fan.clone()).or_insert(0) += c.weight;
            data.fan_days.entry(fan.clone()).or_default().insert(c.day);
            if e.tier_tenths >= 1000 {
                data.converted_fans.insert(fan.clone());
            }
            if let Some(city) = &c.city {
                data.city_fans.entry(city.clone()).or_default().insert(fan.clone());
            }
        }
    }

    // Raw values.
    let mut ids: Vec<String> = Vec::new();
    let mut primary_genres: Vec<Option<String>> = Vec::new();
    let mut raws: Vec<[f64; 12]> = Vec::new();
    let mut tiers: Vec<[u64; 5]> = Vec::new();
    for (artist, data) in &artists {
        let fans = data.fan_weight.len() as i64;
        let primary = heaviest(&data.genre_weight);

        // A1 genre diversity: H(artist's weight per genre) / ln(G); 0 when G <= 1.
        let genre_diversity = if genre_count <= 1 {
            0.0
        } else {
            let masses: Vec<i64> = data.genre_weight.values().copied().collect();
            entropy(&masses) / (genre_count as f64).ln()
        };

        // A2 crossover: weight from fans whose home genre differs from the
        // primary genre / weight from fans with a home genre.
        let crossover = match &primary {
            None => 0.0,
            Some(primary) => {
                let mut differing = 0_i64;
                let mut with_home = 0_i64;
                for (fan, &weight) in &data.fan_weight {
                    let home = home_genre.get(fan).and_then(|h| h.as_ref());
                    if let Some(home) = home {
                        with_home += weight;
                        if home != primary {
                            differing += weight;
                        }
                    }
                }
                ratio(differing, with_home)
            }
        };

        // A3 cultural influence: total weight of influence entries.
        let influence = data.influence_weight as f64;

        // T1 fan loyalty: share of fans active on 2 or more distinct days.
        let loyal = data.fan_days.values().filter(|days| days.len() >= 2).count() as i64;
        let loyalty = ratio(loyal, fans);

        // T2 repeat engagement: total weight / fans.
        let repeat = ratio(data.total_weight, fans);

        // T3 conversion: share of fans with an entry of tier >= 100.
        let conversion = ratio(data.converted_fans.len() as i64, fans);

        // G1 revenue per fan.
        let revenue_per_fan = ratio(data.revenue_minor, fans);

        // G2 average transaction value: revenue / revenue entries.
        let average_transaction = ratio(data.revenue_minor, data.revenue_entries);

        // G3 monetization efficiency: revenue / max(1, plays) x 1000.
        let monetization = ratio(data.revenue_minor, data.plays.max(1)) * 1000.0;

        // C1 geographic reach: distinct cities.
        let reach = data.cities.len() as f64;

        // C2 touring viability: cities with >= 10 distinct fans + attendance / 100.
        let big_cities = data.city_fans.values().filter(|f| f.len() >= 10).count();
        let touring = big_cities as f64 + data.attendance as f64 / 100.0;

        // C3 city distribution: each fan counted once in every city where the
        // fan has an entry for the artist; H / ln(cities), 0 with one city.
        let fans_per_city: Vec<i64> = data.city_fans.values().map(|f| f.len() as i64).collect();
        let city_distribution = if fans_per_city.len() <= 1 {
            0.0
        } else {
            entropy(&fans_per_city) / (fans_per_city.len() as f64).ln()
        };

        ids.push(artist.clone());
        primary_genres.push(primary);
        tiers.push(data.entries_by_tier);
        raws.push([
            genre_diversity,
            crossover,
            influence,
            loyalty,
            repeat,
            conversion,
            revenue_per_fan,
            average_transaction,
            monetization,
            reach,
            touring,
            city_distribution,
        ]);
    }

    // Percentiles, one component at a time over the whole population.
    let columns: Vec<Vec<f64>> = (0..12)
        .map(|c| {
            let column: Vec<f64> = raws.iter().map(|r| r[c]).collect();
            percentiles(&column)
        })
        .collect();

    let mut result = Vec::with_capacity(ids.len());
    for (i, artist) in ids.into_iter().enumerate() {
        let percentile: [f64; 12] = std::array::from_fn(|c| columns[c][i]);
        let domains: [f64; 4] =
            std::array::from_fn(|d| (percentile[3 * d] + percentile[3 * d + 1] + percentile[3 * d + 2]) / 3.0);
        let overall = (domains[0] + domains[1] + domains[2] + domains[3]) / 4.0;
        result.push(RefArtist {
            artist,
            primary_genre: primary_genres[i].clone(),
            raw: raws[i],
            percentile,
            domains,
            overall,
            entries_by_tier: tiers[i],
        });
    }
    result
}

// ---------------------------------------------------------------- worked example

/// One row of SCORING.md's worked example.
struct ExampleRow {
    kind: &'static str,
    artist: &'static str,
    fan: &'static str,
    age: i64,
    city: &'static str,
    genre: &'static str,
    /// engagement.duration_ms for audio.play, else 0
    duration_ms: i64,
    /// amount in base currency (USD) minor units, already converted
    amount_minor_usd: i64,
}

/// Map an example row to a RefEntry using PASSPORT.md's tiers and KPIs.
fn example_entry(row: &ExampleRow, as_of: OffsetDateTime) -> RefEntry {
    let mut entry = RefEntry {
        artist: row.artist.to_string(),
        fan: Some(row.fan.to_string()),
        // 11:00 UTC on the day `age` days before T (T is 12:00 UTC)
        timestamp: as_of - Duration::days(row.age) - Duration::hours(1),
        city: Some(row.city.to_string()),
        genre: Some(row.genre.to_string()),
        tier_tenths: 0,
        influence: false,
        plays: 0,
        attendance: 0,
        revenue_minor: 0,
        revenue_entry: false,
    };
    match row.kind {
        "audio.play" => {
            if row.duration_ms >= 30_000 {
                entry.tier_tenths = 10; // tier 1
                entry.plays = 1;
            } else {
                entry.tier_tenths = 1; // preview: tier 0.1, no play
            }
        }
        "vote.cast" => entry.tier_tenths = 100, // tier 10
        "social.share" => {
            entry.tier_tenths = 100; // tier 10
            entry.influence = true;
        }
        "event.attended" => {
            entry.tier_tenths = 1000; // tier 100
            entry.attendance = 1;
        }
        "treasury.money_spent" | "treasury.tip" => {
            entry.tier_tenths = 1000; // tier 100
            entry.revenue_minor = row.amount_minor_usd;
            entry.revenue_entry = true;
        }
        other => panic!("worked example has no mapping for type {other}"),
    }
    entry
}

/// SCORING.md's worked example: its nine entries and T = 2026-11-20T12:00:00Z
/// (range 7d, base currency USD, EUR=1.10).
pub fn worked_example() -> (Vec<RefEntry>, OffsetDateTime) {
    let as_of = Date::from_calendar_date(2026, Month::November, 20)
        .expect("2026-11-20 is a valid date")
        .with_hms(12, 0, 0)
        .expect("12:00:00 is a valid time")
        .assume_utc();
    // 500 EUR = 50_000 minor EUR, at EUR=1.10 = 55_000 minor USD (exact).
    let tip_usd_minor = 50_000 * 110 / 100;
    // (type, artist, fan, age, city, genre, duration_ms, amount in USD minor units)
    let rows = [
        ("audio.play", "art_a", "f1", 0, "Oslo", "jazz", 200_000, 0),
        ("audio.play", "art_a", "f1", 2, "Oslo", "jazz", 200_000, 0),
        ("vote.cast", "art_a", "f2", 0, "Bergen", "jazz", 0, 0),
        ("treasury.money_spent", "art_a", "f2", 1, "Bergen", "jazz", 0, 100_000),
        ("social.share", "art_b", "f1", 0, "Oslo", "house", 0, 0),
        ("audio.play", "art_b", "f3", 3, "Oslo", "house", 20_000, 0),
        ("event.attended", "art_b", "f3", 1, "Oslo", "house", 0, 0),
        ("audio.play", "art_c", "f4", 6, "Lima", "jazz", 60_000, 0),
        ("treasury.tip", "art_c", "f4", 6, "Lima", "jazz", 0, tip_usd_minor),
    ];
    let mut entries = Vec::with_capacity(rows.len());
    for (kind, artist, fan, age, city, genre, duration_ms, amount_minor_usd) in rows {
        let row = ExampleRow {
            kind,
            artist,
            fan,
            age,
            city,
            genre,
            duration_ms,
            amount_minor_usd,
        };
        entries.push(example_entry(&row, as_of));
    }
    (entries, as_of)
}

/// Expected values of one artist in SCORING.md's worked example table
/// (G raw values in major units, as the table shows them).
struct ExpectedArtist {
    artist: &'static str,
    primary_genre: &'static str,
    raw: [f64; 12],
    percentile: [f64; 12],
    domains: [f64; 4],
    overall: f64,
    entries_by_tier: [u64; 5],
}

fn close_raw(got: f64, want: f64) -> bool {
    let diff = (got - want).abs();
    diff <= 0.01 || diff <= 1e-4 * want.abs()
}

fn close_score(got: f64, want: f64) -> bool {
    (got - want).abs() <= 0.01
}

/// Panics unless the reference reproduces SCORING.md's worked example table.
pub fn check_worked_example() {
    let (entries, as_of) = worked_example();
    let scores = reference_scores(&entries, as_of, RefRange::Days7);

    let expected = [
        ExpectedArtist {
            artist: "art_a",
            primary_genre: "jazz",
            raw: [
                0.0, 0.0178, 0.0, 1.0, 54470.0, 0.5, 500.0, 1000.0, 500_000.0, 2.0, 0.0, 1.0,
            ],
            percentile: [0.0, 100.0, 0.0, 100.0, 50.0, 25.0, 50.0, 100.0, 50.0, 100.0, 0.0, 100.0],
            domains: [33.33, 58.33, 66.67, 66.67],
            overall: 56.25,
            entries_by_tier: [0, 2, 1, 1, 0],
        },
        ExpectedArtist {
            artist: "art_b",
            primary_genre: "house",
            raw: [0.0, 0.0, 10000.0, 0.5, 53545.5, 0.5, 0.0, 0.0, 0.0, 1.0, 0.01, 0.0],
            percentile: [0.0, 0.0, 100.0, 50.0, 0.0, 25.0, 0.0, 0.0, 0.0, 25.0, 100.0, 0.0],
            domains: [33.33, 25.00, 0.00, 41.67],
            overall: 25.00,
            entries_by_tier: [1, 0, 1, 1, 0],
        },
        ExpectedArtist {
            artist: "art_c",
            primary_genre: "jazz",
            raw: [0.0, 0.0, 0.0, 0.0, 82820.0, 1.0, 550.0, 550.0, 550_000.0, 1.0, 0.0, 0.0],
            percentile: [0.0, 0.0, 0.0, 0.0, 100.0, 100.0, 100.0, 50.0, 100.0, 25.0, 0.0, 0.0],
            domains: [0.00, 66.67, 83.33, 8.33],
            overall: 39.58,
            entries_by_tier: [0, 1, 0, 1, 0],
        },
    ];

    let got_ids: Vec<&str> = scores.iter().map(|a| a.artist.as_str()).collect();
    let want_ids: Vec<&str> = expected.iter().map(|a| a.artist).collect();
    assert_eq!(got_ids, want_ids, "worked example: population (sorted by artist id)");

    for (got, want) in scores.iter().zip(expected.iter()) {
        let who = want.artist;
        assert_eq!(
            got.primary_genre.as_deref(),
            Some(want.primary_genre),
            "worked example: {who} primary genre"
        );
        assert_eq!(
            got.entries_by_tier, want.entries_by_tier,
            "worked example: {who} entries by tier"
        );
        for (c, name) in COMPONENT_NAMES.iter().enumerate() {
            // The table shows revenue in major units; RefEntry carries minor units.
            let raw = if (6..=8).contains(&c) {
                got.raw[c] / 100.0
            } else {
                got.raw[c]
            };
            assert!(
                close_raw(raw, want.raw[c]),
                "worked example: {who} {name} raw = {raw} (as in the table's units), want {}",
                want.raw[c]
            );
            assert!(
                close_score(got.percentile[c], want.percentile[c]),
                "worked example: {who} {name} percentile = {}, want {}",
                got.percentile[c],
                want.percentile[c]
            );
        }
        for (d, name) in DOMAIN_NAMES.iter().enumerate() {
            assert!(
                close_score(got.domains[d], want.domains[d]),
                "worked example: {who} domain {name} = {}, want {}",
                got.domains[d],
                want.domains[d]
            );
        }
        assert!(
            close_score(got.overall, want.overall),
            "worked example: {who} overall = {}, want {}",
            got.overall,
            want.overall
        );
    }

    // Exact values the document spells out.
    let art_a = &scores[0];
    assert!(
        (art_a.raw[1] - 1940.0 / (1940.0 + 107_000.0)).abs() < 1e-12,
        "worked example: art_a crossover = {}, want 1940 / (1940 + 107000)",
        art_a.raw[1]
    );
    assert_eq!(art_a.raw[4], 54470.0, "worked example: art_a repeat engagement");
    assert_eq!(scores[1].raw[4], 53545.5, "worked example: art_b repeat engagement");
    assert_eq!(scores[2].raw[4], 82820.0, "worked example: art_c repeat engagement");

    // Rounding: one decimal, halves up.
    assert_eq!(reported(56.25), 56.3, "reported(56.25)");
    assert_eq!(reported(25.0), 25.0, "reported(25.0)");
    assert_eq!(reported(39.583_333), 39.6, "reported(39.583333)");
    assert_eq!(reported(8.333_333), 8.3, "reported(8.333333)");
    assert_eq!(reported(0.0), 0.0, "reported(0.0)");
    assert_eq!(reported(100.0), 100.0, "reported(100.0)");
}

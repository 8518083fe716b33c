//! Hand-computed cases, starting with SCORING.md's worked example.

use super::*;

const DAY: i64 = 20_412; // 2026-11-20

/// Names as numbers: artists 0.., fans 100.., cities 200.., genres 300..
const ART_A: u32 = 0;
const ART_B: u32 = 1;
const ART_C: u32 = 2;
const OSLO: u32 = 200;
const BERGEN: u32 = 201;
const LIMA: u32 = 202;
const JAZZ: u32 = 300;
const HOUSE: u32 = 301;

fn genre_name(id: u32) -> String {
    match id {
        JAZZ => "jazz".to_owned(),
        HOUSE => "house".to_owned(),
        other => format!("genre-{other}"),
    }
}

/// One entry of `tier` (0..=4: 0.1, 1, 10, 100, 1000 points), `age` days before DAY.
fn row(artist: u32, fan: u32, age: i64, city: u32, genre: u32, tier: usize) -> FanDayRow {
    let mut by_tier = [0; 5];
    by_tier[tier] = 1;
    FanDayRow {
        day: i32::try_from(DAY - age).expect("a day"),
        artist,
        fan,
        city,
        genre,
        by_tier,
        influence: 0,
    }
}

fn scores(rows: &mut [FanDayRow], kpis: &[(u32, Kpis)], range: ScoreRange) -> Vec<ArtistScore> {
    rows.sort_by_key(|r| (r.artist, r.fan, r.day, r.city, r.genre));
    let kpis = kpis.iter().copied().collect();
    score(&ScoringConfig::default(), DAY, range, rows, &kpis, &genre_name)
}

fn kpis(plays: i64, attendance: i64, revenue_minor: i64, revenue_entries: i64) -> Kpis {
    Kpis {
        plays,
        attendance,
        revenue_minor,
        revenue_entries,
        ..Kpis::default()
    }
}

fn close(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() < 0.01, "{what}: {actual} is not {expected}");
}

#[test]
fn the_worked_example_of_scoring_md() {
    let (f1, f2, f3, f4) = (100, 101, 102, 103);
    let mut share = row(ART_B, f1, 0, OSLO, HOUSE, 2);
    share.influence = 1;
    let mut rows = vec![
        row(ART_A, f1, 0, OSLO, JAZZ, 1),
        row(ART_A, f1, 2, OSLO, JAZZ, 1),
        row(ART_A, f2, 0, BERGEN, JAZZ, 2),
        row(ART_A, f2, 1, BERGEN, JAZZ, 3),
        share,
        row(ART_B, f3, 3, OSLO, HOUSE, 0),
        row(ART_B, f3, 1, OSLO, HOUSE, 3),
        row(ART_C, f4, 6, LIMA, JAZZ, 1),
        row(ART_C, f4, 6, LIMA, JAZZ, 3),
    ];
    // 1000 USD; a 20 s preview is no play; 500 EUR at 1.10 = 550 USD.
    let kpis = [
        (ART_A, kpis(2, 0, 100_000, 1)),
        (ART_B, kpis(0, 1, 0, 0)),
        (ART_C, kpis(1, 0, 55_000, 1)),
    ];
    let scored = scores(&mut rows, &kpis, ScoreRange::Days7);
    assert_eq!(
        scored.iter().map(|s| s.artist).collect::<Vec<_>>(),
        [ART_A, ART_B, ART_C]
    );
    let [a, b, c] = [&scored[0], &scored[1], &scored[2]];
    assert_eq!((a.primary_genre, b.primary_genre, c.primary_genre), (JAZZ, HOUSE, JAZZ));

    let expected_raw: [[f64; 12]; 3] = [
        [
            0.0,
            1940.0 / 108_940.0,
            0.0,
            1.0,
            54_470.0,
            0.5,
            50_000.0,
            100_000.0,
            50_000_000.0,
            2.0,
            0.0,
            1.0,
        ],
        [0.0, 0.0, 10_000.0, 0.5, 53_545.5, 0.5, 0.0, 0.0, 0.0, 1.0, 0.01, 0.0],
        [
            0.0,
            0.0,
            0.0,
            0.0,
            82_820.0,
            1.0,
            55_000.0,
            55_000.0,
            55_000_000.0,
            1.0,
            0.0,
            0.0,
        ],
    ];
    let expected_percentiles: [[f64; 12]; 3] = [
        [0.0, 100.0, 0.0, 100.0, 50.0, 25.0, 50.0, 100.0, 50.0, 100.0, 0.0, 100.0],
        [0.0, 0.0, 100.0, 50.0, 0.0, 25.0, 0.0, 0.0, 0.0, 25.0, 100.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 100.0, 100.0, 100.0, 50.0, 100.0, 25.0, 0.0, 0.0],
    ];
    let expected_domains = [
        [33.33, 58.33, 66.67, 66.67],
        [33.33, 25.00, 0.00, 41.67],
        [0.00, 66.67, 83.33, 8.33],
    ];
    let expected_overall = [56.25, 25.00, 39.58];
    for (i, artist) in [a, b, c].into_iter().enumerate() {
        for component in 0..12 {
            let what = format!("artist {i}, {}", COMPONENTS[component]);
            let (raw, want) = (artist.raw[component], expected_raw[i][component]);
            assert!(
                (raw - want).abs() <= want.abs() * 1e-9 + 1e-9,
                "{what}: raw {raw} is not {want}"
            );
            close(artist.percentile[component], expected_percentiles[i][component], &what);
        }
        for (d, (&domain, &expected)) in artist.domains.iter().zip(&expected_domains[i]).enumerate() {
            close(domain, expected, &format!("artist {i}, domain {d}"));
        }
        close(artist.overall, expected_overall[i], &format!("artist {i}, overall"));
    }
    assert_eq!(reported(a.overall), 56.3, "halves up");
    assert_eq!(a.entries_by_tier, [0, 2, 1, 1, 0]);
}

#[test]
fn no_artists_no_population() {
    let scored = scores(&mut [], &[], ScoreRange::All);
    assert!(scored.is_empty());
}

#[test]
fn a_single_artist_scores_100_on_what_it_has_and_0_on_what_it_lacks() {
    let mut rows = vec![row(ART_A, 100, 0, OSLO, JAZZ, 1), row(ART_A, 100, 1, OSLO, JAZZ, 1)];
    let scored = scores(&mut rows, &[(ART_A, kpis(2, 0, 0, 0))], ScoreRange::Days7);
    let only = &scored[0];
    // Loyal (two days), repeat engagement and reach are above 0; revenue, crossover,
    // influence, conversion and diversity (one genre in the range) are 0.
    assert_eq!(only.percentile[3], 100.0);
    assert_eq!(only.percentile[4], 100.0);
    assert_eq!(only.percentile[9], 100.0);
    for zero in [0, 1, 2, 5, 6, 7, 8, 10, 11] {
        assert_eq!(only.percentile[zero], 0.0, "{}", COMPONENTS[zero]);
    }
}

#[test]
fn tied_values_share_the_mean_of_their_ranks() {
    // Four artists with 1, 1, 1 and 2 cities: reach ranks 1,2,3 → 2 for the tied three.
    let mut rows = vec![
        row(ART_A, 100, 0, OSLO, JAZZ, 1),
        row(ART_B, 100, 0, OSLO, JAZZ, 1),
        row(ART_C, 100, 0, OSLO, JAZZ, 1),
        row(3, 100, 0, OSLO, JAZZ, 1),
        row(3, 101, 0, LIMA, JAZZ, 1),
    ];
    let scored = scores(&mut rows, &[], ScoreRange::Days7);
    let reach: Vec<f64> = scored.iter().map(|s| s.percentile[9]).collect();
    close(reach[0], 100.0 / 3.0, "tied");
    assert_eq!(reach[0], reach[1]);
    assert_eq!(reach[1], reach[2]);
    assert_eq!(reach[3], 100.0);
}

#[test]
fn an_artist_without_fans_still_has_weight_but_no_fan_ratios() {
    let mut rows = vec![row(ART_A, NONE, 0, OSLO, JAZZ, 4), row(ART_B, 100, 0, OSLO, JAZZ, 1)];
    let scored = scores(&mut rows, &[(ART_A, kpis(0, 0, 5000, 1))], ScoreRange::Days7);
    let a = &scored[0];
    assert_eq!(a.entries_by_tier, [0, 0, 0, 0, 1]);
    for fan_ratio in [3, 4, 5, 6] {
        assert_eq!(
            a.raw[fan_ratio], 0.0,
            "{} has no fans to divide by",
            COMPONENTS[fan_ratio]
        );
    }
    assert_eq!(a.raw[7], 5000.0, "average transaction needs no fan");
    assert_eq!(a.raw[9], 1.0, "reach counts entries without a user");
    assert_eq!(a.raw[11], 0.0);
}

#[test]
fn without_genres_there_is_no_primary_genre_diversity_or_crossover() {
    let mut rows = vec![row(ART_A, 100, 0, OSLO, NONE, 1), row(ART_B, 100, 0, OSLO, NONE, 1)];
    let scored = scores(&mut rows, &[], ScoreRange::Days7);
    assert!(
        scored
            .iter()
            .all(|s| s.primary_genre == NONE && s.raw[0] == 0.0 && s.raw[1] == 0.0)
    );
}

#[test]
fn refunds_can_make_revenue_negative_and_it_ranks_below_zero() {
    let mut rows = vec![
        row(ART_A, 100, 0, OSLO, JAZZ, 4),
        row(ART_B, 101, 0, OSLO, JAZZ, 4),
        row(ART_C, 102, 0, OSLO, JAZZ, 4),
    ];
    let kpis = [
        (ART_A, kpis(0, 0, -2000, 1)),
        (ART_B, kpis(0, 0, 0, 0)),
        (ART_C, kpis(0, 0, 3000, 1)),
    ];
    let scored = scores(&mut rows, &kpis, ScoreRange::Days7);
    assert_eq!(scored[0].raw[6], -2000.0);
    assert_eq!(scored[0].percentile[6], 0.0, "the lowest rank");
    assert_eq!(scored[1].percentile[6], 0.0, "zero scores zero");
    assert_eq!(scored[2].percentile[6], 100.0);
}

#[test]
fn entries_exactly_30_days_old_leave_30d_and_keep_the_floor_in_all() {
    let config = ScoringConfig::default();
    assert_eq!(config.decay_hundredths(0), 100);
    assert_eq!(config.decay_hundredths(29), 13);
    assert_eq!(config.decay_hundredths(30), 10);
    assert_eq!(config.decay_hundredths(400), 10, "the 10 % floor");
    let mut rows = vec![row(ART_A, 100, 30, OSLO, JAZZ, 1), row(ART_B, 101, 29, OSLO, JAZZ, 1)];
    let in_30d = scores(&mut rows, &[], ScoreRange::Days30);
    assert_eq!(in_30d.iter().map(|s| s.artist).collect::<Vec<_>>(), [ART_B]);
    assert_eq!(in_30d[0].raw[4], 10.0 * 13.0);
    let in_all = scores(&mut rows, &[], ScoreRange::All);
    assert_eq!(in_all[0].raw[4], 10.0 * 10.0, "30 days old: tier 1 × 0.1");
    let in_7d = scores(&mut rows, &[], ScoreRange::Days7);
    assert!(in_7d.is_empty());
}

#[test]
fn entries_after_the_instant_do_not_count() {
    let mut rows = vec![row(ART_A, 100, -1, OSLO, JAZZ, 1)];
    assert!(scores(&mut rows, &[], ScoreRange::All).is_empty());
}

#[test]
fn touring_counts_cities_with_ten_fans_plus_attendance() {
    let mut rows: Vec<FanDayRow> = (0..10).map(|fan| row(ART_A, 100 + fan, 0, OSLO, JAZZ, 1)).collect();
    rows.extend((0..9).map(|fan| row(ART_A, 200 + fan, 0, LIMA, JAZZ, 1)));
    let scored = scores(&mut rows, &[(ART_A, kpis(0, 250, 0, 0))], ScoreRange::Days7);
    assert_eq!(scored[0].raw[10], 1.0 + 2.5);
    close(
        scored[0].raw[11],
        {
            let (p, q) = (10.0 / 19.0_f64, 9.0 / 19.0_f64);
            -(p * p.ln() + q * q.ln()) / 2.0_f64.ln()
        },
        "city distribution",
    );
}

#[test]
fn boards_and_ranges_parse_their_api_names() {
    assert_eq!(DnaBoard::parse("overall"), Some(DnaBoard::Overall));
    assert_eq!(DnaBoard::parse("g"), Some(DnaBoard::Domain(DnaDomain::Economic)));
    assert_eq!(DnaBoard::parse("x"), None);
    assert_eq!(ScoreRange::parse("30d"), Some(ScoreRange::Days30));
    assert_eq!(ScoreRange::parse("24h"), None);
}

#[test]
fn any_number_of_threads_gives_the_same_scores() {
    let mut rows = Vec::new();
    let mut state = 17_u64;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n) as u32
    };
    for _ in 0..2000 {
        let genre = [JAZZ, HOUSE, NONE][next(3) as usize];
        let city = [OSLO, BERGEN, LIMA, NONE][next(4) as usize];
        rows.push(row(
            next(40),
            // Fans far apart, in many buckets of the home-genre pass.
            100 + next(60) * 997,
            i64::from(next(40)),
            city,
            genre,
            next(5) as usize,
        ));
    }
    rows.sort_by_key(|r| (r.artist, r.fan, r.day, r.city, r.genre));
    let kpis: HashMap<u32, Kpis> = (0..40)
        .map(|a| (a, kpis(i64::from(a), 0, i64::from(a) * 100, 1)))
        .collect();
    let one = score_all(
        &ScoringConfig::default(),
        DAY,
        &rows,
        [&kpis, &kpis, &kpis],
        &genre_name,
        1,
    );
    for threads in [2, 3, 7] {
        let many = score_all(
            &ScoringConfig::default(),
            DAY,
            &rows,
            [&kpis, &kpis, &kpis],
            &genre_name,
            threads,
        );
        assert_eq!(many, one, "{threads} threads");
    }
    assert!(one.iter().all(|range| range.len() > 30));
}

/// A fan-day held as several rows with the same key (as the engine holds
/// one whose counts pass 16 bits) scores exactly as one row.
#[test]
fn a_fan_day_split_into_rows_scores_as_one() {
    let mut state = 23_u64;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n) as u32
    };
    let mut whole = Vec::new();
    for _ in 0..1500 {
        let mut one = row(
            next(30),
            100 + next(50),
            i64::from(next(40)),
            [OSLO, BERGEN, LIMA, NONE][next(4) as usize],
            [JAZZ, HOUSE, NONE][next(3) as usize],
            0,
        );
        one.by_tier = [0; 5].map(|_| if next(3) == 0 { 2 + next(40) as u16 } else { 0 });
        one.influence = next(4) as u16;
        whole.push(one);
    }
    // Rows with the same key are one fan-day: sum them, then split each
    // fan-day at a point of its own, counter by counter.
    whole.sort_by_key(|r| (r.artist, r.fan, r.day, r.city, r.genre));
    whole.dedup_by(|later, kept| {
        let same = (later.artist, later.fan, later.day, later.city, later.genre)
            == (kept.artist, kept.fan, kept.day, kept.city, kept.genre);
        if same {
            for (sum, n) in kept.by_tier.iter_mut().zip(later.by_tier) {
                *sum += n;
            }
            kept.influence += later.influence;
        }
        same
    });
    let mut split = Vec::new();
    for one in &whole {
        let (mut first, mut second) = (*one, *one);
        first.by_tier = one.by_tier.map(|n| n / 3);
        second.by_tier = one.by_tier.map(|n| n - n / 3);
        first.influence = one.influence / 2;
        second.influence = one.influence - one.influence / 2;
        split.extend([first, second]);
    }
    let kpis = [(0, kpis(10, 2, 500, 1)), (7, kpis(3, 0, 0, 0))];
    for range in ScoreRange::ALL {
        let expected = scores(&mut whole, &kpis, range);
        assert!(expected.len() > 20);
        assert!(
            expected.iter().any(|s| s.raw[3] > 0.0 && s.raw[5] > 0.0),
            "loyalty and conversion exercised"
        );
        assert_eq!(scores(&mut split, &kpis, range), expected, "{range:?}");
    }
}

//! Reads served from memory (the hot state's slices, its hour buckets kept
//! for the `all` slice and their cells only, the platform totals) and
//! through the SQL fallback answer exactly what one SQL sum over the
//! rollups answers, for every shape: ranges across the edges of the hot
//! window, custom ranges with hour edges or ending after today, `all`, no
//! filter, one or two, for the platform, an artist or a live event; after
//! loading from the store, and again after batches applied live, late
//! entries into packed buckets and new artists in them included, and once
//! more after the next packing pass has merged them; at midday and in the
//! last hour of a day, where the day so far is whole in hours and entries
//! from clocks ahead fall into tomorrow.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use coliseum_domain::clock::FixedClock;
use coliseum_domain::kpi::{Kpis, Metric};
use coliseum_domain::money::{Currency, FxTable};
use coliseum_domain::passport::{ValidationContext, validate_raw_envelope};
use coliseum_domain::range::Range;
use coliseum_engine::hot::HotState;
use coliseum_engine::processor::AppliedSink;
use coliseum_engine::reads::{BoardQuery, Filters, KpiQuery, Ranking, Reads};
use coliseum_engine::{PipelineStats, Processor, ProcessorConfig};
use coliseum_store::{CellFilter, Grain, NewEntry, Store};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use support::Random;

/// Entries over the `days` days before `now`, for a few artists, cities,
/// genres and live events, some with none of them (badges with no artist
/// either), and one in forty from a clock one to four minutes ahead (a
/// sender's may be five).
fn stream(now: OffsetDateTime, seed: u64, count: usize, days: i64, artists: &[&str]) -> Vec<Value> {
    let mut random = Random(seed);
    (0..count)
        .map(|i| {
            let minutes = random.below((days * 24 * 60) as u64) as i64;
            let at = if i % 40 == 0 {
                now + time::Duration::minutes(1 + (i as i64 / 40) % 4)
            } else {
                now - time::Duration::minutes(minutes)
            };
            let mut metadata = serde_json::Map::new();
            if random.below(6) > 0 {
                metadata.insert("city".into(), json!(random.pick(&["Oslo", "Lagos", "Lima"])));
            }
            if random.below(6) > 0 {
                metadata.insert("genre".into(), json!(random.pick(&["jazz", "house", "pop"])));
            }
            let kind = random.pick(&[
                "audio.play",
                "audio.play",
                "vote.cast",
                "event.attended",
                "treasury.tip",
                "badge.earned",
            ]);
            if kind == "event.attended" || random.below(3) == 0 {
                metadata.insert("live_event_id".into(), json!(random.pick(&["live_1", "live_2"])));
            }
            metadata.insert("amount_minor".into(), json!(1 + random.below(5000)));
            metadata.insert("currency".into(), json!("USD"));
            json!({
                "event_id": format!("r-{seed}-{i}"),
                "schema_version": 1,
                "type": kind,
                "timestamp": at.format(&time::format_description::well_known::Rfc3339).expect("format"),
                "user_id": random.pick(&["fan_1", "fan_2", "fan_3"]),
                // A badge may be about no artist: in no artist's figures.
                "artist_id": (kind != "badge.earned").then(|| random.pick(artists)),
                "metadata": metadata,
                "engagement": {"duration_ms": 60_000},
            })
        })
        .collect()
}

async fn process(store: &Arc<dyn Store>, now: OffsetDateTime, envelopes: &[Value], sinks: Vec<Arc<dyn AppliedSink>>) {
    let entries: Vec<NewEntry> = envelopes
        .iter()
        .map(|envelope| {
            let entry = validate_raw_envelope(&envelope.to_string(), "", &ValidationContext::at(now))
                .unwrap_or_else(|e| panic!("valid envelope {envelope}: {e:?}"));
            NewEntry::from_entry(entry, now)
        })
        .collect();
    store.append_entries(&entries).await.expect("append");
    let config = ProcessorConfig {
        batch_entries: 97,
        ..ProcessorConfig::default()
    };
    let processor = Processor::new(
        store.clone(),
        Arc::new(FxTable::new(Currency::parse("USD").expect("USD"))),
        Arc::new(FixedClock::new(now)),
        Arc::new(PipelineStats::default()),
        config,
        sinks,
    )
    .await
    .expect("processor");
    processor.run_until_idle().await.expect("process");
}

fn ranges(now: OffsetDateTime) -> Vec<Range> {
    let hour = |h: i64| now.replace_minute(0).expect("hour") - time::Duration::hours(h);
    let midnight = now.replace_time(time::Time::MIDNIGHT);
    vec![
        Range::Hour,
        Range::Day,
        Range::Week,
        Range::Month,
        Range::All,
        // Whole days inside the hot window.
        Range::Custom {
            from: midnight - time::Duration::days(6),
            to: midnight - time::Duration::days(1),
        },
        // Hour edges a few days back, where hours keep the `all` slice only.
        Range::Custom {
            from: hour(24 * 5 + 7),
            to: hour(30),
        },
        // Reaching past the hot window, and into the current hour.
        Range::Custom {
            from: hour(24 * 38 + 5),
            to: hour(-1),
        },
        Range::Custom {
            from: hour(24 * 39),
            to: hour(24 * 33 + 3),
        },
        // Whole days ending after today, as a month read during it.
        Range::Custom {
            from: midnight - time::Duration::days(3),
            to: midnight + time::Duration::days(2),
        },
    ]
}

fn filter_sets() -> Vec<Filters> {
    let filters = |city: Option<&str>, genre: Option<&str>, live: Option<&str>| Filters {
        city: city.map(str::to_owned),
        genre: genre.map(str::to_owned),
        live_event: live.map(str::to_owned),
    };
    vec![
        filters(None, None, None),
        filters(Some("oslo"), None, None),
        filters(None, Some("jazz"), None),
        filters(Some("lagos"), Some("house"), None),
        filters(None, None, Some("live_1")),
        filters(Some("lima"), None, Some("live_2")),
        filters(None, Some("pop"), Some("live_1")),
        filters(Some("oslo"), Some("jazz"), Some("live_1")),
        filters(Some("nowhere"), None, Some("live_1")),
        filters(Some("nowhere"), Some("jazz"), None),
    ]
}

/// The hours `[from, to)` of `range` covers as of `as_of`, as buckets.
fn hours(range: Range, as_of: OffsetDateTime) -> (i64, i64) {
    let kept_from = (as_of - time::Duration::days(24 * 365 / 12)).replace_time(time::Time::MIDNIGHT);
    let (from, to) = range.bounds(as_of, kept_from);
    (
        Grain::Hour.bucket_of(from),
        (to.unix_timestamp() + 3599).div_euclid(3600),
    )
}

fn cell_filter(filters: &Filters, artist: Option<&str>) -> CellFilter {
    CellFilter {
        artist: artist.map(str::to_owned),
        city: filters.city.clone(),
        genre: filters.genre.clone(),
        live_event: filters.live_event.clone(),
    }
}

/// `(rank, artist, value)` by value descending then artist, values above
/// zero only, with standard competition ranks (1, 2, 2, 4).
fn ranked<'a>(values: impl Iterator<Item = (&'a str, i64)>) -> Vec<(u64, String, i64)> {
    let mut values: Vec<(&str, i64)> = values.filter(|(_, value)| *value > 0).collect();
    values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut out: Vec<(u64, String, i64)> = Vec::new();
    for (index, (artist, value)) in values.into_iter().enumerate() {
        let rank = match out.last() {
            Some((rank, _, previous)) if *previous == value => *rank,
            _ => index as u64 + 1,
        };
        out.push((rank, artist.to_owned(), value));
    }
    out
}

fn entries(ranking: &Ranking) -> Vec<(u64, String, i64)> {
    ranking
        .entries()
        .iter()
        .map(|r| (u64::from(r.rank), ranking.board.name(r.id).to_owned(), r.value))
        .collect()
}

async fn reads_equal_one_sql_sum(reads: &Reads, store: &Arc<dyn Store>, now: OffsetDateTime, when: &str) {
    let mut checked = 0;
    for range in ranges(now) {
        let (from, to) = hours(range, now);
        for filters in filter_sets() {
            for artist in [None, Some("art_a"), Some("art_new")] {
                let expected_hours = store
                    .sum_cells_by_bucket(Grain::Hour, from, to, &cell_filter(&filters, artist))
                    .await
                    .expect("sql");
                for bucket in [Grain::Hour, Grain::Day] {
                    let query = KpiQuery {
                        artist: artist.map(str::to_owned),
                        range,
                        bucket,
                        filters: filters.clone(),
                    };
                    let report = reads.kpis(&query).await.expect("kpis");
                    let mut expected: BTreeMap<i64, Kpis> = BTreeMap::new();
                    for (hour, kpis) in &expected_hours {
                        *expected
                            .entry(bucket.bucket_of(Grain::Hour.start_of(*hour)))
                            .or_default() += *kpis;
                    }
                    let expected: Vec<(OffsetDateTime, Kpis)> = expected
                        .into_iter()
                        .filter(|(_, k)| !k.is_zero())
                        .map(|(b, k)| (bucket.start_of(b), k))
                        .collect();
                    assert_eq!(report.series, expected, "{when}: series of {query:?}");
                    checked += 1;
                }
            }
            let by_artist = store
                .sum_cells_by_artist(Grain::Hour, from, to, &cell_filter(&filters, None))
                .await
                .expect("sql");
            // Engagement counts badges, which may name no artist: no board ranks them.
            for metric in [Metric::Plays, Metric::Revenue, Metric::Engagement] {
                let query = BoardQuery {
                    metric,
                    range,
                    filters: filters.clone(),
                };
                let ranking = reads.leaderboard(&query).await.expect("board");
                let expected = ranked(by_artist.iter().map(|(a, k)| (a.as_str(), k.metric(metric))));
                assert_eq!(entries(&ranking), expected, "{when}: board {query:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "{checked} reads compared");
}

async fn memory_and_sql_answer_alike(store: Arc<dyn Store>) {
    answer_alike_at(store, datetime!(2026-11-20 12:34 UTC)).await;
}

/// In the last hour of a day, where the day so far is whole in hours, and
/// entries from clocks ahead fall into tomorrow.
async fn memory_and_sql_answer_alike_in_the_last_hour_of_a_day(store: Arc<dyn Store>) {
    answer_alike_at(store, datetime!(2026-11-20 23:57 UTC)).await;
}

async fn answer_alike_at(store: Arc<dyn Store>, now: OffsetDateTime) {
    let clock = Arc::new(FixedClock::new(now));
    let reads_with =
        |hot: &Arc<HotState>, budget| Reads::new(hot.clone(), store.clone(), clock.clone(), Duration::ZERO, budget);
    let reads_of = |hot: &Arc<HotState>| reads_with(hot, coliseum_engine::reads::CacheBudget::DEFAULT);
    // Forty days of history, applied live to a state that started with
    // none (which therefore asks SQL nothing before the first entry)…
    let from_empty = Arc::new(HotState::load(store.as_ref(), clock.clone()).await.expect("load"));
    process(
        &store,
        now,
        &stream(now, 1, 3_000, 40, &["art_a", "art_b", "art_c", "art_d"]),
        vec![from_empty.clone() as Arc<dyn AppliedSink>],
    )
    .await;
    assert_eq!(
        Some(from_empty.first_held(Grain::Hour)),
        store.first_bucket(Grain::Hour).await.expect("first bucket"),
        "the first hour held, from what was applied"
    );
    reads_equal_one_sql_sum(&reads_of(&from_empty), &store, now, "applied from an empty start").await;
    // …then a fresh start that loads it.
    let hot = Arc::new(HotState::load(store.as_ref(), clock.clone()).await.expect("load"));
    let reads = reads_of(&hot);
    reads_equal_one_sql_sum(&reads, &store, now, "loaded").await;
    // The same, where the tile cache keeps nothing: a board moved forward
    // reads again only the parts whose buckets changed, and one whose
    // older parts changed (late entries) is built anew.
    let uncached = Arc::new(HotState::load(store.as_ref(), clock.clone()).await.expect("load"));
    let reads_uncached = reads_with(
        &uncached,
        coliseum_engine::reads::CacheBudget {
            tiles: 0,
            ..coliseum_engine::reads::CacheBudget::DEFAULT
        },
    );
    reads_equal_one_sql_sum(&reads_uncached, &store, now, "loaded, no tile cache").await;
    let sinks = || {
        vec![
            hot.clone() as Arc<dyn AppliedSink>,
            uncached.clone() as Arc<dyn AppliedSink>,
        ]
    };

    // Live: recent entries, late ones into packed hours and days, an
    // artist new to those buckets, and entries older than any before.
    let live = [
        stream(now, 2, 400, 1, &["art_a", "art_b"]),
        stream(now, 3, 400, 35, &["art_a", "art_new"]),
        stream(now, 4, 300, 60, &["art_c", "art_new"]),
    ]
    .concat();
    process(&store, now, &live, sinks()).await;
    assert_eq!(
        Some(hot.first_held(Grain::Day)),
        store.first_bucket(Grain::Day).await.expect("first bucket"),
        "moved back by the older entries"
    );
    reads_equal_one_sql_sum(&reads, &store, now, "after live batches").await;
    reads_equal_one_sql_sum(&reads_uncached, &store, now, "after live batches, no tile cache").await;

    // Half a minute on, the next batch packs what the late entries added
    // to packed hours: merged, the cells read as before.
    clock.set(now + time::Duration::seconds(31));
    process(&store, now, &stream(now, 5, 200, 35, &["art_b", "art_new"]), sinks()).await;
    reads_equal_one_sql_sum(&reads, &store, now, "after packing again").await;
    reads_equal_one_sql_sum(&reads_uncached, &store, now, "after packing again, no tile cache").await;
}

on_both_backends!(
    memory_and_sql_answer_alike,
    memory_and_sql_answer_alike_in_the_last_hour_of_a_day
);

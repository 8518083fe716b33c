//! The processor against real stores (SQLite and PostgreSQL): rollups equal
//! an independent reference computed straight from PASSPORT.md's KPI
//! definitions, whatever the batch size; dead letters retry, die and are
//! replayed once a rate is configured, counting once; pause survives a restart.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use coliseum_domain::clock::FixedClock;
use coliseum_domain::kpi::Kpis;
use coliseum_domain::money::{Currency, FxTable};
use coliseum_domain::passport::{ValidationContext, validate_raw_envelope};
use coliseum_engine::{PipelineStats, Processor, ProcessorConfig, Step};
use coliseum_store::{CellKey, DeadLetterState, FanDay, FanDayKey, Grain, NameKind, NewEntry, Store};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use support::Random;

fn now() -> OffsetDateTime {
    datetime!(2026-11-20 12:00 UTC)
}

fn fx(spec: &str) -> Arc<FxTable> {
    Arc::new(FxTable::parse(Currency::parse("USD").expect("USD"), spec).expect("rates"))
}

async fn processor(store: &Arc<dyn Store>, rates: &str, clock: &Arc<FixedClock>, batch: u32) -> Processor {
    let config = ProcessorConfig {
        batch_entries: batch,
        max_attempts: 2,
        first_retry: Duration::from_secs(60),
        ..ProcessorConfig::default()
    };
    Processor::new(
        store.clone(),
        fx(rates),
        clock.clone(),
        Arc::new(PipelineStats::default()),
        config,
        Vec::new(),
    )
    .await
    .expect("processor")
}

const TYPES: &[&str] = &[
    "audio.play",
    "audio.play",
    "vote.cast",
    "vote.retracted",
    "event.attended",
    "stream.joined",
    "treasury.money_spent",
    "treasury.refunded",
    "treasury.tip",
    "social.share",
    "treasury.money_earned",
    "badge.earned",
    "hologram.beamed",
];

/// A stream of varied envelopes over three days, some without artist, user,
/// city or genre, with odd spelling, unknown types and an unconvertible currency.
fn stream(seed: u64, count: usize) -> Vec<Value> {
    let mut random = Random(seed);
    (0..count)
        .map(|i| {
            let kind = random.pick(TYPES);
            let minutes = random.below(3 * 24 * 60) as i64;
            let at = now() - time::Duration::minutes(minutes);
            let mut metadata = serde_json::Map::new();
            if random.below(5) > 0 {
                metadata.insert("city".into(), json!(random.pick(&["Oslo", " oslo ", "LAGOS", "Lima"])));
            }
            if random.below(5) > 0 {
                metadata.insert("genre".into(), json!(random.pick(&["jazz", "Afrobeats", "house "])));
            }
            metadata.insert("live_event_id".into(), json!(random.pick(&["live_1", "live_2"])));
            if random.below(2) == 0 {
                metadata.insert(
                    "artist_name".into(),
                    json!(random.pick(&["Tems", " TEMS ", "Ayo", "Nova"])),
                );
            }
            if random.below(3) == 0 {
                metadata.insert(
                    "live_event_name".into(),
                    json!(random.pick(&["Afro Nation", "Homecoming"])),
                );
            }
            metadata.insert("amount_minor".into(), json!(random.below(5000)));
            metadata.insert("currency".into(), json!(random.pick(&["USD", "EUR", "EUR", "NOK"])));
            let artist = if kind == "badge.earned" && random.below(2) == 0 {
                Value::Null
            } else {
                json!(random.pick(&["art_a", "art_b", "art_c", "art_d"]))
            };
            json!({
                "event_id": format!("e-{seed}-{i}"),
                "schema_version": 1,
                "type": kind,
                "timestamp": at.format(&time::format_description::well_known::Rfc3339).expect("format"),
                "user_id": random.pick(&["fan_1", "fan_2", "fan_3"]),
                "artist_id": artist,
                "metadata": metadata,
                "engagement": {"duration_ms": random.below(60_000)},
            })
        })
        .collect()
}

fn new_entries(envelopes: &[Value]) -> Vec<NewEntry> {
    envelopes
        .iter()
        .map(|envelope| {
            let entry = validate_raw_envelope(&envelope.to_string(), "", &ValidationContext::at(now()))
                .unwrap_or_else(|e| panic!("valid envelope {envelope}: {e:?}"));
            NewEntry::from_entry(entry, now())
        })
        .collect()
}

type Reference = (HashMap<CellKey, Kpis>, HashMap<FanDayKey, FanDay>);

/// PASSPORT.md's KPI definitions, written out plainly for these types.
/// `rates` are cents of USD per unit; a currency missing from them is not counted.
fn reference(envelopes: &[Value], rates: &[(&str, f64)]) -> Reference {
    let mut cells: HashMap<CellKey, Kpis> = HashMap::new();
    let mut fan_days: HashMap<FanDayKey, FanDay> = HashMap::new();
    for e in envelopes {
        let kind = e["type"].as_str().unwrap_or_default();
        let duration = e["engagement"]["duration_ms"].as_i64().unwrap_or(0);
        let tier_tenths: i64 = match kind {
            "audio.play" if duration >= 30_000 => 10,
            "audio.play" => 1,
            "vote.cast" | "vote.retracted" | "stream.joined" | "social.share" | "badge.earned" => 100,
            "event.attended" | "treasury.money_spent" | "treasury.tip" => 1000,
            "treasury.refunded" | "treasury.money_earned" => 1,
            _ => continue, // unknown: stored, never counted
        };
        let amount = e["metadata"]["amount_minor"].as_i64().unwrap_or(0);
        let currency = e["metadata"]["currency"].as_str().unwrap_or_default();
        let in_usd = rates
            .iter()
            .find(|(code, _)| *code == currency)
            .map(|(_, rate)| (amount as f64 * rate).round() as i64);
        let mut kpis = Kpis {
            engagement_tenths: tier_tenths,
            ..Kpis::default()
        };
        match kind {
            "audio.play" => kpis.plays = i64::from(duration >= 30_000),
            "vote.cast" => kpis.votes = 1,
            "vote.retracted" => kpis.votes = -1,
            "event.attended" | "stream.joined" => kpis.attendance = 1,
            "treasury.money_spent" | "treasury.tip" | "treasury.refunded" => {
                let Some(usd) = in_usd else { continue }; // a dead letter
                let sign = if kind == "treasury.refunded" { -1 } else { 1 };
                kpis.revenue_minor = sign * usd;
                kpis.revenue_entries = i64::from(sign > 0);
            }
            "treasury.money_earned" => kpis = Kpis::default(),
            _ => {}
        }
        // Cities and genres compare trimmed and lower-cased; ids as given.
        let text = |v: &Value| v.as_str().map(|s| s.trim().to_lowercase()).unwrap_or_default();
        let id = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_default();
        let timestamp = OffsetDateTime::parse(
            e["timestamp"].as_str().unwrap_or_default(),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("timestamp");
        let artist = id(&e["artist_id"]);
        let (city, genre) = (text(&e["metadata"]["city"]), text(&e["metadata"]["genre"]));
        if kpis != Kpis::default() {
            for (grain, seconds) in [(Grain::Hour, 3600), (Grain::Day, 86_400)] {
                let key = CellKey {
                    grain,
                    bucket: timestamp.unix_timestamp().div_euclid(seconds),
                    artist: artist.clone(),
                    city: city.clone(),
                    genre: genre.clone(),
                    live_event: id(&e["metadata"]["live_event_id"]),
                };
                *cells.entry(key).or_default() += kpis;
            }
        }
        if !artist.is_empty() {
            let key = FanDayKey {
                day: timestamp.unix_timestamp().div_euclid(86_400),
                artist,
                fan: id(&e["user_id"]),
                city,
                genre,
            };
            let day = fan_days.entry(key).or_default();
            let index = [1, 10, 100, 1000, 10_000]
                .iter()
                .position(|t| *t == tier_tenths)
                .expect("a tier");
            day.by_tier[index] += 1;
            day.influence += i64::from(kind == "social.share");
        }
    }
    (cells, fan_days)
}

async fn stored_rollups(store: &Arc<dyn Store>) -> Reference {
    let mut cells: HashMap<CellKey, Kpis> = store
        .kpi_cells(Grain::Hour, i64::MIN, i64::MAX)
        .await
        .expect("hours")
        .into_iter()
        .collect();
    cells.extend(store.kpi_cells(Grain::Day, i64::MIN, i64::MAX).await.expect("days"));
    let fan_days = store
        .fan_days(i64::MIN, i64::MAX)
        .await
        .expect("fan days")
        .into_iter()
        .collect();
    (cells, fan_days)
}

async fn rollups_equal_the_reference_for_any_batch_size(store: Arc<dyn Store>) {
    let envelopes = stream(7, 400);
    store.append_entries(&new_entries(&envelopes)).await.expect("append");
    let expected = reference(&envelopes, &[("USD", 1.0), ("EUR", 1.1)]);
    assert!(expected.0.len() > 50 && expected.1.len() > 50, "a varied stream");
    let clock = Arc::new(FixedClock::new(now()));
    let mut first_split = None;
    for batch in [400, 37, 1] {
        store.reset_derived().await.expect("reset");
        let processor = processor(&store, "EUR=1.1", &clock, batch).await;
        assert_eq!(processor.run_until_idle().await.expect("process"), 400);
        let stored = stored_rollups(&store).await;
        assert_eq!(stored.0, expected.0, "cells, batches of {batch}");
        assert_eq!(stored.1, expected.1, "fan-days, batches of {batch}");
        let letters = store.dead_letters(0, 1000, true).await.expect("dead letters");
        let nok = envelopes
            .iter()
            .filter(|e| {
                e["metadata"]["currency"] == "NOK"
                    && ["treasury.money_spent", "treasury.tip", "treasury.refunded"]
                        .contains(&e["type"].as_str().unwrap_or(""))
            })
            .count();
        assert_eq!(letters.len(), nok, "every NOK payment is a dead letter");
        assert!(letters.iter().all(|l| l.reason == "no exchange rate for NOK"));
        match &first_split {
            None => first_split = Some(letters),
            Some(first) => assert_eq!(&letters, first),
        }
    }
}

/// PASSPORT.md's display names, written out plainly: of the entries not
/// left in the dead letters (log order, `seq` from 1), an artist's or live
/// event's name from the newest by timestamp (ties: the later), a city's
/// or genre's first spelling, trimmed.
fn reference_names(envelopes: &[Value], dead: &[i64]) -> Vec<(NameKind, String, String)> {
    let mut newest: HashMap<(NameKind, String), (OffsetDateTime, i64, String)> = HashMap::new();
    let mut first: HashMap<(NameKind, String), String> = HashMap::new();
    for (i, e) in envelopes.iter().enumerate() {
        let seq = i as i64 + 1;
        if dead.contains(&seq) {
            continue;
        }
        let at = OffsetDateTime::parse(
            e["timestamp"].as_str().expect("timestamp"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("instant");
        let metadata = &e["metadata"];
        for (kind, id, name) in [
            (NameKind::Artist, &e["artist_id"], &metadata["artist_name"]),
            (
                NameKind::LiveEvent,
                &metadata["live_event_id"],
                &metadata["live_event_name"],
            ),
        ] {
            if let (Some(id), Some(name)) = (id.as_str(), name.as_str()) {
                let held = newest
                    .entry((kind, id.to_owned()))
                    .or_insert((at, seq, name.trim().to_owned()));
                if (at, seq) > (held.0, held.1) {
                    *held = (at, seq, name.trim().to_owned());
                }
            }
        }
        for (kind, field) in [(NameKind::City, "city"), (NameKind::Genre, "genre")] {
            if let Some(spelling) = metadata[field].as_str() {
                first
                    .entry((kind, spelling.trim().to_lowercase()))
                    .or_insert_with(|| spelling.trim().to_owned());
            }
        }
    }
    let mut names: Vec<(NameKind, String, String)> = newest
        .into_iter()
        .map(|((kind, id), (_, _, name))| (kind, id, name))
        .chain(first.into_iter().map(|((kind, key), spelling)| (kind, key, spelling)))
        .collect();
    names.sort();
    names
}

async fn stored_names(store: &Arc<dyn Store>) -> Vec<(NameKind, String, String)> {
    let mut names: Vec<_> = store
        .display_names()
        .await
        .expect("names")
        .into_iter()
        .map(|n| (n.kind, n.id, n.name))
        .collect();
    names.sort();
    names
}

async fn a_rebuild_equals_the_reference_and_the_processor(store: Arc<dyn Store>) {
    let envelopes = stream(11, 600);
    store.append_entries(&new_entries(&envelopes)).await.expect("append");
    let clock = Arc::new(FixedClock::new(now()));
    assert_eq!(
        processor(&store, "EUR=1.1", &clock, 64)
            .await
            .run_until_idle()
            .await
            .expect("process"),
        600
    );
    let processed = store.dead_letters(0, 1000, true).await.expect("dead letters");
    assert!(!processed.is_empty(), "the stream has payments without a rate");
    let dead: Vec<i64> = processed.iter().map(|l| l.seq).collect();
    let names = reference_names(&envelopes, &dead);
    assert!(names.iter().any(|(kind, _, _)| *kind == NameKind::Artist));
    assert!(names.iter().any(|(kind, _, _)| *kind == NameKind::LiveEvent));
    assert_eq!(stored_names(&store).await, names, "the processor's names");

    let report = coliseum_engine::rebuild::rebuild(store.clone(), fx("EUR=1.1"), now(), |_| {})
        .await
        .expect("rebuild");
    let expected = reference(&envelopes, &[("USD", 1.0), ("EUR", 1.1)]);
    let stored = stored_rollups(&store).await;
    assert_eq!(stored.0, expected.0, "cells");
    assert_eq!(stored.1, expected.1, "fan-days");
    assert_eq!(report.entries, 600);
    assert_eq!(
        report.cells as usize + report.fan_days as usize,
        expected.0.len() + expected.1.len()
    );
    assert_eq!(store.pipeline_state().await.expect("state").processed_seq, 600);
    assert_eq!(stored_names(&store).await, names, "the rebuild's names");
    let rebuilt = store.dead_letters(0, 1000, true).await.expect("dead letters");
    let fate = |letters: &[coliseum_store::DeadLetter]| {
        letters
            .iter()
            .map(|l| (l.seq, l.event_id.clone(), l.reason.clone(), l.attempts, l.state))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        fate(&rebuilt),
        fate(&processed),
        "the same entries wait in the dead letters"
    );

    // The processor carries on from the rebuilt cursor.
    let more = stream(12, 50);
    store.append_entries(&new_entries(&more)).await.expect("append");
    assert_eq!(
        processor(&store, "EUR=1.1", &clock, 64)
            .await
            .run_until_idle()
            .await
            .expect("process"),
        50
    );
    let all: Vec<Value> = envelopes.iter().chain(&more).cloned().collect();
    let expected = reference(&all, &[("USD", 1.0), ("EUR", 1.1)]);
    assert_eq!(stored_rollups(&store).await, expected);
}

async fn a_dead_letter_retries_dies_and_counts_once_when_replayed(store: Arc<dyn Store>) {
    let tip = json!({
        "event_id": "tip-1", "schema_version": 1, "type": "treasury.tip",
        "timestamp": "2026-11-20T11:00:00Z", "user_id": "fan_1", "artist_id": "art_a",
        "metadata": {"amount_minor": 1000, "currency": "NOK"},
    });
    let play = json!({
        "event_id": "play-1", "schema_version": 1, "type": "audio.play",
        "timestamp": "2026-11-20T11:00:00Z", "user_id": "fan_1", "artist_id": "art_a",
        "engagement": {"duration_ms": 60000},
    });
    store.append_entries(&new_entries(&[tip, play])).await.expect("append");
    let clock = Arc::new(FixedClock::new(now()));
    let without_nok = processor(&store, "EUR=1.1", &clock, 100).await;
    without_nok.run_until_idle().await.expect("process");
    let day = |store: Arc<dyn Store>| async move {
        store
            .kpi_cells(Grain::Day, 0, i64::MAX)
            .await
            .expect("cells")
            .into_iter()
            .map(|(_, k)| k)
            .sum::<Kpis>()
    };
    assert_eq!(
        day(store.clone()).await.plays,
        1,
        "the entry behind the failed one is counted"
    );
    assert_eq!(day(store.clone()).await.revenue_minor, 0);

    assert_eq!(without_nok.retry_due().await.expect("retry"), 0, "not due yet");
    clock.set(now() + time::Duration::minutes(2));
    assert_eq!(without_nok.retry_due().await.expect("retry"), 1);
    let letters = store.dead_letters(0, 10, false).await.expect("list");
    assert_eq!((letters[0].attempts, letters[0].state), (2, DeadLetterState::Dead));
    clock.set(now() + time::Duration::hours(1));
    assert_eq!(
        without_nok.retry_due().await.expect("retry"),
        0,
        "dead letters wait for an operator"
    );

    // The operator configures the rate (a restart with new settings) and replays.
    let with_nok = processor(&store, "EUR=1.1,NOK=0.09", &clock, 100).await;
    assert_eq!(
        with_nok
            .replay_dead_letters(None, &|_: &u64| None)
            .await
            .expect("replay"),
        1
    );
    assert_eq!(with_nok.retry_due().await.expect("retry"), 1);
    assert_eq!(day(store.clone()).await.revenue_minor, 90);
    assert_eq!(store.open_dead_letters().await.expect("open"), 0);
    assert_eq!(
        with_nok
            .replay_dead_letters(None, &|_: &u64| None)
            .await
            .expect("replay"),
        0
    );
    assert_eq!(with_nok.retry_due().await.expect("retry"), 0);
    assert_eq!(day(store.clone()).await.revenue_minor, 90, "counted once");
}

async fn pause_holds_the_queue_across_a_restart_and_resume_drains_it(store: Arc<dyn Store>) {
    let clock = Arc::new(FixedClock::new(now()));
    let first = processor(&store, "", &clock, 100).await;
    first.pause(&operator("pipeline.paused")).await.expect("pause");
    store
        .append_entries(&new_entries(&stream(3, 50)))
        .await
        .expect("append");
    assert_eq!(first.step().await.expect("step"), Step::Paused);
    drop(first);

    let restarted = processor(&store, "", &clock, 100).await;
    assert_eq!(
        restarted.step().await.expect("step"),
        Step::Paused,
        "the pause survived"
    );
    assert_eq!(store.pipeline_state().await.expect("state").processed_seq, 0);
    restarted.resume(&operator("pipeline.resumed")).await.expect("resume");
    assert_eq!(restarted.run_until_idle().await.expect("drain"), 50);
    assert_eq!(
        *restarted.watermark().borrow(),
        coliseum_engine::Watermark { seq: 50, as_of: now() }
    );
    assert_eq!(restarted.step().await.expect("step"), Step::Idle);
}

async fn latency_counts_to_when_every_served_read_includes_the_entry(store: Arc<dyn Store>) {
    // The fixed clock stands at the entries' receipt: the commit takes no
    // time, and what is left is how long a read may serve older figures.
    let clock = Arc::new(FixedClock::new(now()));
    store
        .append_entries(&new_entries(&stream(4, 20)))
        .await
        .expect("append");
    let stats = Arc::new(PipelineStats::default());
    let config = ProcessorConfig {
        served_within: Duration::from_secs(3),
        ..ProcessorConfig::default()
    };
    let processor = Processor::new(store.clone(), fx(""), clock.clone(), stats.clone(), config, Vec::new())
        .await
        .expect("processor");
    assert_eq!(processor.run_until_idle().await.expect("drain"), 20);
    let latency = stats.latency.percentiles();
    assert!(
        (2_500.0..=3_000.0).contains(&latency.p50) && (2_500.0..=3_000.0).contains(&latency.p99),
        "receipt to visible in every read is 3 s here: {latency:?}"
    );
}

on_both_backends!(
    latency_counts_to_when_every_served_read_includes_the_entry,
    rollups_equal_the_reference_for_any_batch_size,
    a_rebuild_equals_the_reference_and_the_processor,
    a_dead_letter_retries_dies_and_counts_once_when_replayed,
    pause_holds_the_queue_across_a_restart_and_resume_drains_it,
);

/// The audit record of an operator's action on the pipeline.
fn operator(action: &str) -> coliseum_store::AuditRecord {
    coliseum_store::AuditRecord {
        id: 0,
        at: time::OffsetDateTime::now_utc(),
        actor: "operator".to_owned(),
        action: action.to_owned(),
        subject: "pipeline".to_owned(),
        request_id: String::new(),
        detail: "{}".to_owned(),
    }
}

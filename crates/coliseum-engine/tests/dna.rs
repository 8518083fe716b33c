//! The engine's DNA scores against an independent reference implementation
//! of SCORING.md (`dna_reference`, written from the document alone), on
//! random streams with `as_of` pinned, on both backends: scores kept up by
//! the processor, loaded from the rollups at start-up, and after a rebuild
//! from the log.

mod dna_reference;
mod support;

use std::sync::Arc;
use std::time::Duration;

use coliseum_domain::clock::FixedClock;
use coliseum_domain::kpi::kpis_of;
use coliseum_domain::money::{Currency, FxTable};
use coliseum_domain::passport::{ValidationContext, validate_raw_envelope};
use coliseum_domain::scoring::{COMPONENTS, DnaBoard, DnaDomain, ScoreRange, reported};
use coliseum_engine::dna::{Dna, DnaSettings, Publication};
use coliseum_engine::{PipelineStats, Processor, ProcessorConfig, Watermark};
use coliseum_store::{DnaMutation, NewEntry, Store};
use dna_reference::{RefEntry, RefRange, reference_scores};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use support::Random;

/// The pinned `as_of`: every generated entry is before it.
fn now() -> OffsetDateTime {
    datetime!(2026-11-20 18:00 UTC)
}

fn fx() -> FxTable {
    FxTable::parse(Currency::parse("USD").expect("USD"), "EUR=1.1").expect("rates")
}

const TYPES: &[&str] = &[
    "audio.play",
    "audio.play",
    "audio.play",
    "vote.cast",
    "event.attended",
    "treasury.money_spent",
    "treasury.tip",
    "treasury.refunded",
    "treasury.patronage",
    "social.share",
    "social.comment",
    "audio.share",
    "social.follow",
    "badge.earned",
];

/// Entries over the 45 days before `now()`, some on the 7- and 30-day
/// edges, with and without user, city and genre, in odd spellings.
fn stream(seed: u64, count: usize) -> Vec<Value> {
    let mut random = Random(seed);
    let mut envelopes = Vec::new();
    let mut i = 0;
    while envelopes.len() < count {
        i += 1;
        let kind = random.pick(TYPES);
        let days = match random.below(6) {
            0 => 6,
            1 => 7,
            2 => 29,
            3 => 30,
            _ => random.below(45) as i64,
        };
        let at = now() - time::Duration::days(days) - time::Duration::minutes(1 + random.below(17 * 60) as i64);
        let mut metadata = serde_json::Map::new();
        if random.below(6) > 0 {
            metadata.insert(
                "city".into(),
                json!(random.pick(&["Oslo", " oslo ", "LAGOS", "Lima", "Bergen"])),
            );
        }
        if random.below(6) > 0 {
            metadata.insert(
                "genre".into(),
                json!(random.pick(&["jazz", "Afrobeats", "house ", "ROCK"])),
            );
        }
        metadata.insert("live_event_id".into(), json!(random.pick(&["live_1", "live_2"])));
        metadata.insert("amount_minor".into(), json!(100 + random.below(5000)));
        metadata.insert("currency".into(), json!(random.pick(&["USD", "EUR"])));
        let user = if random.below(8) == 0 {
            Value::Null
        } else {
            json!(format!("fan_{}", random.below(14)))
        };
        let envelope = json!({
            "event_id": format!("d-{seed}-{i}"),
            "schema_version": 1,
            "type": kind,
            "timestamp": at.format(&time::format_description::well_known::Rfc3339).expect("format"),
            "user_id": user,
            "artist_id": format!("art_{}", random.below(9)),
            "metadata": metadata,
            "engagement": {"duration_ms": random.below(90_000)},
        });
        // Types whose required fields this envelope lacks are left out.
        if validate_raw_envelope(&envelope.to_string(), "", &ValidationContext::stored(now())).is_ok() {
            envelopes.push(envelope);
        }
    }
    envelopes
}

fn new_entries(envelopes: &[Value]) -> Vec<NewEntry> {
    envelopes
        .iter()
        .map(|envelope| {
            let entry =
                validate_raw_envelope(&envelope.to_string(), "", &ValidationContext::stored(now())).expect("valid");
            NewEntry::from_entry(entry, now())
        })
        .collect()
}

/// The entries as the reference reads them: tiers and KPI effects per PASSPORT.md.
fn reference_entries(envelopes: &[Value]) -> Vec<RefEntry> {
    let fx = fx();
    envelopes
        .iter()
        .filter_map(|envelope| {
            let entry = validate_raw_envelope(&envelope.to_string(), "", &ValidationContext::stored(now())).ok()?;
            let tier = entry.tier()?;
            let kpis = kpis_of(&entry, &fx).ok()?;
            let text = |field: &str| envelope["metadata"][field].as_str().map(str::to_owned);
            Some(RefEntry {
                artist: entry.artist_id.clone()?,
                fan: entry.user_id.clone(),
                timestamp: entry.timestamp,
                city: text("city"),
                genre: text("genre"),
                tier_tenths: i64::from(tier.tenths()),
                influence: [
                    "audio.share",
                    "social.share",
                    "social.repost",
                    "social.comment",
                    "social.mention",
                ]
                .contains(&entry.type_name.as_str()),
                plays: kpis.plays,
                attendance: kpis.attendance,
                revenue_minor: kpis.revenue_minor,
                revenue_entry: kpis.revenue_entries > 0,
            })
        })
        .collect()
}

fn settings() -> DnaSettings {
    DnaSettings {
        interval: Duration::from_secs(3600),
        ..DnaSettings::default()
    }
}

async fn load(store: &Arc<dyn Store>, clock: &Arc<FixedClock>) -> Arc<Dna> {
    let seq = store.pipeline_state().await.expect("state").processed_seq;
    Dna::load(
        store.clone(),
        clock.clone(),
        settings(),
        Watermark { seq, as_of: now() },
    )
    .await
    .expect("load")
}

/// A processor whose applied batches reach `dna`.
async fn processor_feeding(store: &Arc<dyn Store>, clock: &Arc<FixedClock>, dna: &Arc<Dna>, batch: u32) -> Processor {
    let config = ProcessorConfig {
        batch_entries: batch,
        ..ProcessorConfig::default()
    };
    let stats = Arc::new(PipelineStats::default());
    Processor::new(
        store.clone(),
        Arc::new(fx()),
        clock.clone(),
        stats,
        config,
        vec![dna.clone()],
    )
    .await
    .expect("processor")
}

fn assert_matches_reference(publication: &Publication, entries: &[RefEntry], what: &str) {
    for (range, reference_range) in [
        (ScoreRange::Days7, RefRange::Days7),
        (ScoreRange::Days30, RefRange::Days30),
        (ScoreRange::All, RefRange::All),
    ] {
        let what = format!("{what}, {}", range.as_str());
        let expected = reference_scores(entries, now(), reference_range);
        let scores = publication.range(range).expect("the range is published");
        assert!(expected.len() >= 5, "{what}: a varied population");
        assert_eq!(
            scores.artists.iter().map(|s| s.artist.to_string()).collect::<Vec<_>>(),
            expected.iter().map(|r| r.artist.clone()).collect::<Vec<_>>(),
            "{what}: the population"
        );
        for (engine, reference) in scores.artists.iter().zip(&expected) {
            let who = format!("{what}, {}", reference.artist);
            assert_eq!(
                engine.primary_genre.as_deref(),
                reference.primary_genre.as_deref(),
                "{who}: primary genre"
            );
            let tiers = engine.score.entries_by_tier.map(|n| n as u64);
            assert_eq!(tiers, reference.entries_by_tier, "{who}: entries by tier");
            for (c, component) in COMPONENTS.iter().enumerate() {
                let (raw, want) = (engine.score.raw[c], reference.raw[c]);
                assert!(
                    (raw - want).abs() <= want.abs() * 1e-9 + 1e-9,
                    "{who}, {component}: raw {raw} vs {want}"
                );
                let (got, want) = (engine.score.percentile[c], reference.percentile[c]);
                assert!(
                    (got - want).abs() < 1e-6,
                    "{who}, {component}: percentile {got} vs {want}"
                );
            }
            for d in 0..4 {
                assert!(
                    (engine.score.domains[d] - reference.domains[d]).abs() < 1e-6,
                    "{who}: domain {d}"
                );
            }
            assert!(
                (engine.score.overall - reference.overall).abs() < 1e-6,
                "{who}: overall"
            );
        }
        // The overall board: reported score descending, then artist id; competition ranks.
        let board = scores.board(DnaBoard::Overall, None).entries();
        let mut order: Vec<(f64, &str)> = expected
            .iter()
            .map(|r| (dna_reference::reported(r.overall), r.artist.as_str()))
            .collect();
        order.sort_by(|(x, a), (y, b)| y.total_cmp(x).then_with(|| a.cmp(b)));
        assert_eq!(
            board.iter().map(|e| (e.score, &*e.artist)).collect::<Vec<_>>(),
            order,
            "{what}: the overall board"
        );
        for (i, entry) in board.iter().enumerate() {
            let first_with_score = board.iter().position(|e| e.score == entry.score).expect("itself");
            assert_eq!(
                entry.rank,
                first_with_score as u64 + 1,
                "{what}: competition rank at {i}"
            );
        }
        // A genre board holds the artists of that primary genre, ranked among themselves.
        let jazz = scores.board(DnaBoard::Overall, Some("jazz")).entries();
        let expected_jazz: Vec<&str> = order
            .iter()
            .filter(|(_, a)| {
                expected
                    .iter()
                    .any(|r| r.artist == *a && r.primary_genre.as_deref() == Some("jazz"))
            })
            .map(|(_, a)| *a)
            .collect();
        assert_eq!(jazz.iter().map(|e| &*e.artist).collect::<Vec<_>>(), expected_jazz);
        assert!(jazz.first().is_none_or(|e| e.rank == 1));
        // Read again (the genre board kept from the first read), and a genre
        // nobody has (nothing kept for it, and still nothing on it).
        assert_eq!(
            scores.board(DnaBoard::Overall, Some("jazz")).entries(),
            jazz,
            "{what}: read again"
        );
        for _ in 0..2 {
            assert!(scores.board(DnaBoard::Overall, Some("no such genre")).is_empty());
        }
    }
}

async fn scores_match_the_reference_live_loaded_and_rebuilt(store: Arc<dyn Store>) {
    let envelopes = stream(5, 900);
    let entries = reference_entries(&envelopes);
    let clock = Arc::new(FixedClock::new(now()));

    // Kept up by the processor, batch by batch.
    let dna = load(&store, &clock).await;
    let processor = processor_feeding(&store, &clock, &dna, 37).await;
    store.append_entries(&new_entries(&envelopes)).await.expect("append");
    processor.run_until_idle().await.expect("process");
    let live = dna.clone().publish_now().await.expect("publish");
    assert_eq!(live.watermark.seq, envelopes.len() as i64);
    assert_matches_reference(&live, &entries, "live");

    // Loaded from the rollups by a fresh engine.
    let loaded = load(&store, &clock).await.current();
    assert_matches_reference(&loaded, &entries, "loaded");

    // Rebuilt from the log.
    coliseum_engine::rebuild::rebuild(store.clone(), Arc::new(fx()), now(), |_| {})
        .await
        .expect("rebuild");
    let rebuilt = load(&store, &clock).await.current();
    assert_matches_reference(&rebuilt, &entries, "rebuilt");

    // An explicit earlier instant: what the reference says for it.
    let earlier = now() - time::Duration::days(3);
    let at_earlier = dna.at(earlier, ScoreRange::Days7).await.expect("as_of");
    let expected = reference_scores(&entries, earlier, RefRange::Days7);
    let scores = at_earlier.range(ScoreRange::Days7).expect("the range");
    assert_eq!(scores.artists.len(), expected.len());
    for (engine, reference) in scores.artists.iter().zip(&expected) {
        assert!(
            (engine.score.overall - reference.overall).abs() < 1e-6,
            "as_of: {}",
            reference.artist
        );
    }
    assert!(reported(scores.artists[0].score.overall) >= 0.0);
}

/// A burst of patronage for a new artist: at the top of the economic
/// domain, it moves others' scores by 5 points or more.
fn burst() -> Vec<Value> {
    (0..40)
        .map(|i| {
            json!({
                "event_id": format!("burst-{i}"), "schema_version": 1, "type": "treasury.patronage",
                "timestamp": "2026-11-20T17:00:00Z", "user_id": format!("patron_{i}"), "artist_id": "art_new",
                "metadata": {"city": format!("city {i}"), "genre": "jazz", "amount_minor": 90_000, "currency": "USD"},
            })
        })
        .collect()
}

/// The mutations of every domain and range recorded within a day of now.
async fn mutations_of_every_board(store: &Arc<dyn Store>) -> Vec<DnaMutation> {
    let mut mutations = Vec::new();
    for domain in DnaDomain::ALL {
        for range in ScoreRange::ALL {
            let (since, until) = (now() - time::Duration::days(1), now() + time::Duration::days(1));
            let of_board = store
                .mutations_of(domain.letter(), range.as_str(), since, until)
                .await
                .expect("read");
            assert!(
                of_board
                    .iter()
                    .all(|m| m.domain == domain.letter() && m.range == range.as_str()),
                "only the board's own"
            );
            mutations.extend(of_board);
        }
    }
    mutations
}

async fn a_move_of_five_points_is_a_mutation(store: Arc<dyn Store>) {
    let clock = Arc::new(FixedClock::new(now()));
    let dna = load(&store, &clock).await;
    let processor = processor_feeding(&store, &clock, &dna, ProcessorConfig::default().batch_entries).await;
    let envelopes = stream(9, 300);
    store.append_entries(&new_entries(&envelopes)).await.expect("append");
    processor.run_until_idle().await.expect("process");
    dna.clone()
        .publish_now()
        .await
        .expect("first publication: the baseline");
    assert!(mutations_of_every_board(&store).await.is_empty());

    store.append_entries(&new_entries(&burst())).await.expect("append");
    processor.run_until_idle().await.expect("process");
    let publication = dna.clone().publish_now().await.expect("publish");
    let mutations = mutations_of_every_board(&store).await;
    assert!(
        !mutations.is_empty(),
        "a newcomer at the top moves others by 5 points or more"
    );
    for mutation in &mutations {
        assert!((mutation.new - mutation.old).abs() >= 5.0, "{mutation:?}");
        assert_eq!(mutation.at, publication.as_of);
    }
    let gains = coliseum_engine::dna::movers(
        &mutations,
        coliseum_domain::scoring::DnaDomain::Economic,
        ScoreRange::Days7,
    );
    assert!(
        gains.windows(2).all(|w| w[0].2 - w[0].1 >= w[1].2 - w[1].1),
        "largest gain first"
    );
    assert!(gains.iter().all(|(_, from, to)| to > from));

    // Kept while movers can read them, and a day beyond; deleted after.
    clock.set(now() + coliseum_engine::dna::MOVERS_WINDOW + time::Duration::hours(23));
    assert_eq!(dna.prune_mutations().await.expect("prune"), 0);
    assert_eq!(mutations_of_every_board(&store).await.len(), mutations.len());
    clock.set(now() + coliseum_engine::dna::MOVERS_WINDOW + time::Duration::hours(25));
    assert_eq!(dna.prune_mutations().await.expect("prune") as usize, mutations.len());
    assert!(mutations_of_every_board(&store).await.is_empty());
}

/// A node told it does not lead publishes the same scores and records no
/// mutation: in a cluster, the processing node's are the only ones.
async fn only_the_leading_node_records_mutations(store: Arc<dyn Store>) {
    let clock = Arc::new(FixedClock::new(now()));
    let dna = load(&store, &clock).await;
    let leading = Arc::new(std::sync::atomic::AtomicBool::new(false));
    dna.record_while({
        let leading = leading.clone();
        move || leading.load(std::sync::atomic::Ordering::Relaxed)
    });
    let processor = processor_feeding(&store, &clock, &dna, ProcessorConfig::default().batch_entries).await;
    store
        .append_entries(&new_entries(&stream(9, 300)))
        .await
        .expect("append");
    processor.run_until_idle().await.expect("process");
    dna.clone().publish_now().await.expect("the baseline");
    store.append_entries(&new_entries(&burst())).await.expect("append");
    processor.run_until_idle().await.expect("process");
    let publication = dna.clone().publish_now().await.expect("publish");
    assert!(
        publication
            .range(ScoreRange::Days7)
            .is_some_and(|scores| scores.artist("art_new").is_some()),
        "published all the same"
    );
    assert!(mutations_of_every_board(&store).await.is_empty(), "none recorded");

    // Old mutations are left too: the leading node deletes them.
    let old = DnaMutation {
        artist: "art_1".to_owned(),
        domain: "a".to_owned(),
        range: "7d".to_owned(),
        old: 1.0,
        new: 9.0,
        at: now(),
    };
    store.record_mutations(&[old]).await.expect("record");
    clock.set(now() + time::Duration::days(9));
    assert_eq!(dna.prune_mutations().await.expect("prune"), 0);
    assert_eq!(
        mutations_of_every_board(&store).await.len(),
        1,
        "kept by a node that does not lead"
    );
    leading.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(dna.prune_mutations().await.expect("prune"), 1, "deleted once it leads");
}

/// A publication's mutations are recorded before it is served: a movers
/// read of the served publication always finds its own changes. The node
/// is asked whether it records just before it writes, which is when the
/// previous scores must still be the ones served.
async fn mutations_are_recorded_before_their_scores_are_served(store: Arc<dyn Store>) {
    let clock = Arc::new(FixedClock::new(now()));
    let dna = load(&store, &clock).await;
    let served_when_recording = Arc::new(std::sync::Mutex::new(Vec::new()));
    dna.record_while({
        let (dna, seen) = (Arc::downgrade(&dna), served_when_recording.clone());
        move || {
            if let Some(dna) = dna.upgrade() {
                seen.lock().expect("seen").push(dna.current().id);
            }
            true
        }
    });
    let processor = processor_feeding(&store, &clock, &dna, ProcessorConfig::default().batch_entries).await;
    store
        .append_entries(&new_entries(&stream(9, 300)))
        .await
        .expect("append");
    processor.run_until_idle().await.expect("process");
    let baseline = dna.clone().publish_now().await.expect("the baseline");
    store.append_entries(&new_entries(&burst())).await.expect("append");
    processor.run_until_idle().await.expect("process");
    // A later instant tells this publication's mutations from any before.
    clock.set(now() + time::Duration::seconds(1));
    let publication = dna.clone().publish_now().await.expect("publish");

    assert_eq!(
        served_when_recording.lock().expect("seen").last(),
        Some(&baseline.id),
        "the baseline was still served while the next scores' mutations were written"
    );
    assert_eq!(dna.current().id, publication.id, "served once recorded");
    let mutations = mutations_of_every_board(&store).await;
    assert!(
        mutations.iter().any(|m| m.at == publication.as_of),
        "its mutations are in the store"
    );
}

/// Scores for an explicit instant take the batches that arrived, and the
/// next publication is still due: the publishing loop asks whether
/// anything arrived since the last.
async fn scores_at_an_instant_leave_new_batches_to_be_published(store: Arc<dyn Store>) {
    let clock = Arc::new(FixedClock::new(now()));
    let dna = load(&store, &clock).await;
    let processor = processor_feeding(&store, &clock, &dna, ProcessorConfig::default().batch_entries).await;
    assert!(!dna.has_unpublished());
    store
        .append_entries(&new_entries(&stream(3, 200)))
        .await
        .expect("append");
    processor.run_until_idle().await.expect("process");
    assert!(dna.has_unpublished());
    dna.at(now(), ScoreRange::Days7).await.expect("scores at an instant");
    assert!(dna.has_unpublished(), "still due after scores at an instant");
    dna.clone().publish_now().await.expect("publish");
    assert!(!dna.has_unpublished(), "published");
}

/// A replaced publication stays for the cursors paging through it for
/// 30 seconds, not for as long as the next few publications take.
async fn a_replaced_publication_stays_for_cursors_thirty_seconds(store: Arc<dyn Store>) {
    let clock = Arc::new(FixedClock::new(now()));
    let dna = load(&store, &clock).await;
    let processor = processor_feeding(&store, &clock, &dna, ProcessorConfig::default().batch_entries).await;
    store
        .append_entries(&new_entries(&stream(3, 200)))
        .await
        .expect("append");
    processor.run_until_idle().await.expect("process");
    let first = dna.clone().publish_now().await.expect("publish");
    clock.set(now() + time::Duration::seconds(20));
    let second = dna.clone().publish_now().await.expect("publish");
    clock.set(now() + time::Duration::seconds(45));
    let third = dna.clone().publish_now().await.expect("publish");
    assert_eq!(dna.publication(third.id).map(|p| p.id), Some(third.id), "current");
    assert_eq!(
        dna.publication(second.id).map(|p| p.id),
        Some(second.id),
        "replaced just now"
    );
    clock.set(now() + time::Duration::seconds(51));
    dna.clone().publish_now().await.expect("publish");
    assert_eq!(
        dna.publication(second.id).map(|p| p.id),
        Some(second.id),
        "replaced 6 s ago"
    );
    assert!(dna.publication(first.id).is_none(), "replaced 31 s ago");
}

on_both_backends!(
    scores_match_the_reference_live_loaded_and_rebuilt,
    a_move_of_five_points_is_a_mutation,
    only_the_leading_node_records_mutations,
    mutations_are_recorded_before_their_scores_are_served,
    scores_at_an_instant_leave_new_batches_to_be_published,
    a_replaced_publication_stays_for_cursors_thirty_seconds,
);

#[test]
fn the_reference_reproduces_the_worked_example() {
    dna_reference::check_worked_example();
}

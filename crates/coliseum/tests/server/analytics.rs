//! KPI and leaderboard reads over real HTTP, on both backends: figures equal
//! a reference counted straight from the entries sent; filters with odd
//! spelling; pagination that neither repeats nor skips while entries keep
//! arriving; every parameter error a problem document; pause and resume,
//! and dead letters, through the admin API.

use std::collections::{BTreeMap, BTreeSet};

use coliseum_domain::plans::Role;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, assert_problem, spawn_app, spawn_app_with_clock};

on_both_backends!(
    leaderboards_and_kpis_equal_a_reference,
    ranges_end_and_start_exactly_on_utc_hour_and_day_edges,
    pages_neither_repeat_nor_skip_while_entries_arrive,
    a_cursor_whose_snapshot_is_gone_continues_after_its_last_artist,
    bad_parameters_get_problem_documents,
    pause_holds_processing_and_resume_drains_it,
    a_payment_without_a_rate_is_a_dead_letter_an_admin_can_see_and_replay,
    every_read_names_what_its_ids_name,
);

/// A play by `fan` of `artist`, `minutes_ago`, in `city`.
fn play(id: &str, artist: &str, minutes_ago: i64, city: &str) -> Value {
    let at = OffsetDateTime::now_utc() - time::Duration::minutes(minutes_ago);
    json!({
        "event_id": id, "schema_version": 1, "type": "audio.play",
        "timestamp": at.format(&Rfc3339).expect("format"),
        "user_id": "fan_1", "artist_id": artist,
        "metadata": {"city": city, "genre": "afrobeats"},
        "engagement": {"duration_ms": 60000}
    })
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let response = app.get(path, Some(app.reader().await)).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.expect("json")
}

/// Sends `count` plays spread over three days among a few artists, some of
/// them tied, and returns them.
async fn send_plays(app: &TestApp, seed: u64, count: usize) -> Vec<Value> {
    let mut state = seed;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let cities = ["Lagos", " lagos ", "LIMA", "Oslo"];
    let plays: Vec<Value> = (0..count)
        .map(|i| {
            let artist = format!("art_{}", next(7));
            let minutes = next(3 * 24 * 60) as i64;
            let city = cities[next(4) as usize];
            play(&format!("p-{seed}-{i}"), &artist, minutes, city)
        })
        .collect();
    for chunk in plays.chunks(100) {
        assert_eq!(app.deliver(&json!({"events": chunk})).await.status(), 202);
    }
    plays
}

/// Plays per artist with timestamps in `[from, to)`, optionally in one city.
fn reference(plays: &[Value], from: &str, to: &str, city: Option<&str>) -> BTreeMap<String, i64> {
    let (from, to) = (
        OffsetDateTime::parse(from, &Rfc3339).expect("from"),
        OffsetDateTime::parse(to, &Rfc3339).expect("to"),
    );
    let mut counts = BTreeMap::new();
    for p in plays {
        let at = OffsetDateTime::parse(p["timestamp"].as_str().expect("ts"), &Rfc3339).expect("ts");
        let in_city = city.is_none_or(|c| p["metadata"]["city"].as_str().expect("city").trim().to_lowercase() == c);
        if at >= from && at < to && in_city {
            *counts
                .entry(p["artist_id"].as_str().expect("artist").to_owned())
                .or_insert(0) += 1;
        }
    }
    counts
}

/// The leaderboard a reference count gives: value descending, artist ascending, competition ranks.
fn ranked(counts: &BTreeMap<String, i64>) -> Vec<Value> {
    let mut rows: Vec<(&String, &i64)> = counts.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut out: Vec<Value> = Vec::new();
    for (i, (artist, value)) in rows.iter().enumerate() {
        let rank = match out.last() {
            Some(last) if last["value"] == json!(value) => last["rank"].clone(),
            _ => json!(i + 1),
        };
        // No entry sent names its artist.
        out.push(json!({"rank": rank, "artist_id": artist, "artist_name": null, "value": value}));
    }
    out
}

async fn leaderboards_and_kpis_equal_a_reference(backend: Backend) {
    let app = spawn_app(backend).await;
    let plays = send_plays(&app, 11, 600).await;
    app.processed().await;
    for (range, city) in [
        ("1h", None),
        ("24h", None),
        ("7d", None),
        ("30d", None),
        ("all", None),
        ("24h", Some("lagos")),
        ("7d", Some("lima")),
    ] {
        let mut path = format!("/v1/leaderboards/plays?range={range}&limit=100");
        if let Some(city) = city {
            // Filters are matched after trimming and lower-casing.
            path.push_str(&format!("&city=%20{}", city.to_uppercase()));
        }
        let board = get_json(&app, &path).await;
        let expected = reference(
            &plays,
            board["range"]["from"].as_str().expect("from"),
            board["range"]["to"].as_str().expect("to"),
            city,
        );
        assert_eq!(board["entries"], json!(ranked(&expected)), "{path}");
        assert_eq!(board["total_ranked"], expected.len());
        assert!(board["watermark"].as_i64().expect("watermark") >= 600);
        // The city as it was first spelled in the log.
        let first_spelling = city.map(|city| {
            plays
                .iter()
                .filter_map(|p| p["metadata"]["city"].as_str())
                .find(|spelled| spelled.trim().to_lowercase() == city)
                .expect("sent")
                .trim()
        });
        assert_eq!(board["filters"]["city"], json!(first_spelling));
    }

    let kpis = get_json(&app, "/v1/kpis?range=7d").await;
    let expected: i64 = reference(
        &plays,
        kpis["range"]["from"].as_str().expect("from"),
        kpis["range"]["to"].as_str().expect("to"),
        None,
    )
    .values()
    .sum();
    assert_eq!(kpis["totals"]["plays"], expected);
    assert_eq!(kpis["totals"]["engagement"], json!(expected as f64));
    assert_eq!(kpis["currency"], "USD");
    let series_sum: i64 = kpis["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|p| p["plays"].as_i64().expect("plays"))
        .sum();
    assert_eq!(series_sum, expected, "the daily series adds up to the total");

    let artist = get_json(&app, "/v1/kpis?scope=artist:art_3&range=24h&bucket=hour&city=lagos").await;
    let expected = reference(
        &plays,
        artist["range"]["from"].as_str().expect("from"),
        artist["range"]["to"].as_str().expect("to"),
        Some("lagos"),
    );
    assert_eq!(artist["totals"]["plays"], expected.get("art_3").copied().unwrap_or(0));

    let board = get_json(&app, "/v1/leaderboards/plays?range=7d&limit=100").await;
    let third = &board["entries"][2];
    let around = get_json(
        &app,
        &format!(
            "/v1/leaderboards/plays/around/{}?range=7d&n=1",
            third["artist_id"].as_str().expect("id")
        ),
    )
    .await;
    assert_eq!(
        around["entries"],
        json!(board["entries"].as_array().expect("entries")[1..4])
    );
    assert_eq!(around["rank"], third["rank"]);
    app.stop().await;
}

/// A play by `artist` at exactly `at`.
fn play_at(id: &str, artist: &str, at: OffsetDateTime) -> Value {
    let mut play = play(id, artist, 0, "Oslo");
    play["timestamp"] = json!(at.format(&Rfc3339).expect("format"));
    play
}

async fn ranges_end_and_start_exactly_on_utc_hour_and_day_edges(backend: Backend) {
    // The engine's clock stands still now; the edges are the ones around it.
    let now = OffsetDateTime::now_utc();
    let clock = std::sync::Arc::new(coliseum_domain::clock::FixedClock::new(now));
    let app = spawn_app_with_clock(backend, clock).await;
    let hour = now.replace_time(time::Time::from_hms(now.hour(), 0, 0).expect("hour"));
    let day = now.replace_time(time::Time::MIDNIGHT);
    let second = time::Duration::seconds(1);
    // Each artist plays once, at one edge: the ranges name who is in.
    let plays = json!({"events": [
        play_at("h-in", "art_hour_start", hour),
        play_at("h-out", "art_hour_before", hour - second),
        play_at("d-24h-in", "art_24h_start", hour - time::Duration::hours(23)),
        play_at("d-24h-out", "art_24h_before", hour - time::Duration::hours(23) - second),
        play_at("w-in", "art_week_start", day - time::Duration::days(6)),
        play_at("w-out", "art_week_before", day - time::Duration::days(6) - second),
    ]});
    assert_eq!(app.deliver(&plays).await.status(), 202);
    app.processed().await;
    let artists = |board: &Value| -> BTreeSet<String> {
        board["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["artist_id"].as_str().expect("id").to_owned())
            .collect()
    };
    let set = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<BTreeSet<String>>();
    let board = get_json(&app, "/v1/leaderboards/plays?range=1h").await;
    assert_eq!(artists(&board), set(&["art_hour_start"]));
    assert_eq!(board["range"]["from"], json!(hour.format(&Rfc3339).expect("format")));
    assert_eq!(
        board["as_of"],
        json!(now.format(&Rfc3339).expect("format")),
        "as of the engine's clock"
    );
    let board = get_json(&app, "/v1/leaderboards/plays?range=24h").await;
    let in_24h = set(&["art_hour_start", "art_hour_before", "art_24h_start"]);
    // Plays after midnight and before the 24h start are in both, whatever the time of day.
    assert!(
        artists(&board).is_superset(&in_24h) && !artists(&board).contains("art_24h_before"),
        "{board}"
    );
    let board = get_json(&app, "/v1/leaderboards/plays?range=7d").await;
    assert!(
        artists(&board).contains("art_week_start") && !artists(&board).contains("art_week_before"),
        "{board}"
    );
    // A custom range covers [from, to): the play at `to` is out, the one at `from` in.
    let (from, to) = (hour - time::Duration::hours(23), hour);
    let path = format!(
        "/v1/leaderboards/plays?range=custom&from={}&to={}",
        from.format(&Rfc3339).expect("format"),
        to.format(&Rfc3339).expect("format")
    );
    let board = get_json(&app, &path).await;
    assert!(
        artists(&board).contains("art_24h_start") && artists(&board).contains("art_hour_before"),
        "{board}"
    );
    assert!(
        !artists(&board).contains("art_hour_start") && !artists(&board).contains("art_24h_before"),
        "{board}"
    );
    app.stop().await;
}

async fn pages_neither_repeat_nor_skip_while_entries_arrive(backend: Backend) {
    let app = spawn_app(backend).await;
    let plays: Vec<Value> = (0..40)
        .map(|i| play(&format!("a-{i}"), &format!("art_{i:02}"), 5, "Oslo"))
        .collect();
    assert_eq!(app.deliver(&json!({"events": plays})).await.status(), 202);
    app.processed().await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut total = None;
    for page in 0.. {
        let path = match &cursor {
            None => "/v1/leaderboards/plays?range=24h&limit=7".to_owned(),
            Some(cursor) => format!("/v1/leaderboards/plays?range=24h&limit=7&cursor={cursor}"),
        };
        let body = get_json(&app, &path).await;
        total.get_or_insert(body["total_ranked"].clone());
        assert_eq!(
            &body["total_ranked"],
            total.as_ref().expect("total"),
            "one snapshot for every page"
        );
        seen.extend(
            body["entries"]
                .as_array()
                .expect("entries")
                .iter()
                .map(|e| e["artist_id"].clone()),
        );
        // Meanwhile new artists, two plays each, overtake the ones not yet paged through.
        let newcomers: Vec<Value> = (0..6)
            .map(|i| {
                play(
                    &format!("n-{page}-{i}"),
                    &format!("art_new_{page}_{}", i / 2),
                    1,
                    "Oslo",
                )
            })
            .collect();
        assert_eq!(app.deliver(&json!({"events": newcomers})).await.status(), 202);
        app.processed().await;
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let distinct: BTreeSet<String> = seen.iter().map(|v| v.as_str().expect("id").to_owned()).collect();
    assert_eq!(seen.len(), 40, "every artist of the first page's snapshot, once");
    assert_eq!(distinct.len(), 40);
    let fresh = get_json(&app, "/v1/leaderboards/plays?range=24h&limit=100").await;
    assert!(
        fresh["total_ranked"].as_u64().expect("total") > 40,
        "a new first page sees the newcomers"
    );
    app.stop().await;
}

async fn a_cursor_whose_snapshot_is_gone_continues_after_its_last_artist(backend: Backend) {
    let app = spawn_app(backend).await;
    // Artist n has n plays: one order, no ties.
    let plays: Vec<Value> = (1..=20)
        .flat_map(|n| (0..n).map(move |i| play(&format!("c-{n}-{i}"), &format!("art_{n:02}"), 5, "Oslo")))
        .collect();
    assert_eq!(app.deliver(&json!({"events": plays})).await.status(), 202);
    app.processed().await;
    let first = get_json(&app, "/v1/leaderboards/plays?range=24h&limit=5").await;
    let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
    // Many other boards computed since: the first page's snapshot is no longer kept.
    for n in 0..80 {
        get_json(&app, &format!("/v1/leaderboards/plays?range=24h&limit=5&city=c{n}")).await;
    }
    let second = get_json(
        &app,
        &format!("/v1/leaderboards/plays?range=24h&limit=5&cursor={cursor}"),
    )
    .await;
    let artists = |page: &Value| -> Vec<String> {
        page["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["artist_id"].as_str().expect("id").to_owned())
            .collect()
    };
    assert_eq!(artists(&first), ["art_20", "art_19", "art_18", "art_17", "art_16"]);
    assert_eq!(
        artists(&second),
        ["art_15", "art_14", "art_13", "art_12", "art_11"],
        "the next page starts after the last artist of the first"
    );
    assert_eq!(second["entries"][0]["rank"], 6);
    app.stop().await;
}

async fn bad_parameters_get_problem_documents(backend: Backend) {
    let app = spawn_app(backend).await;
    for (path, status, slug, parameter) in [
        ("/v1/leaderboards/streams", 404, "not-found", None),
        (
            "/v1/leaderboards/plays?range=week",
            422,
            "invalid-parameter",
            Some("range"),
        ),
        (
            "/v1/leaderboards/plays?range=custom&from=2026-11-20T10:30:00Z&to=2026-11-20T12:00:00Z",
            422,
            "invalid-parameter",
            Some("from"),
        ),
        (
            "/v1/leaderboards/plays?range=custom&from=2026-11-20T10:00:00Z",
            422,
            "invalid-parameter",
            Some("to"),
        ),
        (
            "/v1/leaderboards/plays?limit=0",
            422,
            "invalid-parameter",
            Some("limit"),
        ),
        (
            "/v1/leaderboards/plays?limit=101",
            422,
            "invalid-parameter",
            Some("limit"),
        ),
        (
            "/v1/leaderboards/plays?citty=lagos",
            422,
            "invalid-parameter",
            Some("citty"),
        ),
        (
            "/v1/leaderboards/plays?city=%20%20",
            422,
            "invalid-parameter",
            Some("city"),
        ),
        (
            "/v1/leaderboards/plays?cursor=nonsense",
            422,
            "invalid-parameter",
            Some("cursor"),
        ),
        ("/v1/leaderboards/plays?cursor=abc-0", 410, "gone", None),
        ("/v1/leaderboards/plays/around/nobody?range=24h", 404, "not-found", None),
        ("/v1/kpis?scope=user:1", 422, "invalid-parameter", Some("scope")),
        ("/v1/kpis?bucket=minute", 422, "invalid-parameter", Some("bucket")),
    ] {
        let problem = assert_problem(app.get(path, None).await, status, slug).await;
        if let Some(parameter) = parameter {
            assert_eq!(problem["errors"][0]["parameter"], parameter, "{path}");
        }
    }
    app.stop().await;
}

async fn admin_post(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    app.post_as(path, cookie, None).await
}

async fn pause_holds_processing_and_resume_drains_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.sign_in_as(Role::Admin).await;
    assert_eq!(admin_post(&app, "/v1/admin/pipeline/pause", &admin).await.status(), 200);
    let plays: Vec<Value> = (0..25).map(|i| play(&format!("q-{i}"), "art_1", 3, "Oslo")).collect();
    assert_eq!(
        app.deliver(&json!({"events": plays})).await.status(),
        202,
        "ingestion goes on"
    );
    let pipeline: Value = app
        .get("/v1/admin/pipeline", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(pipeline["paused"], true);
    assert_eq!(pipeline["queue_depth"], 25);
    assert_eq!(pipeline["processed_seq"], 0);
    let ready: Value = app.get("/readyz", None).await.json().await.expect("json");
    assert_eq!(ready["processor"], "paused");

    assert_eq!(
        admin_post(&app, "/v1/admin/pipeline/resume", &admin).await.status(),
        200
    );
    app.processed().await;
    let pipeline: Value = app
        .get("/v1/admin/pipeline", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (pipeline["paused"].clone(), pipeline["queue_depth"].clone()),
        (json!(false), json!(0))
    );
    assert!(pipeline["latency_ms"]["p99"].as_f64().is_some());
    let board = get_json(&app, "/v1/leaderboards/plays?range=24h").await;
    assert_eq!(board["entries"][0]["value"], 25);

    let fan = app.sign_in_as(Role::Fan).await;
    assert_problem(
        admin_post(&app, "/v1/admin/pipeline/pause", &fan).await,
        403,
        "forbidden",
    )
    .await;
    app.stop().await;
}

async fn a_payment_without_a_rate_is_a_dead_letter_an_admin_can_see_and_replay(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.sign_in_as(Role::Admin).await;
    let mut tip = play("tip-1", "art_1", 2, "Oslo");
    tip["type"] = json!("treasury.tip");
    tip["metadata"]["amount_minor"] = json!(500);
    tip["metadata"]["currency"] = json!("EUR");
    assert_eq!(
        app.deliver(&json!({"events": [tip, play("after-1", "art_1", 2, "Oslo")]}))
            .await
            .status(),
        202
    );
    app.processed().await;

    let letters: Value = app
        .get("/v1/admin/dead-letters", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(letters["items"][0]["event_id"], "tip-1");
    assert_eq!(letters["items"][0]["reason"], "no exchange rate for EUR");
    assert_eq!(letters["next_cursor"], Value::Null);
    let board = get_json(&app, "/v1/leaderboards/plays?range=24h").await;
    assert_eq!(board["entries"][0]["value"], 1, "the entry behind it is counted");
    let id = letters["items"][0]["id"].as_i64().expect("id");
    assert_eq!(
        admin_post(&app, &format!("/v1/admin/dead-letters/{id}/replay"), &admin)
            .await
            .status(),
        202
    );
    assert_eq!(
        admin_post(&app, "/v1/admin/dead-letters/replay", &admin).await.status(),
        202
    );
    assert_problem(
        admin_post(&app, "/v1/admin/dead-letters/999999/replay", &admin).await,
        404,
        "not-found",
    )
    .await;
    let pipeline: Value = app
        .get("/v1/admin/pipeline", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(pipeline["dead_letters"], 1, "still waiting for a rate");
    app.stop().await;
}

/// A play of `artist` named `name`, `minutes_ago`, at `live_1` (named `event`).
fn named_play(id: &str, artist: &str, name: &str, minutes_ago: i64, city: &str, event: &str) -> Value {
    let mut play = play(id, artist, minutes_ago, city);
    play["metadata"]["artist_name"] = json!(name);
    play["metadata"]["live_event_id"] = json!("live_1");
    play["metadata"]["live_event_name"] = json!(event);
    play
}

async fn every_read_names_what_its_ids_name(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = json!({"events": [
        named_play("n-1", "art_1", "Temilade", 10, "  Lagos ", "Afro Nation"),
        named_play("n-2", "art_1", "Tems", 5, "LAGOS", "Afro Nation Lagos"),
        play("n-3", "art_2", 5, "lagos"),
    ]});
    assert_eq!(app.deliver(&first).await.status(), 202);
    // An older entry arriving later renames nothing.
    let late = json!({"events": [named_play("n-4", "art_1", "Old Name", 60, "lagos", "Old Event")]});
    assert_eq!(app.deliver(&late).await.status(), 202);
    app.processed().await;

    let board = get_json(&app, "/v1/leaderboards/plays?city=lagos&live_event_id=live_1").await;
    assert_eq!(
        board["filters"]["city"], "Lagos",
        "the first spelling, trimmed: {board}"
    );
    assert_eq!(board["filters"]["live_event_name"], "Afro Nation Lagos", "{board}");
    assert_eq!(board["entries"][0]["artist_id"], "art_1");
    assert_eq!(
        board["entries"][0]["artist_name"], "Tems",
        "the newest by timestamp: {board}"
    );

    let everyone = get_json(&app, "/v1/leaderboards/plays").await;
    let unnamed = everyone["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["artist_id"] == "art_2")
        .expect("art_2 ranked");
    assert_eq!(unnamed["artist_name"], Value::Null, "no name known yet");

    let around = get_json(&app, "/v1/leaderboards/plays/around/art_1").await;
    assert_eq!(around["artist_name"], "Tems");

    let admin = app.sign_in_as(Role::Admin).await;
    let response = app.get("/v1/kpis?scope=artist:art_1&city=lagos", Some(&admin)).await;
    assert_eq!(response.status(), 200);
    let kpis: Value = response.json().await.expect("json");
    assert_eq!(kpis["scope_name"], "Tems", "{kpis}");
    assert_eq!(kpis["filters"]["city"], "Lagos");
    let response = app.get("/v1/kpis?scope=live_event:live_1", Some(&admin)).await;
    let kpis: Value = response.json().await.expect("json");
    assert_eq!(kpis["scope_name"], "Afro Nation Lagos", "{kpis}");
    app.stop().await;
}

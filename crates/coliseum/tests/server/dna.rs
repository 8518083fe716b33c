//! DNA boards, explanations and movers over real HTTP, on both backends:
//! what each plan may see, pagination through one publication, and every
//! parameter error a problem document. (The scores themselves are held
//! against the reference of SCORING.md in the engine's tests.)

use std::collections::BTreeSet;

use coliseum_domain::plans::{Plan, Role};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, assert_problem, past_the_boundary, spawn_app_before_a_boundary};

on_both_backends!(
    boards_and_explanations_follow_the_plan,
    pages_come_from_one_publication_and_bad_parameters_are_refused,
    movers_stop_at_the_publication_each_plan_is_served,
);

/// Entries for seven artists over the last days: plays, votes and payments.
async fn send_entries(app: &TestApp) -> usize {
    let mut entries = Vec::new();
    for artist in 0..7 {
        for i in 0..(3 + artist * 2) {
            let at = OffsetDateTime::now_utc() - time::Duration::hours(1 + i as i64 * 7);
            let (kind, extra) = match i % 3 {
                0 => ("audio.play", json!({})),
                1 => ("vote.cast", json!({})),
                _ => (
                    "treasury.tip",
                    json!({"amount_minor": 500 * (artist + 1), "currency": "USD"}),
                ),
            };
            let (city, genre) = (["Lagos", "Lima", "Oslo"][i % 3], ["jazz", "house"][artist % 2]);
            let mut metadata = json!({"city": city, "genre": genre, "artist_name": format!("Artist {artist}")});
            if let (Some(metadata), Some(extra)) = (metadata.as_object_mut(), extra.as_object()) {
                metadata.extend(extra.clone());
            }
            entries.push(json!({
                "event_id": format!("dna-{artist}-{i}"), "schema_version": 1, "type": kind,
                "timestamp": at.format(&Rfc3339).expect("format"),
                "user_id": format!("fan_{}", i % 4), "artist_id": format!("art_{artist}"),
                "metadata": metadata, "engagement": {"duration_ms": 60000},
            }));
        }
    }
    let response = app.deliver(&json!({"events": entries})).await;
    assert_eq!(response.status(), 202);
    entries.len()
}

async fn boards_and_explanations_follow_the_plan(backend: Backend) {
    let (app, clock, boundary) = spawn_app_before_a_boundary(backend, |_| {}).await;
    send_entries(&app).await;
    past_the_boundary(&app, &clock, boundary).await;

    let overall: Value = app
        .get("/v1/dna/leaderboards/overall?range=7d", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(overall["total_ranked"], 7, "{overall}");
    assert_eq!(overall["config"]["tier_tenths"], json!([1, 10, 100, 1000, 10000]));
    let scores: Vec<f64> = overall["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["score"].as_f64().expect("a score"))
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{overall}");
    assert_eq!(overall["entries"][0]["rank"], 1);
    for entry in overall["entries"].as_array().expect("entries") {
        let id = entry["artist_id"].as_str().expect("id");
        assert_eq!(entry["artist_name"], json!(id.replace("art_", "Artist ")), "{entry}");
    }

    // Public and Free see the cultural domain only, and no explanation.
    let a: Value = app
        .get("/v1/dna/leaderboards/a", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(a["domain"], "a");
    let refused = assert_problem(app.get("/v1/dna/leaderboards/g", None).await, 403, "upgrade-required").await;
    assert_eq!(
        (refused["plan"].as_str(), refused["cheapest_plan"].as_str()),
        (Some("public"), Some("pro"))
    );
    assert_eq!(refused["feature"], "dna_domain_g");
    let free = app.sign_in_with(Role::Fan, Plan::Free, &[]).await;
    assert_problem(
        app.get("/v1/dna/leaderboards/t", Some(&free)).await,
        403,
        "upgrade-required",
    )
    .await;
    let refused = assert_problem(
        app.get("/v1/dna/artists/art_3", Some(&free)).await,
        403,
        "upgrade-required",
    )
    .await;
    assert_eq!(refused["feature"], "dna_explanation");
    assert_problem(
        app.get("/v1/dna/movers?domain=c", Some(&free)).await,
        403,
        "upgrade-required",
    )
    .await;

    // An artist account sees its own explanation on any plan, no one else's.
    let artist = app.sign_in_with(Role::Artist, Plan::Free, &["art_3"]).await;
    assert_eq!(app.get("/v1/dna/artists/art_3", Some(&artist)).await.status(), 200);
    assert_problem(
        app.get("/v1/dna/artists/art_4", Some(&artist)).await,
        403,
        "upgrade-required",
    )
    .await;

    // Pro sees every domain and every explanation.
    let pro = app.sign_in_with(Role::Fan, Plan::Pro, &[]).await;
    let g = app.get("/v1/dna/leaderboards/g?range=30d", Some(&pro)).await;
    assert_eq!(g.status(), 200);
    let why: Value = app
        .get("/v1/dna/artists/art_6?range=7d", Some(&pro))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(why["population"], 7, "{why}");
    assert_eq!(why["primary_genre"], "jazz");
    assert_eq!(why["artist_name"], "Artist 6");
    let revenue_per_fan = &why["domains"]["g"]["components"]["revenue_per_fan"];
    assert!(revenue_per_fan["raw"].as_f64().expect("raw") > 0.0, "{why}");
    assert!(revenue_per_fan["percentile"].as_f64().is_some());
    let tiers = &why["entries_by_tier"];
    assert_eq!(
        tiers["light"].as_i64().expect("plays")
            + tiers["active"].as_i64().expect("votes")
            + tiers["committed"].as_i64().expect("tips"),
        15
    );
    let overall_score = why["overall"]["score"].as_f64().expect("overall");
    let on_board = overall["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["artist_id"] == "art_6")
        .expect("on the board");
    assert_eq!(on_board["score"].as_f64(), Some(overall_score));
    assert_problem(app.get("/v1/dna/artists/art_99", Some(&pro)).await, 404, "not-found").await;
    let movers: Value = app
        .get("/v1/dna/movers?domain=g&range=7d", Some(&pro))
        .await
        .json()
        .await
        .expect("json");
    assert!(movers["entries"].is_array(), "{movers}");
    app.stop().await;
}

/// Movers are the mutations up to the publication a plan is served: Pro's
/// stop at its last 60-second boundary, Enterprise's are live.
async fn movers_stop_at_the_publication_each_plan_is_served(backend: Backend) {
    let (app, clock, boundary) = spawn_app_before_a_boundary(backend, |_| {}).await;
    send_entries(&app).await;
    past_the_boundary(&app, &clock, boundary).await;
    // After the boundary, forty patrons lift art_0's economic score.
    let at = (OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&Rfc3339)
        .expect("format");
    let burst: Vec<Value> = (0..40)
        .map(|i| {
            json!({
                "event_id": format!("lift-{i}"), "schema_version": 1, "type": "treasury.tip",
                "timestamp": at, "user_id": format!("patron_{i}"), "artist_id": "art_0",
                "metadata": {"city": "Lagos", "genre": "jazz", "amount_minor": 90_000, "currency": "USD"},
            })
        })
        .collect();
    assert_eq!(app.deliver(&json!({"events": burst})).await.status(), 202);
    app.published().await;

    let movers = |cookie: String, limit: u32| {
        let app = &app;
        async move {
            let body: Value = app
                .get(
                    &format!("/v1/dna/movers?domain=g&range=7d&limit={limit}"),
                    Some(cookie.as_str()),
                )
                .await
                .json()
                .await
                .expect("json");
            body["entries"]
                .as_array()
                .expect("entries")
                .iter()
                .find(|entry| entry["artist_id"] == "art_0")
                .map(|entry| entry["to"].as_f64().expect("a score"))
        }
    };
    let enterprise = app.sign_in_with(Role::Fan, Plan::Enterprise, &[]).await;
    let pro = app.sign_in_with(Role::Fan, Plan::Pro, &[]).await;
    // A publication is served a moment before its mutations are written.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut lifted = None;
    for limit in 10..=100 {
        lifted = movers(enterprise.clone(), limit).await;
        if lifted.is_some() || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let lifted = lifted.expect("art_0 rose, live");
    assert_ne!(
        movers(pro.clone(), 10).await,
        Some(lifted),
        "Pro is served the scores of the last boundary, before the lift"
    );
    // Past Pro's next boundary, once the refresher has frozen it (each poll
    // with a limit of its own: a body shared earlier is not the question).
    clock.set(boundary + time::Duration::seconds(61));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = None;
    for limit in 11..=100 {
        seen = movers(pro.clone(), limit).await;
        if seen == Some(lifted) || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, Some(lifted), "Pro sees the lift past its next boundary");
    app.stop().await;
}

async fn pages_come_from_one_publication_and_bad_parameters_are_refused(backend: Backend) {
    let (app, clock, boundary) = spawn_app_before_a_boundary(backend, |_| {}).await;
    send_entries(&app).await;
    past_the_boundary(&app, &clock, boundary).await;

    let whole: Value = app
        .get("/v1/dna/leaderboards/a?range=30d", None)
        .await
        .json()
        .await
        .expect("json");
    let mut seen = Vec::new();
    let mut path = "/v1/dna/leaderboards/a?range=30d&limit=3".to_owned();
    loop {
        let page: Value = app.get(&path, None).await.json().await.expect("json");
        seen.extend(page["entries"].as_array().expect("entries").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/dna/leaderboards/a?range=30d&limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(json!(seen), whole["entries"], "pages add up to the whole board");
    let artists: BTreeSet<&str> = seen.iter().filter_map(|e| e["artist_id"].as_str()).collect();
    assert_eq!(artists.len(), 7);

    let path = "/v1/dna/leaderboards/overall?genre=%20JAZZ";
    let refused = assert_problem(app.get(path, None).await, 403, "upgrade-required").await;
    assert_eq!(refused["feature"], "filters");
    assert_eq!(refused["cheapest_plan"], "free");
    let free = app.sign_in_with(Role::Fan, Plan::Free, &[]).await;
    let jazz: Value = app.get(path, Some(&free)).await.json().await.expect("json");
    assert_eq!(jazz["total_ranked"], 4, "art_0, 2, 4, 6: {jazz}");
    assert_eq!(jazz["filters"]["genre"], "jazz");

    let earlier = (OffsetDateTime::now_utc() - time::Duration::days(2))
        .format(&Rfc3339)
        .expect("format");
    let at: Value = app
        .get(&format!("/v1/dna/leaderboards/overall?range=7d&as_of={earlier}"), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(at["as_of"].as_str(), Some(earlier.as_str()));

    for (path, status, slug) in [
        ("/v1/dna/leaderboards/x", 404, "not-found"),
        ("/v1/dna/leaderboards/a?range=24h", 422, "invalid-parameter"),
        ("/v1/dna/leaderboards/a?as_of=yesterday", 422, "invalid-parameter"),
        (
            "/v1/dna/leaderboards/a?as_of=2999-01-01T00:00:00Z",
            422,
            "invalid-parameter",
        ),
        ("/v1/dna/leaderboards/a?limit=0", 422, "invalid-parameter"),
        ("/v1/dna/leaderboards/a?cursor=nonsense", 422, "invalid-parameter"),
        ("/v1/dna/leaderboards/a?cursor=ffffff-0", 410, "gone"),
        ("/v1/dna/leaderboards/a?sort=asc", 422, "invalid-parameter"),
        ("/v1/dna/movers", 422, "invalid-parameter"),
        ("/v1/dna/movers?domain=overall", 422, "invalid-parameter"),
    ] {
        let problem = assert_problem(app.get(path, None).await, status, slug).await;
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{path}: {problem}"
        );
    }
    app.stop().await;
}

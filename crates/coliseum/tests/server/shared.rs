//! Read bodies built once and shared (`views::shared`), over real HTTP:
//! readers of one plan get one body for as long as a leaderboard
//! may be served, readers of another plan never get it, and what is the
//! caller's own (may they read it, is it audited) still happens per request.

use std::time::Duration;

use coliseum_domain::plans::{Plan, Role};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, assert_problem, past_the_boundary, spawn_app_before_a_boundary};

on_both_backends!(bodies_are_shared_within_an_audience_and_never_across);

/// Plays of each of `artists`, the first with the most (at least 21 each).
async fn send_plays(app: &TestApp, prefix: &str, artists: &[&str]) {
    let at = (OffsetDateTime::now_utc() - time::Duration::minutes(5))
        .format(&Rfc3339)
        .expect("format");
    let mut entries = Vec::new();
    for (place, artist) in artists.iter().enumerate() {
        for i in 0..(artists.len() + 20 - place) {
            entries.push(json!({
                "event_id": format!("{prefix}-{artist}-{i}"), "schema_version": 1, "type": "audio.play",
                "timestamp": at, "user_id": format!("fan_{i}"), "artist_id": artist,
                "metadata": {"city": "Lagos", "genre": "jazz"}, "engagement": {"duration_ms": 60000},
            }));
        }
    }
    for chunk in entries.chunks(1000) {
        assert_eq!(app.deliver(&json!({"events": chunk})).await.status(), 202);
    }
    app.processed().await;
}

async fn body_of(app: &TestApp, path: &str, cookie: Option<&str>) -> (String, Value) {
    let response = app.get(path, cookie).await;
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).expect("json");
    (text, value)
}

async fn bodies_are_shared_within_an_audience_and_never_across(backend: Backend) {
    let (app, clock, boundary) =
        spawn_app_before_a_boundary(backend, |settings| settings.ranking_max_age = Duration::from_secs(60)).await;
    let artists: Vec<String> = (0..30).map(|a| format!("art_{a:02}")).collect();
    let artists: Vec<&str> = artists.iter().map(String::as_str).collect();
    send_plays(&app, "first", &artists).await;
    // Free readers are served the state of the last 5-minute boundary: these plays are before it.
    past_the_boundary(&app, &clock, boundary).await;
    let fan = app.sign_in_with(Role::Fan, Plan::Enterprise, &[]).await;
    let brand = app.sign_in_with(Role::Brand, Plan::Enterprise, &[]).await;
    let admin = app.sign_in_with(Role::Admin, Plan::Enterprise, &[]).await;
    let another_admin = app.sign_in_with(Role::Admin, Plan::Enterprise, &[]).await;
    let free = app.sign_in_with(Role::Fan, Plan::Free, &[]).await;
    let kpis = "/v1/kpis?range=24h";
    let (shown, body) = body_of(&app, kpis, Some(&fan)).await;
    let plays = body["totals"]["plays"].as_i64().expect("plays");

    // More plays arrive; within the age a board may be served, readers of
    // the same plan (a fan, a brand) are served the body built first.
    send_plays(&app, "later", &["art_new"]).await;
    assert_eq!(body_of(&app, kpis, Some(&fan)).await.0, shown);
    assert_eq!(body_of(&app, kpis, Some(&brand)).await.0, shown, "the same audience");

    // An admin is another audience: its body is built now, and shared
    // among admins.
    let (for_admins, admin_body) = body_of(&app, kpis, Some(&admin)).await;
    assert_eq!(admin_body["totals"]["plays"], plays + 21, "{admin_body}");
    assert_eq!(body_of(&app, kpis, Some(&another_admin)).await.0, for_admins);

    // Another plan never gets a body cut for another depth.
    let board = "/v1/leaderboards/plays?range=24h&limit=25";
    let (_, enterprise_body) = body_of(&app, board, Some(&fan)).await;
    assert_eq!(enterprise_body["entries"].as_array().map(Vec::len), Some(25));
    let (_, free_body) = body_of(&app, board, Some(&free)).await;
    assert_eq!(free_body["entries"].as_array().map(Vec::len), Some(10), "{free_body}");
    assert_eq!(free_body["upgrade_required"]["visible_ranks"], 10);
    assert!(free_body["next_cursor"].is_null());

    // What is the caller's own is checked per request: a Free reader may
    // not read the revenue board, whatever body an Enterprise reader was served.
    let revenue = "/v1/leaderboards/revenue?range=24h";
    body_of(&app, revenue, Some(&fan)).await;
    assert_problem(app.get(revenue, Some(&free)).await, 403, "upgrade-required").await;

    // An artist account may read its own explanation on Free; a Free fan
    // may not, though a Free body of it is now held.
    let artist = app.sign_in_with(Role::Artist, Plan::Free, &["art_03"]).await;
    let explanation = "/v1/dna/artists/art_03";
    let (_, own) = body_of(&app, explanation, Some(&artist)).await;
    assert_eq!(own["artist_id"], "art_03");
    assert_problem(app.get(explanation, Some(&free)).await, 403, "upgrade-required").await;

    // An admin's read of a tenant's KPIs is audited on every read, the
    // second served the body built for the first.
    let tenant = "/v1/kpis?scope=artist:art_03&range=24h";
    let (kpis, _) = body_of(&app, tenant, Some(&admin)).await;
    assert_eq!(body_of(&app, tenant, Some(&admin)).await.0, kpis);
    let (_, audit) = body_of(&app, "/v1/admin/audit?action=tenant_data.read", Some(&admin)).await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(2), "{audit}");
    app.stop().await;
}

//! What each plan and role may read, over real HTTP: leaderboard depth cut
//! with an `upgrade-required` marker (never the hidden ranks), KPI boards,
//! filters and custom ranges by plan, tenant KPIs by link, and `/v1/me`.

use coliseum_domain::plans::{Plan, Role};
use coliseum_store::NewUser;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, assert_problem, past_the_boundary, spawn_app_before_a_boundary};

on_both_backends!(
    boards_are_cut_at_the_plans_depth,
    plans_gate_boards_filters_and_ranges,
    links_decide_whose_full_kpis_a_user_sees,
);

/// Plays for 30 artists, `art_00` with the most, so that every rank is distinct.
async fn send_plays(app: &TestApp) {
    let mut entries = Vec::new();
    for artist in 0..30 {
        for i in 0..(31 - artist) {
            let at = OffsetDateTime::now_utc() - time::Duration::minutes(5);
            entries.push(json!({
                "event_id": format!("p-{artist}-{i}"), "schema_version": 1, "type": "audio.play",
                "timestamp": at.format(&Rfc3339).expect("format"),
                "user_id": format!("fan_{i}"), "artist_id": format!("art_{artist:02}"),
                "metadata": {"city": "Lagos", "genre": "jazz"}, "engagement": {"duration_ms": 60000},
            }));
        }
    }
    assert_eq!(app.deliver(&json!({"events": entries})).await.status(), 202);
    app.processed().await;
}

async fn json_of(app: &TestApp, path: &str, cookie: Option<&str>) -> Value {
    let response = app.get(path, cookie).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.expect("json")
}

fn artists(body: &Value) -> Vec<String> {
    body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["artist_id"].as_str().expect("id").to_owned())
        .collect()
}

async fn boards_are_cut_at_the_plans_depth(backend: Backend) {
    let (app, clock, boundary) = spawn_app_before_a_boundary(backend, |_| {}).await;
    send_plays(&app).await;
    past_the_boundary(&app, &clock, boundary).await;
    let free = app.sign_in_with(Role::Fan, Plan::Free, &[]).await;
    let path = "/v1/leaderboards/plays?range=24h&limit=25";

    // Free sees 10 ranks: the page stops there, says why, and offers no next page.
    let body = json_of(&app, path, Some(&free)).await;
    assert_eq!(
        artists(&body),
        (0..10).map(|a| format!("art_{a:02}")).collect::<Vec<_>>()
    );
    assert_eq!(body["next_cursor"], Value::Null);
    assert_eq!(body["upgrade_required"]["feature"], "leaderboard_depth");
    assert_eq!(body["upgrade_required"]["cheapest_plan"], "basic");
    assert_eq!(body["upgrade_required"]["visible_ranks"], 10);

    // A page ending exactly at the depth says so too: ranks beyond it exist.
    let exact = json_of(&app, "/v1/leaderboards/plays?range=24h&limit=10", Some(&free)).await;
    assert_eq!(artists(&exact).len(), 10);
    assert_eq!(exact["upgrade_required"]["visible_ranks"], 10, "{exact}");

    // Within the depth, pages carry no marker and go on.
    let first = json_of(&app, "/v1/leaderboards/plays?range=24h&limit=4", Some(&free)).await;
    assert!(first.get("upgrade_required").is_none(), "{first}");
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let third = json_of(
        &app,
        &format!("/v1/leaderboards/plays?range=24h&limit=4&cursor={cursor}"),
        Some(&free),
    )
    .await;
    assert_eq!(artists(&third).len(), 4);
    // Paging on ends at the tenth rank, never past it.
    let cursor = third["next_cursor"].as_str().expect("a next page");
    let last = json_of(
        &app,
        &format!("/v1/leaderboards/plays?range=24h&limit=4&cursor={cursor}"),
        Some(&free),
    )
    .await;
    assert_eq!(artists(&last), ["art_08", "art_09"]);
    assert!(last["upgrade_required"].is_object());

    // The public sees 50 (all 30 here), an admin everything.
    let public = json_of(&app, "/v1/leaderboards/plays?range=24h&limit=100", None).await;
    assert_eq!(artists(&public).len(), 30);
    assert!(public.get("upgrade_required").is_none());

    // Around an artist: its neighbours within the depth, marked as cut when
    // the depth ends the window; an artist ranked past the depth is answered
    // exactly as an unranked one, so the hidden ranks stay hidden.
    let around = json_of(&app, "/v1/leaderboards/plays/around/art_08?n=3", Some(&free)).await;
    assert_eq!(artists(&around), ["art_05", "art_06", "art_07", "art_08", "art_09"]);
    assert!(around["upgrade_required"].is_object());
    let ending_at_the_depth = json_of(&app, "/v1/leaderboards/plays/around/art_07?n=2", Some(&free)).await;
    assert_eq!(
        artists(&ending_at_the_depth),
        ["art_05", "art_06", "art_07", "art_08", "art_09"]
    );
    assert!(
        ending_at_the_depth["upgrade_required"].is_object(),
        "{ending_at_the_depth}"
    );
    let hidden = app.get("/v1/leaderboards/plays/around/art_12", Some(&free)).await;
    let hidden = assert_problem(hidden, 404, "not-found").await;
    let unranked = app.get("/v1/leaderboards/plays/around/art_nobody", Some(&free)).await;
    let unranked = assert_problem(unranked, 404, "not-found").await;
    assert_eq!(
        hidden["detail"].as_str().map(|d| d.replace("art_12", "")),
        unranked["detail"].as_str().map(|d| d.replace("art_nobody", "")),
        "the same answer but for the name asked"
    );
    assert!(!hidden.to_string().contains("\"rank\""), "{hidden}");

    // DNA boards are cut the same way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let dna = json_of(&app, "/v1/dna/leaderboards/overall?range=7d&limit=50", Some(&free)).await;
        if dna["total_ranked"] == 30 {
            assert_eq!(artists(&dna).len(), 10);
            assert_eq!(dna["upgrade_required"]["cheapest_plan"], "basic");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "DNA scores never published: {dna}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.stop().await;
}

async fn plans_gate_boards_filters_and_ranges(backend: Backend) {
    let (app, clock, boundary) = spawn_app_before_a_boundary(backend, |_| {}).await;
    send_plays(&app).await;
    past_the_boundary(&app, &clock, boundary).await;
    let free = app.sign_in_with(Role::Fan, Plan::Free, &[]).await;
    let basic = app.sign_in_with(Role::Fan, Plan::Basic, &[]).await;
    let hour = |days_ago: i64| {
        let at = OffsetDateTime::now_utc() - time::Duration::days(days_ago);
        let at = at
            .replace_minute(0)
            .and_then(|a| a.replace_second(0))
            .and_then(|a| a.replace_nanosecond(0));
        at.expect("an hour").format(&Rfc3339).expect("format")
    };
    let custom = |days_ago: i64| {
        format!(
            "/v1/leaderboards/plays?range=custom&from={}&to={}",
            hour(days_ago),
            hour(0)
        )
    };
    for (path, cookie, feature, cheapest) in [
        (
            "/v1/leaderboards/revenue",
            Some(&free),
            "kpi_leaderboard_revenue",
            "basic",
        ),
        ("/v1/leaderboards/votes", None, "kpi_leaderboard_votes", "basic"),
        ("/v1/leaderboards/plays?city=lagos", None, "filters", "free"),
        ("/v1/kpis?genre=jazz", None, "filters", "free"),
        (&custom(2), Some(&free), "custom_ranges", "basic"),
        (&custom(91), Some(&basic), "custom_ranges", "pro"),
    ] {
        let problem = assert_problem(app.get(path, cookie.map(String::as_str)).await, 403, "upgrade-required").await;
        assert_eq!(problem["feature"], feature, "{path}");
        assert_eq!(problem["cheapest_plan"], cheapest, "{path}");
    }
    for (path, cookie) in [
        ("/v1/leaderboards/revenue", Some(&basic)),
        ("/v1/leaderboards/plays?city=lagos", Some(&free)),
        (&custom(89), Some(&basic)),
        ("/v1/kpis", None),
    ] {
        json_of(&app, path, cookie.map(String::as_str)).await;
    }

    // `/v1/me` says what is in force; without a session it is a 401.
    let me = json_of(&app, "/v1/me", Some(&basic)).await;
    assert_eq!(me["plan"], "basic");
    assert_eq!(me["user"]["role"], "fan");
    assert_eq!(me["entitlements"]["leaderboard_depth"], 25);
    assert_eq!(me["entitlements"]["custom_ranges"], json!({"last_days": 90}));
    assert_eq!(me["entitlements"]["dna_domains"], json!(["a"]));
    assert_eq!(me["entitlements"]["reports_per_month"], 10);
    assert_problem(app.get("/v1/me", None).await, 401, "unauthorized").await;
    app.stop().await;
}

async fn links_decide_whose_full_kpis_a_user_sees(backend: Backend) {
    let (app, clock, boundary) = spawn_app_before_a_boundary(backend, |_| {}).await;
    send_plays(&app).await;
    past_the_boundary(&app, &clock, boundary).await;
    let artist = app.sign_in_with(Role::Artist, Plan::Free, &["art_03"]).await;
    let fan = app.sign_in_with(Role::Fan, Plan::Enterprise, &[]).await;
    let admin = app.sign_in_with(Role::Admin, Plan::Free, &[]).await;
    app.store
        .upsert_user(&NewUser {
            email: "host@example.com".to_owned(),
            password_hash: coliseum_http::sessions::hash_password("a long enough password").expect("hash"),
            role: Role::Host,
            plan: Plan::Free,
            artists: vec![],
            live_events: vec!["show_1".to_owned()],
        })
        .await
        .expect("host");
    let host = app.sign_in_existing("host@example.com", "a long enough password").await;

    let mine = json_of(&app, "/v1/kpis?scope=artist:art_03&range=24h", Some(&artist)).await;
    assert_eq!(mine["totals"]["plays"], 28);
    json_of(&app, "/v1/kpis?scope=artist:art_03", Some(&admin)).await;
    json_of(&app, "/v1/kpis?scope=live_event:show_1", Some(&host)).await;
    for (path, cookie) in [
        ("/v1/kpis?scope=artist:art_04", Some(&artist)),
        ("/v1/kpis?scope=artist:art_03", Some(&fan)),
        ("/v1/kpis?scope=artist:art_03", None),
        ("/v1/kpis?scope=live_event:show_2", Some(&host)),
        ("/v1/kpis?scope=live_event:show_1", Some(&artist)),
    ] {
        assert_problem(app.get(path, cookie.map(String::as_str)).await, 403, "forbidden").await;
    }
    // The admin's read of a tenant it is not linked to is in the audit log;
    // the artist's read of its own data is not.
    let audit = json_of(&app, "/v1/admin/audit?action=tenant_data.read", Some(&admin)).await;
    let reads = audit["items"].as_array().expect("items");
    assert_eq!(reads.len(), 1, "{audit}");
    assert_eq!(reads[0]["subject"], "artist:art_03");
    app.stop().await;
}

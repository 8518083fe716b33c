//! Freshness by plan (PLANS.md): Public, Free and Basic are served the state
//! of the last 5-minute boundary, Pro of the last minute, Enterprise live,
//! whatever the query, the first read of a new one included.
//! The engine's clock stands still here and is moved across boundaries.

use std::sync::Arc;
use std::time::Duration;

use coliseum_domain::clock::FixedClock;
use coliseum_domain::plans::{Plan, Role};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, key, spawn_app_with_clock};

on_both_backends!(each_plan_is_served_the_state_of_its_last_boundary,);

fn plays(prefix: &str, n: usize, at: OffsetDateTime) -> Value {
    entries("audio.play", prefix, n, at)
}

fn entries(kind: &str, prefix: &str, n: usize, at: OffsetDateTime) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "event_id": format!("{prefix}-{i}"), "schema_version": 1, "type": kind,
                "timestamp": at.format(&Rfc3339).expect("format"),
                "user_id": "fan_1", "artist_id": "art_1",
                "metadata": {"city": "Oslo", "genre": "jazz"},
                "engagement": {"duration_ms": 60000}
            })
        })
        .collect();
    json!({"events": events})
}

async fn art_1_plays(app: &TestApp, cookie: Option<&str>) -> i64 {
    let response = app.get("/v1/leaderboards/plays?range=24h", cookie).await;
    assert_eq!(response.status(), 200);
    let board: Value = response.json().await.expect("json");
    board["entries"][0]["value"].as_i64().unwrap_or(0)
}

async fn kpi_plays(app: &TestApp, cookie: Option<&str>) -> i64 {
    let body: Value = app.get("/v1/kpis?range=24h", cookie).await.json().await.expect("json");
    body["totals"]["plays"].as_i64().expect("plays")
}

/// Waits (on the real clock) until `read` gives `expected`: the refresher
/// runs a few times a second.
async fn eventually(expected: i64, mut read: impl AsyncFnMut() -> i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = read().await;
        if got == expected {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "expected {expected}, still {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn each_plan_is_served_the_state_of_its_last_boundary(backend: Backend) {
    // A minute into a 5-minute period.
    let now = OffsetDateTime::now_utc();
    let period_start = now.replace_time(time::Time::from_hms(now.hour(), now.minute() / 5 * 5, 0).expect("time"));
    let clock = Arc::new(FixedClock::new(period_start + time::Duration::seconds(61)));
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    let played_at = period_start - time::Duration::minutes(10);
    let free = app.make_user(Role::Fan, Plan::Free, &[], &[]).await;
    let free = app.session_for(&free, time::Duration::hours(1)).await;
    let pro = app.make_user(Role::Fan, Plan::Pro, &[], &[]).await;
    let pro = app.session_for(&pro, time::Duration::hours(1)).await;
    let enterprise = app.make_user(Role::Fan, Plan::Enterprise, &[], &[]).await;
    let enterprise = app.session_for(&enterprise, time::Duration::hours(1)).await;

    // Plays processed after every boundary so far: only Enterprise sees
    // them, even on the first read of each query.
    assert_eq!(app.deliver(&plays("a", 3, played_at)).await.status(), 202);
    app.processed().await;
    assert_eq!(art_1_plays(&app, Some(&enterprise)).await, 3);
    assert_eq!(kpi_plays(&app, Some(&enterprise)).await, 3);
    for cookie in [None, Some(free.as_str()), Some(pro.as_str())] {
        assert_eq!(
            art_1_plays(&app, cookie).await,
            0,
            "the state of the boundary, read first now"
        );
        assert_eq!(kpi_plays(&app, cookie).await, 0);
    }
    assert_eq!(app.deliver(&plays("b", 2, played_at)).await.status(), 202);
    assert_eq!(
        app.deliver(&entries("vote.cast", "v", 3, played_at)).await.status(),
        202
    );
    app.processed().await;
    assert_eq!(art_1_plays(&app, Some(&enterprise)).await, 5);
    assert_eq!(kpi_plays(&app, Some(&enterprise)).await, 5);
    for cookie in [None, Some(free.as_str()), Some(pro.as_str())] {
        assert_eq!(art_1_plays(&app, cookie).await, 0, "frozen until the boundary");
        assert_eq!(kpi_plays(&app, cookie).await, 0);
    }

    // The next minute: Pro catches up, the 5-minute plans do not.
    clock.set(period_start + time::Duration::seconds(120));
    eventually(5, async || art_1_plays(&app, Some(&pro)).await).await;
    eventually(5, async || kpi_plays(&app, Some(&pro)).await).await;
    assert_eq!(art_1_plays(&app, Some(&free)).await, 0);
    assert_eq!(art_1_plays(&app, None).await, 0);

    // The next 5-minute boundary: everyone has the state as of it.
    clock.set(period_start + time::Duration::seconds(300));
    eventually(5, async || art_1_plays(&app, Some(&free)).await).await;
    eventually(5, async || art_1_plays(&app, None).await).await;
    eventually(5, async || kpi_plays(&app, Some(&free)).await).await;

    // Plays processed after that boundary: a Basic reader who varies the
    // query (a custom range ending in the future, the other bucket, a
    // filter, another range) reads each variant first now, and still gets
    // the state of the boundary.
    clock.set(period_start + time::Duration::seconds(330));
    let basic = app.make_user(Role::Fan, Plan::Basic, &[], &[]).await;
    let basic = app.session_for(&basic, time::Duration::hours(1)).await;
    // Signed by the engine's clock, which runs ahead of the real one here.
    // Four plays, and five retracted votes that take art_1 below zero.
    let mut body = plays("c", 4, played_at);
    let retracted = entries("vote.retracted", "r", 5, played_at);
    if let (Some(events), Some(more)) = (body["events"].as_array_mut(), retracted["events"].as_array()) {
        events.extend(more.iter().cloned());
    }
    let body = body.to_string().into_bytes();
    let signed_at = (period_start + time::Duration::seconds(330)).unix_timestamp();
    let response = app
        .client
        .post(format!("{}/v1/passport/events", app.base))
        .header("content-type", "application/json")
        .header("webhook-id", "msg_c")
        .header("webhook-timestamp", signed_at.to_string())
        .header("webhook-signature", key().sign("msg_c", signed_at, &body))
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 202);
    app.processed().await;
    let hour = |h: i64| {
        (period_start.replace_minute(0).expect("an hour") + time::Duration::hours(h))
            .format(&Rfc3339)
            .expect("format")
    };
    let custom = format!("range=custom&from={}&to={}", hour(-3), hour(5));
    let variants = [
        format!("/v1/kpis?{custom}"),
        format!("/v1/kpis?{custom}&bucket=day"),
        "/v1/kpis?range=7d&bucket=hour&city=oslo".to_owned(),
        "/v1/kpis?range=30d&genre=jazz".to_owned(),
        "/v1/kpis?range=24h&bucket=day&city=oslo&genre=jazz".to_owned(),
    ];
    for path in &variants {
        let plays_of = async |cookie: &str| -> i64 {
            let response = app.get(path, Some(cookie)).await;
            assert_eq!(response.status(), 200, "{path}");
            let body: Value = response.json().await.expect("json");
            body["totals"]["plays"].as_i64().expect("plays")
        };
        assert_eq!(plays_of(&basic).await, 5, "{path} for Basic");
        assert_eq!(plays_of(&enterprise).await, 9, "{path} for Enterprise");
    }
    // Live, art_1's votes are below zero and it is not ranked; at the
    // boundary it had three.
    let live: Value = app
        .get("/v1/leaderboards/votes?range=7d", Some(&enterprise))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(live["total_ranked"], 0, "{live}");
    let frozen: Value = app
        .get("/v1/leaderboards/votes?range=7d", Some(&basic))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(frozen["entries"][0]["value"], 3, "{frozen}");
    for board in [
        format!("/v1/leaderboards/plays?{custom}"),
        "/v1/leaderboards/plays?range=7d&city=oslo&genre=jazz".to_owned(),
        "/v1/leaderboards/plays/around/art_1?range=30d".to_owned(),
    ] {
        let response = app.get(&board, Some(&basic)).await;
        assert_eq!(response.status(), 200, "{board}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["entries"][0]["value"], 5, "{board} for Basic: {body}");
    }

    // A DNA `as_of` past the plan's boundary would be live data.
    clock.set(period_start + time::Duration::seconds(330));
    let later = (period_start + time::Duration::seconds(310))
        .format(&Rfc3339)
        .expect("format");
    let response = app
        .get(&format!("/v1/dna/leaderboards/overall?as_of={later}"), Some(&free))
        .await;
    assert_eq!(response.status(), 422);
    // So would one before the boundary but on its day: scores for an
    // instant are computed from that whole day as it stands now.
    let same_day = (period_start + time::Duration::seconds(290))
        .format(&Rfc3339)
        .expect("format");
    let response = app
        .get(&format!("/v1/dna/leaderboards/overall?as_of={same_day}"), Some(&free))
        .await;
    assert_eq!(response.status(), 422);
    let response = app
        .get(
            &format!("/v1/dna/leaderboards/overall?as_of={later}"),
            Some(&enterprise),
        )
        .await;
    assert_eq!(response.status(), 200);
    app.stop().await;
}

//! Live updates over a real WebSocket client and over Server-Sent Events:
//! the state at once and on change (never without one), the same body as
//! the REST read, resume with `since` / `Last-Event-ID`, unsubscribe, bad
//! frames answered and the connection kept, plan gating, a downgrade or a
//! logout ending subscriptions, the Origin check of browser sessions, and
//! a clean close when the server stops.

use std::time::Duration;

use coliseum_domain::plans::{Plan, Role};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::billing;
use crate::on_both_backends;
use crate::support::{Backend, TestApp, assert_problem, spawn_app, spawn_app_with};

on_both_backends!(
    a_subscriber_gets_the_state_at_once_and_on_every_change,
    bad_frames_are_answered_and_the_connection_stays,
    plans_origins_and_ended_sessions_are_enforced,
    server_sent_events_follow_a_topic_and_resume,
    the_server_closes_live_connections_when_it_stops,
);

/// Plays of `artist` (`count` of them, five minutes ago), processed.
async fn plays(app: &TestApp, prefix: &str, artist: &str, count: usize) {
    let at = (OffsetDateTime::now_utc() - time::Duration::minutes(5))
        .format(&Rfc3339)
        .expect("format");
    let entries: Vec<Value> = (0..count)
        .map(|i| {
            json!({
                "event_id": format!("{prefix}-{i}"), "schema_version": 1, "type": "audio.play",
                "timestamp": at, "user_id": format!("fan_{i}"), "artist_id": artist,
                "metadata": {"city": "Lagos", "genre": "jazz"}, "engagement": {"duration_ms": 60000},
            })
        })
        .collect();
    assert_eq!(app.deliver(&json!({"events": entries})).await.status(), 202);
    app.processed().await;
}

struct LiveClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// Opens `/v1/live` with these headers; a refused handshake gives its
/// status and problem document.
async fn connect(app: &TestApp, headers: &[(&str, &str)]) -> Result<LiveClient, (u16, Value)> {
    let url = format!("{}/v1/live", app.base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().expect("a request");
    for (name, value) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = name.parse().expect("a header name");
        request
            .headers_mut()
            .insert(name, value.parse().expect("a header value"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(LiveClient { socket }),
        Err(WsError::Http(response)) => {
            let status = response.status().as_u16();
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "a refusal is a problem document"
            );
            let body = response.into_body().expect("a body");
            Err((status, serde_json::from_slice(&body).expect("a problem document")))
        }
        Err(other) => panic!("the handshake failed: {other}"),
    }
}

impl LiveClient {
    async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    async fn send_text(&mut self, text: &str) {
        self.socket.send(Message::text(text)).await.expect("sent");
    }

    /// The next JSON frame within `wait`, `None` if none came.
    async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next()).await.ok()?;
            match message.expect("the connection is open").expect("a frame") {
                Message::Text(text) => return Some(serde_json::from_str(text.as_str()).expect("a JSON frame")),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    async fn next(&mut self) -> Value {
        self.next_within(Duration::from_secs(15))
            .await
            .expect("a frame within 15 s")
    }

    /// The next frame, which must be an update of `id`.
    async fn update(&mut self, id: &str) -> Value {
        let frame = self.next().await;
        assert_eq!(
            (frame["op"].as_str(), frame["id"].as_str()),
            (Some("update"), Some(id)),
            "{frame}"
        );
        assert_eq!(frame["watermark"], frame["data"]["watermark"], "{frame}");
        frame
    }

    /// The next frame, which must be an error of `id` with this status and type.
    async fn error(&mut self, id: Option<&str>, status: u16, slug: &str) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["op"], "error", "{frame}");
        assert_eq!(frame["id"].as_str(), id, "{frame}");
        let problem = &frame["problem"];
        assert_eq!(problem["status"], status, "{frame}");
        assert_eq!(
            problem["type"],
            format!("https://coliseum.dev/problems/{slug}"),
            "{frame}"
        );
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{frame}");
        frame
    }

    async fn quiet_for(&mut self, wait: Duration) {
        if let Some(frame) = self.next_within(wait).await {
            panic!("nothing should have been sent, got {frame}");
        }
    }
}

/// An Enterprise user's API key, as an `Authorization` header value.
async fn enterprise_bearer(app: &TestApp) -> String {
    let user = app.make_user(Role::Brand, Plan::Enterprise, &[], &[]).await;
    format!("Bearer {}", app.api_key_for(&user).await.0)
}

/// The REST body of a board, as the same caller reads it.
async fn rest(app: &TestApp, path: &str, bearer: &str) -> Value {
    let response = app
        .client
        .get(format!("{}{path}", app.base))
        .header("authorization", bearer)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.expect("json")
}

async fn a_subscriber_gets_the_state_at_once_and_on_every_change(backend: Backend) {
    let app = spawn_app(backend).await;
    plays(&app, "a", "art_a", 3).await;
    let bearer = enterprise_bearer(&app).await;
    let mut live = connect(&app, &[("authorization", &bearer)]).await.expect("connected");
    let topic = json!({"kind": "leaderboard", "metric": "plays", "range": "24h", "city": "lagos"});
    live.send(json!({"op": "subscribe", "id": "s1", "topic": topic})).await;
    let first = live.update("s1").await;
    let board = rest(&app, "/v1/leaderboards/plays?range=24h&city=lagos", &bearer).await;
    assert_eq!(first["data"]["entries"], board["entries"], "the REST read's body");
    assert_eq!(first["watermark"], board["watermark"]);
    assert_eq!(first["data"]["entries"][0]["value"], 3);

    // Nothing changed: nothing is sent.
    live.quiet_for(Duration::from_millis(800)).await;

    // New plays: the newest state, once.
    plays(&app, "b", "art_b", 5).await;
    let second = live.update("s1").await;
    assert!(second["watermark"].as_i64() > first["watermark"].as_i64(), "{second}");
    assert_eq!(second["data"]["entries"][0]["artist_id"], "art_b", "{second}");
    let board = rest(&app, "/v1/leaderboards/plays?range=24h&city=lagos", &bearer).await;
    assert_eq!(second["data"]["entries"], board["entries"]);
    live.quiet_for(Duration::from_millis(800)).await;

    // Resuming at the current watermark sends nothing at once; before it, the state.
    let now = second["watermark"].as_i64().expect("watermark");
    live.send(json!({"op": "subscribe", "id": "s2", "topic": topic, "since": now}))
        .await;
    live.send(json!({"op": "subscribe", "id": "s3", "topic": topic, "since": now - 1}))
        .await;
    let resumed = live.update("s3").await;
    assert_eq!(resumed["watermark"], now);
    live.quiet_for(Duration::from_millis(800)).await;

    // KPIs and around-me follow too; an unsubscribed topic stops.
    live.send(json!({"op": "subscribe", "id": "k", "topic": {"kind": "kpis", "range": "24h"}}))
        .await;
    let kpis = live.update("k").await;
    assert_eq!(kpis["data"]["totals"]["plays"], 8, "{kpis}");
    let around = json!({"kind": "around", "metric": "plays", "artist_id": "art_a", "range": "24h", "n": 1});
    live.send(json!({"op": "subscribe", "id": "me", "topic": around})).await;
    let me = live.update("me").await;
    assert_eq!(me["data"]["rank"], 2, "{me}");
    live.send(json!({"op": "unsubscribe", "id": "s1"})).await;
    assert_eq!(live.next().await, json!({"op": "unsubscribed", "id": "s1"}));

    plays(&app, "c", "art_a", 10).await;
    let mut updated = std::collections::BTreeMap::new();
    while updated.len() < 4 {
        let frame = live.next().await;
        assert_eq!(frame["op"], "update", "{frame}");
        updated.insert(frame["id"].as_str().expect("id").to_owned(), frame);
    }
    // Should the batch have been applied in parts, the newest state follows.
    while let Some(frame) = live.next_within(Duration::from_millis(800)).await {
        assert_eq!(frame["op"], "update", "{frame}");
        updated.insert(frame["id"].as_str().expect("id").to_owned(), frame);
    }
    assert_eq!(
        updated.keys().map(String::as_str).collect::<Vec<_>>(),
        ["k", "me", "s2", "s3"],
        "every subscription but the one ended"
    );
    assert_eq!(updated["me"]["data"]["rank"], 1);
    assert_eq!(updated["k"]["data"]["totals"]["plays"], 18);
    app.stop().await;
}

async fn bad_frames_are_answered_and_the_connection_stays(backend: Backend) {
    let app = spawn_app(backend).await;
    let bearer = enterprise_bearer(&app).await;
    let mut live = connect(&app, &[("authorization", &bearer)]).await.expect("connected");
    live.send_text("this is not JSON").await;
    live.error(None, 400, "malformed-request").await;
    live.send(json!({"op": "dance", "id": "x"})).await;
    live.error(Some("x"), 422, "invalid-parameter").await;
    live.send(json!({"op": "subscribe", "topic": {"kind": "kpis"}})).await;
    live.error(None, 422, "invalid-parameter").await;
    let board = |extra: Value| {
        let mut topic = json!({"kind": "leaderboard", "metric": "plays", "range": "24h"});
        topic
            .as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        topic
    };
    for (topic, parameter) in [
        (json!({"kind": "weather"}), "kind"),
        (json!({"kind": "leaderboard", "range": "24h"}), "metric"),
        (board(json!({"range": "1y"})), "range"),
        (board(json!({"citty": "lagos"})), "citty"),
        (board(json!({"cursor": "abc"})), "cursor"),
        (board(json!({"city": {"name": "lagos"}})), "city"),
    ] {
        live.send(json!({"op": "subscribe", "id": "bad", "topic": topic})).await;
        let frame = live.error(Some("bad"), 422, "invalid-parameter").await;
        assert_eq!(frame["problem"]["errors"][0]["parameter"], parameter, "{frame}");
    }
    live.send(json!({"op": "unsubscribe", "id": "nothing"})).await;
    live.error(Some("nothing"), 404, "not-found").await;

    // After all that the connection serves, and one id is one subscription.
    live.send(json!({"op": "subscribe", "id": "ok", "topic": board(json!({}))}))
        .await;
    live.update("ok").await;
    live.send(json!({"op": "subscribe", "id": "ok", "topic": board(json!({}))}))
        .await;
    live.error(Some("ok"), 409, "conflict").await;
    for n in 1..coliseum_http::live::MAX_SUBSCRIPTIONS {
        live.send(json!({"op": "subscribe", "id": format!("n{n}"), "topic": board(json!({}))}))
            .await;
        live.update(&format!("n{n}")).await;
    }
    live.send(json!({"op": "subscribe", "id": "one-too-many", "topic": board(json!({}))}))
        .await;
    live.error(Some("one-too-many"), 429, "limit-reached").await;

    // Not a WebSocket request at all: a problem document.
    let plain = app
        .client
        .get(format!("{}/v1/live", app.base))
        .header("authorization", &bearer)
        .send()
        .await
        .expect("sent");
    assert!(plain.status().is_client_error(), "{}", plain.status());
    assert_eq!(plain.headers()["content-type"], "application/problem+json");
    app.stop().await;
}

async fn plans_origins_and_ended_sessions_are_enforced(backend: Backend) {
    let app = spawn_app_with(backend, |s| billing::configure(s, "http://127.0.0.1:9")).await;
    let origin = app.base.clone();

    // Below Pro, and without signing in, there is no live push at all.
    let (status, problem) = connect(&app, &[]).await.err().expect("refused");
    assert_eq!(
        (status, problem["type"].as_str()),
        (403, Some("https://coliseum.dev/problems/upgrade-required"))
    );
    assert_eq!(problem["cheapest_plan"], "pro");
    let basic = app.make_user(Role::Fan, Plan::Basic, &[], &[]).await;
    let basic = app.session_for(&basic, time::Duration::hours(1)).await;
    let (status, problem) = connect(&app, &[("cookie", &basic), ("origin", &origin)])
        .await
        .err()
        .expect("refused");
    assert_eq!((status, problem["feature"].as_str()), (403, Some("live_push")));

    // A browser session's socket must come from the deployment's pages.
    let pro = app.make_user(Role::Fan, Plan::Pro, &[], &[]).await;
    let cookie = app.session_for(&pro, time::Duration::hours(1)).await;
    for foreign in [Some("https://evil.example"), None] {
        let mut headers = vec![("cookie", cookie.as_str())];
        headers.extend(foreign.map(|o| ("origin", o)));
        let (status, problem) = connect(&app, &headers).await.err().expect("refused");
        assert_eq!(
            (status, problem["type"].as_str()),
            (403, Some("https://coliseum.dev/problems/forbidden"))
        );
    }
    let mut live = connect(&app, &[("cookie", &cookie), ("origin", &origin)])
        .await
        .expect("connected");

    // What the plan does not include is refused topic by topic.
    live.send(json!({"op": "subscribe", "id": "p", "topic": {"kind": "pipeline"}}))
        .await;
    live.error(Some("p"), 403, "forbidden").await;
    let old = (OffsetDateTime::now_utc() - time::Duration::days(1000))
        .replace_time(time::Time::MIDNIGHT)
        .format(&Rfc3339)
        .expect("format");
    let to = (OffsetDateTime::now_utc() - time::Duration::days(990))
        .replace_time(time::Time::MIDNIGHT)
        .format(&Rfc3339)
        .expect("format");
    live.send(
        json!({"op": "subscribe", "id": "old", "topic": {"kind": "kpis", "range": "custom", "from": old, "to": to}}),
    )
    .await;
    let refused = live.error(Some("old"), 403, "upgrade-required").await;
    assert_eq!(refused["problem"]["cheapest_plan"], "enterprise");

    // Pro is served the state of its last minute: a change is not pushed at once.
    live.send(
        json!({"op": "subscribe", "id": "b", "topic": {"kind": "leaderboard", "metric": "revenue", "range": "7d"}}),
    )
    .await;
    live.update("b").await;
    plays(&app, "pro", "art_p", 2).await;
    live.quiet_for(Duration::from_millis(1200)).await;

    // A downgrade through Stripe ends what the new plan does not include.
    let subscription = |price: &str| billing::subscription("cus_live", "active", price, Some(pro.id));
    billing::deliver(
        &app,
        &billing::event(
            "evt_up",
            "customer.subscription.created",
            1_000,
            subscription("price_pro"),
        ),
    )
    .await;
    live.quiet_for(Duration::from_millis(500)).await;
    billing::deliver(
        &app,
        &billing::event(
            "evt_down",
            "customer.subscription.updated",
            2_000,
            subscription("price_basic"),
        ),
    )
    .await;
    let ended = live.error(Some("b"), 403, "upgrade-required").await;
    assert_eq!(ended["problem"]["feature"], "live_push");

    // A logout ends the subscriptions of that session's socket.
    let other = app.make_user(Role::Fan, Plan::Enterprise, &[], &[]).await;
    let other = app.session_for(&other, time::Duration::hours(1)).await;
    let mut second = connect(&app, &[("cookie", &other), ("origin", &origin)])
        .await
        .expect("connected");
    second
        .send(json!({"op": "subscribe", "id": "k", "topic": {"kind": "kpis", "range": "24h"}}))
        .await;
    second.update("k").await;
    assert_eq!(app.post_as("/v1/auth/logout", &other, None).await.status(), 204);
    second.error(Some("k"), 403, "upgrade-required").await;
    app.stop().await;
}

/// Server-Sent Events as read from the stream: (event, id, data).
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn next_within(&mut self, wait: Duration) -> Option<(String, Option<String>, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|line| line.strip_prefix(name).map(|v| v.trim_start().to_owned()))
                };
                // Keep-alive comments carry no event.
                if let Some(data) = field("data:") {
                    let event = field("event:").unwrap_or_else(|| "message".to_owned());
                    return Some((event, field("id:"), serde_json::from_str(&data).expect("JSON data")));
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await.ok()?;
            let chunk = chunk.expect("the stream reads").expect("the stream is open");
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

async fn sse(app: &TestApp, query: &str, bearer: &str, last_event_id: Option<i64>) -> Events {
    let mut request = app
        .client
        .get(format!("{}/v1/live/sse?{query}", app.base))
        .header("authorization", bearer);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = request.send().await.expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    Events {
        response,
        buffer: String::new(),
    }
}

async fn server_sent_events_follow_a_topic_and_resume(backend: Backend) {
    let app = spawn_app(backend).await;
    plays(&app, "a", "art_a", 4).await;
    let bearer = enterprise_bearer(&app).await;
    let mut events = sse(&app, "kind=kpis&range=24h&city=lagos", &bearer, None).await;
    let (event, id, first) = events.next_within(Duration::from_secs(10)).await.expect("the state");
    assert_eq!(event, "update");
    let watermark = first["watermark"].as_i64().expect("watermark");
    assert_eq!(id, Some(watermark.to_string()));
    let rest = rest(&app, "/v1/kpis?range=24h&city=lagos", &bearer).await;
    assert_eq!(first["totals"], rest["totals"], "the REST read's body");
    assert!(events.next_within(Duration::from_millis(800)).await.is_none());

    let mut resumed = sse(&app, "kind=kpis&range=24h&city=lagos", &bearer, Some(watermark)).await;
    assert!(
        resumed.next_within(Duration::from_millis(800)).await.is_none(),
        "nothing newer yet"
    );
    plays(&app, "b", "art_a", 6).await;
    for stream in [&mut events, &mut resumed] {
        let (event, id, body) = stream.next_within(Duration::from_secs(10)).await.expect("an update");
        assert_eq!(event, "update");
        assert!(body["watermark"].as_i64() > Some(watermark));
        assert_eq!(id, Some(body["watermark"].to_string()));
        assert_eq!(body["totals"]["plays"], 10);
    }

    // Refusals are problem documents, before any stream opens.
    let response = app
        .client
        .get(format!("{}/v1/live/sse?kind=pipeline", app.base))
        .header("authorization", &bearer)
        .send()
        .await
        .expect("sent");
    assert_problem(response, 403, "forbidden").await;
    let response = app
        .client
        .get(format!("{}/v1/live/sse?kind=kpis&range=24h", app.base))
        .header("authorization", &bearer)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .expect("sent");
    assert_problem(response, 422, "invalid-parameter").await;
    let response = app.get("/v1/live/sse?kind=kpis&range=24h", None).await;
    assert_problem(response, 403, "upgrade-required").await;

    // An admin follows the pipeline and the audit log.
    let admin = app.make_user(Role::Admin, Plan::Free, &[], &[]).await;
    let admin = format!("Bearer {}", app.api_key_for(&admin).await.0);
    let mut pipeline = sse(&app, "kind=pipeline", &admin, None).await;
    let (_, _, health) = pipeline.next_within(Duration::from_secs(10)).await.expect("health");
    assert!(health["processed_seq"].as_i64().is_some(), "{health}");
    let mut audit = sse(&app, "kind=audit&action=api_key.created", &admin, None).await;
    let (_, _, page) = audit.next_within(Duration::from_secs(10)).await.expect("a page");
    assert!(page["items"].is_array(), "{page}");
    drop((events, resumed, pipeline, audit));
    app.stop().await;
}

async fn the_server_closes_live_connections_when_it_stops(backend: Backend) {
    let app = spawn_app(backend).await;
    let bearer = enterprise_bearer(&app).await;
    let mut live = connect(&app, &[("authorization", &bearer)]).await.expect("connected");
    live.send(json!({"op": "subscribe", "id": "k", "topic": {"kind": "kpis", "range": "24h"}}))
        .await;
    live.update("k").await;
    let stopping = tokio::spawn(app.stop());
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match live.socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("the connection ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("closed within 10 s");
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Away));
    tokio::time::timeout(Duration::from_secs(20), stopping)
        .await
        .expect("the server stopped")
        .expect("joined");
}

/// A subscription's state is a read: subscribing counts against the
/// account's allowance like a REST request (Pro: 600 a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_count_against_the_rate_limit() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.rate_limits = true).await;
    let user = app.make_user(Role::Fan, Plan::Pro, &[], &[]).await;
    let bearer = format!("Bearer {}", app.api_key_for(&user).await.0);
    let mut live = connect(&app, &[("authorization", &bearer)]).await.expect("connected");
    let topic = json!({"kind": "kpis", "range": "24h"});
    // The allowance refills as time passes (600 a minute is 10 a second):
    // a few more than the minute's 600 get through while the loop runs.
    let mut served = 0;
    loop {
        live.send(json!({"op": "subscribe", "id": "k", "topic": topic})).await;
        let frame = live.next().await;
        if frame["op"] == "error" {
            assert_eq!(frame["problem"]["status"], 429, "{frame}");
            assert_eq!(frame["problem"]["type"], "https://coliseum.dev/problems/rate-limited");
            break;
        }
        assert_eq!(frame["op"], "update", "{frame}");
        served += 1;
        assert!(served < 800, "subscriptions never ran out of allowance");
        live.send(json!({"op": "unsubscribe", "id": "k"})).await;
        assert_eq!(live.next().await["op"], "unsubscribed");
    }
    assert!(served >= 590, "only {served} subscriptions were allowed");
    // The connection stays, and its allowance is the account's: REST too is
    // refused. Twenty at once: the allowance refills one every 100 ms, so a
    // loaded machine's pause before them lets a few through, never most.
    let token = bearer.trim_start_matches("Bearer ");
    let statuses = futures_util::future::join_all((0..20).map(|_| app.get_bearer("/v1/kpis?range=24h", token))).await;
    let refused = statuses.iter().filter(|r| r.status() == 429).count();
    assert!(refused >= 10, "only {refused} of 20 REST reads were refused");
    app.stop().await;
}

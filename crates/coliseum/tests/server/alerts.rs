//! Alerts caused for real and received by local stand-ins: Slack and
//! PagerDuty (an HTTP server here that records what it is posted) and
//! email (aiosmtpd). A paused pipeline fills the queue; entries that cannot
//! be counted dead-letter; a locked table slows the store; two nodes on
//! one PostgreSQL page once.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use coliseum_domain::plans::Role;
use coliseum_http::settings::{Secret, Settings, SmtpSettings};
use serde_json::{Value, json};

use crate::reports::{Child, free_port, listening, mails, service_program};
use crate::support::{Backend, TestApp, fresh_database, key, play, spawn_app_on, spawn_app_with};

/// Slack and PagerDuty in one: records every JSON body posted to
/// `/{receiver}`, after answering `503` to the first `fail_first` posts.
struct Receiver {
    base: String,
    posts: Arc<Mutex<Vec<(String, Value)>>>,
    attempts: Arc<AtomicU32>,
    _server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Recording {
    posts: Arc<Mutex<Vec<(String, Value)>>>,
    attempts: Arc<AtomicU32>,
    fail_first: u32,
}

async fn record(State(recording): State<Recording>, Path(receiver): Path<String>, body: String) -> StatusCode {
    if recording.attempts.fetch_add(1, Ordering::SeqCst) < recording.fail_first {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let body: Value = serde_json::from_str(&body).expect("a JSON notification");
    recording.posts.lock().expect("lock").push((receiver, body));
    StatusCode::ACCEPTED
}

impl Receiver {
    async fn start(fail_first: u32) -> Self {
        let recording = Recording {
            posts: Arc::default(),
            attempts: Arc::default(),
            fail_first,
        };
        let router = axum::Router::new()
            .route("/{receiver}", axum::routing::post(record))
            .with_state(recording.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("the receiver serves");
        });
        Self {
            base,
            posts: recording.posts,
            attempts: recording.attempts,
            _server: server,
        }
    }

    /// What `receiver` (`slack`, `pagerduty`) was sent, in order.
    fn sent(&self, receiver: &str) -> Vec<Value> {
        self.posts
            .lock()
            .expect("lock")
            .iter()
            .filter(|(r, _)| r == receiver)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// Waits (bounded) until `receiver` got `count` messages; returns them
    /// and when the last arrived.
    async fn until(&self, receiver: &str, count: usize, within: Duration) -> (Vec<Value>, Instant) {
        let deadline = Instant::now() + within;
        loop {
            let sent = self.sent(receiver);
            if sent.len() >= count {
                return (sent, Instant::now());
            }
            assert!(
                Instant::now() < deadline,
                "{receiver} got {} of {count} messages within {within:?}: {sent:?}",
                sent.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Slack's message as one string: its headline and fields.
fn slack_text(message: &Value) -> String {
    message["blocks"].to_string()
}

fn point_at(settings: &mut Settings, receiver: &Receiver) {
    settings.alerts.slack_webhook_url = Some(Secret::new(format!("{}/slack", receiver.base)));
    settings.alerts.pagerduty_url = format!("{}/pagerduty", receiver.base);
    settings.alerts.pagerduty_routing_key = Some(Secret::new("R0UT1NGKEY"));
    settings.public_url = Some("https://coliseum.test".to_owned());
}

/// aiosmtpd on a free port, writing to a Maildir.
async fn mail_server() -> (Child, u16, tempfile::TempDir) {
    let port = free_port();
    let maildir = tempfile::tempdir().expect("dir");
    let child = Child(
        std::process::Command::new(service_program("aiosmtpd"))
            .args([
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd starts"),
    );
    listening(port).await;
    (child, port, maildir)
}

async fn change_rule(app: &TestApp, admin: &str, rule: &str, change: Value) -> Value {
    let response = app
        .send_as(
            reqwest::Method::PUT,
            &format!("/v1/admin/alerts/{rule}"),
            admin,
            Some(&change),
        )
        .await;
    assert_eq!(response.status(), 200, "{change}");
    response.json().await.expect("json")
}

async fn rule_state(app: &TestApp, admin: &str, rule: &str) -> Value {
    let body: Value = app
        .get("/v1/admin/alerts", Some(admin))
        .await
        .json()
        .await
        .expect("json");
    body["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["rule"] == rule)
        .cloned()
        .expect("the rule")
}

async fn notifications(app: &TestApp, admin: &str) -> Vec<Value> {
    let body: Value = app
        .get("/v1/admin/notifications?limit=100", Some(admin))
        .await
        .json()
        .await
        .expect("json");
    body["notifications"].as_array().expect("notifications").clone()
}

/// Posts `count` plays in deliveries of at most 1,000.
async fn ingest(app: &TestApp, prefix: &str, count: usize) {
    let plays: Vec<Value> = (0..count).map(|i| play(&format!("{prefix}-{i}"))).collect();
    for chunk in plays.chunks(1000) {
        assert_eq!(app.deliver(&json!({"events": chunk})).await.status(), 202);
    }
}

async fn pause(app: &TestApp, admin: &str, paused: bool) {
    let path = if paused {
        "/v1/admin/pipeline/pause"
    } else {
        "/v1/admin/pipeline/resume"
    };
    assert_eq!(app.post_as(path, admin, None).await.status(), 200);
}

/// The first scenario: pause, ingest 1,001 entries; the queue-depth
/// rule fires after its `for` (Slack, email and a PagerDuty trigger) and
/// resolves after its `keep_firing_for` once processing resumes (a
/// PagerDuty resolve under the same key), each within 15 s of when it is due.
#[tokio::test]
async fn a_full_queue_fires_after_for_and_resolves_after_keep_firing_for_everywhere() {
    let receiver = Receiver::start(0).await;
    let (_smtp, port, maildir) = mail_server().await;
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        point_at(settings, &receiver);
        settings.smtp = Some(SmtpSettings {
            url: Secret::new(format!("smtp://127.0.0.1:{port}")),
            from: "Coliseum <alerts@coliseum.test>".to_owned(),
        });
        settings.alerts.email_to = vec!["ops@coliseum.test".to_owned()];
    })
    .await;
    let admin = app.sign_in_as(Role::Admin).await;
    let (for_s, keep_s) = (3, 3);
    let rule = change_rule(
        &app,
        &admin,
        "queue_depth",
        json!({"for_s": for_s, "keep_firing_for_s": keep_s, "severity": "critical",
               "routes": ["slack", "email", "pagerduty"]}),
    )
    .await;
    assert_eq!(
        (rule["fire_threshold"].as_f64(), rule["state"].as_str()),
        (Some(1000.0), Some("ok"))
    );

    pause(&app, &admin, true).await;
    ingest(&app, "q", 1000).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        rule_state(&app, &admin, "queue_depth").await["state"],
        "ok",
        "1,000 is not above 1,000"
    );
    // Taken before the request: the engine may count the entry and read the
    // queue before this test hears its 202, so an instant taken after it
    // would make `for` look shorter than it was.
    let breached = Instant::now();
    ingest(&app, "over", 1).await;
    let (slack, fired) = receiver.until("slack", 1, Duration::from_secs(for_s + 20)).await;
    let to_fire = fired - breached;
    eprintln!("queue_depth: firing notified {to_fire:?} after the breach (for = {for_s} s)");
    assert!(to_fire >= Duration::from_secs(for_s), "not before `for`: {to_fire:?}");
    assert!(
        to_fire <= Duration::from_secs(for_s + 15),
        "within for + 15 s: {to_fire:?}"
    );
    let text = slack_text(&slack[0]);
    for expected in [
        "FIRING",
        "queue_depth",
        "1,001 entries",
        "> 1,000 entries",
        "https://coliseum.test/app/admin",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    let state = rule_state(&app, &admin, "queue_depth").await;
    assert_eq!(
        (state["state"].as_str(), state["value"].as_f64()),
        (Some("firing"), Some(1001.0))
    );

    // Before the request, for the same reason as `breached`.
    let resumed = Instant::now();
    pause(&app, &admin, false).await;
    let (slack, resolved) = receiver.until("slack", 2, Duration::from_secs(keep_s + 20)).await;
    let to_resolve = resolved - resumed;
    eprintln!("queue_depth: resolution notified {to_resolve:?} after the resume (keep_firing_for = {keep_s} s)");
    assert!(
        to_resolve >= Duration::from_secs(keep_s),
        "not before keep_firing_for: {to_resolve:?}"
    );
    assert!(to_resolve <= Duration::from_secs(keep_s + 15), "{to_resolve:?}");
    assert!(slack_text(&slack[1]).contains("RESOLVED"), "{}", slack[1]);

    // One incident, one page: trigger then resolve under one key.
    let (pages, _) = receiver.until("pagerduty", 2, Duration::from_secs(10)).await;
    let actions: Vec<&str> = pages
        .iter()
        .map(|p| p["event_action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["trigger", "resolve"]);
    assert_eq!(pages[0]["dedup_key"], pages[1]["dedup_key"]);
    assert_eq!(pages[0]["routing_key"], "R0UT1NGKEY");
    assert_eq!(pages[0]["payload"]["severity"], "critical");

    let deadline = Instant::now() + Duration::from_secs(10);
    let messages = loop {
        let messages = mails(&maildir.path().join("mail"));
        if messages.len() >= 2 || Instant::now() > deadline {
            break messages;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(messages.len(), 2, "a firing and a resolved email");
    assert!(messages[0].contains("FIRING") && messages[0].contains("ops@coliseum.test"));
    assert!(messages[1].contains("RESOLVED"));

    let recorded = notifications(&app, &admin).await;
    assert_eq!(recorded.len(), 6, "three routes, twice: {recorded:?}");
    assert!(
        recorded.iter().all(|n| n["status"] == "sent" && n["attempts"] == 1),
        "{recorded:?}"
    );
    assert_eq!(recorded[0]["kind"], "resolved", "newest first");
    let audit: Value = app
        .get("/v1/admin/audit?action=alert.updated", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(audit["items"][0]["subject"], "alert:queue_depth", "{audit}");
    app.stop().await;
}

/// Entries that cannot be counted (a payment in a currency without a rate)
/// dead-letter: the dead-letter rule fires at once, and so does the error
/// rate once enough entries were processed; a silenced rule records its
/// notification without sending it.
#[tokio::test]
async fn dead_letters_fire_their_rule_and_the_error_rate_and_a_silence_holds_its_tongue() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with(Backend::Sqlite, |settings| point_at(settings, &receiver)).await;
    let admin = app.sign_in_as(Role::Admin).await;
    change_rule(&app, &admin, "dead_letters", json!({"routes": ["slack"]})).await;
    change_rule(
        &app,
        &admin,
        "error_rate",
        json!({"min_samples": 40, "for_s": 0, "routes": ["slack"]}),
    )
    .await;
    // Silenced: recorded, not sent.
    let until = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let silenced = app
        .post_as(
            "/v1/admin/alerts/queue_depth/silence",
            &admin,
            Some(&json!({"until": until.format(&time::format_description::well_known::Rfc3339).expect("format")})),
        )
        .await;
    assert_eq!(silenced.status(), 200);
    change_rule(
        &app,
        &admin,
        "queue_depth",
        json!({"for_s": 0, "fire_threshold": 5, "clear_threshold": 0}),
    )
    .await;

    // 30 entries, 3 of them failing: 10 %, but below the 40 entries the
    // error rate needs.
    let mut events: Vec<Value> = (0..27).map(|i| play(&format!("ok-{i}"))).collect();
    for i in 0..3 {
        let mut tip = play(&format!("tip-{i}"));
        tip["type"] = json!("treasury.tip");
        tip["metadata"]["amount_minor"] = json!(500);
        tip["metadata"]["currency"] = json!("EUR");
        events.push(tip);
    }
    assert_eq!(app.deliver(&json!({"events": events})).await.status(), 202);
    app.processed().await;
    let (slack, _) = receiver.until("slack", 1, Duration::from_secs(15)).await;
    assert!(slack_text(&slack[0]).contains("dead_letters"), "{}", slack[0]);
    assert!(slack_text(&slack[0]).contains("3 letters"), "{}", slack[0]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        rule_state(&app, &admin, "error_rate").await["state"],
        "ok",
        "30 entries are too few"
    );

    // Ten more: 40 processed, 3 failed (7.5 %) fires the error rate.
    ingest(&app, "more", 10).await;
    app.processed().await;
    let (slack, _) = receiver.until("slack", 2, Duration::from_secs(15)).await;
    assert!(slack_text(&slack[1]).contains("error_rate"), "{}", slack[1]);
    assert!(slack_text(&slack[1]).contains("7.5 %"), "{}", slack[1]);

    // The silenced rule fires too (the pause holds 6 entries) but says nothing.
    pause(&app, &admin, true).await;
    ingest(&app, "held", 6).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while rule_state(&app, &admin, "queue_depth").await["state"] != "firing" {
        assert!(Instant::now() < deadline, "the silenced rule still fires");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.sent("slack").len(), 2, "nothing sent under a silence");
    let recorded = notifications(&app, &admin).await;
    let queue: Vec<&Value> = recorded.iter().filter(|n| n["rule"] == "queue_depth").collect();
    assert_eq!(queue.len(), 2, "recorded once per route: {queue:?}");
    assert!(
        queue.iter().all(|n| n["status"] == "silenced" && n["attempts"] == 0),
        "{queue:?}"
    );
    app.stop().await;
}

/// A condition that keeps flipping (the queue filled and drained every
/// second, faster than the rule's `for`) notifies when it starts flapping
/// and when it stops, not on every flip.
#[tokio::test]
async fn a_flapping_condition_notifies_twice_not_on_every_flip() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with(Backend::Sqlite, |settings| point_at(settings, &receiver)).await;
    let admin = app.sign_in_as(Role::Admin).await;
    change_rule(
        &app,
        &admin,
        "queue_depth",
        json!({"fire_threshold": 5, "clear_threshold": 0, "for_s": 30, "keep_firing_for_s": 0,
               "flap_window_s": 10, "flap_flips": 4, "routes": ["slack"]}),
    )
    .await;
    for round in 0..5 {
        pause(&app, &admin, true).await;
        ingest(&app, &format!("flip-{round}"), 6).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        pause(&app, &admin, false).await;
        app.processed().await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let (slack, _) = receiver.until("slack", 1, Duration::from_secs(5)).await;
    assert!(slack_text(&slack[0]).contains("FLAPPING"), "{}", slack[0]);
    assert_eq!(rule_state(&app, &admin, "queue_depth").await["state"], "flapping");
    // Calm: the flips leave the 10 s window; flapping ends, once.
    let (slack, _) = receiver.until("slack", 2, Duration::from_secs(25)).await;
    assert!(slack_text(&slack[1]).contains("stopped flapping"), "{}", slack[1]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.sent("slack").len(), 2, "ten flips, two messages");
    assert_eq!(rule_state(&app, &admin, "queue_depth").await["state"], "ok");
    app.stop().await;
}

/// A receiver that fails twice (503) then succeeds gets the notification
/// once; the record says three attempts.
#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_notification_once() {
    let receiver = Receiver::start(2).await;
    let app = spawn_app_with(Backend::Sqlite, |settings| point_at(settings, &receiver)).await;
    let admin = app.sign_in_as(Role::Admin).await;
    change_rule(
        &app,
        &admin,
        "queue_depth",
        json!({"fire_threshold": 0, "clear_threshold": 0, "for_s": 0, "routes": ["slack"]}),
    )
    .await;
    pause(&app, &admin, true).await;
    ingest(&app, "one", 1).await;
    receiver.until("slack", 1, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.sent("slack").len(), 1);
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), 3);
    let recorded = notifications(&app, &admin).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0]["status"].as_str(), recorded[0]["attempts"].as_i64()),
        (Some("sent"), Some(3))
    );
    app.stop().await;
}

/// Two nodes on one PostgreSQL, both configured to alert: the processing
/// node evaluates, the other does not, and every notification is sent
/// once, across a hand-over too. A store slowed by a lock on the derived
/// tables raises the latency rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_page_once_across_a_hand_over_and_a_slowed_store_fires_the_latency_rule() {
    let receiver = Receiver::start(0).await;
    let (url, guard) = fresh_database(Backend::Postgres).await;
    let settings = |receiver: &Receiver| {
        let mut settings = Settings::for_tests(&url, key());
        point_at(&mut settings, receiver);
        settings
    };
    // The database lives as long as its guard: the node that stays holds
    // it; the one stopped midway holds a spare.
    let (_, spare) = fresh_database(Backend::Postgres).await;
    let first = spawn_app_on(settings(&receiver), spare).await;
    let second = spawn_app_on(settings(&receiver), guard).await;
    let admin = first.sign_in_as(Role::Admin).await;
    change_rule(&first, &admin, "queue_depth", json!({"fire_threshold": 10, "clear_threshold": 0, "for_s": 1, "keep_firing_for_s": 1, "routes": ["slack", "pagerduty"], "severity": "critical"})).await;
    // Above what a loaded machine's ordinary batches take to be served
    // (commit, plus the 750 ms a shared body may be held): only the store
    // held for 3 s below may fire it.
    change_rule(
        &first,
        &admin,
        "latency_p95",
        json!({"fire_threshold": 2500, "clear_threshold": 0, "for_s": 0, "window_s": 60, "routes": ["slack"]}),
    )
    .await;

    pause(&first, &admin, true).await;
    ingest(&second, "node", 11).await;
    receiver.until("slack", 1, Duration::from_secs(20)).await;
    pause(&first, &admin, false).await;
    receiver.until("slack", 2, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let slack = receiver.sent("slack");
    assert_eq!(
        slack.len(),
        2,
        "one firing and one resolved across two nodes: {slack:?}"
    );
    assert_eq!(receiver.sent("pagerduty").len(), 2);

    // A transaction holds the rollups for 3 s while entries arrive: they
    // become visible 3 s after receipt.
    let mut lock = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    sqlx::query("BEGIN").execute(&mut lock).await.expect("begin");
    sqlx::query("LOCK TABLE kpi_cells IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .expect("lock");
    ingest(&second, "slow", 5).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    sqlx::query("COMMIT").execute(&mut lock).await.expect("commit");
    let (slack, _) = receiver.until("slack", 3, Duration::from_secs(20)).await;
    assert!(slack_text(&slack[2]).contains("latency_p95"), "{}", slack[2]);

    // The processing node stops while the queue rule fires: the other node
    // takes over processing and the alerts, and resolves the same incident
    // once (one PagerDuty trigger, one resolve).
    pause(&first, &admin, true).await;
    ingest(&second, "handover", 11).await;
    let (slack, _) = receiver.until("slack", 4, Duration::from_secs(20)).await;
    assert!(slack_text(&slack[3]).contains("FIRING") && slack_text(&slack[3]).contains("queue_depth"));
    first.stop().await;
    let admin_two = second.sign_in_as(Role::Admin).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pipeline: Value = second
            .get("/v1/admin/pipeline", Some(&admin_two))
            .await
            .json()
            .await
            .expect("json");
        if pipeline["this_node_processes"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "the second node did not take over");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pause(&second, &admin_two, false).await;
    let (slack, _) = receiver.until("slack", 5, Duration::from_secs(30)).await;
    assert!(slack_text(&slack[4]).contains("RESOLVED") && slack_text(&slack[4]).contains("queue_depth"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.sent("slack").len(), 5, "nothing twice across the hand-over");
    let actions: Vec<Value> = receiver
        .sent("pagerduty")
        .iter()
        .map(|p| p["event_action"].clone())
        .collect();
    assert_eq!(actions, ["trigger", "resolve", "trigger", "resolve"]);
    second.stop().await;
}

/// Every envelope a stand-in Sentry receives, as text.
async fn sentry_stand_in() -> (String, Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let envelopes: Arc<Mutex<Vec<String>>> = Arc::default();
    let router = axum::Router::new()
        .route(
            "/api/{project}/envelope/",
            axum::routing::post(
                |State(envelopes): State<Arc<Mutex<Vec<String>>>>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    assert!(
                        headers.get("content-encoding").is_none(),
                        "envelopes arrive uncompressed"
                    );
                    envelopes
                        .lock()
                        .expect("lock")
                        .push(String::from_utf8_lossy(&body).into_owned());
                    StatusCode::OK
                },
            ),
        )
        .with_state(envelopes.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dsn = format!("http://0123456789abcdef@{}/42", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serves");
    });
    (dsn, envelopes, server)
}

/// An envelope's items: its header line, then an item header and its
/// payload per item; the JSON payloads of `event` items.
fn events_of(envelope: &str) -> Vec<Value> {
    let mut lines = envelope.lines().skip(1);
    let mut events = Vec::new();
    while let (Some(header), Some(payload)) = (lines.next(), lines.next()) {
        let header: Value = serde_json::from_str(header).expect("an item header");
        if header["type"] == "event" {
            events.push(serde_json::from_str(payload).expect("an event"));
        }
    }
    events
}

/// With `--sentry-dsn`, an internal error (a table gone from under the
/// engine) is reported with the request's id, route and status, and
/// nothing about who asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_error_reaches_sentry_with_its_request_and_without_the_person() {
    let (dsn, envelopes, _server) = sentry_stand_in().await;
    let (url, _guard) = fresh_database(Backend::Postgres).await;
    let key = crate::cluster::admin_key(&url).await;
    let (_node, base) = crate::process::start_binary_with(&url, &["--sentry-dsn", &dsn]).await;
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    sqlx::query("DROP TABLE audit_log")
        .execute(&mut connection)
        .await
        .expect("drop");
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{base}/v1/admin/audit?actor=operator@coliseum.test"))
        .bearer_auth(&key)
        .header("x-request-id", "req-sentry-1")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 500);
    let deadline = Instant::now() + Duration::from_secs(20);
    let event = loop {
        let found = envelopes
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|e| events_of(e))
            .find(|e| e["tags"]["request_id"] == "req-sentry-1");
        if let Some(event) = found {
            break event;
        }
        assert!(Instant::now() < deadline, "no event reached Sentry");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(event["tags"]["route"], "/v1/admin/audit", "{event}");
    assert_eq!(event["tags"]["status"], "500", "{event}");
    assert_eq!(event["tags"]["method"], "GET", "{event}");
    assert!(
        event["exception"].to_string().contains("audit_log"),
        "the cause: {event}"
    );
    let everything = envelopes.lock().expect("lock").concat();
    assert!(
        !everything.contains("coliseum.test"),
        "no email, query or user: {everything}"
    );
    assert!(event.get("user").is_none() && event.get("request").is_none(), "{event}");
}

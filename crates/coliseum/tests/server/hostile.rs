//! Absurd and hostile input against the real binary: whatever a sender
//! does, no accepted entry corrupts a figure, fails a read or stops a
//! restart, and what others send keeps flowing.

use std::time::Duration;

use coliseum_domain::plans::{Plan, Role};
use coliseum_store::{NewApiKey, NewUser, Store};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::process::{Child, Command};

use crate::on_both_backends;
use crate::process::{derived, start_binary_in};
use crate::support::{Backend, PASSWORD, assert_problem, fresh_database, signed_headers, spawn_app, spawn_app_with};

on_both_backends!(
    revenue_at_its_limits_stays_exact_through_reads_a_restart_and_a_rebuild,
    slow_and_idle_clients_do_not_stop_signed_deliveries,
    a_page_of_another_site_cannot_sign_a_browser_in,
    every_refusal_is_a_problem_document,
    an_account_has_one_allowance_and_at_most_25_keys,
);

const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// One euro buys a million dollars here, so that a maximal euro payment is
/// 10^18 dollar cents: nine of them fit in an `i64`, the tenth does not.
const RATES: [(&str, &str); 1] = [("COLISEUM_FX_RATES", "EUR=1000000")];
const BIG: i64 = 1_000_000_000_000_000_000;

fn payment(id: &str, artist: &str, amount: Value, currency: &str, at: OffsetDateTime) -> Value {
    json!({
        "event_id": id, "schema_version": 1, "type": "treasury.money_spent",
        "timestamp": at.format(&Rfc3339).expect("format"),
        "user_id": "fan_1", "artist_id": artist,
        "metadata": {"amount_minor": amount, "currency": currency, "kind": "ticket", "city": "Lagos"},
    })
}

async fn deliver(client: &reqwest::Client, base: &str, events: &[Value]) -> reqwest::Response {
    let body = json!({"events": events}).to_string().into_bytes();
    let mut request = client
        .post(format!("{base}/v1/passport/events"))
        .header("content-type", "application/json");
    for (name, value) in signed_headers(&body) {
        request = request.header(name, value);
    }
    request.body(body).send().await.expect("delivered")
}

async fn caught_up(store: &dyn Store) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let head = store.head_seq().await.expect("head");
        if store.pipeline_state().await.expect("state").processed_seq >= head {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the processor did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stop(mut child: Child) {
    child.start_kill().expect("killed");
    let _ = child.wait().await;
}

/// Every range and bucket of the platform's and the big artist's KPIs,
/// and the revenue board: all answer, with the exact figures.
async fn assert_exact_reads(client: &reqwest::Client, base: &str, key: &str, now: OffsetDateTime) {
    let hour = now
        .replace_minute(0)
        .and_then(|t| t.replace_second(0))
        .and_then(|t| t.replace_nanosecond(0));
    let hour = hour.expect("an hour");
    let custom = format!(
        "custom&from={}&to={}",
        (hour - time::Duration::hours(48)).format(&Rfc3339).expect("format"),
        (hour + time::Duration::hours(1)).format(&Rfc3339).expect("format"),
    );
    let platform = 9 * BIG + 5 * MAX_AMOUNT;
    for range in ["1h", "24h", "7d", "30d", "all", custom.as_str()] {
        let (expected_platform, expected_big) = if range == "1h" { (0, 0) } else { (platform, 9 * BIG) };
        for bucket in ["hour", "day"] {
            for (scope, expected) in [("platform", expected_platform), ("artist:art_big", expected_big)] {
                let url = format!("{base}/v1/kpis?scope={scope}&range={range}&bucket={bucket}");
                let response = client.get(&url).bearer_auth(key).send().await.expect("read");
                assert_eq!(response.status(), 200, "{url}");
                let body: Value = response.json().await.expect("json");
                assert_eq!(body["totals"]["revenue_minor"], json!(expected), "{url}: {body}");
                let series: i64 = body["series"]
                    .as_array()
                    .expect("series")
                    .iter()
                    .map(|point| point["revenue_minor"].as_i64().expect("an exact integer"))
                    .sum();
                assert_eq!(series, expected, "{url}: the series sums to the total");
            }
        }
        let url = format!("{base}/v1/leaderboards/revenue?range={range}&city=lagos");
        let response = client.get(&url).bearer_auth(key).send().await.expect("read");
        assert_eq!(response.status(), 200, "{url}");
        let body: Value = response.json().await.expect("json");
        if range != "1h" {
            assert_eq!(body["entries"][0]["artist_id"], "art_big", "{url}: {body}");
            assert_eq!(body["entries"][0]["value"], json!(9 * BIG), "{url}: {body}");
            assert_eq!(body["entries"][1]["value"], json!(5 * MAX_AMOUNT), "{url}: {body}");
        }
    }
}

async fn revenue_at_its_limits_stays_exact_through_reads_a_restart_and_a_rebuild(backend: Backend) {
    let (url, _guard) = fresh_database(backend).await;
    let (child, base) = start_binary_in(&url, &[], &RATES).await;
    let store = coliseum_http::app::open_store(&url).await.expect("open the store");
    let user = store
        .upsert_user(&NewUser {
            email: "money@example.com".to_owned(),
            password_hash: "unused".to_owned(),
            role: Role::Admin,
            plan: Plan::Enterprise,
            artists: Vec::new(),
            live_events: Vec::new(),
        })
        .await
        .expect("user");
    let key = coliseum_http::credentials::new_api_key();
    store
        .create_api_key(
            &NewApiKey {
                user_id: user.id,
                name: "money".to_owned(),
                key_hash: key.hash,
                prefix: key.prefix,
                created_at: OffsetDateTime::now_utc(),
            },
            &crate::support::unrecorded,
        )
        .await
        .expect("key");
    let key = key.key;
    let client = reqwest::Client::new();
    let now = OffsetDateTime::now_utc();

    // Beyond 10^12 an entry is refused at the door, whatever its size.
    for (i, amount) in [json!(MAX_AMOUNT + 1), json!(i64::MAX), json!(u64::MAX)]
        .into_iter()
        .enumerate()
    {
        let at = now - time::Duration::hours(2);
        let response = deliver(
            &client,
            &base,
            &[payment(&format!("huge-{i}"), "art_big", amount, "USD", at)],
        )
        .await;
        assert_eq!(response.status(), 422);
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(
            problem["errors"][0]["pointer"], "/events/0/metadata/amount_minor",
            "{problem}"
        );
    }
    assert_eq!(store.count_entries().await.expect("count"), 0);

    // Twelve maximal euro payments for one artist, six in one batch and six
    // in the next; five maximal dollar payments for another.
    let mut first: Vec<Value> = (0..6)
        .map(|i| {
            payment(
                &format!("big-{i}"),
                "art_big",
                json!(MAX_AMOUNT),
                "EUR",
                now - time::Duration::hours(2),
            )
        })
        .collect();
    first.extend((0..5).map(|i| {
        payment(
            &format!("small-{i}"),
            "art_small",
            json!(MAX_AMOUNT),
            "USD",
            now - time::Duration::hours(4),
        )
    }));
    assert_eq!(deliver(&client, &base, &first).await.status(), 202);
    caught_up(store.as_ref()).await;
    let second: Vec<Value> = (6..12)
        .map(|i| {
            payment(
                &format!("big-{i}"),
                "art_big",
                json!(MAX_AMOUNT),
                "EUR",
                now - time::Duration::hours(3),
            )
        })
        .collect();
    assert_eq!(deliver(&client, &base, &second).await.status(), 202);
    caught_up(store.as_ref()).await;

    // The three that would take the revenue past 2^63 - 1 wait in the dead letters, with why.
    assert_eq!(store.open_dead_letters().await.expect("dead letters"), 3);
    let letters = store.dead_letters(0, 10, false).await.expect("dead letters");
    assert!(
        letters
            .iter()
            .all(|l| l.reason.contains("the most every revenue figure can hold exactly")),
        "{letters:?}"
    );
    assert_exact_reads(&client, &base, &key, now).await;
    let gross = store.pipeline_state().await.expect("state").revenue_gross;
    assert_eq!(gross, 9 * BIG + 5 * MAX_AMOUNT);

    // A restart loads the same figures.
    stop(child).await;
    let (child, base) = start_binary_in(&url, &[], &RATES).await;
    assert_exact_reads(&client, &base, &key, now).await;
    stop(child).await;

    // A rebuild from the log refuses the same entries and gives the same rollups.
    let before = derived(&url).await;
    let rebuild = Command::new(env!("CARGO_BIN_EXE_coliseum"))
        .args(["rebuild", "--database-url", &url])
        .envs(RATES)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("coliseum rebuild runs");
    assert!(rebuild.status.success(), "{}", String::from_utf8_lossy(&rebuild.stderr));
    assert_eq!(derived(&url).await, before, "a rebuild gives the same rollups");
    assert_eq!(store.open_dead_letters().await.expect("dead letters"), 3);
    assert_eq!(store.pipeline_state().await.expect("state").revenue_gross, gross);
    let (child, base) = start_binary_in(&url, &[], &RATES).await;
    assert_exact_reads(&client, &base, &key, now).await;
    stop(child).await;
}

/// A connection from `source` (another loopback address: another peer) to
/// the server at `base`.
async fn connect_from(source: [u8; 4], base: &str) -> tokio::net::TcpStream {
    let address: std::net::SocketAddr = base.trim_start_matches("http://").parse().expect("an address");
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(std::net::SocketAddr::from((source, 0)))
        .expect("bind to the attacker's loopback address");
    socket.connect(address).await.expect("connected")
}

/// Whether the server closed the connection (reading gives end of file or
/// a reset, after any response it wrote).
async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0_u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

async fn slow_and_idle_clients_do_not_stop_signed_deliveries(backend: Backend) {
    use tokio::io::AsyncWriteExt;
    let (url, _guard) = fresh_database(backend).await;
    // The smallest budget (2 MiB) makes the attack as strong as it can be.
    let (child, base) = start_binary_in(&url, &["--ingest-inflight-mib", "1"], &[]).await;
    let store = coliseum_http::app::open_store(&url).await.expect("open the store");
    let client = reqwest::Client::new();
    let attacker = [127, 0, 0, 2];

    // 64 connections that declare a megabyte, send fresh-looking headers
    // with a wrong signature and one byte of body; 300 that send nothing.
    let mut slow = Vec::new();
    for _ in 0..64 {
        let mut stream = connect_from(attacker, &base).await;
        let head = format!(
            "POST /v1/passport/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             content-length: 1048576\r\nwebhook-id: msg_x\r\nwebhook-timestamp: {}\r\n\
             webhook-signature: v1,AAAA\r\n\r\n{{",
            OffsetDateTime::now_utc().unix_timestamp()
        );
        stream.write_all(head.as_bytes()).await.expect("sent");
        slow.push(stream);
    }
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(connect_from(attacker, &base).await);
    }

    // Meanwhile every signed delivery is stored, promptly.
    for i in 0..40 {
        let at = OffsetDateTime::now_utc() - time::Duration::minutes(1);
        let delivery = [payment(&format!("good-{i}"), "art_1", json!(100), "USD", at)];
        let sent = std::time::Instant::now();
        let response = deliver(&client, &base, &delivery).await;
        assert_eq!(response.status(), 202, "delivery {i} during the attack");
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "delivery {i} took {:?}",
            sent.elapsed()
        );
    }
    assert_eq!(store.count_entries().await.expect("count"), 40);

    // Many addresses together can fill the open half of the budget (1 MiB
    // here, 64 KiB of it held by the slow bodies above), never the half
    // kept for senders whose deliveries verified: 127.0.0.1 has sent 40.
    // Three addresses hold 300 KiB each; a fourth is refused partway.
    let mut stalled = Vec::new();
    for last in 3..=6 {
        let mut stream = connect_from([127, 0, 0, last], &base).await;
        let head = "POST /v1/passport/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                    content-length: 1048576\r\nwebhook-id: msg_x\r\nwebhook-timestamp: TS\r\n\
                    webhook-signature: v1,AAAA\r\n\r\n"
            .replace("TS", &OffsetDateTime::now_utc().unix_timestamp().to_string());
        stream.write_all(head.as_bytes()).await.expect("sent");
        // The server may refuse and close before all of it is written.
        let _ = stream.write_all(&vec![b' '; 300 * 1024]).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        stalled.push(stream);
    }
    let at = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let big = |prefix: &str| -> Vec<Value> {
        (0..900)
            .map(|i| payment(&format!("{prefix}-{i}"), "art_1", json!(100), "USD", at))
            .collect()
    };
    let newcomer = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 7]))
        .build()
        .expect("client");
    let refused = deliver(&newcomer, &base, &big("newcomer")).await;
    assert_eq!(
        refused.status(),
        503,
        "a 200 KB delivery from an address never verified waits for the open pool"
    );
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    assert!(refused.headers().contains_key("retry-after"));
    let response = deliver(&client, &base, &big("proven")).await;
    assert_eq!(
        response.status(),
        202,
        "a 200 KB delivery from the proven sender fits in its own pool"
    );
    assert_eq!(store.count_entries().await.expect("count"), 940);
    drop(stalled);

    // Past the deadlines, the server has closed every idle and slow connection.
    tokio::time::sleep(Duration::from_secs(11)).await;
    for (i, stream) in idle.iter_mut().enumerate() {
        assert!(closed_by_server(stream).await, "idle connection {i} is still open");
    }
    let mut timed_out = 0;
    for stream in &mut slow {
        use tokio::io::AsyncReadExt;
        let mut buffer = vec![0_u8; 4096];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buffer)).await
            && String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 408")
        {
            timed_out += 1;
        }
    }
    assert_eq!(timed_out, slow.len(), "every slow body was answered 408");
    stop(child).await;
}

async fn a_page_of_another_site_cannot_sign_a_browser_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.make_user(Role::Fan, Plan::Free, &[], &[]).await;
    let credentials = json!({"email": user.email, "password": PASSWORD}).to_string();
    let post = |path: &'static str, content_type: &'static str, extra: Option<(&'static str, &'static str)>| {
        let mut request = app
            .client
            .post(format!("{}{path}", app.base))
            .header("content-type", content_type)
            .body(credentials.clone());
        if let Some((name, value)) = extra {
            request = request.header(name, value);
        }
        request.send()
    };
    // What a cross-site form or a no-CORS fetch can send: refused unread.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        for path in ["/v1/auth/login", "/v1/auth/signup"] {
            let response = post(path, content_type, None).await.expect("sent");
            assert_problem(response, 415, "unsupported-media-type").await;
        }
    }
    // JSON from a foreign page (which needs CORS, but be sure): refused.
    for header in [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")] {
        let response = post("/v1/auth/login", "application/json", Some(header))
            .await
            .expect("sent");
        assert_problem(response, 403, "forbidden").await;
    }
    // The site's own page, and clients that are not browsers, sign in.
    let own = format!("http://{}", app.base.trim_start_matches("http://"));
    let own: &'static str = Box::leak(own.into_boxed_str());
    let response = post("/v1/auth/login", "application/json", Some(("origin", own)))
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let response = post("/v1/auth/login", "application/json; charset=utf-8", None)
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    app.stop().await;
}

async fn every_refusal_is_a_problem_document(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(backend).await;
    let raw = |request: String| {
        let address = app.base.trim_start_matches("http://").to_owned();
        async move {
            let mut stream = tokio::net::TcpStream::connect(address).await.expect("connected");
            stream.write_all(request.as_bytes()).await.expect("sent");
            let mut response = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
            String::from_utf8_lossy(&response).into_owned()
        }
    };
    let is_problem = |response: &str, status: u16| {
        response.starts_with(&format!("HTTP/1.1 {status}"))
            && response
                .to_ascii_lowercase()
                .contains("content-type: application/problem+json")
            && response.contains(&format!("\"status\":{status}"))
    };
    // 414: a request target past 8 KiB.
    let long = raw(format!(
        "GET /v1/leaderboards/plays?x={} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        "a".repeat(9000)
    ))
    .await;
    assert!(is_problem(&long, 414), "{long}");
    // 431: too many headers, and too many bytes of them.
    let many: String = (0..80).map(|i| format!("x-h{i}: v\r\n")).collect();
    let crowded = raw(format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\n{many}connection: close\r\n\r\n"
    ))
    .await;
    assert!(is_problem(&crowded, 431), "{crowded}");
    let heavy = raw(format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\nconnection: close\r\n\r\n",
        "b".repeat(20_000)
    ))
    .await;
    assert!(is_problem(&heavy, 431), "{heavy}");
    // 400: a path that is not UTF-8 where a route reads it.
    let bad_path =
        raw("GET /v1/leaderboards/plays/around/%FF%FE HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_owned())
            .await;
    assert!(is_problem(&bad_path, 400), "{bad_path}");
    // 413 on login and on the Stripe webhook, as on ingestion.
    let big = format!("{{\"email\": \"{}\"}}", "a".repeat(3 * 1024 * 1024));
    for path in ["/v1/auth/login", "/v1/stripe/webhook"] {
        let response = app
            .client
            .post(format!("{}{path}", app.base))
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await;
        // The server may close before reading everything; when it answers, it answers a problem.
        if let Ok(response) = response {
            assert_problem(response, 413, "payload-too-large").await;
        }
    }
    let declared = raw(format!(
        "POST /v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        3 * 1024 * 1024
    ))
    .await;
    assert!(is_problem(&declared, 413), "{declared}");
    // 405 keeps its Allow header.
    let response = app
        .client
        .delete(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("sent");
    assert!(response.headers().contains_key("allow"));
    assert_problem(response, 405, "method-not-allowed").await;
    // API key names: no control characters or bidi overrides.
    let developer = app.sign_in_with(Role::Developer, Plan::Pro, &[]).await;
    for name in ["ci\u{0}", "evil\u{202E}txt.exe", "line\nbreak"] {
        let response = app
            .post_as("/v1/api-keys", &developer, Some(&json!({"name": name})))
            .await;
        let problem = assert_problem(response, 422, "validation-failed").await;
        assert_eq!(problem["errors"][0]["pointer"], "/name");
    }
    app.stop().await;
}

async fn an_account_has_one_allowance_and_at_most_25_keys(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.rate_limits = true).await;
    let developer = app.make_user(Role::Developer, Plan::Pro, &[], &[]).await;
    // Two sessions and two keys of one account draw on one allowance.
    let sessions = [
        app.session_for(&developer, time::Duration::hours(1)).await,
        app.session_for(&developer, time::Duration::hours(1)).await,
    ];
    let keys = [app.api_key_for(&developer).await.0, app.api_key_for(&developer).await.0];
    let remaining = |response: &reqwest::Response| -> u64 {
        response.headers()["ratelimit-remaining"]
            .to_str()
            .expect("text")
            .parse()
            .expect("a number")
    };
    let mut seen = Vec::new();
    for round in 0..3 {
        for cookie in &sessions {
            let response = app.get("/v1/leaderboards/plays", Some(cookie)).await;
            assert_eq!(response.status(), 200, "round {round}");
            seen.push(remaining(&response));
        }
        for key in &keys {
            let response = app.get_bearer("/v1/leaderboards/plays", key).await;
            assert_eq!(response.status(), 200, "round {round}");
            seen.push(remaining(&response));
        }
    }
    let expected: Vec<u64> = (1..=12).map(|used| 600 - used).collect();
    assert_eq!(seen, expected, "one count across every session and key");

    // At most 25 keys in force: two exist, so of 30 requests at once
    // exactly 23 make a key, then none until one is revoked.
    let cookie = &sessions[0];
    let token = app.csrf(cookie).await;
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..30 {
        let request = app
            .client
            .post(format!("{}/v1/api-keys", app.base))
            .header("cookie", cookie)
            .header("x-csrf-token", &token)
            .json(&json!({"name": format!("k{i}")}));
        attempts.spawn(async move { request.send().await.expect("request sent") });
    }
    let mut made = Vec::new();
    let mut conflicts = 0;
    while let Some(response) = attempts.join_next().await {
        let response = response.expect("joined");
        match response.status().as_u16() {
            201 => made.push(response.json::<Value>().await.expect("json")["id"].clone()),
            409 => conflicts += 1,
            other => panic!("a key request answered {other}"),
        }
    }
    assert_eq!(
        (made.len(), conflicts),
        (23, 7),
        "the cap holds under concurrent requests"
    );
    let refused = app
        .post_as("/v1/api-keys", cookie, Some(&json!({"name": "one too many"})))
        .await;
    assert_problem(refused, 409, "conflict").await;
    let id = made[0]
        .as_i64()
        .map_or_else(|| made[0].as_str().expect("an id").to_owned(), |id| id.to_string());
    let revoked = app
        .send_as(reqwest::Method::DELETE, &format!("/v1/api-keys/{id}"), cookie, None)
        .await;
    assert_eq!(revoked.status(), 204);
    let again = app
        .post_as("/v1/api-keys", cookie, Some(&json!({"name": "after a revoke"})))
        .await;
    assert_eq!(again.status(), 201);
    app.stop().await;
}

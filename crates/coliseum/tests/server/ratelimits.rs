//! Rate limits per session, API key or IP (PLANS.md), with `RateLimit-*`
//! headers and `429` + `Retry-After`; shared through Redis by two real
//! engine processes.

use coliseum_domain::plans::{Plan, Role};
use coliseum_store::{Accounts, NewSession, NewUser};

use crate::on_both_backends;
use crate::process::start_binary_with;
use crate::support::{Backend, assert_problem, fresh_database, spawn_app_with};

on_both_backends!(limits_follow_the_plan_per_session_and_per_ip,);

fn header(response: &reqwest::Response, name: &str) -> u64 {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {:?}", response.headers()))
}

async fn limits_follow_the_plan_per_session_and_per_ip(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.rate_limits = true).await;
    // Free: 60 a minute per session.
    let fan = app.make_user(Role::Fan, Plan::Free, &[], &[]).await;
    let cookie = app.session_for(&fan, time::Duration::hours(1)).await;
    for used in 1..=60 {
        let response = app.get("/v1/leaderboards/plays", Some(&cookie)).await;
        assert_eq!(response.status(), 200, "request {used}");
        assert_eq!(header(&response, "ratelimit-limit"), 60);
        assert_eq!(header(&response, "ratelimit-remaining"), 60 - used);
    }
    let refused = app.get("/v1/leaderboards/plays", Some(&cookie)).await;
    assert_eq!(refused.status(), 429);
    let retry_after = header(&refused, "retry-after");
    assert!(
        (1..=2).contains(&retry_after),
        "one request back each second: {retry_after}"
    );
    assert_eq!(header(&refused, "ratelimit-remaining"), 0);
    assert!(header(&refused, "ratelimit-reset") >= 59);
    assert_problem(refused, 429, "rate-limited").await;

    // Another session has its own allowance, with its own plan's size.
    let pro = app.make_user(Role::Fan, Plan::Pro, &[], &[]).await;
    let pro_cookie = app.session_for(&pro, time::Duration::hours(1)).await;
    let response = app.get("/v1/leaderboards/plays", Some(&pro_cookie)).await;
    assert_eq!(
        (response.status().as_u16(), header(&response, "ratelimit-limit")),
        (200, 600)
    );

    // Without credentials: 30 a minute per IP, HEAD requests and failed
    // credentials included.
    for used in 1..=28 {
        let response = app.get("/v1/leaderboards/plays", None).await;
        assert_eq!(response.status(), 200, "anonymous request {used}");
    }
    let head = app
        .client
        .head(format!("{}/v1/leaderboards/plays", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!((head.status().as_u16(), header(&head, "ratelimit-remaining")), (200, 1));
    assert_eq!(app.get_bearer("/v1/me", "ck_guessed").await.status(), 401, "the 30th");
    assert_problem(app.get("/v1/leaderboards/plays", None).await, 429, "rate-limited").await;
    assert_problem(app.get_bearer("/v1/me", "ck_guessed-again").await, 429, "rate-limited").await;
    // Health checks and signed webhooks are not counted.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    assert_eq!(app.deliver(&crate::support::play("rl-1")).await.status(), 202);
    app.stop().await;
}

/// Behind a trusted proxy each visitor has its own allowance, by the
/// address the proxy forwards; what a visitor writes into the header
/// itself changes nothing, and from anyone else the header is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_behind_a_trusted_proxy_are_limited_one_by_one() {
    let (url, _guard) = fresh_database(Backend::Sqlite).await;
    let (_behind, proxied) = start_binary_with(&url, &["--trusted-proxies", "10.0.0.0/8,127.0.0.1"]).await;
    let client = reqwest::Client::new();
    let get = |base: &str, forwarded: &str| {
        client
            .get(format!("{base}/v1/leaderboards/plays"))
            .header("x-forwarded-for", forwarded)
            .send()
    };
    for used in 1..=30 {
        // A visitor who writes a header of its own, as nginx passes it on.
        let forwarded = format!("198.51.100.{used}, 203.0.113.7");
        let response = get(&proxied, &forwarded).await.expect("sent");
        assert_eq!(response.status(), 200, "request {used}");
        assert_eq!(header(&response, "ratelimit-remaining"), 30 - used);
    }
    assert_problem(get(&proxied, "203.0.113.7").await.expect("sent"), 429, "rate-limited").await;
    let other = get(&proxied, "203.0.113.8, 10.1.2.3").await.expect("sent");
    assert_eq!(
        (other.status().as_u16(), header(&other, "ratelimit-remaining")),
        (200, 29),
        "another visitor, through two proxies"
    );

    let (url, _guard) = fresh_database(Backend::Sqlite).await;
    let (_direct, direct) = start_binary_with(&url, &[]).await;
    for used in 1..=30 {
        let response = get(&direct, &format!("203.0.113.{used}")).await.expect("sent");
        assert_eq!(header(&response, "ratelimit-remaining"), 30 - used, "one address");
    }
    assert_eq!(get(&direct, "203.0.113.99").await.expect("sent").status(), 429);
}

/// Two engine processes sharing PostgreSQL and Redis draw one session's
/// requests from one allowance: together they allow 60, not 120.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_allowance_through_redis() {
    let (url, _guard) = fresh_database(Backend::Postgres).await;
    let store = coliseum_store_postgres::PostgresStore::connect(&url)
        .await
        .expect("connect");
    let user = store
        .upsert_user(&NewUser {
            email: "shared@example.com".to_owned(),
            password_hash: String::new(),
            role: Role::Fan,
            plan: Plan::Free,
            artists: vec![],
            live_events: vec![],
        })
        .await
        .expect("user");
    let (token, token_hash) = coliseum_http::sessions::new_session_token();
    let now = time::OffsetDateTime::now_utc();
    store
        .create_session(
            &NewSession {
                token_hash,
                user_id: user.id,
                created_at: now,
                expires_at: now + time::Duration::hours(1),
            },
            &crate::support::set_up("session"),
        )
        .await
        .expect("session");
    let cookie = format!("{}={token}", coliseum_http::sessions::SESSION_COOKIE);
    let redis = ["--redis-url", "redis://127.0.0.1:6379"];
    let (_first, a) = start_binary_with(&url, &redis).await;
    let (_second, b) = start_binary_with(&url, &[&redis[..], &["--process", "false"]].concat()).await;

    let client = reqwest::Client::new();
    let mut remaining = Vec::new();
    for used in 1..=60 {
        let base = if used % 2 == 0 { &a } else { &b };
        let response = client
            .get(format!("{base}/v1/leaderboards/plays"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200, "request {used}");
        remaining.push(header(&response, "ratelimit-remaining"));
    }
    assert_eq!(
        remaining,
        (0..60).rev().collect::<Vec<u64>>(),
        "one count across both processes"
    );
    for base in [&a, &b] {
        let refused = client
            .get(format!("{base}/v1/leaderboards/plays"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("sent");
        assert_eq!(refused.status(), 429, "{base}");
        assert!(header(&refused, "retry-after") >= 1);
    }
}

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
use crate::support::{Backend, fresh_database, signed_headers};

on_both_backends!(revenue_at_its_limits_stays_exact_through_reads_a_restart_and_a_rebuild);

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
        let head = store.log_stats().await.expect("stats").head_seq;
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
    let store = coliseum_server::app::open_store(&url).await.expect("open the store");
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
    let key = coliseum_server::credentials::new_api_key();
    store
        .create_api_key(&NewApiKey {
            user_id: user.id,
            name: "money".to_owned(),
            key_hash: key.hash,
            prefix: key.prefix,
            created_at: OffsetDateTime::now_utc(),
        })
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

//! Several `coliseum serve` processes on one PostgreSQL: one processes (it
//! holds the lead), the others follow the batches it applies and serve the
//! same figures; when it is killed, another takes over and every
//! acknowledged entry is counted once. And one SQLite file has one node.

use std::time::{Duration, Instant};

use coliseum_domain::plans::{Plan, Role};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::process::{Load, derived, start_binary};
use crate::support::{Backend, fresh_database, play, signed_headers};

/// An Enterprise admin's API key, made in the store the nodes share.
pub async fn admin_key(url: &str) -> String {
    let store = coliseum_http::app::open_store(url).await.expect("open the store");
    let user = store
        .upsert_user(&coliseum_store::NewUser {
            email: "operator@coliseum.test".to_owned(),
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
            &coliseum_store::NewApiKey {
                user_id: user.id,
                name: "cluster".to_owned(),
                key_hash: key.hash,
                prefix: key.prefix,
                created_at: time::OffsetDateTime::now_utc(),
            },
            &|_: &coliseum_store::ApiKey| None,
        )
        .await
        .expect("key");
    key.key
}

async fn read(client: &reqwest::Client, base: &str, path: &str, key: &str) -> Value {
    let response = client
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200, "{base}{path}");
    response.json().await.expect("json")
}

async fn processes(client: &reqwest::Client, base: &str, key: &str) -> bool {
    read(client, base, "/v1/admin/pipeline", key).await["this_node_processes"]
        .as_bool()
        .expect("this_node_processes")
}

/// Waits (bounded) until `base` serves figures up to `seq`.
async fn caught_up(client: &reqwest::Client, base: &str, key: &str, seq: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while read(client, base, "/v1/kpis?range=24h", key).await["watermark"].as_i64() < Some(seq) {
        assert!(Instant::now() < deadline, "{base} did not reach {seq}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A body without what each node states for itself: how far it knows the
/// figures complete (`as_of`, and a relative range's `to`), and cursors
/// naming its own snapshots.
fn shared_part(mut body: Value) -> Value {
    let object = body.as_object_mut().expect("an object");
    object.remove("as_of");
    object.remove("next_cursor");
    if let Some(range) = object.get_mut("range").and_then(Value::as_object_mut) {
        range.remove("to");
    }
    body
}

async fn deliver(client: &reqwest::Client, base: &str, events: &[Value]) {
    let body = json!({"events": events}).to_string().into_bytes();
    let mut request = client
        .post(format!("{base}/v1/passport/events"))
        .header("content-type", "application/json");
    for (name, value) in signed_headers(&body) {
        request = request.header(name, value);
    }
    assert_eq!(request.body(body).send().await.expect("sent").status(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_one_postgres_serve_the_same_figures_and_one_takes_over() {
    let (url, _guard) = fresh_database(Backend::Postgres).await;
    let client = reqwest::Client::new();
    let key = admin_key(&url).await;
    let (mut first, first_base) = start_binary(&url).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes(&client, &first_base, &key).await {
        assert!(Instant::now() < deadline, "the first node did not take the lead");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_second, second_base) = start_binary(&url).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !processes(&client, &second_base, &key).await,
        "one node processes at a time"
    );

    // Entries sent to the follower are processed by the leader; both serve them.
    let events: Vec<Value> = (0..600)
        .map(|i| {
            let mut event = play(&format!("cluster-{i}"));
            event["artist_id"] = json!(format!("art_{}", i % 7));
            event["metadata"]["city"] = json!(["Lagos", "Accra", "Nairobi"][i % 3]);
            event
        })
        .collect();
    for chunk in events.chunks(100) {
        deliver(&client, &second_base, chunk).await;
    }
    let store = coliseum_http::app::open_store(&url).await.expect("open the store");
    let head = store.head_seq().await.expect("head");
    caught_up(&client, &first_base, &key, head).await;
    caught_up(&client, &second_base, &key, head).await;
    for path in [
        "/v1/kpis?range=24h",
        "/v1/kpis?range=7d&bucket=day&city=accra",
        "/v1/leaderboards/plays?range=24h&limit=100",
        "/v1/leaderboards/engagement?range=30d&city=lagos",
        "/v1/leaderboards/plays/around/art_3?range=24h&n=2",
    ] {
        let (on_first, on_second) = (
            read(&client, &first_base, path, &key).await,
            read(&client, &second_base, path, &key).await,
        );
        assert_eq!(on_first["watermark"], head, "{path}: {on_first}");
        assert_eq!(shared_part(on_first), shared_part(on_second), "{path}");
    }
    let totals = read(&client, &second_base, "/v1/kpis?range=24h", &key).await;
    assert_eq!(totals["totals"]["plays"], 600);

    // The processing node dies under load: the other takes over.
    let load = Load::start(&client, &second_base);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    first.start_kill().expect("SIGKILL sent");
    let _ = first.wait().await;
    let killed = Instant::now();
    while !processes(&client, &second_base, &key).await {
        assert!(killed.elapsed() < Duration::from_secs(15), "no node took over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took_over = killed.elapsed();
    println!(
        "the second node processes {} ms after the first was killed",
        took_over.as_millis()
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (_, acknowledged) = load.finish().await;
    assert!(
        acknowledged.len() > 100,
        "the load was under way: {}",
        acknowledged.len()
    );

    // Every acknowledged entry is counted once, in the store and in memory.
    let head = store.head_seq().await.expect("head");
    caught_up(&client, &second_base, &key, head).await;
    let entries = store.count_entries().await.expect("count");
    assert!(entries >= 600 + acknowledged.len() as i64);
    let (cells, _) = derived(&url).await;
    let plays: i64 = cells
        .iter()
        .filter(|(k, _)| k.grain == coliseum_store::Grain::Hour)
        .map(|(_, v)| v.plays)
        .sum();
    assert_eq!(plays, entries, "each stored entry counted once");
    let totals = read(&client, &second_base, "/v1/kpis?range=24h", &key).await;
    assert_eq!(totals["totals"]["plays"], entries, "the new processing node's figures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_one_sqlite_file_is_refused() {
    let (url, _guard) = fresh_database(Backend::Sqlite).await;
    let (_first, _) = start_binary(&url).await;
    let second = Command::new(env!("CARGO_BIN_EXE_coliseum"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
        .env("COLISEUM_PASSPORT_WEBHOOK_SECRET", crate::support::SECRET)
        .output()
        .await
        .expect("the binary runs");
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("one node"), "{said}");
}

//! The real `coliseum` binary killed with SIGKILL in the middle of a load:
//! after a restart, no acknowledged entry is lost and none is stored twice.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::on_both_backends;
use crate::support::{Backend, SECRET, fresh_database, play, signed_headers};

on_both_backends!(
    sigkill_mid_load_loses_no_acknowledged_entry_and_stores_none_twice,
    sigkill_while_processing_counts_every_entry_once_and_rebuild_agrees,
    sigterm_answers_requests_in_flight_and_commits_them_before_exiting,
);

/// Starts `coliseum serve` on a free port; returns the child and its base URL.
pub async fn start_binary(database_url: &str) -> (Child, String) {
    start_binary_with(database_url, &[]).await
}

/// Starts `coliseum serve` with more flags.
pub async fn start_binary_with(database_url: &str, flags: &[&str]) -> (Child, String) {
    start_binary_in(database_url, flags, &[]).await
}

/// Starts `coliseum serve` with more flags and environment variables.
pub async fn start_binary_in(database_url: &str, flags: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coliseum"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", database_url])
        .args(flags)
        .envs(env.iter().copied())
        .env("COLISEUM_PASSPORT_WEBHOOK_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the server announces its address within 60 s")
            .expect("readable stdout")
            .expect("the server is still running");
        if let Some(rest) = line.strip_prefix("coliseum listening on ") {
            break rest.split_whitespace().next().expect("an address").to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

async fn post(client: &reqwest::Client, base: &str, ids: &[String]) -> Result<Value, String> {
    let events: Vec<Value> = ids.iter().map(|id| play(id)).collect();
    let body = json!({"events": events}).to_string().into_bytes();
    let mut request = client
        .post(format!("{base}/v1/passport/events"))
        .header("content-type", "application/json");
    for (name, value) in signed_headers(&body) {
        request = request.header(name, value);
    }
    let response = request.body(body).send().await.map_err(|e| e.to_string())?;
    if response.status() != 202 {
        return Err(format!("status {}", response.status()));
    }
    response.json().await.map_err(|e| e.to_string())
}

async fn sigkill_mid_load_loses_no_acknowledged_entry_and_stores_none_twice(backend: Backend) {
    let (url, _guard) = fresh_database(backend).await;
    let (mut child, base) = start_binary(&url).await;
    let client = reqwest::Client::new();
    let load = Load::start(&client, &base);

    // Let the load build up, then kill without warning.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.start_kill().expect("SIGKILL sent");
    let _ = child.wait().await;
    let (attempted, acknowledged) = load.finish().await;
    assert!(
        acknowledged.len() > 100,
        "the load was under way: {} acknowledged",
        acknowledged.len()
    );

    // Restart on the same database and deliver everything attempted again.
    let (_child, base) = start_binary(&url).await;
    for chunk in attempted.chunks(500) {
        let answer = post(&client, &base, chunk).await.expect("delivered after the restart");
        for result in answer["results"].as_array().expect("results") {
            let id = result["event_id"].as_str().unwrap_or_default();
            if acknowledged.contains(id) {
                assert_eq!(
                    result["status"], "duplicate",
                    "{id} was acknowledged before the kill, so it must be stored"
                );
            }
        }
    }
    let stored = stored_ids(&url).await;
    let distinct: BTreeSet<&String> = stored.iter().collect();
    assert_eq!(distinct.len(), stored.len(), "no entry is stored twice");
    assert_eq!(
        stored.len(),
        attempted.len(),
        "every attempted entry is now stored exactly once"
    );
}

async fn sigterm_answers_requests_in_flight_and_commits_them_before_exiting(backend: Backend) {
    let (url, _guard) = fresh_database(backend).await;
    let (mut child, base) = start_binary(&url).await;
    let client = reqwest::Client::new();
    let load = Load::start(&client, &base);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let pid = child.id().expect("running");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits within 30 s")
        .expect("status");
    assert!(status.success(), "a graceful stop exits 0, got {status}");
    let (_, acknowledged) = load.finish().await;
    assert!(
        acknowledged.len() > 100,
        "the load was under way: {} acknowledged",
        acknowledged.len()
    );
    let stored: BTreeSet<String> = stored_ids(&url).await.into_iter().collect();
    let missing: Vec<&String> = acknowledged.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(missing.is_empty(), "acknowledged but not stored: {missing:?}");
}

/// Every rollup cell and fan-day, sorted.
pub async fn derived(url: &str) -> (Vec<(coliseum_store::CellKey, coliseum_domain::kpi::Kpis)>, usize) {
    let store = coliseum_http::app::open_store(url).await.expect("open the store");
    let mut cells = store
        .kpi_cells(coliseum_store::Grain::Hour, i64::MIN, i64::MAX)
        .await
        .expect("hours");
    cells.extend(
        store
            .kpi_cells(coliseum_store::Grain::Day, i64::MIN, i64::MAX)
            .await
            .expect("days"),
    );
    cells.sort_by(|a, b| a.0.cmp(&b.0));
    let fan_days = store.fan_days(i64::MIN, i64::MAX).await.expect("fan days").len();
    (cells, fan_days)
}

async fn sigkill_while_processing_counts_every_entry_once_and_rebuild_agrees(backend: Backend) {
    let (url, _guard) = fresh_database(backend).await;
    let (mut child, base) = start_binary(&url).await;
    let client = reqwest::Client::new();
    let load = Load::start(&client, &base);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.start_kill().expect("SIGKILL sent");
    let _ = child.wait().await;
    load.finish().await;

    // The restarted engine processes what the killed one had not.
    let (mut child, _base) = start_binary(&url).await;
    let store = coliseum_http::app::open_store(&url).await.expect("open the store");
    let head = store.head_seq().await.expect("head");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while store.pipeline_state().await.expect("state").processed_seq < head {
        assert!(std::time::Instant::now() < deadline, "the processor did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().expect("SIGKILL sent");
    let _ = child.wait().await;

    // Every stored entry is a full play: each is counted exactly once, in its hour and its day.
    let entries = store.count_entries().await.expect("count");
    assert!(entries > 100, "the load was under way: {entries} entries");
    let (incremental, fan_days) = derived(&url).await;
    for grain in [coliseum_store::Grain::Hour, coliseum_store::Grain::Day] {
        let plays: i64 = incremental
            .iter()
            .filter(|(k, _)| k.grain == grain)
            .map(|(_, v)| v.plays)
            .sum();
        assert_eq!(plays, entries, "{grain:?} cells count every entry once");
    }

    let rebuild = Command::new(env!("CARGO_BIN_EXE_coliseum"))
        .args(["rebuild", "--database-url", &url])
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("coliseum rebuild runs");
    assert!(rebuild.status.success(), "{}", String::from_utf8_lossy(&rebuild.stderr));
    assert!(String::from_utf8_lossy(&rebuild.stdout).contains(&format!("rebuilt from {entries} entries")));
    assert_eq!(
        derived(&url).await,
        (incremental, fan_days),
        "a rebuild from the log gives the same rollups"
    );
}

/// Every event id in the log, in seq order.
async fn stored_ids(url: &str) -> Vec<String> {
    let store = coliseum_http::app::open_store(url).await.expect("open the store");
    let mut stored = Vec::new();
    let mut cursor = 0;
    loop {
        let page = store.read_after(cursor, 1000).await.expect("read");
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        stored.extend(page.into_iter().map(|s| s.entry.event_id));
    }
    stored
}

/// Sixteen clients delivering small batches until stopped or refused.
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<(Vec<String>, Vec<String>)>>,
}

impl Load {
    pub fn start(client: &reqwest::Client, base: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..16)
            .map(|worker| {
                let (client, base, stop) = (client.clone(), base.to_owned(), stop.clone());
                tokio::spawn(async move {
                    let (mut attempted, mut acknowledged) = (Vec::new(), Vec::new());
                    for round in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        // Each delivery repeats one id of the previous one, so duplicates are in the mix.
                        let mut ids: Vec<String> =
                            (0..1 + round % 5).map(|i| format!("k-{worker}-{round}-{i}")).collect();
                        if round > 0 {
                            ids.push(format!("k-{worker}-{}-0", round - 1));
                        }
                        attempted.extend(ids.iter().cloned());
                        let Ok(answer) = post(&client, &base, &ids).await else {
                            break;
                        };
                        for result in answer["results"].as_array().into_iter().flatten() {
                            if matches!(result["status"].as_str(), Some("accepted" | "duplicate")) {
                                acknowledged.push(result["event_id"].as_str().unwrap_or_default().to_owned());
                            }
                        }
                    }
                    (attempted, acknowledged)
                })
            })
            .collect();
        Self { stop, workers }
    }

    /// Stops the clients; returns every id attempted and every id acknowledged.
    pub async fn finish(self) -> (Vec<String>, BTreeSet<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut attempted, mut acknowledged) = (BTreeSet::new(), BTreeSet::new());
        for worker in self.workers {
            let (a, k) = worker.await.expect("worker");
            attempted.extend(a);
            acknowledged.extend(k);
        }
        (attempted.into_iter().collect(), acknowledged)
    }
}

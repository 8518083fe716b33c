//! `coliseum bench ingest`: signed Passport webhooks over real HTTP on
//! loopback against a `coliseum serve` child process (so the load generator
//! is a separate process), with durable commits, on SQLite and PostgreSQL.
//!
//! Scenarios: single-entry deliveries at 64 and 512 connections; batches of
//! 100 and 1000; a replay of already-stored entries; an overload far beyond
//! the ingest queue. In the same run, the baseline a plain deployment would
//! use: one `INSERT … ON CONFLICT DO NOTHING` per delivery, committed on its
//! own, from the same number of concurrent clients, straight to the database
//! (no HTTP at all, which favours the baseline).

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use coliseum_signatures::passport::WebhookKey;

#[derive(Debug, Clone, clap::Args)]
pub struct IngestBenchArgs {
    /// sqlite, postgres or both.
    #[arg(long, default_value = "both")]
    pub backend: String,
    /// Seconds each load scenario runs.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Entries delivered, then delivered again, in the replay scenario.
    #[arg(long, default_value_t = 1_000_000)]
    pub replay_entries: u64,
    /// Comma-separated scenarios (default all): single-64, single-512, batch-100, batch-1000, replay,
    /// slow-clients, overload.
    #[arg(long)]
    pub scenarios: Option<String>,
    /// Where benchmark databases are created on PostgreSQL.
    #[arg(
        long,
        env = "COLISEUM_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres_url: String,
    /// Runs of each load scenario; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Database connections the baseline's clients share (PostgreSQL allows 100 by default).
    #[arg(long, default_value_t = 64)]
    pub baseline_connections: u32,
    /// Runs the processor in the engine under test too. Off by default: this
    /// measures ingestion, as an ingest-only node (`--process false`) does it.
    #[arg(long)]
    pub with_processor: bool,
}

const ALL_SCENARIOS: &[&str] = &[
    "single-64",
    "single-512",
    "batch-100",
    "batch-1000",
    "replay",
    "slow-clients",
    "overload",
];

/// The slow-client scenario's attack: connections that trickle a body, and
/// connections that send nothing.
const SLOW_BODIES: usize = 250;
const IDLE_CONNECTIONS: usize = 250;

/// One measured run.
#[derive(Debug, Clone, Default)]
pub(super) struct Measured {
    pub(super) requests: u64,
    pub(super) entries: u64,
    refused: u64,
    /// Requests whose connection closed before an answer (under overload the
    /// server answers 503 before reading the body, and closes the connection).
    dropped: u64,
    pub(super) failed: u64,
    /// Entries of answered deliveries that the engine did not accept (a
    /// duplicate, a rejection), as each response's body says.
    not_accepted: u64,
    pub(super) seconds: f64,
    pub(super) latencies_us: Vec<u64>,
}

impl Measured {
    /// Adds another client's counts to these.
    pub(super) fn absorb(&mut self, other: Measured) {
        self.requests += other.requests;
        self.entries += other.entries;
        self.refused += other.refused;
        self.dropped += other.dropped;
        self.failed += other.failed;
        self.not_accepted += other.not_accepted;
        self.latencies_us.extend(other.latencies_us);
    }

    pub(super) fn entries_per_s(&self) -> f64 {
        self.entries as f64 / self.seconds
    }

    pub(super) fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index] as f64 / 1000.0
    }
}

pub async fn run(args: IngestBenchArgs) -> anyhow::Result<()> {
    let scenarios: Vec<String> = match &args.scenarios {
        Some(list) => list.split(',').map(|s| s.trim().to_owned()).collect(),
        None => ALL_SCENARIOS.iter().map(|s| (*s).to_owned()).collect(),
    };
    if let Some(unknown) = scenarios.iter().find(|s| !ALL_SCENARIOS.contains(&s.as_str())) {
        bail!("unknown scenario `{unknown}`; known: {}", ALL_SCENARIOS.join(", "));
    }
    let backends: Vec<&str> = match args.backend.as_str() {
        "both" => vec!["sqlite", "postgres"],
        "sqlite" => vec!["sqlite"],
        "postgres" => vec!["postgres"],
        other => bail!("--backend must be sqlite, postgres or both, not `{other}`"),
    };
    println!(
        "# coliseum bench ingest — {} s per scenario, {} cores, processor {}",
        args.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if args.with_processor {
            "running in the engine under test"
        } else {
            "off (an ingest-only node)"
        }
    );
    println!();
    println!(
        "| backend | scenario | connections | entries/request | accepted entries/s | p50 ms | p95 ms | p99 ms | 503s | dropped | errors | note |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for backend in backends {
        run_backend(&args, backend, &scenarios).await?;
    }
    Ok(())
}

/// A fresh database for one backend, removed when dropped.
pub(super) struct BenchDatabase {
    pub(super) url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Directory(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl BenchDatabase {
    pub(super) async fn create(backend: &str, postgres_url: &str, label: &str) -> anyhow::Result<Self> {
        if backend == "sqlite" {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            return Ok(Self {
                url,
                cleanup: Cleanup::Directory(dir),
            });
        }
        let name = format!("coliseum_bench_{label}_{}", std::process::id());
        let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(postgres_url)
            .await
            .with_context(|| format!("PostgreSQL is not reachable at {postgres_url}"))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut connection)
        .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut connection)
            .await?;
        let base = postgres_url.rsplit_once('/').map_or(postgres_url, |(base, _)| base);
        Ok(Self {
            url: format!("{base}/{name}"),
            cleanup: Cleanup::Postgres {
                admin_url: postgres_url.to_owned(),
                name,
            },
        })
    }

    /// Leaves the database in place; returns its URL.
    pub(super) fn keep(self) -> String {
        if let Cleanup::Directory(dir) = self.cleanup {
            let _ = dir.keep();
        }
        self.url
    }

    pub(super) async fn drop_now(self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup
            && let Ok(mut connection) = <sqlx::PgConnection as sqlx::Connection>::connect(admin_url).await
        {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut connection).await;
        }
    }
}

/// The engine under test, as a child process.
pub(super) struct Server {
    child: Child,
    pub(super) base_url: String,
}

impl Server {
    pub(super) async fn start(database_url: &str, secret: &str, process: bool, extra: &[&str]) -> anyhow::Result<Self> {
        let exe = crate::coliseum_binary()?;
        let mut child = Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", database_url])
            .args(["--process", if process { "true" } else { "false" }])
            // The load generator stands for many callers behind one address:
            // per-IP and per-session limits would measure the limiter, not the reads.
            .args(["--rate-limits", "false"])
            .args(extra)
            .env("COLISEUM_PASSPORT_WEBHOOK_SECRET", secret)
            // The generator's payments come in these currencies.
            .env("COLISEUM_FX_RATES", coliseum_traffic::FX_RATES)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting coliseum serve")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            // Loading the hot state and the DNA aggregates of a large data set takes a while.
            let line = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
                .await
                .context("the server did not start within 300 s")??
                .context("the server exited before listening")?;
            if let Some(rest) = line.strip_prefix("coliseum listening on ") {
                let url = rest.split_whitespace().next().unwrap_or_default();
                break url.trim_start_matches("http://").to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            base_url: address,
        })
    }

    pub(super) fn peak_rss_mib(&self) -> Option<f64> {
        self.status_mib("VmHWM:")
    }

    /// CPU time the engine has used (user and system), in seconds.
    pub(super) fn cpu_seconds(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command's name, which may hold spaces, in parentheses.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // Linux reports CPU time in USER_HZ, 100 on every architecture it runs on.
        Some(ticks / 100.0)
    }

    /// Resident memory now.
    pub(super) fn rss_mib(&self) -> Option<f64> {
        self.status_mib("VmRSS:")
    }

    fn status_mib(&self, field: &str) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    pub(super) async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SIGTERM: a graceful stop, as an operator would.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

async fn run_backend(args: &IngestBenchArgs, backend: &str, scenarios: &[String]) -> anyhow::Result<()> {
    let (key, secret) = WebhookKey::generate();
    let key = Arc::new(key);
    let database = BenchDatabase::create(backend, &args.postgres_url, "engine").await?;
    let server = Server::start(&database.url, &secret, args.with_processor, &[]).await?;
    let duration = Duration::from_secs(args.seconds);
    let row = |scenario: &str, connections: usize, batch: usize, m: &Measured, note: String| {
        println!(
            "| {backend} | {scenario} | {connections} | {batch} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {note} |",
            m.entries_per_s(),
            m.percentile_ms(0.5),
            m.percentile_ms(0.95),
            m.percentile_ms(0.99),
            m.refused,
            m.dropped,
            m.failed
        );
    };

    for scenario in scenarios {
        let (connections, batch) = match scenario.as_str() {
            "single-64" => (64, 1),
            "single-512" => (512, 1),
            "batch-100" => (64, 100),
            "batch-1000" => (32, 1000),
            _ => continue,
        };
        // Each run alternates engine and baseline, so both see the same machine;
        // the run with the median engine rate is reported, with its own baseline.
        let mut runs = Vec::new();
        for _ in 0..args.repeat.max(1) {
            let measured = load(
                &server.base_url,
                &key,
                scenario,
                connections,
                batch,
                Load::For(duration),
            )
            .await?;
            let mut baselines = Vec::new();
            if batch == 1 {
                for pool_size in baseline_pools(backend, connections, args.baseline_connections) {
                    let measured = baseline(backend, &args.postgres_url, connections, pool_size, duration).await?;
                    baselines.push((pool_size, measured));
                }
            }
            runs.push((measured, baselines));
        }
        runs.sort_by(|a, b| a.0.entries_per_s().total_cmp(&b.0.entries_per_s()));
        let rates: Vec<String> = runs.iter().map(|(m, _)| format!("{:.0}", m.entries_per_s())).collect();
        let (measured, baselines) = runs.swap_remove(runs.len() / 2);
        let mut note = format!("median of {} runs ({})", rates.len(), rates.join(", "));
        if measured.not_accepted > 0 {
            note.push_str(&format!("; **{} entries not accepted**", measured.not_accepted));
        }
        for (pool_size, baseline) in baselines {
            note.push_str(&format!(
                "; baseline (1 INSERT per delivery, {pool_size} DB connections): {:.0}/s, p99 {:.1} ms → **{:.1}×**",
                baseline.entries_per_s(),
                baseline.percentile_ms(0.99),
                measured.entries_per_s() / baseline.entries_per_s().max(1.0)
            ));
        }
        row(scenario, connections, batch, &measured, note);
    }

    if scenarios.iter().any(|s| s == "replay") {
        let total = args.replay_entries;
        let first = load(&server.base_url, &key, "replay", 8, 1000, Load::Entries(total)).await?;
        let store = coliseum_http::app::open_store(&database.url).await?;
        let head_before = store.head_seq().await?;
        let count_before = store.count_entries().await?;
        let again = load(&server.base_url, &key, "replay", 8, 1000, Load::Entries(total)).await?;
        let head_after = store.head_seq().await?;
        let count_after = store.count_entries().await?;
        let unchanged = head_before == head_after && count_before == count_after;
        row("replay: first delivery", 8, 1000, &first, format!("{total} entries"));
        let mut replay = again.clone();
        replay.entries = total;
        row(
            "replay: same entries again",
            8,
            1000,
            &replay,
            format!(
                "all duplicates; store unchanged: {unchanged} (head {head_before}→{head_after}, rows {count_before}→{count_after}); {:.2}× first delivery",
                replay.entries_per_s() / first.entries_per_s().max(1.0)
            ),
        );
    }
    if scenarios.iter().any(|s| s == "slow-clients") {
        slow_clients(args, &server, &key, &row).await?;
    }
    let rss_before_overload = server.peak_rss_mib();
    server.stop().await;

    if scenarios.iter().any(|s| s == "overload") {
        // A small queue makes the overload reach it; 512 connections × 1000 entries
        // offer 10× what the queue may hold.
        let overload_db = BenchDatabase::create(backend, &args.postgres_url, "overload").await?;
        let server = Server::start(
            &overload_db.url,
            &secret,
            args.with_processor,
            &["--ingest-queue-entries", "51200"],
        )
        .await?;
        let measured = load(&server.base_url, &key, "overload", 512, 1000, Load::For(duration)).await?;
        let alive = reqwest::get(format!("http://{}/healthz", server.base_url))
            .await
            .is_ok_and(|r| r.status().is_success());
        let rss = server.peak_rss_mib().unwrap_or(0.0);
        row(
            "overload (queue 51,200 entries, 512 × 1000 offered)",
            512,
            1000,
            &measured,
            format!(
                "peak RSS {rss:.0} MiB (before: {:.0} MiB in the runs above); still healthy afterwards: {alive}",
                rss_before_overload.unwrap_or(0.0)
            ),
        );
        server.stop().await;
        overload_db.drop_now().await;
    } else if let Some(rss) = rss_before_overload {
        println!("| {backend} | peak RSS | | | | | | | | | | {rss:.0} MiB |");
    }
    database.drop_now().await;
    Ok(())
}

/// Signed deliveries (64 connections, 100 entries each) alone, then while
/// 500 hostile connections are held open from another address, in turns;
/// the run with the median ratio is reported.
async fn slow_clients(
    args: &IngestBenchArgs,
    server: &Server,
    key: &Arc<WebhookKey>,
    row: &impl Fn(&str, usize, usize, &Measured, String),
) -> anyhow::Result<()> {
    let duration = Duration::from_secs(args.seconds);
    let mut runs = Vec::new();
    for run in 0..args.repeat.max(1) {
        let alone = load(
            &server.base_url,
            key,
            &format!("slow-alone-{run}"),
            64,
            100,
            Load::For(duration),
        )
        .await?;
        let attack = super::attack::Attack::start(&server.base_url, SLOW_BODIES, IDLE_CONNECTIONS)?;
        // Let the attack take hold before measuring.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let attacked = load(
            &server.base_url,
            key,
            &format!("slow-attacked-{run}"),
            64,
            100,
            Load::For(duration),
        )
        .await?;
        let held = attack.stop().await;
        runs.push((alone, attacked, held));
    }
    let ratio = |(alone, attacked, _): &(Measured, Measured, (u64, u64))| {
        attacked.entries_per_s() / alone.entries_per_s().max(1.0)
    };
    runs.sort_by(|a, b| ratio(a).total_cmp(&ratio(b)));
    let ratios: Vec<String> = runs.iter().map(|r| format!("{:.2}", ratio(r))).collect();
    let median = runs.swap_remove(runs.len() / 2);
    let (alone, attacked, (opened, closed)) = &median;
    row(
        "slow-clients: signed deliveries alone",
        64,
        100,
        alone,
        "the same run's reference".to_owned(),
    );
    row(
        &format!(
            "slow-clients: the same with {SLOW_BODIES} trickling bodies and {IDLE_CONNECTIONS} idle connections held from another address"
        ),
        64,
        100,
        attacked,
        format!(
            "**{:.2}×** alone (p99 {:.1} vs {:.1} ms); median of {} runs ({}); {opened} hostile connections opened, {closed} closed by the server",
            ratio(&median),
            attacked.percentile_ms(0.99),
            alone.percentile_ms(0.99),
            ratios.len(),
            ratios.join(", ")
        ),
    );
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Load {
    /// Run for this long.
    For(Duration),
    /// Deliver exactly this many entries (ids 0..n), however long it takes.
    Entries(u64),
}

/// A small pool of realistic envelopes whose `event_id` is filled in per request.
fn templates() -> Vec<String> {
    let mut generator = coliseum_traffic::Generator::new(coliseum_traffic::GeneratorConfig {
        artists: 1000,
        days: 1,
        seed: 42,
        until: time::OffsetDateTime::now_utc(),
        total: 512,
    });
    (0..512)
        .map(|_| {
            let mut envelope = generator.next_historical();
            envelope["event_id"] = json!("@ID@");
            envelope.to_string()
        })
        .collect()
}

async fn load(
    base_url: &str,
    key: &Arc<WebhookKey>,
    label: &str,
    connections: usize,
    batch: usize,
    load: Load,
) -> anyhow::Result<Measured> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(60))
        .build()?;
    let url = format!("http://{base_url}/v1/passport/events");
    let templates = Arc::new(templates());
    let next_id = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let run_id = format!(
        "{label}-{:x}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() & 0xffff_ffff
    );
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, key, templates, next_id, stop) = (
                client.clone(),
                url.clone(),
                key.clone(),
                templates.clone(),
                next_id.clone(),
                stop.clone(),
            );
            let prefix = if matches!(load, Load::Entries(_)) {
                label.to_owned()
            } else {
                run_id.clone()
            };
            tokio::spawn(async move {
                let mut m = Measured::default();
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let first = next_id.fetch_add(batch as u64, Ordering::Relaxed);
                    let count = match load {
                        Load::Entries(total) if first >= total => break,
                        Load::Entries(total) => (total - first).min(batch as u64),
                        Load::For(_) => batch as u64,
                    };
                    let envelopes: Vec<String> = (first..first + count)
                        .map(|id| {
                            templates[(id % templates.len() as u64) as usize].replace("@ID@", &format!("{prefix}-{id}"))
                        })
                        .collect();
                    let body = if count == 1 {
                        envelopes[0].clone()
                    } else {
                        format!("{{\"events\":[{}]}}", envelopes.join(","))
                    };
                    let webhook_id = format!("msg-{prefix}-{first}");
                    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
                    let signature = key.sign(&webhook_id, timestamp, body.as_bytes());
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("webhook-id", webhook_id)
                        .header("webhook-timestamp", timestamp.to_string())
                        .header("webhook-signature", signature)
                        .body(body)
                        .send()
                        .await;
                    let (status, accepted) = match response {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let body = response.bytes().await.unwrap_or_default();
                            (status, accepted_entries(&body))
                        }
                        Err(_) => (0, None),
                    };
                    m.latencies_us.push(sent.elapsed().as_micros() as u64);
                    m.requests += 1;
                    match (status, accepted) {
                        // Counted as the engine says, not as sent.
                        (202, Some(accepted)) => {
                            m.entries += accepted;
                            m.not_accepted += count.saturating_sub(accepted);
                        }
                        (503, _) => m.refused += 1,
                        (0, _) => m.dropped += 1,
                        _ => m.failed += 1,
                    }
                }
                m
            })
        })
        .collect();
    if let Load::For(duration) = load {
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Relaxed);
    }
    let mut total = Measured::default();
    for task in tasks {
        total.absorb(task.await?);
    }
    total.seconds = started.elapsed().as_secs_f64();
    Ok(total)
}

/// The `accepted` count of a delivery's answer; `None` when the body is not one.
fn accepted_entries(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("accepted")?
        .as_u64()
}

/// Database connections of the baselines: on PostgreSQL one per client up to
/// `max`; on SQLite, which has one writer, four (the usual small pool) and one
/// (no contention for the write lock at all), both reported.
pub(super) fn baseline_pools(backend: &str, clients: usize, max: u32) -> Vec<u32> {
    if backend == "sqlite" {
        vec![4, 1]
    } else {
        vec![max.min(clients as u32)]
    }
}

/// One `INSERT … ON CONFLICT DO NOTHING` per delivery, each its own
/// transaction, from `clients` concurrent clients sharing a connection pool.
async fn baseline(
    backend: &str,
    postgres_url: &str,
    clients: usize,
    pool_size: u32,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let database = BenchDatabase::create(backend, postgres_url, "baseline").await?;
    let envelope = templates().swap_remove(0);
    let measured = if backend == "sqlite" {
        let options: sqlx::sqlite::SqliteConnectOptions = database.url.parse()?;
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(pool_size)
            .connect_with(
                options
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(30)),
            )
            .await?;
        sqlx::raw_sql(
            "CREATE TABLE baseline_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, \
             entry_type TEXT NOT NULL, ts_us INTEGER NOT NULL, user_id TEXT, artist_id TEXT, envelope TEXT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        drive_baseline(clients, duration, envelope, move |id, envelope| {
            let pool = pool.clone();
            async move {
                sqlx::query(
                    "INSERT INTO baseline_events (event_id, entry_type, ts_us, user_id, artist_id, envelope) \
                     VALUES ($1, 'audio.play', $2, 'fan_1', 'art_1', $3) ON CONFLICT (event_id) DO NOTHING",
                )
                .bind(id)
                .bind(time::OffsetDateTime::now_utc().unix_timestamp())
                .bind(envelope)
                .execute(&pool)
                .await
                .is_ok()
            }
        })
        .await
    } else {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(pool_size)
            .connect(&database.url)
            .await?;
        sqlx::raw_sql(
            "CREATE TABLE baseline_events (seq BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, \
             entry_type TEXT NOT NULL, ts TIMESTAMPTZ NOT NULL, user_id TEXT, artist_id TEXT, envelope TEXT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        drive_baseline(clients, duration, envelope, move |id, envelope| {
            let pool = pool.clone();
            async move {
                sqlx::query(
                    "INSERT INTO baseline_events (event_id, entry_type, ts, user_id, artist_id, envelope) \
                     VALUES ($1, 'audio.play', now(), 'fan_1', 'art_1', $2) ON CONFLICT (event_id) DO NOTHING",
                )
                .bind(id)
                .bind(envelope)
                .execute(&pool)
                .await
                .is_ok()
            }
        })
        .await
    };
    database.drop_now().await;
    Ok(measured)
}

async fn drive_baseline<F, Fut>(clients: usize, duration: Duration, envelope: String, insert: F) -> Measured
where
    F: Fn(String, String) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    closed_loop(clients, duration, move |n| {
        insert(format!("baseline-{n}"), envelope.clone())
    })
    .await
}

/// `clients` concurrent loops, each calling `op` (with a number unique
/// across them) again as soon as it answers, for `duration`; `op` says
/// whether the call succeeded.
pub(super) async fn closed_loop<F, Fut>(clients: usize, duration: Duration, op: F) -> Measured
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (op, stop, next) = (op.clone(), stop.clone(), next.clone());
            tokio::spawn(async move {
                let mut m = Measured::default();
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let sent = Instant::now();
                    let ok = op(n).await;
                    m.latencies_us.push(sent.elapsed().as_micros() as u64);
                    m.requests += 1;
                    if ok { m.entries += 1 } else { m.failed += 1 }
                }
                m
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Measured::default();
    for task in tasks {
        if let Ok(m) = task.await {
            total.absorb(m);
        }
    }
    total.seconds = started.elapsed().as_secs_f64();
    total
}

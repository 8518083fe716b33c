//! `coliseum bench pipeline`: the processing side, against `coliseum serve`
//! child processes on a realistic data set (by default 10 million entries
//! over 50,000 artists and 30 days), on SQLite and PostgreSQL:
//!
//! - **backlog**: the data set ingested by an ingest-only node, then drained
//!   by a processing node started afterwards (processing throughput);
//! - **hot state**: the resident memory of an engine that loaded it, and
//!   what its `/metrics` count of it (read caches, DNA aggregates and
//!   publications) at start and after the reads;
//! - **reads**: top-25 leaderboards (24h, 7d, 30d, with and without a city)
//!   and DNA boards from 500 connections while entries keep arriving, against
//!   the same server's `/healthz` (idle for the single-URL reads, while
//!   entries arrive for the mixed ones) and against one SQL `GROUP BY` over
//!   the log per request;
//! - **freshness**: single-entry webhooks at 2,000/s, and for probe entries
//!   the time from acknowledgement to being visible in a leaderboard read;
//! - **rebuild**: `coliseum rebuild` of the whole data set.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::ingest::{BenchDatabase, Measured, Server, closed_loop};
use super::mixed;
use coliseum_signatures::passport::WebhookKey;
use coliseum_traffic::{Generator, GeneratorConfig};

#[derive(Debug, Clone, clap::Args)]
pub struct PipelineBenchArgs {
    /// sqlite, postgres or both.
    #[arg(long, default_value = "both")]
    pub backend: String,
    /// Entries in the data set.
    #[arg(long, default_value_t = 10_000_000)]
    pub entries: u64,
    #[arg(long, default_value_t = 50_000)]
    pub artists: u32,
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Seconds each read scenario and the freshness run last.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent connections of the read scenarios.
    #[arg(long, default_value_t = 500)]
    pub connections: usize,
    /// Entries per second arriving during the read scenarios.
    #[arg(long, default_value_t = 1000)]
    pub background_rate: u64,
    /// Single-entry webhooks per second during the freshness run.
    #[arg(long, default_value_t = 2000)]
    pub freshness_rate: u64,
    #[arg(
        long,
        env = "COLISEUM_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres_url: String,
    /// Leaves the data set's database in place and prints its URL, to run
    /// `coliseum rebuild` or a server on it afterwards.
    #[arg(long)]
    pub keep_database: bool,
    /// Distinct queries in the mixed read scenario's catalogue.
    #[arg(long, default_value_t = 5_200)]
    pub mixed_queries: usize,
    /// Runs only the mixed and cold read scenarios and the idle latencies,
    /// on a data set kept earlier with `--keep-database` (its URL here),
    /// instead of the whole benchmark on a new one.
    #[arg(long)]
    pub reads_only_on: Option<String>,
}

pub async fn run(args: PipelineBenchArgs) -> anyhow::Result<()> {
    let backends: Vec<&str> = match args.backend.as_str() {
        "both" => vec!["sqlite", "postgres"],
        "sqlite" => vec!["sqlite"],
        "postgres" => vec!["postgres"],
        other => bail!("--backend must be sqlite, postgres or both, not `{other}`"),
    };
    println!(
        "# coliseum bench pipeline — {} entries, {} artists, {} days, {} cores",
        args.entries,
        args.artists,
        args.days,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if let Some(url) = &args.reads_only_on {
        return reads_only(&args, url).await;
    }
    for backend in backends {
        println!();
        println!("## {backend}");
        println!();
        run_backend(&args, backend).await?;
    }
    Ok(())
}

/// The mixed and cold read scenarios on a data set kept earlier.
async fn reads_only(args: &PipelineBenchArgs, database_url: &str) -> anyhow::Result<()> {
    let (key, secret) = WebhookKey::generate();
    let key = Arc::new(key);
    let started = Instant::now();
    let node = Server::start(database_url, &secret, true, &[]).await?;
    println!(
        "- engine started and loaded in {:.1} s; resident memory {:.0} MiB",
        started.elapsed().as_secs_f64(),
        node.rss_mib().unwrap_or(0.0)
    );
    print_held(&node.base_url).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers = background(&node.base_url, &key, args.background_rate, "mixed", stop.clone());
    let healthz = get_load(
        &node.base_url,
        "/healthz",
        None,
        args.connections,
        Duration::from_secs(args.seconds),
    )
    .await?;
    println!();
    println!(
        "- `/healthz` from {} connections: {:.0}/s, p99 {:.1} ms",
        args.connections,
        healthz.entries_per_s(),
        healthz.percentile_ms(0.99)
    );
    mixed_reads(&node.base_url, database_url, args, healthz.entries_per_s()).await?;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        let _ = writer.await;
    }
    idle_latencies(&node.base_url, database_url, args).await?;
    println!(
        "- resident memory after the reads: {:.0} MiB",
        node.rss_mib().unwrap_or(0.0)
    );
    print_held(&node.base_url).await;
    node.stop().await;
    Ok(())
}

/// What the engine's `/metrics` say its read caches, DNA aggregates and
/// hot state hold: the parts of its resident memory it counts; and, from a
/// build with the `heap-count` feature, all that its Rust code holds. Needs the metrics
/// token the engine was given (`COLISEUM_METRICS_TOKEN`, which it inherits).
async fn print_held(base_url: &str) {
    let Ok(token) = std::env::var("COLISEUM_METRICS_TOKEN") else {
        println!("- (set COLISEUM_METRICS_TOKEN to see what the read caches, DNA aggregates and hot state hold)");
        return;
    };
    let text = match reqwest::Client::new()
        .get(format!("http://{base_url}/metrics"))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => response.text().await.unwrap_or_default(),
        Ok(response) => return println!("- `/metrics` answered {}", response.status()),
        Err(error) => return println!("- `/metrics` failed: {error}"),
    };
    let mib = |prefix: &str| {
        text.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
            / f64::from(1 << 20)
    };
    println!(
        "- of it, counted by the engine: read caches {:.0} MiB (tile sums {:.0}, series {:.0}, boards {:.0}), \
         DNA aggregates {:.0} MiB, DNA publications {:.0} MiB ({:.0} held)",
        mib("coliseum_read_cache_bytes{"),
        mib("coliseum_read_cache_bytes{cache=\"tiles\"}"),
        mib("coliseum_read_cache_bytes{cache=\"series\"}"),
        mib("coliseum_read_cache_bytes{cache=\"boards\"}"),
        mib("coliseum_dna_aggregates_bytes "),
        mib("coliseum_dna_publications_bytes "),
        mib("coliseum_dna_publications ") * f64::from(1 << 20),
    );
    println!(
        "- and the hot state {:.0} MiB (day slices {:.0}, hour slices {:.0}, hour cells {:.0}, \
         platform totals {:.0}, journal {:.0}, names {:.0})",
        mib("coliseum_hot_state_bytes{"),
        mib("coliseum_hot_state_bytes{part=\"day_slices\"}"),
        mib("coliseum_hot_state_bytes{part=\"hour_slices\"}"),
        mib("coliseum_hot_state_bytes{part=\"hour_cells\"}"),
        mib("coliseum_hot_state_bytes{part=\"totals\"}"),
        mib("coliseum_hot_state_bytes{part=\"journal\"}"),
        mib("coliseum_hot_state_bytes{part=\"names\"}"),
    );
    if text.contains("coliseum_heap_bytes{") {
        println!(
            "- the live heap (a `heap-count` build; C libraries' own aside): {:.0} MiB asked for, {:.0} MiB in the allocator's size classes",
            mib("coliseum_heap_bytes{measure=\"requested\"}"),
            mib("coliseum_heap_bytes{measure=\"in_size_classes\"}"),
        );
    }
}

/// The three readers of the mixed scenarios on `plan`: a fan, an artist
/// account linked to the drawn artists and a host linked to one live event
/// of each.
pub(super) async fn mixed_readers(
    base_url: &str,
    database_url: &str,
    plan: &str,
    linked: &[u32],
) -> anyhow::Result<mixed::Readers> {
    let artists: Vec<String> = linked
        .iter()
        .flat_map(|a| ["--artist".to_owned(), format!("art_{a}")])
        .collect();
    let events: Vec<String> = linked
        .iter()
        .flat_map(|a| ["--live-event".to_owned(), format!("live_{a}_0")])
        .collect();
    Ok(mixed::Readers {
        fan: reader_as(base_url, database_url, plan, "fan", &[]).await?,
        artist: reader_as(base_url, database_url, plan, "artist", &artists).await?,
        host: reader_as(base_url, database_url, plan, "host", &events).await?,
    })
}

fn mixed_table(title: &str, outcome: &mixed::Outcome, healthz_per_s: f64) {
    let total = outcome.total();
    println!();
    println!(
        "{title}: **{:.0} requests/s** ({:.2}× `/healthz`), p50 {:.1} ms, p99 **{:.1} ms**, {} not 200, {} errors",
        outcome.per_s(&total),
        outcome.per_s(&total) / healthz_per_s.max(1.0),
        total.percentile_ms(0.5),
        total.percentile_ms(0.99),
        total.not_ok,
        total.failed
    );
    println!();
    println!("| category | requests/s | p50 ms | p99 ms | not 200 | errors |");
    println!("|---|---|---|---|---|---|");
    for (category, tally) in &outcome.by_category {
        if tally.latencies_us.is_empty() && tally.failed == 0 {
            continue;
        }
        println!(
            "| {} | {:.0} | {:.1} | {:.1} | {} | {} |",
            category.label(),
            outcome.per_s(tally),
            tally.percentile_ms(0.5),
            tally.percentile_ms(0.99),
            tally.not_ok,
            tally.failed
        );
    }
}

/// The mixed scenario as Enterprise (live) and as Free (frozen), and the
/// cold one, while entries keep arriving.
async fn mixed_reads(
    base_url: &str,
    database_url: &str,
    args: &PipelineBenchArgs,
    healthz_per_s: f64,
) -> anyhow::Result<()> {
    let duration = Duration::from_secs(args.seconds);
    for (plan, label, which) in [
        (mixed::Plan::Enterprise, "enterprise", "Enterprise, live"),
        (mixed::Plan::Free, "free", "Free, 5-minute snapshot"),
    ] {
        let mut draw = mixed::Draw::new(11, plan, args.artists);
        let catalogue = Arc::new(draw.distinct(args.mixed_queries));
        let readers = mixed_readers(base_url, database_url, label, &draw.linked).await?;
        // The same traffic twice: first as the catalogue's first reads
        // (for Enterprise every board new to the engine, as after a
        // restart; Free's boards share tiles with Enterprise's, read just
        // before), then read on, as a dashboard's steady traffic is.
        for window in ["first", "next"] {
            let outcome = mixed::run(
                base_url,
                &readers,
                mixed::Source::Popular(catalogue.clone()),
                args.connections,
                duration,
            )
            .await?;
            let seen = if window == "first" {
                "the catalogue's first reads"
            } else {
                "the same catalogue, read on"
            };
            mixed_table(
                &format!(
                    "Mixed reads, {which}, {} distinct queries, {} connections, the {window} {} s ({seen})",
                    catalogue.len(),
                    args.connections,
                    duration.as_secs()
                ),
                &outcome,
                healthz_per_s,
            );
        }
    }
    // Cold: no query repeats within the run.
    let mut draw = mixed::Draw::new(12, mixed::Plan::Enterprise, args.artists);
    let queries = Arc::new(draw.distinct(400_000));
    let readers = mixed_readers(base_url, database_url, "enterprise", &draw.linked).await?;
    let outcome = mixed::run(
        base_url,
        &readers,
        mixed::Source::Once(queries.clone()),
        args.connections,
        duration,
    )
    .await?;
    mixed_table(
        &format!(
            "Cold reads, Enterprise, every query new ({} drawn), {} connections",
            queries.len(),
            args.connections
        ),
        &outcome,
        healthz_per_s,
    );
    Ok(())
}

/// On an idle engine, one connection, each query new: the latency of a
/// first read of each shape (KPI series of every scope, combined filters).
async fn idle_latencies(base_url: &str, database_url: &str, args: &PipelineBenchArgs) -> anyhow::Result<()> {
    let mut draw = mixed::Draw::new(13, mixed::Plan::Enterprise, args.artists);
    let queries = draw.distinct(20_000);
    let readers = mixed_readers(base_url, database_url, "enterprise", &draw.linked).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut per_shape: std::collections::BTreeMap<String, Vec<u64>> = std::collections::BTreeMap::new();
    let client = reqwest::Client::new();
    for query in queries.iter().filter(|q| q.category != mixed::Category::SecondPage) {
        let shape = mixed::shape(query);
        let seen = per_shape.entry(shape).or_default();
        if seen.len() >= 30 {
            continue;
        }
        let cookie = match query.reader {
            mixed::Reader::Fan => &readers.fan,
            mixed::Reader::Artist => &readers.artist,
            mixed::Reader::Host => &readers.host,
        };
        let sent = Instant::now();
        let response = client
            .get(format!("http://{base_url}{}", query.path))
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await?;
        let _ = response.bytes().await;
        seen.push(sent.elapsed().as_micros() as u64);
    }
    println!();
    println!("Idle engine, one connection, every query read for the first time (30 of each shape):");
    println!();
    println!("| shape | p50 ms | max ms |");
    println!("|---|---|---|");
    for (shape, mut latencies) in per_shape {
        latencies.sort_unstable();
        let p50 = latencies[latencies.len() / 2] as f64 / 1000.0;
        let max = latencies.last().copied().unwrap_or(0) as f64 / 1000.0;
        println!("| {shape} | {p50:.2} | {max:.2} |");
    }
    // The pages over the same reads, drawn afresh (a page's first open
    // builds its reads, as a first API read does).
    let mut pages = mixed::Draw::new(14, mixed::Plan::Enterprise, args.artists);
    let page_queries = pages.distinct(20_000);
    let page_readers = mixed_readers(base_url, database_url, "enterprise", &pages.linked).await?;
    super::pages::latencies(base_url, &page_readers, &page_queries).await?;
    Ok(())
}

async fn run_backend(args: &PipelineBenchArgs, backend: &str) -> anyhow::Result<()> {
    let (key, secret) = WebhookKey::generate();
    let key = Arc::new(key);
    let database = BenchDatabase::create(backend, &args.postgres_url, "pipeline").await?;
    let store = coliseum_http::app::open_store(&database.url).await?;

    // The data set, through an ingest-only node.
    let ingest_node = Server::start(&database.url, &secret, false, &[]).await?;
    let empty_rss = ingest_node.rss_mib().unwrap_or(0.0);
    let started = Instant::now();
    let sent = load_data_set(&ingest_node.base_url, &key, args.artists, args.days, args.entries).await?;
    let ingest_s = started.elapsed().as_secs_f64();
    ingest_node.stop().await;
    let head = store.head_seq().await?;
    println!(
        "- data set: {sent} entries ingested in {ingest_s:.1} s ({:.0}/s) by an ingest-only node; log head {head}",
        sent as f64 / ingest_s
    );

    // The backlog, drained by a processing node.
    let started = Instant::now();
    let node = Server::start(&database.url, &secret, true, &[]).await?;
    while store.pipeline_state().await?.processed_seq < head {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain_s = started.elapsed().as_secs_f64();
    println!(
        "- backlog: {head} entries processed in {drain_s:.1} s (start-up included): **{:.0} entries/s**",
        head as f64 / drain_s
    );
    node.stop().await;

    // A fresh start loads the hot state from the rollups.
    let started = Instant::now();
    let node = Server::start(&database.url, &secret, true, &[]).await?;
    let loaded_s = started.elapsed().as_secs_f64();
    let rss = node.rss_mib().unwrap_or(0.0);
    println!(
        "- hot state: engine started and loaded in {loaded_s:.1} s; resident memory {rss:.0} MiB, \
         {:.0} MiB above an engine on an empty database ({empty_rss:.0} MiB)",
        rss - empty_rss
    );
    print_held(&node.base_url).await;

    reads(&node.base_url, &key, args, backend, &database.url).await?;
    // Only Enterprise is served live (PLANS.md): the freshness probes read as it.
    let live_reader = reader(&node.base_url, &database.url, "enterprise").await?;
    freshness(&node.base_url, &key, &live_reader, args).await?;
    let rss = node.rss_mib().unwrap_or(0.0);
    println!(
        "- resident memory after the reads and the freshness run: {rss:.0} MiB, {:.0} MiB above an engine on \
         an empty database",
        rss - empty_rss
    );
    print_held(&node.base_url).await;
    node.stop().await;

    let rebuild = rebuild(&database.url).await?;
    println!("- rebuild: {rebuild}");
    if args.keep_database {
        println!("- data set kept at {}", database.keep());
    } else {
        database.drop_now().await;
    }
    Ok(())
}

/// Sends the data set in signed batches of 1000 from 8 connections; one
/// task generates while the others send.
pub(super) async fn load_data_set(
    base_url: &str,
    key: &Arc<WebhookKey>,
    artists: u32,
    days: u32,
    entries: u64,
) -> anyhow::Result<u64> {
    let (batches, receiver) = tokio::sync::mpsc::channel::<String>(32);
    let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
    let config = GeneratorConfig {
        artists,
        days,
        seed: 7,
        until: time::OffsetDateTime::now_utc(),
        total: entries,
    };
    let total = entries;
    let generator = tokio::task::spawn_blocking(move || {
        let mut generator = Generator::new(config);
        let mut left = total;
        while left > 0 {
            let take = left.min(1000);
            let envelopes: Vec<Value> = (0..take).map(|_| generator.next_historical()).collect();
            left -= take;
            if batches.blocking_send(json!({"events": envelopes}).to_string()).is_err() {
                break;
            }
        }
    });
    let client = reqwest::Client::new();
    let url = format!("http://{base_url}/v1/passport/events");
    let accepted = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, key, receiver, accepted) = (
                client.clone(),
                url.clone(),
                key.clone(),
                receiver.clone(),
                accepted.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let Some(body) = receiver.lock().await.recv().await else {
                        break;
                    };
                    let taken = loop {
                        match post_for_fates(&client, &url, &key, body.clone()).await {
                            Ok((202, Some(taken))) => break taken,
                            // Backpressure: the engine said so, so wait and send again.
                            Ok((503, _)) | Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                            Ok((status, _)) => anyhow::bail!("the data set was refused with {status}"),
                        }
                    };
                    accepted.fetch_add(taken, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    for sender in senders {
        sender.await??;
    }
    generator.await?;
    Ok(accepted.load(Ordering::Relaxed).min(total))
}

async fn post(client: &reqwest::Client, url: &str, key: &WebhookKey, body: String) -> anyhow::Result<u16> {
    Ok(post_for_fates(client, url, key, body).await?.0)
}

/// Signs and sends one delivery: its status, and how many of its entries the
/// engine stored (accepted or already there), as the answer's body says.
pub(crate) async fn post_for_fates(
    client: &reqwest::Client,
    url: &str,
    key: &WebhookKey,
    body: String,
) -> anyhow::Result<(u16, Option<u64>)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = format!("bench-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = key.sign(&id, timestamp, body.as_bytes());
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let answer: Option<serde_json::Value> = response.json().await.ok();
    let stored = answer.and_then(|a| Some(a.get("accepted")?.as_u64()? + a.get("duplicates")?.as_u64()?));
    Ok((status, stored))
}

/// Plays of fresh artists at `rate` per second until `stop`, from 32 connections.
fn background(
    base_url: &str,
    key: &Arc<WebhookKey>,
    rate: u64,
    label: &str,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let client = reqwest::Client::new();
    let url = format!("http://{base_url}/v1/passport/events");
    // Ids new to the data set on every run: reads-only runs on a kept data
    // set would otherwise send the ids of the run before, which the engine
    // drops as duplicates, and read a state that never changes.
    let run = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let connections = 32_u64;
    let interval = Duration::from_secs_f64(connections as f64 / rate.max(1) as f64);
    (0..connections)
        .map(|connection| {
            let (client, url, key, stop, label) =
                (client.clone(), url.clone(), key.clone(), stop.clone(), label.to_owned());
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(interval);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                for n in 0_u64.. {
                    ticks.tick().await;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let body =
                        play(&format!("{label}-{run}-{connection}-{n}"), &format!("art_{}", n % 5000)).to_string();
                    let _ = post(&client, &url, &key, body).await;
                }
            })
        })
        .collect()
}

fn play(event_id: &str, artist: &str) -> Value {
    let at = time::OffsetDateTime::now_utc();
    json!({
        "event_id": event_id, "schema_version": 1, "type": "audio.play",
        "timestamp": at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "user_id": "fan_bench", "artist_id": artist,
        "metadata": {"city": "Lagos", "genre": "afrobeats"},
        "engagement": {"duration_ms": 120000}
    })
}

/// Closed-loop GETs of `path` from `connections` connections for `duration`.
/// Loads `path` from `connections` connections, with a session cookie if given.
async fn get_load(
    base_url: &str,
    path: &str,
    cookie: Option<&str>,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(cookie) = cookie {
        headers.insert(reqwest::header::COOKIE, cookie.parse()?);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .default_headers(headers)
        .build()?;
    let url = Arc::new(format!("http://{base_url}{path}"));
    Ok(closed_loop(connections, duration, move |_| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            match client.get(url.as_str()).send().await {
                Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await)
}

fn row(scenario: &str, m: &Measured, note: &str) {
    println!(
        "| {scenario} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {note} |",
        m.entries_per_s(),
        m.percentile_ms(0.5),
        m.percentile_ms(0.95),
        m.percentile_ms(0.99),
        m.failed
    );
}

async fn reads(
    base_url: &str,
    key: &Arc<WebhookKey>,
    args: &PipelineBenchArgs,
    backend: &str,
    database_url: &str,
) -> anyhow::Result<()> {
    let duration = Duration::from_secs(args.seconds);
    println!();
    println!(
        "Reads from {} connections while {} entries/s arrive:",
        args.connections, args.background_rate
    );
    println!();
    println!("| read | requests/s | p50 ms | p95 ms | p99 ms | errors | note |");
    println!("|---|---|---|---|---|---|---|");
    // The single-URL reads are compared with this idle ceiling, as in every
    // step before the twenty-first: their ratios include the cost of the
    // entries arriving meanwhile.
    let idle_healthz = get_load(base_url, "/healthz", None, args.connections, duration).await?;
    // Filters need a plan (PLANS.md): city boards are read by a signed-in Free user.
    let free = reader(base_url, database_url, "free").await?;
    row("`/healthz` (the HTTP ceiling), no entries arriving", &idle_healthz, "");
    let stop = Arc::new(AtomicBool::new(false));
    let writers = background(base_url, key, args.background_rate, "reads", stop.clone());
    // Public and Free are served boards frozen at the last 5-minute boundary,
    // Enterprise the live ones (PLANS.md): both paths are measured.
    let live = reader(base_url, database_url, "enterprise").await?;
    for range in ["24h", "7d", "30d"] {
        let readers = [
            ("", None, "Public: anonymous, 5-minute snapshot"),
            (
                "&city=lagos",
                Some(free.as_str()),
                "Free: city lagos, 5-minute snapshot",
            ),
            ("", Some(live.as_str()), "Enterprise: live"),
        ];
        for (filter, cookie, who) in readers {
            let path = format!("/v1/leaderboards/plays?range={range}&limit=25{filter}");
            let measured = get_load(base_url, &path, cookie, args.connections, duration).await?;
            row(
                &format!("top 25, {range}, {who}"),
                &measured,
                &format!(
                    "{:.2}× idle `/healthz`",
                    measured.entries_per_s() / idle_healthz.entries_per_s().max(1.0)
                ),
            );
        }
    }
    // DNA boards are served from the last publication, recomputed every 5 s
    // while entries arrive.
    for board in ["overall", "a"] {
        let path = format!("/v1/dna/leaderboards/{board}?range=30d&limit=25");
        let measured = get_load(base_url, &path, None, args.connections, duration).await?;
        row(
            &format!("DNA top 25, `{board}`, 30d"),
            &measured,
            &format!(
                "{:.2}× idle `/healthz`",
                measured.entries_per_s() / idle_healthz.entries_per_s().max(1.0)
            ),
        );
    }
    // The mixed reads are compared with a ceiling measured just before them
    // under the same load: entries arriving, batches applied, DNA published
    // (the reads-only runs measure theirs in the writers' first 10 s, which
    // in one run came out lower than the boards read after it). With
    // nothing arriving `/healthz` ran up to twice as fast, and a ratio to it
    // charged the mixed reads with the cost of ingest (BENCHMARKS.md,
    // twenty-first step).
    let loaded = get_load(base_url, "/healthz", None, args.connections, duration).await?;
    row(
        "`/healthz` while entries arrive, just before the mixed reads",
        &loaded,
        "",
    );
    mixed_reads(base_url, database_url, args, loaded.entries_per_s()).await?;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        let _ = writer.await;
    }
    idle_latencies(base_url, database_url, args).await?;
    let baseline = sql_baseline(backend, database_url, duration).await?;
    row(
        "baseline: SQL `GROUP BY` over the log per request, 7d top 25",
        &baseline,
        &format!(
            "{} concurrent clients on a pool of {}",
            64,
            if backend == "sqlite" { 8 } else { 64 }
        ),
    );
    Ok(())
}

/// One `GROUP BY` over the last 7 days of the log per request: what a
/// deployment without rollups would run.
async fn sql_baseline(backend: &str, database_url: &str, duration: Duration) -> anyhow::Result<Measured> {
    let since = time::OffsetDateTime::now_utc() - time::Duration::days(7);
    // A query may take longer than the run: the rate counts what finished.
    Ok(if backend == "sqlite" {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(8)
            .connect(database_url)
            .await?;
        let since_us = i64::try_from(since.unix_timestamp_nanos() / 1000).unwrap_or(0);
        closed_loop(64, duration, move |_| {
            let pool = pool.clone();
            async move {
                sqlx::query(
                    "SELECT artist_id, count(*) AS plays FROM passport_entries \
                     WHERE entry_type = 'audio.play' AND ts_us >= $1 AND artist_id IS NOT NULL \
                     GROUP BY artist_id ORDER BY plays DESC, artist_id LIMIT 25",
                )
                .bind(since_us)
                .fetch_all(&pool)
                .await
                .is_ok()
            }
        })
        .await
    } else {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(64)
            .connect(database_url)
            .await?;
        closed_loop(64, duration, move |_| {
            let pool = pool.clone();
            async move {
                sqlx::query(
                    "SELECT artist_id, count(*) AS plays FROM passport_entries \
                     WHERE entry_type = 'audio.play' AND ts >= $1 AND artist_id IS NOT NULL \
                     GROUP BY artist_id ORDER BY plays DESC, artist_id LIMIT 25",
                )
                .bind(since)
                .fetch_all(&pool)
                .await
                .is_ok()
            }
        })
        .await
    })
}

/// Single-entry webhooks at the freshness rate; every 50 ms one of them is a
/// probe for an artist of its own, read back until it is ranked.
async fn freshness(
    base_url: &str,
    key: &Arc<WebhookKey>,
    cookie: &str,
    args: &PipelineBenchArgs,
) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let writers = background(base_url, key, args.freshness_rate, "fresh", stop.clone());
    let client = reqwest::Client::new();
    let url = format!("http://{base_url}/v1/passport/events");
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut probes = Vec::new();
    let mut n = 0_u64;
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    while Instant::now() < deadline {
        ticks.tick().await;
        n += 1;
        let (client, url, key, base) = (client.clone(), url.clone(), key.clone(), base_url.to_owned());
        let cookie = cookie.to_owned();
        probes.push(tokio::spawn(async move {
            let artist = format!("probe_{n}");
            let body = play(&format!("probe-{n}"), &artist).to_string();
            if post(&client, &url, &key, body).await.ok()? != 202 {
                return None;
            }
            let acknowledged = Instant::now();
            let read = format!("http://{base}/v1/leaderboards/plays/around/{artist}?range=1h&n=0");
            while acknowledged.elapsed() < Duration::from_secs(30) {
                if client
                    .get(&read)
                    .header(reqwest::header::COOKIE, &cookie)
                    .send()
                    .await
                    .ok()?
                    .status()
                    == 200
                {
                    return Some(acknowledged.elapsed().as_micros() as u64);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            None
        }));
    }
    let mut seen = Measured::default();
    for probe in probes {
        match probe.await.context("probe")? {
            Some(us) => {
                seen.latencies_us.push(us);
                seen.entries += 1;
            }
            None => seen.failed += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        let _ = writer.await;
    }
    println!();
    println!(
        "- freshness at {} single-entry webhooks/s: acknowledgement → visible in a leaderboard read, {} probes: \
         p50 {:.1} ms, p95 **{:.1} ms**, p99 {:.1} ms; {} not seen within 30 s",
        args.freshness_rate,
        seen.entries,
        seen.percentile_ms(0.5),
        seen.percentile_ms(0.95),
        seen.percentile_ms(0.99),
        seen.failed
    );
    Ok(())
}

/// Creates a fan on `plan` with `coliseum users create` and signs in;
/// returns the session's `Cookie` value.
async fn reader(base_url: &str, database_url: &str, plan: &str) -> anyhow::Result<String> {
    reader_as(base_url, database_url, plan, "fan", &[]).await
}

/// Creates a user of `role` on `plan` (with `links`: `--artist` and
/// `--live-event` arguments) and signs in; returns the session's `Cookie`.
pub(super) async fn reader_as(
    base_url: &str,
    database_url: &str,
    plan: &str,
    role: &str,
    links: &[String],
) -> anyhow::Result<String> {
    account_as(base_url, database_url, plan, role, role, links).await
}

/// A signed-in account of `role` on `plan`, told apart by `label`: its cookie.
pub(super) async fn account_as(
    base_url: &str,
    database_url: &str,
    plan: &str,
    role: &str,
    label: &str,
    links: &[String],
) -> anyhow::Result<String> {
    let exe = crate::coliseum_binary()?;
    let email = format!("bench-reader-{plan}-{label}@example.com");
    let password = "bench reader password";
    let output = tokio::process::Command::new(exe)
        .args(["users", "create", "--database-url", database_url, "--email", &email])
        .args(["--password", password, "--role", role, "--plan", plan])
        .args(links)
        .env("RUST_LOG", "warn")
        .output()
        .await?;
    if !output.status.success() {
        bail!(
            "creating the reader failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let response = reqwest::Client::new()
        .post(format!("http://{base_url}/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await?;
    let cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("signing the reader in gave no session ({})", response.status()))?;
    Ok(cookie.to_owned())
}

/// Runs `coliseum rebuild` on the data set; returns its last line.
async fn rebuild(database_url: &str) -> anyhow::Result<String> {
    let exe = crate::coliseum_binary()?;
    let started = Instant::now();
    let output = tokio::process::Command::new(exe)
        .args(["rebuild", "--database-url", database_url])
        .env("RUST_LOG", "warn")
        .env("COLISEUM_FX_RATES", coliseum_traffic::FX_RATES)
        .output()
        .await?;
    if !output.status.success() {
        bail!("rebuild failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let summary = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Ok(format!(
        "{summary} (wall clock {:.1} s)",
        started.elapsed().as_secs_f64()
    ))
}

//! `coliseum bench reports`: reports as people make them, against a
//! `coliseum serve` child process on a realistic data set (by default 1
//! million entries over 5,000 artists and 30 days, SQLite):
//!
//! - **one-page artist PDFs** and **ten-page leaderboard PDFs**, one after
//!   another on an idle engine, each for a different artist or filter:
//!   the time from `POST /v1/reports` to its `201` (the reads gathered,
//!   the PDF drawn, stored and recorded, its link made);
//! - **reads while reports are made**: the mixed read scenario (thousands
//!   of distinct queries, Enterprise, live) alone, then again while 50
//!   clients make PDF reports back to back; the reads' p99 of both runs
//!   and their ratio.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::ingest::{BenchDatabase, Server};
use super::{mixed, pipeline};
use coliseum_signatures::passport::WebhookKey;

#[derive(Debug, Clone, clap::Args)]
pub struct ReportsBenchArgs {
    /// Entries in the data set.
    #[arg(long, default_value_t = 1_000_000)]
    pub entries: u64,
    #[arg(long, default_value_t = 5_000)]
    pub artists: u32,
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Reports of each kind timed on the idle engine.
    #[arg(long, default_value_t = 60)]
    pub reports: usize,
    /// Ranks in a leaderboard report: 380 print on ten pages.
    #[arg(long, default_value_t = 380)]
    pub leaderboard_ranks: u32,
    /// Seconds each read run lasts.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Connections of the mixed read scenario.
    #[arg(long, default_value_t = 100)]
    pub connections: usize,
    /// Clients making reports at once during the second read run.
    #[arg(long, default_value_t = 50)]
    pub concurrent_reports: usize,
    /// Distinct queries in the mixed read scenario's catalogue.
    #[arg(long, default_value_t = 5_200)]
    pub mixed_queries: usize,
}

/// A signed-in client that makes reports: its cookie and CSRF token.
#[derive(Debug, Clone)]
struct Author {
    cookie: String,
    csrf: String,
}

async fn sign_in_author(base_url: &str, database_url: &str, label: &str) -> anyhow::Result<Author> {
    let cookie = pipeline::account_as(base_url, database_url, "enterprise", "fan", label, &[]).await?;
    let response: Value = reqwest::Client::new()
        .get(format!("http://{base_url}/v1/auth/csrf"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await?
        .json()
        .await?;
    let csrf = response["token"].as_str().context("a CSRF token")?.to_owned();
    Ok(Author { cookie, csrf })
}

/// Makes one report; its status, size and pages (for PDFs).
async fn make(
    client: &reqwest::Client,
    base_url: &str,
    author: &Author,
    body: &Value,
) -> anyhow::Result<(u16, Option<Value>)> {
    let response = client
        .post(format!("http://{base_url}/v1/reports"))
        .header(reqwest::header::COOKIE, &author.cookie)
        .header("x-csrf-token", &author.csrf)
        .json(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let made = if status == 201 {
        Some(response.json().await?)
    } else {
        None
    };
    Ok((status, made))
}

/// Up to `count` artists of the 30-day plays board, best first.
async fn ranked_artists(base_url: &str, author: &Author, count: usize) -> anyhow::Result<Arc<Vec<String>>> {
    let client = reqwest::Client::new();
    let mut artists = Vec::new();
    let mut cursor: Option<String> = None;
    while artists.len() < count {
        let mut url = format!("http://{base_url}/v1/leaderboards/plays?range=30d&limit=100");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = client
            .get(url)
            .header(reqwest::header::COOKIE, &author.cookie)
            .send()
            .await?
            .json()
            .await?;
        for entry in page["entries"].as_array().into_iter().flatten() {
            if let Some(id) = entry["artist_id"].as_str() {
                artists.push(id.to_owned());
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    artists.truncate(count);
    Ok(Arc::new(artists))
}

/// The pages of a PDF: its page objects (`/Type/Page`, not `/Pages`;
/// krilla writes them uncompressed).
fn pages(pdf: &[u8]) -> usize {
    const PAGE: &[u8] = b"/Type/Page";
    pdf.windows(PAGE.len())
        .enumerate()
        .filter(|(i, w)| *w == PAGE && pdf.get(i + PAGE.len()) != Some(&b's'))
        .count()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Times `count` reports made one after another from `bodies`.
async fn timed(
    base_url: &str,
    author: &Author,
    bodies: impl Iterator<Item = Value>,
) -> anyhow::Result<(Vec<f64>, Vec<usize>, Vec<i64>)> {
    let client = reqwest::Client::new();
    let (mut times, mut page_counts, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    for body in bodies {
        let sent = Instant::now();
        let (status, made) = make(&client, base_url, author, &body).await?;
        let elapsed = sent.elapsed().as_secs_f64() * 1000.0;
        let Some(made) = made else {
            bail!("a report was refused ({status}): {body}");
        };
        times.push(elapsed);
        sizes.push(made["size_bytes"].as_i64().unwrap_or_default());
        let download = made["download_url"].as_str().context("a download URL")?;
        let pdf = client
            .get(download)
            .header(reqwest::header::COOKIE, &author.cookie)
            .send()
            .await?
            .bytes()
            .await?;
        page_counts.push(pages(&pdf));
    }
    times.sort_by(f64::total_cmp);
    Ok((times, page_counts, sizes))
}

fn row(label: &str, times: &[f64], pages: &[usize], sizes: &[i64]) {
    let mut pages = pages.to_vec();
    pages.sort_unstable();
    println!(
        "| {label} | {} | {}–{} | {:.0} | {:.1} | {:.1} | {:.1} |",
        times.len(),
        pages.first().copied().unwrap_or(0),
        pages.last().copied().unwrap_or(0),
        sizes.iter().sum::<i64>() as f64 / sizes.len().max(1) as f64 / 1024.0,
        percentile(times, 0.5),
        percentile(times, 0.95),
        percentile(times, 1.0),
    );
}

pub async fn run(args: ReportsBenchArgs) -> anyhow::Result<()> {
    println!(
        "# coliseum bench reports — {} entries, {} artists, {} days, {} cores, SQLite",
        args.entries,
        args.artists,
        args.days,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let (key, secret) = WebhookKey::generate();
    let key = Arc::new(key);
    let database = BenchDatabase::create("sqlite", "", "reports").await?;
    let store = coliseum_http::app::open_store(&database.url).await?;
    let ingest_node = Server::start(&database.url, &secret, false, &[]).await?;
    let sent = pipeline::load_data_set(&ingest_node.base_url, &key, args.artists, args.days, args.entries).await?;
    ingest_node.stop().await;
    let head = store.head_seq().await?;
    let node = Server::start(&database.url, &secret, true, &[]).await?;
    while store.pipeline_state().await?.processed_seq < head {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("- data set: {sent} entries, processed");
    let base = node.base_url.clone();
    let author = sign_in_author(&base, &database.url, "author").await?;
    // The DNA scores are published a few seconds after processing.
    tokio::time::sleep(Duration::from_secs(6)).await;

    // Artists people report on: ranked in the last 30 days.
    let ranked = ranked_artists(&base, &author, 1_000).await?;
    anyhow::ensure!(!ranked.is_empty(), "no artist is ranked");
    println!("- {} ranked artists to report on", ranked.len());

    println!();
    println!("## Reports on an idle engine, one after another");
    println!();
    println!("| report | made | pages | KB | p50 ms | p95 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    let artists = (0..args.reports).map(|i| {
        json!({"template": "artist", "format": "pdf",
               "params": {"artist_id": ranked[i * 37 % ranked.len()], "range": "30d"}})
    });
    let (times, page_counts, sizes) = timed(&base, &author, artists).await?;
    row("artist, PDF (30 days)", &times, &page_counts, &sizes);
    let filters = ["", "lagos", "london", "berlin", "new york", "são paulo"];
    let ranges = ["24h", "7d", "30d", "all"];
    let boards = (0..args.reports / 3).map(|i| {
        let mut params = json!({"metric": "plays", "range": ranges[i % ranges.len()], "limit": args.leaderboard_ranks});
        let city = filters[i % filters.len()];
        if !city.is_empty() {
            params["city"] = json!(city);
        }
        json!({"template": "leaderboard", "format": "pdf", "params": params})
    });
    let (times, page_counts, sizes) = timed(&base, &author, boards).await?;
    row(
        &format!("leaderboard, PDF ({} ranks)", args.leaderboard_ranks),
        &times,
        &page_counts,
        &sizes,
    );

    println!();
    println!("## Reads while reports are made");
    let mut draw = mixed::Draw::new(11, mixed::Plan::Enterprise, args.artists);
    let catalogue = Arc::new(draw.distinct(args.mixed_queries));
    let readers = pipeline::mixed_readers(&base, &database.url, "enterprise", &draw.linked).await?;
    let duration = Duration::from_secs(args.seconds);
    let alone = mixed::run(
        &base,
        &readers,
        mixed::Source::Popular(catalogue.clone()),
        args.connections,
        duration,
    )
    .await?;

    // Each maker is a different account (an account makes at most four
    // reports at once), and waits a second when told to retry, as a
    // well-behaved client does.
    let mut authors = Vec::new();
    for i in 0..args.concurrent_reports {
        authors.push(sign_in_author(&base, &database.url, &format!("maker-{i}")).await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (made, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let makers: Vec<_> = authors
        .into_iter()
        .enumerate()
        .map(|(client_index, author)| {
            let (stop, made, refused, base, ranked) = (
                stop.clone(),
                made.clone(),
                refused.clone(),
                base.clone(),
                ranked.clone(),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut i = client_index;
                while !stop.load(Ordering::Relaxed) {
                    let body = if i % 3 == 0 {
                        json!({"template": "leaderboard", "format": "pdf",
                               "params": {"metric": "plays", "range": "7d", "limit": 100}})
                    } else {
                        json!({"template": "artist", "format": "pdf",
                               "params": {"artist_id": ranked[i * 53 % ranked.len()], "range": "30d"}})
                    };
                    match make(&client, &base, &author, &body).await {
                        Ok((201, _)) => {
                            made.fetch_add(1, Ordering::Relaxed);
                        }
                        outcome => {
                            if refused.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("a report was refused: {:?}", outcome.map(|(status, _)| status));
                            }
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                    i += args.concurrent_reports;
                }
            })
        })
        .collect();
    // Let the report queue fill before the reads start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let made_before = made.load(Ordering::Relaxed);
    let with_reports = mixed::run(
        &base,
        &readers,
        mixed::Source::Popular(catalogue.clone()),
        args.connections,
        duration,
    )
    .await?;
    let reports_per_s = (made.load(Ordering::Relaxed) - made_before) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for maker in makers {
        let _ = maker.await;
    }
    let (a, b) = (alone.total(), with_reports.total());
    println!();
    println!(
        "Mixed reads (Enterprise, live, {} distinct queries, {} connections), {} s each:",
        catalogue.len(),
        args.connections,
        args.seconds
    );
    println!();
    println!("| run | reads/s | p50 ms | p99 ms | reports made/s | reports refused |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| reads alone | {:.0} | {:.1} | {:.1} | – | – |",
        alone.per_s(&a),
        a.percentile_ms(0.5),
        a.percentile_ms(0.99)
    );
    println!(
        "| with {} clients making PDF reports | {:.0} | {:.1} | {:.1} | {:.1} | {} |",
        args.concurrent_reports,
        with_reports.per_s(&b),
        b.percentile_ms(0.5),
        b.percentile_ms(0.99),
        reports_per_s,
        refused.load(Ordering::Relaxed)
    );
    println!();
    println!(
        "Read p99 with reports / alone: **{:.2}×** (target ≤ 1.5×)",
        b.percentile_ms(0.99) / a.percentile_ms(0.99).max(0.001)
    );
    node.stop().await;
    database.drop_now().await;
    Ok(())
}

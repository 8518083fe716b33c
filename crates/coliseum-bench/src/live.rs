//! `coliseum bench live`: WebSocket subscribers of `GET /v1/live` from this
//! process (a separate one from the engine), spread over several loopback
//! source addresses so that ports do not run out, following a set of
//! distinct topics (boards and KPI series, as Enterprise and as Pro) while
//! plays arrive through the real webhook at a steady rate.
//!
//! It reports, for Enterprise subscribers, the time from a delivery's
//! acknowledgement to the receipt of the first update that includes it
//! (p50/p95/p99 over every update received); for Pro, the shortest gap
//! between two updates of one subscription (never under 60 s); the updates
//! pushed per second; the engine's CPU while pushing; and its resident
//! memory per connection.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use coliseum_domain::plans::{Plan, Role};
use coliseum_signatures::passport::WebhookKey;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::ingest::{BenchDatabase, Server};

#[derive(Debug, Clone, clap::Args)]
pub struct LiveBenchArgs {
    /// sqlite or postgres.
    #[arg(long, default_value = "sqlite")]
    pub backend: String,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres_url: String,
    /// WebSocket connections held open (each process may open at most its
    /// file-descriptor limit: `ulimit -n`).
    #[arg(long, default_value_t = 18_000)]
    pub connections: usize,
    /// Subscriptions on each connection.
    #[arg(long, default_value_t = 3)]
    pub subscriptions_per_connection: usize,
    /// One connection in this many is an Enterprise account's; the others Pro.
    #[arg(long, default_value_t = 10)]
    pub enterprise_one_in: usize,
    /// Distinct reads followed (each as Enterprise and as Pro).
    #[arg(long, default_value_t = 1_000)]
    pub topics: usize,
    /// Plays delivered per second while subscribers listen.
    #[arg(long, default_value_t = 1_000)]
    pub entries_per_s: u64,
    /// Seconds of steady state measured.
    #[arg(long, default_value_t = 90)]
    pub seconds: u64,
    /// Loopback source addresses the connections are spread over.
    #[arg(long, default_value_t = 8)]
    pub source_addresses: u8,
    /// PostgreSQL only: a second node that never processes serves the
    /// subscribers (deliveries go to the processing one), so the latency
    /// is a follower's freshness plus its push.
    #[arg(long)]
    pub follower: bool,
}

const CITIES: &[&str] = &[
    "Lagos",
    "Accra",
    "Nairobi",
    "Johannesburg",
    "Cairo",
    "Dakar",
    "Kigali",
    "Abuja",
    "Kampala",
];
const GENRES: &[&str] = &["afrobeats", "amapiano", "highlife", "gqom", "bongo"];
const ARTISTS: u32 = 500;

pub async fn run(args: LiveBenchArgs) -> anyhow::Result<()> {
    let (key, secret) = WebhookKey::generate();
    let key = Arc::new(key);
    let database = BenchDatabase::create(&args.backend, &args.postgres_url, "live").await?;
    let store = coliseum_http::app::open_store(&database.url).await?;
    let processing = Server::start(&database.url, &secret, true, &[]).await?;
    let base = processing.base_url.clone();
    let client = reqwest::Client::new();
    anyhow::ensure!(
        !args.follower || args.backend == "postgres",
        "--follower needs --backend postgres: a SQLite database has one node"
    );
    let follower = if args.follower {
        Some(Server::start(&database.url, &secret, false, &[]).await?)
    } else {
        None
    };
    // The node the subscribers are served by, measured.
    let server = follower.as_ref().unwrap_or(&processing);
    let served_by = server.base_url.clone();
    println!(
        "# coliseum bench live — {} backend, {} connections × {} subscriptions, 1 in {} Enterprise, {} topics, {} plays/s{}",
        args.backend,
        args.connections,
        args.subscriptions_per_connection,
        args.enterprise_one_in,
        args.topics,
        args.entries_per_s,
        if args.follower {
            ", subscribers on a following node"
        } else {
            ""
        }
    );

    // Figures for every topic to show, then the accounts.
    let seed = Deliveries::default();
    for batch in 0..20 {
        seed.deliver(&client, &base, &key, &store, batch, 1_000).await?;
    }
    let keys = Accounts::create(&store, &args).await?;
    let empty_rss = server.rss_mib().unwrap_or(0.0);

    // Connect everyone, a few hundred at a time.
    let topics = topics(args.topics);
    let deliveries = Arc::new(Deliveries::default());
    let samples = Arc::new(Samples::default());
    let stop = Arc::new(AtomicBool::new(false));
    let connected = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut subscribers = Vec::with_capacity(args.connections);
    for n in 0..args.connections {
        let enterprise = n % args.enterprise_one_in == 0;
        // Numbered within its plan, so that each account gets its share.
        let within = if enterprise {
            n / args.enterprise_one_in
        } else {
            n - n / args.enterprise_one_in - 1
        };
        let bearer = keys.for_connection(within, enterprise);
        let source = IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            0,
            1 + (n % usize::from(args.source_addresses.max(1))) as u8,
        ));
        let chosen: Vec<Value> = (0..args.subscriptions_per_connection)
            .map(|s| topics[(n * 7 + s * 131) % topics.len()].clone())
            .collect();
        let subscriber = Subscriber {
            base: served_by.clone(),
            source,
            bearer,
            topics: chosen,
            enterprise,
            deliveries: deliveries.clone(),
            samples: samples.clone(),
            connected: connected.clone(),
        };
        let gate = gate.clone();
        subscribers.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            subscriber.run(permit.ok()).await
        }));
    }
    while connected.load(Ordering::Relaxed) < args.connections as u64 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {} of {} subscribers connected in 10 minutes",
            connected.load(Ordering::Relaxed),
            args.connections
        );
        if subscribers.iter().any(tokio::task::JoinHandle::is_finished) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Some(at) = subscribers.iter().position(tokio::task::JoinHandle::is_finished) {
        let failed = subscribers.swap_remove(at).await;
        anyhow::bail!("subscriber {at} ended before all connected: {failed:?}");
    }
    let connect_s = started.elapsed().as_secs_f64();
    let connected_rss = server.rss_mib().unwrap_or(0.0);
    println!(
        "- {} connections, {} subscriptions, open in {connect_s:.1} s",
        args.connections,
        args.connections * args.subscriptions_per_connection
    );

    // Steady state: plays at the rate, subscribers measuring.
    samples.reset();
    let cpu_before = server.cpu_seconds().unwrap_or(0.0);
    let measured = Instant::now();
    let sender = {
        let (client, base, key, store, deliveries, stop) = (
            client.clone(),
            base.clone(),
            key.clone(),
            store.clone(),
            deliveries.clone(),
            stop.clone(),
        );
        let per_delivery = (args.entries_per_s / 10).max(1);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(100));
            let mut batch = 1_000;
            while !stop.load(Ordering::Relaxed) {
                ticks.tick().await;
                batch += 1;
                if let Err(error) = deliveries
                    .deliver(&client, &base, &key, &store, batch, per_delivery)
                    .await
                {
                    eprintln!("a delivery failed: {error:#}");
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let window_s = measured.elapsed().as_secs_f64();
    let cpu = (server.cpu_seconds().unwrap_or(0.0) - cpu_before) / window_s;
    let rss = server.rss_mib().unwrap_or(0.0);
    stop.store(true, Ordering::Relaxed);
    let _ = sender.await;
    let report = samples.report();
    let pushed = report.updates as f64 / window_s;
    println!(
        "- steady state over {window_s:.0} s: {:.0} plays/s delivered, **{pushed:.0} updates/s** received, engine CPU {:.2} cores ({:.1} µs per update)",
        deliveries.entries.load(Ordering::Relaxed) as f64 / window_s,
        cpu,
        cpu * 1e6 / pushed.max(1.0),
    );
    println!(
        "- Enterprise, acknowledgement → update received: p50 **{} ms**, p95 **{} ms**, p99 {} ms, max {} ms ({} updates)",
        report.enterprise.0, report.enterprise.1, report.enterprise.2, report.enterprise.3, report.enterprise_updates
    );
    println!(
        "- Pro: {} updates; the shortest gap between two updates of one subscription {}",
        report.pro_updates,
        report.pro_min_gap.map_or_else(
            || "(no subscription had two)".to_owned(),
            |gap| format!("{:.1} s", gap.as_secs_f64())
        )
    );
    println!(
        "- engine memory: {empty_rss:.0} MiB before the connections, {connected_rss:.0} MiB with them open \
         (**{:.1} KiB per connection**), {rss:.0} MiB at the end of the steady state; \
         the largest frame each connection was sent on subscribing averages {:.1} KiB",
        (connected_rss - empty_rss) * 1024.0 / args.connections as f64,
        samples.largest_first_frames.load(Ordering::Relaxed) as f64 / 1024.0 / args.connections as f64
    );
    for subscriber in subscribers {
        subscriber.abort();
    }
    if let Some(follower) = follower {
        follower.stop().await;
    }
    processing.stop().await;
    database.drop_now().await;
    Ok(())
}

/// The reads followed: boards by every KPI, range, city and genre, and
/// KPI series, in a fixed order.
fn topics(count: usize) -> Vec<Value> {
    let mut topics = Vec::with_capacity(count);
    let metrics = ["plays", "votes", "engagement", "revenue", "attendance"];
    let ranges = ["1h", "24h", "7d", "30d"];
    'all: for limit in [10, 25, 50, 100] {
        for range in ranges {
            for metric in metrics {
                for place in std::iter::once(None).chain(CITIES.iter().map(Some)) {
                    let mut topic = json!({"kind": "leaderboard", "metric": metric, "range": range, "limit": limit});
                    if let Some(city) = place {
                        topic["city"] = json!(city);
                    }
                    topics.push(topic);
                    if topics.len() + 60 >= count {
                        break 'all;
                    }
                }
            }
        }
    }
    for range in ranges {
        for genre in std::iter::once(None).chain(GENRES.iter().map(Some)) {
            for bucket in ["hour", "day"] {
                let mut topic = json!({"kind": "kpis", "range": range, "bucket": bucket});
                if let Some(genre) = genre {
                    topic["genre"] = json!(genre);
                }
                topics.push(topic);
            }
        }
    }
    topics.truncate(count);
    topics
}

/// API keys of the accounts the connections belong to: as many as the
/// per-account connection bounds need (Pro 20, Enterprise 200).
struct Accounts {
    enterprise: Vec<String>,
    pro: Vec<String>,
}

impl Accounts {
    async fn create(store: &Arc<dyn coliseum_store::Store>, args: &LiveBenchArgs) -> anyhow::Result<Self> {
        let enterprise_connections = args.connections.div_ceil(args.enterprise_one_in);
        let pro_connections = args.connections - enterprise_connections;
        let mut accounts = Self {
            enterprise: Vec::new(),
            pro: Vec::new(),
        };
        for (plan, count) in [
            (Plan::Enterprise, enterprise_connections.div_ceil(200)),
            (Plan::Pro, pro_connections.div_ceil(20)),
        ] {
            for n in 0..count {
                let user = store
                    .upsert_user(&coliseum_store::NewUser {
                        email: format!("live-{}-{n}@bench.test", plan.as_str()),
                        password_hash: "not used: the bench signs in with API keys".to_owned(),
                        role: Role::Fan,
                        plan,
                        artists: Vec::new(),
                        live_events: Vec::new(),
                    })
                    .await?;
                let key = coliseum_http::credentials::new_api_key();
                store
                    .create_api_key(
                        &coliseum_store::NewApiKey {
                            user_id: user.id,
                            name: "live bench".to_owned(),
                            key_hash: key.hash,
                            prefix: key.prefix,
                            created_at: time::OffsetDateTime::now_utc(),
                        },
                        &|_: &coliseum_store::ApiKey| None,
                    )
                    .await?;
                let bearer = format!("Bearer {}", key.key);
                match plan {
                    Plan::Enterprise => accounts.enterprise.push(bearer),
                    _ => accounts.pro.push(bearer),
                }
            }
        }
        Ok(accounts)
    }

    /// The key of the `n`th connection of a plan: accounts filled in turn.
    fn for_connection(&self, n: usize, enterprise: bool) -> String {
        let (keys, per_account) = if enterprise {
            (&self.enterprise, 200)
        } else {
            (&self.pro, 20)
        };
        keys[(n / per_account).min(keys.len() - 1)].clone()
    }
}

/// Deliveries made, in order: the last sequence number each stored and
/// when it was acknowledged.
#[derive(Default)]
struct Deliveries {
    acknowledged: RwLock<Vec<(i64, Instant)>>,
    entries: AtomicU64,
}

impl Deliveries {
    async fn deliver(
        &self,
        client: &reqwest::Client,
        base: &str,
        key: &WebhookKey,
        store: &Arc<dyn coliseum_store::Store>,
        batch: u64,
        count: u64,
    ) -> anyhow::Result<()> {
        let at = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
        let at = at.format(&time::format_description::well_known::Rfc3339)?;
        let events: Vec<Value> = (0..count)
            .map(|i| {
                let n = batch * 10_007 + i * 31;
                json!({
                    "event_id": format!("live-{batch}-{i}"), "schema_version": 1, "type": "audio.play",
                    "timestamp": at, "user_id": format!("fan_{}", n % 20_000),
                    "artist_id": format!("art_{}", n % u64::from(ARTISTS)),
                    "metadata": {"city": CITIES[(n % 9) as usize], "genre": GENRES[(n % 5) as usize]},
                    "engagement": {"duration_ms": 120_000}
                })
            })
            .collect();
        let body = json!({"events": events}).to_string();
        let url = format!("http://{base}/v1/passport/events");
        let (status, _) = crate::pipeline::post_for_fates(client, &url, key, body).await?;
        let acknowledged = Instant::now();
        anyhow::ensure!(status == 202, "a delivery got {status}");
        // One sender, one delivery at a time: the log's head is this delivery's last entry.
        let head = store.head_seq().await?;
        self.acknowledged
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((head, acknowledged));
        self.entries.fetch_add(count, Ordering::Relaxed);
        Ok(())
    }

    /// When the oldest delivery after `after` and up to `through` was acknowledged.
    fn oldest_between(&self, after: i64, through: i64) -> Option<Instant> {
        let acknowledged = self.acknowledged.read().unwrap_or_else(|p| p.into_inner());
        let first = acknowledged.partition_point(|(seq, _)| *seq <= after);
        acknowledged
            .get(first)
            .filter(|(seq, _)| *seq <= through)
            .map(|(_, at)| *at)
    }
}

/// Latencies (ms) of Enterprise updates and Pro update gaps, gathered from every subscriber.
#[derive(Default)]
struct Samples {
    enterprise_ms: Mutex<Vec<u32>>,
    enterprise_updates: AtomicU64,
    pro_updates: AtomicU64,
    pro_min_gap_ms: AtomicU64,
    measuring: AtomicBool,
    /// Per connection, the largest of its subscriptions' first frames,
    /// summed: about what the server's write buffers keep.
    largest_first_frames: AtomicU64,
}

struct Report {
    updates: u64,
    enterprise: (u32, u32, u32, u32),
    enterprise_updates: u64,
    pro_updates: u64,
    pro_min_gap: Option<Duration>,
}

impl Samples {
    fn reset(&self) {
        self.enterprise_ms.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.enterprise_updates.store(0, Ordering::Relaxed);
        self.pro_updates.store(0, Ordering::Relaxed);
        self.pro_min_gap_ms.store(u64::MAX, Ordering::Relaxed);
        self.measuring.store(true, Ordering::Relaxed);
    }

    fn report(&self) -> Report {
        self.measuring.store(false, Ordering::Relaxed);
        let mut ms = self.enterprise_ms.lock().unwrap_or_else(|p| p.into_inner()).clone();
        ms.sort_unstable();
        let at = |q: f64| {
            ms.get(((ms.len() as f64 * q) as usize).min(ms.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        let (enterprise_updates, pro_updates) = (
            self.enterprise_updates.load(Ordering::Relaxed),
            self.pro_updates.load(Ordering::Relaxed),
        );
        let gap = self.pro_min_gap_ms.load(Ordering::Relaxed);
        Report {
            updates: enterprise_updates + pro_updates,
            enterprise: (at(0.5), at(0.95), at(0.99), ms.last().copied().unwrap_or(0)),
            enterprise_updates,
            pro_updates,
            pro_min_gap: (gap != u64::MAX).then(|| Duration::from_millis(gap)),
        }
    }
}

struct Subscriber {
    base: String,
    source: IpAddr,
    bearer: String,
    topics: Vec<Value>,
    enterprise: bool,
    deliveries: Arc<Deliveries>,
    samples: Arc<Samples>,
    connected: Arc<AtomicU64>,
}

impl Subscriber {
    async fn run(self, permit: Option<tokio::sync::OwnedSemaphorePermit>) -> anyhow::Result<()> {
        let address: SocketAddr = self.base.parse().context("the engine's address")?;
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(self.source, 0))?;
        let stream = socket.connect(address).await.context("connecting")?;
        let mut request = format!("ws://{}/v1/live", self.base).into_client_request()?;
        request.headers_mut().insert("authorization", self.bearer.parse()?);
        let config = WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0);
        let (mut socket, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .context("the WebSocket handshake")?;
        let mut last: HashMap<String, (i64, Option<Instant>)> = HashMap::new();
        for (n, topic) in self.topics.iter().enumerate() {
            let id = format!("t{n}");
            socket
                .send(Message::text(
                    json!({"op": "subscribe", "id": id, "topic": topic}).to_string(),
                ))
                .await?;
        }
        // The immediate states.
        let mut largest = 0;
        while last.len() < self.topics.len() {
            let Some(frame) = socket.next().await else {
                anyhow::bail!("closed while subscribing");
            };
            if let Message::Text(text) = frame? {
                let text = text.as_str();
                anyhow::ensure!(text.starts_with("{\"op\":\"update\""), "a subscription failed: {text}");
                largest = largest.max(text.len() as u64);
                if let Some((id, watermark)) = id_and_watermark(text) {
                    last.insert(id.to_owned(), (watermark, None));
                }
            }
        }
        drop(permit);
        self.samples.largest_first_frames.fetch_add(largest, Ordering::Relaxed);
        self.connected.fetch_add(1, Ordering::Relaxed);
        while let Some(frame) = socket.next().await {
            let Message::Text(text) = frame? else { continue };
            let Some((id, watermark)) = id_and_watermark(text.as_str()) else {
                continue;
            };
            let received = Instant::now();
            let Some((before, updated)) = last.get_mut(id) else {
                continue;
            };
            if self.samples.measuring.load(Ordering::Relaxed) {
                if self.enterprise {
                    self.samples.enterprise_updates.fetch_add(1, Ordering::Relaxed);
                    if let Some(acknowledged) = self.deliveries.oldest_between(*before, watermark) {
                        let ms = received.duration_since(acknowledged).as_millis() as u32;
                        self.samples
                            .enterprise_ms
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(ms);
                    }
                } else {
                    self.samples.pro_updates.fetch_add(1, Ordering::Relaxed);
                    if let Some(previous) = updated {
                        let gap = received.duration_since(*previous).as_millis() as u64;
                        self.samples.pro_min_gap_ms.fetch_min(gap, Ordering::Relaxed);
                    }
                }
            }
            *before = watermark;
            *updated = Some(received);
        }
        Ok(())
    }
}

/// The subscription id and watermark of an update frame, read from its
/// head (`{"op":"update","id":"t0","watermark":123,…`) without parsing the body.
fn id_and_watermark(frame: &str) -> Option<(&str, i64)> {
    let rest = frame.strip_prefix("{\"op\":\"update\",\"id\":\"")?;
    let (id, rest) = rest.split_once('"')?;
    let rest = rest.strip_prefix(",\"watermark\":")?;
    let end = rest.find(|c: char| !c.is_ascii_digit() && c != '-')?;
    Some((id, rest[..end].parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::id_and_watermark;

    #[test]
    fn the_head_of_an_update_frame_names_its_subscription_and_watermark() {
        let frame = r#"{"op":"update","id":"t2","watermark":1234,"data":{"watermark":1234}}"#;
        assert_eq!(id_and_watermark(frame), Some(("t2", 1234)));
        assert_eq!(id_and_watermark(r#"{"op":"error","id":"t2"}"#), None);
    }
}

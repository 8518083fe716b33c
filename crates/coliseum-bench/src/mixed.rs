//! The mixed read scenarios of `coliseum bench pipeline`: thousands of
//! distinct queries drawn the way dashboards send them, instead of one URL
//! from every connection (which only measures a cache hit).
//!
//! A query is drawn by category (leaderboards over every range with and
//! without city, genre or live-event filters and their combinations, custom
//! ranges, second pages, around-me for many artists, KPI series of the
//! platform, of artists and of live events with filters, DNA boards and
//! explanations), then by its parameters, the popular ones more often.
//! - **mixed**: a catalogue of distinct queries is drawn once; each request
//!   picks one of them with a Zipf-like popularity (a few are very common,
//!   most are rare), as real traffic does;
//! - **cold**: every request is a query not sent before in the run.
//!
//! Results are per category: requests, p50 and p99, and answers that were
//! not `200` (a `404` for around-me of an artist unranked in that range is
//! an answer, and is counted there).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use time::OffsetDateTime;

const CITIES: &[&str] = &[
    "lagos",
    "london",
    "new york",
    "tokyo",
    "são paulo",
    "berlin",
    "accra",
    "toronto",
];
const GENRES: &[&str] = &[
    "afrobeats",
    "hip-hop",
    "r&b",
    "pop",
    "house",
    "jazz",
    "k-pop",
    "amapiano",
];
const METRICS: &[(&str, u32)] = &[
    ("plays", 50),
    ("revenue", 15),
    ("engagement", 15),
    ("votes", 10),
    ("attendance", 10),
];
const RANGES: &[(&str, u32)] = &[("24h", 30), ("7d", 30), ("30d", 20), ("1h", 10), ("all", 10)];

/// What a request asks, for the per-category table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Category {
    Board,
    BoardFiltered,
    BoardCombined,
    BoardCustom,
    SecondPage,
    Around,
    KpisPlatform,
    KpisArtist,
    KpisLiveEvent,
    DnaBoard,
    DnaExplanation,
}

impl Category {
    pub(super) const ALL: [Category; 11] = [
        Category::Board,
        Category::BoardFiltered,
        Category::BoardCombined,
        Category::BoardCustom,
        Category::SecondPage,
        Category::Around,
        Category::KpisPlatform,
        Category::KpisArtist,
        Category::KpisLiveEvent,
        Category::DnaBoard,
        Category::DnaExplanation,
    ];

    pub(super) fn label(self) -> &'static str {
        match self {
            Category::Board => "leaderboard, no filter",
            Category::BoardFiltered => "leaderboard, city / genre / live event",
            Category::BoardCombined => "leaderboard, city + genre",
            Category::BoardCustom => "leaderboard, custom range",
            Category::SecondPage => "leaderboard, second page",
            Category::Around => "around-me",
            Category::KpisPlatform => "KPIs, platform (± city, genre)",
            Category::KpisArtist => "KPIs, artist (± city, genre)",
            Category::KpisLiveEvent => "KPIs, live event (± city, genre)",
            Category::DnaBoard => "DNA board (± genre)",
            Category::DnaExplanation => "DNA explanation",
        }
    }

    /// Share of requests, in thousandths.
    fn weight(self) -> u32 {
        match self {
            Category::Board => 180,
            Category::BoardFiltered => 140,
            Category::BoardCombined => 30,
            Category::BoardCustom => 50,
            Category::SecondPage => 40,
            Category::Around => 120,
            Category::KpisPlatform => 170,
            Category::KpisArtist => 80,
            Category::KpisLiveEvent => 30,
            Category::DnaBoard => 100,
            Category::DnaExplanation => 60,
        }
    }
}

/// Who sends a query: every reader is on the same plan; the artist and host
/// accounts are linked to the artists and live events whose KPIs they read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Reader {
    Fan,
    Artist,
    Host,
}

/// Session cookies of the three readers.
#[derive(Debug, Clone)]
pub(super) struct Readers {
    pub(super) fan: String,
    pub(super) artist: String,
    pub(super) host: String,
}

impl Readers {
    pub(super) fn cookie_of(&self, reader: Reader) -> &str {
        self.cookie(reader)
    }

    fn cookie(&self, reader: Reader) -> &str {
        match reader {
            Reader::Fan => &self.fan,
            Reader::Artist => &self.artist,
            Reader::Host => &self.host,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Query {
    pub(super) category: Category,
    pub(super) path: String,
    pub(super) reader: Reader,
}

/// What the readers may ask on their plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Everything, served live.
    Enterprise,
    /// Plays boards to rank 10, no custom ranges, no explanations, DNA
    /// domain A only; served as of the last 5-minute boundary.
    Free,
}

/// Draws queries like real traffic.
pub(super) struct Draw {
    rng: ChaCha8Rng,
    plan: Plan,
    artists: u32,
    /// The artists (and their live events) the artist and host readers are
    /// linked to.
    pub(super) linked: Vec<u32>,
    now: OffsetDateTime,
}

/// How many artists the artist reader is linked to (and the host reader to
/// one live event of each).
pub(super) const LINKED: u32 = 200;

impl Draw {
    pub(super) fn new(seed: u64, plan: Plan, artists: u32) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let linked = (0..LINKED).map(|_| skewed(&mut rng, artists)).collect();
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed),
            plan,
            artists,
            linked,
            now: OffsetDateTime::now_utc(),
        }
    }

    fn pick<T: Copy>(&mut self, options: &[(T, u32)]) -> T {
        let total: u32 = options.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.random_range(0..total.max(1));
        for (option, weight) in options {
            if roll < *weight {
                return *option;
            }
            roll -= weight;
        }
        options[0].0
    }

    fn one<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.rng.random_range(0..options.len())]
    }

    fn category(&mut self) -> Category {
        let allowed: Vec<(Category, u32)> = Category::ALL
            .iter()
            .filter(|c| {
                self.plan == Plan::Enterprise
                    || !matches!(
                        c,
                        Category::BoardCustom | Category::SecondPage | Category::Around | Category::DnaExplanation
                    )
            })
            .map(|c| (*c, c.weight()))
            .collect();
        self.pick(&allowed)
    }

    fn metric(&mut self) -> &'static str {
        if self.plan == Plan::Free {
            "plays"
        } else {
            self.pick(METRICS)
        }
    }

    /// `from` and `to` of a custom range within the last 30 days, as people
    /// pick them: half whole days (a date picker), a quarter the last few
    /// hours, a quarter any whole hours.
    fn custom(&mut self) -> String {
        let hour = self.now.unix_timestamp().div_euclid(3600);
        let (from, to) = match self.rng.random_range(0..4) {
            0 | 1 => {
                let end_day = hour.div_euclid(24) + 1 - self.rng.random_range(0..29);
                let days = self.rng.random_range(1..=14);
                ((end_day - days) * 24, end_day * 24)
            }
            2 => (hour + 1 - self.rng.random_range(1..=48), hour + 1),
            _ => {
                let to = hour - self.rng.random_range(0..24 * 29);
                (to - self.rng.random_range(1..24 * 14), to)
            }
        };
        let at = |h: i64| {
            OffsetDateTime::from_unix_timestamp(h * 3600)
                .map(|t| {
                    format!(
                        "{:04}-{:02}-{:02}T{:02}:00:00Z",
                        t.year(),
                        t.month() as u8,
                        t.day(),
                        t.hour()
                    )
                })
                .unwrap_or_default()
        };
        format!("range=custom&from={}&to={}", at(from), at(to))
    }

    fn range(&mut self) -> String {
        format!("range={}", self.pick(RANGES))
    }

    fn filters(&mut self) -> String {
        match self.rng.random_range(0..4) {
            0 => String::new(),
            1 => format!("&city={}", encode(self.one(CITIES))),
            2 => format!("&genre={}", encode(self.one(GENRES))),
            _ => format!("&city={}&genre={}", encode(self.one(CITIES)), encode(self.one(GENRES))),
        }
    }

    fn linked_artist(&mut self) -> u32 {
        self.linked[self.rng.random_range(0..self.linked.len())]
    }

    pub(super) fn next(&mut self) -> Query {
        let category = self.category();
        let (path, reader) = match category {
            Category::Board | Category::SecondPage => {
                let limit = if self.plan == Plan::Free { 10 } else { 25 };
                let (metric, range) = (self.metric(), self.range());
                (format!("/v1/leaderboards/{metric}?{range}&limit={limit}"), Reader::Fan)
            }
            Category::BoardFiltered => {
                let filter = match self.rng.random_range(0..10) {
                    0..=4 => format!("city={}", encode(self.one(CITIES))),
                    5..=8 => format!("genre={}", encode(self.one(GENRES))),
                    _ => {
                        let artist = skewed(&mut self.rng, self.artists.min(2_000));
                        format!("live_event_id=live_{artist}_0")
                    }
                };
                let (metric, range) = (self.metric(), self.range());
                (
                    format!("/v1/leaderboards/{metric}?{range}&{filter}&limit=25"),
                    Reader::Fan,
                )
            }
            Category::BoardCombined => {
                let (metric, range) = (self.metric(), self.range());
                let (city, genre) = (encode(self.one(CITIES)), encode(self.one(GENRES)));
                (
                    format!("/v1/leaderboards/{metric}?{range}&city={city}&genre={genre}&limit=25"),
                    Reader::Fan,
                )
            }
            Category::BoardCustom => {
                let (metric, range) = (self.metric(), self.custom());
                (format!("/v1/leaderboards/{metric}?{range}&limit=25"), Reader::Fan)
            }
            Category::Around => {
                let artist = skewed(&mut self.rng, self.artists);
                let range = self.one(&["24h", "7d", "30d", "all"]);
                (
                    format!("/v1/leaderboards/plays/around/art_{artist}?range={range}&n=5"),
                    Reader::Fan,
                )
            }
            Category::KpisPlatform | Category::KpisArtist | Category::KpisLiveEvent => {
                let range = if self.plan == Plan::Enterprise && self.rng.random_range(0..8) == 0 {
                    self.custom()
                } else {
                    self.range()
                };
                let bucket = self.one(&["hour", "day"]);
                let filters = self.filters();
                let (scope, reader) = match category {
                    Category::KpisPlatform => ("platform".to_owned(), Reader::Fan),
                    Category::KpisArtist => (format!("artist:art_{}", self.linked_artist()), Reader::Artist),
                    _ => (format!("live_event:live_{}_0", self.linked_artist()), Reader::Host),
                };
                (
                    format!("/v1/kpis?scope={scope}&{range}&bucket={bucket}{filters}"),
                    reader,
                )
            }
            Category::DnaBoard => {
                let domain = if self.plan == Plan::Free {
                    self.one(&["overall", "a"])
                } else {
                    self.one(&["overall", "a", "t", "g", "c"])
                };
                let range = self.one(&["7d", "30d", "all"]);
                let genre = if self.rng.random_bool(0.3) {
                    format!("&genre={}", encode(self.one(GENRES)))
                } else {
                    String::new()
                };
                (
                    format!("/v1/dna/leaderboards/{domain}?range={range}{genre}&limit=25"),
                    Reader::Fan,
                )
            }
            Category::DnaExplanation => {
                let artist = skewed(&mut self.rng, self.artists);
                (format!("/v1/dna/artists/art_{artist}"), Reader::Fan)
            }
        };
        Query { category, path, reader }
    }

    /// `count` distinct queries.
    pub(super) fn distinct(&mut self, count: usize) -> Vec<Query> {
        let mut seen = HashSet::with_capacity(count);
        let mut queries = Vec::with_capacity(count);
        let mut attempts = 0;
        while queries.len() < count && attempts < count * 50 {
            attempts += 1;
            let query = self.next();
            if seen.insert(query.clone()) {
                queries.push(query);
            }
        }
        queries
    }
}

/// The shape of a query for the idle-latency table: its category, its kind
/// of range, its bucket and which filters it has.
pub(super) fn shape(query: &Query) -> String {
    let has = |p: &str| query.path.contains(p);
    let range = if has("range=custom") {
        "custom"
    } else if has("range=all") {
        "all"
    } else {
        "1h–30d"
    };
    let bucket = if has("bucket=hour") {
        ", hourly"
    } else if has("bucket=day") {
        ", daily"
    } else {
        ""
    };
    let filters = match (has("city="), has("genre="), has("live_event_id=")) {
        (true, true, _) => ", city + genre",
        (true, false, _) => ", city",
        (false, true, _) => ", genre",
        (false, false, true) => ", live event",
        _ => "",
    };
    format!("{}: {range}{bucket}{filters}", query.category.label())
}

/// An artist number drawn with the generator's popularity (Zipf, s = 1.1),
/// so that popular artists are asked about more often.
fn skewed(rng: &mut ChaCha8Rng, artists: u32) -> u32 {
    // Inverse transform of a continuous Zipf: close enough for drawing.
    let n = f64::from(artists.max(1));
    let s = 1.1_f64;
    let u: f64 = rng.random();
    let max = (n.powf(1.0 - s) - 1.0) / (1.0 - s);
    let x = (1.0 + u * max * (1.0 - s)).powf(1.0 / (1.0 - s));
    (x.floor() as u32).saturating_sub(1).min(artists.saturating_sub(1))
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Per-category latencies and outcomes.
#[derive(Debug, Default, Clone)]
pub(super) struct Tally {
    pub(super) latencies_us: Vec<u64>,
    pub(super) not_ok: u64,
    pub(super) failed: u64,
}

impl Tally {
    pub(super) fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index] as f64 / 1000.0
    }
}

/// The outcome of one scenario.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) by_category: Vec<(Category, Tally)>,
    pub(super) seconds: f64,
}

impl Outcome {
    pub(super) fn total(&self) -> Tally {
        let mut total = Tally::default();
        for (_, tally) in &self.by_category {
            total.latencies_us.extend(&tally.latencies_us);
            total.not_ok += tally.not_ok;
            total.failed += tally.failed;
        }
        total
    }

    pub(super) fn per_s(&self, tally: &Tally) -> f64 {
        tally.latencies_us.len() as f64 / self.seconds.max(0.001)
    }
}

/// Where each request's query comes from.
pub(super) enum Source {
    /// A catalogue, drawn from with Zipf popularity (rank r with weight 1/r).
    Popular(Arc<Vec<Query>>),
    /// Each query once, in order; the run stops early if they run out.
    Once(Arc<Vec<Query>>),
}

/// Closed-loop requests from `connections` connections for `duration`.
pub(super) async fn run(
    base_url: &str,
    readers: &Readers,
    source: Source,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let source = Arc::new(source);
    let cumulative: Arc<Vec<f64>> = Arc::new(match &*source {
        Source::Popular(queries) => {
            let mut total = 0.0;
            (1..=queries.len())
                .map(|rank| {
                    total += 1.0 / rank as f64;
                    total
                })
                .collect()
        }
        Source::Once(_) => Vec::new(),
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|connection| {
            let (client, stop, next, source, cumulative) = (
                client.clone(),
                stop.clone(),
                next.clone(),
                source.clone(),
                cumulative.clone(),
            );
            let readers = readers.clone();
            let base = format!("http://{base_url}");
            tokio::spawn(async move {
                let mut rng = ChaCha8Rng::seed_from_u64(connection as u64);
                let mut tallies: Vec<Tally> = vec![Tally::default(); Category::ALL.len()];
                while !stop.load(Ordering::Relaxed) {
                    let query = match &*source {
                        Source::Popular(queries) => {
                            let total = cumulative.last().copied().unwrap_or(0.0);
                            let roll = rng.random::<f64>() * total;
                            let index = cumulative.partition_point(|c| *c < roll).min(queries.len() - 1);
                            &queries[index]
                        }
                        Source::Once(queries) => match queries.get(next.fetch_add(1, Ordering::Relaxed)) {
                            Some(query) => query,
                            None => break,
                        },
                    };
                    let cookie = readers.cookie(query.reader);
                    let mut url = format!("{base}{}", query.path);
                    if query.category == Category::SecondPage {
                        // The first page is an ordinary board read; the
                        // second follows its cursor.
                        let first = get(&client, &url, cookie, true).await;
                        let cursor = first
                            .as_ref()
                            .ok()
                            .and_then(|(_, body)| body.as_ref())
                            .and_then(|b| b.get("next_cursor"))
                            .and_then(|c| c.as_str())
                            .map(str::to_owned);
                        // A board of one page has no second: nothing to ask.
                        let Some(cursor) = cursor else {
                            continue;
                        };
                        url = format!("{url}&cursor={cursor}");
                    }
                    let sent = Instant::now();
                    let outcome = get(&client, &url, cookie, false).await;
                    let tally = &mut tallies[query.category as usize];
                    tally.latencies_us.push(sent.elapsed().as_micros() as u64);
                    match outcome {
                        Ok((200, _)) => {}
                        Ok((404, _)) if query.category == Category::Around => tally.not_ok += 1,
                        Ok((status, _)) if status < 500 && status != 429 => tally.not_ok += 1,
                        _ => tally.failed += 1,
                    }
                }
                tallies
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut merged: Vec<Tally> = vec![Tally::default(); Category::ALL.len()];
    for task in tasks {
        if let Ok(tallies) = task.await {
            for (into, from) in merged.iter_mut().zip(tallies) {
                into.latencies_us.extend(from.latencies_us);
                into.not_ok += from.not_ok;
                into.failed += from.failed;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Outcome {
        by_category: Category::ALL.into_iter().zip(merged).collect(),
        seconds,
    })
}

/// A `GET` with the reader's cookie: the status, and the body when asked for.
async fn get(
    client: &reqwest::Client,
    url: &str,
    cookie: &str,
    body: bool,
) -> anyhow::Result<(u16, Option<serde_json::Value>)> {
    let response = client.get(url).header(reqwest::header::COOKIE, cookie).send().await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    let body = if body && status == 200 {
        serde_json::from_slice(&bytes).ok()
    } else {
        None
    };
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_distinct_skewed_and_within_the_plan() {
        let mut draw = Draw::new(1, Plan::Free, 50_000);
        let queries = draw.distinct(2_000);
        assert_eq!(queries.len(), 2_000);
        assert!(queries.iter().all(|q| !q.path.contains("range=custom")));
        assert!(queries.iter().all(|q| !q.path.contains("/around/")));
        let artists: Vec<u32> = (0..10_000).map(|_| skewed(&mut draw.rng, 50_000)).collect();
        assert!(artists.iter().all(|a| *a < 50_000));
        let top = artists.iter().filter(|a| **a < 100).count();
        assert!(top > 3_000, "popular artists are drawn most: {top}");
        assert_eq!(encode("r&b é"), "r%26b%20%C3%A9");
    }
}

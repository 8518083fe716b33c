//! The web pages' server time, in `coliseum bench pipeline`: the pages a
//! dashboard user opens (Event Analytics, Global Leaderboards, an artist's
//! page), drawn as the mixed read scenarios draw their API reads, each
//! requested once on an idle engine (its reads built for it: what a person
//! who opens a new view waits for) and then again at once (the bodies it
//! reads are shared: what the next person with the same view waits for).
//! One connection on loopback, so the time is the server's.

use std::collections::BTreeMap;
use std::time::Instant;

use super::mixed::{self, Category, Query};

/// Pages of each kind measured.
const PER_KIND: usize = 100;

/// The page a person opens for the API read `query` makes, and its kind.
fn page_of(query: &Query) -> Option<(&'static str, String)> {
    let (path, params) = query.path.split_once('?').unwrap_or((query.path.as_str(), ""));
    let kept = |extra: &str| {
        let mut parts: Vec<&str> = params
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("limit=") && !p.starts_with("n="))
            .collect();
        if !extra.is_empty() {
            parts.push(extra);
        }
        parts.join("&")
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match query.category {
        Category::SecondPage => None,
        Category::KpisPlatform | Category::KpisArtist | Category::KpisLiveEvent => {
            Some(("Event Analytics", format!("/app/analytics?{}", kept(""))))
        }
        Category::Around => {
            let artist = segments.get(4)?;
            Some((
                "Global Leaderboards",
                format!("/app/leaderboards?{}", kept(&format!("board=plays&artist={artist}"))),
            ))
        }
        Category::DnaBoard => {
            let domain = segments.get(3)?;
            Some((
                "Global Leaderboards",
                format!("/app/leaderboards?{}", kept(&format!("board=dna-{domain}"))),
            ))
        }
        Category::DnaExplanation => Some(("artist", format!("/app/artists/{}", segments.get(3)?))),
        _ => {
            let metric = segments.get(2)?;
            Some((
                "Global Leaderboards",
                format!("/app/leaderboards?{}", kept(&format!("board={metric}"))),
            ))
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

/// Prints a table of the pages' times, first and second request.
pub(super) async fn latencies(base_url: &str, readers: &mixed::Readers, queries: &[Query]) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut measured: BTreeMap<&'static str, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
    let mut failures = 0;
    for query in queries {
        let Some((kind, path)) = page_of(query) else { continue };
        let (first, again) = measured.entry(kind).or_default();
        if first.len() >= PER_KIND {
            continue;
        }
        let cookie = readers.cookie_of(query.reader);
        for times in [&mut *first, &mut *again] {
            let sent = Instant::now();
            let response = client
                .get(format!("http://{base_url}{path}"))
                .header(reqwest::header::COOKIE, cookie)
                .header(reqwest::header::ACCEPT, "text/html")
                .send()
                .await?;
            let ok = response.status().is_success();
            let _ = response.bytes().await?;
            times.push(sent.elapsed().as_micros() as u64);
            if !ok {
                failures += 1;
            }
        }
    }
    println!();
    println!(
        "Web pages, Enterprise, idle engine, one connection ({PER_KIND} distinct pages of each kind, each opened twice; {failures} answers not 2xx):"
    );
    println!();
    println!("| page | first open p50 ms | p95 ms | max ms | opened again p50 ms | p95 ms |");
    println!("|---|---|---|---|---|---|");
    for (kind, (mut first, mut again)) in measured {
        first.sort_unstable();
        again.sort_unstable();
        println!(
            "| {kind} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            percentile(&first, 0.5),
            percentile(&first, 0.95),
            percentile(&first, 1.0),
            percentile(&again, 0.5),
            percentile(&again, 0.95)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mixed::Reader;

    fn query(category: Category, path: &str) -> Query {
        Query {
            category,
            path: path.to_owned(),
            reader: Reader::Fan,
        }
    }

    #[test]
    fn each_read_becomes_the_page_that_shows_it() {
        let cases = [
            (
                query(
                    Category::BoardCombined,
                    "/v1/leaderboards/votes?range=7d&city=lagos&genre=pop&limit=25",
                ),
                "/app/leaderboards?range=7d&city=lagos&genre=pop&board=votes",
            ),
            (
                query(Category::Around, "/v1/leaderboards/plays/around/art_9?range=30d&n=5"),
                "/app/leaderboards?range=30d&board=plays&artist=art_9",
            ),
            (
                query(
                    Category::KpisArtist,
                    "/v1/kpis?scope=artist:art_3&range=24h&bucket=hour",
                ),
                "/app/analytics?scope=artist:art_3&range=24h&bucket=hour",
            ),
            (
                query(Category::DnaBoard, "/v1/dna/leaderboards/t?range=7d&limit=25"),
                "/app/leaderboards?range=7d&board=dna-t",
            ),
            (
                query(Category::DnaExplanation, "/v1/dna/artists/art_4"),
                "/app/artists/art_4",
            ),
        ];
        for (query, page) in cases {
            assert_eq!(page_of(&query).map(|(_, p)| p).as_deref(), Some(page));
        }
        assert!(page_of(&query(Category::SecondPage, "/v1/leaderboards/plays?cursor=x")).is_none());
    }
}

//! Global Leaderboards: the five KPI boards and the DNA boards (overall and
//! the four domains, over 7 days, 30 days or all time), with range, city,
//! genre and live-event filters, pages, and a search that shows an artist
//! in place on its board.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use coliseum_domain::scoring::DnaDomain;
use coliseum_store::NameKind;
use serde_json::json;

use super::{PageQuery, body_of, href, locked_or, render, user_or_login};
use crate::app::AppState;
use crate::audit::RequestId;
use crate::problem::AppError;
use crate::routes::access::Caller;
use crate::views::boards::{AroundRequest, BOARD_PARAMETERS, PageRequest};
use crate::views::dna::DnaBoardRequest;
use crate::views::shared::Read;
use crate::web::models::{Board, Locked, Unit};
use crate::web::shell::Shell;

pub const PATH: &str = "/app/leaderboards";

/// The shortest search: one letter would match nearly every artist.
const MIN_SEARCH_CHARS: usize = 2;

/// A board a page names: `plays` … `engagement`, or `dna-overall`,
/// `dna-a` … `dna-c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardName {
    Kpi(&'static str),
    Dna(&'static str),
}

/// Every board in the order the switcher shows them.
pub const BOARDS: [(&str, &str); 10] = [
    ("plays", "Plays"),
    ("votes", "Votes"),
    ("attendance", "Attendance"),
    ("revenue", "Revenue"),
    ("engagement", "Engagement"),
    ("dna-overall", "DNA overall"),
    ("dna-a", "Cultural"),
    ("dna-t", "Behavioral"),
    ("dna-g", "Economic"),
    ("dna-c", "Spatial"),
];

impl BoardName {
    pub fn parse(name: &str) -> Result<Self, AppError> {
        let known = BOARDS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| AppError::parameter("board", format!("`{name}` is not a board")))?;
        Ok(match known.0.strip_prefix("dna-") {
            Some(domain) => Self::Dna(domain),
            None => Self::Kpi(known.0),
        })
    }

    pub fn title(self) -> String {
        match self {
            Self::Kpi(metric) => BOARDS.iter().find(|(n, _)| *n == metric).map_or("", |b| b.1).to_owned(),
            Self::Dna("overall") => "DNA overall".to_owned(),
            Self::Dna(letter) => {
                let domain = DnaDomain::ALL.iter().find(|d| d.letter() == letter);
                format!("DNA {}", domain.map_or(letter, |d| d.name()))
            }
        }
    }
}

/// The KPI ranges and the DNA ranges a switcher offers.
pub const KPI_RANGES: [(&str, &str); 6] = [
    ("1h", "Last hour"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("all", "All time"),
    ("custom", "Custom"),
];
pub const DNA_RANGES: [(&str, &str); 3] = [("7d", "7 days"), ("30d", "30 days"), ("all", "All time")];

/// The range switcher: every named range, and a custom range that starts
/// as the seven days up to the current whole hour (custom ranges are whole
/// hours; the form then edits its dates).
pub fn range_choices(
    state: &AppState,
    query: &PageQuery,
    path: &str,
    ranges: &[(&str, &str)],
    current: &str,
) -> Vec<Choice> {
    let now = state.clock.now();
    let to = now
        .replace_minute(0)
        .unwrap_or(now)
        .replace_second(0)
        .unwrap_or(now)
        .replace_nanosecond(0)
        .unwrap_or(now);
    let from = crate::views::reads::rfc3339(to - time::Duration::days(7));
    let to = crate::views::reads::rfc3339(to);
    ranges
        .iter()
        .map(|(r, label)| {
            let (from, to) = if *r == "custom" {
                (from.as_str(), to.as_str())
            } else {
                ("", "")
            };
            Choice {
                label: (*label).to_owned(),
                href: query.href(
                    path,
                    &[("range", r), ("from", from), ("to", to), ("cursor", ""), ("bucket", "")],
                ),
                current: *r == current,
            }
        })
        .collect()
}

fn range_title(range: &str) -> &'static str {
    KPI_RANGES.iter().find(|(r, _)| *r == range).map_or("24 hours", |r| r.1)
}

/// A KPI board's page as `caller` is served it, or what the plan locks.
pub async fn kpi_board(
    state: &AppState,
    caller: &Caller,
    request: &RequestId,
    metric: &str,
    query: &PageQuery,
    limit: usize,
) -> Result<Result<Board, Locked>, AppError> {
    let mut params = query.params(&[BOARD_PARAMETERS, &["cursor"]].concat()).into_inner();
    params.insert("limit".to_owned(), limit.to_string());
    let read = match locked_or(PageRequest::read(state, caller, metric, &params.into()))? {
        Ok(read) => read,
        Err(locked) => return Ok(Err(locked)),
    };
    let first_page = read.cursor.is_none();
    let body = body_of(state, caller, request, Read::Board(read)).await?;
    let range = query.get("range").unwrap_or("24h");
    let heading = format!(
        "{} · {}",
        BoardName::Kpi(metric_static(metric)).title(),
        range_title(range)
    );
    let unit = Unit::of_metric(metric);
    let mut board = Board::from_body(heading, unit, value_label(metric), &body);
    if first_page {
        let topic = json!({"kind": "leaderboard", "metric": metric, "limit": limit});
        board.topic = Some(topic_of(topic, query, BOARD_PARAMETERS));
    }
    paged(&mut board, &body, query);
    Ok(Ok(board))
}

/// A live topic's JSON: `base` with the query's values of `fields`.
pub fn topic_of(mut base: serde_json::Value, query: &PageQuery, fields: &[&str]) -> String {
    for name in fields {
        if let Some(value) = query.get(name) {
            base[*name] = json!(value);
        }
    }
    base.to_string()
}

/// A board page's links: the next page, and the whole board as CSV.
fn paged(board: &mut Board, body: &serde_json::Value, query: &PageQuery) {
    board.next = body
        .get("next_cursor")
        .and_then(|c| c.as_str())
        .map(|cursor| query.href(PATH, &[("cursor", cursor)]));
    board.csv = Some(query.href(&format!("{PATH}.csv"), &[("cursor", ""), ("q", ""), ("artist", "")]));
}

fn metric_static(metric: &str) -> &'static str {
    BOARDS.iter().find(|(n, _)| *n == metric).map_or("plays", |b| b.0)
}

fn value_label(metric: &str) -> String {
    BoardName::Kpi(metric_static(metric)).title()
}

/// An artist's place on a KPI board with `n` neighbours each side.
pub async fn around(
    state: &AppState,
    caller: &Caller,
    request: &RequestId,
    metric: &str,
    artist: &str,
    query: &PageQuery,
) -> Result<Result<Board, Locked>, AppError> {
    let mut map = query.params(BOARD_PARAMETERS).into_inner();
    map.insert("n".to_owned(), "5".to_owned());
    let read = match locked_or(AroundRequest::read(state, caller, metric, artist, &map.into()))? {
        Ok(read) => read,
        Err(locked) => return Ok(Err(locked)),
    };
    let body = body_of(state, caller, request, Read::Around(read)).await?;
    let name = body
        .get("artist_name")
        .and_then(|n| n.as_str())
        .unwrap_or(artist)
        .to_owned();
    let heading = format!("{name} on {}", BoardName::Kpi(metric_static(metric)).title());
    let mut board = Board::from_body(heading, Unit::of_metric(metric), value_label(metric), &body);
    let topic = json!({"kind": "around", "metric": metric, "artist_id": artist, "n": 5});
    board.topic = Some(topic_of(topic, query, BOARD_PARAMETERS));
    Ok(Ok(board))
}

/// A DNA board's page as `caller` is served it, or what the plan locks.
pub async fn dna_board(
    state: &AppState,
    caller: &Caller,
    request: &RequestId,
    domain: &str,
    query: &PageQuery,
    limit: usize,
) -> Result<Result<Board, Locked>, AppError> {
    let mut map = query.params(&["range", "genre", "cursor"]).into_inner();
    map.insert("limit".to_owned(), limit.to_string());
    let read = match locked_or(DnaBoardRequest::read(caller, domain, &map.into()))? {
        Ok(read) => read,
        Err(locked) => return Ok(Err(locked)),
    };
    let first_page = read.cursor.is_none();
    let body = body_of(state, caller, request, Read::DnaBoard(read)).await?;
    let range = query.get("range").unwrap_or("30d");
    let range_title = DNA_RANGES.iter().find(|(r, _)| *r == range).map_or(range, |r| r.1);
    let heading = format!("{} · {range_title}", BoardName::Dna(dna_static(domain)).title());
    let mut board = Board::from_body(heading, Unit::Score, "Score".to_owned(), &body);
    if first_page {
        let topic = json!({"kind": "dna_leaderboard", "domain": domain, "limit": limit});
        board.topic = Some(topic_of(topic, query, &["range", "genre"]));
    }
    paged(&mut board, &body, query);
    Ok(Ok(board))
}

fn dna_static(domain: &str) -> &'static str {
    ["overall", "a", "t", "g", "c"]
        .into_iter()
        .find(|d| *d == domain)
        .unwrap_or("overall")
}

/// A switcher's option: its label, its URL, whether it is the one shown.
pub struct Choice {
    pub label: String,
    pub href: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "leaderboards.html")]
struct LeaderboardsPage {
    shell: Shell,
    /// The "Generate report" form: this board, range and filters.
    report: Option<super::reports::Generate>,
    boards: Vec<Choice>,
    ranges: Vec<Choice>,
    dna: bool,
    board_name: String,
    range: String,
    city: String,
    genre: String,
    live_event_id: String,
    from: String,
    to: String,
    search: String,
    matches: Vec<Choice>,
    board: Option<Board>,
    locked: Option<Locked>,
    /// Why the artist searched for is not shown in place.
    note: Option<String>,
}

/// `GET /app/leaderboards`.
pub async fn page(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    query: Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let query = PageQuery::new(query);
    if let Err(redirect) = user_or_login(&caller, &query.href(PATH, &[])) {
        return Ok(redirect.into_response());
    }
    let name = query.get("board").unwrap_or("plays").to_owned();
    let board_name = BoardName::parse(&name)?;
    let search = query.get("q").unwrap_or_default().to_owned();
    // A search scans every name: two characters at least, and counted as a read.
    let matches: Vec<(String, String)> = if search.chars().count() >= MIN_SEARCH_CHARS {
        super::charge(&state, &caller, 1).await?;
        state.names.read().find(NameKind::Artist, &search, 8)
    } else {
        Vec::new()
    };
    let chosen = query
        .get("artist")
        .map(str::to_owned)
        .or_else(|| matches.first().map(|(id, _)| id.clone()));
    let outcome = match board_name {
        BoardName::Kpi(metric) => match &chosen {
            Some(artist) => around(&state, &caller, &request, metric, artist, &query).await,
            None => kpi_board(&state, &caller, &request, metric, &query, 25).await,
        },
        BoardName::Dna(domain) => dna_board(&state, &caller, &request, domain, &query, 25).await,
    };
    let (board, locked, note) = match outcome {
        Ok(Ok(board)) => (Some(board), None, None),
        Ok(Err(locked)) => (None, Some(locked), None),
        // An artist not ranked in the range, or past the plan's depth.
        Err(AppError::NotFound(why)) if chosen.is_some() => (None, None, Some(why)),
        Err(other) => return Err(other),
    };
    let dna = matches!(board_name, BoardName::Dna(_));
    let range = query.get("range").unwrap_or(if dna { "30d" } else { "24h" }).to_owned();
    let ranges = if dna { &DNA_RANGES[..] } else { &KPI_RANGES[..] };
    let report = caller.may(coliseum_domain::plans::Feature::Reports).is_ok().then(|| {
        let (metric, domain) = match board_name {
            BoardName::Kpi(metric) => (Some(metric), None),
            BoardName::Dna(domain) => (None, Some(domain)),
        };
        super::reports::Generate::new(
            crate::reports::document::Template::Leaderboard,
            &[
                ("metric", metric),
                ("domain", domain),
                ("range", Some(range.as_str())),
                ("from", query.get("from")),
                ("to", query.get("to")),
                ("city", query.get("city")),
                ("genre", query.get("genre")),
                ("live_event_id", query.get("live_event_id")),
            ],
        )
    });
    let page = LeaderboardsPage {
        shell: Shell::of(&caller, "leaderboards", "Global Leaderboards"),
        report,
        boards: BOARDS
            .iter()
            .map(|(n, label)| Choice {
                label: (*label).to_owned(),
                href: query.href(PATH, &[("board", n), ("cursor", ""), ("q", ""), ("artist", "")]),
                current: *n == name,
            })
            .collect(),
        ranges: range_choices(&state, &query, PATH, ranges, &range),
        dna,
        board_name: name,
        city: query.get("city").unwrap_or_default().to_owned(),
        genre: query.get("genre").unwrap_or_default().to_owned(),
        live_event_id: query.get("live_event_id").unwrap_or_default().to_owned(),
        from: query.get("from").unwrap_or_default().to_owned(),
        to: query.get("to").unwrap_or_default().to_owned(),
        range,
        matches: matches
            .iter()
            .map(|(id, artist_name)| Choice {
                label: artist_name.clone(),
                href: query.href(PATH, &[("artist", id), ("cursor", "")]),
                current: chosen.as_deref() == Some(id.as_str()),
            })
            .collect(),
        search,
        board,
        locked,
        note,
    };
    render(&page)
}

/// The artist page's URL.
pub fn artist_href(artist_id: &str) -> String {
    href(&format!("/app/artists/{}", urlencoded(artist_id)), &[])
}

/// A path segment, percent-encoded.
pub fn urlencoded(segment: &str) -> String {
    serde_urlencoded::to_string([("", segment)])
        .unwrap_or_default()
        .trim_start_matches('=')
        .replace('+', "%20")
}

//! The KPI leaderboards: a page of a board, or one artist's place and its
//! neighbours, by range, city, genre and live event, cut at the ranks the
//! caller's plan shows.
//!
//! Pages go through snapshots so that paging never repeats or skips an
//! artist. A cursor also carries the last artist of its page: once its
//! snapshot is no longer kept (under many distinct boards it may go within
//! seconds), the next page continues after that artist in the ranking
//! served now, as keyset pagination does, instead of failing.

use std::sync::Arc;

use coliseum_domain::kpi::Metric;
use coliseum_domain::plans::{Feature, leaderboard_depth};
use coliseum_engine::board::TOP;
use coliseum_engine::names::NamesRead;
use coliseum_engine::reads::{BoardQuery, Filters, Ranked, Ranking};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::reads::{check_read, depth_marker, read_range, rfc3339, visible_page};
use super::{RangeBody, UpgradeRequired};
use crate::app::AppState;
use crate::openapi::names::RangeName;
use crate::params::Params;
use crate::problem::AppError;
use crate::routes::access::{Audience, Caller};

/// The query parameters of a board, as documented.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct BoardParams {
    /// `24h` when absent; `custom` needs `from` and `to`.
    range: Option<RangeName>,
    /// The start of a `custom` range (RFC 3339).
    from: Option<String>,
    /// The end of a `custom` range (RFC 3339).
    to: Option<String>,
    /// Only entries in this city (any spelling; compared trimmed and lower-cased).
    city: Option<String>,
    /// Only entries of this genre.
    genre: Option<String>,
    /// Only entries of this live event.
    live_event_id: Option<String>,
}

/// The query parameters of a page of a board.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    /// Entries per page, 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The query parameters of an artist's neighbourhood.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AroundParams {
    /// Neighbours on each side, 0 to 50 (default 5).
    #[param(minimum = 0, maximum = 50)]
    n: Option<u32>,
}

pub const BOARD_PARAMETERS: &[&str] = &["range", "from", "to", "city", "genre", "live_event_id"];
pub const PAGE_PARAMETERS: &[&str] = &["limit", "cursor"];
pub const AROUND_PARAMETERS: &[&str] = &["n"];

fn read_metric(metric: &str) -> Result<Metric, AppError> {
    Metric::parse(metric).ok_or_else(|| {
        AppError::NotFound(format!(
            "there is no `{metric}` leaderboard (plays, votes, attendance, revenue, engagement)"
        ))
    })
}

/// The board a request names, if the caller's plan shows it.
fn read_board(state: &AppState, caller: &Caller, metric: &str, params: &Params) -> Result<BoardQuery, AppError> {
    let metric = read_metric(metric)?;
    if metric != Metric::Plays {
        caller.may(Feature::KpiLeaderboard(metric))?;
    }
    let query = BoardQuery {
        metric,
        range: read_range(params)?,
        filters: Filters {
            city: params.dimension("city")?,
            genre: params.dimension("genre")?,
            live_event: params.get("live_event_id").map(str::to_owned),
        },
    };
    let filters = &query.filters;
    let filtered = filters.city.is_some() || filters.genre.is_some() || filters.live_event.is_some();
    check_read(caller, query.range, filtered, state.clock.now())?;
    Ok(query)
}

/// A page of a board as asked and allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageRequest {
    pub query: BoardQuery,
    pub limit: usize,
    pub cursor: Option<BoardCursor>,
}

impl PageRequest {
    pub fn read(state: &AppState, caller: &Caller, metric: &str, params: &Params) -> Result<Self, AppError> {
        params.only(&[BOARD_PARAMETERS, PAGE_PARAMETERS].concat())?;
        let query = read_board(state, caller, metric, params)?;
        let cursor = params
            .get("cursor")
            .map(|cursor| {
                BoardCursor::decode(cursor)
                    .ok_or_else(|| AppError::parameter("cursor", "is not a cursor this endpoint gave out"))
            })
            .transpose()?;
        Ok(Self {
            query,
            limit: params.limit()? as usize,
            cursor,
        })
    }
}

/// An artist's neighbourhood on a board as asked and allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AroundRequest {
    pub query: BoardQuery,
    pub artist: String,
    /// Neighbours on each side.
    pub n: usize,
}

impl AroundRequest {
    pub fn read(
        state: &AppState,
        caller: &Caller,
        metric: &str,
        artist: &str,
        params: &Params,
    ) -> Result<Self, AppError> {
        params.only(&[BOARD_PARAMETERS, AROUND_PARAMETERS].concat())?;
        Ok(Self {
            query: read_board(state, caller, metric, params)?,
            artist: artist.to_owned(),
            n: params.number("n", 0..=50, 5)? as usize,
        })
    }
}

/// Where the next page of a board starts: an offset into a snapshot, and
/// the last artist before it (value and id) for when that snapshot is gone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BoardCursor {
    snapshot: u64,
    offset: usize,
    after: Option<(i64, String)>,
}

impl BoardCursor {
    fn encode(&self) -> String {
        use base64::Engine as _;
        let mut cursor = format!("{:x}-{:x}", self.snapshot, self.offset);
        if let Some((value, artist)) = &self.after {
            let artist = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(artist);
            cursor.push_str(&format!("-{value:x}-{artist}"));
        }
        cursor
    }

    fn decode(cursor: &str) -> Option<Self> {
        use base64::Engine as _;
        let mut parts = cursor.splitn(4, '-');
        let snapshot = u64::from_str_radix(parts.next()?, 16).ok()?;
        let offset = usize::from_str_radix(parts.next()?, 16).ok()?;
        let after = match (parts.next(), parts.next()) {
            (None, None) => None,
            (Some(value), Some(artist)) => {
                let value = i64::from_str_radix(value, 16).ok()?;
                let artist = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(artist).ok()?;
                Some((value, String::from_utf8(artist).ok()?))
            }
            _ => return None,
        };
        Some(Self {
            snapshot,
            offset,
            after,
        })
    }
}

/// A value as served: engagement in points (one decimal), the rest as counted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Amount {
    Whole(i64),
    Points(f64),
}

fn amount(metric: Metric, value: i64) -> Amount {
    match metric {
        Metric::Engagement => Amount::Points(value as f64 / 10.0),
        _ => Amount::Whole(value),
    }
}

/// One ranked artist.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BoardEntry {
    /// Competition ranking: equal values share a rank.
    pub rank: u64,
    pub artist_id: String,
    /// `null` while no name is known.
    #[schema(required = true)]
    pub artist_name: Option<String>,
    /// Engagement in points (one decimal); revenue in minor units of the
    /// base currency; the others as counted.
    #[schema(value_type = f64)]
    pub value: Amount,
}

/// The filters in force: city and genre in their first spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BoardFilters {
    #[schema(required = true)]
    pub city: Option<String>,
    #[schema(required = true)]
    pub genre: Option<String>,
    #[schema(required = true)]
    pub live_event_id: Option<String>,
    #[schema(required = true)]
    pub live_event_name: Option<String>,
}

/// What every board body states: which board, as of when, how many ranked.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BoardHead {
    /// `plays`, `votes`, `attendance`, `revenue` or `engagement`.
    pub metric: &'static str,
    pub range: RangeBody,
    pub filters: BoardFilters,
    pub as_of: String,
    pub watermark: i64,
    /// Every artist with a figure on this board, shown or not.
    pub total_ranked: usize,
}

/// A page of a board.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BoardPage {
    #[serde(flatten)]
    pub head: BoardHead,
    pub entries: Vec<BoardEntry>,
    /// The next page; `null` on the last page the plan shows.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// Present when the page reaches the last rank the plan shows and more exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_required: Option<UpgradeRequired>,
}

/// An artist's place on a board and its neighbours.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AroundBody {
    #[serde(flatten)]
    pub head: BoardHead,
    pub artist_id: String,
    #[schema(required = true)]
    pub artist_name: Option<String>,
    pub rank: u64,
    pub entries: Vec<BoardEntry>,
    /// Present when the neighbourhood reaches the last rank the plan shows and more exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_required: Option<UpgradeRequired>,
}

fn head(state: &AppState, names: &NamesRead<'_>, ranking: &Ranking) -> BoardHead {
    let filters = &ranking.query.filters;
    let watermark = state.reads.current_watermark(ranking);
    BoardHead {
        metric: ranking.query.metric.as_str(),
        range: RangeBody::new(ranking.query.range, ranking.from, ranking.to),
        filters: BoardFilters {
            city: super::city_spelling(names, filters.city.as_ref()),
            genre: super::genre_spelling(names, filters.genre.as_ref()),
            live_event_id: filters.live_event.clone(),
            live_event_name: filters
                .live_event
                .as_deref()
                .and_then(|event| super::live_event_name(names, event)),
        },
        as_of: rfc3339(watermark.as_of),
        watermark: watermark.seq,
        total_ranked: ranking.board.ranked(),
    }
}

fn entries(names: &NamesRead<'_>, ranking: &Ranking, ranked: &[Ranked]) -> Vec<BoardEntry> {
    let metric = ranking.query.metric;
    ranked
        .iter()
        .map(|r| {
            let artist = ranking.board.name(r.id);
            BoardEntry {
                rank: u64::from(r.rank),
                artist_id: artist.to_owned(),
                artist_name: super::artist_name(names, artist),
                value: amount(metric, r.value),
            }
        })
        .collect()
}

/// The ranking a page reads and where the page starts in it.
async fn page_source(
    state: &AppState,
    request: &PageRequest,
    freshness_s: u32,
) -> Result<(Arc<Ranking>, usize), AppError> {
    let query = &request.query;
    let Some(cursor) = &request.cursor else {
        return Ok((state.served.leaderboard(query, freshness_s).await?, 0));
    };
    match state.served.snapshot(cursor.snapshot, freshness_s) {
        Some(ranking) if ranking.query != *query => Err(AppError::parameter(
            "cursor",
            "belongs to a leaderboard with other parameters; repeat them as they were",
        )),
        Some(ranking) => Ok((ranking, cursor.offset)),
        None => {
            let Some((value, artist)) = &cursor.after else {
                return Err(AppError::Gone {
                    detail: "the ranking this cursor pages through is no longer kept; start again without a cursor"
                        .to_owned(),
                });
            };
            let ranking = state.served.leaderboard(query, freshness_s).await?;
            state.served.ordered(&ranking).await?;
            let offset = ranking.board.after(*value, artist);
            Ok((ranking, offset))
        }
    }
}

/// The page `request` asks for, as `audience` is served it.
pub async fn page(state: &AppState, audience: Audience, request: &PageRequest) -> Result<BoardPage, AppError> {
    let (ranking, offset) = page_source(state, request, audience.freshness_s()).await?;
    let page = visible_page(audience, ranking.board.ranked(), offset, request.limit);
    if page.positions.end > TOP {
        state.served.ordered(&ranking).await?;
    }
    let next_cursor = page.next.map(|next| {
        BoardCursor {
            snapshot: ranking.id,
            offset: next,
            after: next.checked_sub(1).and_then(|last| {
                let last = ranking.board.page(last..last + 1).first().copied()?;
                Some((last.value, ranking.board.name(last.id).to_owned()))
            }),
        }
        .encode()
    });
    let names = state.names.read();
    Ok(BoardPage {
        head: head(state, &names, &ranking),
        entries: entries(&names, &ranking, &ranking.board.page(page.positions)),
        next_cursor,
        upgrade_required: page.upgrade_required,
    })
}

/// The neighbourhood `request` asks for, within the ranks `audience`'s plan
/// shows: an artist ranked past them is an upgrade away.
pub async fn around(state: &AppState, audience: Audience, request: &AroundRequest) -> Result<AroundBody, AppError> {
    let ranking = state.served.leaderboard(&request.query, audience.freshness_s()).await?;
    state.served.ordered(&ranking).await?;
    let depth = leaderboard_depth(&audience.subject());
    let ranked = ranking.board.ranked();
    let visible = depth.map_or(ranked, |depth| depth.min(ranked));
    let artist = &request.artist;
    // An artist ranked beyond what the plan shows gets the answer an
    // unranked one gets: a different one would reveal the hidden ranks.
    let position = ranking
        .board
        .position(artist)
        .filter(|&position| position < visible)
        .ok_or_else(|| {
            AppError::NotFound(match depth {
                Some(depth) => {
                    format!("artist `{artist}` is not among the top {depth} of this leaderboard that your plan shows")
                }
                None => format!(
                    "artist `{artist}` is not ranked on this leaderboard (no {} in the range)",
                    request.query.metric.as_str()
                ),
            })
        })?;
    let from = position.saturating_sub(request.n);
    let to = (position + request.n + 1).min(visible);
    let neighbours = ranking.board.page(from..to);
    let names = state.names.read();
    Ok(AroundBody {
        head: head(state, &names, &ranking),
        artist_id: artist.clone(),
        artist_name: super::artist_name(&names, artist),
        rank: u64::from(neighbours[position - from].rank),
        entries: entries(&names, &ranking, &neighbours),
        upgrade_required: (to == visible && ranked > visible).then(|| depth_marker(audience, visible)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_with_and_without_the_last_artist() {
        for cursor in [
            BoardCursor {
                snapshot: 0xabc,
                offset: 25,
                after: Some((1_234, "art-1/é".to_owned())),
            },
            BoardCursor {
                snapshot: 7,
                offset: 0,
                after: None,
            },
        ] {
            assert_eq!(BoardCursor::decode(&cursor.encode()), Some(cursor));
        }
        for bad in ["", "zz-1", "1-2-3", "1-2-x-YQ", "1-2-3-!!"] {
            assert_eq!(BoardCursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn engagement_is_served_in_points_and_counts_whole() {
        assert_eq!(
            serde_json::to_value(amount(Metric::Engagement, 25)).ok(),
            Some(serde_json::json!(2.5))
        );
        assert_eq!(
            serde_json::to_value(amount(Metric::Plays, 25)).ok(),
            Some(serde_json::json!(25))
        );
    }
}

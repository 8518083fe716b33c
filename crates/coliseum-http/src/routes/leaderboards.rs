//! `GET /v1/leaderboards/{metric}` and `…/around/{artist_id}`: KPI
//! leaderboards by range, city, genre and live event, paginated through
//! snapshots so that paging never repeats or skips an artist. A cursor also
//! carries the last artist of its page: once its snapshot is no longer kept
//! (under many distinct boards it may go within seconds), the next page
//! continues after that artist in the ranking served now, as keyset
//! pagination does, instead of failing.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use coliseum_domain::kpi::Metric;
use coliseum_domain::plans::{Feature, leaderboard_depth};
use coliseum_engine::board::TOP;
use coliseum_engine::reads::{BoardQuery, Filters, Ranked, Ranking};
use serde::Serialize;
use serde_json::Value;

use super::access::Caller;
use super::analytics::{check_read, depth_marker, range_json, read_range, rfc3339, visible_page};
use crate::app::AppState;
use crate::params::Params;
use crate::problem::AppError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/leaderboards/{metric}", get(leaderboard))
        .route("/v1/leaderboards/{metric}/around/{artist_id}", get(around))
}

fn read_metric(metric: &str) -> Result<Metric, AppError> {
    Metric::parse(metric).ok_or_else(|| {
        AppError::NotFound(format!(
            "there is no `{metric}` leaderboard (plays, votes, attendance, revenue, engagement)"
        ))
    })
}

/// The board a request names, if the caller's plan shows it.
fn read_query(state: &AppState, caller: &Caller, metric: Metric, params: &Params) -> Result<BoardQuery, AppError> {
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

/// Where the next page of a board starts: an offset into a snapshot, and
/// the last artist before it (value and id) for when that snapshot is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BoardCursor {
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
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Amount {
    Whole(i64),
    Points(f64),
}

fn amount(metric: Metric, value: i64) -> Amount {
    match metric {
        Metric::Engagement => Amount::Points(value as f64 / 10.0),
        _ => Amount::Whole(value),
    }
}

#[derive(Debug, Serialize)]
struct EntryBody<'a> {
    rank: u64,
    artist_id: &'a str,
    value: Amount,
}

#[derive(Debug, Serialize)]
struct FiltersBody<'a> {
    city: Option<&'a str>,
    genre: Option<&'a str>,
    live_event_id: Option<&'a str>,
}

/// A leaderboard page or the neighbourhood of one artist, written out as a
/// struct rather than a JSON tree: this is the hottest response of the API.
#[derive(Debug, Serialize)]
struct BoardBody<'a> {
    metric: &'static str,
    range: Value,
    filters: FiltersBody<'a>,
    as_of: String,
    watermark: i64,
    total_ranked: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    artist_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rank: Option<u64>,
    entries: Vec<EntryBody<'a>>,
    /// Present on pages (`null` on the last one), absent around an artist.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<Option<String>>,
    /// Present when the request reached past the ranks the plan shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    upgrade_required: Option<Value>,
}

fn board_body<'a>(state: &AppState, ranking: &'a Ranking, entries: &'a [Ranked]) -> BoardBody<'a> {
    let board = &ranking.board;
    let filters = &ranking.query.filters;
    let watermark = state.reads.current_watermark(ranking);
    let metric = ranking.query.metric;
    BoardBody {
        metric: metric.as_str(),
        range: range_json(ranking.query.range, ranking.from, ranking.to),
        filters: FiltersBody {
            city: filters.city.as_deref(),
            genre: filters.genre.as_deref(),
            live_event_id: filters.live_event.as_deref(),
        },
        as_of: rfc3339(watermark.as_of),
        watermark: watermark.seq,
        total_ranked: ranking.board.ranked(),
        artist_id: None,
        rank: None,
        entries: entries
            .iter()
            .map(|r| EntryBody {
                rank: r.rank,
                artist_id: board.name(r.id),
                value: amount(metric, r.value),
            })
            .collect(),
        next_cursor: None,
        upgrade_required: None,
    }
}

/// A cursor names the snapshot and the offset of the next page.
async fn leaderboard(
    State(state): State<AppState>,
    caller: Caller,
    Path(metric): Path<String>,
    params: Params,
) -> Result<Response, AppError> {
    params.only(&[
        "range",
        "from",
        "to",
        "city",
        "genre",
        "live_event_id",
        "limit",
        "cursor",
    ])?;
    let query = read_query(&state, &caller, read_metric(&metric)?, &params)?;
    let limit = params.limit()? as usize;
    let (ranking, offset): (Arc<Ranking>, usize) = match params.get("cursor") {
        None => (state.served.leaderboard(&query, caller.freshness_s()).await?, 0),
        Some(cursor) => {
            let cursor = BoardCursor::decode(cursor)
                .ok_or_else(|| AppError::parameter("cursor", "is not a cursor this endpoint gave out"))?;
            match state.served.snapshot(cursor.snapshot, caller.freshness_s()) {
                Some(ranking) if ranking.query != query => {
                    return Err(AppError::parameter(
                        "cursor",
                        "belongs to a leaderboard with other parameters; repeat them as they were",
                    ));
                }
                Some(ranking) => (ranking, cursor.offset),
                None => {
                    let Some((value, artist)) = &cursor.after else {
                        return Err(AppError::Gone {
                            detail:
                                "the ranking this cursor pages through is no longer kept; start again without a cursor"
                                    .to_owned(),
                        });
                    };
                    let ranking = state.served.leaderboard(&query, caller.freshness_s()).await?;
                    state.served.ordered(&ranking).await?;
                    let offset = ranking.board.after(*value, artist);
                    (ranking, offset)
                }
            }
        }
    };
    let page = visible_page(&caller, ranking.board.ranked(), offset, limit);
    if page.positions.end > TOP {
        state.served.ordered(&ranking).await?;
    }
    let mut body = board_body(&state, &ranking, ranking.board.page(page.positions));
    body.next_cursor = Some(page.next.map(|next| {
        BoardCursor {
            snapshot: ranking.id,
            offset: next,
            after: next
                .checked_sub(1)
                .and_then(|last| ranking.board.page(last..last + 1).first())
                .map(|last| (last.value, ranking.board.name(last.id).to_owned())),
        }
        .encode()
    }));
    body.upgrade_required = page.upgrade_required;
    Ok(Json(body).into_response())
}

/// An artist's place and its neighbours, within the ranks the plan shows:
/// an artist ranked past them is an upgrade away.
async fn around(
    State(state): State<AppState>,
    caller: Caller,
    Path((metric, artist)): Path<(String, String)>,
    params: Params,
) -> Result<Response, AppError> {
    params.only(&["range", "from", "to", "city", "genre", "live_event_id", "n"])?;
    let query = read_query(&state, &caller, read_metric(&metric)?, &params)?;
    let n = params.number("n", 0..=50, 5)? as usize;
    let ranking = state.served.leaderboard(&query, caller.freshness_s()).await?;
    state.served.ordered(&ranking).await?;
    let depth = leaderboard_depth(&caller.subject());
    let entries = ranking.entries();
    let visible = depth.map_or(entries.len(), |depth| depth.min(entries.len()));
    // An artist ranked beyond what the plan shows gets the answer an
    // unranked one gets: a different one would reveal the hidden ranks.
    let position = ranking
        .board
        .position(&artist)
        .filter(|&position| position < visible)
        .ok_or_else(|| {
            AppError::NotFound(match depth {
                Some(depth) => {
                    format!("artist `{artist}` is not among the top {depth} of this leaderboard that your plan shows")
                }
                None => format!(
                    "artist `{artist}` is not ranked on this leaderboard (no {} in the range)",
                    query.metric.as_str()
                ),
            })
        })?;
    let from = position.saturating_sub(n);
    let to = (position + n + 1).min(visible);
    let mut body = board_body(&state, &ranking, &entries[from..to]);
    body.artist_id = Some(&artist);
    body.rank = Some(entries[position].rank);
    if to == visible && entries.len() > visible {
        body.upgrade_required = Some(depth_marker(&caller, visible));
    }
    Ok(Json(body).into_response())
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
}

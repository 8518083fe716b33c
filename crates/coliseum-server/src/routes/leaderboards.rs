//! `GET /v1/leaderboards/{metric}` and `…/around/{artist_id}`: KPI
//! leaderboards by range, city, genre and live event, paginated through
//! snapshots so that paging never repeats or skips an artist.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use coliseum_domain::kpi::Metric;
use coliseum_engine::reads::{BoardQuery, Filters, Ranked, Ranking};
use serde_json::{Value, json};

use super::analytics::{freshness, range_json, read_range};
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

fn read_query(metric: Metric, params: &Params) -> Result<BoardQuery, AppError> {
    Ok(BoardQuery {
        metric,
        range: read_range(params)?,
        filters: Filters {
            city: params.dimension("city")?,
            genre: params.dimension("genre")?,
            live_event: params.get("live_event_id").map(str::to_owned),
        },
    })
}

/// A value as served: engagement in points (one decimal), the rest as counted.
fn value_json(metric: Metric, value: i64) -> Value {
    match metric {
        Metric::Engagement => json!(value as f64 / 10.0),
        _ => json!(value),
    }
}

fn entries_json(metric: Metric, entries: &[Ranked]) -> Vec<Value> {
    entries
        .iter()
        .map(|r| json!({"rank": r.rank, "artist_id": &*r.artist, "value": value_json(metric, r.value)}))
        .collect()
}

fn board_json(state: &AppState, ranking: &Ranking) -> serde_json::Map<String, Value> {
    let filters = &ranking.query.filters;
    let mut body = serde_json::Map::new();
    body.insert("metric".into(), json!(ranking.query.metric.as_str()));
    body.insert(
        "range".into(),
        range_json(ranking.query.range, ranking.from, ranking.to),
    );
    body.insert(
        "filters".into(),
        json!({"city": filters.city, "genre": filters.genre, "live_event_id": filters.live_event}),
    );
    body.extend(freshness(state.reads.current_watermark(ranking)));
    body.insert("total_ranked".into(), json!(ranking.entries.len()));
    body
}

/// A cursor names the snapshot and the offset of the next page.
fn encode_cursor(ranking: &Ranking, offset: usize) -> String {
    format!("{:x}-{offset:x}", ranking.id)
}

fn decode_cursor(cursor: &str) -> Option<(u64, usize)> {
    let (id, offset) = cursor.split_once('-')?;
    Some((
        u64::from_str_radix(id, 16).ok()?,
        usize::from_str_radix(offset, 16).ok()?,
    ))
}

async fn leaderboard(
    State(state): State<AppState>,
    Path(metric): Path<String>,
    params: Params,
) -> Result<Json<Value>, AppError> {
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
    let query = read_query(read_metric(&metric)?, &params)?;
    let limit = params.limit()? as usize;
    let (ranking, offset): (Arc<Ranking>, usize) = match params.get("cursor") {
        None => (state.reads.leaderboard(&query).await?, 0),
        Some(cursor) => {
            let (id, offset) = decode_cursor(cursor)
                .ok_or_else(|| AppError::parameter("cursor", "is not a cursor this endpoint gave out"))?;
            let ranking = state.reads.snapshot(id).ok_or_else(|| AppError::Gone {
                detail: "the ranking this cursor pages through is no longer kept; start again without a cursor"
                    .to_owned(),
            })?;
            if ranking.query != query {
                return Err(AppError::parameter(
                    "cursor",
                    "belongs to a leaderboard with other parameters; repeat them as they were",
                ));
            }
            (ranking, offset)
        }
    };
    let page = ranking
        .entries
        .iter()
        .skip(offset)
        .take(limit)
        .cloned()
        .collect::<Vec<_>>();
    let next = offset + page.len();
    let mut body = board_json(&state, &ranking);
    body.insert("entries".into(), json!(entries_json(query.metric, &page)));
    body.insert(
        "next_cursor".into(),
        json!((next < ranking.entries.len()).then(|| encode_cursor(&ranking, next))),
    );
    Ok(Json(Value::Object(body)))
}

async fn around(
    State(state): State<AppState>,
    Path((metric, artist)): Path<(String, String)>,
    params: Params,
) -> Result<Json<Value>, AppError> {
    params.only(&["range", "from", "to", "city", "genre", "live_event_id", "n"])?;
    let query = read_query(read_metric(&metric)?, &params)?;
    let n = params.number("n", 0..=50, 5)? as usize;
    let ranking = state.reads.leaderboard(&query).await?;
    let position = ranking.position(&artist).ok_or_else(|| {
        AppError::NotFound(format!(
            "artist `{artist}` is not ranked on this leaderboard (no {} in the range)",
            query.metric.as_str()
        ))
    })?;
    let from = position.saturating_sub(n);
    let to = (position + n + 1).min(ranking.entries.len());
    let mut body = board_json(&state, &ranking);
    body.insert("artist_id".into(), json!(artist));
    body.insert("rank".into(), json!(ranking.entries[position].rank));
    body.insert(
        "entries".into(),
        json!(entries_json(query.metric, &ranking.entries[from..to])),
    );
    Ok(Json(Value::Object(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        assert_eq!(decode_cursor("ff-19"), Some((255, 25)));
        assert_eq!(decode_cursor("nonsense"), None);
        assert_eq!(decode_cursor("zz-1"), None);
    }
}

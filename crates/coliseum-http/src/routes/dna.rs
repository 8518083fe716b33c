//! `GET /v1/dna/leaderboards/{domain}`, `/v1/dna/artists/{artist_id}` and
//! `/v1/dna/movers`: the published DNA scores (SCORING.md), their
//! explanation and the recorded mutations, within the caller's plan.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use coliseum_domain::plans::Feature;
use coliseum_domain::scoring::{COMPONENTS, DnaBoard, DnaDomain, ScoreRange, reported};
use coliseum_engine::dna::{Publication, RangeScores, movers};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::access::Caller;
use super::analytics::{decode_cursor, encode_cursor, rfc3339, visible_page};
use crate::app::AppState;
use crate::params::Params;
use crate::problem::AppError;
use coliseum_engine::served::boundary;

/// Movers look this far back (SCORING.md: "the last 7 days").
const MOVERS_WINDOW: time::Duration = time::Duration::days(7);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/dna/leaderboards/{domain}", get(leaderboard))
        .route("/v1/dna/artists/{artist_id}", get(artist))
        .route("/v1/dna/movers", get(movers_board))
}

fn read_board(domain: &str) -> Result<DnaBoard, AppError> {
    DnaBoard::parse(domain)
        .ok_or_else(|| AppError::NotFound(format!("there is no `{domain}` DNA board (overall, a, t, g, c)")))
}

fn read_score_range(params: &Params) -> Result<ScoreRange, AppError> {
    let raw = params.get("range").unwrap_or("30d");
    ScoreRange::parse(raw).ok_or_else(|| AppError::parameter("range", "must be 7d, 30d or all"))
}

/// A domain board needs its domain in the plan; the overall board is open to every plan.
fn check_board(caller: &Caller, board: DnaBoard) -> Result<(), AppError> {
    match board {
        DnaBoard::Overall => Ok(()),
        DnaBoard::Domain(domain) => caller.may(Feature::DnaDomain(domain)),
    }
}

/// The publication to read: the one the caller's plan is served (live,
/// or frozen at its freshness boundary), or one computed for `as_of`, which
/// may not be newer than that.
async fn publication(
    state: &AppState,
    caller: &Caller,
    params: &Params,
    range: ScoreRange,
) -> Result<Arc<Publication>, AppError> {
    match params.get("as_of") {
        None => Ok(state.served.publication(caller.freshness_s())),
        Some(raw) => {
            let as_of = OffsetDateTime::parse(raw, &Rfc3339)
                .map_err(|_| AppError::parameter("as_of", "must be an RFC 3339 instant"))?;
            let now = state.clock.now();
            if as_of > now {
                return Err(AppError::parameter("as_of", "must not be in the future"));
            }
            let freshness = caller.freshness_s();
            if freshness > 0 && as_of.unix_timestamp() > boundary(now, freshness) {
                return Err(AppError::parameter(
                    "as_of",
                    format!(
                        "must not be after the last {freshness}-second boundary: the newest state this plan is served"
                    ),
                ));
            }
            // Scores for an instant are computed from whole days of the
            // aggregates as they are now: for the day of the boundary they
            // would hold what arrived after it. A plan served as of a
            // boundary asks for past days; today's scores come without `as_of`.
            let today = now.replace_time(time::Time::MIDNIGHT);
            if freshness > 0 && as_of >= today {
                return Err(AppError::parameter(
                    "as_of",
                    "must be before today (UTC) on this plan: today's scores are served without `as_of`",
                ));
            }
            Ok(state.dna.at(as_of, range).await?)
        }
    }
}

fn scores_of(publication: &Publication, range: ScoreRange) -> Result<&RangeScores, AppError> {
    publication
        .range(range)
        .ok_or_else(|| AppError::Internal(format!("a publication without the {} range", range.as_str())))
}

async fn leaderboard(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    params: Params,
) -> Result<Response, AppError> {
    params.only(&["range", "genre", "as_of", "limit", "cursor"])?;
    let board = read_board(&domain)?;
    check_board(&caller, board)?;
    let range = read_score_range(&params)?;
    let genre = params.dimension("genre")?;
    if genre.is_some() {
        caller.may(Feature::Filters)?;
    }
    let limit = params.limit()? as usize;
    let (publication, offset) = match params.get("cursor") {
        None => (publication(&state, &caller, &params, range).await?, 0),
        Some(cursor) => {
            let (id, offset) = decode_cursor(cursor)
                .ok_or_else(|| AppError::parameter("cursor", "is not a cursor this endpoint gave out"))?;
            let publication = state
                .served
                .publication_by_id(id, caller.freshness_s())
                .ok_or_else(|| AppError::Gone {
                    detail: "the scores this cursor pages through are no longer kept; start again without a cursor"
                        .to_owned(),
                })?;
            (publication, offset)
        }
    };
    let entries = scores_of(&publication, range)?.board(board, genre.as_deref());
    let page = visible_page(&caller, entries.len(), offset, limit);
    let next_cursor = page.next.map(|next| encode_cursor(publication.id, next));
    let upgrade_required = page.upgrade_required;
    let page = &entries[page.positions];
    let mut body = json!({
        "domain": board.as_str(),
        "range": range.as_str(),
        "filters": {"genre": genre},
        "as_of": rfc3339(publication.as_of),
        "watermark": publication.watermark.seq,
        "total_ranked": entries.len(),
        "entries": page
            .iter()
            .map(|e| json!({"rank": e.rank, "artist_id": &*e.artist, "score": e.score}))
            .collect::<Vec<_>>(),
        "next_cursor": next_cursor,
        "config": publication.config,
    });
    if let Some(marker) = upgrade_required {
        body["upgrade_required"] = marker;
    }
    Ok(Json(body).into_response())
}

/// The "why this rank" view: needs the explanation in the plan, or an
/// artist account speaking for this artist.
async fn artist(
    State(state): State<AppState>,
    caller: Caller,
    Path(artist): Path<String>,
    params: Params,
) -> Result<Response, AppError> {
    params.only(&["range", "as_of"])?;
    caller.may(Feature::DnaExplanation { artist: &artist })?;
    let range = read_score_range(&params)?;
    let publication = publication(&state, &caller, &params, range).await?;
    let scores = scores_of(&publication, range)?;
    let scored = scores.artist(&artist).ok_or_else(|| {
        AppError::NotFound(format!(
            "artist `{artist}` has no counted entry in the {} range, so no DNA score",
            range.as_str()
        ))
    })?;
    let score = &scored.score;
    let domains: serde_json::Map<String, Value> = DnaDomain::ALL
        .iter()
        .enumerate()
        .map(|(d, domain)| {
            let components: serde_json::Map<String, Value> = (3 * d..3 * d + 3)
                .map(|c| {
                    let component = json!({"raw": score.raw[c], "percentile": score.percentile[c]});
                    (COMPONENTS[c].to_owned(), component)
                })
                .collect();
            let body = json!({
                "name": domain.name(),
                "score": reported(score.domains[d]),
                "unrounded": score.domains[d],
                "components": components,
            });
            (domain.letter().to_owned(), body)
        })
        .collect();
    let [passive, light, active, committed, patron] = score.entries_by_tier;
    Ok(Json(json!({
        "artist_id": artist,
        "range": range.as_str(),
        "as_of": rfc3339(publication.as_of),
        "watermark": publication.watermark.seq,
        "population": scores.artists.len(),
        "primary_genre": scored.primary_genre.as_deref(),
        "overall": {"score": reported(score.overall), "unrounded": score.overall},
        "domains": domains,
        "entries_by_tier": {
            "passive": passive, "light": light, "active": active, "committed": committed, "patron": patron,
        },
        "units": {
            "revenue_per_fan": "minor units of the base currency",
            "average_transaction_value": "minor units of the base currency",
            "monetization_efficiency": "minor units of the base currency per 1,000 plays",
            "repeat_engagement": "thousandths of a decayed point per fan",
            "cultural_influence": "thousandths of a decayed point",
        },
        "config": publication.config,
    }))
    .into_response())
}

async fn movers_board(State(state): State<AppState>, caller: Caller, params: Params) -> Result<Response, AppError> {
    params.only(&["domain", "range", "limit"])?;
    let domain = match params.get("domain").map(DnaBoard::parse) {
        None => return Err(AppError::parameter("domain", "is required: a, t, g or c")),
        Some(Some(DnaBoard::Domain(domain))) => domain,
        Some(_) => return Err(AppError::parameter("domain", "must be a, t, g or c")),
    };
    check_board(&caller, DnaBoard::Domain(domain))?;
    let range = read_score_range(&params)?;
    let limit = params.limit()? as usize;
    let since = state.clock.now() - MOVERS_WINDOW;
    // Nothing newer than the state the caller's plan is served.
    let newest = state.served.publication(caller.freshness_s()).as_of;
    let mut mutations = state.store.mutations_since(since).await?;
    mutations.retain(|m| m.at <= newest);
    let gains = movers(&mutations, domain, range);
    Ok(Json(json!({
        "domain": domain.letter(),
        "range": range.as_str(),
        "since": rfc3339(since),
        "entries": gains
            .iter()
            .take(limit)
            .map(|(artist, from, to)| json!({"artist_id": artist, "from": from, "to": to, "gain": reported(to - from)}))
            .collect::<Vec<_>>(),
    }))
    .into_response())
}

//! `GET /v1/dna/leaderboards/{domain}`, `/v1/dna/artists/{artist_id}` and
//! `/v1/dna/movers`: the published DNA scores (`views::dna`).

use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Caller;
use crate::app::AppState;
use crate::audit::RequestId;
use crate::openapi::Problems;
use crate::openapi::names::DnaBoardName;
use crate::params::Params;
use crate::problem::AppError;
use crate::views::dna::{
    DnaBoardBody, DnaBoardParams, DnaBoardRequest, ExplanationBody, ExplanationParams, ExplanationRequest, MoversBody,
    MoversParams, MoversRequest,
};
use crate::views::shared::{self, JsonBody, Read};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(leaderboard))
        .routes(routes!(artist))
        .routes(routes!(movers))
}

/// A page of a DNA board.
#[utoipa::path(
    get,
    path = "/v1/dna/leaderboards/{domain}",
    tag = "dna",
    params(
        ("domain" = DnaBoardName, Path, description = "The overall score or one domain"),
        DnaBoardParams,
    ),
    responses((status = 200, description = "A page of the board", body = DnaBoardBody), Problems),
    security((), ("session" = []), ("bearer" = [])),
)]
async fn leaderboard(
    State(state): State<AppState>,
    caller: Caller,
    Path(domain): Path<String>,
    params: Params,
    request_id: RequestId,
) -> Result<JsonBody, AppError> {
    let request = DnaBoardRequest::read(&caller, &domain, &params)?;
    shared::serve(&state, &caller, &request_id, Read::DnaBoard(request)).await
}

/// "Why this rank": an artist's DNA score explained.
#[utoipa::path(
    get,
    path = "/v1/dna/artists/{artist_id}",
    tag = "dna",
    params(("artist_id" = String, Path, description = "The artist"), ExplanationParams),
    responses((status = 200, description = "The explanation", body = ExplanationBody), Problems),
    security((), ("session" = []), ("bearer" = [])),
)]
async fn artist(
    State(state): State<AppState>,
    caller: Caller,
    Path(artist): Path<String>,
    params: Params,
    request_id: RequestId,
) -> Result<JsonBody, AppError> {
    let request = ExplanationRequest::read(&caller, &artist, &params)?;
    shared::serve(&state, &caller, &request_id, Read::Explanation(request)).await
}

/// The artists whose domain score rose most over the last 7 days.
#[utoipa::path(
    get,
    path = "/v1/dna/movers",
    tag = "dna",
    params(MoversParams),
    responses((status = 200, description = "The movers", body = MoversBody), Problems),
    security((), ("session" = []), ("bearer" = [])),
)]
async fn movers(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
    request_id: RequestId,
) -> Result<JsonBody, AppError> {
    let request = MoversRequest::read(&caller, &params)?;
    shared::serve(&state, &caller, &request_id, Read::Movers(request)).await
}

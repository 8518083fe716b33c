//! `GET /v1/leaderboards/{metric}` and `…/around/{artist_id}`: the KPI
//! leaderboards (`views::boards`).

use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Caller;
use crate::app::AppState;
use crate::audit::RequestId;
use crate::openapi::Problems;
use crate::openapi::names::MetricName;
use crate::params::Params;
use crate::problem::AppError;
use crate::views::boards::{AroundBody, AroundParams, AroundRequest, BoardPage, BoardParams, PageParams, PageRequest};
use crate::views::shared::{self, JsonBody, Read};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(leaderboard))
        .routes(routes!(around))
}

/// A page of a KPI leaderboard.
#[utoipa::path(
    get,
    path = "/v1/leaderboards/{metric}",
    tag = "analytics",
    params(
        ("metric" = MetricName, Path, description = "The KPI the board ranks by"),
        BoardParams,
        PageParams,
    ),
    responses((status = 200, description = "A page of the board", body = BoardPage), Problems),
    security((), ("session" = []), ("bearer" = [])),
)]
async fn leaderboard(
    State(state): State<AppState>,
    caller: Caller,
    Path(metric): Path<String>,
    params: Params,
    request_id: RequestId,
) -> Result<JsonBody, AppError> {
    let request = PageRequest::read(&state, &caller, &metric, &params)?;
    shared::serve(&state, &caller, &request_id, Read::Board(request)).await
}

/// An artist's place on a KPI leaderboard and its neighbours.
#[utoipa::path(
    get,
    path = "/v1/leaderboards/{metric}/around/{artist_id}",
    tag = "analytics",
    params(
        ("metric" = MetricName, Path, description = "The KPI the board ranks by"),
        ("artist_id" = String, Path, description = "The artist"),
        BoardParams,
        AroundParams,
    ),
    responses((status = 200, description = "The artist's place and neighbours", body = AroundBody), Problems),
    security((), ("session" = []), ("bearer" = [])),
)]
async fn around(
    State(state): State<AppState>,
    caller: Caller,
    Path((metric, artist)): Path<(String, String)>,
    params: Params,
    request_id: RequestId,
) -> Result<JsonBody, AppError> {
    let request = AroundRequest::read(&state, &caller, &metric, &artist, &params)?;
    shared::serve(&state, &caller, &request_id, Read::Around(request)).await
}

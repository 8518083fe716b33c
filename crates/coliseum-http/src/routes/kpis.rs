//! `GET /v1/kpis`: the KPI tiles (plays, votes, attendance, revenue,
//! engagement) of the platform, an artist or a live event, with an hourly or
//! daily series, over a range, optionally by city and genre.

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Caller;
use crate::app::AppState;
use crate::audit::RequestId;
use crate::openapi::Problems;
use crate::params::Params;
use crate::problem::AppError;
use crate::views::kpis::{KpisBody, KpisParams, KpisRequest};
use crate::views::shared::{self, JsonBody, Read};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(kpis))
}

/// The KPI tiles and their series.
#[utoipa::path(
    get,
    path = "/v1/kpis",
    tag = "analytics",
    params(KpisParams),
    responses((status = 200, description = "The tiles and their series", body = KpisBody), Problems),
    security((), ("session" = []), ("bearer" = [])),
)]
async fn kpis(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    params: Params,
) -> Result<JsonBody, AppError> {
    let read = KpisRequest::read(&state, &caller, &params)?;
    shared::serve(&state, &caller, &request, Read::Kpis(read)).await
}

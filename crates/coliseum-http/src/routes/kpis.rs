//! `GET /v1/kpis`: the KPI tiles (plays, votes, attendance, revenue,
//! engagement) of the platform, an artist or a live event, with an hourly or
//! daily series, over a range, optionally by city and genre.

use axum::Json;
use axum::extract::State;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Caller;
use crate::app::AppState;
use crate::audit::{self, RequestId};
use crate::openapi::Problems;
use crate::params::Params;
use crate::problem::AppError;
use crate::views::kpis::{KpisBody, KpisParams, KpisRequest};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(kpis))
}

/// An admin reading a tenant's full KPIs without being linked to it is
/// reading another subject's data: audited (PLANS.md, "Roles").
async fn audit_tenant_read(
    state: &AppState,
    caller: &Caller,
    request: &RequestId,
    artist: Option<&str>,
    live_event: Option<&str>,
) -> Result<(), AppError> {
    let Some(user) = &caller.user else { return Ok(()) };
    let subject = match (artist, live_event) {
        (Some(artist), _) if !user.artists.iter().any(|a| a == artist) => format!("artist:{artist}"),
        (_, Some(event)) if !user.live_events.iter().any(|e| e == event) => format!("live_event:{event}"),
        _ => return Ok(()),
    };
    let event = audit::Event {
        actor: caller.actor(),
        action: "tenant_data.read",
        subject,
        detail: json!({"endpoint": "/v1/kpis"}),
    };
    audit::record(state, request, event).await
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
) -> Result<Json<KpisBody>, AppError> {
    let read = KpisRequest::read(&state, &caller, &params)?;
    let (artist, live_event) = read.tenant();
    audit_tenant_read(&state, &caller, &request, artist, live_event).await?;
    Ok(Json(
        crate::views::kpis::kpis(&state, &read, caller.freshness_s()).await?,
    ))
}

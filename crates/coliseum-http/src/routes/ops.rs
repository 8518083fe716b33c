//! Operations: `/healthz` (alive), `/readyz` (able to serve), `/metrics`
//! (Prometheus text, for admins or holders of the metrics token).

use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::AdminUser;
use crate::app::AppState;
use crate::observability;
use crate::openapi::Problems;
use crate::problem::AppError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[derive(Debug, Serialize, ToSchema)]
struct Alive {
    /// `ok`.
    status: &'static str,
}

/// Alive: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Alive), Problems),
    security(()),
)]
async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

#[derive(Debug, Serialize, ToSchema)]
struct Ready {
    /// `ready`.
    status: &'static str,
    /// `sqlite` or `postgres`.
    backend: &'static str,
    /// `running`, `paused`, or `elsewhere` (this node does not process).
    processor: &'static str,
}

/// Ready when the store answers (migrations ran before the listener opened)
/// and the processor is running, or paused on purpose.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses((status = 200, description = "Ready", body = Ready), Problems),
    security(()),
)]
async fn readyz(State(state): State<AppState>) -> Result<Json<Ready>, AppError> {
    let unready = |error: coliseum_store::StoreError| {
        tracing::warn!(error = %error, "not ready");
        AppError::Unavailable {
            detail: "the store is unreachable".to_owned(),
            retry_after_s: 5,
        }
    };
    state.store.ping().await.map_err(unready)?;
    let pipeline = state.store.pipeline_state().await.map_err(unready)?;
    Ok(Json(Ready {
        status: "ready",
        backend: state.store.backend(),
        processor: match (state.settings.process, pipeline.paused) {
            (false, _) => "elsewhere",
            (true, true) => "paused",
            (true, false) => "running",
        },
    }))
}

/// Prometheus metrics, for admins or holders of the metrics token.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The Prometheus text format", body = String, content_type = "text/plain"),
        Problems,
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn metrics(State(state): State<AppState>, request: Request) -> Result<Response, AppError> {
    let (mut parts, _) = request.into_parts();
    if !has_metrics_token(&state, &parts.headers) {
        AdminUser::from_request_parts(&mut parts, &state).await?;
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        observability::render_metrics(),
    )
        .into_response())
}

fn has_metrics_token(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(expected) = &state.settings.metrics_token else {
        return false;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(expected.expose().as_bytes())))
}

//! Operations: `/healthz` (alive), `/readyz` (able to serve), `/metrics`
//! (Prometheus text, for admins or holders of the metrics token).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::access::AdminUser;
use crate::app::AppState;
use crate::observability;
use crate::problem::AppError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the store answers (migrations ran before the listener opened)
/// and the processor is running, or paused on purpose.
async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    let unready = |error: coliseum_store::StoreError| {
        tracing::warn!(error = %error, "not ready");
        AppError::Unavailable {
            detail: "the store is unreachable".to_owned(),
            retry_after_s: 5,
        }
    };
    state.store.ping().await.map_err(unready)?;
    let pipeline = state.store.pipeline_state().await.map_err(unready)?;
    Ok(Json(json!({
        "status": "ready",
        "backend": state.store.backend(),
        "processor": match (state.settings.process, pipeline.paused) {
            (false, _) => "elsewhere",
            (true, true) => "paused",
            (true, false) => "running",
        },
    })))
}

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

//! The admin (DIA) panel's pipeline reads: `GET /v1/admin/pipeline`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::auth::AdminUser;
use crate::app::AppState;
use crate::problem::AppError;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/pipeline", get(pipeline))
}

/// Pipeline health. The processor arrives with the next part of the engine:
/// until then nothing is processed, so the whole log is the queue.
async fn pipeline(State(state): State<AppState>, AdminUser(admin): AdminUser) -> Result<Json<Value>, AppError> {
    tracing::debug!(admin = admin.id, "pipeline read");
    let log = state.store.log_stats().await?;
    let processed_seq = 0_i64;
    Ok(Json(json!({
        "paused": false,
        "head_seq": log.head_seq,
        "processed_seq": processed_seq,
        "queue_depth": log.head_seq - processed_seq,
        "ingest_per_s": state.stats.accepted.per_second(),
        "processed_per_s": 0.0,
        "error_rate_10m": 0.0,
        "latency_ms": {"p50": 0.0, "p95": 0.0, "p99": 0.0},
        "dead_letters": 0,
        "unrecognized": log.unrecognized,
        "ingest_queue_entries": state.ingest.queued_entries(),
    })))
}

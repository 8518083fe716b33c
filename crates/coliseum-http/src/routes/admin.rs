//! The admin (DIA) panel's endpoints: pipeline health, its history for
//! charts, pause and resume, the dead letters with their replay, and the
//! audit log. Every one requires an admin; every change is audited.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use coliseum_engine::health::{PipelineHealth, pipeline_health};
use coliseum_store::DeadLetter;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::access::AdminUser;
use crate::app::AppState;
use crate::audit::{self, RequestId};
use crate::params::Params;
use crate::problem::AppError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/pipeline", get(pipeline))
        .route("/v1/admin/pipeline/series", get(series))
        .route("/v1/admin/pipeline/pause", post(pause))
        .route("/v1/admin/pipeline/resume", post(resume))
        .route("/v1/admin/dead-letters", get(dead_letters))
        .route("/v1/admin/dead-letters/replay", post(replay_all))
        .route("/v1/admin/dead-letters/{seq}/replay", post(replay_one))
        .route("/v1/admin/audit", get(audit_log))
}

/// The audit record of an admin action on the pipeline.
fn admin_record(
    state: &AppState,
    request: &RequestId,
    admin: &coliseum_store::User,
    action: &str,
    detail: Value,
) -> coliseum_store::AuditRecord {
    let event = audit::Event {
        actor: format!("user:{}", admin.id),
        action,
        subject: "pipeline".to_owned(),
        detail,
    };
    audit::record_of(state, request, event)
}

/// `?actor=&action=&subject=&since=&limit=&cursor=`: newest first.
async fn audit_log(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    params: Params,
) -> Result<Json<Value>, AppError> {
    params.only(&["actor", "action", "subject", "since", "limit", "cursor"])?;
    let limit = params.limit()?;
    let since = params
        .get("since")
        .map(|text| {
            OffsetDateTime::parse(text, &Rfc3339)
                .map_err(|_| AppError::parameter("since", "is not an RFC 3339 instant"))
        })
        .transpose()?;
    let before_id = params
        .get("cursor")
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| AppError::parameter("cursor", "is not a cursor this endpoint gave out"))
        })
        .transpose()?;
    let mut records = state
        .store
        .audit_records(&coliseum_store::AuditQuery {
            actor: params.get("actor").map(str::to_owned),
            action: params.get("action").map(str::to_owned),
            subject: params.get("subject").map(str::to_owned),
            since,
            before_id,
            limit: limit + 1,
        })
        .await?;
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let next_cursor = more.then(|| records.last().map(|r| r.id.to_string())).flatten();
    let items: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "at": rfc3339(r.at),
                "actor": r.actor,
                "action": r.action,
                "subject": r.subject,
                "request_id": r.request_id,
                "detail": serde_json::from_str::<Value>(&r.detail).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Json(json!({"items": items, "next_cursor": next_cursor})))
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn health_json(health: &PipelineHealth) -> Value {
    json!({
        "paused": health.paused,
        "head_seq": health.head_seq,
        "processed_seq": health.processed_seq,
        "queue_depth": health.queue_depth,
        "ingest_per_s": health.ingest_per_s,
        "processed_per_s": health.processed_per_s,
        "error_rate_10m": health.error_rate_10m,
        "latency_ms": {
            "p50": health.latency_ms.p50,
            "p95": health.latency_ms.p95,
            "p99": health.latency_ms.p99,
        },
        "dead_letters": health.dead_letters,
        "unrecognized": health.unrecognized,
        "ingest_queue_entries": health.ingest_queue_entries,
    })
}

async fn pipeline(State(state): State<AppState>, AdminUser(_): AdminUser) -> Result<Json<Value>, AppError> {
    let health = pipeline_health(state.store.as_ref(), &state.stats, &state.ingest, state.clock.now()).await?;
    Ok(Json(health_json(&health)))
}

/// The figures a chart can plot, by name.
const SERIES: &[&str] = &[
    "queue_depth",
    "ingest_per_s",
    "processed_per_s",
    "error_rate_10m",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "dead_letters",
];

fn series_value(health: &PipelineHealth, metric: &str) -> f64 {
    match metric {
        "queue_depth" => health.queue_depth as f64,
        "ingest_per_s" => health.ingest_per_s,
        "processed_per_s" => health.processed_per_s,
        "error_rate_10m" => health.error_rate_10m,
        "latency_p50_ms" => health.latency_ms.p50,
        "latency_p95_ms" => health.latency_ms.p95,
        "latency_p99_ms" => health.latency_ms.p99,
        _ => health.dead_letters as f64,
    }
}

/// `?metric=…&range=1h|24h`: the readings sampled since the engine started.
async fn series(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    params: Params,
) -> Result<Json<Value>, AppError> {
    params.only(&["metric", "range"])?;
    let metric = params.required("metric")?;
    if !SERIES.contains(&metric) {
        return Err(AppError::parameter(
            "metric",
            format!("must be one of {}", SERIES.join(", ")),
        ));
    }
    let span = match params.get("range").unwrap_or("1h") {
        "1h" => Duration::hours(1),
        "24h" => Duration::hours(24),
        _ => return Err(AppError::parameter("range", "must be 1h or 24h")),
    };
    let to = state.clock.now();
    let points: Vec<Value> = state
        .health_history
        .since(to - span)
        .iter()
        .map(|h| json!({"t": rfc3339(h.at), "value": series_value(h, metric)}))
        .collect();
    Ok(Json(json!({
        "metric": metric,
        "range": {"from": rfc3339(to - span), "to": rfc3339(to)},
        "points": points,
    })))
}

async fn pause(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request: RequestId,
) -> Result<Json<Value>, AppError> {
    let record = admin_record(&state, &request, &admin, "pipeline.paused", json!({}));
    state.processor.pause(&record).await?;
    tracing::info!(admin = admin.id, "pipeline paused");
    Ok(Json(json!({"paused": true})))
}

async fn resume(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request: RequestId,
) -> Result<Json<Value>, AppError> {
    let record = admin_record(&state, &request, &admin, "pipeline.resumed", json!({}));
    state.processor.resume(&record).await?;
    tracing::info!(admin = admin.id, "pipeline resumed");
    Ok(Json(json!({"paused": false})))
}

fn dead_letter_json(letter: &DeadLetter) -> Value {
    json!({
        "id": letter.seq,
        "seq": letter.seq,
        "event_id": letter.event_id,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "state": letter.state.as_str(),
        "first_failed_at": rfc3339(letter.first_failed_at),
        "last_failed_at": rfc3339(letter.last_failed_at),
        "next_attempt_at": letter.next_attempt_at.map(rfc3339),
    })
}

/// `?limit=&cursor=&include_replayed=`: oldest first.
async fn dead_letters(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    params: Params,
) -> Result<Json<Value>, AppError> {
    params.only(&["limit", "cursor", "include_replayed"])?;
    let limit = params.limit()?;
    let after = match params.get("cursor") {
        None => 0,
        Some(cursor) => cursor
            .parse::<i64>()
            .map_err(|_| AppError::parameter("cursor", "is not a cursor this endpoint gave out"))?,
    };
    let include_replayed = params.flag("include_replayed", false)?;
    // One more than asked tells whether another page follows.
    let mut letters = state.store.dead_letters(after, limit + 1, include_replayed).await?;
    let more = letters.len() > limit as usize;
    letters.truncate(limit as usize);
    let next_cursor = more.then(|| letters.last().map(|l| l.seq.to_string())).flatten();
    Ok(Json(json!({
        "items": letters.iter().map(dead_letter_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

async fn replay_all(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request: RequestId,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let record = |replayed: &u64| {
        let detail = json!({"replayed": replayed});
        Some(admin_record(&state, &request, &admin, "dead_letters.replayed", detail))
    };
    let replayed = state.processor.replay_dead_letters(None, &record).await?;
    tracing::info!(admin = admin.id, replayed, "dead letters replayed");
    Ok((StatusCode::ACCEPTED, Json(json!({"replayed": replayed}))))
}

async fn replay_one(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request: RequestId,
    Path(seq): Path<String>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let seq: i64 = seq
        .parse()
        .map_err(|_| AppError::NotFound(format!("there is no dead letter {seq}")))?;
    // Nothing replayed is nothing done: no record, and a 404.
    let record = |replayed: &u64| {
        let detail = json!({"seq": seq});
        (*replayed > 0).then(|| admin_record(&state, &request, &admin, "dead_letters.replayed", detail))
    };
    let replayed = state.processor.replay_dead_letters(Some(seq), &record).await?;
    if replayed == 0 {
        return Err(AppError::NotFound(format!(
            "there is no dead letter {seq} waiting for a replay"
        )));
    }
    tracing::info!(admin = admin.id, seq, "dead letter replayed");
    Ok((StatusCode::ACCEPTED, Json(json!({"replayed": replayed}))))
}

//! The admin (DIA) panel's endpoints: pipeline health, its history for
//! charts, pause and resume, the dead letters with their replay, and the
//! audit log; the alert rules and their notifications (`alerts`). Every
//! one requires an admin; every change is audited.

pub(crate) mod alerts;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use coliseum_store::DeadLetter;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::AdminUser;
use crate::app::AppState;
use crate::audit::{self, RequestId};
use crate::openapi::Problems;
use crate::params::Params;
use crate::problem::AppError;
use crate::views::audit::{self as audit_view, AuditPage, AuditParams, AuditRequest};
use crate::views::pipeline::{self, PipelineBody, SeriesBody, SeriesParams, SeriesRequest};
use crate::views::rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_pipeline))
        .routes(routes!(series))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(dead_letters))
        .routes(routes!(replay_all))
        .routes(routes!(replay_one))
        .routes(routes!(audit_log))
        .merge(alerts::router())
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

/// The audit log, newest first.
#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    tag = "admin",
    params(AuditParams),
    responses((status = 200, description = "A page of the audit log", body = AuditPage), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn audit_log(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    params: Params,
) -> Result<Json<AuditPage>, AppError> {
    let request = AuditRequest::read(&params)?;
    Ok(Json(audit_view::page(&state, &request).await?))
}

/// The pipeline's health now.
#[utoipa::path(
    get,
    path = "/v1/admin/pipeline",
    tag = "admin",
    responses((status = 200, description = "The pipeline's health", body = PipelineBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn get_pipeline(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
) -> Result<Json<PipelineBody>, AppError> {
    Ok(Json(pipeline::pipeline(&state).await?))
}

/// One figure of the pipeline's health, sampled over the last hour or day.
#[utoipa::path(
    get,
    path = "/v1/admin/pipeline/series",
    tag = "admin",
    params(SeriesParams),
    responses((status = 200, description = "The readings, oldest first", body = SeriesBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn series(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    params: Params,
) -> Result<Json<SeriesBody>, AppError> {
    let request = SeriesRequest::read(&params)?;
    Ok(Json(pipeline::series(&state, &request)))
}

/// Whether the pipeline processes entries.
#[derive(Debug, Serialize, ToSchema)]
struct PausedBody {
    paused: bool,
}

/// Stops processing; ingestion goes on and entries wait.
#[utoipa::path(
    post,
    path = "/v1/admin/pipeline/pause",
    tag = "admin",
    responses((status = 200, description = "Paused", body = PausedBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn pause(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request: RequestId,
) -> Result<Json<PausedBody>, AppError> {
    let record = admin_record(&state, &request, &admin, "pipeline.paused", json!({}));
    state.processor.pause(&record).await?;
    tracing::info!(admin = admin.id, "pipeline paused");
    Ok(Json(PausedBody { paused: true }))
}

/// Resumes processing where it stopped.
#[utoipa::path(
    post,
    path = "/v1/admin/pipeline/resume",
    tag = "admin",
    responses((status = 200, description = "Running", body = PausedBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn resume(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request: RequestId,
) -> Result<Json<PausedBody>, AppError> {
    let record = admin_record(&state, &request, &admin, "pipeline.resumed", json!({}));
    state.processor.resume(&record).await?;
    tracing::info!(admin = admin.id, "pipeline resumed");
    Ok(Json(PausedBody { paused: false }))
}

/// An entry that failed to process, and what became of it.
#[derive(Debug, Serialize, ToSchema)]
struct DeadLetterBody {
    /// The same as `seq`: what a replay names.
    id: i64,
    /// The entry's place in the log.
    seq: i64,
    event_id: String,
    reason: String,
    attempts: i64,
    /// `retrying`, `dead` or `replayed`.
    state: &'static str,
    first_failed_at: String,
    last_failed_at: String,
    #[schema(required = true)]
    next_attempt_at: Option<String>,
}

impl From<&DeadLetter> for DeadLetterBody {
    fn from(letter: &DeadLetter) -> Self {
        Self {
            id: letter.seq,
            seq: letter.seq,
            event_id: letter.event_id.clone(),
            reason: letter.reason.clone(),
            attempts: letter.attempts.into(),
            state: letter.state.as_str(),
            first_failed_at: rfc3339(letter.first_failed_at),
            last_failed_at: rfc3339(letter.last_failed_at),
            next_attempt_at: letter.next_attempt_at.map(rfc3339),
        }
    }
}

/// The query parameters of the dead letters.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct DeadLetterParams {
    /// Letters per page, 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Include letters already replayed (default `false`).
    include_replayed: Option<bool>,
}

pub(crate) const DEAD_LETTER_PARAMETERS: &[&str] = &["limit", "cursor", "include_replayed"];

/// A page of dead letters, oldest first.
#[derive(Debug, Serialize, ToSchema)]
struct DeadLetterPage {
    items: Vec<DeadLetterBody>,
    /// The next page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// The dead letters, oldest first.
#[utoipa::path(
    get,
    path = "/v1/admin/dead-letters",
    tag = "admin",
    params(DeadLetterParams),
    responses((status = 200, description = "A page of dead letters", body = DeadLetterPage), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn dead_letters(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    params: Params,
) -> Result<Json<DeadLetterPage>, AppError> {
    params.only(DEAD_LETTER_PARAMETERS)?;
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
    Ok(Json(DeadLetterPage {
        items: letters.iter().map(DeadLetterBody::from).collect(),
        next_cursor,
    }))
}

/// How many dead letters went back to be processed.
#[derive(Debug, Serialize, ToSchema)]
struct ReplayedBody {
    replayed: u64,
}

/// Sends every waiting dead letter back to be processed.
#[utoipa::path(
    post,
    path = "/v1/admin/dead-letters/replay",
    tag = "admin",
    responses((status = 202, description = "Queued for processing", body = ReplayedBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn replay_all(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request: RequestId,
) -> Result<(StatusCode, Json<ReplayedBody>), AppError> {
    let record = |replayed: &u64| {
        let detail = json!({"replayed": replayed});
        Some(admin_record(&state, &request, &admin, "dead_letters.replayed", detail))
    };
    let replayed = state.processor.replay_dead_letters(None, &record).await?;
    tracing::info!(admin = admin.id, replayed, "dead letters replayed");
    Ok((StatusCode::ACCEPTED, Json(ReplayedBody { replayed })))
}

/// Sends one waiting dead letter back to be processed.
#[utoipa::path(
    post,
    path = "/v1/admin/dead-letters/{seq}/replay",
    tag = "admin",
    params(("seq" = String, Path, description = "The dead letter's `seq`")),
    responses((status = 202, description = "Queued for processing", body = ReplayedBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn replay_one(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request: RequestId,
    Path(seq): Path<String>,
) -> Result<(StatusCode, Json<ReplayedBody>), AppError> {
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
    Ok((StatusCode::ACCEPTED, Json(ReplayedBody { replayed })))
}

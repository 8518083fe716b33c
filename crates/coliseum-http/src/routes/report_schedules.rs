//! `/v1/report-schedules`: reports made and mailed weekly or monthly
//! (API.md, "Reports and sharing"). Basic and up, as reports; each
//! delivery counts against the month's quota like any report.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use coliseum_domain::plans::Feature;
use coliseum_store::{DeliveryRecord, NewSchedule, ScheduleRecord, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Caller;
use crate::app::AppState;
use crate::audit::{self, RequestId};
use crate::openapi::Problems;
use crate::problem::AppError;
use crate::reports::Format;
use crate::reports::document::ReportRequest;
use crate::reports::schedule::{Every, MAX_RECIPIENTS, MAX_SCHEDULES, WEEKDAYS, every_of, next_after};
use crate::views::rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(delete))
        .routes(routes!(deliveries))
}

/// A report to make and mail on a schedule.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    /// As `POST /v1/reports`.
    template: String,
    format: String,
    #[schema(value_type = Object)]
    #[serde(default)]
    params: Value,
    /// `week` or `month`.
    every: String,
    /// `HH:MM`, UTC.
    at: String,
    /// For weekly schedules: `monday` … `sunday`.
    #[serde(default)]
    weekday: Option<String>,
    /// For monthly schedules: 1 to 28.
    #[serde(default)]
    day: Option<u8>,
    /// 1 to 10 email addresses.
    recipients: Vec<String>,
    /// `attachment` (the file and its link) or `link`.
    deliver: String,
    /// Send only when the figures changed since the last delivery.
    #[serde(default)]
    only_if_changed: bool,
}

/// A schedule as recorded.
#[derive(Debug, Serialize, ToSchema)]
struct ScheduleOut {
    id: i64,
    #[serde(flatten)]
    schedule: ScheduleBody,
    /// The next delivery (or retry), UTC.
    next_at: String,
    created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct ScheduleList {
    items: Vec<ScheduleOut>,
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
struct DeliveryOut {
    at: String,
    /// `sent`, `skipped`, `retrying` or `failed`.
    status: String,
    attempt: i32,
    #[schema(required = true)]
    report_id: Option<String>,
    /// Why it failed or was skipped.
    #[schema(required = true)]
    detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct DeliveryList {
    /// Newest first, the latest 100.
    items: Vec<DeliveryOut>,
}

fn out(record: &ScheduleRecord) -> ScheduleOut {
    let s = &record.schedule;
    let every = every_of(s);
    ScheduleOut {
        id: record.id,
        schedule: ScheduleBody {
            template: s.template.clone(),
            format: s.format.clone(),
            params: serde_json::from_str(&s.params).unwrap_or(Value::Null),
            every: s.every.clone(),
            at: format!("{:02}:{:02}", s.at_minute / 60, s.at_minute % 60),
            weekday: match every {
                Every::Week { weekday } => WEEKDAYS.get(usize::from(weekday)).map(|d| (*d).to_owned()),
                Every::Month { .. } => None,
            },
            day: match every {
                Every::Month { day } => Some(day),
                Every::Week { .. } => None,
            },
            recipients: s.recipients.clone(),
            deliver: s.deliver.clone(),
            only_if_changed: s.only_if_changed,
        },
        next_at: rfc3339(s.next_at),
        created_at: rfc3339(s.created_at),
    }
}

/// `HH:MM` as minutes after midnight.
fn minutes(text: &str) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    let (hours, minutes): (u16, u16) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours < 24 && minutes < 60 && text.len() == 5).then_some(hours * 60 + minutes)
}

/// Schedules a report (Basic and up).
#[utoipa::path(
    post,
    path = "/v1/report-schedules",
    tag = "reports",
    request_body = ScheduleBody,
    responses((status = 201, description = "The schedule", body = ScheduleOut), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<ScheduleOut>), AppError> {
    let user = caller.user()?.clone();
    caller.may(Feature::Reports)?;
    if state.settings.smtp.is_none() {
        return Err(AppError::Unavailable {
            detail: "this server sends no email (no --smtp-url), so it cannot deliver scheduled reports".to_owned(),
            retry_after_s: 3600,
        });
    }
    let body: ScheduleBody = serde_json::from_slice(&body).map_err(|error| AppError::Malformed {
        detail: format!(
            "expected {{\"template\", \"format\", \"params\", \"every\", \"at\", \"weekday\" | \"day\", \
             \"recipients\", \"deliver\", \"only_if_changed\"}}: {error}"
        ),
        errors: Vec::new(),
    })?;
    Format::parse(&body.format).ok_or_else(|| AppError::field("/format", "must be pdf or json"))?;
    // The same checks as a report made now: a schedule that could never
    // deliver is refused today, not on its first delivery.
    ReportRequest::parse(&body.template, &body.params)?;
    let at_minute = minutes(&body.at).ok_or_else(|| AppError::field("/at", "must be a time as HH:MM (UTC)"))?;
    let every = match body.every.as_str() {
        "week" => {
            if body.day.is_some() {
                return Err(AppError::field("/day", "is for monthly schedules"));
            }
            let weekday = body.weekday.as_deref().unwrap_or("monday");
            let index = WEEKDAYS
                .iter()
                .position(|d| *d == weekday)
                .ok_or_else(|| AppError::field("/weekday", "must be monday to sunday"))?;
            Every::Week {
                weekday: u8::try_from(index).unwrap_or(0),
            }
        }
        "month" => {
            if body.weekday.is_some() {
                return Err(AppError::field("/weekday", "is for weekly schedules"));
            }
            let day = body.day.unwrap_or(1);
            if !(1..=28).contains(&day) {
                return Err(AppError::field("/day", "must be 1 to 28 (every month has it)"));
            }
            Every::Month { day }
        }
        _ => return Err(AppError::field("/every", "must be week or month")),
    };
    if body.recipients.is_empty() || body.recipients.len() > MAX_RECIPIENTS {
        return Err(AppError::field("/recipients", "must name 1 to 10 email addresses"));
    }
    for (i, recipient) in body.recipients.iter().enumerate() {
        if recipient.parse::<lettre::Address>().is_err() {
            return Err(AppError::field(&format!("/recipients/{i}"), "is not an email address"));
        }
    }
    if !matches!(body.deliver.as_str(), "attachment" | "link") {
        return Err(AppError::field("/deliver", "must be attachment or link"));
    }
    let now = state.clock.now();
    let (weekday, day) = match every {
        Every::Week { weekday } => (Some(i32::from(weekday)), None),
        Every::Month { day } => (None, Some(i32::from(day))),
    };
    let new = NewSchedule {
        user_id: user.id,
        template: body.template.clone(),
        format: body.format.clone(),
        params: body.params.to_string(),
        every: body.every.clone(),
        at_minute: i32::from(at_minute),
        weekday,
        day,
        recipients: body.recipients.clone(),
        deliver: body.deliver.clone(),
        only_if_changed: body.only_if_changed,
        created_at: now,
        next_at: next_after(now, every, at_minute),
    };
    let record = audit::record_of(
        &state,
        &request,
        audit::Event {
            actor: caller.actor(),
            action: "report_schedule.created",
            subject: format!("user:{}", user.id),
            detail: json!({"template": new.template, "every": new.every, "recipients": new.recipients.len()}),
        },
    );
    let created = state
        .store
        .create_schedule(&new, MAX_SCHEDULES, &record)
        .await
        .map_err(|error| match error {
            StoreError::LimitReached(detail) => AppError::Conflict(detail),
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(out(&created))))
}

/// The caller's schedules.
#[utoipa::path(
    get,
    path = "/v1/report-schedules",
    tag = "reports",
    responses((status = 200, description = "The schedules", body = ScheduleList), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<ScheduleList>, AppError> {
    let user = caller.user()?;
    let schedules = state.store.schedules_of(user.id).await?;
    Ok(Json(ScheduleList {
        items: schedules.iter().map(out).collect(),
    }))
}

fn schedule_id(id: &str) -> Result<i64, AppError> {
    id.parse()
        .map_err(|_| AppError::NotFound(format!("you have no report schedule {id}")))
}

/// Stops a schedule (its delivery log with it).
#[utoipa::path(
    delete,
    path = "/v1/report-schedules/{id}",
    tag = "reports",
    params(("id" = String, Path, description = "The schedule's `id`")),
    responses((status = 204, description = "Deleted"), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let user = caller.user()?;
    let number = schedule_id(&id)?;
    let record = audit::record_of(
        &state,
        &request,
        audit::Event {
            actor: caller.actor(),
            action: "report_schedule.deleted",
            subject: format!("user:{}", user.id),
            detail: json!({"schedule_id": number}),
        },
    );
    if state.store.delete_schedule(user.id, number, &record).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound(format!("you have no report schedule {id}")))
    }
}

/// A schedule's deliveries, newest first.
#[utoipa::path(
    get,
    path = "/v1/report-schedules/{id}/deliveries",
    tag = "reports",
    params(("id" = String, Path, description = "The schedule's `id`")),
    responses((status = 200, description = "The deliveries", body = DeliveryList), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryList>, AppError> {
    let user = caller.user()?;
    let number = schedule_id(&id)?;
    if !state.store.schedules_of(user.id).await?.iter().any(|s| s.id == number) {
        return Err(AppError::NotFound(format!("you have no report schedule {id}")));
    }
    let items = state
        .store
        .deliveries(number, 100)
        .await?
        .into_iter()
        .map(|DeliveryRecord { delivery, .. }| DeliveryOut {
            at: rfc3339(delivery.at),
            status: delivery.status,
            attempt: delivery.attempt,
            report_id: delivery.report_id,
            detail: delivery.detail,
        })
        .collect();
    Ok(Json(DeliveryList { items }))
}

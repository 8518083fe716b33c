//! `/v1/admin/alerts` and `/v1/admin/notifications`: the alert rules, their
//! state and configuration, silences, and every notification with what
//! became of it.

use axum::Json;
use axum::extract::{Path, State};
use coliseum_domain::alerts::{Route, RuleConfig, RuleName, Severity};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::alerts::{self, Rule, describe_value};
use crate::app::AppState;
use crate::audit::{self, RequestId};
use crate::openapi::Problems;
use crate::params::Params;
use crate::problem::AppError;
use crate::routes::access::AdminUser;
use crate::views::rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(update))
        .routes(routes!(silence))
        .routes(routes!(notifications))
}

/// A rule: its configuration and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertRuleBody {
    /// `queue_depth`, `error_rate`, `latency_p95`, `dead_letters` or `processor_down`.
    rule: &'static str,
    /// What the rule watches.
    description: &'static str,
    /// `ok`, `pending`, `firing` or `flapping`.
    state: &'static str,
    /// The last reading.
    value: f64,
    /// The last reading with its unit.
    value_text: String,
    /// The condition starts to hold above this value.
    fire_threshold: f64,
    /// A firing rule's condition holds until the value is at or below this.
    clear_threshold: f64,
    /// How long the condition holds before the rule fires.
    for_s: u64,
    /// How long the condition is clear before a firing rule resolves.
    keep_firing_for_s: u64,
    /// `warning` or `critical` (only critical rules page).
    severity: &'static str,
    /// Any of `slack`, `email`, `pagerduty`.
    routes: Vec<&'static str>,
    /// How often a firing rule is notified again.
    repeat_interval_s: u64,
    /// The window of the error rate and the latency.
    window_s: u64,
    /// The entries the window must hold for the error rate to fire.
    min_samples: u64,
    /// `flap_flips` changes within `flap_window_s` make the rule flapping (0: never).
    flap_window_s: u64,
    flap_flips: u32,
    #[schema(required = true)]
    silenced_until: Option<String>,
    /// When the current state began.
    #[schema(required = true)]
    since: Option<String>,
}

fn body_of(rule: &Rule, now: OffsetDateTime) -> AlertRuleBody {
    let config = &rule.config;
    AlertRuleBody {
        rule: rule.name.as_str(),
        description: rule.name.describe(),
        state: rule.state.phase.as_str(),
        value: rule.state.value,
        value_text: describe_value(rule.name, rule.state.value),
        fire_threshold: config.fire_threshold,
        clear_threshold: config.clear_threshold,
        for_s: config.for_s,
        keep_firing_for_s: config.keep_firing_for_s,
        severity: match config.severity {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
        },
        routes: config.routes.iter().map(|r| r.as_str()).collect(),
        repeat_interval_s: config.repeat_interval_s,
        window_s: config.window_s,
        min_samples: config.min_samples,
        flap_window_s: config.flap_window_s,
        flap_flips: config.flap_flips,
        silenced_until: config.silenced_until.filter(|until| *until > now).map(rfc3339),
        since: rule.state.since.map(rfc3339),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertRulesBody {
    rules: Vec<AlertRuleBody>,
}

/// The alert rules and their state.
#[utoipa::path(
    get,
    path = "/v1/admin/alerts",
    tag = "admin",
    responses((status = 200, description = "Every rule", body = AlertRulesBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn list(State(state): State<AppState>, AdminUser(_admin): AdminUser) -> Result<Json<AlertRulesBody>, AppError> {
    let now = state.clock.now();
    let rules = alerts::rules(&state).await?;
    Ok(Json(AlertRulesBody {
        rules: rules.iter().map(|rule| body_of(rule, now)).collect(),
    }))
}

/// A change to a rule: the fields given replace the rule's, the others stay.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleChange {
    fire_threshold: Option<f64>,
    clear_threshold: Option<f64>,
    for_s: Option<u64>,
    keep_firing_for_s: Option<u64>,
    /// `warning` or `critical`.
    #[schema(value_type = Option<String>)]
    severity: Option<Severity>,
    /// Any of `slack`, `email`, `pagerduty` (pagerduty for critical rules only).
    #[schema(value_type = Option<Vec<String>>)]
    routes: Option<Vec<Route>>,
    repeat_interval_s: Option<u64>,
    window_s: Option<u64>,
    min_samples: Option<u64>,
    flap_window_s: Option<u64>,
    flap_flips: Option<u32>,
}

impl AlertRuleChange {
    fn apply(self, mut config: RuleConfig) -> RuleConfig {
        macro_rules! take {
            ($($field:ident),*) => { $(if let Some(value) = self.$field { config.$field = value; })* };
        }
        take!(
            fire_threshold,
            clear_threshold,
            for_s,
            keep_firing_for_s,
            severity,
            routes,
            repeat_interval_s,
            window_s,
            min_samples,
            flap_window_s,
            flap_flips
        );
        config
    }
}

fn rule_named(name: &str) -> Result<RuleName, AppError> {
    RuleName::parse(name).ok_or_else(|| {
        let known: Vec<&str> = RuleName::ALL.iter().map(|r| r.as_str()).collect();
        AppError::NotFound(format!(
            "there is no alert rule `{name}` (the rules: {})",
            known.join(", ")
        ))
    })
}

fn body_json<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|error| AppError::Malformed {
        detail: format!("expected {expected}: {error}"),
        errors: Vec::new(),
    })
}

/// The rule's configuration as stored, or its defaults.
async fn current_config(state: &AppState, rule: RuleName) -> Result<RuleConfig, AppError> {
    Ok(alerts::rules(state)
        .await?
        .into_iter()
        .find(|r| r.name == rule)
        .map_or_else(|| rule.default_config(), |r| r.config))
}

/// Stores `config` for `rule` with its audit record, and answers the rule.
async fn save(
    state: &AppState,
    request: &RequestId,
    admin: &coliseum_store::User,
    rule: RuleName,
    config: &RuleConfig,
    action: &str,
) -> Result<Json<AlertRuleBody>, AppError> {
    let text = serde_json::to_string(config).map_err(|e| AppError::Internal(e.to_string()))?;
    let record = audit::record_of(
        state,
        request,
        audit::Event {
            actor: format!("user:{}", admin.id),
            action,
            subject: format!("alert:{}", rule.as_str()),
            detail: serde_json::from_str(&text).unwrap_or_else(|_| json!({})),
        },
    );
    state.store.save_alert_config(rule.as_str(), &text, &record).await?;
    tracing::info!(admin = admin.id, rule = rule.as_str(), action, "alert rule changed");
    let now = state.clock.now();
    let rules = alerts::rules(state).await?;
    let saved = rules
        .iter()
        .find(|r| r.name == rule)
        .ok_or_else(|| AppError::Internal("a rule vanished".to_owned()))?;
    Ok(Json(body_of(saved, now)))
}

/// Changes a rule's thresholds, durations, severity or routes.
#[utoipa::path(
    put,
    path = "/v1/admin/alerts/{rule}",
    tag = "admin",
    params(("rule" = String, Path, description = "The rule's name")),
    request_body = AlertRuleChange,
    responses((status = 200, description = "The rule as changed", body = AlertRuleBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn update(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request: RequestId,
    Path(rule): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<AlertRuleBody>, AppError> {
    let rule = rule_named(&rule)?;
    let change: AlertRuleChange = body_json(
        &body,
        "an object of fire_threshold, clear_threshold, for_s, keep_firing_for_s, severity, routes, \
         repeat_interval_s, window_s, min_samples, flap_window_s, flap_flips",
    )?;
    let config = change.apply(current_config(&state, rule).await?);
    config
        .validate()
        .map_err(|error| AppError::field(&format!("/{}", error.field), &error.problem))?;
    save(&state, &request, &admin, rule, &config, "alert.updated").await
}

/// Until when a rule is silenced; `null` lifts a silence.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceBody {
    /// An RFC 3339 instant in the next 90 days, or `null`.
    #[schema(required = true)]
    until: Option<String>,
}

/// Silences a rule's notifications until a time (they are recorded, not sent).
#[utoipa::path(
    post,
    path = "/v1/admin/alerts/{rule}/silence",
    tag = "admin",
    params(("rule" = String, Path, description = "The rule's name")),
    request_body = SilenceBody,
    responses((status = 200, description = "The rule as silenced", body = AlertRuleBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn silence(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    request: RequestId,
    Path(rule): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<AlertRuleBody>, AppError> {
    let rule = rule_named(&rule)?;
    let expected = r#"{"until": "<RFC 3339 instant>" | null}"#;
    let raw: serde_json::Value = body_json(&body, expected)?;
    if raw.get("until").is_none() {
        return Err(AppError::field(
            "/until",
            "is required: an RFC 3339 instant, or null to lift the silence",
        ));
    }
    let body: SilenceBody = serde_json::from_value(raw).map_err(|error| AppError::Malformed {
        detail: format!("expected {expected}: {error}"),
        errors: Vec::new(),
    })?;
    let now = state.clock.now();
    let until = match body.until.as_deref() {
        None => None,
        Some(text) => {
            let until = crate::web::format::parse_instant(text)
                .ok_or_else(|| AppError::field("/until", "must be an RFC 3339 instant such as 2026-12-05T18:00:00Z"))?;
            if until <= now {
                return Err(AppError::field(
                    "/until",
                    "must be in the future (null lifts a silence)",
                ));
            }
            if until > now + time::Duration::days(90) {
                return Err(AppError::field("/until", "must be within 90 days"));
            }
            Some(until)
        }
    };
    let mut config = current_config(&state, rule).await?;
    config.silenced_until = until;
    let action = if until.is_some() {
        "alert.silenced"
    } else {
        "alert.unsilenced"
    };
    save(&state, &request, &admin, rule, &config, action).await
}

/// A notification and what became of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationBody {
    id: i64,
    rule: String,
    /// `firing`, `resolved`, `flapping` or `repeat`.
    kind: String,
    /// `slack`, `email` or `pagerduty`.
    route: String,
    /// `sending`, `sent`, `failed`, or `silenced` (recorded, not sent).
    status: String,
    attempts: i32,
    at: String,
    /// What the message said.
    summary: String,
    value: String,
    threshold: String,
    /// The last failure.
    #[schema(required = true)]
    error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationsBody {
    notifications: Vec<NotificationBody>,
    /// The next (older) page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// The query parameters of the notifications.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct NotificationParams {
    /// Notifications per page, 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

pub(crate) const NOTIFICATION_PARAMETERS: &[&str] = &["limit", "cursor"];

/// Every notification, newest first.
#[utoipa::path(
    get,
    path = "/v1/admin/notifications",
    tag = "admin",
    params(NotificationParams),
    responses((status = 200, description = "A page of notifications", body = NotificationsBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn notifications(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    params: Params,
) -> Result<Json<NotificationsBody>, AppError> {
    params.only(NOTIFICATION_PARAMETERS)?;
    let limit = params.limit()?;
    let before = match params.get("cursor") {
        None => None,
        Some(cursor) => Some(
            cursor
                .parse::<i64>()
                .map_err(|_| AppError::parameter("cursor", "is not a cursor this endpoint gave out"))?,
        ),
    };
    let mut records = state.store.notifications(before, limit + 1).await?;
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let next_cursor = more.then(|| records.last().map(|r| r.id.to_string())).flatten();
    let notifications = records
        .into_iter()
        .map(|record| {
            let detail: serde_json::Value = serde_json::from_str(&record.notification.detail).unwrap_or_default();
            let text = |name: &str| detail[name].as_str().unwrap_or_default().to_owned();
            NotificationBody {
                id: record.id,
                summary: text("summary"),
                value: text("value"),
                threshold: text("threshold"),
                rule: record.notification.rule,
                kind: record.notification.kind,
                route: record.notification.route,
                status: record.status,
                attempts: record.attempts,
                at: rfc3339(record.notification.at),
                error: record.error,
            }
        })
        .collect();
    Ok(Json(NotificationsBody {
        notifications,
        next_cursor,
    }))
}

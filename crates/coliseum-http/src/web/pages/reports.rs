//! Reports in the dashboard: "Generate report" from the analytics,
//! leaderboard and artist pages, the list of reports with their downloads
//! and the month's quota, and one report's links: its QR code, copy, expiry,
//! password, revoke, rotate and who opened it. Plain forms that work
//! without JavaScript; each carries the session's CSRF token, checked here.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use coliseum_domain::plans::{Feature, entitlements};
use coliseum_store::{ReportRecord, ShareEnd, ShareRecord};
use serde::Deserialize;

use super::{check_form_token, render, user_or_login};
use crate::app::AppState;
use crate::audit::RequestId;
use crate::problem::AppError;
use crate::reports::document::{ReportRequest, Template as ReportTemplate};
use crate::reports::{self, Format, month_bounds, share_url};
use crate::routes::access::{Caller, Via};
use crate::routes::reports::share_report;
use crate::views::rfc3339;
use crate::web::format::{self, grouped, plan_title};
use crate::web::shell::Shell;

pub const PATH: &str = "/app/reports";

/// What a page's "Generate report" form sends: the template and the
/// parameters of what the page shows.
pub struct Generate {
    pub template: &'static str,
    pub fields: Vec<(String, String)>,
}

impl Generate {
    /// The form of a page showing `template` with these parameters (blank
    /// ones left out).
    pub fn new(template: ReportTemplate, fields: &[(&str, Option<&str>)]) -> Self {
        Self {
            template: template.as_str(),
            fields: fields
                .iter()
                .filter_map(|(name, value)| {
                    value
                        .filter(|v| !v.is_empty())
                        .map(|v| ((*name).to_owned(), v.to_owned()))
                })
                .collect(),
        }
    }
}

pub struct ReportRow {
    pub id: String,
    pub title: String,
    pub about: String,
    pub format: String,
    pub created: String,
    pub size: String,
    pub download: String,
    pub ready: bool,
}

fn describe(params: &serde_json::Value) -> String {
    params
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| {
                    format!(
                        "{} {}",
                        k.replace('_', " "),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                    )
                })
                .collect::<Vec<_>>()
                .join(" · ")
        })
        .unwrap_or_default()
}

fn report_row(report: &ReportRecord) -> ReportRow {
    let params: serde_json::Value = serde_json::from_str(&report.params).unwrap_or_default();
    ReportRow {
        id: report.id.clone(),
        title: ReportTemplate::parse(&report.template)
            .map_or("Report", ReportTemplate::title)
            .to_owned(),
        about: describe(&params),
        format: report.format.to_uppercase(),
        created: format::instant(&rfc3339(report.created_at)),
        size: report.size_bytes.map_or_else(
            || "being made".to_owned(),
            |b| format!("{} KB", grouped((b + 1023) / 1024)),
        ),
        download: format!("/v1/reports/{}/download", report.id),
        ready: report.size_bytes.is_some(),
    }
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    shell: Shell,
    reports: Vec<ReportRow>,
    quota: String,
    allowed: bool,
    cheapest: String,
}

/// `GET /app/reports`.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, AppError> {
    let user = match user_or_login(&caller, PATH) {
        Ok(user) => user.clone(),
        Err(redirect) => return Ok(redirect.into_response()),
    };
    let allowed = caller.may(Feature::Reports).is_ok();
    let records = state.store.reports_of(user.id, None, 100).await?;
    let (month_start, next_month) = month_bounds(state.clock.now());
    let used = state.store.reports_made_since(user.id, month_start).await?;
    let quota = match entitlements(&caller.subject()).reports_per_month {
        Some(0) => String::new(),
        Some(limit) => format!(
            "{} of {} reports made this month; more from {}.",
            grouped(used),
            grouped(i64::from(limit)),
            format::instant(&rfc3339(next_month))
        ),
        None => format!("{} reports made this month; your plan has no limit.", grouped(used)),
    };
    render(&ReportsPage {
        shell: Shell::of(&caller, "reports", "Reports"),
        reports: records.iter().map(report_row).collect(),
        quota,
        allowed,
        cheapest: plan_title("basic"),
    })
}

/// The session's token, for a form of the dashboard's own pages.
fn session_token(caller: &Caller) -> Result<&str, AppError> {
    match &caller.via {
        Via::Session(token) => Ok(token),
        _ => Err(AppError::Forbidden(
            "the dashboard's forms are for a browser session; use the API with a key".to_owned(),
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct GenerateForm {
    #[serde(default)]
    csrf_token: String,
    template: String,
    format: String,
    #[serde(flatten)]
    params: HashMap<String, String>,
}

/// `POST /app/reports`: makes the report the page showed, then shows it.
pub async fn generate(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    Form(form): Form<GenerateForm>,
) -> Result<Response, AppError> {
    if let Err(redirect) = user_or_login(&caller, PATH) {
        return Ok(redirect.into_response());
    }
    check_form_token(
        session_token(&caller)?,
        &super::TokenForm {
            csrf_token: form.csrf_token,
        },
    )?;
    let format = Format::parse(&form.format).ok_or_else(|| AppError::parameter("format", "must be pdf or json"))?;
    let params: serde_json::Map<String, serde_json::Value> = form
        .params
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let read = ReportRequest::parse(&form.template, &serde_json::Value::Object(params))?;
    let made = reports::make(&state, &caller, &request, read, format, None).await?;
    Ok(Redirect::to(&format!("{PATH}/{}", made.report.id)).into_response())
}

pub struct View {
    pub at: String,
    pub agent: String,
    pub network: String,
}

pub struct LinkRow {
    pub token: String,
    pub url: String,
    pub qr: String,
    pub state: &'static str,
    pub expires: String,
    pub password: bool,
    pub views: String,
    pub recent: Vec<View>,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    shell: Shell,
    report: ReportRow,
    links: Vec<LinkRow>,
    /// Lifetimes a new link may have: (days, or `never`; label).
    lifetimes: Vec<(String, String)>,
}

fn link_state(share: &ShareRecord, now: time::OffsetDateTime) -> &'static str {
    match share.ended {
        Some((_, ShareEnd::Revoked)) => "revoked",
        Some((_, ShareEnd::Rotated)) => "rotated",
        None if share.in_force(now) => "active",
        None => "expired",
    }
}

/// `GET /app/reports/{id}`.
pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, AppError> {
    let back = format!("{PATH}/{}", super::leaderboards::urlencoded(&id));
    let user = match user_or_login(&caller, &back) {
        Ok(user) => user.clone(),
        Err(redirect) => return Ok(redirect.into_response()),
    };
    let report = state
        .store
        .report(&id)
        .await?
        .filter(|r| r.user_id == user.id)
        .ok_or_else(|| AppError::NotFound(format!("you have no report {id}")))?;
    let now = state.clock.now();
    let mut links = Vec::new();
    for share in state
        .store
        .shares_of(user.id)
        .await?
        .into_iter()
        .filter(|s| s.report_id == report.id)
    {
        let recent = state
            .store
            .share_views(share.id, 10)
            .await?
            .into_iter()
            .map(|v| View {
                at: format::instant(&rfc3339(v.at)),
                agent: v.agent,
                network: v.address_hash,
            })
            .collect();
        let state_name = link_state(&share, now);
        links.push(LinkRow {
            url: share_url(&state, &share.token),
            qr: format!("/s/{}/qr.svg", share.token),
            state: state_name,
            expires: share
                .expires_at
                .map_or_else(|| "never".to_owned(), |at| format::instant(&rfc3339(at))),
            password: share.password_hash.is_some(),
            views: match share.views {
                1 => "1 view".to_owned(),
                n => format!("{} views", grouped(n)),
            },
            recent,
            active: state_name == "active",
            token: share.token,
        });
    }
    let longest = entitlements(&caller.subject()).share_link_max_days;
    let mut lifetimes: Vec<(String, String)> = [1_u32, 7, 30, 90, 365]
        .iter()
        .filter(|days| longest.is_none_or(|max| **days <= max))
        .map(|days| {
            (
                days.to_string(),
                format!("{days} day{}", if *days == 1 { "" } else { "s" }),
            )
        })
        .collect();
    if longest.is_none() {
        lifetimes.push(("never".to_owned(), "never expires".to_owned()));
    }
    lifetimes.reverse();
    render(&ReportPage {
        shell: Shell::of(&caller, "reports", "Report"),
        report: report_row(&report),
        links,
        lifetimes,
    })
}

#[derive(Debug, Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    lifetime: String,
    #[serde(default)]
    password: String,
}

/// `POST /app/reports/{id}/shares`: a new link.
pub async fn new_link(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    Path(id): Path<String>,
    Form(form): Form<LinkForm>,
) -> Result<Response, AppError> {
    if let Err(redirect) = user_or_login(&caller, PATH) {
        return Ok(redirect.into_response());
    }
    check_form_token(
        session_token(&caller)?,
        &super::TokenForm {
            csrf_token: form.csrf_token,
        },
    )?;
    let expires_in_s = match form.lifetime.as_str() {
        // Absent: the plan's longest, which for Enterprise is never.
        "never" | "" => None,
        days => Some(
            days.parse::<i64>()
                .ok()
                .and_then(|days| days.checked_mul(86_400))
                .ok_or_else(|| AppError::parameter("lifetime", "must be a number of days"))?,
        ),
    };
    let password = Some(form.password.trim()).filter(|p| !p.is_empty());
    let share = share_report(&state, &caller, &request, &id, expires_in_s, password).await?;
    Ok(Redirect::to(&format!("{PATH}/{}#links", share.report_id)).into_response())
}

/// `POST /app/shares/{token}/revoke` and `…/rotate`.
async fn end_link(
    state: &AppState,
    caller: &Caller,
    request: &RequestId,
    token: &str,
    form: &super::TokenForm,
    end: ShareEnd,
) -> Result<Response, AppError> {
    if let Err(redirect) = user_or_login(caller, PATH) {
        return Ok(redirect.into_response());
    }
    check_form_token(session_token(caller)?, form)?;
    let (share, _) = crate::routes::reports::end(state, caller, request, token, end).await?;
    Ok(Redirect::to(&format!("{PATH}/{}#links", share.report_id)).into_response())
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<super::TokenForm>,
) -> Result<Response, AppError> {
    crate::routes::auth::refuse_cross_site(&state, &headers)?;
    end_link(&state, &caller, &request, &token, &form, ShareEnd::Revoked).await
}

pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<super::TokenForm>,
) -> Result<Response, AppError> {
    crate::routes::auth::refuse_cross_site(&state, &headers)?;
    end_link(&state, &caller, &request, &token, &form, ShareEnd::Rotated).await
}

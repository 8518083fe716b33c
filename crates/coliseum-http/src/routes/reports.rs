//! `/v1/reports` and `/v1/shares`: making reports, downloading them, and
//! the links that share them (API.md, "Reports and sharing"). Only a
//! report's owner sees it, its links and their view logs; another
//! account's report is "not found", as one that does not exist.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coliseum_domain::plans::{Feature, Plan, UpgradeRequired, entitlements};
use coliseum_store::{ReportRecord, ShareEnd, ShareRecord, User};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Caller;
use crate::app::AppState;
use crate::audit::{self, RequestId};
use crate::openapi::Problems;
use crate::params::Params;
use crate::problem::AppError;
use crate::reports::document::{ReportDocument, ReportRequest};
use crate::reports::{self, Format, links, month_bounds, public_base, share_url};
use crate::views::rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_reports, create_report))
        .routes(routes!(get_report))
        .routes(routes!(download))
        .routes(routes!(create_share))
        .routes(routes!(list_shares))
        .routes(routes!(revoke_share))
        .routes(routes!(rotate_share))
        .routes(routes!(share_views))
        .routes(routes!(get_branding, set_branding, remove_branding))
}

/// The parameters `GET /v1/reports` reads.
pub const LIST_PARAMETERS: &[&str] = &["limit", "cursor"];

/// Passwords of share links: long enough to resist guessing at the
/// throttled rate, short enough to type from a printed page.
const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;

/// A report to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewReportBody {
    /// `artist`, `live_event`, `leaderboard` or `platform`.
    template: String,
    /// `pdf` or `json`.
    format: String,
    /// The matching read's parameters: `artist` `{artist_id, range, from?,
    /// to?}`, `live_event` `{live_event_id, range, from?, to?}`,
    /// `leaderboard` `{metric | domain, range, city?, genre?,
    /// live_event_id?, limit?}` (limit up to 1,000 ranks), `platform`
    /// `{range, city?, genre?}`.
    #[schema(value_type = Object)]
    #[serde(default)]
    params: Value,
    /// The terms of the link the report is made with, which its PDF
    /// prints with a QR code (absent: the plan's longest lifetime, no
    /// password). Further links: `POST /v1/reports/{id}/shares`.
    #[serde(default)]
    share: Option<NewShareBody>,
}

/// A report as recorded.
#[derive(Debug, Serialize, ToSchema)]
struct ReportBody {
    id: String,
    template: String,
    format: String,
    #[schema(value_type = Object)]
    params: Value,
    created_at: String,
    /// `null` while it is being made.
    #[schema(required = true)]
    size_bytes: Option<i64>,
    #[schema(required = true)]
    watermark: Option<i64>,
    download_url: String,
}

/// A report just made, with the link it was made with (printed in a PDF's
/// QR code).
#[derive(Debug, Serialize, ToSchema)]
struct MadeBody {
    #[serde(flatten)]
    report: ReportBody,
    share: ShareBody,
}

/// A share link.
#[derive(Debug, Serialize, ToSchema)]
struct ShareBody {
    token: String,
    report_id: String,
    url: String,
    /// `null`: never expires.
    #[schema(required = true)]
    expires_at: Option<String>,
    qr_svg_url: String,
    qr_png_url: String,
    embed_url: String,
    password: bool,
    /// `active`, `expired`, `revoked` or `rotated`.
    state: &'static str,
    views: i64,
    created_at: String,
}

/// A page of the caller's reports, newest first, and this month's quota.
#[derive(Debug, Serialize, ToSchema)]
struct ReportList {
    items: Vec<ReportBody>,
    #[schema(required = true)]
    next_cursor: Option<String>,
    quota: QuotaBody,
}

/// Reports made this month against the plan's allowance.
#[derive(Debug, Serialize, ToSchema)]
struct QuotaBody {
    used: i64,
    /// `null`: unlimited.
    #[schema(required = true)]
    limit: Option<u32>,
    resets_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct ShareList {
    items: Vec<ShareBody>,
}

/// A new link to a report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewShareBody {
    /// Seconds the link works; absent: the plan's longest (PLANS.md: Basic
    /// 7 days, Pro 30; Enterprise: never expires).
    #[serde(default)]
    expires_in_s: Option<i64>,
    /// 8 to 128 characters; the link then asks for it.
    #[serde(default)]
    password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct ViewBody {
    at: String,
    /// A hash of the visitor's network (/24 or /48) within this link.
    address_hash: String,
    /// The browser's family.
    agent: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct ViewList {
    /// Newest first, the latest 1,000.
    views: Vec<ViewBody>,
    total: i64,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ListParams {
    /// 1 to 100 (default 25).
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn report_body(state: &AppState, report: &ReportRecord) -> ReportBody {
    ReportBody {
        id: report.id.clone(),
        template: report.template.clone(),
        format: report.format.clone(),
        params: serde_json::from_str(&report.params).unwrap_or(Value::Null),
        created_at: rfc3339(report.created_at),
        size_bytes: report.size_bytes,
        watermark: report.watermark,
        download_url: format!("{}/v1/reports/{}/download", public_base(state), report.id),
    }
}

fn share_state(share: &ShareRecord, now: time::OffsetDateTime) -> &'static str {
    match share.ended {
        Some((_, end)) => end.as_str(),
        None if share.in_force(now) => "active",
        None => "expired",
    }
}

fn share_body(state: &AppState, share: &ShareRecord) -> ShareBody {
    let url = share_url(state, &share.token);
    ShareBody {
        token: share.token.clone(),
        report_id: share.report_id.clone(),
        qr_svg_url: format!("{url}/qr.svg"),
        qr_png_url: format!("{url}/qr.png"),
        embed_url: format!("{url}/embed"),
        url,
        expires_at: share.expires_at.map(rfc3339),
        password: share.password_hash.is_some(),
        state: share_state(share, state.clock.now()),
        views: share.views,
        created_at: rfc3339(share.created_at),
    }
}

fn malformed(expected: &str, error: impl std::fmt::Display) -> AppError {
    AppError::Malformed {
        detail: format!("expected {expected}: {error}"),
        errors: Vec::new(),
    }
}

/// One of `user`'s reports; another account's is not found.
async fn own_report(state: &AppState, user: &User, id: &str) -> Result<ReportRecord, AppError> {
    state
        .store
        .report(id)
        .await?
        .filter(|report| report.user_id == user.id)
        .ok_or_else(|| AppError::NotFound(format!("you have no report {id}")))
}

/// One of `user`'s links; another account's is not found.
async fn own_share(state: &AppState, user: &User, token: &str) -> Result<ShareRecord, AppError> {
    let not_found = || AppError::NotFound("you have no share link with that token".to_owned());
    if !links::looks_like_token(token) {
        return Err(not_found());
    }
    state
        .store
        .share(token)
        .await?
        .filter(|share| share.user_id == user.id)
        .ok_or_else(not_found)
}

/// Makes a report (Basic and up, within the month's quota).
#[utoipa::path(
    post,
    path = "/v1/reports",
    tag = "reports",
    request_body = NewReportBody,
    responses(
        (status = 201, description = "The report, made and stored, with its first share link", body = MadeBody),
        Problems,
    ),
    security(("session" = []), ("bearer" = [])),
)]
async fn create_report(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<MadeBody>), AppError> {
    caller.user()?;
    caller.may(Feature::Reports)?;
    let body: NewReportBody = serde_json::from_slice(&body)
        .map_err(|e| malformed("{\"template\": …, \"format\": \"pdf\" | \"json\", \"params\": {…}}", e))?;
    let format = Format::parse(&body.format).ok_or_else(|| AppError::field("/format", "must be pdf or json"))?;
    let read = ReportRequest::parse(&body.template, &body.params)?;
    let first_link = match &body.share {
        Some(terms) => Some(
            link_terms(
                &caller,
                terms.expires_in_s,
                terms.password.as_deref(),
                state.clock.now(),
                "/share",
            )
            .await?,
        ),
        None => None,
    };
    let made = reports::make(&state, &caller, &request, read, format, first_link).await?;
    Ok((
        StatusCode::CREATED,
        Json(MadeBody {
            report: report_body(&state, &made.report),
            share: share_body(&state, &made.share),
        }),
    ))
}

/// The caller's reports, newest first, and this month's quota.
#[utoipa::path(
    get,
    path = "/v1/reports",
    tag = "reports",
    params(ListParams),
    responses((status = 200, description = "A page of reports", body = ReportList), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn list_reports(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
) -> Result<Json<ReportList>, AppError> {
    let user = caller.user()?;
    params.only(LIST_PARAMETERS)?;
    let limit = params.limit()?;
    let reports = state.store.reports_of(user.id, params.get("cursor"), limit + 1).await?;
    let more = reports.len() > limit as usize;
    let items: Vec<ReportBody> = reports
        .iter()
        .take(limit as usize)
        .map(|r| report_body(&state, r))
        .collect();
    let next_cursor = more.then(|| items.last().map(|r| r.id.clone())).flatten();
    let (month_start, next_month) = month_bounds(state.clock.now());
    let quota = QuotaBody {
        used: state.store.reports_made_since(user.id, month_start).await?,
        limit: entitlements(&caller.subject()).reports_per_month,
        resets_at: rfc3339(next_month),
    };
    Ok(Json(ReportList {
        items,
        next_cursor,
        quota,
    }))
}

/// One of the caller's reports.
#[utoipa::path(
    get,
    path = "/v1/reports/{id}",
    tag = "reports",
    params(("id" = String, Path, description = "The report's `id`")),
    responses((status = 200, description = "The report", body = ReportBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn get_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReportBody>, AppError> {
    let report = own_report(&state, caller.user()?, &id).await?;
    Ok(Json(report_body(&state, &report)))
}

/// A report's file, served to whoever may read it.
pub fn file_response(report: &ReportRecord, bytes: bytes::Bytes, disposition: &str) -> Response {
    let format = Format::parse(&report.format).unwrap_or(Format::Json);
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    let name = format!(
        "coliseum-{}-{}.{}",
        report.template,
        report.created_at.date(),
        format.as_str()
    );
    if let Ok(value) = HeaderValue::from_str(&format!("{disposition}; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    response
}

/// A report's file (PDF or JSON).
#[utoipa::path(
    get,
    path = "/v1/reports/{id}/download",
    tag = "reports",
    params(("id" = String, Path, description = "The report's `id`")),
    responses(
        (status = 200, description = "The report's file: a PDF, or a JSON report document", content(
            (Vec<u8> = "application/pdf"),
            (ReportDocument = "application/json"),
        )),
        Problems,
    ),
    security(("session" = []), ("bearer" = [])),
)]
async fn download(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, AppError> {
    let report = own_report(&state, caller.user()?, &id).await?;
    if report.size_bytes.is_none() {
        return Err(AppError::Conflict("the report is still being made".to_owned()));
    }
    let bytes = state.reports.files.get(&report.id, &report.format).await?;
    Ok(file_response(&report, bytes, "attachment"))
}

/// The expiry a new link asks for, within the plan's longest (PLANS.md).
fn expiry(
    caller: &Caller,
    asked_s: Option<i64>,
    now: time::OffsetDateTime,
) -> Result<Option<time::OffsetDateTime>, AppError> {
    let subject = caller.subject();
    let longest_days = entitlements(&subject).share_link_max_days;
    let Some(asked_s) = asked_s else {
        return Ok(longest_days.map(|days| now + time::Duration::days(i64::from(days))));
    };
    if asked_s < 60 {
        return Err(AppError::field("/expires_in_s", "must be at least 60 seconds"));
    }
    if let Some(days) = longest_days
        && asked_s > i64::from(days) * 86_400
    {
        // A longer lifetime is a higher plan's.
        let cheapest = Plan::ALL
            .iter()
            .copied()
            .find(|&p| {
                coliseum_domain::plans::Entitlements::of(p)
                    .share_link_max_days
                    .is_none_or(|d| i64::from(d) * 86_400 >= asked_s)
            })
            .unwrap_or(Plan::Enterprise);
        return Err(AppError::UpgradeRequired(UpgradeRequired {
            feature: "share_link_lifetime".to_owned(),
            plan: subject.plan,
            cheapest,
        }));
    }
    Ok(time::Duration::checked_seconds_f64(asked_s as f64).and_then(|d| now.checked_add(d)))
}

/// A new link to one of the caller's reports.
#[utoipa::path(
    post,
    path = "/v1/reports/{id}/shares",
    tag = "reports",
    params(("id" = String, Path, description = "The report's `id`")),
    request_body = NewShareBody,
    responses((status = 201, description = "The link", body = ShareBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn create_share(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<ShareBody>), AppError> {
    let body: NewShareBody = if body.is_empty() {
        NewShareBody {
            expires_in_s: None,
            password: None,
        }
    } else {
        serde_json::from_slice(&body).map_err(|e| malformed("{\"expires_in_s\": …, \"password\": …}", e))?
    };
    let share = share_report(
        &state,
        &caller,
        &request,
        &id,
        body.expires_in_s,
        body.password.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(share_body(&state, &share))))
}

/// A new link to one of the caller's reports: `expires_in_s` within the
/// plan's longest (absent: the longest), an optional password.
pub(crate) async fn share_report(
    state: &AppState,
    caller: &Caller,
    request: &RequestId,
    report_id: &str,
    expires_in_s: Option<i64>,
    password: Option<&str>,
) -> Result<ShareRecord, AppError> {
    let user = caller.user()?.clone();
    caller.may(Feature::Reports)?;
    let report = own_report(state, &user, report_id).await?;
    let terms = link_terms(caller, expires_in_s, password, state.clock.now(), "").await?;
    reports::create_share(
        state,
        caller,
        request,
        &report.id,
        terms.expires_at,
        terms.password_hash,
    )
    .await
}

/// A link's terms as asked, checked against the plan; errors point at
/// `{pointer}/expires_in_s` and `{pointer}/password`.
async fn link_terms(
    caller: &Caller,
    expires_in_s: Option<i64>,
    password: Option<&str>,
    now: time::OffsetDateTime,
    pointer: &str,
) -> Result<reports::FirstLink, AppError> {
    let expires_at = expiry(caller, expires_in_s, now).map_err(|error| match error {
        AppError::Invalid { errors, .. } if !pointer.is_empty() => AppError::field(
            &format!("{pointer}/expires_in_s"),
            errors.first().map(|e| e.detail.clone()).unwrap_or_default(),
        ),
        other => other,
    })?;
    let password_hash = match password {
        None => None,
        Some(password) if !PASSWORD_CHARS.contains(&password.chars().count()) => {
            return Err(AppError::field(
                &format!("{pointer}/password"),
                "must be 8 to 128 characters",
            ));
        }
        Some(password) => {
            // Argon2 takes tens of milliseconds: never on an async worker.
            let password = password.to_owned();
            let hashed = tokio::task::spawn_blocking(move || crate::sessions::hash_password(&password))
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?
                .map_err(|e| AppError::Internal(e.to_string()))?;
            Some(hashed)
        }
    };
    Ok(reports::FirstLink {
        expires_at,
        password_hash,
    })
}

/// The caller's share links, newest first, ended ones included.
#[utoipa::path(
    get,
    path = "/v1/shares",
    tag = "reports",
    responses((status = 200, description = "The links", body = ShareList), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn list_shares(State(state): State<AppState>, caller: Caller) -> Result<Json<ShareList>, AppError> {
    let user = caller.user()?;
    let shares = state.store.shares_of(user.id).await?;
    Ok(Json(ShareList {
        items: shares.iter().map(|s| share_body(&state, s)).collect(),
    }))
}

/// Ends one of the caller's links, as `end`; the audit record names it by
/// its report, never by its token. Returns the link as it was, and the
/// store's answer (the replacement when rotated; `None` when it had
/// ended already).
pub(crate) async fn end(
    state: &AppState,
    caller: &Caller,
    request: &RequestId,
    token: &str,
    end: ShareEnd,
) -> Result<(ShareRecord, Option<ShareRecord>), AppError> {
    let user = caller.user()?;
    let share = own_share(state, user, token).await?;
    let record = audit::record_of(
        state,
        request,
        audit::Event {
            actor: caller.actor(),
            action: match end {
                ShareEnd::Revoked => "share.revoked",
                ShareEnd::Rotated => "share.rotated",
            },
            subject: format!("report:{}", share.report_id),
            detail: json!({"share_id": share.id}),
        },
    );
    let replacement = (end == ShareEnd::Rotated).then(links::new_share_token);
    let after = state
        .store
        .end_share(user.id, token, end, replacement.as_deref(), state.clock.now(), &record)
        .await?;
    Ok((share, after))
}

/// Revokes a link at once: it answers `410` from now on.
#[utoipa::path(
    delete,
    path = "/v1/shares/{token}",
    tag = "reports",
    params(("token" = String, Path, description = "The link's token")),
    responses((status = 204, description = "Revoked (or ended already)"), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn revoke_share(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    Path(token): Path<String>,
) -> Result<StatusCode, AppError> {
    end(&state, &caller, &request, &token, ShareEnd::Revoked).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new token for a link in force; the old one answers `410` at once.
#[utoipa::path(
    post,
    path = "/v1/shares/{token}/rotate",
    tag = "reports",
    params(("token" = String, Path, description = "The link's token")),
    responses((status = 201, description = "The link under its new token", body = ShareBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn rotate_share(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    Path(token): Path<String>,
) -> Result<(StatusCode, Json<ShareBody>), AppError> {
    let rotated = end(&state, &caller, &request, &token, ShareEnd::Rotated)
        .await?
        .1
        .ok_or_else(|| AppError::Gone {
            detail: "the link has expired or ended; make a new one".to_owned(),
        })?;
    Ok((StatusCode::CREATED, Json(share_body(&state, &rotated))))
}

/// A link's view log (its owner only).
#[utoipa::path(
    get,
    path = "/v1/shares/{token}/views",
    tag = "reports",
    params(("token" = String, Path, description = "The link's token")),
    responses((status = 200, description = "The views, newest first", body = ViewList), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn share_views(
    State(state): State<AppState>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<Json<ViewList>, AppError> {
    let share = own_share(&state, caller.user()?, &token).await?;
    let views = state.store.share_views(share.id, 1_000).await?;
    Ok(Json(ViewList {
        views: views
            .into_iter()
            .map(|v| ViewBody {
                at: rfc3339(v.at),
                address_hash: v.address_hash,
                agent: v.agent,
            })
            .collect(),
        total: share.views,
    }))
}

/// How an Enterprise account brands its reports.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BrandingBody {
    /// Printed on the cover and in every footer, 1 to 80 characters.
    name: String,
    /// `#rrggbb`: headings, rules and charts.
    accent: String,
    /// A PNG (at most 256 KB, 2,048 pixels a side), base64; drawn in place
    /// of the Coliseum mark. `null`: none.
    #[serde(default)]
    #[schema(required = true)]
    logo_png_base64: Option<String>,
}

/// The accent colour of `#rrggbb`.
pub(crate) fn parse_accent(text: &str) -> Option<[u8; 3]> {
    let hex = text.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([channel(0)?, channel(2)?, channel(4)?])
}

fn branding_allowed(caller: &Caller) -> Result<(), AppError> {
    if entitlements(&caller.subject()).reports_custom_branding {
        Ok(())
    } else {
        Err(AppError::UpgradeRequired(UpgradeRequired {
            feature: "report_branding".to_owned(),
            plan: caller.subject().plan,
            cheapest: Plan::Enterprise,
        }))
    }
}

/// The caller's report branding (Enterprise); `404` while it has none.
#[utoipa::path(
    get,
    path = "/v1/reports/branding",
    tag = "reports",
    responses((status = 200, description = "The branding", body = BrandingBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn get_branding(State(state): State<AppState>, caller: Caller) -> Result<Json<BrandingBody>, AppError> {
    let user = caller.user()?;
    branding_allowed(&caller)?;
    let brand = state
        .store
        .report_brand(user.id)
        .await?
        .ok_or_else(|| AppError::NotFound("your reports carry Coliseum's branding".to_owned()))?;
    use base64::Engine;
    Ok(Json(BrandingBody {
        name: brand.name,
        accent: brand.accent,
        logo_png_base64: brand
            .logo_png
            .map(|png| base64::engine::general_purpose::STANDARD.encode(png)),
    }))
}

/// Sets the caller's report branding (Enterprise): reports made from now
/// on carry it in place of Coliseum's.
#[utoipa::path(
    put,
    path = "/v1/reports/branding",
    tag = "reports",
    request_body = BrandingBody,
    responses((status = 200, description = "The branding, as stored", body = BrandingBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn set_branding(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    body: axum::body::Bytes,
) -> Result<Json<BrandingBody>, AppError> {
    let user = caller.user()?.clone();
    branding_allowed(&caller)?;
    let body: BrandingBody = serde_json::from_slice(&body)
        .map_err(|e| malformed("{\"name\": …, \"accent\": \"#rrggbb\", \"logo_png_base64\": …}", e))?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 80 || coliseum_domain::text::has_forbidden_chars(name) {
        return Err(AppError::field("/name", "must be 1 to 80 characters of text"));
    }
    if parse_accent(&body.accent).is_none() {
        return Err(AppError::field("/accent", "must be a colour as #rrggbb"));
    }
    let logo_png = match &body.logo_png_base64 {
        None => None,
        Some(text) => {
            use base64::Engine;
            let png = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| AppError::field("/logo_png_base64", "is not base64"))?;
            coliseum_reports::check_logo(&png).map_err(|e| AppError::field("/logo_png_base64", e))?;
            Some(png)
        }
    };
    let brand = coliseum_store::ReportBrand {
        name: name.to_owned(),
        accent: body.accent.to_ascii_lowercase(),
        logo_png,
        updated_at: state.clock.now(),
    };
    let record = audit::record_of(
        &state,
        &request,
        audit::Event {
            actor: caller.actor(),
            action: "report_branding.set",
            subject: format!("user:{}", user.id),
            detail: json!({"name": brand.name, "accent": brand.accent, "logo": brand.logo_png.is_some()}),
        },
    );
    state.store.set_report_brand(user.id, Some(&brand), &record).await?;
    Ok(Json(BrandingBody {
        name: brand.name,
        accent: brand.accent,
        logo_png_base64: body.logo_png_base64,
    }))
}

/// Goes back to Coliseum's branding.
#[utoipa::path(
    delete,
    path = "/v1/reports/branding",
    tag = "reports",
    responses((status = 204, description = "Removed"), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn remove_branding(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
) -> Result<StatusCode, AppError> {
    let user = caller.user()?;
    branding_allowed(&caller)?;
    let record = audit::record_of(
        &state,
        &request,
        audit::Event {
            actor: caller.actor(),
            action: "report_branding.removed",
            subject: format!("user:{}", user.id),
            detail: json!({}),
        },
    );
    state.store.set_report_brand(user.id, None, &record).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Account: the plan and every entitlement in force, upgrades through
//! Stripe Checkout and the billing portal, API keys (created, shown once,
//! revoked), the session, and where consent and data export will live.
//! The buttons call the API (`/v1/billing/…`, `/v1/api-keys`) with the
//! session's CSRF token.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use coliseum_domain::plans::{CustomRanges, Entitlements, LivePush, Plan, entitlements};
use coliseum_domain::scoring::DnaDomain;

use super::{TokenForm, check_form_token, render, user_or_login};
use crate::app::AppState;
use crate::audit::{self, RequestId};
use crate::problem::AppError;
use crate::routes::access::{Caller, Via, subject_of};
use crate::routes::auth;
use crate::sessions;
use crate::views::reads::rfc3339;
use crate::web::format::{self, plan_title};
use crate::web::shell::Shell;

pub struct Key {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub created: String,
}

pub struct Session {
    pub created: String,
    pub expires: String,
    /// The session this page was opened with.
    pub current: bool,
}

pub struct Upgrade {
    pub plan: &'static str,
    pub title: String,
    pub price: &'static str,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    shell: Shell,
    email: String,
    role: String,
    plan: String,
    entitlements: Vec<(String, String)>,
    upgrades: Vec<Upgrade>,
    paying: bool,
    api_keys_allowed: bool,
    keys: Vec<Key>,
    sessions: Vec<Session>,
}

fn yes(flag: bool) -> String {
    if flag { "yes" } else { "no" }.to_owned()
}

/// Every entitlement in force, in PLANS.md's order and words.
fn entitlement_rows(e: &Entitlements) -> Vec<(String, String)> {
    let domains: Vec<String> = e
        .dna_domains
        .iter()
        .map(|letter| {
            DnaDomain::ALL
                .iter()
                .find(|d| d.letter() == *letter)
                .map_or_else(|| (*letter).to_owned(), |d| format::plan_title(d.name()))
        })
        .collect();
    let rows = [
        (
            "Leaderboard depth (ranks visible)",
            e.leaderboard_depth
                .map_or_else(|| "unlimited".to_owned(), |d| format::grouped(d as i64)),
        ),
        ("DNA domains visible", domains.join(", ")),
        ("KPI leaderboards", e.kpi_leaderboards.join(", ")),
        ("City, genre and live-event filters", yes(e.filters)),
        (
            "Data freshness",
            match e.freshness_s {
                0 => "live".to_owned(),
                s if s < 120 => format!("{s} s old"),
                s => format!("{} min old", s / 60),
            },
        ),
        (
            "Live push",
            match e.live_push {
                LivePush::None => "no".to_owned(),
                LivePush::Every60s => "every 60 s".to_owned(),
                LivePush::OnEveryChange => "on every change".to_owned(),
            },
        ),
        (
            "Custom time ranges",
            match e.custom_ranges {
                CustomRanges::None => "no".to_owned(),
                CustomRanges::LastDays(days) => format!("the last {days} days"),
                CustomRanges::Everything => "everything kept".to_owned(),
            },
        ),
        ("API keys", yes(e.api_keys)),
        (
            "API rate limit",
            format!("{} a minute", format::grouped(i64::from(e.rate_limit_per_minute))),
        ),
        (
            "Reports",
            match e.reports_per_month {
                Some(0) => "no".to_owned(),
                Some(n) if e.reports_watermarked => format!("{n} a month, watermarked"),
                Some(n) => format!("{n} a month"),
                None if e.reports_custom_branding => "unlimited, custom branding".to_owned(),
                None => "unlimited".to_owned(),
            },
        ),
        (
            "Share-link lifetime",
            match e.share_link_max_days {
                Some(0) => "no share links".to_owned(),
                Some(days) => format!("up to {days} days"),
                None => "any, or no expiry".to_owned(),
            },
        ),
        ("\"Why this rank\" explanations", yes(e.explanation)),
        (
            "OCR calls",
            format!("{} a month", format::grouped(i64::from(e.ocr_calls_per_month))),
        ),
    ];
    rows.into_iter().map(|(name, value)| (name.to_owned(), value)).collect()
}

/// `GET /app/account`.
pub async fn page(State(state): State<AppState>, caller: Caller) -> Result<Response, AppError> {
    let user = match user_or_login(&caller, "/app/account") {
        Ok(user) => user.clone(),
        Err(redirect) => return Ok(redirect.into_response()),
    };
    let granted = entitlements(&subject_of(&user));
    let entitlements = entitlement_rows(&granted);
    let keys = if granted.api_keys {
        state
            .store
            .api_keys(user.id)
            .await?
            .into_iter()
            .filter(|k| k.revoked_at.is_none())
            .map(|k| Key {
                id: k.id,
                name: k.name,
                prefix: k.prefix,
                created: format::instant(&rfc3339(k.created_at)),
            })
            .collect()
    } else {
        Vec::new()
    };
    let current = match &caller.via {
        Via::Session(token) => Some(sessions::token_hash(token)),
        _ => None,
    };
    let signed_in = state
        .store
        .sessions_of(user.id, state.clock.now())
        .await?
        .into_iter()
        .map(|s| Session {
            created: format::instant(&rfc3339(s.created_at)),
            expires: format::instant(&rfc3339(s.expires_at)),
            current: current.as_deref() == Some(s.token_hash.as_slice()),
        })
        .collect();
    let upgrades = [
        (Plan::Basic, "$29/mo"),
        (Plan::Pro, "$99/mo"),
        (Plan::Enterprise, "by contract"),
    ]
    .into_iter()
    .filter(|(plan, _)| *plan > user.plan)
    .map(|(plan, price)| Upgrade {
        plan: plan.as_str(),
        title: plan_title(plan.as_str()),
        price,
    })
    .collect();
    render(&AccountPage {
        shell: Shell::of(&caller, "account", "Account"),
        email: user.email.clone(),
        role: user.role.as_str().to_owned(),
        plan: plan_title(user.plan.as_str()),
        entitlements,
        upgrades,
        paying: user.plan >= Plan::Basic,
        api_keys_allowed: granted.api_keys,
        keys,
        sessions: signed_in,
    })
}

/// `POST /app/account/sessions`: ends every other session of the account
/// (other browsers, other devices) at once, keeping this one. A browser
/// session's form only: it carries the session's CSRF token.
pub async fn end_other_sessions(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Result<Response, AppError> {
    auth::refuse_cross_site(&state, &headers)?;
    let user = match user_or_login(&caller, "/app/account") {
        Ok(user) => user.clone(),
        Err(redirect) => return Ok(redirect.into_response()),
    };
    let Via::Session(token) = &caller.via else {
        return Err(AppError::Forbidden(
            "ending other sessions is for a browser session; API keys are revoked one by one".to_owned(),
        ));
    };
    check_form_token(token, &form)?;
    let event = audit::Event {
        actor: format!("user:{}", user.id),
        action: "sessions.revoked",
        subject: format!("user:{}", user.id),
        detail: serde_json::json!({}),
    };
    let record = audit::record_of(&state, &request, event);
    let ended = state
        .store
        .revoke_other_sessions(user.id, &sessions::token_hash(token), &record)
        .await?;
    for hash in &ended {
        state.sessions.forget(hash, true);
    }
    Ok(Redirect::to("/app/account#sessions").into_response())
}

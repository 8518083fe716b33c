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
use coliseum_domain::plans::{Plan, entitlements};
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::{render, user_or_login};
use crate::app::AppState;
use crate::audit::{self, RequestId};
use crate::problem::AppError;
use crate::routes::access::{Caller, Via, subject_of};
use crate::routes::auth;
use crate::views::reads::rfc3339;
use crate::web::format::{self, plan_title};
use crate::web::shell::Shell;
use crate::{credentials, sessions};

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

/// An entitlement's value in words.
fn said(value: &Value) -> String {
    match value {
        Value::Null => "unlimited".to_owned(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        Value::String(text) => text.replace('_', " "),
        Value::Array(items) if items.is_empty() => "none".to_owned(),
        Value::Array(items) => items.iter().map(said).collect::<Vec<_>>().join(", "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{} {}", k.replace('_', " "), said(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Number(n) => n.as_i64().map_or_else(|| n.to_string(), format::grouped),
    }
}

/// `GET /app/account`.
pub async fn page(State(state): State<AppState>, caller: Caller) -> Result<Response, AppError> {
    let user = match user_or_login(&caller, "/app/account") {
        Ok(user) => user.clone(),
        Err(redirect) => return Ok(redirect.into_response()),
    };
    let granted = entitlements(&subject_of(&user));
    let entitlements = serde_json::to_value(&granted)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (format::plan_title(&name.replace('_', " ")), said(&value)))
        .collect();
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

#[derive(Debug, Deserialize)]
pub struct EndOthersForm {
    #[serde(default)]
    csrf_token: String,
}

/// `POST /app/account/sessions`: ends every other session of the account
/// (other browsers, other devices) at once, keeping this one. A browser
/// session's form only: it carries the session's CSRF token.
pub async fn end_other_sessions(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    headers: HeaderMap,
    Form(form): Form<EndOthersForm>,
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
    let expected = credentials::csrf_token(token);
    if !bool::from(form.csrf_token.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(AppError::Forbidden(
            "this request did not come from this site's own page; use the Account page".to_owned(),
        ));
    }
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
        state.sessions.forget(hash);
    }
    Ok(Redirect::to("/app/account#sessions").into_response())
}

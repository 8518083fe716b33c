//! One module per page. Each reads its query as the matching REST read
//! would (the same `*Request::read`, so the same checks and the same
//! refusals), takes the shared body of that read, and renders it.

pub mod account;
pub mod admin;
pub mod analytics;
pub mod artist;
pub mod export;
pub mod landing;
pub mod leaderboards;
pub mod reports;
pub mod shared_reports;
pub mod sign_in;

use std::collections::HashMap;

use askama::Template;
use axum::extract::Query;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use coliseum_store::User;
use serde_json::Value;

use crate::app::AppState;
use crate::audit::RequestId;
use crate::params::Params;
use crate::problem::AppError;
use crate::routes::access::Caller;
use crate::views::shared::{self, Read};

/// A page's query: blank fields (an empty filter box) are dropped, as if
/// not given, so that a form submits cleanly.
#[derive(Debug, Clone, Default)]
pub struct PageQuery(HashMap<String, String>);

impl From<HashMap<String, String>> for PageQuery {
    fn from(map: HashMap<String, String>) -> Self {
        Self(
            map.into_iter()
                .map(|(k, v)| (k, v.trim().to_owned()))
                .filter(|(_, v)| !v.is_empty())
                .collect(),
        )
    }
}

impl PageQuery {
    pub fn new(Query(map): Query<HashMap<String, String>>) -> Self {
        Self::from(map)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The parameters named `names`, as a REST read's query.
    pub fn params(&self, names: &[&str]) -> Params {
        Params::from(
            self.0
                .iter()
                .filter(|(k, _)| names.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        )
    }

    /// `path` with this query, `changes` applied (an empty value removes).
    pub fn href(&self, path: &str, changes: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, &str)> = self
            .0
            .iter()
            .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(changes.iter().copied().filter(|(_, v)| !v.is_empty()))
            .collect();
        pairs.sort_unstable();
        href(path, &pairs)
    }
}

/// `path?a=1&b=2`, encoded.
pub fn href(path: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return path.to_owned();
    }
    format!("{path}?{}", serde_urlencoded::to_string(pairs).unwrap_or_default())
}

/// The signed-in user, or the way to sign in and come back.
pub fn user_or_login<'a>(caller: &'a Caller, back_to: &str) -> Result<&'a User, Redirect> {
    caller
        .user
        .as_ref()
        .ok_or_else(|| Redirect::to(&href("/login", &[("next", back_to)])))
}

/// The shared body of `read` as `caller` is served it, parsed.
pub async fn body_of(state: &AppState, caller: &Caller, request: &RequestId, read: Read) -> Result<Value, AppError> {
    let body = shared::body(state, caller, request, read).await?;
    serde_json::from_slice(&body.json).map_err(|e| AppError::Internal(format!("a shared body is not JSON: {e}")))
}

/// What a read refused for the plan: shown as an upgrade banner, while
/// every other error fails the page.
pub fn locked_or<T>(result: Result<T, AppError>) -> Result<Result<T, super::models::Locked>, AppError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(AppError::UpgradeRequired(upgrade)) => Ok(Err(super::models::Locked {
            feature: super::format::feature(&upgrade.feature),
            plan: super::format::plan_title(upgrade.plan.as_str()),
            cheapest: super::format::plan_title(upgrade.cheapest.as_str()),
            visible_ranks: None,
        })),
        Err(other) => Err(other),
    }
}

/// A rendered page: never stored, by shared caches or the browser (it is
/// the caller's, and holds the session's CSRF token).
pub fn render(page: &impl Template) -> Result<Response, AppError> {
    let html = page
        .render()
        .map_err(|e| AppError::Internal(format!("a page did not render: {e}")))?;
    let mut response = Html(html).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// The field of a page's form that a session's own page fills with its
/// CSRF token (sign-out, ending other sessions).
#[derive(Debug, serde::Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    pub csrf_token: String,
}

/// Refuses a form that does not carry the CSRF token of `session_token`:
/// the cookie goes along with another site's form, the token cannot.
pub fn check_form_token(session_token: &str, form: &TokenForm) -> Result<(), AppError> {
    use subtle::ConstantTimeEq;
    let expected = crate::credentials::csrf_token(session_token);
    if bool::from(form.csrf_token.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "this form did not come from this site's own page; use it from the dashboard".to_owned(),
        ))
    }
}

/// `GET /app`: the dashboard opens on Event Analytics.
pub async fn app_home() -> Redirect {
    Redirect::to("/app/analytics")
}

/// `GET /favicon.ico`: browsers ask for it whatever the page names. Not a
/// permanent redirect: the mark's hashed name changes with its content.
pub async fn favicon() -> Redirect {
    Redirect::temporary(super::assets::url("mark.svg"))
}

/// Counts `reads` more requests against the caller's allowance: a page
/// that makes several reads costs what those reads would cost through
/// the API (the guard counted the page itself as one).
pub async fn charge(state: &AppState, caller: &Caller, reads: usize) -> Result<(), AppError> {
    for _ in 0..reads {
        crate::routes::access::charge(state, caller, None).await?;
    }
    Ok(())
}

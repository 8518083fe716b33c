//! `POST /v1/auth/login` and `/logout`: browser sessions for accounts made
//! with `coliseum users create`, and the extractors that read them.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use coliseum_domain::plans::{Feature, Role, Subject, entitlement, entitlements};
use coliseum_store::User;
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::problem::AppError;
use crate::sessions;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/me", get(me))
}

#[derive(Debug, Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

/// The one answer to every failed login, whatever was wrong.
fn login_failed() -> AppError {
    AppError::Unauthorized("the email or password is not right".to_owned())
}

async fn login(State(state): State<AppState>, body: axum::body::Bytes) -> Result<Response, AppError> {
    let credentials: Credentials = serde_json::from_slice(&body).map_err(|error| AppError::Malformed {
        detail: format!("expected {{\"email\": …, \"password\": …}}: {error}"),
        errors: Vec::new(),
    })?;
    let found = state.store.user_credentials(&credentials.email).await?;
    let hash = found
        .as_ref()
        .map_or_else(|| sessions::decoy_hash().to_owned(), |f| f.password_hash.clone());
    let password = credentials.password;
    let matches = tokio::task::spawn_blocking(move || sessions::verify_password(&password, &hash))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let Some(user) = found.filter(|_| matches).map(|f| f.user) else {
        tracing::info!(outcome = "failed", "login");
        return Err(login_failed());
    };
    let (token, token_hash) = sessions::new_session_token();
    let now = state.clock.now();
    state
        .store
        .create_session(&coliseum_store::NewSession {
            token_hash,
            user_id: user.id,
            created_at: now,
            expires_at: now + sessions::SESSION_LIFETIME,
        })
        .await?;
    tracing::info!(outcome = "ok", user_id = user.id, "login");
    let cookie = sessions::session_cookie(&token, state.settings.secure_cookies());
    Ok(([(header::SET_COOKIE, cookie)], Json(json!({"user": user_json(&user)}))).into_response())
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    if let Some(token) = cookie_token(&headers) {
        let hash = sessions::token_hash(token);
        state.store.revoke_session(&hash).await?;
        state.sessions.forget(&hash);
    }
    let cookie = sessions::cleared_cookie(state.settings.secure_cookies());
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(sessions::token_from_cookies)
}

/// `GET /v1/me`: the caller, its links, its plan and the entitlements in force.
async fn me(SessionUser(user): SessionUser) -> Json<serde_json::Value> {
    let entitlements = entitlements(&subject_of(&user));
    Json(json!({
        "user": {"id": user.id, "email": user.email, "role": user.role.as_str()},
        "plan": user.plan.as_str(),
        "artists": user.artists,
        "live_events": user.live_events,
        "entitlements": entitlements,
    }))
}

pub fn user_json(user: &User) -> serde_json::Value {
    json!({"id": user.id, "email": user.email, "role": user.role.as_str(), "plan": user.plan.as_str()})
}

/// The user of a live session: from the node's cache when the store
/// confirmed it moments ago, else from the store.
async fn session_user(state: &AppState, token: &str) -> Result<Option<User>, AppError> {
    let hash = sessions::token_hash(token);
    if let Some(user) = state.sessions.get(&hash) {
        return Ok(Some(user));
    }
    let user = state.store.session_user(&hash, state.clock.now()).await?;
    if let Some(user) = &user {
        state.sessions.put(hash, user.clone());
    }
    Ok(user)
}

/// The signed-in user of a request; `401` without a live session.
#[derive(Debug, Clone)]
pub struct SessionUser(pub User);

impl FromRequestParts<AppState> for SessionUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = cookie_token(&parts.headers).ok_or_else(|| AppError::Unauthorized("sign in first".to_owned()))?;
        let user = session_user(state, token)
            .await?
            .ok_or_else(|| AppError::Unauthorized("the session has ended; sign in again".to_owned()))?;
        Ok(Self(user))
    }
}

/// Whoever makes a request: the signed-in user, or nobody (the Public plan).
/// A missing or ended session is no error here: public reads stay public.
#[derive(Debug, Clone)]
pub struct Caller(pub Option<User>);

impl Caller {
    /// Who the caller is for entitlements: a Public fan without a session.
    pub fn subject(&self) -> Subject<'_> {
        self.0.as_ref().map_or(Subject::PUBLIC, subject_of)
    }

    /// Whether the caller may have `feature` (PLANS.md).
    pub fn may(&self, feature: Feature<'_>) -> Result<(), AppError> {
        Ok(entitlement(&self.subject(), feature)?)
    }
}

/// A user as entitlements see it.
fn subject_of(user: &User) -> Subject<'_> {
    Subject {
        plan: user.plan,
        role: user.role,
        artists: &user.artists,
        live_events: &user.live_events,
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = cookie_token(&parts.headers) else {
            return Ok(Self(None));
        };
        Ok(Self(session_user(state, token).await?))
    }
}

/// A signed-in admin; `401` without a session, `403` for any other role.
#[derive(Debug, Clone)]
pub struct AdminUser(pub User);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let SessionUser(user) = SessionUser::from_request_parts(parts, state).await?;
        if user.role == Role::Admin {
            Ok(Self(user))
        } else {
            Err(AppError::Forbidden("this needs the admin role".to_owned()))
        }
    }
}

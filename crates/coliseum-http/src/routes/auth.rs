//! Browser sessions: `POST /v1/auth/signup`, `/login` and `/logout`, the
//! session's CSRF token at `GET /v1/auth/csrf`, and `GET /v1/me`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coliseum_domain::plans::{Plan, Role, entitlements};
use coliseum_store::{NewUser, User};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{Caller, SignedIn, Via, cookie_token, subject_of, throttle_login};
use crate::app::AppState;
use crate::audit::{self, RequestId};
use crate::credentials;
use crate::openapi::Problems;
use crate::problem::AppError;
use crate::sessions;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(csrf))
        .routes(routes!(me))
}

/// An email and a password (at least 10 characters to sign up).
#[derive(Debug, Deserialize, ToSchema)]
struct Credentials {
    email: String,
    password: String,
}

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    id: i64,
    email: String,
    /// `fan`, `artist`, `host`, `brand`, `developer` or `admin`.
    role: &'static str,
    /// `public`, `free`, `basic`, `pro` or `enterprise`.
    plan: &'static str,
}

impl From<&User> for UserBody {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            email: user.email.clone(),
            role: user.role.as_str(),
            plan: user.plan.as_str(),
        }
    }
}

/// A new session: its user, and the CSRF token its unsafe requests carry.
#[derive(Debug, Serialize, ToSchema)]
struct SessionBody {
    user: UserBody,
    csrf_token: String,
}

fn read_credentials(body: &[u8]) -> Result<Credentials, AppError> {
    serde_json::from_slice(body).map_err(|error| AppError::Malformed {
        detail: format!("expected {{\"email\": …, \"password\": …}}: {error}"),
        errors: Vec::new(),
    })
}

/// The one answer to every failed login, whatever was wrong.
fn login_failed() -> AppError {
    AppError::Unauthorized("the email or password is not right".to_owned())
}

fn invalid_field(pointer: &str, detail: &str) -> AppError {
    AppError::Invalid {
        detail: detail.to_owned(),
        errors: vec![coliseum_domain::passport::FieldError {
            pointer: pointer.to_owned(),
            detail: detail.to_owned(),
        }],
        extensions: serde_json::Map::new(),
    }
}

/// Refuses a login or signup sent by a page of another site: it would sign
/// the victim's browser in to the attacker's account (login CSRF), and no
/// session exists yet for a CSRF token to protect it. Browsers say where a
/// request comes from (`Sec-Fetch-Site`, `Origin`); clients that are not
/// browsers send neither and pass.
pub(crate) fn refuse_cross_site(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let refused = || AppError::Forbidden("sign-in is only accepted from this site's own pages".to_owned());
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes() == b"cross-site")
    {
        return Err(refused());
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let origin = origin.trim_end_matches('/');
    let same = match &state.settings.public_url {
        Some(public) => origin.eq_ignore_ascii_case(origin_of(public)),
        // Without a configured public URL, the site is whatever host the request named.
        None => headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|host| {
                origin
                    .split_once("://")
                    .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
            }),
    };
    if same { Ok(()) } else { Err(refused()) }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..].find('/').map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// A new Free fan account, signed in at once (the session cookie is set).
#[utoipa::path(
    post,
    path = "/v1/auth/signup",
    tag = "accounts",
    request_body = Credentials,
    responses((status = 201, description = "Signed up and in", body = SessionBody), Problems),
    security(()),
)]
async fn signup(
    State(state): State<AppState>,
    request: RequestId,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    refuse_cross_site(&state, &headers)?;
    let credentials = read_credentials(&body)?;
    let user = register(&state, &request, &credentials.email, credentials.password).await?;
    let mut response = session_response(&state, &request, &user).await?;
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// A new Free fan account (the signup of the API and of the sign-up page).
pub(crate) async fn register(
    state: &AppState,
    request: &RequestId,
    email: &str,
    password: String,
) -> Result<User, AppError> {
    let email = email.trim().to_lowercase();
    if !looks_like_email(&email) {
        return Err(invalid_field("/email", "is not an email address"));
    }
    if password.chars().count() < sessions::MIN_PASSWORD_CHARS {
        return Err(invalid_field("/password", "must be at least 10 characters"));
    }
    // Signups count against the same per-email allowance as logins, so
    // that probing which emails exist is as slow as guessing passwords.
    throttle_login(state, &email).await?;
    let password_hash = tokio::task::spawn_blocking(move || sessions::hash_password(&password))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let new_user = NewUser {
        email,
        password_hash,
        role: Role::Fan,
        plan: Plan::Free,
        artists: Vec::new(),
        live_events: Vec::new(),
    };
    state
        .store
        .create_user(&new_user, &|id: &i64| Some(user_record(state, request, *id, "signup")))
        .await?
        .ok_or_else(|| AppError::Conflict("an account with this email exists; sign in instead".to_owned()))
}

fn looks_like_email(email: &str) -> bool {
    email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.starts_with('.'))
        && !email.chars().any(char::is_whitespace)
}

/// The audit record of what a user did to their own account.
fn user_record(state: &AppState, request: &RequestId, user_id: i64, action: &str) -> coliseum_store::AuditRecord {
    let event = audit::Event {
        actor: format!("user:{user_id}"),
        action,
        subject: format!("user:{user_id}"),
        detail: json!({}),
    };
    audit::record_of(state, request, event)
}

/// Signs `user` in: a new session, recorded as a login in the same
/// transaction. Returns the `Set-Cookie` value and the session's CSRF token.
pub(crate) async fn open_session(
    state: &AppState,
    request: &RequestId,
    user: &User,
) -> Result<(String, String), AppError> {
    let (token, token_hash) = sessions::new_session_token();
    let now = state.clock.now();
    state
        .store
        .create_session(
            &coliseum_store::NewSession {
                token_hash,
                user_id: user.id,
                created_at: now,
                expires_at: now + sessions::SESSION_LIFETIME,
            },
            &user_record(state, request, user.id, "login"),
        )
        .await?;
    let cookie = sessions::session_cookie(&token, state.settings.secure_cookies());
    Ok((cookie, credentials::csrf_token(&token)))
}

async fn session_response(state: &AppState, request: &RequestId, user: &User) -> Result<Response, AppError> {
    let (cookie, csrf_token) = open_session(state, request, user).await?;
    let body = SessionBody {
        user: UserBody::from(user),
        csrf_token,
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Signs in with an email and password (the session cookie is set).
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "accounts",
    request_body = Credentials,
    responses((status = 200, description = "Signed in", body = SessionBody), Problems),
    security(()),
)]
async fn login(
    State(state): State<AppState>,
    request: RequestId,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    refuse_cross_site(&state, &headers)?;
    let credentials = read_credentials(&body)?;
    let user = authenticate(&state, &request, &credentials.email, credentials.password).await?;
    session_response(&state, &request, &user).await
}

/// The user an email and password prove; one `401` whatever was wrong.
pub(crate) async fn authenticate(
    state: &AppState,
    request: &RequestId,
    email: &str,
    password: String,
) -> Result<User, AppError> {
    throttle_login(state, email).await?;
    let found = state.store.user_credentials(email).await?;
    let hash = found
        .as_ref()
        .map_or_else(|| sessions::decoy_hash().to_owned(), |f| f.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || sessions::verify_password(&password, &hash))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let Some(user) = found.filter(|_| matches).map(|f| f.user) else {
        let event = audit::Event {
            actor: "anonymous".to_owned(),
            action: "login.failed",
            subject: format!("email:{}", email.trim().to_lowercase()),
            detail: json!({}),
        };
        audit::record(state, request, event).await?;
        return Err(login_failed());
    };
    Ok(user)
}

/// Ends the browser session server-side at once, and clears its cookie.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "accounts",
    responses((status = 204, description = "Signed out"), Problems),
    security((), ("session" = [])),
)]
async fn logout(
    State(state): State<AppState>,
    _caller: Caller,
    request: RequestId,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let cookie = end_session(&state, &request, &headers).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// Revokes the request's session cookie at once, everywhere; returns the
/// `Set-Cookie` value that clears it.
pub(crate) async fn end_session(
    state: &AppState,
    request: &RequestId,
    headers: &HeaderMap,
) -> Result<String, AppError> {
    if let Some(token) = cookie_token(headers) {
        let hash = sessions::token_hash(token);
        // Recorded for the session's own user, whatever else the request carried.
        let record = |user_id: &i64| Some(user_record(state, request, *user_id, "logout"));
        let ended = state.store.revoke_session(&hash, &record).await?;
        state.sessions.forget(&hash, ended);
    }
    Ok(sessions::cleared_cookie(state.settings.secure_cookies()))
}

/// The token a browser session's unsafe requests carry in `X-CSRF-Token`.
#[derive(Debug, Serialize, ToSchema)]
struct CsrfBody {
    token: String,
}

/// The CSRF token of the caller's browser session.
#[utoipa::path(
    get,
    path = "/v1/auth/csrf",
    tag = "accounts",
    responses((status = 200, description = "The session's CSRF token", body = CsrfBody), Problems),
    security(("session" = [])),
)]
async fn csrf(SignedIn(_user, via): SignedIn) -> Result<Json<CsrfBody>, AppError> {
    match via {
        Via::Session(token) => Ok(Json(CsrfBody {
            token: credentials::csrf_token(&token),
        })),
        _ => Err(AppError::Unauthorized(
            "CSRF tokens belong to browser sessions; bearer tokens need none".to_owned(),
        )),
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct MeUser {
    id: i64,
    email: String,
    role: &'static str,
}

/// The caller, its links, its plan and the entitlements in force.
#[derive(Debug, Serialize, ToSchema)]
struct MeBody {
    user: MeUser,
    plan: &'static str,
    /// The artists this account speaks for.
    artists: Vec<String>,
    /// The live events this account hosts.
    live_events: Vec<String>,
    /// Every entitlement in force (PLANS.md), by name.
    #[schema(value_type = Object)]
    entitlements: serde_json::Value,
}

/// The caller, its links, its plan and the entitlements in force.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "accounts",
    responses((status = 200, description = "The caller", body = MeBody), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn me(SignedIn(user, _): SignedIn) -> Json<MeBody> {
    let entitlements = serde_json::to_value(entitlements(&subject_of(&user))).unwrap_or_default();
    Json(MeBody {
        user: MeUser {
            id: user.id,
            email: user.email.clone(),
            role: user.role.as_str(),
        },
        plan: user.plan.as_str(),
        artists: user.artists,
        live_events: user.live_events,
        entitlements,
    })
}

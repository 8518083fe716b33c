//! Shared reports, for anyone with the link (`/s/{token}`): the report's
//! file, its QR code, and a view other sites can embed that keeps the
//! link's expiry and password. A link that ended says why (`410`: expired,
//! revoked, replaced by a new one); an unknown one is `404`; a protected
//! one asks for its password (`401`) from a form, or `?password=` for
//! scripts, throttled per link and address.
//!
//! Once the password is given, the pages carry an unlock key derived from
//! the link and its password hash (never the password) in their URLs:
//! frames on other sites get no third-party cookies, and the key dies
//! with the link (rotation) or a new password.

use std::collections::HashMap;
use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coliseum_store::{ShareEnd, ShareRecord, ShareView};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::render;
use crate::app::AppState;
use crate::problem::AppError;
use crate::ratelimit::Quota;
use crate::reports::{Format, links, share_url};
use crate::routes::reports::file_response;
use crate::web::shell::Shell;

/// Password attempts per link and network address.
const PASSWORD_ATTEMPTS: Quota = Quota {
    max: 10,
    per: std::time::Duration::from_secs(15 * 60),
};

/// Password attempts per link from anywhere: a guess spread over many
/// addresses is slowed too.
const PASSWORD_ATTEMPTS_PER_LINK: Quota = Quota {
    max: 100,
    per: std::time::Duration::from_secs(60 * 60),
};

/// A response other sites may frame: a shared report is meant to be
/// embedded ([`super::super::headers`] leaves out `X-Frame-Options`).
#[derive(Debug, Clone, Copy)]
pub struct Embeddable;

/// The embed view's policy: this origin's style and the report file in an
/// `<object>`, any site's frame around it.
const EMBED_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; object-src 'self'; \
     frame-src 'self'; form-action 'self'; frame-ancestors *; base-uri 'none'";

/// A file may be framed anywhere (it is the embed view's content).
const FILE_POLICY: &str = "frame-ancestors *";

fn embeddable(mut response: Response, policy: &'static str) -> Response {
    response.extensions_mut().insert(Embeddable);
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    response
}

/// The key that unlocks a protected link without its password.
fn unlock_key(share: &ShareRecord) -> Option<String> {
    let hash = share.password_hash.as_ref()?;
    let mut hasher = Sha256::new();
    hasher.update(b"coliseum share unlock v1\0");
    hasher.update(share.token.as_bytes());
    hasher.update(b"\0");
    hasher.update(hash.as_bytes());
    Some(URL_SAFE_NO_PAD.encode(&hasher.finalize()[..16]))
}

/// The link in force, or why not.
async fn link(state: &AppState, token: &str) -> Result<ShareRecord, AppError> {
    let unknown = || AppError::NotFound("there is no shared report at this link; check it was copied whole".to_owned());
    if !links::looks_like_token(token) {
        return Err(unknown());
    }
    let share = state.store.share(token).await?.ok_or_else(unknown)?;
    let now = state.clock.now();
    match share.ended {
        Some((_, ShareEnd::Revoked)) => Err(AppError::Gone {
            detail: "this link was revoked by the report's owner; ask them for a new one".to_owned(),
        }),
        Some((_, ShareEnd::Rotated)) => Err(AppError::Gone {
            detail: "this link was replaced by a new one; ask the report's owner for it".to_owned(),
        }),
        None if !share.in_force(now) => Err(AppError::Gone {
            detail: format!(
                "this link expired on {}; ask the report's owner for a new one",
                share
                    .expires_at
                    .map(|at| crate::web::format::instant(&crate::views::rfc3339(at)))
                    .unwrap_or_default()
            ),
        }),
        None => Ok(share),
    }
}

/// How a request tries to unlock a protected link.
enum Unlock {
    /// Nothing offered.
    Nothing,
    Open,
    Wrong,
}

/// Whether `password` (throttled) or `key` opens `share`.
async fn unlock(
    state: &AppState,
    share: &ShareRecord,
    address: Option<std::net::IpAddr>,
    password: Option<&str>,
    key: Option<&str>,
) -> Result<Unlock, AppError> {
    let Some(hash) = share.password_hash.clone() else {
        return Ok(Unlock::Open);
    };
    if let (Some(given), Some(expected)) = (key, unlock_key(share))
        && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
    {
        return Ok(Unlock::Open);
    }
    let Some(password) = password else {
        return Ok(if key.is_some() { Unlock::Wrong } else { Unlock::Nothing });
    };
    let network = links::address_hash(&share.token, address);
    for (bucket, quota) in [
        (format!("share-password:{}:{network}", share.id), PASSWORD_ATTEMPTS),
        (format!("share-password:{}", share.id), PASSWORD_ATTEMPTS_PER_LINK),
    ] {
        let decision = state.limiter.check(&bucket, quota).await;
        if !decision.allowed {
            return Err(AppError::RateLimited(decision));
        }
    }
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || crate::sessions::verify_password(&password, &hash))
        .await
        .map_err(|e| AppError::Internal(format!("a password check failed: {e}")))?;
    Ok(if matches { Unlock::Open } else { Unlock::Wrong })
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

#[derive(Template)]
#[template(path = "share_password.html")]
struct PasswordPage {
    shell: Shell,
    action: String,
    wrong: bool,
}

fn password_page(token: &str, wrong: bool) -> Result<Response, AppError> {
    let mut response = render(&PasswordPage {
        shell: Shell::bare("Shared report"),
        action: format!("/s/{token}"),
        wrong,
    })?;
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    Ok(response)
}

fn refused(wrong: bool) -> AppError {
    AppError::Unauthorized(if wrong {
        "the password is not this link's".to_owned()
    } else {
        "this shared report needs its password: `?password=` or the form at this address".to_owned()
    })
}

/// Counts one opening of the link and serves the report's file.
async fn serve_file(
    state: &AppState,
    share: &ShareRecord,
    address: Option<std::net::IpAddr>,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let report = state
        .store
        .report(&share.report_id)
        .await?
        .ok_or_else(|| AppError::Gone {
            detail: "the shared report no longer exists".to_owned(),
        })?;
    if report.size_bytes.is_none() {
        return Err(AppError::Unavailable {
            detail: "the report is still being made".to_owned(),
            retry_after_s: 2,
        });
    }
    let bytes = state.reports.files.get(&report.id, &report.format).await?;
    record_view(state, share, address, headers).await?;
    Ok(embeddable(file_response(&report, bytes, "inline"), FILE_POLICY))
}

async fn record_view(
    state: &AppState,
    share: &ShareRecord,
    address: Option<std::net::IpAddr>,
    headers: &HeaderMap,
) -> Result<(), AppError> {
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let view = ShareView {
        at: state.clock.now(),
        address_hash: links::address_hash(&share.token, address),
        agent: links::agent_family(agent).to_owned(),
    };
    Ok(state.store.record_share_view(share.id, &view).await?)
}

/// The address a request came from, when the server knows it.
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip()),
        ))
    }
}

/// `GET /s/{token}`: the report (PDF or JSON), once unlocked.
pub async fn open(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Path(token): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let share = link(&state, &token).await?;
    let outcome = unlock(
        &state,
        &share,
        address,
        query.get("password").map(String::as_str),
        query.get("key").map(String::as_str),
    )
    .await?;
    match outcome {
        Unlock::Open => serve_file(&state, &share, address, &headers).await,
        Unlock::Nothing | Unlock::Wrong if wants_html(&headers) => {
            password_page(&token, matches!(outcome, Unlock::Wrong))
        }
        _ => Err(refused(matches!(outcome, Unlock::Wrong))),
    }
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
}

/// `POST /s/{token}`: the password form; on success, on to the report.
pub async fn give_password(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path(token): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let share = link(&state, &token).await?;
    match unlock(&state, &share, address, Some(&form.password), None).await? {
        Unlock::Open => {
            let target = match unlock_key(&share) {
                Some(key) => format!("/s/{token}?key={key}"),
                None => format!("/s/{token}"),
            };
            Ok(Redirect::to(&target).into_response())
        }
        _ => password_page(&token, true),
    }
}

#[derive(Template)]
#[template(path = "share_embed.html")]
struct EmbedPage {
    title: String,
    css: &'static str,
    /// Where the password form posts, while the link is locked.
    password_action: Option<String>,
    wrong: bool,
    file: String,
    pdf: bool,
    expires: Option<String>,
}

async fn embed_page(
    state: &AppState,
    share: &ShareRecord,
    outcome: Unlock,
    address: Option<std::net::IpAddr>,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let report = state
        .store
        .report(&share.report_id)
        .await?
        .ok_or_else(|| AppError::Gone {
            detail: "the shared report no longer exists".to_owned(),
        })?;
    let title = crate::reports::document::Template::parse(&report.template)
        .map_or("Report", crate::reports::document::Template::title)
        .to_owned();
    let locked = !matches!(outcome, Unlock::Open);
    let file = match unlock_key(share) {
        Some(key) => format!("/s/{}?key={key}", share.token),
        None => format!("/s/{}", share.token),
    };
    if !locked {
        record_view(state, share, address, headers).await?;
    }
    let page = EmbedPage {
        title,
        css: crate::web::assets::url("arena.css"),
        password_action: locked.then(|| format!("/s/{}/embed", share.token)),
        wrong: matches!(outcome, Unlock::Wrong),
        file: if locked { String::new() } else { file },
        pdf: Format::parse(&report.format) == Some(Format::Pdf),
        expires: share
            .expires_at
            .map(|at| crate::web::format::instant(&crate::views::rfc3339(at))),
    };
    let mut response = embeddable(render(&page)?, EMBED_POLICY);
    if locked {
        *response.status_mut() = StatusCode::UNAUTHORIZED;
    }
    Ok(response)
}

/// `GET /s/{token}/embed`: the report in a frame, for other sites.
pub async fn embed(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Path(token): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let share = link(&state, &token).await?;
    let outcome = unlock(&state, &share, address, None, query.get("key").map(String::as_str)).await?;
    embed_page(&state, &share, outcome, address, &headers).await
}

/// `POST /s/{token}/embed`: the embedded view's password form.
pub async fn embed_password(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let share = link(&state, &token).await?;
    let outcome = match unlock(&state, &share, address, Some(&form.password), None).await? {
        Unlock::Nothing => Unlock::Wrong,
        other => other,
    };
    embed_page(&state, &share, outcome, address, &headers).await
}

/// `GET /s/{token}/qr.svg`: the link as a QR code.
pub async fn qr_svg(State(state): State<AppState>, Path(token): Path<String>) -> Result<Response, AppError> {
    let share = link(&state, &token).await?;
    let svg =
        coliseum_reports::qr::svg(&share_url(&state, &share.token)).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(image(svg.into_bytes(), "image/svg+xml"))
}

/// `GET /s/{token}/qr.png`: the link as a QR code, for what shows no SVG.
pub async fn qr_png(State(state): State<AppState>, Path(token): Path<String>) -> Result<Response, AppError> {
    let share = link(&state, &token).await?;
    let png = coliseum_reports::qr::png(&share_url(&state, &share.token), 8)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(image(png, "image/png"))
}

fn image(bytes: Vec<u8>, content_type: &'static str) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The link may end at any moment: a cached code would outlive it.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

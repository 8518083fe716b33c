//! What every request meets before a route sees it, and what every answer
//! is turned into on its way out:
//!
//! - a request target of at most [`MAX_URI_BYTES`] (`414`) and at most
//!   [`MAX_HEADERS`] headers of [`MAX_HEADER_BYTES`] in all (`431`);
//! - a body of at most [`MAX_BODY_BYTES`] (`413`, at once when the
//!   declared length says so), arriving whole within [`BODY_DEADLINE`] of
//!   its headers (`408`), however slowly it trickles;
//! - a body sent with an unsafe method only as `application/json` (`415`):
//!   every such route reads JSON, and a browser sends a cross-site form or
//!   `text/plain` without asking, but never JSON; the pages' own forms
//!   (sign-in, sign-up, sign-out) are the exception, and check where they
//!   come from themselves;
//! - every error answer a problem document (RFC 9457), including the
//!   framework's own rejections (a body over the limit, a path that is not
//!   UTF-8, a body that could not be read), which it writes as plain text.
//!
//! What hyper refuses itself, before any handler, keeps hyper's answer
//! with an empty body: a header block over the connection's 64 KiB read
//! buffer (`431`), more than 100 headers, a request line it cannot parse.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tower_http::timeout::{DeadlineBody, TimeoutError};

use crate::problem::AppError;

pub const MAX_URI_BYTES: usize = 8 * 1024;
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The largest body on any route: a Passport delivery's limit (PASSPORT.md);
/// nothing else the API reads comes near it.
pub const MAX_BODY_BYTES: usize = coliseum_domain::passport::MAX_BODY_BYTES;
/// The longest a client may take to send a body (at most 1 MiB on every
/// route: 100 KiB/s, a slow mobile link).
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);
/// The most of a framework rejection's text carried into a problem's `detail`.
const MAX_DETAIL_BYTES: usize = 2048;

pub async fn enforce(request: Request, next: Next) -> Response {
    let target = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return AppError::UriTooLong { limit: MAX_URI_BYTES }.into_response();
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return AppError::HeadersTooLarge(format!(
            "at most {MAX_HEADERS} headers of {MAX_HEADER_BYTES} bytes in all; this request has {} of {header_bytes}",
            headers.len()
        ))
        .into_response();
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        // Refused unread: the connection cannot serve another request.
        let mut response = AppError::TooLarge { limit: MAX_BODY_BYTES }.into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let unsafe_method = !request.method().is_safe();
    let has_body = headers
        .get(header::CONTENT_LENGTH)
        .is_some_and(|length| length.as_bytes() != b"0")
        || headers.contains_key(header::TRANSFER_ENCODING);
    let page_form = crate::web::is_form_path(request.uri().path()) && is_form(headers);
    if unsafe_method && has_body && !is_json(headers) && !page_form {
        return AppError::UnsupportedMediaType(format!(
            "a request body must be sent as application/json, not `{}`",
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(none)")
        ))
        .into_response();
    }
    let expired = Arc::new(AtomicBool::new(false));
    let flag = expired.clone();
    let request = request.map(|body| {
        Body::new(DeadlineBody::new(BODY_DEADLINE, body).map_err(move |error| {
            if error.is::<TimeoutError>() {
                flag.store(true, Ordering::Relaxed);
            }
            error
        }))
    });
    let response = next.run(request).await;
    if expired.load(Ordering::Relaxed) && response.status().is_client_error() {
        return AppError::Timeout(format!(
            "the request body did not arrive within {} s",
            BODY_DEADLINE.as_secs()
        ))
        .into_response();
    }
    as_problem(response).await
}

/// Whether the body is declared JSON (`application/json`, any parameters).
pub fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Whether the body is declared an HTML form (`application/x-www-form-urlencoded`).
fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// An error answer that is not a problem document yet, made one (a page's
/// own HTML answer, a form shown again with its error, is kept).
async fn as_problem(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value == HeaderValue::from_static("application/problem+json"));
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem || is_page {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_DETAIL_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let detail = if text.is_empty() || status.is_server_error() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut problem = AppError::Other { status, detail }.into_response();
    // Keep what the framework set besides the body (Allow on a 405, for one).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().entry(name).or_insert_with(|| value.clone());
        }
    }
    problem
}

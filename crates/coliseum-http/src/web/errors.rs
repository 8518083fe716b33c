//! Errors as pages for browsers. Every refusal in the engine is a problem
//! document (the guard's, the router's, a handler's); where a browser asked
//! for a page, the same problem is shown as an HTML page with the same
//! status and headers (`Retry-After` included), so a person reads what went
//! wrong and what to do, and the API keeps answering JSON.

use askama::Template;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use super::shell::Shell;

/// Problem documents are small; a larger body is passed through untouched.
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    shell: Shell,
    status: u16,
    heading: String,
    detail: String,
    /// The plan that unlocks what was refused (`upgrade-required`).
    cheapest_plan: Option<String>,
    signed_out: bool,
}

fn accepts_html(request: &Request) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The layer: problem documents answered to a browser's page request
/// become pages.
pub async fn html_for_browsers(request: Request, next: Next) -> Response {
    let wanted = super::is_page_path(request.uri().path()) && accepts_html(&request);
    let response = next.run(request).await;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !wanted || !is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PROBLEM_BYTES).await else {
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    };
    let problem: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let text = |name: &str| problem.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let page = ErrorPage {
        shell: Shell::bare(&text("title")),
        status: parts.status.as_u16(),
        heading: text("title"),
        detail: text("detail"),
        cheapest_plan: problem
            .get("cheapest_plan")
            .and_then(Value::as_str)
            .map(super::format::plan_title),
        signed_out: parts.status.as_u16() == 401,
    };
    match page.render() {
        Ok(html) => {
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(html))
        }
        Err(error) => {
            tracing::error!(%error, "the error page did not render");
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}

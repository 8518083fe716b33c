//! The security headers of every page: a Content Security Policy that
//! allows only this origin's own files (no inline script or style, so an
//! injected tag does nothing), no framing by other sites, no sniffing, and
//! no referrer leaving for elsewhere.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// `connect-src 'self'` covers the page's WebSocket to its own origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

const HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=()",
    ),
    ("cross-origin-opener-policy", "same-origin"),
];

/// Adds the headers to responses for page paths ([`super::is_page_path`]).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let page = super::is_page_path(request.uri().path());
    let mut response = next.run(request).await;
    if page {
        // A shared report's embed view and file set their own policy and
        // may be framed anywhere.
        let embeddable = response
            .extensions()
            .get::<super::pages::shared_reports::Embeddable>()
            .is_some();
        let headers = response.headers_mut();
        for (name, value) in HEADERS {
            if embeddable && *name == "x-frame-options" {
                continue;
            }
            headers
                .entry(HeaderName::from_static(name))
                .or_insert_with(|| HeaderValue::from_static(value));
        }
    }
    response
}

//! Errors as RFC 9457 problem documents: one [`AppError`] for every failure
//! a handler can return, mapped to status, type and title in one place.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coliseum_domain::passport::FieldError;
use serde::Serialize;
use serde_json::{Map, Value};

const TYPE_BASE: &str = "https://coliseum.dev/problems/";

/// A problem document.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extension members, such as the per-entry `results` of a rejected delivery.
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the body is not what the endpoint reads (bad JSON, wrong shape).
    #[error("{detail}")]
    Malformed { detail: String, errors: Vec<FieldError> },
    /// 401: no or bad credentials or signature.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 403: the plan does not include this (PLANS.md).
    #[error("{0}")]
    UpgradeRequired(#[from] coliseum_domain::plans::UpgradeRequired),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 408: the client took longer than the deadline to send its request.
    #[error("{0}")]
    Timeout(String),
    /// 409: the request conflicts with what exists (an email already taken).
    #[error("{0}")]
    Conflict(String),
    /// 410: what the request names existed and is no longer kept.
    #[error("{detail}")]
    Gone { detail: String },
    /// 413.
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// 414.
    #[error("the request target is longer than {limit} bytes")]
    UriTooLong { limit: usize },
    /// 431.
    #[error("{0}")]
    HeadersTooLarge(String),
    /// Any other refusal made outside the engine's own handlers (a framework
    /// rejection), carried over into a problem document.
    #[error("{detail}")]
    Other { status: StatusCode, detail: String },
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but invalid; `extensions` carries any partial results.
    #[error("{detail}")]
    Invalid {
        detail: String,
        errors: Vec<FieldError>,
        extensions: Map<String, Value>,
    },
    /// 422: a query or path parameter is out of its domain.
    #[error("`{parameter}` {detail}")]
    InvalidParameter { parameter: String, detail: String },
    /// 429: over the caller's rate limit.
    #[error("over the limit of {} requests a minute; retry in {} s", .0.limit, .0.retry_after_s)]
    RateLimited(crate::ratelimit::Decision),
    /// 429: a bound on what one caller may hold at once (live connections,
    /// subscriptions) is reached; closing one makes room.
    #[error("{0}")]
    LimitReached(String),
    /// 429: the month's allowance (reports) is used up until `resets_at`.
    #[error("{detail}")]
    QuotaExceeded {
        detail: String,
        limit: u32,
        /// RFC 3339.
        resets_at: String,
        retry_after_s: u64,
    },
    /// 502: a service the engine relies on (Stripe) failed.
    #[error("{0}")]
    Upstream(String),
    /// 503: nothing was acknowledged; retry after the given seconds.
    #[error("{detail}")]
    Unavailable { detail: String, retry_after_s: u32 },
    /// 500: a bug; the cause is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::Malformed { .. } => (StatusCode::BAD_REQUEST, "malformed-request", "Malformed request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::UpgradeRequired(_) => (StatusCode::FORBIDDEN, "upgrade-required", "Upgrade required"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Self::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "request-timeout", "Request timeout"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::Gone { .. } => (StatusCode::GONE, "gone", "Gone"),
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large"),
            Self::UriTooLong { .. } => (StatusCode::URI_TOO_LONG, "uri-too-long", "URI too long"),
            Self::HeadersTooLarge(_) => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers-too-large",
                "Request header fields too large",
            ),
            Self::Other { status, .. } => (
                *status,
                match status.as_u16() {
                    400 => "malformed-request",
                    404 => "not-found",
                    405 => "method-not-allowed",
                    413 => "payload-too-large",
                    415 => "unsupported-media-type",
                    422 => "invalid-parameter",
                    500.. => "internal",
                    _ => "bad-request",
                },
                status.canonical_reason().unwrap_or("Error"),
            ),
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Self::Invalid { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                "Validation failed",
            ),
            Self::InvalidParameter { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-parameter",
                "Invalid parameter",
            ),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests"),
            Self::LimitReached(_) => (StatusCode::TOO_MANY_REQUESTS, "limit-reached", "Limit reached"),
            Self::QuotaExceeded { .. } => (StatusCode::TOO_MANY_REQUESTS, "quota-exceeded", "Quota exceeded"),
            Self::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream-failed", "Upstream service failed"),
            Self::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal server error"),
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, slug, title) = self.parts();
        let (detail, errors, extensions) = match self {
            Self::Malformed { detail, errors } => (detail.clone(), errors.clone(), Map::new()),
            Self::Invalid {
                detail,
                errors,
                extensions,
            } => (detail.clone(), errors.clone(), extensions.clone()),
            Self::InvalidParameter { parameter, detail } => (
                self.to_string(),
                Vec::new(),
                Map::from_iter([(
                    "errors".to_owned(),
                    serde_json::json!([{"parameter": parameter, "detail": detail}]),
                )]),
            ),
            Self::UpgradeRequired(upgrade) => (
                self.to_string(),
                Vec::new(),
                Map::from_iter([
                    ("feature".to_owned(), upgrade.feature.clone().into()),
                    ("plan".to_owned(), upgrade.plan.as_str().into()),
                    ("cheapest_plan".to_owned(), upgrade.cheapest.as_str().into()),
                ]),
            ),
            Self::QuotaExceeded {
                detail,
                limit,
                resets_at,
                ..
            } => (
                detail.clone(),
                Vec::new(),
                Map::from_iter([
                    ("limit".to_owned(), (*limit).into()),
                    ("resets_at".to_owned(), resets_at.clone().into()),
                ]),
            ),
            Self::Internal(_) => (
                "an unexpected error occurred; it has been logged".to_owned(),
                Vec::new(),
                Map::new(),
            ),
            other => (other.to_string(), Vec::new(), Map::new()),
        };
        Problem {
            problem_type: format!("{TYPE_BASE}{slug}"),
            title,
            status: status.as_u16(),
            detail,
            errors,
            extensions,
        }
    }
}

impl AppError {
    /// 422 for one field of a JSON body: `pointer` is its JSON Pointer.
    pub fn field(pointer: &str, detail: impl std::fmt::Display) -> Self {
        let detail = detail.to_string();
        Self::Invalid {
            detail: format!("`{pointer}` {detail}"),
            errors: vec![FieldError {
                pointer: pointer.to_owned(),
                detail,
            }],
            extensions: Map::new(),
        }
    }

    pub fn parameter(parameter: &str, detail: impl std::fmt::Display) -> Self {
        Self::InvalidParameter {
            parameter: parameter.to_owned(),
            detail: detail.to_string(),
        }
    }
}

impl From<coliseum_store::StoreError> for AppError {
    fn from(error: coliseum_store::StoreError) -> Self {
        match error {
            coliseum_store::StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "store unavailable");
                Self::Unavailable {
                    detail: "the store is unreachable; retry shortly".to_owned(),
                    retry_after_s: 5,
                }
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(error = %cause, "request failed");
        }
        let problem = self.problem();
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        if let Self::Internal(cause) = &self {
            // For the error report (`observability::report_errors`), never the client.
            response
                .extensions_mut()
                .insert(crate::observability::ErrorCause(cause.clone()));
        }
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            Self::Unavailable { retry_after_s, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
            }
            Self::QuotaExceeded { retry_after_s, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
            }
            Self::RateLimited(decision) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(decision.retry_after_s));
                crate::ratelimit::set_headers(headers, &decision);
            }
            _ => {}
        }
        response
    }
}

impl From<coliseum_domain::plans::Denied> for AppError {
    fn from(denied: coliseum_domain::plans::Denied) -> Self {
        match denied {
            coliseum_domain::plans::Denied::UpgradeRequired(upgrade) => Self::UpgradeRequired(upgrade),
            coliseum_domain::plans::Denied::Forbidden(why) => Self::Forbidden(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let problem = AppError::Internal("password=hunter2 in query".into()).problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("hunter2"));
    }

    #[test]
    fn problems_serialize_per_rfc_9457() {
        let error = AppError::Invalid {
            detail: "every entry was rejected".into(),
            errors: vec![FieldError {
                pointer: "/events/0/type".into(),
                detail: "is required".into(),
            }],
            extensions: Map::from_iter([("results".to_owned(), Value::Array(vec![]))]),
        };
        let json = serde_json::to_value(error.problem()).expect("json");
        assert_eq!(json["type"], "https://coliseum.dev/problems/validation-failed");
        assert_eq!(json["status"], 422);
        assert_eq!(json["errors"][0]["pointer"], "/events/0/type");
        assert!(json["results"].is_array());
    }

    #[test]
    fn parameter_errors_name_the_parameter() {
        let json =
            serde_json::to_value(AppError::parameter("limit", "must be between 1 and 100").problem()).expect("json");
        assert_eq!(json["status"], 422);
        assert_eq!(json["errors"][0]["parameter"], "limit");
        assert_eq!(json["errors"][0]["detail"], "must be between 1 and 100");
    }
}

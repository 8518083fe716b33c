//! Logs, metrics and error reports: `tracing` with key/value fields, one
//! Prometheus recorder for the process (rendered by `GET /metrics`), and
//! server errors and panics to Sentry when `--sentry-dsn` is set.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once; later calls (tests building
/// several engines in one process) reuse it.
pub fn install_metrics_recorder() {
    METRICS.get_or_init(|| {
        let latency = [
            0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
        ];
        let sizes = [
            1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &latency)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_entries".to_owned()), &sizes));
        match builder.and_then(|b| b.install_recorder()) {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::warn!(error = %error, "metrics recorder not installed");
                None
            }
        }
    });
}

/// The Prometheus text exposition of every metric so far.
pub fn render_metrics() -> String {
    METRICS
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// Structured logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Why a request failed with an internal error: put on the response by
/// `AppError` for [`report_errors`], never sent to the client.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

/// Starts reporting errors and panics to Sentry; keep the guard for the
/// life of the process (dropping it flushes what is queued).
pub fn init_sentry(dsn: &str) -> anyhow::Result<sentry::ClientInitGuard> {
    coliseum_notify::sentry_reports::init(dsn).map_err(anyhow::Error::msg)
}

/// Middleware: runs the request with its tags in reach of the panic
/// report, and reports an internal error with its request id, route and
/// status (no user, body, query or header).
pub async fn report_errors(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use coliseum_notify::sentry_reports::{REQUEST, RequestTags, report_server_error};
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "(no route)".to_owned(), |path| path.as_str().to_owned());
    let tags = RequestTags {
        request_id: request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        route,
        method: request.method().to_string(),
    };
    let response = REQUEST.scope(tags.clone(), next.run(request)).await;
    if let Some(ErrorCause(cause)) = response.extensions().get::<ErrorCause>() {
        report_server_error(&tags, response.status().as_u16(), cause);
    }
    response
}

/// A panicking handler answers `500` with a problem document instead of
/// dropping the connection; the panic itself was reported by the hook.
pub fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    // Not through AppError::Internal: the panic is reported once, by the hook.
    let problem = crate::problem::AppError::Internal(String::new()).problem();
    let mut response = (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        serde_json::to_vec(&problem).unwrap_or_default(),
    )
        .into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/problem+json"),
    );
    response
}

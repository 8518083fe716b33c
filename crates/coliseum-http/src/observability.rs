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
            0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0,
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

/// The methods labelled by name; a client chooses the method, so any other is `OTHER`.
const METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// A route's request timers by method and status class.
type RouteTimers = [[Option<metrics::Histogram>; CLASSES.len()]; METHODS.len()];

/// The timer of one route, method and status class. Labels of bounded
/// cardinality (the route's template, a standard method, a class); the
/// handles are kept, so a request neither builds a metric key nor hashes
/// one in the registry.
fn request_timer(route: &str, method: &str, class: usize) -> metrics::Histogram {
    static TIMERS: OnceLock<std::sync::RwLock<std::collections::HashMap<String, RouteTimers>>> = OnceLock::new();
    let timers = TIMERS.get_or_init(Default::default);
    let method = METHODS.iter().position(|m| *m == method).unwrap_or(METHODS.len() - 1);
    if let Some(timer) = timers
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(route)
        .and_then(|by_method| by_method[method][class].clone())
    {
        return timer;
    }
    let timer = metrics::histogram!(
        "coliseum_http_request_seconds",
        "route" => route.to_owned(),
        "method" => METHODS[method],
        "status" => CLASSES[class]
    );
    timers
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(route.to_owned())
        .or_default()[method][class] = Some(timer.clone());
    timer
}

/// Moves the histograms' pending samples into their buckets. Installed
/// without the exporter's own task, the recorder keeps every sample until
/// this runs (or `/metrics` is read): the health sampler calls it every 10 s.
pub fn run_metrics_upkeep() {
    if let Some(handle) = METRICS.get().and_then(Option::as_ref) {
        handle.run_upkeep();
    }
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

/// Middleware: times every request by route (`coliseum_http_request_seconds`),
/// runs it with its tags in reach of the panic report, and reports an
/// internal error with its request id, route and status (no user, body,
/// query or header).
pub async fn report_errors(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let started = std::time::Instant::now();
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
    let class = match response.status().as_u16() {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    };
    request_timer(&tags.route, &tags.method, class).record(started.elapsed().as_secs_f64());
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    fn repository() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// `coliseum_*` names in `text` (a histogram's `_bucket`, `_count` and
    /// `_sum` series named by their histogram).
    fn names_in(text: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (start, _) in text.match_indices("coliseum_") {
            let name: String = text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let name = ["_bucket", "_count", "_sum"].iter().fold(name, |name, suffix| {
                name.strip_suffix(suffix).map_or(name.clone(), str::to_owned)
            });
            names.insert(name);
        }
        names
    }

    fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a directory").flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    #[test]
    fn requests_are_timed_under_bounded_labels() {
        super::install_metrics_recorder();
        super::request_timer("/v1/timed-here", "BREW", 1).record(0.001);
        super::request_timer("/v1/timed-here", "BREW", 1).record(0.002);
        super::request_timer("/v1/timed-here", "GET", 4).record(0.003);
        super::run_metrics_upkeep();
        let text = super::render_metrics();
        assert!(
            text.contains(
                r#"coliseum_http_request_seconds_count{route="/v1/timed-here",method="OTHER",status="2xx"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"coliseum_http_request_seconds_count{route="/v1/timed-here",method="GET",status="5xx"} 1"#)
        );
    }

    /// Every metric the code records is in ARCHITECTURE.md's table, and
    /// the Grafana dashboard and the Prometheus rules use only those.
    #[test]
    fn the_metrics_table_is_complete_and_the_shipped_dashboards_use_it() {
        let root = repository();
        let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
        let table = &architecture[architecture.find("## Metrics").expect("a Metrics section")..];
        let table = &table[..table.find("\n## ").unwrap_or(table.len())];
        let documented: BTreeSet<String> = table
            .lines()
            .filter(|line| line.starts_with("| `coliseum_"))
            .flat_map(names_in)
            .collect();
        let mut files = Vec::new();
        sources(&root.join("crates"), &mut files);
        let mut recorded = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file");
            for macro_name in ["counter!(", "gauge!(", "histogram!("] {
                for (start, _) in text.match_indices(macro_name) {
                    let rest = text[start + macro_name.len()..].trim_start();
                    if let Some(name) = rest.strip_prefix('"').and_then(|r| r.split('"').next())
                        && name.starts_with("coliseum_")
                    {
                        recorded.insert(name.to_owned());
                    }
                }
            }
        }
        assert!(recorded.len() > 20, "the scan found the metrics: {recorded:?}");
        let undocumented: Vec<_> = recorded.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "recorded but not in ARCHITECTURE.md: {undocumented:?}"
        );
        let stale: Vec<_> = documented.difference(&recorded).collect();
        assert!(stale.is_empty(), "documented but never recorded: {stale:?}");
        for shipped in ["docs/grafana/coliseum.json", "docs/prometheus/alerts.yml"] {
            let text = std::fs::read_to_string(root.join(shipped)).expect(shipped);
            let unknown: Vec<_> = names_in(&text)
                .into_iter()
                .filter(|n| !documented.contains(n))
                .collect();
            assert!(unknown.is_empty(), "{shipped} uses metrics nobody records: {unknown:?}");
        }
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("docs/grafana/coliseum.json")).expect("json"))
                .expect("the dashboard is JSON");
        assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() >= 8));
    }
}

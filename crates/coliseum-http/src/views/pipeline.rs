//! The pipeline's health for the admin panel: now, and sampled over the
//! last hour or day for its charts.

use coliseum_engine::health::{PipelineHealth, pipeline_health};
use serde::Serialize;
use time::Duration;
use utoipa::{IntoParams, ToSchema};

use super::reads::rfc3339;
use crate::app::AppState;
use crate::params::Params;
use crate::problem::AppError;

/// Receipt to visibility in a served read, in milliseconds, over 10 minutes.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LatencyBody {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// The pipeline's health now: the engine's `PipelineHealth` as served.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PipelineBody {
    pub paused: bool,
    /// The newest entry stored.
    pub head_seq: i64,
    /// The newest entry processed.
    pub processed_seq: i64,
    /// Entries stored but not yet processed.
    pub queue_depth: i64,
    pub ingest_per_s: f64,
    pub processed_per_s: f64,
    /// Entries that failed processing per entry processed, in the last 10 minutes.
    pub error_rate_10m: f64,
    pub latency_ms: LatencyBody,
    pub dead_letters: i64,
    pub unrecognized: i64,
    /// Entries waiting for or inside a group commit.
    pub ingest_queue_entries: usize,
    /// Whether the node that answered processes (it holds the lead);
    /// the others follow the batches it applies.
    pub this_node_processes: bool,
}

impl From<&PipelineHealth> for PipelineBody {
    fn from(health: &PipelineHealth) -> Self {
        Self {
            paused: health.paused,
            head_seq: health.head_seq,
            processed_seq: health.processed_seq,
            queue_depth: health.queue_depth,
            ingest_per_s: health.ingest_per_s,
            processed_per_s: health.processed_per_s,
            error_rate_10m: health.error_rate_10m,
            latency_ms: LatencyBody {
                p50: health.latency_ms.p50,
                p95: health.latency_ms.p95,
                p99: health.latency_ms.p99,
            },
            dead_letters: health.dead_letters,
            unrecognized: health.unrecognized,
            ingest_queue_entries: health.ingest_queue_entries,
            this_node_processes: false,
        }
    }
}

/// The pipeline's health read now.
pub async fn pipeline(state: &AppState) -> Result<PipelineBody, AppError> {
    let health = pipeline_health(state.store.as_ref(), &state.stats, &state.ingest, state.clock.now()).await?;
    Ok(PipelineBody {
        this_node_processes: state.processor.leading(),
        ..PipelineBody::from(&health)
    })
}

/// The figures a chart can plot, by name.
pub const SERIES: &[&str] = &[
    "queue_depth",
    "ingest_per_s",
    "processed_per_s",
    "error_rate_10m",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "dead_letters",
];

/// A reading of one of [`SERIES`].
pub fn series_value(health: &PipelineHealth, metric: &str) -> f64 {
    match metric {
        "queue_depth" => health.queue_depth as f64,
        "ingest_per_s" => health.ingest_per_s,
        "processed_per_s" => health.processed_per_s,
        "error_rate_10m" => health.error_rate_10m,
        "latency_p50_ms" => health.latency_ms.p50,
        "latency_p95_ms" => health.latency_ms.p95,
        "latency_p99_ms" => health.latency_ms.p99,
        _ => health.dead_letters as f64,
    }
}

/// The query parameters of a series, as documented.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SeriesParams {
    /// `queue_depth`, `ingest_per_s`, `processed_per_s`, `error_rate_10m`,
    /// `latency_p50_ms`, `latency_p95_ms`, `latency_p99_ms` or `dead_letters`.
    metric: String,
    /// `1h` (default) or `24h`.
    range: Option<String>,
}

pub const SERIES_PARAMETERS: &[&str] = &["metric", "range"];

/// A series as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRequest {
    pub metric: &'static str,
    pub span: Duration,
}

impl SeriesRequest {
    pub fn read(params: &Params) -> Result<Self, AppError> {
        params.only(SERIES_PARAMETERS)?;
        let asked = params.required("metric")?;
        let metric = SERIES
            .iter()
            .copied()
            .find(|m| *m == asked)
            .ok_or_else(|| AppError::parameter("metric", format!("must be one of {}", SERIES.join(", "))))?;
        let span = match params.get("range").unwrap_or("1h") {
            "1h" => Duration::hours(1),
            "24h" => Duration::hours(24),
            _ => return Err(AppError::parameter("range", "must be 1h or 24h")),
        };
        Ok(Self { metric, span })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SpanBody {
    pub from: String,
    pub to: String,
}

/// One reading.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SeriesPoint {
    pub t: String,
    pub value: f64,
}

/// A figure's readings sampled since the engine started, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SeriesBody {
    pub metric: &'static str,
    pub range: SpanBody,
    pub points: Vec<SeriesPoint>,
}

/// The series `request` asks for.
pub fn series(state: &AppState, request: &SeriesRequest) -> SeriesBody {
    let to = state.clock.now();
    let from = to - request.span;
    SeriesBody {
        metric: request.metric,
        range: SpanBody {
            from: rfc3339(from),
            to: rfc3339(to),
        },
        points: state
            .health_history
            .since(from)
            .iter()
            .map(|h| SeriesPoint {
                t: rfc3339(h.at),
                value: series_value(h, request.metric),
            })
            .collect(),
    }
}

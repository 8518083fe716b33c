//! The DIA admin panel: the pipeline's figures and charts live over the
//! `pipeline` topic, pause and resume with who did it, the dead letters
//! and their replay, unrecognized types, the audit log live over the
//! `audit` topic with its filters, the alert rules and the notifications.
//! Admins only: anyone else is refused as the admin API refuses them.
//! Rendered whole on the server; the page script keeps it live and makes
//! the buttons call the admin API.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use coliseum_domain::plans::Role;
use coliseum_engine::health::PipelineHealth;
use coliseum_store::{AuditQuery, DeadLetter};
use serde_json::{Value, json};
use time::Duration;

use super::{render, user_or_login};
use crate::alerts::{self, describe_value};
use crate::app::AppState;
use crate::params::Params;
use crate::problem::AppError;
use crate::routes::access::Caller;
use crate::views::audit::{self as audit_view, AUDIT_PARAMETERS, AuditItem, AuditRequest};
use crate::views::pipeline::{self, PipelineBody};
use crate::web::format::{self, grouped};
use crate::web::shell::Shell;

/// One figure of the pipeline, as a tile.
pub struct Figure {
    /// The field of the `pipeline` body it shows.
    pub field: &'static str,
    pub label: &'static str,
    pub text: String,
}

/// A chart of one or more of the pipeline's figures over the span.
pub struct Chart {
    pub title: &'static str,
    /// `count`, `rate`, `percent` or `ms`: how the page script writes values.
    pub unit: &'static str,
    pub lines: Vec<Line>,
    /// The readings as `{"t": [ms…], "<metric>": [values…]}`, for the page script.
    pub points: String,
    pub latest: String,
}

pub struct Line {
    pub metric: &'static str,
    pub label: &'static str,
    pub path: String,
}

pub struct RuleRow {
    pub rule: &'static str,
    pub description: &'static str,
    pub state: &'static str,
    pub value: String,
    pub fire: String,
    pub clear: String,
    pub fire_threshold: f64,
    pub clear_threshold: f64,
    pub for_s: u64,
    pub keep_firing_for_s: u64,
    pub severity: &'static str,
    pub routes: Vec<&'static str>,
    pub silenced_until: Option<String>,
}

impl RuleRow {
    pub fn routes_text(&self) -> String {
        if self.routes.is_empty() {
            "none".to_owned()
        } else {
            self.routes.join(", ")
        }
    }

    pub fn routes_to(&self, route: &str) -> bool {
        self.routes.contains(&route)
    }
}

pub struct NotificationRow {
    pub at: String,
    pub rule: String,
    pub kind: String,
    pub route: String,
    pub status: String,
    pub attempts: i32,
    pub summary: String,
    pub error: String,
}

/// Who last paused or resumed, and when.
pub struct LastSwitch {
    pub paused: bool,
    pub by: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    shell: Shell,
    paused: bool,
    this_node_processes: bool,
    last_switch: Option<LastSwitch>,
    figures: Vec<Figure>,
    range: &'static str,
    charts: Vec<Chart>,
    letters: Vec<DeadLetter>,
    /// Dead letters not yet replayed, all of them.
    open_letters: i64,
    unrecognized: Vec<(String, i64)>,
    audit: Vec<AuditItem>,
    audit_filters: Vec<(&'static str, String)>,
    audit_topic: String,
    rules: Vec<RuleRow>,
    notifications: Vec<NotificationRow>,
}

impl AdminPage {
    fn filter(&self, name: &str) -> &str {
        self.audit_filters
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn instant(&self, at: &str) -> String {
        format::instant(at)
    }

    fn letter_time(&self, letter: &DeadLetter) -> String {
        format::instant(&crate::views::rfc3339(letter.last_failed_at))
    }

    fn detail_text(&self, item: &AuditItem) -> String {
        match &item.detail {
            Value::Object(map) if map.is_empty() => String::new(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

/// The figures tiles show, in order: (field, label, how it is written).
const FIGURES: &[(&str, &str, &str)] = &[
    ("queue_depth", "Queue depth", "count"),
    ("ingest_per_s", "Ingest per s", "rate"),
    ("processed_per_s", "Processed per s", "rate"),
    ("error_rate_10m", "Error rate (10 min)", "percent"),
    ("latency_p50_ms", "Latency p50", "ms"),
    ("latency_p95_ms", "Latency p95", "ms"),
    ("latency_p99_ms", "Latency p99", "ms"),
    ("dead_letters", "Dead letters", "count"),
    ("unrecognized", "Unrecognized", "count"),
];

fn written(unit: &str, value: f64) -> String {
    match unit {
        "rate" => format!("{value:.1}"),
        "percent" => format!("{:.1} %", value * 100.0),
        "ms" if value >= 1000.0 => format!("{:.1} s", value / 1000.0),
        "ms" => format!("{value:.0} ms"),
        _ => grouped(value as i64),
    }
}

fn figure_value(body: &PipelineBody, field: &str) -> f64 {
    match field {
        "queue_depth" => body.queue_depth as f64,
        "ingest_per_s" => body.ingest_per_s,
        "processed_per_s" => body.processed_per_s,
        "error_rate_10m" => body.error_rate_10m,
        "latency_p50_ms" => body.latency_ms.p50,
        "latency_p95_ms" => body.latency_ms.p95,
        "latency_p99_ms" => body.latency_ms.p99,
        "dead_letters" => body.dead_letters as f64,
        _ => body.unrecognized as f64,
    }
}

/// A chart's lines: (metric, label).
type ChartLines = &'static [(&'static str, &'static str)];

/// The charts: (title, unit, lines).
const CHARTS: &[(&str, &str, ChartLines)] = &[
    ("Queue depth", "count", &[("queue_depth", "entries waiting")]),
    (
        "Ingest and processing",
        "rate",
        &[
            ("ingest_per_s", "ingested per s"),
            ("processed_per_s", "processed per s"),
        ],
    ),
    ("Error rate", "percent", &[("error_rate_10m", "failed, over 10 min")]),
    (
        "Receipt to visible",
        "ms",
        &[
            ("latency_p50_ms", "p50"),
            ("latency_p95_ms", "p95"),
            ("latency_p99_ms", "p99"),
        ],
    ),
];

/// Width and height of a chart's drawing, in its own units.
const CHART_W: f64 = 720.0;
const CHART_H: f64 = 160.0;

fn charts(history: &[PipelineHealth], span: Duration, now: time::OffsetDateTime) -> Vec<Chart> {
    // From the first reading when the engine started within the span: a
    // young engine's readings fill the chart rather than its last pixels.
    let from = history.first().map_or(now - span, |first| first.at.max(now - span));
    let width = (now - from).as_seconds_f64().max(1.0);
    let x = |at: time::OffsetDateTime| ((at - from).as_seconds_f64() / width * CHART_W).clamp(0.0, CHART_W);
    let times: Vec<i64> = history
        .iter()
        .map(|h| (h.at.unix_timestamp_nanos() / 1_000_000) as i64)
        .collect();
    CHARTS
        .iter()
        .map(|(title, unit, lines)| {
            let max = history
                .iter()
                .flat_map(|h| lines.iter().map(|(m, _)| pipeline::series_value(h, m)))
                .fold(0.0_f64, f64::max)
                .max(if *unit == "percent" { 0.01 } else { 1.0 });
            let mut points = serde_json::Map::new();
            points.insert("t".to_owned(), json!(times));
            let lines = lines
                .iter()
                .map(|(metric, label)| {
                    let values: Vec<f64> = history.iter().map(|h| pipeline::series_value(h, metric)).collect();
                    let path = history
                        .iter()
                        .zip(&values)
                        .enumerate()
                        .map(|(i, (h, v))| {
                            let y = CHART_H - v / max * (CHART_H - 8.0);
                            format!("{}{:.1} {:.1}", if i == 0 { "M" } else { " L" }, x(h.at), y)
                        })
                        .collect::<String>();
                    points.insert((*metric).to_owned(), json!(values));
                    Line { metric, label, path }
                })
                .collect::<Vec<_>>();
            let latest = history
                .last()
                .map(|h| {
                    lines
                        .iter()
                        .map(|l| format!("{} {}", l.label, written(unit, pipeline::series_value(h, l.metric))))
                        .collect::<Vec<_>>()
                        .join(" · ")
                })
                .unwrap_or_else(|| "no readings yet".to_owned());
            Chart {
                title,
                unit,
                lines,
                points: Value::Object(points).to_string(),
                latest,
            }
        })
        .collect()
}

/// The newest pause or resume, with the email of who did it.
async fn last_switch(state: &AppState) -> Result<Option<LastSwitch>, AppError> {
    let mut newest = None;
    for action in ["pipeline.paused", "pipeline.resumed"] {
        let records = state
            .store
            .audit_records(&AuditQuery {
                action: Some(action.to_owned()),
                limit: 1,
                ..AuditQuery::default()
            })
            .await?;
        if let Some(record) = records.into_iter().next()
            && newest
                .as_ref()
                .is_none_or(|n: &coliseum_store::AuditRecord| record.id > n.id)
        {
            newest = Some(record);
        }
    }
    let Some(record) = newest else {
        return Ok(None);
    };
    let by = match record.actor.strip_prefix("user:").and_then(|id| id.parse::<i64>().ok()) {
        Some(id) => state
            .store
            .user_by_id(id)
            .await?
            .map_or_else(|| record.actor.clone(), |user| user.email),
        None => record.actor.clone(),
    };
    Ok(Some(LastSwitch {
        paused: record.action == "pipeline.paused",
        by,
        at: format::instant(&crate::views::rfc3339(record.at)),
    }))
}

/// `GET /app/admin`.
pub async fn page(State(state): State<AppState>, caller: Caller, params: Params) -> Result<Response, AppError> {
    let user = match user_or_login(&caller, "/app/admin") {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect.into_response()),
    };
    if user.role != Role::Admin {
        return Err(AppError::Forbidden("the DIA panel needs the admin role".to_owned()));
    }
    let mut wanted: HashMap<String, String> = HashMap::new();
    for name in AUDIT_PARAMETERS.iter().filter(|n| !["limit", "cursor"].contains(n)) {
        if let Some(value) = params.get(name).filter(|v| !v.is_empty()) {
            wanted.insert((*name).to_owned(), value.to_owned());
        }
    }
    let (range, span) = match params.get("range") {
        Some("24h") => ("24h", Duration::hours(24)),
        _ => ("1h", Duration::hours(1)),
    };
    let audit_request = AuditRequest::read(&Params::from(wanted.clone()))?;
    let now = state.clock.now();
    let body = pipeline::pipeline(&state).await?;
    let figures = FIGURES
        .iter()
        .map(|(field, label, unit)| Figure {
            field,
            label,
            text: written(unit, figure_value(&body, field)),
        })
        .collect();
    let history = state.health_history.since(now - span);
    let mut audit_topic = serde_json::Map::new();
    audit_topic.insert("kind".to_owned(), json!("audit"));
    let mut audit_filters = Vec::new();
    for name in ["actor", "action", "subject", "since"] {
        let value = wanted.get(name).cloned().unwrap_or_default();
        if !value.is_empty() {
            audit_topic.insert(name.to_owned(), json!(value));
        }
        audit_filters.push((name, value));
    }
    let rules = alerts::rules(&state)
        .await?
        .into_iter()
        .map(|rule| {
            let config = &rule.config;
            RuleRow {
                rule: rule.name.as_str(),
                description: rule.name.describe(),
                state: rule.state.phase.as_str(),
                value: describe_value(rule.name, rule.state.value),
                fire: format!("> {}", describe_value(rule.name, config.fire_threshold)),
                clear: format!("≤ {}", describe_value(rule.name, config.clear_threshold)),
                fire_threshold: config.fire_threshold,
                clear_threshold: config.clear_threshold,
                for_s: config.for_s,
                keep_firing_for_s: config.keep_firing_for_s,
                severity: match config.severity {
                    coliseum_domain::alerts::Severity::Critical => "critical",
                    coliseum_domain::alerts::Severity::Warning => "warning",
                },
                routes: config.routes.iter().map(|r| r.as_str()).collect(),
                silenced_until: config
                    .silenced_until
                    .filter(|until| *until > now)
                    .map(|until| format::instant(&crate::views::rfc3339(until))),
            }
        })
        .collect();
    let notifications = state
        .store
        .notifications(None, 20)
        .await?
        .into_iter()
        .map(|record| {
            let detail: Value = serde_json::from_str(&record.notification.detail).unwrap_or_default();
            NotificationRow {
                at: format::instant(&crate::views::rfc3339(record.notification.at)),
                rule: record.notification.rule,
                kind: record.notification.kind,
                route: record.notification.route,
                status: record.status,
                attempts: record.attempts,
                summary: detail["summary"].as_str().unwrap_or_default().to_owned(),
                error: record.error.unwrap_or_default(),
            }
        })
        .collect();
    render(&AdminPage {
        shell: Shell::of(&caller, "admin", "DIA Admin"),
        paused: body.paused,
        this_node_processes: body.this_node_processes,
        last_switch: last_switch(&state).await?,
        figures,
        range,
        charts: charts(&history, span, now),
        letters: state.store.newest_dead_letters(25).await?,
        open_letters: body.dead_letters,
        unrecognized: state.store.unrecognized_types(20).await?,
        audit: audit_view::page(&state, &audit_request).await?.items,
        audit_filters,
        audit_topic: Value::Object(audit_topic).to_string(),
        rules,
        notifications,
    })
}

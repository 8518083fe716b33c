//! What each rule reads from the pipeline's health, and how its value and
//! threshold are written in messages.

use std::time::Duration;

use coliseum_domain::alerts::{NotificationKind, Reading, RuleConfig, RuleName};
use coliseum_engine::PipelineStats;
use coliseum_engine::health::PipelineHealth;

use crate::web::format::grouped;

/// The rule's reading now.
pub fn reading(
    rule: RuleName,
    config: &RuleConfig,
    health: &PipelineHealth,
    stats: &PipelineStats,
    stuck_s: f64,
) -> Reading {
    let window = Duration::from_secs(config.window_s);
    let (value, enough) = match rule {
        RuleName::QueueDepth => (health.queue_depth as f64, true),
        RuleName::ErrorRate => {
            let (rate, processed) = stats.error_rate_over(window);
            (rate, processed >= config.min_samples)
        }
        RuleName::LatencyP95 => (stats.latency.percentiles_over(window).p95, true),
        RuleName::DeadLetters => (health.dead_letters as f64, true),
        RuleName::ProcessorDown => (stuck_s.floor(), true),
    };
    Reading { value, enough }
}

/// A value with its unit: `1,001 entries`, `3.5 %`, `31.2 s`.
pub fn describe_value(rule: RuleName, value: f64) -> String {
    match rule {
        RuleName::QueueDepth => format!("{} entries", grouped(value as i64)),
        RuleName::ErrorRate => format!("{:.1} %", value * 100.0),
        RuleName::LatencyP95 if value >= 1000.0 => format!("{:.1} s", value / 1000.0),
        RuleName::LatencyP95 => format!("{value:.0} ms"),
        RuleName::DeadLetters => format!("{} letters", grouped(value as i64)),
        RuleName::ProcessorDown => format!("stuck for {} s", grouped(value as i64)),
    }
}

/// The condition a notification is about: `> 1,000 entries` while it
/// fires, `≤ 800 entries` once resolved.
pub fn threshold_text(rule: RuleName, config: &RuleConfig, kind: NotificationKind) -> String {
    let mut text = match kind {
        NotificationKind::Resolved => format!("≤ {}", describe_value(rule, config.clear_threshold)),
        _ => format!("> {}", describe_value(rule, config.fire_threshold)),
    };
    if rule == RuleName::ErrorRate {
        text.push_str(&format!(
            " over {} (at least {} entries)",
            coliseum_domain::alerts::human(time::Duration::seconds(config.window_s as i64)),
            grouped(config.min_samples as i64)
        ));
    }
    if rule == RuleName::ProcessorDown {
        text = text.replace("stuck for ", "");
    }
    text
}

//! The alert evaluator: every `--alert-interval-ms` it reads the pipeline's
//! health, moves each rule through the domain's state machine
//! (`coliseum_domain::alerts`), keeps the state in the store, and sends
//! what the rules owe through `coliseum-notify`.
//!
//! One node evaluates: the one that processes (it alone sees the
//! processing figures). The others watch only for `processor_down`, which
//! is what a cluster without a processing node can still say. A
//! notification is claimed in the store by a key derived from the rule, the
//! incident and its place in it before it is sent, so that two nodes that
//! owe the same notification (a hand-over, the watchers) send it once.

mod readings;

use std::sync::Mutex;

use coliseum_domain::alerts::{self, Owed, Phase, Route, RuleConfig, RuleName, RuleState, Severity};
use coliseum_engine::health::{PipelineHealth, pipeline_health};
use coliseum_notify::{EmailReceiver, Notice, PagerDutyReceiver, Receivers, RetryPolicy};
use coliseum_store::{NewNotification, StoreError};
use serde_json::json;
use time::OffsetDateTime;

use crate::app::AppState;
pub use readings::{describe_value, threshold_text};

/// A rule as configured and as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: RuleName,
    pub config: RuleConfig,
    pub state: RuleState,
}

/// Every rule, stored configuration over the defaults.
pub async fn rules(state: &AppState) -> Result<Vec<Rule>, StoreError> {
    let stored = state.store.alert_rules().await?;
    Ok(RuleName::ALL
        .into_iter()
        .map(|name| {
            let row = stored.iter().find(|r| r.rule == name.as_str());
            Rule {
                name,
                config: parsed(name, row.and_then(|r| r.config.as_ref()), "configuration")
                    .unwrap_or_else(|| name.default_config()),
                state: parsed(name, row.and_then(|r| r.state.as_ref()), "state").unwrap_or_default(),
            }
        })
        .collect())
}

/// A stored part of a rule, unless absent or unreadable (then logged: the
/// default takes its place rather than stop every rule).
fn parsed<T: serde::de::DeserializeOwned>(rule: RuleName, text: Option<&String>, what: &str) -> Option<T> {
    let text = text?;
    serde_json::from_str(text)
        .inspect_err(|error| tracing::error!(rule = rule.as_str(), %error, "a stored alert {what} is unreadable; using the default"))
        .ok()
}

/// What the evaluator keeps between ticks.
#[derive(Debug)]
pub struct AlertService {
    receivers: Receivers,
    retry: RetryPolicy,
    http: reqwest::Client,
    /// The processed cursor and when this node saw it move (or saw
    /// nothing waiting): what `processor_down` measures from.
    cursor: Mutex<Option<(i64, OffsetDateTime)>>,
}

impl AlertService {
    pub fn new(settings: &crate::settings::Settings, http: reqwest::Client) -> Self {
        let alerts = &settings.alerts;
        let receivers = Receivers {
            slack_webhook_url: alerts.slack_webhook_url.as_ref().map(|s| s.expose().to_owned()),
            email: settings
                .smtp
                .as_ref()
                .filter(|_| !alerts.email_to.is_empty())
                .map(|smtp| EmailReceiver {
                    smtp_url: smtp.url.expose().to_owned(),
                    from: smtp.from.clone(),
                    to: alerts.email_to.clone(),
                }),
            pagerduty: alerts.pagerduty_routing_key.as_ref().map(|key| PagerDutyReceiver {
                url: alerts.pagerduty_url.clone(),
                routing_key: key.expose().to_owned(),
            }),
        };
        Self {
            receivers,
            retry: alerts.retry,
            http,
            cursor: Mutex::new(None),
        }
    }

    /// Seconds the cursor has stood still while entries wait and the
    /// pipeline is not paused, and the cursor.
    fn stuck(&self, health: &PipelineHealth) -> (f64, i64) {
        let mut cursor = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        let waiting = !health.paused && health.queue_depth > 0;
        match *cursor {
            Some((seq, since)) if waiting && seq == health.processed_seq => {
                ((health.at - since).as_seconds_f64().max(0.0), seq)
            }
            _ => {
                *cursor = Some((health.processed_seq, health.at));
                (0.0, health.processed_seq)
            }
        }
    }
}

/// Evaluates the rules every interval until `stopped`.
pub async fn run(state: AppState, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(state.settings.alerts.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*stopped.borrow() {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => continue,
        }
        if let Err(error) = evaluate(&state).await {
            tracing::warn!(%error, "alert rules not evaluated");
        }
    }
}

/// One evaluation of the rules this node owns.
pub async fn evaluate(state: &AppState) -> Result<(), StoreError> {
    let now = state.clock.now();
    let health = pipeline_health(state.store.as_ref(), &state.stats, &state.ingest, now).await?;
    let (stuck_s, stuck_seq) = state.alerts.stuck(&health);
    let leading = state.processor.leading();
    for rule in rules(state).await? {
        if !leading && rule.name != RuleName::ProcessorDown {
            continue;
        }
        let reading = readings::reading(rule.name, &rule.config, &health, &state.stats, stuck_s);
        let (next, owed) = alerts::evaluate(rule.name, &rule.config, &rule.state, reading, now);
        metrics::gauge!("coliseum_alert_state", "rule" => rule.name.as_str()).set(phase_number(next.phase));
        if next != rule.state {
            let text = serde_json::to_string(&next).map_err(|e| StoreError::Internal(e.to_string()))?;
            state.store.save_alert_state(rule.name.as_str(), &text).await?;
        }
        for mut owed in owed {
            if rule.name == RuleName::ProcessorDown {
                // The watchers and the processing node see the same stuck
                // cursor but not the same instants: the cursor names the incident.
                let place = owed.key.rsplit(':').next().unwrap_or_default().to_owned();
                owed.key = format!("processor_down:seq{stuck_seq}:{place}");
            }
            notify(state, &rule.name, &rule.config, &next, &owed, now).await?;
        }
    }
    Ok(())
}

fn phase_number(phase: Phase) -> f64 {
    match phase {
        Phase::Ok => 0.0,
        Phase::Pending => 1.0,
        Phase::Firing => 2.0,
        Phase::Flapping => 3.0,
    }
}

/// Claims `owed` once per route and sends what this node claimed.
async fn notify(
    state: &AppState,
    rule: &RuleName,
    config: &RuleConfig,
    rule_state: &RuleState,
    owed: &Owed,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let notice = Notice {
        rule: *rule,
        kind: owed.kind,
        severity: config.severity,
        value: describe_value(*rule, rule_state.value),
        threshold: threshold_text(*rule, config, owed.kind),
        since: rule_state.incident.or(rule_state.since).unwrap_or(now),
        summary: owed.summary.clone(),
        panel_url: format!("{}/app/admin", crate::reports::public_base(state)),
        dedup_key: format!("coliseum/{}", rule.as_str()),
    };
    for route in &config.routes {
        // Pages are for critical rules (configuration refuses the rest).
        if *route == Route::Pagerduty && config.severity != Severity::Critical {
            continue;
        }
        let detail = json!({
            "summary": notice.summary,
            "value": notice.value,
            "threshold": notice.threshold,
            "severity": config.severity,
            "since": crate::views::rfc3339(notice.since),
        });
        let claim = NewNotification {
            key: format!("{}:{}", owed.key, route.as_str()),
            rule: rule.as_str().to_owned(),
            kind: owed.kind.as_str().to_owned(),
            route: route.as_str().to_owned(),
            status: if owed.silenced { "silenced" } else { "sending" }.to_owned(),
            at: now,
            detail: detail.to_string(),
        };
        let Some(id) = state.store.claim_notification(&claim).await? else {
            continue;
        };
        if owed.silenced {
            metrics::counter!("coliseum_alert_notifications_total", "route" => route.as_str(), "status" => "silenced")
                .increment(1);
            continue;
        }
        tokio::spawn(deliver(state.clone(), id, *route, notice.clone()));
    }
    Ok(())
}

/// Sends one claimed notification, retrying, and records the outcome.
async fn deliver(state: AppState, id: i64, route: Route, notice: Notice) {
    let service = state.alerts.clone();
    let (outcome, attempts) = coliseum_notify::with_retries(service.retry, || {
        coliseum_notify::deliver(&service.http, &service.receivers, route, &notice)
    })
    .await;
    let (status, error) = match &outcome {
        Ok(()) => ("sent", None),
        Err(error) => ("failed", Some(error.message.as_str())),
    };
    if let Some(error) = error {
        tracing::warn!(
            route = route.as_str(),
            rule = notice.rule.as_str(),
            attempts,
            error,
            "an alert notification failed"
        );
    }
    metrics::counter!("coliseum_alert_notifications_total", "route" => route.as_str(), "status" => status).increment(1);
    let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
    if let Err(store_error) = state.store.finish_notification(id, status, attempts, error).await {
        tracing::warn!(error = %store_error, "a notification's outcome was not recorded");
    }
}

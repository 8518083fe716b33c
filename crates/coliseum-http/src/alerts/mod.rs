//! The alert evaluator: every `--alert-interval-ms` it reads the pipeline's
//! health, moves each rule through the domain's state machine
//! (`coliseum_domain::alerts`), keeps the state in the store, and sends
//! what the rules owe through `coliseum-notify`.
//!
//! One node evaluates: the holder of a lease in the store, which the
//! processing node takes from any other (it alone sees the processing
//! figures) and any node takes once it lapsed (so a cluster whose
//! processing node is gone still says `processor_down`). A rule's new state
//! and the notifications it owes are written in one transaction that
//! expects the state's version: a node whose lease lapsed unnoticed writes
//! nothing, and a notification's key (rule, incident, place in it) is taken
//! once, so nothing is sent twice.

mod readings;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use coliseum_domain::alerts::{self, Phase, Route, RuleConfig, RuleName, RuleState, Severity};
use coliseum_engine::health::{PipelineHealth, pipeline_health};
use coliseum_notify::{EmailReceiver, Notice, PagerDutyReceiver, Receivers, RetryPolicy};
use coliseum_store::{NewNotification, NotificationRecord, StoreError};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::app::AppState;
pub use readings::{describe_value, threshold_text};

/// A rule as configured and as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: RuleName,
    pub config: RuleConfig,
    pub state: RuleState,
    /// The stored row's version, which an evaluation's write expects.
    pub version: i64,
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
                version: row.map_or(0, |r| r.version),
            }
        })
        .collect())
}

/// A stored part of a rule, unless absent or unreadable (then logged: the
/// default takes its place rather than stop every rule).
fn parsed<T: serde::de::DeserializeOwned>(rule: RuleName, text: Option<&String>, what: &str) -> Option<T> {
    let text = text?;
    serde_json::from_str(text)
        .inspect_err(|error| {
            tracing::error!(rule = rule.as_str(), %error, "a stored alert {what} is unreadable; using the default");
        })
        .ok()
}

/// A delivery left `sending` this long is taken again (its node stopped).
const STALE_DELIVERY: time::Duration = time::Duration::minutes(10);

/// What the evaluator keeps between ticks.
pub struct AlertService {
    receivers: Receivers,
    retry: RetryPolicy,
    http: reqwest::Client,
    /// Names this node in the evaluation lease.
    node: String,
    /// The processed cursor and when this node saw it move (or saw
    /// nothing waiting): what `processor_down` measures from.
    cursor: Mutex<Option<(i64, OffsetDateTime)>>,
    /// Since when this node has evaluated with the processing figures: its
    /// windows (error rate, latency) are not full before.
    evaluating_since: Mutex<Option<Instant>>,
    /// Deliveries under way, waited for at shutdown.
    deliveries: Mutex<tokio::task::JoinSet<()>>,
}

impl std::fmt::Debug for AlertService {
    // The receivers hold secrets (webhook URL, routing key, SMTP credentials).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertService")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
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
            node: format!("{}-{:016x}", std::process::id(), rand::random::<u64>()),
            cursor: Mutex::new(None),
            evaluating_since: Mutex::new(None),
            deliveries: Mutex::new(tokio::task::JoinSet::new()),
        }
    }

    /// Seconds the cursor has stood still while entries wait and the
    /// pipeline is not paused.
    fn stuck(&self, health: &PipelineHealth) -> f64 {
        let mut cursor = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        let waiting = !health.paused && health.queue_depth > 0;
        match *cursor {
            Some((seq, since)) if waiting && seq == health.processed_seq => {
                (health.at - since).as_seconds_f64().max(0.0)
            }
            _ => {
                *cursor = Some((health.processed_seq, health.at));
                0.0
            }
        }
    }

    /// How long this node has evaluated with the processing figures
    /// (`None`: it does not now).
    fn evaluating_for(&self, with_processing_figures: bool) -> Option<Duration> {
        let mut since = self.evaluating_since.lock().unwrap_or_else(|p| p.into_inner());
        if !with_processing_figures {
            *since = None;
            return None;
        }
        Some(since.get_or_insert_with(Instant::now).elapsed())
    }

    fn spawn(&self, delivery: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut deliveries = self.deliveries.lock().unwrap_or_else(|p| p.into_inner());
        // Finished ones are forgotten here, so the set holds what is under way.
        while deliveries.try_join_next().is_some() {}
        deliveries.spawn(delivery);
    }

    /// Waits (at most `patience`) for the deliveries under way.
    async fn drain(&self, patience: Duration) {
        let mut deliveries = std::mem::take(&mut *self.deliveries.lock().unwrap_or_else(|p| p.into_inner()));
        let all = async { while deliveries.join_next().await.is_some() {} };
        if tokio::time::timeout(patience, all).await.is_err() {
            tracing::warn!("alert deliveries were still under way at shutdown; another node sends them again later");
        }
    }
}

/// Evaluates the rules every interval until `stopped`, then waits for the
/// deliveries under way.
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
    state.alerts.drain(Duration::from_secs(10)).await;
}

/// Rules read from figures only the processing node has.
fn needs_processing_figures(rule: RuleName) -> bool {
    matches!(rule, RuleName::ErrorRate | RuleName::LatencyP95)
}

/// One evaluation, if this node holds the lease.
pub async fn evaluate(state: &AppState) -> Result<(), StoreError> {
    let now = state.clock.now();
    let leading = state.processor.leading();
    let lease = (state.settings.alerts.interval * 3).max(Duration::from_secs(3));
    let until = now + lease;
    if !state
        .store
        .claim_alert_lease(&state.alerts.node, leading, now, until)
        .await?
    {
        state.alerts.evaluating_for(false);
        return Ok(());
    }
    let evaluating_for = state.alerts.evaluating_for(leading);
    resend_stale(state, now).await?;
    let health = pipeline_health(state.store.as_ref(), &state.stats, &state.ingest, now).await?;
    // The readings may show what happened while they were taken, after
    // `now`: the rules see them at the instant they were done, so that a
    // condition is never credited with time before it began (a rule would
    // fire or resolve early by however long the store took to answer).
    let now = state.clock.now();
    let stuck_s = state.alerts.stuck(&health);
    for rule in rules(state).await? {
        if needs_processing_figures(rule.name) {
            let Some(evaluating_for) = evaluating_for else {
                // Not the processing node: its figures are not here.
                continue;
            };
            // A rule firing when this node took over keeps its state until
            // this node's window is as full as the one that made it fire:
            // an empty window is no evidence of recovery.
            if rule.state.phase != Phase::Ok && evaluating_for.as_secs() < rule.config.window_s {
                continue;
            }
        }
        let reading = readings::reading(rule.name, &rule.config, &health, &state.stats, stuck_s);
        let (next, owed) = alerts::evaluate(rule.name, &rule.config, &rule.state, reading, now);
        metrics::gauge!("coliseum_alert_state", "rule" => rule.name.as_str()).set(phase_number(next.phase));
        if next == rule.state && owed.is_empty() {
            continue;
        }
        let mut claims = Vec::new();
        for owed in &owed {
            let notice = notice_of(state, &rule, &next, owed.kind, &owed.summary, now);
            for route in &rule.config.routes {
                // Pages are for critical rules (configuration refuses the
                // rest), and flapping does not page.
                if *route == Route::Pagerduty && (rule.config.severity != Severity::Critical || !owed.kind.pages()) {
                    continue;
                }
                claims.push((
                    *route,
                    owed.silenced,
                    notice.clone(),
                    NewNotification {
                        key: format!("{}:{}", owed.key, route.as_str()),
                        rule: rule.name.as_str().to_owned(),
                        kind: owed.kind.as_str().to_owned(),
                        route: route.as_str().to_owned(),
                        status: if owed.silenced { "silenced" } else { "sending" }.to_owned(),
                        at: now,
                        detail: detail_of(&notice).to_string(),
                    },
                ));
            }
        }
        let text = serde_json::to_string(&next).map_err(|e| StoreError::Internal(e.to_string()))?;
        let records: Vec<NewNotification> = claims.iter().map(|c| c.3.clone()).collect();
        let Some(ids) = state
            .store
            .commit_alert_evaluation(rule.name.as_str(), rule.version, &text, &records)
            .await?
        else {
            // Another node wrote the rule meanwhile (a hand-over): its
            // evaluation stands, and this one is dropped whole.
            continue;
        };
        for ((route, silenced, notice, _), id) in claims.into_iter().zip(ids) {
            let Some(id) = id else { continue };
            if silenced {
                metrics::counter!("coliseum_alert_notifications_total", "route" => route.as_str(), "status" => "silenced")
                    .increment(1);
                continue;
            }
            state.alerts.spawn(deliver(state.clone(), id, route, notice));
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

fn notice_of(
    state: &AppState,
    rule: &Rule,
    next: &RuleState,
    kind: alerts::NotificationKind,
    summary: &str,
    now: OffsetDateTime,
) -> Notice {
    Notice {
        rule: rule.name,
        kind,
        severity: rule.config.severity,
        value: describe_value(rule.name, next.value),
        threshold: threshold_text(rule.name, &rule.config, kind),
        since: next.incident.or(next.since).unwrap_or(now),
        summary: summary.to_owned(),
        panel_url: format!("{}/app/admin", crate::reports::public_base(state)),
        dedup_key: format!("coliseum/{}", rule.name.as_str()),
    }
}

/// What a notification said, kept with it (and enough to send it again).
fn detail_of(notice: &Notice) -> Value {
    json!({
        "summary": notice.summary,
        "value": notice.value,
        "threshold": notice.threshold,
        "severity": notice.severity,
        "since": crate::views::rfc3339(notice.since),
    })
}

/// The notice a recorded notification was made from.
fn notice_from_record(state: &AppState, record: &NotificationRecord) -> Option<(Route, Notice)> {
    let n = &record.notification;
    let detail: Value = serde_json::from_str(&n.detail).ok()?;
    let text = |name: &str| detail[name].as_str().map(str::to_owned);
    let rule = RuleName::parse(&n.rule)?;
    let route = [Route::Slack, Route::Email, Route::Pagerduty]
        .into_iter()
        .find(|r| r.as_str() == n.route)?;
    let kind = serde_json::from_value(json!(n.kind)).ok()?;
    Some((
        route,
        Notice {
            rule,
            kind,
            severity: serde_json::from_value(detail["severity"].clone()).ok()?,
            value: text("value")?,
            threshold: text("threshold")?,
            since: text("since").and_then(|t| crate::web::format::parse_instant(&t))?,
            summary: text("summary")?,
            panel_url: format!("{}/app/admin", crate::reports::public_base(state)),
            dedup_key: format!("coliseum/{}", rule.as_str()),
        },
    ))
}

/// Sends again what a stopped node left `sending`.
async fn resend_stale(state: &AppState, now: OffsetDateTime) -> Result<(), StoreError> {
    for record in state
        .store
        .retake_stale_notifications(now - STALE_DELIVERY, now, 20)
        .await?
    {
        match notice_from_record(state, &record) {
            Some((route, notice)) => {
                tracing::info!(
                    id = record.id,
                    route = route.as_str(),
                    "sending a notification a stopped node left"
                );
                state.alerts.spawn(deliver(state.clone(), record.id, route, notice));
            }
            None => {
                let error = Some("its record could not be read back");
                state
                    .store
                    .finish_notification(record.id, "failed", record.attempts, error)
                    .await?;
            }
        }
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

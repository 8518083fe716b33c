//! Alert rules over the pipeline's health, with the semantics of
//! Prometheus rules and Alertmanager: a rule is `ok`, then `pending` while
//! its condition holds for less than `for`, then `firing`; it resolves
//! only after the condition has been clear for `keep_firing_for`. Fire and
//! clear thresholds differ (hysteresis), a condition that keeps flipping is
//! `flapping` and says so once when it starts and once when it stops, a
//! firing rule repeats its notification at an interval, and a silence
//! suppresses notifications until its end.
//!
//! Pure: [`evaluate`] takes a rule's configuration, its state and a reading
//! and returns the next state and the notifications it owes.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// The rules the engine evaluates (API.md, Admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleName {
    /// Entries stored and not yet processed.
    QueueDepth,
    /// Entries that failed processing per entry processed, over `window_s`.
    ErrorRate,
    /// The 95th percentile of receipt-to-visible latency, in milliseconds.
    LatencyP95,
    /// Dead letters not yet replayed.
    DeadLetters,
    /// Seconds the processed cursor has not moved while entries wait and
    /// the pipeline is not paused (no node leads, or the leader is stuck).
    ProcessorDown,
}

impl RuleName {
    pub const ALL: [Self; 5] = [
        Self::QueueDepth,
        Self::ErrorRate,
        Self::LatencyP95,
        Self::DeadLetters,
        Self::ProcessorDown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueDepth => "queue_depth",
            Self::ErrorRate => "error_rate",
            Self::LatencyP95 => "latency_p95",
            Self::DeadLetters => "dead_letters",
            Self::ProcessorDown => "processor_down",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|rule| rule.as_str() == name)
    }

    /// What the rule watches, in words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::QueueDepth => "Entries waiting to be processed",
            Self::ErrorRate => "Entries failing to process",
            Self::LatencyP95 => "Receipt-to-visible latency (p95)",
            Self::DeadLetters => "Dead letters waiting for a replay",
            Self::ProcessorDown => "Processor down (cursor stuck while entries wait)",
        }
    }

    /// The unit of the rule's value, for messages.
    pub fn unit(self) -> &'static str {
        match self {
            Self::QueueDepth => "entries",
            Self::ErrorRate => "of entries",
            Self::LatencyP95 => "ms",
            Self::DeadLetters => "letters",
            Self::ProcessorDown => "s",
        }
    }

    /// The rule as the PRD sets it by default.
    pub fn default_config(self) -> RuleConfig {
        let base = RuleConfig {
            fire_threshold: 0.0,
            clear_threshold: 0.0,
            for_s: 60,
            keep_firing_for_s: 120,
            severity: Severity::Warning,
            routes: vec![Route::Slack, Route::Email],
            repeat_interval_s: 4 * 3600,
            window_s: 600,
            min_samples: 0,
            flap_window_s: 1800,
            flap_flips: 6,
            silenced_until: None,
        };
        let everywhere = vec![Route::Slack, Route::Email, Route::Pagerduty];
        match self {
            Self::QueueDepth => RuleConfig {
                fire_threshold: 1000.0,
                clear_threshold: 800.0,
                ..base
            },
            Self::ErrorRate => RuleConfig {
                fire_threshold: 0.02,
                clear_threshold: 0.01,
                min_samples: 200,
                severity: Severity::Critical,
                routes: everywhere,
                ..base
            },
            Self::LatencyP95 => RuleConfig {
                fire_threshold: 30_000.0,
                clear_threshold: 20_000.0,
                severity: Severity::Critical,
                routes: everywhere,
                ..base
            },
            Self::DeadLetters => RuleConfig {
                for_s: 0,
                keep_firing_for_s: 0,
                ..base
            },
            Self::ProcessorDown => RuleConfig {
                fire_threshold: 30.0,
                for_s: 30,
                keep_firing_for_s: 30,
                severity: Severity::Critical,
                routes: everywhere,
                ..base
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    /// Pages through PagerDuty when the rule routes there.
    Critical,
}

/// Where a rule's notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    Slack,
    Email,
    Pagerduty,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Email => "email",
            Self::Pagerduty => "pagerduty",
        }
    }
}

/// What an admin sets for a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleConfig {
    /// The condition starts to hold above this value.
    pub fire_threshold: f64,
    /// Once active, the condition holds until the value falls to this or
    /// below (at most `fire_threshold`).
    pub clear_threshold: f64,
    /// How long the condition holds before the rule fires.
    pub for_s: u64,
    /// How long the condition stays clear before a firing rule resolves.
    pub keep_firing_for_s: u64,
    pub severity: Severity,
    pub routes: Vec<Route>,
    /// How often a firing rule is notified again.
    pub repeat_interval_s: u64,
    /// The window rates and percentiles are taken over (error rate, latency).
    pub window_s: u64,
    /// Below this many entries in the window the error rate cannot fire.
    pub min_samples: u64,
    /// A rule whose condition changes `flap_flips` times within
    /// `flap_window_s` is flapping; 0 turns the detection off.
    pub flap_window_s: u64,
    pub flap_flips: u32,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub silenced_until: Option<OffsetDateTime>,
}

/// Why a configuration was refused: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct ConfigError {
    pub field: &'static str,
    pub problem: String,
}

const DAY_S: u64 = 86_400;

impl RuleConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |field, problem: &str| {
            Err(ConfigError {
                field,
                problem: problem.to_owned(),
            })
        };
        if !self.fire_threshold.is_finite() || self.fire_threshold < 0.0 {
            return fail("fire_threshold", "must be a number of at least 0");
        }
        if !self.clear_threshold.is_finite() || self.clear_threshold < 0.0 {
            return fail("clear_threshold", "must be a number of at least 0");
        }
        if self.clear_threshold > self.fire_threshold {
            return fail("clear_threshold", "must not exceed fire_threshold");
        }
        if self.for_s > DAY_S {
            return fail("for_s", "must be at most 86400 (a day)");
        }
        if self.keep_firing_for_s > DAY_S {
            return fail("keep_firing_for_s", "must be at most 86400 (a day)");
        }
        if !(60..=7 * DAY_S).contains(&self.repeat_interval_s) {
            return fail("repeat_interval_s", "must be between 60 and 604800 (a week)");
        }
        if !(10..=3600).contains(&self.window_s) {
            return fail("window_s", "must be between 10 and 3600 (an hour)");
        }
        if self.min_samples > 1_000_000 {
            return fail("min_samples", "must be at most 1000000");
        }
        if !(10..=DAY_S).contains(&self.flap_window_s) {
            return fail("flap_window_s", "must be between 10 and 86400 (a day)");
        }
        if self.flap_flips == 1 || self.flap_flips > 100 {
            return fail("flap_flips", "must be 0 (off) or between 2 and 100");
        }
        if self.routes.contains(&Route::Pagerduty) && self.severity != Severity::Critical {
            return fail(
                "routes",
                "may include pagerduty only for a critical rule: pages are for what needs a person now",
            );
        }
        let mut routes = self.routes.clone();
        routes.sort();
        routes.dedup();
        if routes.len() != self.routes.len() {
            return fail("routes", "must not name a route twice");
        }
        Ok(())
    }

    pub fn silenced_at(&self, now: OffsetDateTime) -> bool {
        self.silenced_until.is_some_and(|until| until > now)
    }
}

/// Where a rule stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Ok,
    Pending,
    Firing,
    Flapping,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Flapping => "flapping",
        }
    }
}

/// A rule's state between evaluations; kept in the store so that another
/// node continues it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RuleState {
    pub phase: Phase,
    /// When the current phase began.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub since: Option<OffsetDateTime>,
    /// When the current incident began (firing or flapping).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub incident: Option<OffsetDateTime>,
    /// Incidents so far: with `sent`, what names a notification once
    /// (across nodes and hand-overs).
    #[serde(default)]
    pub incidents: u64,
    /// Notifications owed in the current incident so far.
    #[serde(default)]
    pub sent: u32,
    /// Whether anything of the current incident was sent (not silenced):
    /// then its resolution is sent even under a silence.
    #[serde(default)]
    pub delivered: bool,
    /// Firing, and clear since then.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub clearing_since: Option<OffsetDateTime>,
    /// Whether the condition held at the last evaluation.
    #[serde(default)]
    pub active: bool,
    /// When the condition changed, within the flap window.
    #[serde(default)]
    pub flips: Vec<i64>,
    /// The last firing or repeat notification.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub last_notified: Option<OffsetDateTime>,
    /// A firing notification was silenced: it is sent when the silence
    /// ends, if the rule still fires.
    #[serde(default)]
    pub owed_firing: bool,
    /// The last reading.
    #[serde(default)]
    pub value: f64,
}

/// One evaluation's input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub value: f64,
    /// False when the window holds too few samples for the value to count
    /// (the error rate below `min_samples`): the condition does not hold.
    pub enough: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Firing,
    Resolved,
    Flapping,
    Repeat,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
            Self::Flapping => "flapping",
            Self::Repeat => "repeat",
        }
    }

    /// Whether the notification opens or keeps an incident (a PagerDuty
    /// `trigger`) rather than closing it (`resolve`).
    pub fn triggers(self) -> bool {
        !matches!(self, Self::Resolved)
    }

    /// Whether it goes to PagerDuty: flapping does not page (a condition
    /// that never held for its `for` must not wake anyone); the firing
    /// or resolution that ends it does.
    pub fn pages(self) -> bool {
        !matches!(self, Self::Flapping)
    }
}

/// A notification an evaluation owes.
#[derive(Debug, Clone, PartialEq)]
pub struct Owed {
    pub kind: NotificationKind,
    /// What happened, in a sentence.
    pub summary: String,
    /// Under a silence: recorded, not sent.
    pub silenced: bool,
    /// Unique per rule, incident and notification: the same evaluation on
    /// two nodes owes the same key, so only one of them sends it.
    pub key: String,
}

/// The most condition changes a state keeps (the flap window's).
const MAX_FLIPS: usize = 200;

/// The rule's next state after `reading` at `now`, and what it owes.
pub fn evaluate(
    rule: RuleName,
    config: &RuleConfig,
    state: &RuleState,
    reading: Reading,
    now: OffsetDateTime,
) -> (RuleState, Vec<Owed>) {
    let mut next = state.clone();
    next.value = reading.value;
    // Whether the value breaches: above the fire threshold to start, and
    // (once firing) above the clear threshold to go on: hysteresis. While
    // pending, every reading must be above the fire threshold, as in
    // Prometheus's `for`.
    let above_fire = reading.enough && reading.value > config.fire_threshold;
    let above_clear = reading.enough && reading.value > config.clear_threshold;
    // Flapping counts changes of the condition as a Schmitt trigger sees
    // it, whatever the phase.
    let active = if state.active { above_clear } else { above_fire };
    let window = Duration::seconds(config.flap_window_s as i64);
    let now_s = now.unix_timestamp();
    if config.flap_flips == 0 {
        next.flips.clear();
    } else if active != state.active {
        next.flips.push(now_s);
    }
    next.active = active;
    next.flips.retain(|at| now_s - at < window.whole_seconds());
    if next.flips.len() > MAX_FLIPS {
        next.flips.drain(..next.flips.len() - MAX_FLIPS);
    }
    let silenced = config.silenced_at(now);
    let mut owed = Vec::new();
    // An ending is said when its beginning was: a silence that began after
    // a page was sent does not keep the page's incident open.
    let mut owe = |next: &mut RuleState, kind: NotificationKind, summary: String| {
        let hushed = match kind {
            NotificationKind::Resolved => silenced && !next.delivered,
            _ => silenced,
        };
        owed.push(Owed {
            kind,
            summary,
            silenced: hushed,
            key: format!("{}:{}:{}", rule.as_str(), next.incidents, next.sent),
        });
        next.sent += 1;
        next.delivered |= !hushed;
    };
    let open_incident = |next: &mut RuleState| {
        next.incidents += 1;
        next.incident = Some(now);
        next.sent = 0;
        next.delivered = false;
    };
    let flapping = config.flap_flips > 0 && next.flips.len() >= config.flap_flips as usize;
    let enter = |next: &mut RuleState, phase: Phase| {
        next.phase = phase;
        next.since = Some(now);
        next.clearing_since = None;
    };
    match state.phase {
        _ if flapping && state.phase != Phase::Flapping => {
            if state.phase != Phase::Firing {
                open_incident(&mut next);
            }
            enter(&mut next, Phase::Flapping);
            let flips = next.flips.len();
            owe(
                &mut next,
                NotificationKind::Flapping,
                format!("started flapping: {flips} changes within {}", human(window)),
            );
        }
        Phase::Flapping => {
            // Ends when the changes within the window fall to half of
            // those that started it: hysteresis again, so that it does not
            // flap about flapping.
            if next.flips.len() <= config.flap_flips as usize / 2 {
                if above_clear {
                    enter(&mut next, Phase::Firing);
                    next.last_notified = Some(now);
                    next.owed_firing = silenced;
                    owe(
                        &mut next,
                        NotificationKind::Firing,
                        "stopped flapping: still firing".to_owned(),
                    );
                } else {
                    enter(&mut next, Phase::Ok);
                    next.owed_firing = false;
                    owe(
                        &mut next,
                        NotificationKind::Resolved,
                        "stopped flapping: resolved".to_owned(),
                    );
                    next.incident = None;
                }
            }
        }
        Phase::Ok | Phase::Pending if above_fire => {
            if state.phase == Phase::Ok {
                enter(&mut next, Phase::Pending);
            }
            let pending_since = next.since.unwrap_or(now);
            if now - pending_since >= Duration::seconds(config.for_s as i64) {
                enter(&mut next, Phase::Firing);
                open_incident(&mut next);
                next.last_notified = Some(now);
                next.owed_firing = silenced;
                owe(&mut next, NotificationKind::Firing, "firing".to_owned());
            }
        }
        Phase::Ok | Phase::Pending => {
            if state.phase == Phase::Pending {
                enter(&mut next, Phase::Ok);
            }
        }
        Phase::Firing => {
            if above_clear {
                next.clearing_since = None;
                let last = state.last_notified.unwrap_or(now);
                if next.owed_firing && !silenced {
                    next.owed_firing = false;
                    next.last_notified = Some(now);
                    owe(
                        &mut next,
                        NotificationKind::Firing,
                        "firing (the silence ended)".to_owned(),
                    );
                } else if now - last >= Duration::seconds(config.repeat_interval_s as i64) {
                    next.last_notified = Some(now);
                    owe(&mut next, NotificationKind::Repeat, "still firing".to_owned());
                }
            } else {
                let clear_since = *next.clearing_since.get_or_insert(now);
                if now - clear_since >= Duration::seconds(config.keep_firing_for_s as i64) {
                    enter(&mut next, Phase::Ok);
                    next.owed_firing = false;
                    owe(&mut next, NotificationKind::Resolved, "resolved".to_owned());
                    next.incident = None;
                }
            }
        }
    }
    (next, owed)
}

/// A duration in the largest whole unit that fits it.
pub fn human(duration: Duration) -> String {
    let s = duration.whole_seconds();
    if s >= 3600 && s % 3600 == 0 {
        format!("{} h", s / 3600)
    } else if s >= 60 && s % 60 == 0 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-12-05 12:00 UTC);

    fn config() -> RuleConfig {
        RuleConfig {
            fire_threshold: 10.0,
            clear_threshold: 5.0,
            for_s: 60,
            keep_firing_for_s: 120,
            ..RuleName::QueueDepth.default_config()
        }
    }

    /// Runs `values`, one evaluation every `step_s` seconds, and returns
    /// the final state and every notification with its second.
    fn run(config: &RuleConfig, values: &[f64], step_s: i64) -> (RuleState, Vec<(i64, NotificationKind)>) {
        let mut state = RuleState::default();
        let mut sent = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let at = i as i64 * step_s;
            let reading = Reading {
                value: *value,
                enough: true,
            };
            let (next, owed) = evaluate(
                RuleName::QueueDepth,
                config,
                &state,
                reading,
                T0 + Duration::seconds(at),
            );
            sent.extend(owed.iter().map(|o| (at, o.kind)));
            state = next;
        }
        (state, sent)
    }

    #[test]
    fn a_rule_fires_only_after_its_for_and_resolves_only_after_keep_firing_for() {
        // 11 from 0 s to 200 s, then 0.
        let values: Vec<f64> = (0..40).map(|i| if i * 10 <= 200 { 11.0 } else { 0.0 }).collect();
        let (state, sent) = run(&config(), &values, 10);
        assert_eq!(
            sent,
            vec![(60, NotificationKind::Firing), (330, NotificationKind::Resolved)]
        );
        assert_eq!(state.phase, Phase::Ok);
    }

    #[test]
    fn a_blip_shorter_than_for_never_fires() {
        let values = [11.0, 11.0, 11.0, 0.0, 11.0, 11.0, 0.0, 0.0];
        let (state, sent) = run(&config(), &values, 10);
        assert!(sent.is_empty(), "{sent:?}");
        assert_eq!(state.phase, Phase::Ok);
    }

    #[test]
    fn between_the_thresholds_a_firing_rule_keeps_firing() {
        // Fires at 60 s, then sits at 7: above clear (5), below fire (10).
        let mut values = vec![11.0; 7];
        values.extend([7.0; 30]);
        let (state, sent) = run(&config(), &values, 10);
        assert_eq!(sent, vec![(60, NotificationKind::Firing)]);
        assert_eq!(state.phase, Phase::Firing);
        // ...and the same 7 never starts an ok rule.
        let (state, sent) = run(&config(), &[7.0; 30], 10);
        assert!(sent.is_empty());
        assert_eq!(state.phase, Phase::Ok);
    }

    #[test]
    fn a_firing_rule_repeats_at_its_interval() {
        let config = RuleConfig {
            repeat_interval_s: 3600,
            ..config()
        };
        let values = vec![11.0; 2 * 360 + 10];
        let (_, sent) = run(&config, &values, 10);
        let kinds: Vec<_> = sent.iter().map(|(at, kind)| (*at, *kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (60, NotificationKind::Firing),
                (3660, NotificationKind::Repeat),
                (7260, NotificationKind::Repeat)
            ]
        );
    }

    #[test]
    fn a_flapping_condition_notifies_when_it_starts_and_when_it_stops() {
        let config = RuleConfig {
            for_s: 0,
            keep_firing_for_s: 0,
            flap_flips: 4,
            flap_window_s: 600,
            ..config()
        };
        // Flips every 10 s for 5 minutes, then stays clear.
        let mut values: Vec<f64> = (0..30).map(|i| if i % 2 == 0 { 11.0 } else { 0.0 }).collect();
        values.extend([0.0; 90]);
        let (state, sent) = run(&config, &values, 10);
        let kinds: Vec<_> = sent.iter().map(|(_, kind)| *kind).collect();
        // Fires, resolves, fires again: then it is flapping, and nothing
        // more is said until it stops.
        assert_eq!(
            kinds,
            vec![
                NotificationKind::Firing,
                NotificationKind::Resolved,
                NotificationKind::Firing,
                NotificationKind::Flapping,
                NotificationKind::Resolved
            ],
            "{sent:?}"
        );
        assert_eq!(state.phase, Phase::Ok);
    }

    #[test]
    fn a_silence_records_without_sending_and_a_firing_rule_is_told_when_it_ends() {
        let silence_end = T0 + Duration::seconds(300);
        let config = RuleConfig {
            silenced_until: Some(silence_end),
            ..config()
        };
        let mut state = RuleState::default();
        let mut all = Vec::new();
        for i in 0..40 {
            let at = T0 + Duration::seconds(i * 10);
            let reading = Reading {
                value: 11.0,
                enough: true,
            };
            let (next, owed) = evaluate(RuleName::QueueDepth, &config, &state, reading, at);
            all.extend(owed.into_iter().map(|o| (i * 10, o.kind, o.silenced)));
            state = next;
        }
        assert_eq!(
            all,
            vec![
                (60, NotificationKind::Firing, true),
                (300, NotificationKind::Firing, false)
            ]
        );
    }

    #[test]
    fn while_pending_every_reading_must_be_above_the_fire_threshold() {
        // One reading above 10, then 7s (above clear, below fire): Prometheus's
        // `for` needs the condition at every evaluation, so this never fires.
        let mut values = vec![11.0];
        values.extend([7.0; 20]);
        let (state, sent) = run(&config(), &values, 10);
        assert!(sent.is_empty(), "{sent:?}");
        assert_eq!(state.phase, Phase::Ok);
    }

    #[test]
    fn a_resolution_is_sent_under_a_silence_when_its_firing_was() {
        let mut state = RuleState::default();
        let mut all = Vec::new();
        for i in 0..40 {
            let at = T0 + Duration::seconds(i * 10);
            // Silenced from 100 s on, after the firing at 60 s was sent.
            let config = RuleConfig {
                silenced_until: (i >= 10).then(|| T0 + Duration::hours(1)),
                ..config()
            };
            let value = if i < 20 { 11.0 } else { 0.0 };
            let reading = Reading { value, enough: true };
            let (next, owed) = evaluate(RuleName::QueueDepth, &config, &state, reading, at);
            all.extend(owed.into_iter().map(|o| (o.kind, o.silenced)));
            state = next;
        }
        assert_eq!(
            all,
            vec![(NotificationKind::Firing, false), (NotificationKind::Resolved, false)],
            "the page that was sent is closed"
        );
    }

    #[test]
    fn each_incident_has_its_own_keys() {
        let config = RuleConfig {
            for_s: 0,
            keep_firing_for_s: 0,
            flap_flips: 0,
            ..config()
        };
        let mut state = RuleState::default();
        let mut keys = Vec::new();
        // Fires, resolves and fires again within the same second.
        for value in [11.0, 0.0, 11.0] {
            let reading = Reading { value, enough: true };
            let (next, owed) = evaluate(RuleName::QueueDepth, &config, &state, reading, T0);
            keys.extend(owed.into_iter().map(|o| o.key));
            state = next;
        }
        assert_eq!(keys, vec!["queue_depth:1:0", "queue_depth:1:1", "queue_depth:2:0"]);
    }

    #[test]
    fn too_few_samples_never_fire() {
        let mut state = RuleState::default();
        for i in 0..20 {
            let reading = Reading {
                value: 0.5,
                enough: false,
            };
            let (next, owed) = evaluate(
                RuleName::ErrorRate,
                &RuleName::ErrorRate.default_config(),
                &state,
                reading,
                T0 + Duration::seconds(i * 10),
            );
            assert!(owed.is_empty());
            state = next;
        }
        assert_eq!(state.phase, Phase::Ok);
    }

    #[test]
    fn keys_name_one_notification_of_one_incident() {
        let values = [11.0; 8];
        let mut state = RuleState::default();
        let mut keys = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let reading = Reading {
                value: *value,
                enough: true,
            };
            let at = T0 + Duration::seconds(i as i64 * 10);
            let (next, owed) = evaluate(RuleName::QueueDepth, &config(), &state, reading, at);
            // The same evaluation from the same state owes the same keys.
            let (_, again) = evaluate(RuleName::QueueDepth, &config(), &state, reading, at);
            assert_eq!(owed, again);
            keys.extend(owed.into_iter().map(|o| o.key));
            state = next;
        }
        assert_eq!(keys, vec!["queue_depth:1:0".to_owned()]);
    }

    #[test]
    fn defaults_are_valid_and_bad_configurations_are_refused() {
        for rule in RuleName::ALL {
            assert_eq!(rule.default_config().validate(), Ok(()), "{rule:?}");
            assert_eq!(RuleName::parse(rule.as_str()), Some(rule));
        }
        let inverted = RuleConfig {
            clear_threshold: 20.0,
            ..config()
        };
        assert_eq!(inverted.validate().map_err(|e| e.field), Err("clear_threshold"));
        let twice = RuleConfig {
            routes: vec![Route::Slack, Route::Slack],
            ..config()
        };
        assert_eq!(twice.validate().map_err(|e| e.field), Err("routes"));
    }
}

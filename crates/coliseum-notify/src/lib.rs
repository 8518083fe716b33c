//! Telling people: alert notifications to Slack (incoming webhooks, Block
//! Kit), email (SMTP) and PagerDuty (Events API v2), each attempt retried
//! with exponential backoff and full jitter; and error reports to Sentry.
//!
//! The receivers are configuration (URLs), so tests point them at local
//! servers the tests start.

mod email;
mod pagerduty;
mod retry;
pub mod sentry_reports;
mod slack;

use coliseum_domain::alerts::{NotificationKind, Route, RuleName, Severity};
use time::OffsetDateTime;

pub use retry::{RetryPolicy, with_retries};

/// What a notification says, whichever the route.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub rule: RuleName,
    pub kind: NotificationKind,
    pub severity: Severity,
    /// The reading, formatted with its unit.
    pub value: String,
    /// The condition, formatted (`> 1,000 entries`).
    pub threshold: String,
    /// When the incident (or the phase) began.
    pub since: OffsetDateTime,
    /// What happened, in a sentence.
    pub summary: String,
    /// The DIA panel.
    pub panel_url: String,
    /// PagerDuty's deduplication key: one incident per rule.
    pub dedup_key: String,
}

impl Notice {
    /// `FIRING`, `RESOLVED`…: the first word of every message.
    pub fn headline(&self) -> String {
        format!(
            "{}: {} ({})",
            self.kind.as_str().to_uppercase(),
            self.rule.describe(),
            self.rule.as_str()
        )
    }
}

/// The configured receivers; an unconfigured route fails its deliveries
/// with a clear reason rather than dropping them in silence. They hold
/// secrets (a webhook URL, a routing key, SMTP credentials): `Debug` says
/// only which are configured.
#[derive(Clone, Default)]
pub struct Receivers {
    pub slack_webhook_url: Option<String>,
    pub email: Option<EmailReceiver>,
    pub pagerduty: Option<PagerDutyReceiver>,
}

#[derive(Clone)]
pub struct EmailReceiver {
    /// `smtp://` or `smtps://` with credentials in the URL.
    pub smtp_url: String,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Clone)]
pub struct PagerDutyReceiver {
    /// The Events API v2 enqueue endpoint.
    pub url: String,
    pub routing_key: String,
}

impl std::fmt::Debug for Receivers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receivers")
            .field("slack", &self.slack_webhook_url.is_some())
            .field("email", &self.email.as_ref().map(|e| &e.to))
            .field("pagerduty", &self.pagerduty.is_some())
            .finish()
    }
}

/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Why one attempt failed, and whether another may succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub message: String,
    /// A network failure, a timeout, a 5xx or a 429 may pass later; a 4xx
    /// or a missing receiver will not.
    pub retryable: bool,
}

impl DeliveryError {
    fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// The failure an HTTP answer stands for.
    fn of_status(receiver: &str, status: reqwest::StatusCode) -> Self {
        let message = format!("{receiver} answered {status}");
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Self::transient(message)
        } else {
            Self::permanent(message)
        }
    }

    fn of_request(receiver: &str, error: reqwest::Error) -> Self {
        // Without the URL: a webhook URL is a secret.
        Self::transient(format!("{receiver} could not be reached: {}", error.without_url()))
    }
}

/// Sends `notice` once to `route`.
pub async fn deliver(
    http: &reqwest::Client,
    receivers: &Receivers,
    route: Route,
    notice: &Notice,
) -> Result<(), DeliveryError> {
    match route {
        Route::Slack => {
            let url = receivers
                .slack_webhook_url
                .as_deref()
                .ok_or_else(|| DeliveryError::permanent("no Slack webhook is configured (--slack-webhook-url)"))?;
            slack::send(http, url, notice).await
        }
        Route::Email => {
            let receiver = receivers.email.as_ref().ok_or_else(|| {
                DeliveryError::permanent("no alert email is configured (--smtp-url and --alert-email-to)")
            })?;
            email::send(receiver, notice).await
        }
        Route::Pagerduty => {
            let receiver = receivers.pagerduty.as_ref().ok_or_else(|| {
                DeliveryError::permanent("no PagerDuty routing key is configured (--pagerduty-routing-key)")
            })?;
            pagerduty::send(http, receiver, notice).await
        }
    }
}

/// The `since` of a message: RFC 3339, to the second.
fn since_text(at: OffsetDateTime) -> String {
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) fn sample_notice(kind: NotificationKind) -> Notice {
    Notice {
        rule: RuleName::QueueDepth,
        kind,
        severity: Severity::Critical,
        value: "1,001 entries".to_owned(),
        threshold: "> 1,000 entries".to_owned(),
        since: time::macros::datetime!(2026-12-05 12:00:00.5 UTC),
        summary: "firing".to_owned(),
        panel_url: "https://coliseum.example/app/admin".to_owned(),
        dedup_key: "coliseum/queue_depth".to_owned(),
    }
}

//! PagerDuty Events API v2: `trigger` while a rule fires (its repeats and
//! flapping included) and `resolve` when it resolves, under one
//! `dedup_key` per rule, so that one incident is one page.

use serde_json::{Value, json};

use crate::{DeliveryError, Notice, PagerDutyReceiver, since_text};

pub(crate) fn event(routing_key: &str, notice: &Notice) -> Value {
    let action = if notice.kind.triggers() { "trigger" } else { "resolve" };
    let severity = match notice.severity {
        coliseum_domain::alerts::Severity::Critical => "critical",
        coliseum_domain::alerts::Severity::Warning => "warning",
    };
    json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": notice.dedup_key,
        "payload": {
            // PagerDuty caps the summary at 1,024 characters.
            "summary": format!("{}: {} ({})", notice.headline(), notice.value, notice.threshold).chars().take(1024).collect::<String>(),
            "source": "coliseum",
            "severity": severity,
            "timestamp": since_text(notice.since),
            "component": "pipeline",
            "class": notice.rule.as_str(),
            "custom_details": {
                "rule": notice.rule.as_str(),
                "value": notice.value,
                "threshold": notice.threshold,
                "what_happened": notice.summary,
            },
        },
        "links": [{"href": notice.panel_url, "text": "DIA panel"}],
    })
}

pub(crate) async fn send(
    http: &reqwest::Client,
    receiver: &PagerDutyReceiver,
    notice: &Notice,
) -> Result<(), DeliveryError> {
    let response = http
        .post(&receiver.url)
        .json(&event(&receiver.routing_key, notice))
        .send()
        .await
        .map_err(|e| DeliveryError::of_request("PagerDuty", e))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(DeliveryError::of_status("PagerDuty", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use coliseum_domain::alerts::NotificationKind;

    use super::*;
    use crate::sample_notice;

    #[test]
    fn firing_triggers_and_resolved_resolves_under_one_key() {
        let fire = event("R0UT1NG", &sample_notice(NotificationKind::Firing));
        let repeat = event("R0UT1NG", &sample_notice(NotificationKind::Repeat));
        let resolve = event("R0UT1NG", &sample_notice(NotificationKind::Resolved));
        assert_eq!(
            (&fire["event_action"], &repeat["event_action"], &resolve["event_action"]),
            (&json!("trigger"), &json!("trigger"), &json!("resolve"))
        );
        assert_eq!(fire["dedup_key"], resolve["dedup_key"]);
        assert_eq!(fire["routing_key"], "R0UT1NG");
        assert_eq!(fire["payload"]["severity"], "critical");
    }
}

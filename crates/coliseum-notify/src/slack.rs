//! Slack incoming webhooks: a Block Kit message with the rule, its value
//! and threshold, since when, and a button to the DIA panel.

use serde_json::{Value, json};

use crate::{DeliveryError, Notice, since_text};

pub(crate) fn message(notice: &Notice) -> Value {
    let icon = match notice.kind.as_str() {
        "resolved" => ":white_check_mark:",
        "flapping" => ":warning:",
        _ => ":rotating_light:",
    };
    let field = |name: &str, value: &str| json!({"type": "mrkdwn", "text": format!("*{name}*\n{value}")});
    json!({
        // What notifications and clients without blocks show.
        "text": format!("{}: {} is {} ({})", notice.headline(), notice.rule.as_str(), notice.value, notice.threshold),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": format!("{icon} {}", notice.headline()), "emoji": true}},
            {"type": "section", "fields": [
                field("Rule", &format!("`{}`", notice.rule.as_str())),
                field("Severity", &format!("{:?}", notice.severity).to_lowercase()),
                field("Value", &notice.value),
                field("Threshold", &notice.threshold),
                field("Since", &since_text(notice.since)),
                field("What happened", &notice.summary),
            ]},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open the DIA panel"}, "url": notice.panel_url}
            ]}
        ]
    })
}

pub(crate) async fn send(http: &reqwest::Client, url: &str, notice: &Notice) -> Result<(), DeliveryError> {
    let response = http
        .post(url)
        .json(&message(notice))
        .send()
        .await
        .map_err(|e| DeliveryError::of_request("Slack", e))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(DeliveryError::of_status("Slack", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use coliseum_domain::alerts::NotificationKind;

    use super::*;
    use crate::sample_notice;

    #[test]
    fn the_message_carries_rule_value_threshold_since_and_the_panel() {
        let body = message(&sample_notice(NotificationKind::Firing));
        let text = body.to_string();
        for expected in [
            "queue_depth",
            "1,001 entries",
            "> 1,000 entries",
            "2026-12-05T12:00:00Z",
            "https://coliseum.example/app/admin",
        ] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
        assert_eq!(body["blocks"][0]["type"], "header");
        assert_eq!(
            body["blocks"][2]["elements"][0]["url"],
            "https://coliseum.example/app/admin"
        );
    }
}

//! Email over SMTP: a plain-text message to the alert recipients.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::{DeliveryError, EmailReceiver, Notice, since_text};

pub(crate) fn subject(notice: &Notice) -> String {
    format!("[Coliseum] {}: {}", notice.headline(), notice.value)
}

pub(crate) fn body(notice: &Notice) -> String {
    format!(
        "{}\n\nRule:       {}\nSeverity:   {}\nValue:      {}\nThreshold:  {}\nSince:      {}\nWhat:       {}\n\nThe DIA panel: {}\n",
        notice.headline(),
        notice.rule.as_str(),
        format!("{:?}", notice.severity).to_lowercase(),
        notice.value,
        notice.threshold,
        since_text(notice.since),
        notice.summary,
        notice.panel_url,
    )
}

pub(crate) async fn send(receiver: &EmailReceiver, notice: &Notice) -> Result<(), DeliveryError> {
    let address = |text: &str| -> Result<Mailbox, DeliveryError> {
        text.parse()
            .map_err(|e| DeliveryError::permanent(format!("the address {text}: {e}")))
    };
    let mut message = Message::builder()
        .from(address(&receiver.from)?)
        .subject(subject(notice))
        .header(ContentType::TEXT_PLAIN);
    for to in &receiver.to {
        message = message.to(address(to)?);
    }
    let message = message
        .body(body(notice))
        .map_err(|e| DeliveryError::permanent(format!("the message: {e}")))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&receiver.smtp_url)
        .map_err(|_| DeliveryError::permanent("the SMTP URL is not one (smtp://, smtps://)"))?
        .timeout(Some(std::time::Duration::from_secs(20)))
        .build();
    match transport.send(message).await {
        Ok(_) => Ok(()),
        // A permanent SMTP answer (5xx) will not change; anything else
        // (no connection, 4xx) may.
        Err(error) if error.is_permanent() => Err(DeliveryError::permanent(format!("SMTP refused: {error}"))),
        Err(error) => Err(DeliveryError::transient(format!("SMTP: {error}"))),
    }
}

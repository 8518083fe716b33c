//! Scheduled reports: when each is due (weekly or monthly at a UTC time),
//! and the delivery loop that makes them and mails them over SMTP as an
//! attachment or a link, optionally only when the figures changed, retried
//! with backoff, every attempt recorded. Any node may deliver: a due
//! schedule is claimed in the store with a lease, so that it goes out once.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::document::{ReportRequest, gather};
use super::{Format, make, share_url};
use crate::app::AppState;
use crate::audit::RequestId;
use crate::problem::AppError;
use crate::routes::access::{Caller, Via};
use coliseum_domain::plans::Feature;
use coliseum_store::{NewDelivery, ScheduleAfter, ScheduleRecord};

/// Schedules an account may keep.
pub const MAX_SCHEDULES: u32 = 20;
/// Recipients of one schedule at most.
pub const MAX_RECIPIENTS: usize = 10;
/// Attempts at one delivery before it is recorded as failed.
pub const MAX_ATTEMPTS: i32 = 5;
/// How long a node holds a due schedule it took.
const LEASE: time::Duration = time::Duration::minutes(10);

/// How often a schedule repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// On a weekday (0: Monday).
    Week { weekday: u8 },
    /// On a day of the month, 1 to 28 (every month has it).
    Month { day: u8 },
}

pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// The first occurrence strictly after `after`: `every` at `at_minute`
/// minutes past midnight UTC.
pub fn next_after(after: OffsetDateTime, every: Every, at_minute: u16) -> OffsetDateTime {
    let after = after.to_offset(time::UtcOffset::UTC);
    let at = time::Duration::minutes(i64::from(at_minute));
    let on = |date: time::Date| date.midnight().assume_utc() + at;
    match every {
        Every::Week { weekday } => {
            let today = i64::from(after.weekday().number_days_from_monday());
            let ahead = (i64::from(weekday) - today).rem_euclid(7);
            let candidate = on(after.date() + time::Duration::days(ahead));
            if candidate > after {
                candidate
            } else {
                candidate + time::Duration::days(7)
            }
        }
        Every::Month { day } => {
            let this_month = after.date().replace_day(day).unwrap_or(after.date());
            let candidate = on(this_month);
            if candidate > after {
                return candidate;
            }
            let (year, month) = match after.month() {
                time::Month::December => (after.year() + 1, time::Month::January),
                month => (after.year(), month.next()),
            };
            time::Date::from_calendar_date(year, month, day).map_or(candidate + time::Duration::days(28), on)
        }
    }
}

/// The schedule's repetition as stored.
pub fn every_of(schedule: &coliseum_store::NewSchedule) -> Every {
    match schedule.every.as_str() {
        "month" => Every::Month {
            day: u8::try_from(schedule.day.unwrap_or(1)).unwrap_or(1),
        },
        _ => Every::Week {
            weekday: u8::try_from(schedule.weekday.unwrap_or(0)).unwrap_or(0),
        },
    }
}

/// The wait before attempt `attempt + 1` after `attempt` failed: 1, 2, 4, 8
/// minutes.
pub fn backoff(attempt: i32) -> time::Duration {
    time::Duration::minutes(1 << attempt.clamp(1, 6).saturating_sub(1))
}

/// A digest of a report's figures: the document without what changes on
/// every making (ids, instants, watermarks, links), so that two reports
/// with the same figures digest alike.
pub fn figures_digest(document: &Value) -> String {
    fn strip(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter(|(key, _)| {
                        !matches!(
                            key.as_str(),
                            "id" | "as_of" | "watermark" | "generated_at" | "share_url" | "next_cursor" | "range"
                        )
                    })
                    .map(|(key, value)| (key.clone(), strip(value)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    let digest = Sha256::digest(strip(document).to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Delivers every due schedule, every `tick`, until `stopped`.
pub async fn run(state: AppState, tick: Duration, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(tick);
    while !*stopped.borrow() {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => continue,
        }
        loop {
            let now = state.clock.now();
            match state.store.claim_due_schedule(now, now + LEASE).await {
                Ok(Some(schedule)) => deliver(&state, schedule).await,
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(error = %error, "due report schedules could not be read");
                    break;
                }
            }
        }
    }
}

/// How one attempt ended.
enum Outcome {
    Sent {
        report_id: String,
        digest: Option<String>,
    },
    Skipped(String),
    /// Worth another attempt (the mail server or the store failed).
    Retry {
        report_id: Option<String>,
        why: String,
    },
    /// Not worth another attempt (the plan, the quota, the parameters).
    Failed {
        report_id: Option<String>,
        why: String,
    },
}

async fn deliver(state: &AppState, schedule: ScheduleRecord) {
    let now = state.clock.now();
    let attempt = schedule.attempts + 1;
    let outcome = attempt_delivery(state, &schedule).await;
    let next_occurrence = next_after(now, every_of(&schedule.schedule), schedule.schedule.at_minute as u16);
    let moved_on = |digest: Option<String>| ScheduleAfter {
        next_at: next_occurrence,
        attempts: 0,
        pending_report_id: None,
        last_digest: digest,
    };
    let (status, report_id, detail, after) = match outcome {
        Outcome::Sent { report_id, digest } => ("sent", Some(report_id), None, moved_on(digest)),
        Outcome::Skipped(why) => ("skipped", None, Some(why), moved_on(None)),
        Outcome::Failed { report_id, why } => ("failed", report_id, Some(why), moved_on(None)),
        Outcome::Retry { report_id, why } if attempt < MAX_ATTEMPTS => (
            "retrying",
            report_id.clone(),
            Some(why),
            ScheduleAfter {
                next_at: now + backoff(attempt),
                attempts: attempt,
                pending_report_id: report_id,
                last_digest: None,
            },
        ),
        Outcome::Retry { report_id, why } => (
            "failed",
            report_id,
            Some(format!("{why} (gave up after {MAX_ATTEMPTS} attempts)")),
            moved_on(None),
        ),
    };
    let delivery = NewDelivery {
        schedule_id: schedule.id,
        at: now,
        status: status.to_owned(),
        attempt,
        report_id,
        detail,
    };
    if status != "sent" {
        tracing::warn!(schedule = schedule.id, status, detail = ?delivery.detail, "a scheduled report was not sent");
    }
    if let Err(error) = state.store.record_delivery(&delivery, &after).await {
        tracing::error!(error = %error, schedule = schedule.id, "a scheduled delivery was not recorded");
    }
}

async fn attempt_delivery(state: &AppState, schedule: &ScheduleRecord) -> Outcome {
    let Some(smtp) = state.settings.smtp.clone() else {
        return Outcome::Retry {
            report_id: schedule.pending_report_id.clone(),
            why: "no SMTP server is configured (--smtp-url)".to_owned(),
        };
    };
    let user = match state.store.user_by_id(schedule.schedule.user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return Outcome::Skipped("the account no longer exists".to_owned()),
        Err(error) => {
            tracing::warn!(error = %error, "a schedule's account could not be read");
            return Outcome::Retry {
                report_id: None,
                why: "the store was unavailable".to_owned(),
            };
        }
    };
    // The account as it is now: its plan of the moment decides.
    let caller = Caller {
        user: Some(user),
        via: Via::Scheduler,
    };
    if let Err(error) = caller.may(Feature::Reports) {
        return Outcome::Skipped(error.to_string());
    }
    let request_id = RequestId(format!("schedule-{}", schedule.id));
    let params: Value = serde_json::from_str(&schedule.schedule.params).unwrap_or(Value::Null);
    let request = match ReportRequest::parse(&schedule.schedule.template, &params) {
        Ok(request) => request,
        Err(error) => {
            return Outcome::Failed {
                report_id: None,
                why: error.to_string(),
            };
        }
    };
    let format = Format::parse(&schedule.schedule.format).unwrap_or(Format::Pdf);
    // A retry sends the report its first attempt made.
    let report_id = match &schedule.pending_report_id {
        Some(id) => id.clone(),
        None => {
            let digest = if schedule.schedule.only_if_changed {
                match gather(state, &caller, &request_id, &request, "digest", None).await {
                    Ok(document) => {
                        let digest = serde_json::to_value(&document).map(|v| figures_digest(&v)).ok();
                        if digest.is_some() && digest == schedule.last_digest {
                            return Outcome::Skipped("the figures did not change since the last delivery".to_owned());
                        }
                        digest
                    }
                    Err(error) => return failure(None, error),
                }
            } else {
                None
            };
            match make(state, &caller, &request_id, request, format, None).await {
                Ok(made) => {
                    return match send(state, &smtp, schedule, &made.report.id, format).await {
                        Ok(()) => Outcome::Sent {
                            report_id: made.report.id,
                            digest,
                        },
                        Err(why) => Outcome::Retry {
                            report_id: Some(made.report.id),
                            why,
                        },
                    };
                }
                Err(error) => return failure(None, error),
            }
        }
    };
    match send(state, &smtp, schedule, &report_id, format).await {
        Ok(()) => Outcome::Sent {
            report_id,
            digest: None,
        },
        Err(why) => Outcome::Retry {
            report_id: Some(report_id),
            why,
        },
    }
}

/// A refusal is final; an outage, a full queue or an account making its
/// most reports at once is retried. A bug is logged, and the delivery log
/// says only that the report could not be made.
fn failure(report_id: Option<String>, error: AppError) -> Outcome {
    match error {
        AppError::Unavailable { detail, .. } | AppError::LimitReached(detail) => {
            Outcome::Retry { report_id, why: detail }
        }
        AppError::Internal(cause) => {
            tracing::error!(error = %cause, "a scheduled report could not be made");
            Outcome::Retry {
                report_id,
                why: "the report could not be made (the error is logged)".to_owned(),
            }
        }
        other => Outcome::Failed {
            report_id,
            why: other.to_string(),
        },
    }
}

/// Mails the report to the schedule's recipients (blind copies: they do
/// not see each other's addresses).
async fn send(
    state: &AppState,
    smtp: &crate::settings::SmtpSettings,
    schedule: &ScheduleRecord,
    report_id: &str,
    format: Format,
) -> Result<(), String> {
    let report = state
        .store
        .report(report_id)
        .await
        .map_err(|_| "the store was unavailable".to_owned())?
        .ok_or_else(|| "the report is gone".to_owned())?;
    let link = state
        .store
        .shares_of(report.user_id)
        .await
        .map_err(|_| "the store was unavailable".to_owned())?
        .into_iter()
        .find(|s| s.report_id == report.id && s.in_force(state.clock.now()))
        .map(|s| share_url(state, &s.token));
    let title = super::document::Template::parse(&report.template).map_or("Report", super::document::Template::title);
    let from: Mailbox = smtp.from.parse().map_err(|e| format!("--smtp-from: {e}"))?;
    let mut builder = Message::builder().from(from.clone()).to(from).subject(format!(
        "Coliseum: your {} {}",
        schedule
            .schedule
            .every
            .replace("week", "weekly")
            .replace("month", "monthly"),
        title.to_lowercase()
    ));
    for recipient in &schedule.schedule.recipients {
        builder = builder.bcc(recipient.parse().map_err(|e| format!("recipient {recipient}: {e}"))?);
    }
    let mut text = format!("Your scheduled {} from Coliseum is ready.\n\n", title.to_lowercase());
    if let Some(link) = &link {
        text.push_str(&format!("Open it online: {link}\n"));
    }
    let attach = schedule.schedule.deliver == "attachment";
    if attach {
        text.push_str("The report is attached.\n");
    }
    text.push_str("\nYou receive this because an account on Coliseum scheduled it for you.\n");
    let body = if attach {
        let bytes = state
            .reports
            .files
            .get(&report.id, &report.format)
            .await
            .map_err(|_| "the report's file could not be read".to_owned())?;
        let name = format!(
            "coliseum-{}-{}.{}",
            report.template,
            report.created_at.date(),
            format.as_str()
        );
        let content_type = ContentType::parse(format.content_type()).map_err(|e| e.to_string())?;
        MultiPart::mixed()
            .singlepart(SinglePart::plain(text))
            .singlepart(Attachment::new(name).body(bytes.to_vec(), content_type))
    } else {
        MultiPart::mixed().singlepart(SinglePart::plain(text))
    };
    let message = builder.multipart(body).map_err(|e| e.to_string())?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp.url.expose())
        .map_err(|e| format!("--smtp-url: {e}"))?
        .timeout(Some(Duration::from_secs(20)))
        .build();
    transport.send(message).await.map(|_| ()).map_err(|error| {
        // What the mail server said stays in the server's log; the
        // delivery log, which the account reads, says what happened.
        tracing::warn!(error = %error, schedule = schedule.id, "a scheduled report was not mailed");
        if error.is_permanent() {
            "the mail server refused the message".to_owned()
        } else {
            "the mail server could not be reached or failed to take the message".to_owned()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn weekly_schedules_fall_on_their_weekday_at_their_time() {
        // 2026-12-05 is a Saturday.
        let saturday = datetime!(2026-12-05 10:00 UTC);
        let monday_9 = Every::Week { weekday: 0 };
        assert_eq!(next_after(saturday, monday_9, 9 * 60), datetime!(2026-12-07 09:00 UTC));
        let saturday_11 = Every::Week { weekday: 5 };
        assert_eq!(
            next_after(saturday, saturday_11, 11 * 60),
            datetime!(2026-12-05 11:00 UTC)
        );
        assert_eq!(
            next_after(saturday, saturday_11, 10 * 60),
            datetime!(2026-12-12 10:00 UTC),
            "strictly after"
        );
    }

    #[test]
    fn monthly_schedules_fall_on_their_day_and_cross_the_year() {
        let at = datetime!(2026-12-05 10:00 UTC);
        assert_eq!(
            next_after(at, Every::Month { day: 5 }, 9 * 60),
            datetime!(2027-01-05 09:00 UTC)
        );
        assert_eq!(
            next_after(at, Every::Month { day: 28 }, 0),
            datetime!(2026-12-28 00:00 UTC)
        );
        assert_eq!(
            next_after(at, Every::Month { day: 1 }, 0),
            datetime!(2027-01-01 00:00 UTC)
        );
    }

    #[test]
    fn retries_back_off_and_digests_ignore_what_changes_on_every_making() {
        assert_eq!(backoff(1), time::Duration::minutes(1));
        assert_eq!(backoff(4), time::Duration::minutes(8));
        let one = serde_json::json!({"id": "rep_a", "as_of": "t1", "kpis": {"watermark": 1, "totals": {"plays": 3}}});
        let two = serde_json::json!({"id": "rep_b", "as_of": "t2", "kpis": {"watermark": 9, "totals": {"plays": 3}}});
        let three = serde_json::json!({"id": "rep_b", "as_of": "t2", "kpis": {"watermark": 9, "totals": {"plays": 4}}});
        assert_eq!(figures_digest(&one), figures_digest(&two));
        assert_ne!(figures_digest(&two), figures_digest(&three));
    }
}

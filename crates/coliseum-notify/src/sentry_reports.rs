//! Errors and panics to Sentry, with the request's id, route and status
//! and never personal data: no user, no bodies, no query strings, no
//! headers, and anything shaped like an email address replaced.

use std::collections::BTreeMap;
use std::sync::Arc;

use sentry::protocol::{Event, Exception, Level, Values};

tokio::task_local! {
    /// The request being served by the current task, for a panic's report.
    pub static REQUEST: RequestTags;
}

/// What a report says about the request it happened in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTags {
    pub request_id: String,
    /// The route's template (`/v1/admin/audit`), never the URI.
    pub route: String,
    pub method: String,
}

/// Starts reporting to `dsn`; reports are flushed when the guard drops.
pub fn init(dsn: &str) -> Result<sentry::ClientInitGuard, String> {
    let dsn: sentry::types::Dsn = dsn.parse().map_err(|e| format!("--sentry-dsn is not a DSN: {e}"))?;
    let mut options = sentry::ClientOptions::default();
    options.dsn = Some(dsn);
    options.release = Some(concat!("coliseum@", env!("CARGO_PKG_VERSION")).into());
    options.send_default_pii = false;
    options.before_send = Some(Arc::new(|event| Some(scrubbed(event))));
    let guard = sentry::init(options);
    install_panic_hook();
    Ok(guard)
}

/// The longest cause or tag sent: a database message may quote whole rows.
const MAX_TEXT: usize = 500;
const MAX_TAG: usize = 64;

/// `text` cut to `max` characters.
fn capped(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// A response with a 5xx status, and why.
pub fn report_server_error(tags: &RequestTags, status: u16, cause: &str) {
    if sentry::Hub::current().client().is_none() {
        return;
    }
    let cause = capped(cause, MAX_TEXT);
    let cause = cause.as_str();
    let mut event = event_for(Some(tags), format!("{} {} answered {status}", tags.method, tags.route));
    event.tags.insert("status".to_owned(), status.to_string());
    event.exception = Values::from(vec![Exception {
        ty: "ServerError".to_owned(),
        value: Some(cause.to_owned()),
        ..Exception::default()
    }]);
    sentry::capture_event(event);
}

fn event_for(tags: Option<&RequestTags>, message: String) -> Event<'static> {
    let mut all = BTreeMap::new();
    if let Some(tags) = tags {
        // The client may choose its request id: cut, and of a safe alphabet.
        let request_id: String = tags
            .request_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-_.:".contains(*c))
            .take(MAX_TAG)
            .collect();
        all.insert("request_id".to_owned(), request_id);
        all.insert("route".to_owned(), tags.route.clone());
        all.insert("method".to_owned(), tags.method.clone());
    }
    Event {
        level: Level::Error,
        message: Some(message),
        tags: all,
        ..Event::default()
    }
}

/// Reports every panic (then runs the hook that was there): one inside a
/// request carries that request's tags and status 500, the status the
/// server answers it with.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let tags = REQUEST.try_with(Clone::clone).ok();
        let mut event = event_for(tags.as_ref(), format!("panic at {location}"));
        if tags.is_some() {
            event.tags.insert("status".to_owned(), "500".to_owned());
        }
        event.level = Level::Fatal;
        event.exception = Values::from(vec![Exception {
            ty: "panic".to_owned(),
            value: Some(payload),
            ..Exception::default()
        }]);
        sentry::capture_event(event);
        previous(info);
    }));
}

/// The event without anything personal.
fn scrubbed(mut event: Event<'static>) -> Event<'static> {
    event.user = None;
    event.request = None;
    event.message = event.message.map(|m| without_emails(&m));
    for exception in &mut event.exception.values {
        exception.value = exception.value.as_deref().map(|v| capped(&without_emails(v), MAX_TEXT));
    }
    event.breadcrumbs = Values::new();
    event.extra.clear();
    event
}

/// `text` with every word shaped like an email address replaced.
pub fn without_emails(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let boundary = |c: char| c.is_whitespace() || "\"'()<>,;=[]{}".contains(c);
    let flush = |word: &mut String, out: &mut String| {
        let looks_like_email = word
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        out.push_str(if looks_like_email { "[email]" } else { word });
        word.clear();
    };
    for c in text.chars() {
        if boundary(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_replaced_and_the_rest_kept() {
        assert_eq!(
            without_emails("Key (email)=(fan@example.com) already exists; see a@b"),
            "Key (email)=([email]) already exists; see a@b"
        );
        assert_eq!(without_emails("<x.y+z@mail.example.org>"), "<[email]>");
    }

    #[test]
    fn a_scrubbed_event_has_no_user_request_or_extra() {
        let event = Event {
            user: Some(sentry::User {
                email: Some("fan@example.com".to_owned()),
                ..sentry::User::default()
            }),
            message: Some("for fan@example.com".to_owned()),
            ..Event::default()
        };
        let event = scrubbed(event);
        assert!(event.user.is_none());
        assert_eq!(event.message.as_deref(), Some("for [email]"));
    }
}

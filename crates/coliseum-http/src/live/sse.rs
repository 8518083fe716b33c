//! `GET /v1/live/sse`: one topic's updates as Server-Sent Events, for
//! clients and proxies without WebSocket. Each update is `event: update`,
//! `id:` its watermark and `data:` the body; `Last-Event-ID` resumes as a
//! `since` does. A topic the caller may no longer have ends the stream
//! with `event: error` and its problem document.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::watch;

use super::OpenConnection;
use super::hub::{Feed, Update};
use super::stopped;
use super::topic::{self, TopicKey, TopicSpec};
use crate::app::AppState;
use crate::audit::RequestId;
use crate::problem::AppError;
use crate::routes::access::{self, Caller};
use crate::sessions::SESSION_CACHE_TTL;

/// Follows `spec` for `caller`: its state now (unless not newer than
/// `last_event_id`), then its updates until the client goes, the server
/// stops, or the caller may no longer have the topic.
pub async fn stream(
    state: AppState,
    caller: Caller,
    credentials: HeaderMap,
    request_id: RequestId,
    spec: TopicSpec,
    last_event_id: Option<i64>,
    open: OpenConnection,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let key = spec.check(&state, &caller)?;
    let feed = state.live.hub.follow(&state, &key)?;
    let body = topic::current(&state, &caller, &request_id, &key).await?;
    let watermark = body.watermark.unwrap_or(0);
    let first = last_event_id
        .is_none_or(|since| watermark > since)
        .then(|| Update::new(watermark, &body.json));
    let mut rechecks = tokio::time::interval(super::RECHECK_EVERY);
    // Once soon after the start too: a change made since the request was
    // identified is not missed.
    rechecks.reset_after(SESSION_CACHE_TTL);
    let follower = Follower {
        caller,
        rechecks,
        sessions: state.sessions.changes(),
        api_keys: state.api_keys.changes(),
        stopping: state.live.stopping(),
        state,
        credentials,
        spec,
        key,
        feed,
        sent: first
            .as_ref()
            .map_or(last_event_id.unwrap_or(watermark), |u| u.watermark),
        sent_at: Instant::now(),
        first,
        ended: false,
        _open: open,
    };
    let events = futures_util::stream::unfold(follower, |mut follower| async move {
        let event = follower.next().await?;
        Some((Ok(event), follower))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

struct Follower {
    state: AppState,
    caller: Caller,
    /// The request's credentials, to identify the caller again.
    credentials: HeaderMap,
    rechecks: tokio::time::Interval,
    spec: TopicSpec,
    key: TopicKey,
    feed: Feed,
    sent: i64,
    sent_at: Instant,
    first: Option<Update>,
    ended: bool,
    sessions: watch::Receiver<u64>,
    api_keys: watch::Receiver<u64>,
    stopping: watch::Receiver<bool>,
    _open: OpenConnection,
}

impl Follower {
    /// The next event, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        if let Some(first) = self.first.take() {
            return Some(update_event(&first));
        }
        loop {
            tokio::select! {
                biased;
                () = stopped(&mut self.stopping) => return None,
                _ = self.sessions.changed() => self.rechecks.reset_after(SESSION_CACHE_TTL),
                _ = self.api_keys.changed() => self.rechecks.reset_after(SESSION_CACHE_TTL),
                _ = self.rechecks.tick() => {}
                changed = self.feed.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    // The plan's cadence, kept where the client sees it; the newest state by then.
                    let due = self.sent_at + self.key.cadence();
                    tokio::select! {
                        () = tokio::time::sleep_until(due.into()) => {}
                        () = stopped(&mut self.stopping) => return None,
                    }
                    let update: Option<Arc<Update>> = self.feed.borrow_and_update().clone();
                    match update {
                        Some(update) if update.watermark > self.sent || !self.key.follows_the_log() => {
                            self.sent = update.watermark;
                            self.sent_at = Instant::now();
                            return Some(update_event(&update));
                        }
                        _ => continue,
                    }
                }
            }
            // What the caller may see changed: the topic checked again.
            self.caller = access::identify_again(&self.state, &self.credentials, &self.caller).await;
            let followed = match self.spec.check(&self.state, &self.caller) {
                Ok(key) if key == self.key => continue,
                Ok(key) => self.state.live.hub.follow(&self.state, &key).map(|feed| (feed, key)),
                Err(error) => Err(error),
            };
            match followed {
                Ok((feed, key)) => {
                    self.feed = feed;
                    self.feed.mark_changed();
                    self.key = key;
                    self.sent = i64::MIN;
                }
                Err(error) => {
                    self.ended = true;
                    let problem = serde_json::to_string(&error.problem()).unwrap_or_default();
                    return Some(Event::default().event("error").data(problem));
                }
            }
        }
    }
}

fn update_event(update: &Update) -> Event {
    Event::default()
        .event("update")
        .id(update.watermark.to_string())
        .data(String::from_utf8_lossy(&update.body))
}

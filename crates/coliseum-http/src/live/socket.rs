//! One WebSocket of `GET /v1/live` (API.md): the client's `subscribe` and
//! `unsubscribe` frames, the topics' updates, heartbeats, and the checks
//! that the caller may still have every topic it follows.
//!
//! Close codes: 1000 when the client closes, 1001 when the server shuts
//! down, 4408 when the client read nothing (no frame, no pong) for
//! [`SILENCE_LIMIT`](super::SILENCE_LIMIT).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use axum::http::HeaderMap;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt as _;
use serde_json::{Value, json};
use tokio_stream::StreamExt as _;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::WatchStream;

use super::hub::Update;
use super::stopped;
use super::topic::{self, TopicKey, TopicSpec};
use super::{MAX_SUBSCRIPTIONS, OpenConnection, PING_EVERY, RECHECK_EVERY, SILENCE_LIMIT};
use crate::app::AppState;
use crate::audit::RequestId;
use crate::problem::AppError;
use crate::routes::access::{self, Caller};
use crate::sessions::SESSION_CACHE_TTL;

/// The close code of a client that read nothing for too long.
pub const CLOSE_SILENT: u16 = 4408;
/// The longest a subscription id may be.
const MAX_ID_CHARS: usize = 64;

/// One subscription of the connection.
struct Subscription {
    spec: TopicSpec,
    key: TopicKey,
    /// The watermark of the last state sent, and when it was sent.
    sent: i64,
    sent_at: Instant,
    /// A newer state that came before the plan's cadence allowed another
    /// update: sent when it does (the newest by then).
    held: Option<Arc<Update>>,
}

impl Subscription {
    /// When the held state may be sent.
    fn due(&self) -> Option<Instant> {
        self.held.as_ref().map(|_| self.sent_at + self.key.cadence())
    }
}

struct Connection {
    socket: WebSocket,
    state: AppState,
    caller: Caller,
    /// The upgrade request's credentials, to identify the caller again.
    credentials: HeaderMap,
    /// The peer, whose subscriptions count against its allowance.
    ip: Option<IpAddr>,
    request_id: RequestId,
    subscriptions: HashMap<String, Subscription>,
    feeds: StreamMap<String, WatchStream<Option<Arc<Update>>>>,
    last_heard: Instant,
}

/// Why a connection ends.
enum End {
    /// The client closed or went away: nothing more to send.
    Gone,
    /// The server closes with this code and reason.
    Close(u16, &'static str),
}

/// Serves one upgraded connection until either side ends it.
pub async fn serve(
    socket: WebSocket,
    state: AppState,
    caller: Caller,
    credentials: HeaderMap,
    ip: Option<IpAddr>,
    request_id: RequestId,
    _open: OpenConnection,
) {
    let mut connection = Connection {
        socket,
        state,
        caller,
        credentials,
        ip,
        request_id,
        subscriptions: HashMap::new(),
        feeds: StreamMap::new(),
        last_heard: Instant::now(),
    };
    let end = connection.run().await;
    if let End::Close(code, reason) = end {
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }));
        // A client that reads nothing may not take the close frame either.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), connection.socket.send(close)).await;
    }
}

impl Connection {
    async fn run(&mut self) -> End {
        let mut stopping = self.state.live.stopping();
        let mut sessions = self.state.sessions.changes();
        let mut api_keys = self.state.api_keys.changes();
        let mut pings = tokio::time::interval(PING_EVERY);
        let mut rechecks = tokio::time::interval(RECHECK_EVERY);
        // Once soon after the start too: a change made between the
        // handshake and the watches above is not missed.
        rechecks.reset_after(SESSION_CACHE_TTL);
        loop {
            let due = self.next_due();
            let outcome = tokio::select! {
                biased;
                () = stopped(&mut stopping) => return End::Close(1001, "the server is shutting down"),
                // Boxed, as an operation is in `received`: rare, and not worth room in every task.
                _ = sessions.changed() => {
                    // Again once a node's credential cache has surely let go of the old state.
                    rechecks.reset_after(SESSION_CACHE_TTL);
                    Box::pin(self.recheck()).await
                }
                _ = api_keys.changed() => {
                    rechecks.reset_after(SESSION_CACHE_TTL);
                    Box::pin(self.recheck()).await
                }
                _ = rechecks.tick() => Box::pin(self.recheck()).await,
                frame = self.socket.recv() => match frame {
                    Some(Ok(frame)) => {
                        self.last_heard = Instant::now();
                        self.received(frame).await
                    }
                    _ => return End::Gone,
                },
                Some((id, update)) = self.feeds.next() => self.updated(&id, update).await,
                () = until(due) => self.send_due().await,
                _ = pings.tick() => {
                    if self.last_heard.elapsed() > SILENCE_LIMIT {
                        return End::Close(CLOSE_SILENT, "nothing was read for 30 s");
                    }
                    self.send(Message::Ping(Bytes::new())).await
                }
            };
            if let Err(end) = outcome {
                return end;
            }
        }
    }

    /// Sends `message`, within the silence limit: a client that does not
    /// read holds the write, and is closed.
    async fn send(&mut self, message: Message) -> Result<(), End> {
        match tokio::time::timeout(SILENCE_LIMIT, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::Close(CLOSE_SILENT, "nothing was read for 30 s")),
        }
    }

    async fn send_json(&mut self, frame: &Value) -> Result<(), End> {
        self.send(Message::Text(Utf8Bytes::from(frame.to_string()))).await
    }

    async fn send_error(&mut self, id: Option<&str>, error: &AppError) -> Result<(), End> {
        if let AppError::Internal(cause) = error {
            tracing::error!(error = %cause, "a live subscription failed");
        }
        let frame = json!({"op": "error", "id": id, "problem": error.problem()});
        self.send_json(&frame).await
    }

    /// Sends `id` the state `body` at `watermark`.
    async fn send_update(&mut self, id: &str, frame_tail: &[u8]) -> Result<(), End> {
        let id = Value::from(id).to_string();
        let mut frame = BytesMut::with_capacity(20 + id.len() + frame_tail.len());
        frame.put_slice(b"{\"op\":\"update\",\"id\":");
        frame.put_slice(id.as_bytes());
        frame.put_slice(frame_tail);
        // Invariant: JSON built from UTF-8 parts.
        let text = Utf8Bytes::try_from(frame.freeze()).map_err(|_| End::Close(1011, "an update was not UTF-8"))?;
        metrics::counter!("coliseum_live_frames_sent_total").increment(1);
        self.send(Message::Text(text)).await
    }

    async fn received(&mut self, frame: Message) -> Result<(), End> {
        match frame {
            Message::Text(text) => match serde_json::from_str::<Value>(text.as_str()) {
                // Boxed: building a subscription's first state takes about
                // 15 KiB of future, which the connection's task would
                // otherwise hold for its whole life (pongs stay unboxed).
                Ok(frame) => Box::pin(self.operation(&frame)).await,
                Err(error) => {
                    let error = AppError::Malformed {
                        detail: format!("a frame must be a JSON object: {error}"),
                        errors: Vec::new(),
                    };
                    self.send_error(None, &error).await
                }
            },
            Message::Binary(_) => {
                let error = AppError::UnsupportedMediaType("frames are JSON text, not binary".to_owned());
                self.send_error(None, &error).await
            }
            // Pings are answered by the library; pongs only say the client reads.
            Message::Ping(_) | Message::Pong(_) => Ok(()),
            Message::Close(_) => {
                // The library queued the answering close frame: sent before the socket goes.
                let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.flush()).await;
                Err(End::Gone)
            }
        }
    }

    async fn operation(&mut self, frame: &Value) -> Result<(), End> {
        // Echoed in an error as far as an id may go.
        let id = frame
            .get("id")
            .and_then(Value::as_str)
            .map(|id| id.chars().take(MAX_ID_CHARS).collect::<String>());
        let outcome = match frame.get("op").and_then(Value::as_str) {
            Some("subscribe") => self.subscribe(frame).await,
            Some("unsubscribe") => self.unsubscribe(frame).await,
            Some(other) => Err(AppError::parameter(
                "op",
                format!("`{other}` is not an operation (subscribe, unsubscribe)"),
            )),
            None => Err(AppError::parameter("op", "is required: subscribe or unsubscribe")),
        };
        match outcome {
            Ok(reply) => reply,
            Err(error) => self.send_error(id.as_deref(), &error).await,
        }
    }

    /// A `subscribe`: the topic checked as its REST read, its state sent at
    /// once (unless not newer than `since`), then its updates.
    async fn subscribe(&mut self, frame: &Value) -> Result<Result<(), End>, AppError> {
        let id = subscription_id(frame)?;
        if self.subscriptions.contains_key(&id) {
            return Err(AppError::Conflict(format!(
                "a subscription `{id}` is already open on this connection"
            )));
        }
        if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return Err(AppError::LimitReached(format!(
                "a connection holds at most {MAX_SUBSCRIPTIONS} subscriptions; unsubscribe one first"
            )));
        }
        let since = match frame.get("since") {
            None | Some(Value::Null) => None,
            Some(since) => Some(
                since
                    .as_i64()
                    .ok_or_else(|| AppError::parameter("since", "must be a watermark (an integer)"))?,
            ),
        };
        let spec = TopicSpec::from_json(frame.get("topic").unwrap_or(&Value::Null))?;
        let key = spec.check(&self.state, &self.caller)?;
        // Its state is a read like any other, and counts as one.
        access::charge(&self.state, &self.caller, self.ip).await?;
        // Followed before the state is read: a change after that read is
        // an update, so none falls between the two.
        let feed = self.state.live.hub.follow(&self.state, &key)?;
        let body = topic::current(&self.state, &self.caller, &self.request_id, &key).await?;
        let watermark = body.watermark.unwrap_or(0);
        self.feeds.insert(id.clone(), WatchStream::from_changes(feed));
        let newer = since.is_none_or(|since| watermark > since);
        self.subscriptions.insert(
            id.clone(),
            Subscription {
                spec,
                key,
                sent: if newer { watermark } else { since.unwrap_or(watermark) },
                sent_at: Instant::now(),
                held: None,
            },
        );
        if !newer {
            return Ok(Ok(()));
        }
        let update = Update::new(watermark, &body.json);
        Ok(self.send_update(&id, &update.frame_tail).await)
    }

    async fn unsubscribe(&mut self, frame: &Value) -> Result<Result<(), End>, AppError> {
        let id = subscription_id(frame)?;
        if self.subscriptions.remove(&id).is_none() {
            return Err(AppError::NotFound(format!(
                "no subscription `{id}` is open on this connection"
            )));
        }
        self.feeds.remove(&id);
        Ok(self.send_json(&json!({"op": "unsubscribed", "id": id})).await)
    }

    /// A topic's new state: sent if newer than what `id` was sent.
    /// The cadence is kept per subscription, where the client sees it: a
    /// topic publishes at most once per cadence, but a send queued behind
    /// others may reach one subscriber late and the next on time.
    async fn updated(&mut self, id: &str, update: Option<Arc<Update>>) -> Result<(), End> {
        let (Some(update), Some(subscription)) = (update, self.subscriptions.get_mut(id)) else {
            return Ok(());
        };
        if update.watermark <= subscription.sent && subscription.key.follows_the_log() {
            return Ok(());
        }
        if subscription.sent_at.elapsed() < subscription.key.cadence() {
            subscription.held = Some(update);
            return Ok(());
        }
        subscription.held = None;
        subscription.sent = update.watermark;
        subscription.sent_at = Instant::now();
        self.send_update(id, &update.frame_tail).await
    }

    fn next_due(&self) -> Option<Instant> {
        self.subscriptions.values().filter_map(Subscription::due).min()
    }

    /// Sends every held state whose cadence now allows it.
    async fn send_due(&mut self) -> Result<(), End> {
        let now = Instant::now();
        let due: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| s.due().is_some_and(|at| at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let Some(subscription) = self.subscriptions.get_mut(&id) else {
                continue;
            };
            let Some(update) = subscription.held.take() else {
                continue;
            };
            subscription.sent = update.watermark;
            subscription.sent_at = Instant::now();
            self.send_update(&id, &update.frame_tail).await?;
        }
        Ok(())
    }

    /// The caller identified again (a session ended, a plan or key
    /// changed) and every subscription checked again: what is no longer
    /// allowed ends with an `error`; what is now served to another audience
    /// moves to that audience's topic, its state sent at once.
    async fn recheck(&mut self) -> Result<(), End> {
        self.caller = access::identify_again(&self.state, &self.credentials, &self.caller).await;
        let ids: Vec<String> = self.subscriptions.keys().cloned().collect();
        for id in ids {
            let Some(subscription) = self.subscriptions.get(&id) else {
                continue;
            };
            match subscription.spec.check(&self.state, &self.caller) {
                Ok(key) if key == subscription.key => {}
                Ok(key) => match self.state.live.hub.follow(&self.state, &key) {
                    Ok(feed) => {
                        self.feeds.insert(id.clone(), WatchStream::new(feed));
                        if let Some(subscription) = self.subscriptions.get_mut(&id) {
                            subscription.key = key;
                            // The new audience's state is sent whatever its watermark, as soon as the cadence allows.
                            subscription.sent = i64::MIN;
                        }
                    }
                    Err(error) => {
                        self.subscriptions.remove(&id);
                        self.feeds.remove(&id);
                        self.send_error(Some(&id), &error).await?;
                    }
                },
                Err(error) => {
                    self.subscriptions.remove(&id);
                    self.feeds.remove(&id);
                    self.send_error(Some(&id), &error).await?;
                }
            }
        }
        Ok(())
    }
}

/// Resolves at `at`; never without one.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn subscription_id(frame: &Value) -> Result<String, AppError> {
    match frame.get("id") {
        Some(Value::String(id)) if !id.is_empty() && id.chars().count() <= MAX_ID_CHARS => Ok(id.clone()),
        Some(Value::String(_)) => Err(AppError::parameter(
            "id",
            format!("must be 1 to {MAX_ID_CHARS} characters"),
        )),
        _ => Err(AppError::parameter(
            "id",
            "is required: a string naming the subscription",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `serve` returns, without making one.
    fn serve_future_size<A, B, C, D, E, G, H, F: std::future::Future>(
        _: impl FnOnce(A, B, C, D, E, G, H) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    /// Each open connection holds its task for as long as it lives: tens of
    /// thousands of them must not each keep room for building a read's body
    /// (about 15 KiB of state), which a `subscribe` needs for a moment.
    #[test]
    fn a_connection_task_keeps_no_room_for_building_a_body() {
        let size = serve_future_size(serve);
        assert!(size < 3 * 1024, "a connection's task holds {size} bytes");
    }
}

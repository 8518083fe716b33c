//! Live updates (API.md, "Live updates"): a client subscribes to a topic
//! (a board, an artist's neighbourhood, a DNA board, KPIs; for admins the
//! pipeline and the audit log) and is pushed the topic's newest state at
//! its plan's cadence, over a WebSocket (`GET /v1/live`) or Server-Sent
//! Events (`GET /v1/live/sse`).
//!
//! - [`topic`]: a topic as a client names it, checked against the caller
//!   exactly as the REST read is, and its body (the REST read's own);
//! - [`hub`]: one driver per topic followed on this node, which builds the
//!   topic's state once per change, whatever the number of subscribers;
//! - [`socket`] and [`sse`]: the two ways a subscriber is sent updates.
//!
//! State, not messages: a subscriber holds a `watch` of its topic's newest
//! update, so one that is slow to read is sent the latest state when it can
//! take it, never a backlog.

pub mod hub;
pub mod socket;
pub mod sse;
pub mod topic;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::problem::AppError;
use crate::routes::access::Caller;

/// Subscriptions one WebSocket may hold at once.
pub const MAX_SUBSCRIPTIONS: usize = 50;
/// A client that reads nothing (no frame, no pong) for this long is closed.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(30);
/// How often the server pings, so that a live client always has something to answer.
pub const PING_EVERY: Duration = Duration::from_secs(10);
/// How often a connection checks again that its caller may still have
/// every topic (a change made on this node is acted on at once).
pub const RECHECK_EVERY: Duration = Duration::from_secs(60);

/// Live connections (WebSocket and SSE) one account may hold open at once
/// on a node, by plan: a dashboard opens one per tab.
pub fn connections_allowed(caller: &Caller) -> usize {
    match caller.audience() {
        audience if audience.admin => 200,
        audience => match audience.plan {
            coliseum_domain::plans::Plan::Enterprise => 200,
            _ => 20,
        },
    }
}

/// The live push of a node: its topics, the connections open per account,
/// and the signal that it is shutting down.
#[derive(Debug)]
pub struct Live {
    pub hub: hub::Hub,
    open: Mutex<HashMap<i64, usize>>,
    stopping: watch::Sender<bool>,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            hub: hub::Hub::default(),
            open: Mutex::default(),
            stopping: watch::channel(false).0,
        }
    }
}

impl Live {
    /// Resolves once the node starts shutting down: connections close
    /// cleanly (WebSocket close 1001) before the server drains.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// A place for one more live connection of `caller`'s account, held
    /// until the returned guard drops; `429` past the plan's bound.
    pub fn open(self: &Arc<Self>, caller: &Caller) -> Result<OpenConnection, AppError> {
        let user = caller.user()?.id;
        let allowed = connections_allowed(caller);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(user).or_default();
        if *count >= allowed {
            return Err(AppError::LimitReached(format!(
                "this account already has {allowed} live connections open, the most its plan allows at once; close one first"
            )));
        }
        *count += 1;
        metrics::gauge!("coliseum_live_connections").increment(1.0);
        Ok(OpenConnection {
            live: self.clone(),
            user,
        })
    }
}

/// Resolves once `stopping` says the node is shutting down.
pub async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here: it must not be held
    // across the awaits of whoever selects on this.
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// One open live connection, counted against its account until dropped.
#[derive(Debug)]
pub struct OpenConnection {
    live: Arc<Live>,
    user: i64,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let mut open = self.live.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
        metrics::gauge!("coliseum_live_connections").decrement(1.0);
    }
}

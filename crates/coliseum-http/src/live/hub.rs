//! The topics followed on this node. Each has one driver task while anyone
//! follows it: every [`CHECK_EVERY`] it looks whether the data its body is
//! made from changed (cheaply: the log position and the DNA publication,
//! or for a plan served behind live, its freshness boundary), and if so,
//! once the topic's cadence allows, builds the body once and publishes it
//! to every follower as one [`Update`]. A topic nobody follows any more
//! stops on its next check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::watch;

use super::stopped;
use super::topic::{self, Topic, TopicKey};
use crate::app::AppState;
use crate::problem::AppError;
use crate::views::shared::Read;

/// How often a topic looks whether its data changed.
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// Topics one node follows at most: each is a task that builds a body at
/// its cadence while its data changes.
pub const MAX_TOPICS: usize = 20_000;
/// The longest a topic waits before trying again a body that failed.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// A topic's state as pushed: its watermark and body, and the part of an
/// update frame that is the same for every subscriber.
#[derive(Debug)]
pub struct Update {
    pub watermark: i64,
    pub body: Bytes,
    /// `,"watermark":W,"data":BODY}`: a WebSocket update frame is
    /// `{"op":"update","id":ID` followed by this.
    pub frame_tail: Bytes,
}

impl Update {
    pub fn new(watermark: i64, body: &[u8]) -> Self {
        let head = format!(",\"watermark\":{watermark},\"data\":");
        let mut tail = BytesMut::with_capacity(head.len() + body.len() + 1);
        tail.put_slice(head.as_bytes());
        tail.put_slice(body);
        tail.put_u8(b'}');
        let frame_tail = tail.freeze();
        Self {
            watermark,
            // The same bytes, not a copy.
            body: frame_tail.slice(head.len()..frame_tail.len() - 1),
            frame_tail,
        }
    }
}

/// A topic's newest update (`None` until the first is built).
pub type Feed = watch::Receiver<Option<Arc<Update>>>;

#[derive(Debug, Default)]
pub struct Hub {
    topics: Mutex<HashMap<TopicKey, watch::Sender<Option<Arc<Update>>>>>,
}

impl Hub {
    /// The feed of `key`, its driver started if nobody followed it yet;
    /// `429` when the node follows as many topics as it may.
    pub fn follow(&self, state: &AppState, key: &TopicKey) -> Result<Feed, AppError> {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = topics.get(key) {
            return Ok(sender.subscribe());
        }
        if topics.len() >= MAX_TOPICS {
            return Err(AppError::LimitReached(format!(
                "this node follows {MAX_TOPICS} topics, the most it may; follow a topic others follow, or retry later"
            )));
        }
        let (sender, feed) = watch::channel(None);
        topics.insert(key.clone(), sender.clone());
        metrics::gauge!("coliseum_live_topics").set(topics.len() as f64);
        let driver = Driver {
            state: state.clone(),
            key: key.clone(),
            sender,
        };
        tokio::spawn(driver.run());
        Ok(feed)
    }

    /// Forgets `key` if nobody follows it: under the lock `follow` takes,
    /// so a follower arriving now gets a new driver rather than a dead one.
    fn forget_if_unfollowed(&self, key: &TopicKey, sender: &watch::Sender<Option<Arc<Update>>>) -> bool {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        if sender.receiver_count() > 0 {
            return false;
        }
        topics.remove(key);
        metrics::gauge!("coliseum_live_topics").set(topics.len() as f64);
        true
    }

    /// Forgets `key` whoever follows it, if `sender` is still its driver's:
    /// a driver that ends any other way (a panic) takes its topic along,
    /// and its followers see their feed close.
    fn forget(&self, key: &TopicKey, sender: &watch::Sender<Option<Arc<Update>>>) {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        if topics.get(key).is_some_and(|held| held.same_channel(sender)) {
            topics.remove(key);
            metrics::gauge!("coliseum_live_topics").set(topics.len() as f64);
        }
    }

    /// Topics followed now.
    pub fn len(&self) -> usize {
        self.topics.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a topic's body is made from, as cheap to read as a counter: while
/// it is unchanged, so is the body (`as_of` moving on while no entry
/// arrives is no update).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The live figures: the log position they include.
    Log(i64),
    /// The DNA scores: their publication.
    Publication(u64),
    /// A plan served as of its last freshness boundary: the boundary.
    Boundary(i64),
    /// The admin topics' figures, which move with time: always look.
    Now,
}

fn source(state: &AppState, key: &TopicKey) -> Source {
    match &key.topic {
        Topic::Pipeline | Topic::Audit(_) => Source::Now,
        _ if key.audience.freshness_s() > 0 => Source::Boundary(coliseum_engine::served::boundary(
            state.clock.now(),
            key.audience.freshness_s(),
        )),
        Topic::Read(Read::DnaBoard(_)) => Source::Publication(state.dna.current().id),
        Topic::Read(_) => Source::Log(state.reads.watermark().seq),
    }
}

/// A topic's driver: the task that builds its state while anyone follows it.
struct Driver {
    state: AppState,
    key: TopicKey,
    sender: watch::Sender<Option<Arc<Update>>>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.state.live.hub.forget(&self.key, &self.sender);
    }
}

impl Driver {
    async fn run(self) {
        let Self { state, key, sender } = &self;
        let cadence = key.cadence();
        // A body may be made from a ranking kept up to this long: a change
        // not in it yet is looked for again until then.
        let catch_up = state.settings.ranking_max_age * 2;
        let mut stopping = state.live.stopping();
        let mut ticks = tokio::time::interval(CHECK_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut seen: Option<Source> = None;
        let mut changed_at: Option<(Source, Instant)> = None;
        // When the state was last built (the admin topics' cadence) and
        // last published (the plans' cadence).
        let mut built: Option<Instant> = None;
        let mut published: Option<Instant> = None;
        let mut failures = 0_u32;
        let mut retry_at: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = stopped(&mut stopping) => return,
            }
            if sender.receiver_count() == 0 && state.live.hub.forget_if_unfollowed(key, sender) {
                return;
            }
            let last = if key.follows_the_log() { published } else { built };
            if last.is_some_and(|at| at.elapsed() < cadence) || retry_at.is_some_and(|at| Instant::now() < at) {
                continue;
            }
            let now = source(state, key);
            if now != Source::Now && seen == Some(now) {
                continue;
            }
            let first_seen = match changed_at {
                Some((source, at)) if source == now => at,
                _ => {
                    changed_at = Some((now, Instant::now()));
                    Instant::now()
                }
            };
            built = Some(Instant::now());
            // Boxed: building a body takes about 15 KiB of future, which
            // each of a node's thousands of topic tasks would otherwise keep.
            let body = match Box::pin(topic::after(state, key, first_seen)).await {
                Ok(body) => {
                    failures = 0;
                    retry_at = None;
                    body
                }
                Err(error) => {
                    // The subscribers keep the last state; tried again later, less often each time.
                    failures = failures.saturating_add(1);
                    let wait = (CHECK_EVERY * 2_u32.saturating_pow(failures.min(8))).min(MAX_RETRY_WAIT);
                    retry_at = Some(Instant::now() + wait);
                    tracing::debug!(error = %error, topic = ?key.topic, "a live topic's state was not built");
                    continue;
                }
            };
            let watermark = body.watermark.unwrap_or(0);
            let reached = match now {
                Source::Log(seq) => watermark >= seq,
                _ => true,
            };
            if reached || first_seen.elapsed() > catch_up {
                seen = Some(now);
            }
            let newer = match sender.borrow().as_ref() {
                None => true,
                Some(last) if key.follows_the_log() => watermark > last.watermark,
                Some(last) => body.json != last.body,
            };
            if newer {
                sender.send_replace(Some(Arc::new(Update::new(watermark, &body.json))));
                published = Some(Instant::now());
                metrics::counter!("coliseum_live_updates_built_total").increment(1);
            }
        }
    }
}

//! A live topic: named by a client as a `kind` and the parameters of the
//! REST read it follows, checked against the caller by that read's own
//! `*Request::read` (plan, links, filters), and served that read's body.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use coliseum_domain::plans::{Feature, Role};
use serde_json::Value;

use crate::app::AppState;
use crate::audit::RequestId;
use crate::params::Params;
use crate::problem::AppError;
use crate::routes::access::{Audience, Caller};
use crate::views::audit::{self, AuditRequest};
use crate::views::boards::{AroundRequest, PageRequest};
use crate::views::dna::DnaBoardRequest;
use crate::views::kpis::KpisRequest;
use crate::views::pipeline;
use crate::views::shared::{self, Body, Read};

/// The kinds of topic (API.md).
pub const KINDS: &[&str] = &["leaderboard", "around", "dna_leaderboard", "kpis", "pipeline", "audit"];

/// The admin topics' cadence: the pipeline's figures move all the time,
/// and the panel shows a change within a second (a reading is three
/// cheap queries).
const ADMIN_CADENCE: Duration = Duration::from_millis(500);

/// Parameters of the REST reads that make no sense for a state that moves:
/// a page past the first, or a past instant.
const NOT_LIVE: &[&str] = &["cursor", "as_of"];

/// A topic as a client named it, kept so that it can be checked again when
/// what the caller may see changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    kind: String,
    params: HashMap<String, String>,
}

/// What a topic follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    Read(Read),
    Pipeline,
    Audit(AuditRequest),
}

/// A topic as one audience is served it: its subscribers share one driver
/// and one body per update.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicKey {
    pub topic: Topic,
    pub audience: Audience,
}

impl TopicSpec {
    /// A topic object of a `subscribe` frame: `kind` and the read's
    /// parameters, each a string, a number or a boolean.
    pub fn from_json(topic: &Value) -> Result<Self, AppError> {
        let Some(fields) = topic.as_object() else {
            return Err(AppError::parameter(
                "topic",
                "must be an object with a `kind` and the read's parameters",
            ));
        };
        let mut params = HashMap::with_capacity(fields.len());
        for (name, value) in fields {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                _ => return Err(AppError::parameter(name, "must be a string, a number or a boolean")),
            };
            params.insert(name.clone(), text);
        }
        Self::from_params(params)
    }

    /// A topic named by query parameters (`GET /v1/live/sse?kind=…`).
    pub fn from_params(mut params: HashMap<String, String>) -> Result<Self, AppError> {
        let kind = params
            .remove("kind")
            .ok_or_else(|| AppError::parameter("kind", format!("is required (one of {})", KINDS.join(", "))))?;
        if !KINDS.contains(&kind.as_str()) {
            return Err(AppError::parameter(
                "kind",
                format!("`{kind}` is not a topic (one of {})", KINDS.join(", ")),
            ));
        }
        Ok(Self { kind, params })
    }

    /// The topic `caller` may follow, checked as its REST read is; `403`
    /// `upgrade-required` below the plans with live push.
    pub fn check(&self, state: &AppState, caller: &Caller) -> Result<TopicKey, AppError> {
        caller.may(Feature::LivePush)?;
        let mut params = Params::from(self.params.clone());
        for name in NOT_LIVE {
            if params.get(name).is_some() {
                return Err(AppError::parameter(
                    name,
                    "is not a parameter of a live topic: an update is the topic's current state, from its first rank",
                ));
            }
        }
        let kind = self.kind.as_str();
        let mut path = |name: &str| {
            params
                .take(name)
                .ok_or_else(|| AppError::parameter(name, format!("is required for a `{kind}` topic")))
        };
        let topic = match kind {
            "leaderboard" => {
                let metric = path("metric")?;
                Topic::Read(Read::Board(PageRequest::read(state, caller, &metric, &params)?))
            }
            "around" => {
                let (metric, artist) = (path("metric")?, path("artist_id")?);
                Topic::Read(Read::Around(AroundRequest::read(
                    state, caller, &metric, &artist, &params,
                )?))
            }
            "dna_leaderboard" => {
                let domain = path("domain")?;
                Topic::Read(Read::DnaBoard(DnaBoardRequest::read(caller, &domain, &params)?))
            }
            "kpis" => Topic::Read(Read::Kpis(KpisRequest::read(state, caller, &params)?)),
            "pipeline" => {
                admin(caller)?;
                params.only(&[])?;
                Topic::Pipeline
            }
            _ => {
                admin(caller)?;
                Topic::Audit(AuditRequest::read(&params)?)
            }
        };
        Ok(TopicKey {
            topic,
            audience: caller.audience(),
        })
    }
}

fn admin(caller: &Caller) -> Result<(), AppError> {
    if caller.user()?.role == Role::Admin {
        Ok(())
    } else {
        Err(AppError::Forbidden("this topic needs the admin role".to_owned()))
    }
}

impl TopicKey {
    /// The least time between two updates: the plan's (Pro 60 s,
    /// Enterprise 250 ms), one second for the admin topics.
    pub fn cadence(&self) -> Duration {
        match self.topic {
            Topic::Pipeline | Topic::Audit(_) => ADMIN_CADENCE,
            Topic::Read(_) => self.audience.live_cadence(),
        }
    }

    /// Whether an update is due to the topic's data changing (its watermark
    /// advances), not only its body (the admin topics' figures).
    pub fn follows_the_log(&self) -> bool {
        matches!(self.topic, Topic::Read(_))
    }
}

/// The topic's state now, as `caller` is served it: what the REST read
/// would answer (and audit) at this moment.
pub async fn current(
    state: &AppState,
    caller: &Caller,
    request_id: &RequestId,
    key: &TopicKey,
) -> Result<Body, AppError> {
    match &key.topic {
        Topic::Read(read) => shared::body(state, caller, request_id, read.clone()).await,
        _ => admin_body(state, &key.topic).await,
    }
}

/// The topic's state made from data read at `read_since` or later.
pub async fn after(state: &AppState, key: &TopicKey, read_since: Instant) -> Result<Body, AppError> {
    match &key.topic {
        Topic::Read(read) => shared::body_after(state, key.audience, read, read_since).await,
        _ => admin_body(state, &key.topic).await,
    }
}

/// The pipeline's health (its watermark the newest entry processed), or a
/// page of the audit log (its watermark the newest record's id), read now.
async fn admin_body(state: &AppState, topic: &Topic) -> Result<Body, AppError> {
    match topic {
        Topic::Audit(request) => {
            let page = audit::page(state, request).await?;
            Ok(Body {
                json: shared::json(&page)?,
                watermark: Some(page.newest_id()),
            })
        }
        _ => {
            let health = pipeline::pipeline(state).await?;
            Ok(Body {
                json: shared::json(&health)?,
                watermark: Some(health.processed_seq),
            })
        }
    }
}

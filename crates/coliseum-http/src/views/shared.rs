//! Read bodies built once and shared. Dashboards send the same few
//! thousand reads over and over: the body of a read (its JSON, ready to
//! send) is built once per audience and served to everyone of that
//! audience who makes the same read, for as long as a leaderboard may be
//! served (`--ranking-max-age-ms`); concurrent identical reads wait for the
//! one being built instead of building their own, or, when it is being
//! built again, take the one held for a short grace more (`engine::recent`). A body depends only on
//! the read and the audience (plan, and whether an admin: [`Audience`]); everything
//! that depends on the caller (may they make the read, is it audited) is
//! done per caller before the body is looked up.

use std::time::Duration;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use coliseum_engine::recent::Recent;
use serde::Serialize;

use super::boards::{self, AroundRequest, PageRequest};
use super::dna::{self, DnaBoardRequest, ExplanationRequest, MoversRequest};
use super::kpis::{self, KpisRequest};
use crate::app::AppState;
use crate::audit::RequestId;
use crate::problem::AppError;
use crate::routes::access::{Audience, Caller};

/// Bytes of bodies held at most; the least recently read make room. The
/// mixed benchmark's 5,200 reads weigh about 15 MB.
const BUDGET: usize = 64 << 20;

/// How long movers are served: within Enterprise's "live (< 30 s)".
const MOVERS_MAX_AGE: Duration = Duration::from_secs(25);
const MOVERS_BUDGET: usize = 4 << 20;

/// Every read whose body is shared, as asked and allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Read {
    Kpis(KpisRequest),
    Board(PageRequest),
    Around(AroundRequest),
    DnaBoard(DnaBoardRequest),
    Explanation(ExplanationRequest),
    Movers(MoversRequest),
}

pub struct SharedBodies {
    recent: Recent<(Read, Audience), Body>,
    /// Movers, kept longer: each is a week of score changes read from the
    /// store (seconds at 10M entries), and a week's gains do not move
    /// within the freshest plan's 30 s.
    movers: Recent<(Read, Audience), Body>,
}

impl std::fmt::Debug for SharedBodies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBodies").finish_non_exhaustive()
    }
}

impl SharedBodies {
    /// Bodies served for `max_age` from when they began to be built (zero:
    /// every read builds its own).
    pub fn new(max_age: Duration) -> Self {
        Self {
            recent: Recent::new(max_age, BUDGET),
            // Zero still means "every read builds its own".
            movers: Recent::new(
                if max_age.is_zero() {
                    max_age
                } else {
                    max_age.max(MOVERS_MAX_AGE)
                },
                MOVERS_BUDGET,
            ),
        }
    }

    fn cache_of(&self, read: &Read) -> &Recent<(Read, Audience), Body> {
        match read {
            Read::Movers(_) => &self.movers,
            _ => &self.recent,
        }
    }
}

/// A read's body as built once, and the watermark it states (`None` for
/// reads that state none: movers).
#[derive(Debug, Clone)]
pub struct Body {
    pub json: Bytes,
    pub watermark: Option<i64>,
}

/// A JSON body as built once: sent as it is.
#[derive(Debug, Clone)]
pub struct JsonBody(pub Bytes);

impl IntoResponse for JsonBody {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

/// The body of `read` as `caller` is served it, ready to send.
pub async fn serve(
    state: &AppState,
    caller: &Caller,
    request_id: &RequestId,
    read: Read,
) -> Result<JsonBody, AppError> {
    Ok(JsonBody(body(state, caller, request_id, read).await?.json))
}

/// The body of `read` as `caller` is served it. What is the caller's own
/// (an admin's read of another subject's KPIs is audited) happens first,
/// for every read; the body is then the audience's.
pub async fn body(state: &AppState, caller: &Caller, request_id: &RequestId, read: Read) -> Result<Body, AppError> {
    if let Read::Kpis(request) = &read {
        kpis::audit_tenant_read(state, caller, request_id, request).await?;
    }
    let key = (read, caller.audience());
    state
        .bodies
        .cache_of(&key.0)
        .get_or_compute(&key, weight, || build(state, key.1, &key.0))
        .await
}

/// The body of `read` for `audience` made from data read at `read_since`
/// or later: what a live topic pushes after it saw the data change. Whether
/// its subscribers may make the read was checked when they subscribed.
pub async fn body_after(
    state: &AppState,
    audience: Audience,
    read: &Read,
    read_since: std::time::Instant,
) -> Result<Body, AppError> {
    let key = (read.clone(), audience);
    state
        .bodies
        .cache_of(read)
        .get_or_compute_after(&key, read_since, weight, || build(state, audience, read))
        .await
}

fn weight(body: &Body) -> usize {
    body.json.len()
}

/// The body of `read` for `audience`, serialized.
async fn build(state: &AppState, audience: Audience, read: &Read) -> Result<Body, AppError> {
    match read {
        Read::Kpis(request) => {
            let body = kpis::kpis(state, audience, request).await?;
            stamped(&body, body.watermark)
        }
        Read::Board(request) => {
            let body = boards::page(state, audience, request).await?;
            stamped(&body, body.head.watermark)
        }
        Read::Around(request) => {
            let body = boards::around(state, audience, request).await?;
            stamped(&body, body.head.watermark)
        }
        Read::DnaBoard(request) => {
            let body = dna::board(state, audience, request).await?;
            stamped(&body, body.watermark)
        }
        Read::Explanation(request) => {
            let body = dna::explanation(state, audience, request).await?;
            stamped(&body, body.watermark)
        }
        Read::Movers(request) => Ok(Body {
            json: json(&dna::movers_of(state, audience, request).await?)?,
            watermark: None,
        }),
    }
}

fn stamped(body: &impl Serialize, watermark: i64) -> Result<Body, AppError> {
    Ok(Body {
        json: json(body)?,
        watermark: Some(watermark),
    })
}

pub fn json(body: &impl Serialize) -> Result<Bytes, AppError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|e| AppError::Internal(format!("a body did not serialize: {e}")))
}

//! `GET /v1/live` (WebSocket) and `GET /v1/live/sse` (Server-Sent Events):
//! the live updates of [`crate::live`]. Both check, before anything is
//! opened, that the plan includes live push and that the account has a
//! connection to spare; a browser session's WebSocket must also come from
//! the deployment's own pages (a handshake carries no CSRF token).

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use coliseum_domain::plans::Feature;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{self, Caller, Via};
use crate::app::AppState;
use crate::audit::RequestId;
use crate::live::topic::TopicSpec;
use crate::live::{socket, sse};
use crate::openapi::Problems;
use crate::params::Params;
use crate::problem::AppError;

/// The largest frame a client may send: a `subscribe` is a few hundred bytes.
const MAX_CLIENT_FRAME_BYTES: usize = 16 * 1024;
/// A connection's read buffer: frames from clients are small, and a node
/// holds tens of thousands of connections.
const READ_BUFFER_BYTES: usize = 4 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(websocket)).routes(routes!(events))
}

/// Live updates over a WebSocket: `subscribe` to topics, receive their
/// state at once and at the plan's cadence (API.md, "Live updates").
#[utoipa::path(
    get,
    path = "/v1/live",
    tag = "live",
    responses(
        (status = 101, description = "Switched to the WebSocket protocol"),
        Problems,
    ),
    security(("session" = []), ("bearer" = [])),
)]
async fn websocket(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    request_id: RequestId,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    caller.may(Feature::LivePush)?;
    check_origin(&state, &caller, &headers)?;
    let upgrade = upgrade.map_err(|rejection| AppError::Other {
        status: rejection.status(),
        detail: format!("this is a WebSocket endpoint: {rejection}"),
    })?;
    let open = state.live.open(&caller)?;
    let (credentials, ip) = (access::credentials_of(&headers), Some(peer.ip()));
    Ok(upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(MAX_CLIENT_FRAME_BYTES)
        .max_frame_size(MAX_CLIENT_FRAME_BYTES)
        .on_upgrade(move |websocket| socket::serve(websocket, state, caller, credentials, ip, request_id, open)))
}

/// The parameters of a topic: `kind`, then those of its REST read.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct LiveParams {
    /// `leaderboard`, `around`, `dna_leaderboard`, `kpis`; for admins `pipeline`, `audit`.
    kind: String,
    /// `leaderboard` and `around`: the KPI ranked by.
    metric: Option<String>,
    /// `around`: the artist.
    artist_id: Option<String>,
    /// `around`: neighbours on each side.
    n: Option<u32>,
    /// `dna_leaderboard`: `overall`, `a`, `t`, `g` or `c`.
    domain: Option<String>,
    /// `kpis`: `platform`, `artist:{id}` or `live_event:{id}`.
    scope: Option<String>,
    /// `kpis`: `hour` or `day`.
    bucket: Option<String>,
    /// As in the REST read.
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    city: Option<String>,
    genre: Option<String>,
    live_event_id: Option<String>,
    limit: Option<u32>,
    /// `audit`: filters of the audit log.
    actor: Option<String>,
    action: Option<String>,
    subject: Option<String>,
    since: Option<String>,
}

pub const SSE_PARAMETERS: &[&str] = &[
    "kind",
    "metric",
    "artist_id",
    "n",
    "domain",
    "scope",
    "bucket",
    "range",
    "from",
    "to",
    "city",
    "genre",
    "live_event_id",
    "limit",
    "actor",
    "action",
    "subject",
    "since",
];

/// One topic's live updates as Server-Sent Events: `event: update`, `id:`
/// the watermark, `data:` the body of the topic's REST read.
#[utoipa::path(
    get,
    path = "/v1/live/sse",
    tag = "live",
    params(
        LiveParams,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume: the state is sent at once only if newer than this watermark"),
    ),
    responses(
        (status = 200, description = "The topic's state, then its updates", content_type = "text/event-stream", body = String),
        Problems,
    ),
    security(("session" = []), ("bearer" = [])),
)]
async fn events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    request_id: RequestId,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    params: Params,
) -> Result<Response, AppError> {
    caller.may(Feature::LivePush)?;
    params.only(SSE_PARAMETERS)?;
    let spec = TopicSpec::from_params(params.into_inner())?;
    let last_event_id = headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok())
                .ok_or_else(|| AppError::parameter("Last-Event-ID", "must be a watermark (an integer)"))
        })
        .transpose()?;
    check_site(&caller, &headers)?;
    // Checked before a connection is counted: a refused topic holds nothing.
    spec.check(&state, &caller)?;
    access::charge(&state, &caller, Some(peer.ip())).await?;
    let open = state.live.open(&caller)?;
    let credentials = access::credentials_of(&headers);
    let stream = sse::stream(state, caller, credentials, request_id, spec, last_event_id, open).await?;
    Ok(stream.into_response())
}

/// A browser session's WebSocket must come from the deployment's own
/// origin (`--public-url`, else the `Host` it was asked at): any page a
/// user visits could otherwise open one with their cookie.
fn check_origin(state: &AppState, caller: &Caller, headers: &HeaderMap) -> Result<(), AppError> {
    if !matches!(caller.via, Via::Session(_)) {
        return Ok(());
    }
    check_site(caller, headers)?;
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_end_matches('/');
    let allowed = match &state.settings.public_url {
        Some(url) => vec![origin_of(url).to_owned()],
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            vec![format!("http://{host}"), format!("https://{host}")]
        }
    };
    if !origin.is_empty() && allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "a browser session's live connection must come from this deployment's pages ({}), not from `{origin}`",
            allowed.join(" or ")
        )))
    }
}

/// A browser session's live connection is never another site's: browsers
/// say so in `Sec-Fetch-Site` (an event stream is a read that CORS keeps
/// from other sites, but it would still hold one of the account's live
/// connections).
fn check_site(caller: &Caller, headers: &HeaderMap) -> Result<(), AppError> {
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if matches!(caller.via, Via::Session(_)) && cross_site {
        return Err(AppError::Forbidden(
            "a browser session's live connection must come from this deployment's pages, not another site".to_owned(),
        ));
    }
    Ok(())
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url.trim_end_matches('/'),
    }
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn an_origin_is_the_url_up_to_its_path() {
        assert_eq!(
            origin_of("https://coliseum.example.com/app/"),
            "https://coliseum.example.com"
        );
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(origin_of("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
    }
}

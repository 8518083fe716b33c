//! `POST /v1/passport/events`: signed Passport deliveries in, each entry's
//! fate out, answered only once the accepted entries are committed.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::{Bytes, BytesMut};
use coliseum_domain::passport::{self, FieldError, MAX_BODY_BYTES, ValidationContext};
use coliseum_engine::IngestError;
use coliseum_store::{Appended, NewEntry};
use http_body_util::BodyExt;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::ingest_budget::{Refused, Reservation};
use crate::openapi::Problems;
use crate::problem::AppError;
use crate::webhook::{SignatureError, SignedHeaders};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive))
}

/// One entry's fate, by its place in the delivery.
#[derive(Debug, Serialize, ToSchema)]
struct EntryResult {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
    /// `accepted`, `duplicate` (already in the log) or `rejected`.
    status: &'static str,
    /// Why a rejected entry was rejected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Option<Vec<crate::openapi::FieldError>>)]
    errors: Vec<FieldError>,
}

/// Every entry's fate: counted, then one by one.
#[derive(Debug, Serialize, ToSchema)]
struct DeliveryResponse {
    accepted: usize,
    duplicates: usize,
    rejected: usize,
    results: Vec<EntryResult>,
}

/// A signed Passport delivery (PASSPORT.md, signed as Standard Webhooks):
/// the entries accepted are committed to the log before the answer.
#[utoipa::path(
    post,
    path = "/v1/passport/events",
    tag = "passport",
    params(
        ("webhook-id" = String, Header, description = "The delivery's id"),
        ("webhook-timestamp" = String, Header, description = "Unix seconds; within 5 minutes of the receiver's clock"),
        ("webhook-signature" = String, Header, description = "`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}`; several may be given"),
    ),
    request_body(content = Object, content_type = "application/json", description = "A Passport delivery (PASSPORT.md)"),
    responses(
        (status = 202, description = "Some entries accepted or already in the log", body = DeliveryResponse),
        Problems,
    ),
    security(()),
)]
async fn receive(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let peer = peer.map_or(IpAddr::from([0, 0, 0, 0]), |Extension(ConnectInfo(address))| {
        crate::ingest_budget::peer_of(address.ip())
    });
    let response = match read_delivery(&state, peer, &headers, body).await {
        // The body's share of the budget is held until the delivery is
        // parsed and committed, not only read.
        Ok((body, _budget)) => handle(&state, &body).await.unwrap_or_else(IntoResponse::into_response),
        Err(refused) => {
            // Refused before the whole body was read: the rest of it may
            // still be on its way, so the connection cannot serve another
            // request. Saying so keeps clients from reusing it.
            let mut response = refused.into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    };
    let label = response.status().as_u16().to_string();
    metrics::histogram!("coliseum_ingest_request_seconds", "status" => label).record(started.elapsed().as_secs_f64());
    response
}

/// A delivery's verified body, or why it was refused; everything that can
/// be checked before a byte of the body is read is checked first, so that
/// unsigned or oversized senders are refused for nothing.
async fn read_delivery(
    state: &AppState,
    peer: IpAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Bytes, Reservation), AppError> {
    require_json(headers)?;
    // A declared length over the limit was refused before the route (request_limits).
    let now = state.clock.now();
    let key = state
        .settings
        .passport_webhook_key
        .as_ref()
        .ok_or(SignatureError::NotConfigured)
        .map_err(signature_error)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = SignedHeaders::check(
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        now,
    )
    .map_err(signature_error)?;

    let mut budget = state.ingest_body_budget.start(peer);
    let body = read_body(body, &mut budget).await?;
    key.verify_body(&signed, &body).map_err(signature_error)?;
    state.ingest_body_budget.prove(peer);
    Ok((body, budget))
}

async fn handle(state: &AppState, body: &Bytes) -> Result<Response, AppError> {
    let now = state.clock.now();
    let delivery =
        passport::parse_delivery(body, &ValidationContext::at(now)).map_err(|error| AppError::Malformed {
            detail: error.to_string(),
            errors: Vec::new(),
        })?;

    let mut results = Vec::with_capacity(delivery.entries.len());
    let mut valid = Vec::new();
    for (index, entry) in delivery.entries.into_iter().enumerate() {
        match entry {
            Ok(entry) => {
                results.push(EntryResult {
                    index,
                    event_id: Some(entry.event_id.clone()),
                    status: "accepted",
                    errors: Vec::new(),
                });
                valid.push(NewEntry::from_entry(entry, now));
            }
            Err(rejected) => results.push(EntryResult {
                index,
                event_id: rejected.event_id,
                status: "rejected",
                errors: rejected.errors,
            }),
        }
    }

    let fates = state.ingest.submit(valid).await.map_err(ingest_error)?;
    let mut fates = fates.into_iter();
    for result in results.iter_mut().filter(|r| r.status == "accepted") {
        if let Some(Appended::Duplicate) = fates.next() {
            result.status = "duplicate";
        }
    }
    let count = |status| results.iter().filter(|r| r.status == status).count();
    let response = DeliveryResponse {
        accepted: count("accepted"),
        duplicates: count("duplicate"),
        rejected: count("rejected"),
        results,
    };
    metrics::counter!("coliseum_ingest_entries_total", "outcome" => "rejected").increment(response.rejected as u64);

    if response.rejected == response.results.len() {
        let errors = response.results.iter().flat_map(|r| r.errors.iter().cloned()).collect();
        let mut extensions = Map::new();
        for (key, value) in [
            ("accepted", Value::from(0)),
            ("duplicates", Value::from(0)),
            ("rejected", Value::from(response.rejected)),
            (
                "results",
                serde_json::to_value(&response.results).unwrap_or(Value::Null),
            ),
        ] {
            extensions.insert(key.to_owned(), value);
        }
        return Err(AppError::Invalid {
            detail: "every entry in the delivery was rejected".to_owned(),
            errors,
            extensions,
        });
    }
    Ok((StatusCode::ACCEPTED, Json(response)).into_response())
}

/// Reads the body as it arrives, holding a share of the in-flight budget
/// for what has arrived (kept for the life of the request), or refuses as
/// soon as the budget, or this peer's share of it, is spent: under
/// overload memory stays bounded and senders back off.
async fn read_body(mut body: Body, budget: &mut Reservation) -> Result<Bytes, AppError> {
    let mut read = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| AppError::Malformed {
            detail: format!("the body could not be read: {error}"),
            errors: Vec::new(),
        })?;
        let Ok(data) = frame.into_data() else { continue };
        let total = read.len() + data.len();
        if total > MAX_BODY_BYTES {
            return Err(AppError::TooLarge { limit: MAX_BODY_BYTES });
        }
        budget.grow_to(total).map_err(|refused| {
            metrics::counter!("coliseum_ingest_overloaded_total").increment(1);
            match refused {
                Refused::Overloaded => ingest_error(IngestError::Overloaded),
                Refused::PeerShare => AppError::Unavailable {
                    detail: "this address already has its share of deliveries in flight; \
                             nothing in this delivery was stored; retry shortly"
                        .to_owned(),
                    retry_after_s: 1,
                },
            }
        })?;
        read.extend_from_slice(&data);
    }
    Ok(read.freeze())
}

fn require_json(headers: &HeaderMap) -> Result<(), AppError> {
    if crate::request_limits::is_json(headers) {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType(format!(
            "deliveries must be sent as application/json, not `{}`",
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(none)")
        )))
    }
}

fn signature_error(error: SignatureError) -> AppError {
    metrics::counter!("coliseum_ingest_signature_failures_total").increment(1);
    AppError::Unauthorized(error.to_string())
}

fn ingest_error(error: IngestError) -> AppError {
    let retry_after_s = match error {
        IngestError::Overloaded => 1,
        _ => 5,
    };
    if let IngestError::StoreFailed(cause) = &error {
        tracing::error!(error = %cause, "the store refused a commit");
    }
    // Whatever failed, nothing was acknowledged: the sender keeps the delivery and retries.
    AppError::Unavailable {
        detail: "nothing in this delivery was stored; retry shortly".to_owned(),
        retry_after_s,
    }
}

//! `POST /v1/passport/events`: signed Passport deliveries in, each entry's
//! fate out, answered only once the accepted entries are committed.

use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use coliseum_domain::passport::{self, FieldError, MAX_BODY_BYTES, ValidationContext};
use coliseum_engine::IngestError;
use coliseum_store::{Appended, NewEntry};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::problem::AppError;
use crate::webhook::SignatureError;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/passport/events", post(receive))
}

#[derive(Debug, Serialize)]
struct EntryResult {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

#[derive(Debug, Serialize)]
struct DeliveryResponse {
    accepted: usize,
    duplicates: usize,
    rejected: usize,
    results: Vec<EntryResult>,
}

async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, AppError> {
    let started = Instant::now();
    let outcome = handle(&state, &headers, body).await;
    let label = match &outcome {
        Ok(response) => response.status().as_u16().to_string(),
        Err(error) => error.problem().status.to_string(),
    };
    metrics::histogram!("coliseum_ingest_request_seconds", "status" => label).record(started.elapsed().as_secs_f64());
    outcome
}

async fn handle(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Response, AppError> {
    require_json(headers)?;
    let _budget = reserve_body_budget(state, headers)?;
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|error| {
        if is_length_limit(&error) {
            AppError::TooLarge { limit: MAX_BODY_BYTES }
        } else {
            AppError::Malformed {
                detail: format!("the body could not be read: {error}"),
                errors: Vec::new(),
            }
        }
    })?;

    let now = state.clock.now();
    let key = state
        .settings
        .passport_webhook_key
        .as_ref()
        .ok_or(SignatureError::NotConfigured)
        .map_err(signature_error)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    key.verify(
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        &body,
        now,
    )
    .map_err(signature_error)?;

    let delivery =
        passport::parse_delivery(&body, &ValidationContext::at(now)).map_err(|error| AppError::Malformed {
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

/// Takes a share of the in-flight body budget (by the declared length, or the
/// largest body when none is declared) for the life of the request, or
/// refuses at once: under overload, memory stays bounded and senders back off.
fn reserve_body_budget(state: &AppState, headers: &HeaderMap) -> Result<OwnedSemaphorePermit, AppError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(MAX_BODY_BYTES)
        .min(MAX_BODY_BYTES);
    let kib = u32::try_from(declared.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    state
        .ingest_body_budget
        .clone()
        .try_acquire_many_owned(kib)
        .map_err(|_| {
            metrics::counter!("coliseum_ingest_overloaded_total").increment(1);
            ingest_error(IngestError::Overloaded)
        })
}

fn is_length_limit(error: &axum::Error) -> bool {
    // axum wraps http-body-util's LengthLimitError; its message is stable.
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(current) = source {
        if current.to_string().contains("length limit exceeded") {
            return true;
        }
        source = current.source();
    }
    false
}

fn require_json(headers: &HeaderMap) -> Result<(), AppError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType(format!(
            "deliveries must be sent as application/json, not `{}`",
            if content_type.is_empty() {
                "(none)"
            } else {
                content_type
            }
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

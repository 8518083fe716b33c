//! A delivery: the body of `POST /v1/passport/events`, either one envelope or
//! `{"events": [...]}`, validated entry by entry so that one bad entry never
//! costs a good one.

use serde_json::Value;

use super::Entry;
use super::envelope::{FieldError, ValidationContext, event_id_of, validate_envelope};

/// The largest body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The most envelopes in one batch.
pub const MAX_BATCH_ENTRIES: usize = 1000;

/// A body that is not a delivery at all: nothing in it can be judged entry by entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("the body is not valid JSON: {0}")]
    NotJson(String),
    #[error("the body must be one envelope object or {{\"events\": [envelope, …]}}")]
    WrongShape,
    #[error("`events` must be an array of 1 to {MAX_BATCH_ENTRIES} envelopes")]
    BadBatch,
}

/// One envelope that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub event_id: Option<String>,
    pub errors: Vec<FieldError>,
}

/// Every envelope of a delivery, in order, valid or not.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub entries: Vec<Result<Entry, Rejected>>,
}

/// Parses and validates a delivery body.
pub fn parse_delivery(body: &[u8], context: &ValidationContext) -> Result<Delivery, DeliveryError> {
    let document: Value = serde_json::from_slice(body).map_err(|error| DeliveryError::NotJson(error.to_string()))?;
    let Value::Object(mut top) = document else {
        return Err(DeliveryError::WrongShape);
    };

    let validate = |envelope: &Value, at: &str| {
        validate_envelope(envelope, at, context).map_err(|errors| Rejected {
            event_id: event_id_of(envelope).map(str::to_owned),
            errors,
        })
    };

    let entries = match top.remove("events") {
        None => vec![validate(&Value::Object(top), "")],
        Some(Value::Array(envelopes)) if (1..=MAX_BATCH_ENTRIES).contains(&envelopes.len()) => envelopes
            .iter()
            .enumerate()
            .map(|(index, envelope)| validate(envelope, &format!("/events/{index}")))
            .collect(),
        Some(_) => return Err(DeliveryError::BadBatch),
    };
    Ok(Delivery { entries })
}

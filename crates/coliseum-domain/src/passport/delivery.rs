//! A delivery: the body of `POST /v1/passport/events`, either one envelope or
//! `{"events": [...]}`, validated entry by entry so that one bad entry never
//! costs a good one.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::Entry;
use super::envelope::{FieldError, ValidationContext, validate_raw_envelope};

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
    #[error("the body repeats the key `events`: a batch that says two things is ambiguous")]
    RepeatedEvents,
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

/// Parses and validates a delivery body. Each envelope is kept as the exact
/// text the sender signed, and parsed once.
pub fn parse_delivery(body: &[u8], context: &ValidationContext) -> Result<Delivery, DeliveryError> {
    let text = std::str::from_utf8(body).map_err(|error| DeliveryError::NotJson(error.to_string()))?;
    let top: Top = match serde_json::from_str(text) {
        Ok(top) => top,
        Err(error) => {
            // Valid JSON of another shape is a shape error, not a syntax error.
            return Err(match serde_json::from_str::<IgnoredAny>(text) {
                Ok(_) => DeliveryError::WrongShape,
                Err(_) => DeliveryError::NotJson(error.to_string()),
            });
        }
    };

    let validate = |raw: &str, at: &str| {
        validate_raw_envelope(raw, at, context).map_err(|(event_id, errors)| Rejected { event_id, errors })
    };

    if top.repeated_events {
        return Err(DeliveryError::RepeatedEvents);
    }
    let entries = match top.events {
        None => vec![validate(text.trim(), "")],
        Some(events) => {
            let envelopes: Vec<&RawValue> = serde_json::from_str(events.get()).map_err(|_| DeliveryError::BadBatch)?;
            if !(1..=MAX_BATCH_ENTRIES).contains(&envelopes.len()) {
                return Err(DeliveryError::BadBatch);
            }
            envelopes
                .iter()
                .enumerate()
                .map(|(index, raw)| validate(raw.get(), &format!("/events/{index}")))
                .collect()
        }
    };
    Ok(Delivery { entries })
}

/// The top level of a body: only whether it is an object and what its
/// `events` key holds (the rest belongs to a single envelope, checked there).
/// `serde_json` keeps the last of repeated keys; a repeated `events` is
/// noted instead, so that it can be refused.
struct Top<'a> {
    events: Option<&'a RawValue>,
    repeated_events: bool,
}

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
        let mut top = Top {
            events: None,
            repeated_events: false,
        };
        while let Some(key) = map.next_key::<String>()? {
            if key == "events" {
                let events = map.next_value::<&RawValue>()?;
                top.repeated_events |= top.events.replace(events).is_some();
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(top)
    }
}

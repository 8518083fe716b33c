//! What the analytics reads share: the range parameters and the freshness
//! every read of derived data states (`as_of`, `watermark`).

use coliseum_domain::range::Range;
use coliseum_engine::Watermark;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::params::Params;
use crate::problem::AppError;

pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// `range` (default `24h`) with `from` and `to` for `custom`.
pub fn read_range(params: &Params) -> Result<Range, AppError> {
    Range::parse(
        params.get("range").unwrap_or("24h"),
        params.get("from"),
        params.get("to"),
    )
    .map_err(|(parameter, error)| AppError::parameter(parameter, error))
}

/// A page's cursor: the snapshot it pages through and where the page starts.
pub fn encode_cursor(snapshot: u64, offset: usize) -> String {
    format!("{snapshot:x}-{offset:x}")
}

pub fn decode_cursor(cursor: &str) -> Option<(u64, usize)> {
    let (id, offset) = cursor.split_once('-')?;
    Some((
        u64::from_str_radix(id, 16).ok()?,
        usize::from_str_radix(offset, 16).ok()?,
    ))
}

pub fn range_json(range: Range, from: OffsetDateTime, to: OffsetDateTime) -> Value {
    json!({"name": range.as_str(), "from": rfc3339(from), "to": rfc3339(to)})
}

/// `as_of` and `watermark`, for the top of a response.
pub fn freshness(watermark: Watermark) -> Map<String, Value> {
    Map::from_iter([
        ("as_of".to_owned(), json!(rfc3339(watermark.as_of))),
        ("watermark".to_owned(), json!(watermark.seq)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(255, 25)), Some((255, 25)));
        assert_eq!(decode_cursor("nonsense"), None);
        assert_eq!(decode_cursor("zz-1"), None);
    }
}

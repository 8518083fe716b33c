//! Time ranges of the analytics reads (API.md "Ranges"): a relative range is
//! the current UTC unit so far plus whole units before it; a custom range is
//! `[from, to)` on whole UTC hours.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

/// A range as a request names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Range {
    /// The current UTC hour so far.
    Hour,
    /// The current hour so far and the 23 before it.
    Day,
    /// The current UTC day so far and the 6 before it.
    Week,
    /// The current UTC day so far and the 29 before it.
    Month,
    /// Everything kept.
    All,
    /// `[from, to)`, both on whole UTC hours.
    Custom { from: OffsetDateTime, to: OffsetDateTime },
}

/// Why a range cannot be read; each names the parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("must be one of 1h, 24h, 7d, 30d, all, custom")]
    UnknownRange,
    #[error("is required with range=custom")]
    Missing,
    #[error("must be an RFC 3339 timestamp on a whole UTC hour, such as 2026-11-20T18:00:00Z")]
    NotWholeHour,
    #[error("must be after `from`")]
    Empty,
    #[error("is only allowed with range=custom")]
    Unexpected,
}

/// The parameter a [`RangeError`] is about.
pub type RangeProblem = (&'static str, RangeError);

impl Range {
    /// Reads `range` with its `from` and `to` parameters.
    pub fn parse(range: &str, from: Option<&str>, to: Option<&str>) -> Result<Self, RangeProblem> {
        let relative = match range {
            "1h" => Some(Range::Hour),
            "24h" => Some(Range::Day),
            "7d" => Some(Range::Week),
            "30d" => Some(Range::Month),
            "all" => Some(Range::All),
            "custom" => None,
            _ => return Err(("range", RangeError::UnknownRange)),
        };
        if let Some(relative) = relative {
            if from.is_some() {
                return Err(("from", RangeError::Unexpected));
            }
            if to.is_some() {
                return Err(("to", RangeError::Unexpected));
            }
            return Ok(relative);
        }
        let hour = |name: &'static str, value: Option<&str>| -> Result<OffsetDateTime, RangeProblem> {
            let value = value.ok_or((name, RangeError::Missing))?;
            let at = OffsetDateTime::parse(value, &Rfc3339).map_err(|_| (name, RangeError::NotWholeHour))?;
            let at = at.to_offset(UtcOffset::UTC);
            if at.minute() != 0 || at.second() != 0 || at.nanosecond() != 0 {
                return Err((name, RangeError::NotWholeHour));
            }
            Ok(at)
        };
        let (from, to) = (hour("from", from)?, hour("to", to)?);
        if to <= from {
            return Err(("to", RangeError::Empty));
        }
        Ok(Range::Custom { from, to })
    }

    /// The name a request used.
    pub fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
            Range::All => "all",
            Range::Custom { .. } => "custom",
        }
    }

    /// `[from, to)` as of `as_of`. For `all`, `from` is `oldest`, the start of
    /// what is kept.
    pub fn bounds(self, as_of: OffsetDateTime, oldest: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
        let hour_start = start_of_hour(as_of);
        let day_start = as_of.replace_time(time::Time::MIDNIGHT);
        match self {
            Range::Hour => (hour_start, as_of),
            Range::Day => (hour_start - Duration::hours(23), as_of),
            Range::Week => (day_start - Duration::days(6), as_of),
            Range::Month => (day_start - Duration::days(29), as_of),
            Range::All => (oldest.min(as_of), as_of),
            Range::Custom { from, to } => (from, to),
        }
    }
}

/// The start of the UTC hour holding `at`.
pub fn start_of_hour(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(UtcOffset::UTC);
    at.replace_time(time::Time::from_hms(at.hour(), 0, 0).unwrap_or(time::Time::MIDNIGHT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AS_OF: OffsetDateTime = datetime!(2026-11-20 18:04:05 UTC);

    fn bounds(range: &str) -> (OffsetDateTime, OffsetDateTime) {
        Range::parse(range, None, None)
            .expect("valid")
            .bounds(AS_OF, datetime!(2024-11-20 0:00 UTC))
    }

    #[test]
    fn relative_ranges_are_the_current_unit_so_far_plus_whole_units_before() {
        assert_eq!(bounds("1h"), (datetime!(2026-11-20 18:00 UTC), AS_OF));
        assert_eq!(bounds("24h"), (datetime!(2026-11-19 19:00 UTC), AS_OF));
        assert_eq!(bounds("7d"), (datetime!(2026-11-14 0:00 UTC), AS_OF));
        assert_eq!(bounds("30d"), (datetime!(2026-10-22 0:00 UTC), AS_OF));
        assert_eq!(bounds("all"), (datetime!(2024-11-20 0:00 UTC), AS_OF));
    }

    #[test]
    fn custom_ranges_take_whole_utc_hours() {
        let range = Range::parse(
            "custom",
            Some("2026-11-20T10:00:00+02:00"),
            Some("2026-11-20T12:00:00Z"),
        )
        .expect("valid");
        assert_eq!(
            range.bounds(AS_OF, AS_OF),
            (datetime!(2026-11-20 8:00 UTC), datetime!(2026-11-20 12:00 UTC))
        );
        let problems = [
            (
                ("custom", None, Some("2026-11-20T12:00:00Z")),
                ("from", RangeError::Missing),
            ),
            (
                ("custom", Some("2026-11-20T10:30:00Z"), Some("2026-11-20T12:00:00Z")),
                ("from", RangeError::NotWholeHour),
            ),
            (
                ("custom", Some("yesterday"), Some("2026-11-20T12:00:00Z")),
                ("from", RangeError::NotWholeHour),
            ),
            (
                ("custom", Some("2026-11-20T12:00:00Z"), Some("2026-11-20T12:00:00Z")),
                ("to", RangeError::Empty),
            ),
            (
                ("7d", Some("2026-11-20T12:00:00Z"), None),
                ("from", RangeError::Unexpected),
            ),
            (("week", None, None), ("range", RangeError::UnknownRange)),
        ];
        for ((range, from, to), expected) in problems {
            assert_eq!(Range::parse(range, from, to), Err(expected), "{range} {from:?} {to:?}");
        }
    }
}

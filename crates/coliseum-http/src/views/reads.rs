//! What the analytics reads share: the range parameters, the checks against
//! the caller's plan, and pages cut at the ranks the plan shows.

use coliseum_domain::range::Range;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use coliseum_domain::plans::{Feature, depth_upgrade, leaderboard_depth};

use super::UpgradeRequired;
use crate::params::Params;
use crate::problem::AppError;
use crate::routes::access::{Audience, Caller};

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

/// What every analytics read checks against the caller's plan: filters
/// need a plan with filters, a custom range one reaching back far enough.
pub fn check_read(caller: &Caller, range: Range, filtered: bool, now: OffsetDateTime) -> Result<(), AppError> {
    if filtered {
        caller.may(Feature::Filters)?;
    }
    if let Range::Custom { from, .. } = range {
        let days_back = ((now - from).whole_seconds().max(0) + 86_399) / 86_400;
        caller.may(Feature::CustomRange { days_back })?;
    }
    Ok(())
}

/// A page of a board cut at the caller's leaderboard depth.
#[derive(Debug)]
pub struct Page {
    /// The positions served.
    pub positions: std::ops::Range<usize>,
    /// Where the next page starts, if any visible rank is left.
    pub next: Option<usize>,
    /// When the request reached past the visible ranks: the
    /// `upgrade_required` marker of the response (PLANS.md).
    pub upgrade_required: Option<UpgradeRequired>,
}

/// The page `offset..offset + limit` of a board of `len` entries, never
/// past the ranks `audience`'s plan shows.
pub fn visible_page(audience: Audience, len: usize, offset: usize, limit: usize) -> Page {
    let subject = audience.subject();
    let visible = leaderboard_depth(&subject).map_or(len, |depth| depth.min(len));
    let end = offset.saturating_add(limit).min(visible);
    let start = offset.min(end);
    // The page reaches the last rank the plan shows, and more exist.
    let cut = offset.saturating_add(limit) >= visible && len > visible;
    Page {
        positions: start..end,
        next: (end < visible).then_some(end),
        upgrade_required: cut.then(|| depth_marker(audience, visible)),
    }
}

/// The `upgrade_required` marker of a board cut after `visible` ranks.
pub fn depth_marker(audience: Audience, visible: usize) -> UpgradeRequired {
    let upgrade = depth_upgrade(&audience.subject());
    UpgradeRequired {
        feature: upgrade.feature,
        plan: upgrade.plan.as_str(),
        cheapest_plan: upgrade.cheapest.as_str(),
        visible_ranks: visible,
    }
}

//! The derived tables' rows as both backends read them: plain tuples of
//! standard types, so that turning them into records is written once.

use coliseum_domain::kpi::Kpis;

use crate::{CellKey, DeadLetterState, DisplayName, FanDay, FanDayKey, Grain, NameKind, StoreError};

/// `kind, id, name, at_us, seq` of `display_names`.
pub type DisplayNameRow = (i16, String, String, i64, i64);

/// What both backends select to read every display name.
pub const SELECT_DISPLAY_NAMES: &str = "SELECT kind, id, name, at_us, seq FROM display_names";

/// The start of a display names' upsert; the rows, then
/// [`crate::DISPLAY_NAME_CONFLICT`], follow.
pub const INSERT_DISPLAY_NAMES: &str = "INSERT INTO display_names (kind, id, name, at_us, seq) ";

/// A name's instant in microseconds since the epoch, as `at_us` keeps it.
pub fn name_micros(at: time::OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

pub fn display_name(row: DisplayNameRow) -> Result<DisplayName, StoreError> {
    let (kind, id, name, at_us, seq) = row;
    let kind = NameKind::from_code(kind).ok_or_else(|| StoreError::Internal(format!("stored name kind {kind}")))?;
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_us) * 1_000)
        .map_err(|e| StoreError::Internal(format!("stored name instant {at_us}: {e}")))?;
    Ok(DisplayName {
        kind,
        id,
        name,
        at,
        seq,
    })
}

/// `grain, bucket, artist, city, genre, live_event` and the six sums.
pub type CellRow = (i16, i64, String, String, String, String, i64, i64, i64, i64, i64, i64);
/// `day, artist, fan, city, genre`, the five tier counts and `influence`.
pub type FanDayRow = (i64, String, String, String, String, i64, i64, i64, i64, i64, i64);
/// A group key and the six sums, in the order of the `kpi_cells` columns.
pub type SumsRow<K> = (K, i64, i64, i64, i64, i64, i64);

pub fn cell(row: CellRow) -> Result<(CellKey, Kpis), StoreError> {
    let (grain, bucket, artist, city, genre, live_event, plays, votes, attendance, revenue, entries, engagement) = row;
    let grain = Grain::from_code(grain).ok_or_else(|| StoreError::Internal(format!("stored grain {grain}")))?;
    let key = CellKey {
        grain,
        bucket,
        artist,
        city,
        genre,
        live_event,
    };
    Ok((
        key,
        Kpis::from([plays, votes, attendance, revenue, entries, engagement]),
    ))
}

pub fn fan_day(row: FanDayRow) -> (FanDayKey, FanDay) {
    let (day, artist, fan, city, genre, passive, light, active, committed, patron, influence) = row;
    let key = FanDayKey {
        day,
        artist,
        fan,
        city,
        genre,
    };
    let counts = FanDay {
        by_tier: [passive, light, active, committed, patron],
        influence,
    };
    (key, counts)
}

/// A grouped sum: the key and its figures.
pub fn grouped<K>(row: SumsRow<K>) -> (K, Kpis) {
    let (key, plays, votes, attendance, revenue, entries, engagement) = row;
    (
        key,
        Kpis::from([plays, votes, attendance, revenue, entries, engagement]),
    )
}

pub fn dead_letter_state(text: &str) -> Result<DeadLetterState, StoreError> {
    DeadLetterState::parse(text).ok_or_else(|| StoreError::Internal(format!("stored dead-letter state {text}")))
}

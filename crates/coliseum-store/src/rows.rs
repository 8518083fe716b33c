//! The derived tables' rows as both backends read them: plain tuples of
//! standard types, so that turning them into records is written once.

use coliseum_domain::kpi::Kpis;

use crate::{CellKey, DeadLetterState, FanDay, FanDayKey, Grain, StoreError};

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
    Ok((key, sums((plays, votes, attendance, revenue, entries, engagement))))
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
    (key, sums((plays, votes, attendance, revenue, entries, engagement)))
}

fn sums(
    (plays, votes, attendance, revenue_minor, revenue_entries, engagement_tenths): (i64, i64, i64, i64, i64, i64),
) -> Kpis {
    Kpis {
        plays,
        votes,
        attendance,
        revenue_minor,
        revenue_entries,
        engagement_tenths,
    }
}

pub fn dead_letter_state(text: &str) -> Result<DeadLetterState, StoreError> {
    DeadLetterState::parse(text).ok_or_else(|| StoreError::Internal(format!("stored dead-letter state {text}")))
}

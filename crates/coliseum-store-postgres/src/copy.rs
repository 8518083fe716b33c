//! Rows in PostgreSQL's binary `COPY` format. Appending the rows of a group
//! commit (and of a rebuild) by `COPY … FROM STDIN (FORMAT binary)` skips
//! what an `INSERT … SELECT FROM UNNEST(arrays)` spends on decoding arrays
//! and materializing the function's result before the first row is inserted.

use coliseum_domain::kpi::Kpis;
use coliseum_store::{CellKey, FanDay, FanDayKey, NewEntry, StoreError};
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::classify;

/// The statement the rows of [`encode_log_rows`] are sent to, columns in its order.
pub const COPY_LOG_ROWS: &str = "COPY passport_entries (seq, event_id, entry_type, recognized, ts, received_at, \
                                 user_id, artist_id, live_event_id, city, genre, envelope) FROM STDIN (FORMAT binary)";

/// The statement the rows of [`encode_cells`] are sent to.
pub const COPY_CELLS: &str = "COPY kpi_cells (grain, bucket, artist, city, genre, live_event, plays, votes, \
                              attendance, revenue_minor, revenue_entries, engagement_tenths) FROM STDIN (FORMAT binary)";

/// The statement the rows of [`encode_fan_days`] are sent to.
pub const COPY_FAN_DAYS: &str = "COPY fan_days (day, artist, fan, city, genre, passive, light, active, committed, \
                                 patron, influence) FROM STDIN (FORMAT binary)";

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
const LOG_COLUMNS: i16 = 12;
/// PostgreSQL counts timestamps in microseconds from here.
const POSTGRES_EPOCH: OffsetDateTime = datetime!(2000-01-01 0:00 UTC);

/// The rows `(seqs[i], entries[i])` as one binary `COPY` stream.
pub fn encode_log_rows(seqs: &[i64], entries: &[&NewEntry]) -> Vec<u8> {
    let mut out = start(entries.iter().map(|e| e.envelope.len() + 160).sum::<usize>());
    for (&seq, entry) in seqs.iter().zip(entries) {
        out.extend_from_slice(&LOG_COLUMNS.to_be_bytes());
        field(&mut out, &seq.to_be_bytes());
        text(&mut out, Some(&entry.event_id));
        text(&mut out, Some(&entry.entry_type));
        field(&mut out, &[u8::from(entry.recognized)]);
        field(&mut out, &micros_since_epoch(entry.timestamp).to_be_bytes());
        field(&mut out, &micros_since_epoch(entry.received_at).to_be_bytes());
        text(&mut out, entry.user_id.as_deref());
        text(&mut out, entry.artist_id.as_deref());
        text(&mut out, entry.live_event_id.as_deref());
        text(&mut out, entry.city.as_deref());
        text(&mut out, entry.genre.as_deref());
        text(&mut out, Some(&entry.envelope));
    }
    end(out)
}

/// Rollup cells as one binary `COPY` stream for [`COPY_CELLS`].
pub fn encode_cells(cells: &[(CellKey, Kpis)]) -> Vec<u8> {
    let mut out = start(cells.len() * 160);
    for (key, kpis) in cells {
        out.extend_from_slice(&12_i16.to_be_bytes());
        field(&mut out, &key.grain.code().to_be_bytes());
        field(&mut out, &key.bucket.to_be_bytes());
        for dimension in [&key.artist, &key.city, &key.genre, &key.live_event] {
            text(&mut out, Some(dimension));
        }
        for value in <[i64; 6]>::from(*kpis) {
            field(&mut out, &value.to_be_bytes());
        }
    }
    end(out)
}

/// Fan-days as one binary `COPY` stream for [`COPY_FAN_DAYS`].
pub fn encode_fan_days(days: &[(FanDayKey, FanDay)]) -> Vec<u8> {
    let mut out = start(days.len() * 160);
    for (key, day) in days {
        out.extend_from_slice(&11_i16.to_be_bytes());
        field(&mut out, &key.day.to_be_bytes());
        for dimension in [&key.artist, &key.fan, &key.city, &key.genre] {
            text(&mut out, Some(dimension));
        }
        for count in day.by_tier.iter().chain([&day.influence]) {
            field(&mut out, &count.to_be_bytes());
        }
    }
    end(out)
}

/// Appends rows by binary `COPY`: no conflict handling, so for keys known to be new.
pub async fn copy_in(tx: &mut Transaction<'_, Postgres>, statement: &str, rows: Vec<u8>) -> Result<(), StoreError> {
    let mut copy = tx.copy_in_raw(statement).await.map_err(classify)?;
    copy.send(rows).await.map_err(classify)?;
    copy.finish().await.map_err(classify)?;
    Ok(())
}

/// The header of a stream, with room for about `capacity` bytes of rows.
fn start(capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + capacity);
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&0_i32.to_be_bytes()); // flags: no OIDs
    out.extend_from_slice(&0_i32.to_be_bytes()); // no header extension
    out
}

/// The trailer: a tuple of -1 fields.
fn end(mut out: Vec<u8>) -> Vec<u8> {
    out.extend_from_slice(&(-1_i16).to_be_bytes());
    out
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    // Every value here is far below 2 GiB: ids are at most 128 characters and
    // an envelope at most a 1 MiB delivery.
    let length = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(bytes);
}

fn text(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => field(out, value.as_bytes()),
        None => out.extend_from_slice(&(-1_i32).to_be_bytes()),
    }
}

/// What sqlx sends for a `timestamptz`: whole microseconds, truncated.
fn micros_since_epoch(at: OffsetDateTime) -> i64 {
    i64::try_from((at - POSTGRES_EPOCH).whole_microseconds()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_count_microseconds_from_the_postgres_epoch() {
        assert_eq!(micros_since_epoch(POSTGRES_EPOCH), 0);
        assert_eq!(micros_since_epoch(datetime!(2000-01-01 0:00:01.000002 UTC)), 1_000_002);
        assert_eq!(micros_since_epoch(datetime!(1999-12-31 23:59:59 UTC)), -1_000_000);
    }

    #[test]
    fn a_stream_has_the_header_one_tuple_per_row_and_the_trailer() {
        let entry = coliseum_store::conformance::entry("e-1", datetime!(2026-11-20 12:00 UTC));
        let stream = encode_log_rows(&[7], &[&entry]);
        assert!(stream.starts_with(SIGNATURE));
        assert!(stream.ends_with(&[0xff, 0xff]));
        let tuple = &stream[SIGNATURE.len() + 8..];
        assert_eq!(&tuple[..2], &12_i16.to_be_bytes());
        assert_eq!(&tuple[2..6], &8_i32.to_be_bytes());
        assert_eq!(&tuple[6..14], &7_i64.to_be_bytes());
    }
}

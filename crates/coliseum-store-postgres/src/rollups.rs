//! The derived tables on PostgreSQL: rollup cells and fan-days added to with
//! one `INSERT … SELECT FROM UNNEST … ON CONFLICT DO UPDATE` each, the cursor
//! moved in the same transaction.

use async_trait::async_trait;
use coliseum_domain::kpi::Kpis;
use coliseum_store::{
    AppliedBatch, AuditOf, AuditRecord, CellFilter, CellKey, DeadLetter, DeadLetters, DerivedPart, DisplayName,
    DisplayNamesStore, DnaHistory, DnaMutation, FIRST_BUCKET, FanDay, FanDayKey, Grain, Lead, MOVE_CURSOR,
    PipelineState, ProcessedBatch, Rebuilds, Rollups, StoreError, StoredEntry, SumsBy, cursor_moved, rows,
};
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use tokio::sync::mpsc::Receiver;

use crate::{EntryRow, PostgresStore, classify, copy, stored_entry};

/// The six sums of a read of cells, as this backend selects them.
const SUMS: &str = "sum(plays)::int8, sum(votes)::int8, sum(attendance)::int8, sum(revenue_minor)::int8, sum(revenue_entries)::int8, sum(engagement_tenths)::int8";

type DeadLetterRow = (
    i64,
    String,
    String,
    i32,
    String,
    OffsetDateTime,
    OffsetDateTime,
    Option<OffsetDateTime>,
);

fn dead_letter_from_row(row: DeadLetterRow) -> Result<DeadLetter, StoreError> {
    let (seq, event_id, reason, attempts, state, first_failed_at, last_failed_at, next_attempt_at) = row;
    Ok(DeadLetter {
        seq,
        event_id,
        reason,
        attempts,
        state: rows::dead_letter_state(&state)?,
        first_failed_at,
        last_failed_at,
        next_attempt_at,
    })
}

/// One column of values pulled out of a slice of rows, for an `UNNEST` parameter.
fn column<'a, T, U>(rows: &'a [T], pick: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(pick).collect()
}

/// Adds `cells` to the rollups (created where missing).
async fn upsert_cells(tx: &mut Transaction<'_, Postgres>, cells: &[(CellKey, Kpis)]) -> Result<(), StoreError> {
    if !cells.is_empty() {
        sqlx::query(
            "INSERT INTO kpi_cells (grain, bucket, artist, city, genre, live_event, plays, votes, attendance, \
                                    revenue_minor, revenue_entries, engagement_tenths) \
             SELECT * FROM UNNEST($1::int2[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], \
                                  $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[]) \
             ON CONFLICT (grain, bucket, artist, city, genre, live_event) DO UPDATE SET \
             plays = kpi_cells.plays + excluded.plays, votes = kpi_cells.votes + excluded.votes, \
             attendance = kpi_cells.attendance + excluded.attendance, \
             revenue_minor = kpi_cells.revenue_minor + excluded.revenue_minor, \
             revenue_entries = kpi_cells.revenue_entries + excluded.revenue_entries, \
             engagement_tenths = kpi_cells.engagement_tenths + excluded.engagement_tenths",
        )
        .bind(column(cells, |(k, _)| k.grain.code()))
        .bind(column(cells, |(k, _)| k.bucket))
        .bind(column(cells, |(k, _)| k.artist.as_str()))
        .bind(column(cells, |(k, _)| k.city.as_str()))
        .bind(column(cells, |(k, _)| k.genre.as_str()))
        .bind(column(cells, |(k, _)| k.live_event.as_str()))
        .bind(column(cells, |(_, v)| v.plays))
        .bind(column(cells, |(_, v)| v.votes))
        .bind(column(cells, |(_, v)| v.attendance))
        .bind(column(cells, |(_, v)| v.revenue_minor))
        .bind(column(cells, |(_, v)| v.revenue_entries))
        .bind(column(cells, |(_, v)| v.engagement_tenths))
        .execute(&mut **tx)
        .await
        .map_err(classify)?;
    }
    Ok(())
}

/// Adds `days` to the fan-days (created where missing).
async fn upsert_fan_days(tx: &mut Transaction<'_, Postgres>, days: &[(FanDayKey, FanDay)]) -> Result<(), StoreError> {
    if !days.is_empty() {
        sqlx::query(
            "INSERT INTO fan_days (day, artist, fan, city, genre, passive, light, active, committed, patron, \
                                   influence) \
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], \
                                  $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[]) \
             ON CONFLICT (day, artist, fan, city, genre) DO UPDATE SET \
             passive = fan_days.passive + excluded.passive, light = fan_days.light + excluded.light, \
             active = fan_days.active + excluded.active, committed = fan_days.committed + excluded.committed, \
             patron = fan_days.patron + excluded.patron, influence = fan_days.influence + excluded.influence",
        )
        .bind(column(days, |(k, _)| k.day))
        .bind(column(days, |(k, _)| k.artist.as_str()))
        .bind(column(days, |(k, _)| k.fan.as_str()))
        .bind(column(days, |(k, _)| k.city.as_str()))
        .bind(column(days, |(k, _)| k.genre.as_str()))
        .bind(column(days, |(_, v)| v.by_tier[0]))
        .bind(column(days, |(_, v)| v.by_tier[1]))
        .bind(column(days, |(_, v)| v.by_tier[2]))
        .bind(column(days, |(_, v)| v.by_tier[3]))
        .bind(column(days, |(_, v)| v.by_tier[4]))
        .bind(column(days, |(_, v)| v.influence))
        .execute(&mut **tx)
        .await
        .map_err(classify)?;
    }
    Ok(())
}

/// Writes dead letters as given, replacing those with the same `seq`.
async fn write_dead_letters(tx: &mut Transaction<'_, Postgres>, letters: &[DeadLetter]) -> Result<(), StoreError> {
    for letter in letters {
        sqlx::query(
            "INSERT INTO dead_letters (seq, event_id, reason, attempts, state, first_failed_at, last_failed_at, \
                                       next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (seq) DO UPDATE SET event_id = excluded.event_id, reason = excluded.reason, \
             attempts = excluded.attempts, state = excluded.state, first_failed_at = excluded.first_failed_at, \
             last_failed_at = excluded.last_failed_at, next_attempt_at = excluded.next_attempt_at",
        )
        .bind(letter.seq)
        .bind(&letter.event_id)
        .bind(&letter.reason)
        .bind(letter.attempts)
        .bind(letter.state.as_str())
        .bind(letter.first_failed_at)
        .bind(letter.last_failed_at)
        .bind(letter.next_attempt_at)
        .execute(&mut **tx)
        .await
        .map_err(classify)?;
    }
    Ok(())
}

/// Moves the cursor from `from` to `to` and adds `revenue_gross` to the
/// absolute revenue counted; `Conflict` when the cursor is not at `from`.
async fn move_cursor(
    tx: &mut Transaction<'_, Postgres>,
    from: i64,
    to: i64,
    revenue_gross: i64,
) -> Result<i64, StoreError> {
    let number: Option<i64> = sqlx::query_scalar(MOVE_CURSOR)
        .bind(to)
        .bind(from)
        .bind(revenue_gross)
        .fetch_optional(&mut **tx)
        .await
        .map_err(classify)?;
    cursor_moved(number, from)
}

coliseum_store::upsert_display_names_for!(Postgres);

#[async_trait]
impl Rollups for PostgresStore {
    async fn pipeline_state(&self) -> Result<PipelineState, StoreError> {
        let (processed_seq, batches, paused, revenue_gross): (i64, i64, bool, i64) =
            sqlx::query_as("SELECT processed_seq, batches, paused, revenue_gross FROM pipeline_state WHERE id = 1")
                .fetch_one(&self.pool)
                .await
                .map_err(classify)?;
        Ok(PipelineState {
            processed_seq,
            batches,
            paused,
            revenue_gross,
        })
    }

    async fn set_paused(&self, paused: bool, audit: &AuditRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        sqlx::query("UPDATE pipeline_state SET paused = $1 WHERE id = 1")
            .bind(paused)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        crate::identity::write_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(classify)
    }

    async fn apply_batch(&self, batch: &ProcessedBatch, as_of: OffsetDateTime) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let number = move_cursor(&mut tx, batch.from_seq, batch.to_seq, batch.revenue_gross).await?;
        upsert_cells(&mut tx, &batch.cells).await?;
        upsert_fan_days(&mut tx, &batch.fan_days).await?;
        write_dead_letters(&mut tx, &batch.dead_letters).await?;
        upsert_display_names(&mut tx, &batch.names).await?;
        crate::journal::record(&mut tx, number, as_of, batch).await?;
        tx.commit().await.map_err(classify)?;
        Ok(number)
    }

    fn keeps_journal(&self) -> bool {
        true
    }

    async fn journal_after(&self, after: i64, limit: u32) -> Result<Vec<AppliedBatch>, StoreError> {
        crate::journal::after(&self.pool, after, limit).await
    }

    async fn prune_journal(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        crate::journal::prune(&self.pool, before).await
    }

    async fn try_lead(&self) -> Result<Option<Box<dyn Lead>>, StoreError> {
        crate::journal::try_lead(&self.pool).await
    }

    async fn kpi_cells(
        &self,
        grain: Grain,
        from_bucket: i64,
        to_bucket: i64,
    ) -> Result<Vec<(CellKey, Kpis)>, StoreError> {
        let rows: Vec<rows::CellRow> = sqlx::query_as(
            "SELECT grain, bucket, artist, city, genre, live_event, plays, votes, attendance, revenue_minor, \
             revenue_entries, engagement_tenths FROM kpi_cells WHERE grain = $1 AND bucket >= $2 AND bucket < $3",
        )
        .bind(grain.code())
        .bind(from_bucket)
        .bind(to_bucket)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.into_iter().map(rows::cell).collect()
    }

    async fn first_bucket(&self, grain: Grain) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(FIRST_BUCKET)
            .bind(grain.code())
            .fetch_one(&self.pool)
            .await
            .map_err(classify)
    }

    async fn sum_cells_by_artist(
        &self,
        grain: Grain,
        from: i64,
        to: i64,
        filter: &CellFilter,
    ) -> Result<Vec<(String, Kpis)>, StoreError> {
        let (sql, values) = filter.sum_statement(SumsBy::Artist, to.saturating_sub(from), SUMS, "kpi_cells");
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(grain.code())
            .bind(from)
            .bind(to);
        for value in values {
            query = query.bind(value);
        }
        let rows: Vec<rows::SumsRow<String>> = query.fetch_all(&self.pool).await.map_err(classify)?;
        Ok(rows.into_iter().map(rows::grouped).collect())
    }

    async fn sum_cells_by_bucket(
        &self,
        grain: Grain,
        from: i64,
        to: i64,
        filter: &CellFilter,
    ) -> Result<Vec<(i64, Kpis)>, StoreError> {
        let (sql, values) = filter.sum_statement(SumsBy::Bucket, to.saturating_sub(from), SUMS, "kpi_cells");
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(grain.code())
            .bind(from)
            .bind(to);
        for value in values {
            query = query.bind(value);
        }
        let rows: Vec<rows::SumsRow<i64>> = query.fetch_all(&self.pool).await.map_err(classify)?;
        Ok(rows.into_iter().map(rows::grouped).collect())
    }

    async fn fan_days(&self, from_day: i64, to_day: i64) -> Result<Vec<(FanDayKey, FanDay)>, StoreError> {
        let rows: Vec<rows::FanDayRow> = sqlx::query_as(
            "SELECT day, artist, fan, city, genre, passive, light, active, committed, patron, influence \
             FROM fan_days WHERE day >= $1 AND day < $2",
        )
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        Ok(rows.into_iter().map(rows::fan_day).collect())
    }
}

#[async_trait]
impl DeadLetters for PostgresStore {
    async fn dead_letters(
        &self,
        after: i64,
        limit: u32,
        include_replayed: bool,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let rows: Vec<DeadLetterRow> = sqlx::query_as(
            "SELECT seq, event_id, reason, attempts, state, first_failed_at, last_failed_at, next_attempt_at \
             FROM dead_letters WHERE seq > $1 AND ($2 OR state <> 'replayed') ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(include_replayed)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.into_iter().map(dead_letter_from_row).collect()
    }

    async fn newest_dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        let rows: Vec<DeadLetterRow> = sqlx::query_as(
            "SELECT seq, event_id, reason, attempts, state, first_failed_at, last_failed_at, next_attempt_at \
             FROM dead_letters WHERE state <> 'replayed' ORDER BY seq DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.into_iter().map(dead_letter_from_row).collect()
    }

    async fn open_dead_letters(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM dead_letters WHERE state <> 'replayed'")
            .fetch_one(&self.pool)
            .await
            .map_err(classify)
    }

    async fn due_dead_letters(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<(DeadLetter, StoredEntry)>, StoreError> {
        let rows: Vec<DeadLetterRow> = sqlx::query_as(
            "SELECT seq, event_id, reason, attempts, state, first_failed_at, last_failed_at, next_attempt_at \
             FROM dead_letters WHERE state = 'retrying' AND next_attempt_at <= $1 ORDER BY seq LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        let mut due = Vec::with_capacity(rows.len());
        for row in rows {
            let letter = dead_letter_from_row(row)?;
            let entry: Option<EntryRow> = sqlx::query_as(
                "SELECT seq, event_id, entry_type, recognized, ts, received_at, user_id, artist_id, live_event_id, \
                 city, genre, envelope FROM passport_entries WHERE seq = $1",
            )
            .bind(letter.seq)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
            // An entry gone from the log (retention, erasure) has nothing left to replay.
            if let Some(entry) = entry {
                due.push((letter, stored_entry(entry)));
            }
        }
        Ok(due)
    }

    async fn replay_dead_letters(
        &self,
        seq: Option<i64>,
        now: OffsetDateTime,
        audit: AuditOf<'_, u64>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let result = sqlx::query(
            "UPDATE dead_letters SET state = 'retrying', attempts = 0, next_attempt_at = $1 \
             WHERE state <> 'replayed' AND ($2::bigint IS NULL OR seq = $2)",
        )
        .bind(now)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        let replayed = result.rows_affected();
        crate::identity::write_audit(&mut tx, audit(&replayed).as_slice()).await?;
        tx.commit().await.map_err(classify)?;
        Ok(replayed)
    }
}

#[async_trait]
impl Rebuilds for PostgresStore {
    async fn reset_derived(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        for statement in [
            "TRUNCATE kpi_cells, fan_days, dead_letters, display_names, applied_batches",
            "UPDATE pipeline_state SET processed_seq = 0, revenue_gross = 0 WHERE id = 1",
        ] {
            sqlx::query(statement).execute(&mut *tx).await.map_err(classify)?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    async fn load_derived(
        &self,
        to_seq: i64,
        revenue_gross: i64,
        mut parts: Receiver<DerivedPart>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        move_cursor(&mut tx, 0, to_seq, revenue_gross).await?;
        while let Some(part) = parts.recv().await {
            match part {
                DerivedPart::Cells(cells) => {
                    copy::copy_in(&mut tx, copy::COPY_CELLS, copy::encode_cells(&cells)).await?;
                }
                DerivedPart::FanDays(days) => {
                    copy::copy_in(&mut tx, copy::COPY_FAN_DAYS, copy::encode_fan_days(&days)).await?;
                }
                DerivedPart::DeadLetters(letters) => write_dead_letters(&mut tx, &letters).await?,
                DerivedPart::Names(names) => upsert_display_names(&mut tx, &names).await?,
                DerivedPart::End => return tx.commit().await.map_err(classify),
            }
        }
        Err(StoreError::Internal(
            "the rebuild stopped before all its rows were sent".to_owned(),
        ))
    }
}

#[async_trait]
impl DnaHistory for PostgresStore {
    async fn record_mutations(&self, mutations: &[DnaMutation]) -> Result<(), StoreError> {
        if mutations.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO dna_mutations (artist, domain, range, old, new, at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::timestamptz[])",
        )
        .bind(column(mutations, |m| m.artist.as_str()))
        .bind(column(mutations, |m| m.domain.as_str()))
        .bind(column(mutations, |m| m.range.as_str()))
        .bind(column(mutations, |m| m.old))
        .bind(column(mutations, |m| m.new))
        .bind(column(mutations, |m| m.at))
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn mutations_of(
        &self,
        domain: &str,
        range: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<DnaMutation>, StoreError> {
        let rows: Vec<(String, String, String, f64, f64, OffsetDateTime)> = sqlx::query_as(
            "SELECT artist, domain, range, old, new, at FROM dna_mutations \
             WHERE domain = $1 AND range = $2 AND at >= $3 AND at <= $4 ORDER BY at, id",
        )
        .bind(domain)
        .bind(range)
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|(artist, domain, range, old, new, at)| DnaMutation {
                artist,
                domain,
                range,
                old,
                new,
                at,
            })
            .collect())
    }

    async fn prune_mutations(
        &self,
        domain: &str,
        range: &str,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM dna_mutations WHERE id IN (SELECT id FROM dna_mutations \
             WHERE domain = $1 AND range = $2 AND at < $3 ORDER BY at LIMIT $4)",
        )
        .bind(domain)
        .bind(range)
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(deleted.rows_affected())
    }
}

#[async_trait]
impl DisplayNamesStore for PostgresStore {
    async fn display_names(&self) -> Result<Vec<DisplayName>, StoreError> {
        let rows: Vec<rows::DisplayNameRow> = sqlx::query_as(rows::SELECT_DISPLAY_NAMES)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.into_iter().map(rows::display_name).collect()
    }
}

//! The derived tables on SQLite: rollup cells and fan-days added to with
//! multi-row upserts, the cursor moved in the same transaction.

use async_trait::async_trait;
use coliseum_domain::kpi::Kpis;
use coliseum_store::{
    AuditOf, AuditRecord, CellFilter, CellKey, DeadLetter, DeadLetters, DerivedPart, DisplayName, DisplayNamesStore,
    DnaHistory, DnaMutation, FIRST_BUCKET, FanDay, FanDayKey, Grain, MOVE_CURSOR, PipelineState, ProcessedBatch,
    Rebuilds, Rollups, StoreError, StoredEntry, SumsBy, cursor_moved, rows,
};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use time::OffsetDateTime;
use tokio::sync::mpsc::Receiver;

use crate::{EntryRow, SqliteStore, classify, from_micros, micros, stored_entry};

/// The six sums of a read of cells, as this backend selects them.
const SUMS: &str =
    "sum(plays), sum(votes), sum(attendance), sum(revenue_minor), sum(revenue_entries), sum(engagement_tenths)";

/// 12 parameters a cell, 11 a fan-day: far below SQLite's 32,766 a statement.
const ROWS_PER_UPSERT: usize = 1000;

type DeadLetterRow = (i64, String, String, i32, String, i64, i64, Option<i64>);

fn dead_letter_from_row(row: DeadLetterRow) -> Result<DeadLetter, StoreError> {
    let (seq, event_id, reason, attempts, state, first_us, last_us, next_us) = row;
    Ok(DeadLetter {
        seq,
        event_id,
        reason,
        attempts,
        state: rows::dead_letter_state(&state)?,
        first_failed_at: from_micros(first_us)?,
        last_failed_at: from_micros(last_us)?,
        next_attempt_at: next_us.map(from_micros).transpose()?,
    })
}

/// Adds `cells` to the rollups (created where missing).
async fn upsert_cells(tx: &mut Transaction<'_, Sqlite>, cells: &[(CellKey, Kpis)]) -> Result<(), StoreError> {
    for chunk in cells.chunks(ROWS_PER_UPSERT) {
        let mut upsert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO kpi_cells (grain, bucket, artist, city, genre, live_event, plays, votes, attendance, \
             revenue_minor, revenue_entries, engagement_tenths) ",
        );
        upsert.push_values(chunk, |mut row, (key, kpis)| {
            row.push_bind(key.grain.code())
                .push_bind(key.bucket)
                .push_bind(&key.artist)
                .push_bind(&key.city)
                .push_bind(&key.genre)
                .push_bind(&key.live_event)
                .push_bind(kpis.plays)
                .push_bind(kpis.votes)
                .push_bind(kpis.attendance)
                .push_bind(kpis.revenue_minor)
                .push_bind(kpis.revenue_entries)
                .push_bind(kpis.engagement_tenths);
        });
        upsert.push(
            " ON CONFLICT (grain, bucket, artist, city, genre, live_event) DO UPDATE SET \
             plays = plays + excluded.plays, votes = votes + excluded.votes, \
             attendance = attendance + excluded.attendance, revenue_minor = revenue_minor + excluded.revenue_minor, \
             revenue_entries = revenue_entries + excluded.revenue_entries, \
             engagement_tenths = engagement_tenths + excluded.engagement_tenths",
        );
        upsert.build().execute(&mut **tx).await.map_err(classify)?;
    }
    Ok(())
}

/// Adds `fan_days` to the fan-days (created where missing).
async fn upsert_fan_days(tx: &mut Transaction<'_, Sqlite>, fan_days: &[(FanDayKey, FanDay)]) -> Result<(), StoreError> {
    for chunk in fan_days.chunks(ROWS_PER_UPSERT) {
        let mut upsert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO fan_days (day, artist, fan, city, genre, passive, light, active, committed, patron, \
             influence) ",
        );
        upsert.push_values(chunk, |mut row, (key, counts)| {
            row.push_bind(key.day)
                .push_bind(&key.artist)
                .push_bind(&key.fan)
                .push_bind(&key.city)
                .push_bind(&key.genre);
            for count in counts.by_tier {
                row.push_bind(count);
            }
            row.push_bind(counts.influence);
        });
        upsert.push(
            " ON CONFLICT (day, artist, fan, city, genre) DO UPDATE SET \
             passive = passive + excluded.passive, light = light + excluded.light, \
             active = active + excluded.active, committed = committed + excluded.committed, \
             patron = patron + excluded.patron, influence = influence + excluded.influence",
        );
        upsert.build().execute(&mut **tx).await.map_err(classify)?;
    }
    Ok(())
}

/// Writes dead letters as given, replacing those with the same `seq`.
async fn write_dead_letters(tx: &mut Transaction<'_, Sqlite>, letters: &[DeadLetter]) -> Result<(), StoreError> {
    for letter in letters {
        sqlx::query(
            "INSERT OR REPLACE INTO dead_letters (seq, event_id, reason, attempts, state, first_failed_us, \
             last_failed_us, next_attempt_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(letter.seq)
        .bind(&letter.event_id)
        .bind(&letter.reason)
        .bind(letter.attempts)
        .bind(letter.state.as_str())
        .bind(micros(letter.first_failed_at))
        .bind(micros(letter.last_failed_at))
        .bind(letter.next_attempt_at.map(micros))
        .execute(&mut **tx)
        .await
        .map_err(classify)?;
    }
    Ok(())
}

/// Moves the cursor from `from` to `to` and adds `revenue_gross` to the
/// absolute revenue counted; `Conflict` when the cursor is not at `from`.
async fn move_cursor(
    tx: &mut Transaction<'_, Sqlite>,
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

coliseum_store::upsert_display_names_for!(Sqlite);

#[async_trait]
impl Rollups for SqliteStore {
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

    async fn apply_batch(&self, batch: &ProcessedBatch, _as_of: OffsetDateTime) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let number = move_cursor(&mut tx, batch.from_seq, batch.to_seq, batch.revenue_gross).await?;
        upsert_cells(&mut tx, &batch.cells).await?;
        upsert_fan_days(&mut tx, &batch.fan_days).await?;
        write_dead_letters(&mut tx, &batch.dead_letters).await?;
        upsert_display_names(&mut tx, &batch.names).await?;
        tx.commit().await.map_err(classify)?;
        Ok(number)
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
        let (sql, values) = filter.sum_statement(SumsBy::Artist, to.saturating_sub(from), SUMS, &indexed(filter));
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
        let (sql, values) = filter.sum_statement(SumsBy::Bucket, to.saturating_sub(from), SUMS, &indexed(filter));
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
impl DeadLetters for SqliteStore {
    async fn dead_letters(
        &self,
        after: i64,
        limit: u32,
        include_replayed: bool,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let rows: Vec<DeadLetterRow> = sqlx::query_as(
            "SELECT seq, event_id, reason, attempts, state, first_failed_us, last_failed_us, next_attempt_us \
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
            "SELECT seq, event_id, reason, attempts, state, first_failed_us, last_failed_us, next_attempt_us \
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
            "SELECT seq, event_id, reason, attempts, state, first_failed_us, last_failed_us, next_attempt_us \
             FROM dead_letters WHERE state = 'retrying' AND next_attempt_us <= $1 ORDER BY seq LIMIT $2",
        )
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        let mut due = Vec::with_capacity(rows.len());
        for row in rows {
            let letter = dead_letter_from_row(row)?;
            let entry: Option<EntryRow> = sqlx::query_as(
                "SELECT seq, event_id, entry_type, recognized, ts_us, received_us, user_id, artist_id, \
                 live_event_id, city, genre, envelope FROM passport_entries WHERE seq = $1",
            )
            .bind(letter.seq)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
            // An entry gone from the log (retention, erasure) has nothing left to replay.
            if let Some(entry) = entry {
                due.push((letter, stored_entry(entry)?));
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
            "UPDATE dead_letters SET state = 'retrying', attempts = 0, next_attempt_us = $1 \
             WHERE state <> 'replayed' AND ($2 IS NULL OR seq = $2)",
        )
        .bind(micros(now))
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
impl Rebuilds for SqliteStore {
    async fn reset_derived(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        for statement in [
            "DELETE FROM kpi_cells",
            "DELETE FROM fan_days",
            "DELETE FROM dead_letters",
            "DELETE FROM display_names",
            "UPDATE pipeline_state SET processed_seq = 0, revenue_gross = 0 WHERE id = 1",
        ] {
            sqlx::query(statement).execute(&mut *tx).await.map_err(classify)?;
        }
        tx.commit().await.map_err(classify)
    }

    async fn load_derived(
        &self,
        to_seq: i64,
        revenue_gross: i64,
        mut parts: Receiver<DerivedPart>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        move_cursor(&mut tx, 0, to_seq, revenue_gross).await?;
        // Keys are unique, so the upserts only ever insert: SQLite has no
        // faster bulk path than its prepared multi-row INSERT.
        while let Some(part) = parts.recv().await {
            match part {
                DerivedPart::Cells(cells) => upsert_cells(&mut tx, &cells).await?,
                DerivedPart::FanDays(fan_days) => upsert_fan_days(&mut tx, &fan_days).await?,
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
impl DnaHistory for SqliteStore {
    async fn record_mutations(&self, mutations: &[DnaMutation]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        for m in mutations {
            sqlx::query(
                "INSERT INTO dna_mutations (artist, domain, range, old, new, at_us) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&m.artist)
            .bind(&m.domain)
            .bind(&m.range)
            .bind(m.old)
            .bind(m.new)
            .bind(micros(m.at))
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        }
        tx.commit().await.map_err(classify)
    }

    async fn mutations_of(
        &self,
        domain: &str,
        range: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<DnaMutation>, StoreError> {
        let rows: Vec<(String, String, String, f64, f64, i64)> = sqlx::query_as(
            "SELECT artist, domain, range, old, new, at_us FROM dna_mutations \
             WHERE domain = $1 AND range = $2 AND at_us >= $3 AND at_us <= $4 ORDER BY at_us, id",
        )
        .bind(domain)
        .bind(range)
        .bind(micros(since))
        .bind(micros(until))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.into_iter()
            .map(|(artist, domain, range, old, new, at_us)| {
                Ok(DnaMutation {
                    artist,
                    domain,
                    range,
                    old,
                    new,
                    at: from_micros(at_us)?,
                })
            })
            .collect()
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
             WHERE domain = $1 AND range = $2 AND at_us < $3 ORDER BY at_us LIMIT $4)",
        )
        .bind(domain)
        .bind(range)
        .bind(micros(before))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(deleted.rows_affected())
    }
}

#[async_trait]
impl DisplayNamesStore for SqliteStore {
    async fn display_names(&self) -> Result<Vec<DisplayName>, StoreError> {
        let rows: Vec<rows::DisplayNameRow> = sqlx::query_as(rows::SELECT_DISPLAY_NAMES)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.into_iter().map(rows::display_name).collect()
    }
}

/// `kpi_cells`, with the index a filtered read should take named.
fn indexed(filter: &CellFilter) -> String {
    match filter.index() {
        Some(index) => format!("kpi_cells INDEXED BY {index}"),
        None => "kpi_cells".to_owned(),
    }
}

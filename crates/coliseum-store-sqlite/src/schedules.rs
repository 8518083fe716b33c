//! Scheduled reports and their deliveries (`ReportSchedules`).

use async_trait::async_trait;
use coliseum_store::{
    AuditRecord, DeliveryRecord, NewDelivery, NewSchedule, ReportSchedules, ScheduleAfter, ScheduleRecord, StoreError,
};
use time::OffsetDateTime;

use crate::identity::write_audit;
use crate::{SqliteStore, classify, from_micros, micros};

const COLUMNS: &str = "id, user_id, template, format, params, every, at_minute, weekday, day, recipients, deliver, \
     only_if_changed, created_us, next_us, attempts, pending_report_id, last_digest";

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    user_id: i64,
    template: String,
    format: String,
    params: String,
    every: String,
    at_minute: i32,
    weekday: Option<i32>,
    day: Option<i32>,
    recipients: String,
    deliver: String,
    only_if_changed: bool,
    created_us: i64,
    next_us: i64,
    attempts: i32,
    pending_report_id: Option<String>,
    last_digest: Option<String>,
}

fn record(row: Row) -> Result<ScheduleRecord, StoreError> {
    Ok(ScheduleRecord {
        id: row.id,
        schedule: NewSchedule {
            user_id: row.user_id,
            template: row.template,
            format: row.format,
            params: row.params,
            every: row.every,
            at_minute: row.at_minute,
            weekday: row.weekday,
            day: row.day,
            recipients: serde_json::from_str(&row.recipients)
                .map_err(|e| StoreError::Internal(format!("a schedule's recipients: {e}")))?,
            deliver: row.deliver,
            only_if_changed: row.only_if_changed,
            created_at: from_micros(row.created_us)?,
            next_at: from_micros(row.next_us)?,
        },
        attempts: row.attempts,
        pending_report_id: row.pending_report_id,
        last_digest: row.last_digest,
    })
}

fn recipients_json(recipients: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(recipients).map_err(|e| StoreError::Internal(e.to_string()))
}

#[async_trait]
impl ReportSchedules for SqliteStore {
    async fn create_schedule(
        &self,
        new: &NewSchedule,
        max: u32,
        audit: &AuditRecord,
    ) -> Result<ScheduleRecord, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let sql = format!(
            "INSERT INTO report_schedules (user_id, template, format, params, every, at_minute, weekday, day, \
             recipients, deliver, only_if_changed, created_us, next_us) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 \
             WHERE (SELECT count(*) FROM report_schedules WHERE user_id = $1) < $14 RETURNING {COLUMNS}"
        );
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(new.user_id)
            .bind(&new.template)
            .bind(&new.format)
            .bind(&new.params)
            .bind(&new.every)
            .bind(new.at_minute)
            .bind(new.weekday)
            .bind(new.day)
            .bind(recipients_json(&new.recipients)?)
            .bind(&new.deliver)
            .bind(new.only_if_changed)
            .bind(micros(new.created_at))
            .bind(micros(new.next_at))
            .bind(i64::from(max))
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        let row = row.ok_or_else(|| {
            StoreError::LimitReached(format!(
                "an account has at most {max} report schedules; delete one first"
            ))
        })?;
        write_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(classify)?;
        record(row)
    }

    async fn schedules_of(&self, user_id: i64) -> Result<Vec<ScheduleRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM report_schedules WHERE user_id = $1 ORDER BY id");
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.into_iter().map(record).collect()
    }

    async fn delete_schedule(&self, user_id: i64, id: i64, audit: &AuditRecord) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let deleted = sqlx::query("DELETE FROM report_schedules WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?
            .rows_affected()
            > 0;
        if deleted {
            write_audit(&mut tx, std::slice::from_ref(audit)).await?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(deleted)
    }

    async fn claim_due_schedule(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        // One statement under SQLite's one write lock: two claims never
        // take the same schedule.
        let sql = format!(
            "UPDATE report_schedules SET next_us = $2 WHERE id = \
             (SELECT id FROM report_schedules WHERE next_us <= $1 ORDER BY next_us, id LIMIT 1) \
             RETURNING {COLUMNS}"
        );
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(micros(now))
            .bind(micros(lease_until))
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        row.map(record).transpose()
    }

    async fn record_delivery(&self, delivery: &NewDelivery, after: &ScheduleAfter) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        sqlx::query(
            "INSERT INTO report_deliveries (schedule_id, at_us, status, attempt, report_id, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(delivery.schedule_id)
        .bind(micros(delivery.at))
        .bind(&delivery.status)
        .bind(delivery.attempt)
        .bind(&delivery.report_id)
        .bind(&delivery.detail)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        sqlx::query(
            "UPDATE report_schedules SET next_us = $2, attempts = $3, pending_report_id = $4, \
             last_digest = coalesce($5, last_digest) WHERE id = $1",
        )
        .bind(delivery.schedule_id)
        .bind(micros(after.next_at))
        .bind(after.attempts)
        .bind(&after.pending_report_id)
        .bind(&after.last_digest)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)
    }

    async fn deliveries(&self, schedule_id: i64, limit: u32) -> Result<Vec<DeliveryRecord>, StoreError> {
        type DeliveryRow = (i64, i64, i64, String, i32, Option<String>, Option<String>);
        let rows: Vec<DeliveryRow> = sqlx::query_as(
            "SELECT id, schedule_id, at_us, status, attempt, report_id, detail FROM report_deliveries \
             WHERE schedule_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(schedule_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.into_iter()
            .map(|(id, schedule_id, at, status, attempt, report_id, detail)| {
                Ok(DeliveryRecord {
                    id,
                    delivery: NewDelivery {
                        schedule_id,
                        at: from_micros(at)?,
                        status,
                        attempt,
                        report_id,
                        detail,
                    },
                })
            })
            .collect()
    }
}

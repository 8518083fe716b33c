//! Alert rules, their evaluation lease and their notifications (`Alerts`).

use async_trait::async_trait;
use coliseum_store::{Alerts, AuditRecord, NewNotification, NotificationRecord, StoreError, StoredAlertRule};
use time::OffsetDateTime;

use crate::identity::write_audit;
use crate::{SqliteStore, classify, from_micros, micros};

const COLUMNS: &str = "id, key, rule, kind, route, status, attempts, at_us, detail, error";

type NotificationRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    i32,
    i64,
    String,
    Option<String>,
);

fn notification(row: NotificationRow) -> Result<NotificationRecord, StoreError> {
    let (id, key, rule, kind, route, status, attempts, at_us, detail, error) = row;
    Ok(NotificationRecord {
        id,
        notification: NewNotification {
            key,
            rule,
            kind,
            route,
            status: status.clone(),
            at: from_micros(at_us)?,
            detail,
        },
        status,
        attempts,
        error,
    })
}

#[async_trait]
impl Alerts for SqliteStore {
    async fn alert_rules(&self) -> Result<Vec<StoredAlertRule>, StoreError> {
        let rows: Vec<(String, Option<String>, Option<String>, i64)> =
            sqlx::query_as("SELECT rule, config, state, version FROM alert_rules ORDER BY rule")
                .fetch_all(&self.pool)
                .await
                .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|(rule, config, state, version)| StoredAlertRule {
                rule,
                config,
                state,
                version,
            })
            .collect())
    }

    async fn save_alert_config(&self, rule: &str, config: &str, audit: &AuditRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        sqlx::query(
            "INSERT INTO alert_rules (rule, config, version) VALUES ($1, $2, 1) \
             ON CONFLICT (rule) DO UPDATE SET config = excluded.config, version = alert_rules.version + 1",
        )
        .bind(rule)
        .bind(config)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        write_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(classify)
    }

    async fn claim_alert_lease(
        &self,
        owner: &str,
        leads: bool,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let held: Option<String> = sqlx::query_scalar(
            "INSERT INTO alert_lease (id, owner, owner_leads, until_us) VALUES (1, $1, $2, $4) \
             ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, owner_leads = excluded.owner_leads, \
             until_us = excluded.until_us \
             WHERE alert_lease.owner = excluded.owner OR alert_lease.until_us < $3 \
             OR (excluded.owner_leads AND NOT alert_lease.owner_leads) \
             RETURNING owner",
        )
        .bind(owner)
        .bind(leads)
        .bind(micros(now))
        .bind(micros(until))
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        Ok(held.is_some())
    }

    async fn commit_alert_evaluation(
        &self,
        rule: &str,
        version: i64,
        state: &str,
        notifications: &[NewNotification],
    ) -> Result<Option<Vec<Option<i64>>>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let written = sqlx::query(
            "INSERT INTO alert_rules (rule, state, version) VALUES ($1, $2, 1) \
             ON CONFLICT (rule) DO UPDATE SET state = excluded.state, version = alert_rules.version + 1 \
             WHERE alert_rules.version = $3",
        )
        .bind(rule)
        .bind(state)
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(classify)?
        .rows_affected();
        if written != 1 {
            return Ok(None);
        }
        let mut ids = Vec::with_capacity(notifications.len());
        for new in notifications {
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO alert_notifications (key, rule, kind, route, status, at_us, taken_us, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT (key) DO NOTHING RETURNING id",
            )
            .bind(&new.key)
            .bind(&new.rule)
            .bind(&new.kind)
            .bind(&new.route)
            .bind(&new.status)
            .bind(micros(new.at))
            .bind(&new.detail)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
            ids.push(id);
        }
        tx.commit().await.map_err(classify)?;
        Ok(Some(ids))
    }

    async fn finish_notification(
        &self,
        id: i64,
        status: &str,
        attempts: i32,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE alert_notifications SET status = $2, attempts = $3, error = $4 WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(attempts)
            .bind(error)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn retake_stale_notifications(
        &self,
        stale: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let sql = format!(
            "UPDATE alert_notifications SET taken_us = $2 WHERE id IN \
             (SELECT id FROM alert_notifications WHERE status = 'sending' AND taken_us < $1 ORDER BY id LIMIT $3) \
             RETURNING {COLUMNS}"
        );
        let rows: Vec<NotificationRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(micros(stale))
            .bind(micros(now))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.into_iter().map(notification).collect()
    }

    async fn notifications(&self, before: Option<i64>, limit: u32) -> Result<Vec<NotificationRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM alert_notifications WHERE id < $1 ORDER BY id DESC LIMIT $2");
        let rows: Vec<NotificationRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.into_iter().map(notification).collect()
    }
}

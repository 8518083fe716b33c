//! Alert rules and their notifications (`Alerts`).

use async_trait::async_trait;
use coliseum_store::{Alerts, AuditRecord, NewNotification, NotificationRecord, StoreError, StoredAlertRule};

use crate::identity::write_audit;
use crate::{PostgresStore, classify};

type NotificationRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    i32,
    time::OffsetDateTime,
    String,
    Option<String>,
);

fn notification(row: NotificationRow) -> Result<NotificationRecord, StoreError> {
    let (id, key, rule, kind, route, status, attempts, at, detail, error) = row;
    Ok(NotificationRecord {
        id,
        notification: NewNotification {
            key,
            rule,
            kind,
            route,
            status: status.clone(),
            at,
            detail,
        },
        status,
        attempts,
        error,
    })
}

#[async_trait]
impl Alerts for PostgresStore {
    async fn alert_rules(&self) -> Result<Vec<StoredAlertRule>, StoreError> {
        let rows: Vec<(String, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT rule, config, state FROM alert_rules ORDER BY rule")
                .fetch_all(&self.pool)
                .await
                .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|(rule, config, state)| StoredAlertRule { rule, config, state })
            .collect())
    }

    async fn save_alert_config(&self, rule: &str, config: &str, audit: &AuditRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        sqlx::query(
            "INSERT INTO alert_rules (rule, config) VALUES ($1, $2) \
             ON CONFLICT (rule) DO UPDATE SET config = excluded.config",
        )
        .bind(rule)
        .bind(config)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        write_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(classify)
    }

    async fn save_alert_state(&self, rule: &str, state: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO alert_rules (rule, state) VALUES ($1, $2) \
             ON CONFLICT (rule) DO UPDATE SET state = excluded.state",
        )
        .bind(rule)
        .bind(state)
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn claim_notification(&self, new: &NewNotification) -> Result<Option<i64>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO alert_notifications (key, rule, kind, route, status, at, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING RETURNING id",
        )
        .bind(&new.key)
        .bind(&new.rule)
        .bind(&new.kind)
        .bind(&new.route)
        .bind(&new.status)
        .bind(new.at)
        .bind(&new.detail)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        Ok(id)
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

    async fn notifications(&self, before: Option<i64>, limit: u32) -> Result<Vec<NotificationRecord>, StoreError> {
        let rows: Vec<NotificationRow> = sqlx::query_as(
            "SELECT id, key, rule, kind, route, status, attempts, at, detail, error FROM alert_notifications \
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.into_iter().map(notification).collect()
    }
}

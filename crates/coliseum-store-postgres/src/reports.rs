//! Reports, share links and their views (`Reports`).

use async_trait::async_trait;
use coliseum_store::{
    AuditRecord, NewReport, NewShare, ReportBrand, ReportQuota, ReportRecord, Reports, ShareEnd, ShareRecord,
    ShareView, StoreError,
};
use time::OffsetDateTime;

use crate::identity::write_audit;
use crate::{PostgresStore, classify};

const REPORT_COLUMNS: &str = "id, user_id, template, format, params, created_at, size_bytes, watermark";

type ReportRow = (
    String,
    i64,
    String,
    String,
    String,
    OffsetDateTime,
    Option<i64>,
    Option<i64>,
);

fn report(row: ReportRow) -> Result<ReportRecord, StoreError> {
    Ok(ReportRecord {
        id: row.0,
        user_id: row.1,
        template: row.2,
        format: row.3,
        params: row.4,
        created_at: row.5,
        size_bytes: row.6,
        watermark: row.7,
    })
}

const SHARE_COLUMNS: &str =
    "id, token, report_id, user_id, password_hash, created_at, expires_at, ended_at, ended_reason, views";

type ShareRow = (
    i64,
    String,
    String,
    i64,
    Option<String>,
    OffsetDateTime,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    Option<String>,
    i64,
);

fn share(row: ShareRow) -> Result<ShareRecord, StoreError> {
    let ended = match (row.7, row.8.as_deref().and_then(ShareEnd::parse)) {
        (Some(at), Some(end)) => Some((at, end)),
        _ => None,
    };
    Ok(ShareRecord {
        id: row.0,
        token: row.1,
        report_id: row.2,
        user_id: row.3,
        password_hash: row.4,
        created_at: row.5,
        expires_at: row.6,
        ended,
        views: row.9,
    })
}

impl PostgresStore {
    async fn share_with_token(
        connection: &mut sqlx::PgConnection,
        token: &str,
    ) -> Result<Option<ShareRecord>, StoreError> {
        let sql = format!("SELECT {SHARE_COLUMNS} FROM shares WHERE token = $1");
        let row: Option<ShareRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(token)
            .fetch_optional(connection)
            .await
            .map_err(classify)?;
        row.map(share).transpose()
    }
}

#[async_trait]
impl Reports for PostgresStore {
    async fn reserve_report(
        &self,
        new: &NewReport,
        quota: Option<ReportQuota>,
        audit: &AuditRecord,
    ) -> Result<Option<ReportRecord>, StoreError> {
        // The owner's row is locked while its reports are counted, so that
        // two requests cannot both take the last report of the month.
        let (max, since) = quota.map_or((i64::MAX, OffsetDateTime::UNIX_EPOCH), |q| (i64::from(q.max), q.since));
        let mut tx = self.pool.begin().await.map_err(classify)?;
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
            .bind(new.user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        let sql = format!(
            "INSERT INTO reports (id, user_id, template, format, params, created_at) \
             SELECT $1, $2, $3, $4, $5, $6 \
             WHERE (SELECT count(*) FROM reports WHERE user_id = $2 AND created_at >= $7) < $8 \
             RETURNING {REPORT_COLUMNS}"
        );
        let row: Option<ReportRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&new.id)
            .bind(new.user_id)
            .bind(&new.template)
            .bind(&new.format)
            .bind(&new.params)
            .bind(new.created_at)
            .bind(since)
            .bind(max)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        let Some(row) = row else {
            return Ok(None);
        };
        write_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(classify)?;
        report(row).map(Some)
    }

    async fn complete_report(&self, id: &str, size_bytes: i64, watermark: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE reports SET size_bytes = $2, watermark = $3 WHERE id = $1")
            .bind(id)
            .bind(size_bytes)
            .bind(watermark)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn discard_report(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM reports WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn reports_made_since(&self, user_id: i64, since: OffsetDateTime) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM reports WHERE user_id = $1 AND created_at >= $2")
            .bind(user_id)
            .bind(since)
            .fetch_one(&self.pool)
            .await
            .map_err(classify)
    }

    async fn report(&self, id: &str) -> Result<Option<ReportRecord>, StoreError> {
        let sql = format!("SELECT {REPORT_COLUMNS} FROM reports WHERE id = $1");
        let row: Option<ReportRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        row.map(report).transpose()
    }

    async fn reports_of(&self, user_id: i64, after: Option<&str>, limit: u32) -> Result<Vec<ReportRecord>, StoreError> {
        let sql = format!(
            "SELECT {REPORT_COLUMNS} FROM reports WHERE user_id = $1 AND ($2::TEXT IS NULL OR (created_at, id) < \
             (SELECT created_at, id FROM reports WHERE id = $2 AND user_id = $1)) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        let rows: Vec<ReportRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.into_iter().map(report).collect()
    }

    async fn create_share(&self, new: &NewShare, audit: &AuditRecord) -> Result<ShareRecord, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let sql = format!(
            "INSERT INTO shares (token, report_id, user_id, password_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {SHARE_COLUMNS}"
        );
        let row: ShareRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(&new.token)
            .bind(&new.report_id)
            .bind(new.user_id)
            .bind(&new.password_hash)
            .bind(new.created_at)
            .bind(new.expires_at)
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
        write_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(classify)?;
        share(row)
    }

    async fn share(&self, token: &str) -> Result<Option<ShareRecord>, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(classify)?;
        Self::share_with_token(&mut connection, token).await
    }

    async fn shares_of(&self, user_id: i64) -> Result<Vec<ShareRecord>, StoreError> {
        let sql = format!("SELECT {SHARE_COLUMNS} FROM shares WHERE user_id = $1 ORDER BY id DESC");
        let rows: Vec<ShareRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.into_iter().map(share).collect()
    }

    async fn end_share(
        &self,
        user_id: i64,
        token: &str,
        end: ShareEnd,
        replacement: Option<&str>,
        now: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<Option<ShareRecord>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let sql = format!(
            "UPDATE shares SET ended_at = $3, ended_reason = $4 WHERE token = $1 AND user_id = $2 \
             AND ended_at IS NULL AND (expires_at IS NULL OR expires_at > $3) RETURNING {SHARE_COLUMNS}"
        );
        let row: Option<ShareRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(token)
            .bind(user_id)
            .bind(now)
            .bind(end.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        let Some(ended) = row.map(share).transpose()? else {
            return Ok(None);
        };
        let result = match replacement {
            Some(new_token) => {
                let sql = format!(
                    "INSERT INTO shares (token, report_id, user_id, password_hash, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {SHARE_COLUMNS}"
                );
                let row: ShareRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(new_token)
                    .bind(&ended.report_id)
                    .bind(user_id)
                    .bind(&ended.password_hash)
                    .bind(now)
                    .bind(ended.expires_at)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(classify)?;
                share(row)?
            }
            None => ended,
        };
        write_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(classify)?;
        Ok(Some(result))
    }

    async fn record_share_view(&self, share_id: i64, view: &ShareView) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        sqlx::query("INSERT INTO share_views (share_id, at, address_hash, agent) VALUES ($1, $2, $3, $4)")
            .bind(share_id)
            .bind(view.at)
            .bind(&view.address_hash)
            .bind(&view.agent)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        sqlx::query("UPDATE shares SET views = views + 1 WHERE id = $1")
            .bind(share_id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)
    }

    async fn share_views(&self, share_id: i64, limit: u32) -> Result<Vec<ShareView>, StoreError> {
        let rows: Vec<(OffsetDateTime, String, String)> = sqlx::query_as(
            "SELECT at, address_hash, agent FROM share_views WHERE share_id = $1 \
             ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(share_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.into_iter()
            .map(|(at, address_hash, agent)| {
                Ok(ShareView {
                    at,
                    address_hash,
                    agent,
                })
            })
            .collect()
    }

    async fn report_brand(&self, user_id: i64) -> Result<Option<ReportBrand>, StoreError> {
        let row: Option<(String, String, Option<Vec<u8>>, OffsetDateTime)> =
            sqlx::query_as("SELECT name, accent, logo_png, updated_at FROM report_brands WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(classify)?;
        row.map(|row| {
            Ok(ReportBrand {
                name: row.0,
                accent: row.1,
                logo_png: row.2,
                updated_at: row.3,
            })
        })
        .transpose()
    }

    async fn set_report_brand(
        &self,
        user_id: i64,
        brand: Option<&ReportBrand>,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        match brand {
            Some(brand) => {
                sqlx::query(
                    "INSERT INTO report_brands (user_id, name, accent, logo_png, updated_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, accent = excluded.accent, \
                     logo_png = excluded.logo_png, updated_at = excluded.updated_at",
                )
                .bind(user_id)
                .bind(&brand.name)
                .bind(&brand.accent)
                .bind(&brand.logo_png)
                .bind(brand.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
            }
            None => {
                sqlx::query("DELETE FROM report_brands WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?;
            }
        }
        write_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(classify)
    }
}

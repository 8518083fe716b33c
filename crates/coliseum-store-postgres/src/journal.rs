//! What lets several nodes share one database: the journal of applied
//! batches, which the nodes that do not process follow, and the lead, a
//! session advisory lock held on a connection of its own by the one node
//! that processes. When that node dies its connection closes, the server
//! releases the lock, and another node takes it.

use std::time::Duration;

use async_trait::async_trait;
use coliseum_store::{AppliedBatch, Lead, ProcessedBatch, StoreError};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use crate::classify;

/// The advisory lock of the processing node ("colilead").
const LEAD_LOCK: i64 = 0x636f_6c69_6c65_6164;
/// How often the lead's connection is checked, and how long a check may take.
const LEAD_CHECK_EVERY: Duration = Duration::from_secs(1);
const LEAD_CHECK_WITHIN: Duration = Duration::from_secs(2);

/// Records `batch` as number `number`, in the transaction that applies it.
pub async fn record(
    tx: &mut Transaction<'_, Postgres>,
    number: i64,
    as_of: OffsetDateTime,
    batch: &ProcessedBatch,
) -> Result<(), StoreError> {
    let text =
        serde_json::to_string(batch).map_err(|e| StoreError::Internal(format!("a batch did not serialize: {e}")))?;
    sqlx::query("INSERT INTO applied_batches (number, as_of, batch) VALUES ($1, $2, $3)")
        .bind(number)
        .bind(as_of)
        .bind(text)
        .execute(&mut **tx)
        .await
        .map_err(classify)?;
    Ok(())
}

pub async fn after(pool: &PgPool, after: i64, limit: u32) -> Result<Vec<AppliedBatch>, StoreError> {
    let rows: Vec<(i64, OffsetDateTime, String)> =
        sqlx::query_as("SELECT number, as_of, batch FROM applied_batches WHERE number > $1 ORDER BY number LIMIT $2")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(classify)?;
    rows.into_iter()
        .map(|(number, as_of, text)| {
            let batch = serde_json::from_str(&text)
                .map_err(|e| StoreError::Internal(format!("journaled batch {number} does not read back: {e}")))?;
            Ok(AppliedBatch { number, as_of, batch })
        })
        .collect()
}

pub async fn prune(pool: &PgPool, before: OffsetDateTime) -> Result<u64, StoreError> {
    let pruned = sqlx::query("DELETE FROM applied_batches WHERE recorded_at < $1")
        .bind(before)
        .execute(pool)
        .await
        .map_err(classify)?
        .rows_affected();
    Ok(pruned)
}

/// The lead, if no other node holds it: taken on a connection that leaves
/// the pool, so that it lives exactly as long as this lead.
pub async fn try_lead(pool: &PgPool) -> Result<Option<Box<dyn Lead>>, StoreError> {
    let mut connection = pool.acquire().await.map_err(classify)?.detach();
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEAD_LOCK)
        .fetch_one(&mut connection)
        .await
        .map_err(classify)?;
    if !taken {
        // Closed: a connection out of the pool is not returned to it.
        let _ = connection.close().await;
        return Ok(None);
    }
    Ok(Some(Box::new(AdvisoryLead {
        connection: Some(connection),
    })))
}

#[derive(Debug)]
struct AdvisoryLead {
    /// `None` once found broken.
    connection: Option<PgConnection>,
}

#[async_trait]
impl Lead for AdvisoryLead {
    async fn lost(&mut self) {
        loop {
            let Some(connection) = self.connection.as_mut() else {
                return;
            };
            tokio::time::sleep(LEAD_CHECK_EVERY).await;
            let alive = tokio::time::timeout(LEAD_CHECK_WITHIN, connection.ping()).await;
            if !matches!(alive, Ok(Ok(()))) {
                // The server may already have released the lock to another node.
                tracing::error!("the connection holding the processing lead broke: the lead is lost");
                self.connection = None;
                return;
            }
        }
    }
}

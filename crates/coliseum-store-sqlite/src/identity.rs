//! Accounts beyond passwords on SQLite: signup, external identities, API
//! keys, Stripe plans and the audit log.

use async_trait::async_trait;
use coliseum_domain::plans::{MAX_API_KEYS, Plan};
use coliseum_store::{
    ApiKey, Audit, AuditOf, AuditQuery, AuditRecord, Billing, NewApiKey, NewUser, StoreError, StripeChange,
    StripeOutcome, User,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use time::OffsetDateTime;

use crate::{SqliteStore, UserRow, classify, from_micros, load_user, micros};

type ApiKeyRow = (i64, i64, String, String, i64, Option<i64>);

fn api_key(row: ApiKeyRow) -> Result<ApiKey, StoreError> {
    let (id, user_id, name, prefix, created_us, revoked_us) = row;
    Ok(ApiKey {
        id,
        user_id,
        name,
        prefix,
        created_at: from_micros(created_us)?,
        revoked_at: revoked_us.map(from_micros).transpose()?,
    })
}

const API_KEY_COLUMNS: &str = "id, user_id, name, prefix, created_us, revoked_us";

impl SqliteStore {
    pub(crate) async fn insert_user(
        &self,
        user: &NewUser,
        audit: AuditOf<'_, i64>,
    ) -> Result<Option<User>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let now = micros(OffsetDateTime::now_utc());
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO users (email, password_hash, role, plan, created_us, updated_us) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (email) DO NOTHING RETURNING id",
        )
        .bind(user.email.to_lowercase())
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(user.plan.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?;
        let Some(id) = id else { return Ok(None) };
        crate::replace_links(&mut tx, id, user).await?;
        write_audit(&mut tx, audit(&id).as_slice()).await?;
        tx.commit().await.map_err(classify)?;
        self.find_user("id = $1", id).await
    }

    async fn find_user<T>(&self, condition: &'static str, value: T) -> Result<Option<User>, StoreError>
    where
        T: for<'q> sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + Send,
    {
        let sql = format!("SELECT id, email, role, plan, password_hash FROM users WHERE {condition}");
        let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
        match row {
            Some(row) => Ok(Some(load_user(&self.pool, row).await?)),
            None => Ok(None),
        }
    }

    pub(crate) async fn user_with_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.find_user("id = $1", id).await
    }

    pub(crate) async fn user_for_external(&self, external_id: &str, email: &str) -> Result<User, StoreError> {
        if let Some(user) = self.find_user("external_id = $1", external_id.to_owned()).await? {
            return Ok(user);
        }
        // A new Free fan. Never the existing account with that email: the
        // identity provider's word on an email is no proof of owning the
        // account here (an unconfirmed signup there would take it over).
        // The empty password hash never verifies: such accounts sign in
        // through Supabase only.
        let created: Option<i64> = sqlx::query_scalar(
            "INSERT INTO users (email, password_hash, role, plan, created_us, updated_us, external_id) \
             VALUES ($1, '', 'fan', 'free', $2, $2, $3) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(email.to_lowercase())
        .bind(micros(OffsetDateTime::now_utc()))
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        match created {
            Some(id) => self
                .user_with_id(id)
                .await?
                .ok_or_else(|| StoreError::Internal("a user vanished as it was created".to_owned())),
            // Another request for the same subject just made it, or the email is taken.
            None => self
                .find_user("external_id = $1", external_id.to_owned())
                .await?
                .ok_or_else(|| StoreError::Conflict(format!("{email} belongs to an account of this server"))),
        }
    }

    pub(crate) async fn insert_api_key(
        &self,
        key: &NewApiKey,
        audit: AuditOf<'_, ApiKey>,
    ) -> Result<ApiKey, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        // Counted and inserted in one statement: SQLite has one writer, so
        // two requests cannot both see room for the last key.
        let sql = format!(
            "INSERT INTO api_keys (user_id, name, key_hash, prefix, created_us) \
             SELECT $1, $2, $3, $4, $5 \
             WHERE (SELECT count(*) FROM api_keys WHERE user_id = $1 AND revoked_us IS NULL) < $6 \
             RETURNING {API_KEY_COLUMNS}"
        );
        let row: Option<ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(key.user_id)
            .bind(&key.name)
            .bind(&key.key_hash)
            .bind(&key.prefix)
            .bind(micros(key.created_at))
            .bind(MAX_API_KEYS as i64)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        let created = api_key(row.ok_or_else(StoreError::too_many_api_keys)?)?;
        write_audit(&mut tx, audit(&created).as_slice()).await?;
        tx.commit().await.map_err(classify)?;
        Ok(created)
    }

    pub(crate) async fn keys_of(&self, user_id: i64) -> Result<Vec<ApiKey>, StoreError> {
        let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY id");
        let rows: Vec<ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.into_iter().map(api_key).collect()
    }

    pub(crate) async fn revoke_key(
        &self,
        user_id: i64,
        key_id: i64,
        now: OffsetDateTime,
        audit: AuditOf<'_, ApiKey>,
    ) -> Result<Option<ApiKey>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        // Only a key still in force is revoked (and recorded); revoking it
        // again answers the key as it is, with its first instant.
        let sql = format!(
            "UPDATE api_keys SET revoked_us = $3 WHERE id = $1 AND user_id = $2 AND revoked_us IS NULL \
             RETURNING {API_KEY_COLUMNS}"
        );
        let row: Option<ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(key_id)
            .bind(user_id)
            .bind(micros(now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        let Some(revoked) = row.map(api_key).transpose()? else {
            let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1 AND user_id = $2");
            let row: Option<ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(key_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(classify)?;
            return row.map(api_key).transpose();
        };
        write_audit(&mut tx, audit(&revoked).as_slice()).await?;
        tx.commit().await.map_err(classify)?;
        Ok(Some(revoked))
    }

    pub(crate) async fn key_owner(&self, key_hash: &[u8]) -> Result<Option<(User, i64)>, StoreError> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT id, user_id FROM api_keys WHERE key_hash = $1 AND revoked_us IS NULL")
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(classify)?;
        let Some((key_id, user_id)) = row else { return Ok(None) };
        Ok(self.user_with_id(user_id).await?.map(|user| (user, key_id)))
    }
}

#[async_trait]
impl Billing for SqliteStore {
    async fn record_stripe_event(
        &self,
        change: &StripeChange,
        audit: AuditOf<'_, StripeOutcome>,
    ) -> Result<StripeOutcome, StoreError> {
        // The first statement writes, so the transaction holds SQLite's one
        // write lock from its start: one event at a time.
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let inserted = sqlx::query(
            "INSERT INTO stripe_events (event_id, customer_id, event_order, plan, received_us) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&change.event_id)
        .bind(&change.customer_id)
        .bind(change.order)
        .bind(change.plan.as_ref().map(Plan::as_str))
        .bind(micros(change.received_at))
        .execute(&mut *tx)
        .await
        .map_err(classify)?
        .rows_affected();
        if inserted == 0 {
            return Ok(StripeOutcome::Duplicate);
        }
        if let Some(user_id) = change.link_user {
            // A user id that names nobody links nothing.
            sqlx::query(
                "INSERT INTO stripe_customers (customer_id, user_id) SELECT $1, id FROM users WHERE id = $2 \
                 ON CONFLICT (customer_id) DO UPDATE SET user_id = excluded.user_id",
            )
            .bind(&change.customer_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        }
        let customer: Option<(i64, i64, String)> = sqlx::query_as(
            "SELECT c.user_id, c.applied_order, u.plan FROM stripe_customers c JOIN users u ON u.id = c.user_id \
             WHERE c.customer_id = $1",
        )
        .bind(&change.customer_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?;
        let Some((user_id, applied_order, plan)) = customer else {
            tx.commit().await.map_err(classify)?;
            return Ok(StripeOutcome::Pending);
        };
        let waiting: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT event_order, plan FROM stripe_events WHERE customer_id = $1 AND applied = 0 ORDER BY event_order",
        )
        .bind(&change.customer_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(classify)?;
        let current: Plan = plan
            .parse()
            .map_err(|e| StoreError::Internal(format!("stored plan: {e}")))?;
        let (order, latest) = coliseum_store::latest_plan(applied_order, current, &waiting)?;
        sqlx::query("UPDATE stripe_events SET applied = 1 WHERE customer_id = $1 AND applied = 0")
            .bind(&change.customer_id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        sqlx::query("UPDATE stripe_customers SET applied_order = $2 WHERE customer_id = $1")
            .bind(&change.customer_id)
            .bind(order)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        if latest != current {
            sqlx::query("UPDATE users SET plan = $2, updated_us = $3 WHERE id = $1")
                .bind(user_id)
                .bind(latest.as_str())
                .bind(micros(change.received_at))
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
        }
        let outcome = StripeOutcome::Applied {
            user_id,
            plan: latest,
            changed: latest != current,
        };
        write_audit(&mut tx, audit(&outcome).as_slice()).await?;
        tx.commit().await.map_err(classify)?;
        Ok(outcome)
    }

    async fn stripe_customer(&self, user_id: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT customer_id FROM stripe_customers WHERE user_id = $1 LIMIT 1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)
    }
}

/// Appends audit records on `connection`: inside the transaction of the
/// action they record, or alone.
pub(crate) async fn write_audit(connection: &mut SqliteConnection, records: &[AuditRecord]) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut insert =
        QueryBuilder::<Sqlite>::new("INSERT INTO audit_log (at_us, actor, action, subject, request_id, detail) ");
    insert.push_values(records, |mut row, r| {
        row.push_bind(micros(r.at))
            .push_bind(&r.actor)
            .push_bind(&r.action)
            .push_bind(&r.subject)
            .push_bind(&r.request_id)
            .push_bind(&r.detail);
    });
    insert.build().execute(connection).await.map_err(classify)?;
    Ok(())
}

#[async_trait]
impl Audit for SqliteStore {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let mut connection = self.pool.acquire().await.map_err(classify)?;
        write_audit(&mut connection, records).await
    }

    async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let mut select = QueryBuilder::<Sqlite>::new(
            "SELECT id, at_us, actor, action, subject, request_id, detail FROM audit_log WHERE 1 = 1",
        );
        if let Some(actor) = &query.actor {
            select.push(" AND actor = ").push_bind(actor);
        }
        if let Some(action) = &query.action {
            select.push(" AND action = ").push_bind(action);
        }
        if let Some(subject) = &query.subject {
            select.push(" AND subject = ").push_bind(subject);
        }
        if let Some(since) = query.since {
            select.push(" AND at_us >= ").push_bind(micros(since));
        }
        if let Some(before) = query.before_id {
            select.push(" AND id < ").push_bind(before);
        }
        select
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(query.limit));
        let rows: Vec<(i64, i64, String, String, String, String, String)> =
            select.build_query_as().fetch_all(&self.pool).await.map_err(classify)?;
        rows.into_iter()
            .map(|(id, at_us, actor, action, subject, request_id, detail)| {
                Ok(AuditRecord {
                    id,
                    at: from_micros(at_us)?,
                    actor,
                    action,
                    subject,
                    request_id,
                    detail,
                })
            })
            .collect()
    }
}

//! The PostgreSQL backend (15+, Supabase-compatible): the log partitioned by
//! month, idempotency in an unpartitioned key table, and one writer at a time
//! (a transaction-scoped advisory lock) so that sequence numbers become
//! visible in order even with several nodes.

mod alerts;
mod copy;
mod identity;
mod journal;
mod reports;
mod rollups;
mod schedules;
#[cfg(feature = "testing")]
pub mod testing;
mod unrecognized;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use coliseum_store::{
    Accounts, ApiKey, Appended, AuditOf, AuditRecord, LogStats, NewApiKey, NewEntry, NewSession, NewUser, PassportLog,
    SessionRecord, Store, StoreError, StoredEntry, User, UserCredentials,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use time::{Date, Month, OffsetDateTime};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The advisory lock that serializes appends across every node.
const LOG_WRITER_LOCK: i64 = 0x636f_6c69_7365_756d; // "coliseum"
/// From this many new rows on, log rows go by binary `COPY` rather than one
/// `INSERT … SELECT FROM UNNEST`. `COPY` parses less, but its closing message
/// is a second small write that waits for the server's delayed ACK (about
/// 40 ms, as sqlx leaves Nagle's algorithm on): worth it only for batches
/// large enough to hide the wait, never on the path of single-entry webhooks.
const COPY_MIN_ROWS: usize = 2000;
/// Months of partitions kept ready beyond the current one.
const MONTHS_AHEAD: i32 = 2;

/// The PostgreSQL store.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// Months whose partition is known to exist.
    partitions: Mutex<HashSet<Date>>,
    unrecognized: unrecognized::UnrecognizedTally,
}

impl PostgresStore {
    /// Connects and migrates; creates the partitions of this month and the next ones.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Internal(format!("bad PostgreSQL URL: {e}")))?;
        // No JIT compilation, unless the URL's `options` set it: every
        // statement here reads an index range or a handful of rows, but on
        // the partitioned log (whose parent table autovacuum never
        // analyzes) the planner's cost estimates pass the JIT thresholds,
        // and a count that runs in 0.1 s took 0.3–0.8 s to compile and run
        // idle, on three processes, and up to 8 s on a loaded server
        // (BENCHMARKS.md, twenty-first step). Set after connecting, not as a
        // startup option, which some connection poolers refuse (with
        // session pooling, which the processing lead's advisory lock needs
        // anyway, a session's setting holds).
        let jit_named = options.get_options().is_some_and(sets_jit);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if !jit_named {
                        sqlx::raw_sql("SET jit = off").execute(&mut *connection).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
        let store = Self {
            pool,
            partitions: Mutex::new(HashSet::new()),
            unrecognized: unrecognized::UnrecognizedTally::default(),
        };
        let this_month = first_of_month(OffsetDateTime::now_utc().date());
        let mut months = vec![this_month];
        for _ in 0..MONTHS_AHEAD {
            let last = months[months.len() - 1];
            months.push(next_month(last));
        }
        store.ensure_partitions(months).await?;
        Ok(store)
    }

    /// Creates the monthly partitions that are missing among `months`.
    async fn ensure_partitions(&self, months: impl IntoIterator<Item = Date>) -> Result<(), StoreError> {
        let missing: Vec<Date> = {
            let known = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
            months
                .into_iter()
                .filter(|m| !known.contains(m))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect()
        };
        for month in missing {
            sqlx::query("SELECT coliseum_ensure_month($1)")
                .bind(month)
                .execute(&self.pool)
                .await
                .map_err(classify)?;
            self.partitions.lock().unwrap_or_else(|p| p.into_inner()).insert(month);
        }
        Ok(())
    }
}

/// Whether connection `options` (`-c name=value` or `--name=value`, as
/// libpq passes them) set `jit`.
fn sets_jit(options: &str) -> bool {
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        let setting = match word {
            "-c" => words.next(),
            _ => word.strip_prefix("-c").or_else(|| word.strip_prefix("--")),
        };
        let name = setting.and_then(|s| s.split('=').next()).unwrap_or_default();
        if name.eq_ignore_ascii_case("jit") {
            return true;
        }
    }
    false
}

fn first_of_month(date: Date) -> Date {
    date.replace_day(1).unwrap_or(date)
}

fn next_month(first: Date) -> Date {
    let (year, month) = if first.month() == Month::December {
        (first.year() + 1, Month::January)
    } else {
        (first.year(), first.month().next())
    };
    Date::from_calendar_date(year, month, 1).unwrap_or(first)
}

fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn classify(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(error.to_string()),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // Connection exceptions, shutdown, too many connections, read-only standby.
            Some(code) if code.starts_with("08") || code.starts_with("57P") || code == "53300" || code == "25006" => {
                StoreError::Unavailable(error.to_string())
            }
            _ if db.is_unique_violation() || db.is_foreign_key_violation() => StoreError::Conflict(error.to_string()),
            _ => StoreError::Internal(error.to_string()),
        },
        _ => StoreError::Internal(error.to_string()),
    }
}

type EntryRow = (
    i64,
    String,
    String,
    bool,
    OffsetDateTime,
    OffsetDateTime,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

/// Inserts log rows with one statement: the path of small batches.
async fn insert_log_rows(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    seqs: &[i64],
    fresh: &[&NewEntry],
) -> Result<(), StoreError> {
    let text = |f: fn(&NewEntry) -> Option<&str>| fresh.iter().map(|e| f(e)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO passport_entries (seq, event_id, entry_type, recognized, ts, received_at, user_id, \
                                       artist_id, live_event_id, city, genre, envelope) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bool[], $5::timestamptz[], \
                $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])",
    )
    .bind(seqs)
    .bind(text(|e| Some(e.event_id.as_str())))
    .bind(text(|e| Some(e.entry_type.as_str())))
    .bind(fresh.iter().map(|e| e.recognized).collect::<Vec<_>>())
    .bind(fresh.iter().map(|e| e.timestamp).collect::<Vec<_>>())
    .bind(fresh.iter().map(|e| e.received_at).collect::<Vec<_>>())
    .bind(text(|e| e.user_id.as_deref()))
    .bind(text(|e| e.artist_id.as_deref()))
    .bind(text(|e| e.live_event_id.as_deref()))
    .bind(text(|e| e.city.as_deref()))
    .bind(text(|e| e.genre.as_deref()))
    .bind(text(|e| Some(e.envelope.as_str())))
    .execute(&mut **tx)
    .await
    .map_err(classify)?;
    Ok(())
}

fn stored_entry(row: EntryRow) -> StoredEntry {
    let (
        seq,
        event_id,
        entry_type,
        recognized,
        timestamp,
        received_at,
        user_id,
        artist_id,
        live_event_id,
        city,
        genre,
        envelope,
    ) = row;
    StoredEntry {
        seq,
        entry: NewEntry {
            event_id,
            entry_type,
            recognized,
            timestamp,
            received_at,
            user_id,
            artist_id,
            live_event_id,
            city,
            genre,
            envelope,
        },
    }
}

#[async_trait]
impl PassportLog for PostgresStore {
    /// Two: one append claims its ids while the other holds the writer lock.
    fn concurrent_appends(&self) -> usize {
        2
    }

    async fn append_entries(&self, entries: &[NewEntry]) -> Result<Vec<Appended>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_partitions(entries.iter().map(|e| first_of_month(e.timestamp.date())))
            .await?;
        let mut tx = self.pool.begin().await.map_err(classify)?;
        // Claim the ids before taking the writer lock, so that one append
        // claims while another writes its log rows and commits. Claims go in
        // byte order of id: two appends with ids in common then wait on each
        // other in one direction only, never in a cycle, and a transaction
        // holding the writer lock waits on no row at all.
        let mut claims: Vec<(&str, Date)> = entries
            .iter()
            .map(|e| (e.event_id.as_str(), first_of_month(e.timestamp.date())))
            .collect();
        claims.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let (ids, months): (Vec<&str>, Vec<Date>) = claims.into_iter().unzip();
        let claimed = sqlx::query(
            "INSERT INTO passport_event_ids (event_id, month) SELECT * FROM UNNEST($1::text[], $2::date[]) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&ids)
        .bind(&months)
        .execute(&mut *tx)
        .await
        .map_err(classify)?
        .rows_affected();
        let fresh: Vec<&NewEntry> = if claimed == entries.len() as u64 {
            entries.iter().collect()
        } else if claimed == 0 {
            Vec::new()
        } else {
            // Some were duplicates: the claimed ones are the rows this transaction wrote.
            let mine: Vec<String> = sqlx::query_scalar(
                "SELECT event_id FROM passport_event_ids \
                 WHERE event_id = ANY($1::text[]) AND xmin = pg_current_xact_id()::xid",
            )
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(classify)?;
            let mine: HashSet<&str> = mine.iter().map(String::as_str).collect();
            entries.iter().filter(|e| mine.contains(e.event_id.as_str())).collect()
        };
        let mut accepted: HashMap<&str, i64> = HashMap::with_capacity(fresh.len());
        if !fresh.is_empty() {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(LOG_WRITER_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
            // Under the writer lock nobody else draws from the sequence: reserve
            // a block and number the rows in order, so nothing needs to come back.
            let count = fresh.len() as i64;
            let last: i64 = sqlx::query_scalar("SELECT setval('passport_seq', nextval('passport_seq') + $1 - 1)")
                .bind(count)
                .fetch_one(&mut *tx)
                .await
                .map_err(classify)?;
            let seqs: Vec<i64> = (last - count + 1..=last).collect();
            if fresh.len() >= COPY_MIN_ROWS {
                copy::copy_in(&mut tx, copy::COPY_LOG_ROWS, copy::encode_log_rows(&seqs, &fresh)).await?;
            } else {
                insert_log_rows(&mut tx, &seqs, &fresh).await?;
            }
            accepted.extend(fresh.iter().map(|e| e.event_id.as_str()).zip(seqs));
        }
        tx.commit().await.map_err(classify)?;
        Ok(entries
            .iter()
            .map(|e| {
                accepted
                    .get(e.event_id.as_str())
                    .map_or(Appended::Duplicate, |&seq| Appended::Accepted { seq })
            })
            .collect())
    }

    async fn read_after(&self, after: i64, limit: u32) -> Result<Vec<StoredEntry>, StoreError> {
        let rows: Vec<EntryRow> = sqlx::query_as(
            "SELECT seq, event_id, entry_type, recognized, ts, received_at, user_id, artist_id, live_event_id, \
             city, genre, envelope FROM passport_entries WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        Ok(rows.into_iter().map(stored_entry).collect())
    }

    async fn log_stats(&self) -> Result<LogStats, StoreError> {
        let since = self.unrecognized.since(std::time::Instant::now());
        // One statement, so that the count is of the head it returns.
        let (head_seq, fresh): (i64, i64) = sqlx::query_as(
            "WITH head AS (SELECT COALESCE((SELECT max(seq) FROM passport_entries), 0) AS seq) \
             SELECT head.seq, (SELECT count(*) FROM passport_entries \
             WHERE NOT recognized AND seq > $1 AND seq <= head.seq) FROM head",
        )
        .bind(since.after)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            self.unrecognized.failed(since);
            classify(e)
        })?;
        let unrecognized = self.unrecognized.counted(since, head_seq, fresh);
        Ok(LogStats { head_seq, unrecognized })
    }

    async fn head_seq(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COALESCE((SELECT max(seq) FROM passport_entries), 0)")
            .fetch_one(&self.pool)
            .await
            .map_err(classify)
    }

    async fn unrecognized_types(&self, limit: u32) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as(
            "SELECT entry_type, count(*) AS n FROM passport_entries WHERE NOT recognized \
             GROUP BY entry_type ORDER BY n DESC, entry_type LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)
    }

    async fn count_entries(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT count(*) FROM passport_entries")
            .fetch_one(&self.pool)
            .await
            .map_err(classify)
    }
}

/// Makes the user's links exactly those of `user`.
async fn replace_links(tx: &mut sqlx::Transaction<'_, Postgres>, id: i64, user: &NewUser) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM user_artists WHERE user_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(classify)?;
    sqlx::query("DELETE FROM user_live_events WHERE user_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(classify)?;
    sqlx::query("INSERT INTO user_artists (user_id, artist_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING")
        .bind(id)
        .bind(&user.artists)
        .execute(&mut **tx)
        .await
        .map_err(classify)?;
    sqlx::query(
        "INSERT INTO user_live_events (user_id, live_event_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(&user.live_events)
    .execute(&mut **tx)
    .await
    .map_err(classify)?;
    Ok(())
}

type UserRow = (i64, String, String, String, String);

async fn load_user<'c, E>(executor: E, row: UserRow) -> Result<User, StoreError>
where
    E: sqlx::Executor<'c, Database = Postgres> + Copy,
{
    let (id, email, role, plan, _) = row;
    let artists: Vec<String> =
        sqlx::query_scalar("SELECT artist_id FROM user_artists WHERE user_id = $1 ORDER BY artist_id")
            .bind(id)
            .fetch_all(executor)
            .await
            .map_err(classify)?;
    let live_events: Vec<String> =
        sqlx::query_scalar("SELECT live_event_id FROM user_live_events WHERE user_id = $1 ORDER BY live_event_id")
            .bind(id)
            .fetch_all(executor)
            .await
            .map_err(classify)?;
    Ok(User {
        id,
        email,
        role: role
            .parse()
            .map_err(|e| StoreError::Internal(format!("stored role: {e}")))?,
        plan: plan
            .parse()
            .map_err(|e| StoreError::Internal(format!("stored plan: {e}")))?,
        artists,
        live_events,
    })
}

#[async_trait]
impl Accounts for PostgresStore {
    async fn upsert_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, password_hash, role, plan, created_at, updated_at) VALUES ($1, $2, $3, $4, now(), now()) \
             ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role, \
             plan = excluded.plan, updated_at = excluded.updated_at RETURNING id",
        )
        .bind(user.email.to_lowercase())
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(user.plan.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        replace_links(&mut tx, id, user).await?;
        tx.commit().await.map_err(classify)?;
        self.user_with_id(id)
            .await?
            .ok_or_else(|| StoreError::Internal("a user vanished as it was saved".to_owned()))
    }

    async fn user_credentials(&self, email: &str) -> Result<Option<UserCredentials>, StoreError> {
        let row: Option<UserRow> =
            sqlx::query_as("SELECT id, email, role, plan, password_hash FROM users WHERE email = $1")
                .bind(email.to_lowercase())
                .fetch_optional(&self.pool)
                .await
                .map_err(classify)?;
        let Some(row) = row else { return Ok(None) };
        let password_hash = row.4.clone();
        Ok(Some(UserCredentials {
            user: load_user(&self.pool, row).await?,
            password_hash,
        }))
    }

    async fn create_session(&self, session: &NewSession, audit: &AuditRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(&session.token_hash)
            .bind(session.user_id)
            .bind(session.created_at)
            .bind(session.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        identity::write_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(classify)
    }

    async fn session_user(&self, token_hash: &[u8], now: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT u.id, u.email, u.role, u.plan, u.password_hash FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        match row {
            Some(row) => Ok(Some(load_user(&self.pool, row).await?)),
            None => Ok(None),
        }
    }

    async fn sessions_of(&self, user_id: i64, now: OffsetDateTime) -> Result<Vec<SessionRecord>, StoreError> {
        let rows: Vec<(Vec<u8>, OffsetDateTime, OffsetDateTime)> = sqlx::query_as(
            "SELECT token_hash, created_at, expires_at FROM sessions WHERE user_id = $1 AND expires_at > $2 \
             ORDER BY created_at DESC, token_hash",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|(token_hash, created_at, expires_at)| SessionRecord {
                token_hash,
                created_at,
                expires_at,
            })
            .collect())
    }

    async fn revoke_other_sessions(
        &self,
        user_id: i64,
        keep: &[u8],
        audit: &AuditRecord,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let ended: Vec<Vec<u8>> =
            sqlx::query_scalar("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2 RETURNING token_hash")
                .bind(user_id)
                .bind(keep)
                .fetch_all(&mut *tx)
                .await
                .map_err(classify)?;
        if !ended.is_empty() {
            identity::write_audit(&mut tx, std::slice::from_ref(audit)).await?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(ended)
    }

    async fn create_user(&self, user: &NewUser, audit: AuditOf<'_, i64>) -> Result<Option<User>, StoreError> {
        self.insert_user(user, audit).await
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.user_with_id(id).await
    }

    async fn external_user(&self, external_id: &str, email: &str) -> Result<User, StoreError> {
        self.user_for_external(external_id, email).await
    }

    async fn create_api_key(&self, key: &NewApiKey, audit: AuditOf<'_, ApiKey>) -> Result<ApiKey, StoreError> {
        self.insert_api_key(key, audit).await
    }

    async fn api_keys(&self, user_id: i64) -> Result<Vec<ApiKey>, StoreError> {
        self.keys_of(user_id).await
    }

    async fn revoke_api_key(
        &self,
        user_id: i64,
        key_id: i64,
        now: OffsetDateTime,
        audit: AuditOf<'_, ApiKey>,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.revoke_key(user_id, key_id, now, audit).await
    }

    async fn api_key_user(&self, key_hash: &[u8]) -> Result<Option<(User, i64)>, StoreError> {
        self.key_owner(key_hash).await
    }

    async fn revoke_session(&self, token_hash: &[u8], audit: AuditOf<'_, i64>) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let user_id: Option<i64> = sqlx::query_scalar("DELETE FROM sessions WHERE token_hash = $1 RETURNING user_id")
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        if let Some(user_id) = user_id {
            identity::write_audit(&mut tx, audit(&user_id).as_slice()).await?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(user_id.is_some())
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(classify)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDatabase;

    #[tokio::test]
    async fn every_session_of_the_pool_runs_without_jit() {
        let database = TestDatabase::create().await;
        let store = PostgresStore::connect(&database.url).await.expect("connect");
        // Held together, so that each is a session of its own.
        let mut sessions = Vec::new();
        for _ in 0..3 {
            sessions.push(store.pool.acquire().await.expect("a session"));
        }
        for session in &mut sessions {
            let jit: String = sqlx::query_scalar("SHOW jit")
                .fetch_one(&mut **session)
                .await
                .expect("show jit");
            assert_eq!(jit, "off");
        }
    }

    #[test]
    fn only_a_setting_of_jit_itself_counts() {
        assert!(sets_jit("-c jit=on"));
        assert!(sets_jit("-c statement_timeout=5s -cJIT=off"));
        assert!(sets_jit("--jit=on"));
        assert!(!sets_jit("-c jit_above_cost=1000000"));
        assert!(!sets_jit("-c search_path=jitney"));
        assert!(!sets_jit(""));
    }

    #[tokio::test]
    async fn a_jit_setting_in_the_url_is_kept() {
        let database = TestDatabase::create().await;
        // Off by default for this database, so that only the URL's option
        // can turn it on.
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&database.url)
            .await
            .expect("connect");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE \"{}\" SET jit = off",
            database.name
        )))
        .execute(&mut admin)
        .await
        .expect("jit off by default");
        let url = format!("{}?options=-c%20jit%3Don", database.url);
        let store = PostgresStore::connect(&url).await.expect("connect");
        let jit: String = sqlx::query_scalar("SHOW jit")
            .fetch_one(&store.pool)
            .await
            .expect("show jit");
        assert_eq!(jit, "on");
    }
}

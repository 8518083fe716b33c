//! The SQLite backend: the embedded default. One file, WAL mode, one writer;
//! `synchronous = FULL`, so an acknowledged entry survives a power cut as
//! well as a crash (group commit makes the fsync affordable).

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use coliseum_store::{
    Accounts, ApiKey, Appended, AuditOf, AuditRecord, LogStats, NewApiKey, NewEntry, NewSession, NewUser, PassportLog,
    SessionRecord, Store, StoreError, StoredEntry, User, UserCredentials,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use time::OffsetDateTime;

mod alerts;
mod identity;
mod reports;
mod rollups;
mod schedules;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Rows per INSERT statement: 11 parameters a row stays far below SQLite's
/// limit of 32,766 parameters a statement.
const ROWS_PER_STATEMENT: usize = 500;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating the file and its folder if missing) and migrates.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        if let Some(parent) = std::path::Path::new(options.get_filename()).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", parent.display())))?;
        }
        let pool = SqlitePoolOptions::new()
            // Six for the SQL fallback's lanes, the rest for writes and
            // everything else.
            .max_connections(12)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
        Ok(Self { pool })
    }
}

/// A running node's claim on a SQLite database: an exclusive lock on a file
/// beside it, held until dropped. One node owns a SQLite database (nothing
/// elects a processor among processes sharing a file, nor tells the others
/// what it applied); a second `coliseum serve` on the same file is refused
/// with this reason rather than silently serving figures that never move.
#[derive(Debug)]
pub struct NodeClaim {
    _file: std::fs::File,
}

pub fn claim_node(url: &str) -> Result<Option<NodeClaim>, StoreError> {
    let options =
        SqliteConnectOptions::from_str(url).map_err(|e| StoreError::Internal(format!("bad SQLite URL: {e}")))?;
    let database = options.get_filename();
    // An in-memory database is its process's own.
    if database.as_os_str().is_empty() || url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(None);
    }
    let path = database.with_extension("node-lock");
    // Claimed before the store is opened, which would create the directory.
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", parent.display())))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(NodeClaim { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Conflict(format!(
            "another coliseum node is serving {} (it holds {}); a SQLite database has one node: \
             run several nodes on PostgreSQL",
            database.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(StoreError::Unavailable(format!("cannot lock {}: {e}", path.display())))
        }
    }
}

fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn classify(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(error.to_string())
        }
        sqlx::Error::Database(ref db) if db.message().contains("locked") || db.message().contains("busy") => {
            StoreError::Unavailable(error.to_string())
        }
        sqlx::Error::Database(ref db) if db.is_unique_violation() || db.is_foreign_key_violation() => {
            StoreError::Conflict(error.to_string())
        }
        other => StoreError::Internal(other.to_string()),
    }
}

fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

fn from_micros(us: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .map_err(|e| StoreError::Internal(format!("stored timestamp out of range: {e}")))
}

type EntryRow = (
    i64,
    String,
    String,
    bool,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

fn stored_entry(row: EntryRow) -> Result<StoredEntry, StoreError> {
    let (
        seq,
        event_id,
        entry_type,
        recognized,
        ts_us,
        received_us,
        user_id,
        artist_id,
        live_event_id,
        city,
        genre,
        envelope,
    ) = row;
    Ok(StoredEntry {
        seq,
        entry: NewEntry {
            event_id,
            entry_type,
            recognized,
            timestamp: from_micros(ts_us)?,
            received_at: from_micros(received_us)?,
            user_id,
            artist_id,
            live_event_id,
            city,
            genre,
            envelope,
        },
    })
}

/// The columns of a log row, in the order [`push_row`] binds them.
const INSERT_ENTRIES: &str = "INSERT INTO passport_entries (event_id, entry_type, recognized, ts_us, received_us, \
                              user_id, artist_id, live_event_id, city, genre, envelope) ";

fn push_row(mut row: sqlx::query_builder::Separated<'_, Sqlite, &'static str>, e: &NewEntry) {
    row.push_bind(&e.event_id)
        .push_bind(&e.entry_type)
        .push_bind(e.recognized)
        .push_bind(micros(e.timestamp))
        .push_bind(micros(e.received_at))
        .push_bind(&e.user_id)
        .push_bind(&e.artist_id)
        .push_bind(&e.live_event_id)
        .push_bind(&e.city)
        .push_bind(&e.genre)
        .push_bind(&e.envelope);
}

impl SqliteStore {
    /// Inserts entries known to be new, in one transaction, returning no rows
    /// (each returned row would cross from SQLite's thread one by one): within
    /// the transaction SQLite holds the only write lock, so the new rows take
    /// the consecutive numbers that end at the table's AUTOINCREMENT counter.
    async fn insert_fresh<'e>(&self, fresh: &[&'e NewEntry]) -> Result<HashMap<&'e str, i64>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(INSERT_ENTRIES);
            insert.push_values(chunk, |row, e| push_row(row, e));
            insert.build().execute(&mut *tx).await.map_err(classify)?;
        }
        let last: i64 = sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'passport_entries'")
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        let first = last - fresh.len() as i64 + 1;
        Ok(fresh
            .iter()
            .zip(first..)
            .map(|(e, seq)| (e.event_id.as_str(), seq))
            .collect())
    }

    /// The slow, always-correct path: each row inserted unless its id exists.
    async fn insert_guarded<'e>(&self, fresh: &[&'e NewEntry]) -> Result<HashMap<&'e str, i64>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let mut stored: HashMap<String, i64> = HashMap::with_capacity(fresh.len());
        for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(INSERT_ENTRIES);
            insert.push_values(chunk, |row, e| push_row(row, e));
            insert.push(" ON CONFLICT (event_id) DO NOTHING RETURNING event_id, seq");
            let rows: Vec<(String, i64)> = insert.build_query_as().fetch_all(&mut *tx).await.map_err(classify)?;
            stored.extend(rows);
        }
        tx.commit().await.map_err(classify)?;
        Ok(fresh
            .iter()
            .filter_map(|e| stored.get(&e.event_id).map(|&seq| (e.event_id.as_str(), seq)))
            .collect())
    }

    /// Which of these entries' ids the log already holds.
    async fn stored_event_ids(&self, entries: &[NewEntry]) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut stored = std::collections::HashSet::new();
        for chunk in entries.chunks(ROWS_PER_STATEMENT) {
            let mut lookup = QueryBuilder::<Sqlite>::new("SELECT event_id FROM passport_entries WHERE event_id IN (");
            let mut ids = lookup.separated(", ");
            for entry in chunk {
                ids.push_bind(&entry.event_id);
            }
            lookup.push(")");
            let found: Vec<String> = lookup
                .build_query_scalar()
                .fetch_all(&self.pool)
                .await
                .map_err(classify)?;
            stored.extend(found);
        }
        Ok(stored)
    }
}

#[async_trait]
impl PassportLog for SqliteStore {
    async fn append_entries(&self, entries: &[NewEntry]) -> Result<Vec<Appended>, StoreError> {
        // Look the ids up first: a duplicate then costs a read, not a write (an
        // INSERT that conflicts still consumes an AUTOINCREMENT number), and a
        // delivery of nothing but duplicates opens no write transaction at all.
        let stored = self.stored_event_ids(entries).await?;
        let fresh: Vec<&NewEntry> = entries
            .iter()
            .filter(|e| !stored.contains(e.event_id.as_str()))
            .collect();
        if fresh.is_empty() {
            return Ok(vec![Appended::Duplicate; entries.len()]);
        }
        let accepted = match self.insert_fresh(&fresh).await {
            // Another process wrote one of these ids since the look-up: redo it guarded.
            Err(StoreError::Conflict(_)) => self.insert_guarded(&fresh).await?,
            other => other?,
        };
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
            "SELECT seq, event_id, entry_type, recognized, ts_us, received_us, user_id, artist_id, \
             live_event_id, city, genre, envelope FROM passport_entries WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.into_iter().map(stored_entry).collect()
    }

    async fn log_stats(&self) -> Result<LogStats, StoreError> {
        let (head_seq, unrecognized): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE((SELECT max(seq) FROM passport_entries), 0), \
             (SELECT count(*) FROM passport_entries WHERE recognized = 0)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(classify)?;
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
            "SELECT entry_type, count(*) AS n FROM passport_entries WHERE recognized = 0 \
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
async fn replace_links(tx: &mut sqlx::Transaction<'_, Sqlite>, id: i64, user: &NewUser) -> Result<(), StoreError> {
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
    for artist in &user.artists {
        sqlx::query("INSERT OR IGNORE INTO user_artists (user_id, artist_id) VALUES ($1, $2)")
            .bind(id)
            .bind(artist)
            .execute(&mut **tx)
            .await
            .map_err(classify)?;
    }
    for live_event in &user.live_events {
        sqlx::query("INSERT OR IGNORE INTO user_live_events (user_id, live_event_id) VALUES ($1, $2)")
            .bind(id)
            .bind(live_event)
            .execute(&mut **tx)
            .await
            .map_err(classify)?;
    }
    Ok(())
}

type UserRow = (i64, String, String, String, String);

async fn load_user<'c, E>(executor: E, row: UserRow) -> Result<User, StoreError>
where
    E: sqlx::Executor<'c, Database = Sqlite> + Copy,
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
impl Accounts for SqliteStore {
    async fn upsert_user(&self, user: &NewUser) -> Result<User, StoreError> {
        let now = micros(OffsetDateTime::now_utc());
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, password_hash, role, plan, created_us, updated_us) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role, \
             plan = excluded.plan, updated_us = excluded.updated_us RETURNING id",
        )
        .bind(user.email.to_lowercase())
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(user.plan.as_str())
        .bind(now)
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
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_us, expires_us) VALUES ($1, $2, $3, $4)")
            .bind(&session.token_hash)
            .bind(session.user_id)
            .bind(micros(session.created_at))
            .bind(micros(session.expires_at))
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        identity::write_audit(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(classify)
    }

    async fn session_user(&self, token_hash: &[u8], now: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT u.id, u.email, u.role, u.plan, u.password_hash FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_us > $2",
        )
        .bind(token_hash)
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        match row {
            Some(row) => Ok(Some(load_user(&self.pool, row).await?)),
            None => Ok(None),
        }
    }

    async fn sessions_of(&self, user_id: i64, now: OffsetDateTime) -> Result<Vec<SessionRecord>, StoreError> {
        let rows: Vec<(Vec<u8>, i64, i64)> = sqlx::query_as(
            "SELECT token_hash, created_us, expires_us FROM sessions WHERE user_id = $1 AND expires_us > $2 \
             ORDER BY created_us DESC, token_hash",
        )
        .bind(user_id)
        .bind(micros(now))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.into_iter()
            .map(|(token_hash, created, expires)| {
                Ok(SessionRecord {
                    token_hash,
                    created_at: from_micros(created)?,
                    expires_at: from_micros(expires)?,
                })
            })
            .collect()
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
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(classify)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coliseum_store::conformance::entry;
    use time::macros::datetime;

    /// The path taken when another process stored an id between the look-up
    /// and the insert: the fast insert fails as a conflict, the guarded one skips it.
    #[tokio::test]
    async fn a_race_with_another_writer_falls_back_to_the_guarded_insert() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("c.db").display()))
            .await
            .expect("open");
        let at = datetime!(2026-11-20 10:00 UTC);
        let (taken, fresh) = (entry("taken", at), entry("fresh", at));
        store
            .append_entries(std::slice::from_ref(&taken))
            .await
            .expect("append");

        let raced = [&taken, &fresh];
        assert!(matches!(store.insert_fresh(&raced).await, Err(StoreError::Conflict(_))));
        let stored = store.insert_guarded(&raced).await.expect("guarded insert");
        assert_eq!(stored.keys().copied().collect::<Vec<_>>(), ["fresh"]);
        assert_eq!(store.count_entries().await.expect("count"), 2);
    }
}

#[cfg(test)]
mod claim_tests {
    use super::*;

    #[test]
    fn one_node_claims_a_database_even_in_a_directory_not_made_yet() {
        let dir = tempfile::tempdir().expect("a directory");
        let url = format!("sqlite://{}", dir.path().join("new/coliseum.db").display());
        let claim = claim_node(&url).expect("claimed").expect("a file database");
        assert!(
            matches!(claim_node(&url), Err(StoreError::Conflict(_))),
            "a second node is refused"
        );
        drop(claim);
        assert!(claim_node(&url).expect("claimed again").is_some());
        assert!(claim_node("sqlite::memory:").expect("memory").is_none());
    }
}

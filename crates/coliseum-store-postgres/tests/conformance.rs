//! The store conformance suite on PostgreSQL, one fresh database per test,
//! plus what only the partitioned layout has to prove.

use std::sync::Arc;

use coliseum_store::{PassportLog, Store};
use coliseum_store_postgres::PostgresStore;
use coliseum_store_postgres::testing::TestDatabase;

async fn fresh_store() -> (Arc<dyn Store>, TestDatabase) {
    let database = TestDatabase::create().await;
    let store = PostgresStore::connect(&database.url)
        .await
        .expect("connect to PostgreSQL");
    (Arc::new(store), database)
}

coliseum_store::conformance_tests!(fresh_store);

#[tokio::test]
async fn entries_land_in_monthly_partitions_created_on_demand() {
    let database = TestDatabase::create().await;
    let store = PostgresStore::connect(&database.url).await.expect("connect");
    let old = coliseum_store::conformance::entry("old", time::macros::datetime!(2025-03-15 10:00:00 UTC));
    store
        .append_entries(&[old])
        .await
        .expect("append into a month created on demand");
    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&database.url)
        .await
        .expect("connect");
    let partitions: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'passport_entries'::regclass ORDER BY 1",
    )
    .fetch_all(&mut connection)
    .await
    .expect("list partitions");
    assert!(
        partitions.contains(&"passport_entries_2025_03".to_owned()),
        "{partitions:?}"
    );
    assert!(
        partitions.len() >= 4,
        "this month and two ahead exist too: {partitions:?}"
    );
    let stored: String = sqlx::query_scalar("SELECT event_id FROM passport_entries_2025_03")
        .fetch_one(&mut connection)
        .await
        .expect("the entry is in its month");
    assert_eq!(stored, "old");
}

/// Row-level security: a connection acting as `coliseum_restricted` for a
/// user sees that user's own rows and its linked tenants' data, nothing else.
#[tokio::test]
async fn the_restricted_role_sees_only_its_users_rows_and_tenants() {
    use coliseum_domain::plans::{Plan, Role};
    use coliseum_store::{Accounts, Audit, AuditRecord, NewApiKey, NewUser};
    let database = TestDatabase::create().await;
    let store = PostgresStore::connect(&database.url).await.expect("connect");
    let user = |email: &str, artists: &[&str], live_events: &[&str]| NewUser {
        email: email.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        role: Role::Artist,
        plan: Plan::Pro,
        artists: artists.iter().map(|a| (*a).to_owned()).collect(),
        live_events: live_events.iter().map(|e| (*e).to_owned()).collect(),
    };
    let ada = store
        .upsert_user(&user("ada@example.com", &["art_1"], &[]))
        .await
        .expect("ada");
    let bo = store
        .upsert_user(&user("bo@example.com", &["art_2"], &["live_9"]))
        .await
        .expect("bo");
    let now = time::OffsetDateTime::now_utc();
    for (owner, hash) in [(&ada, 1u8), (&bo, 2u8)] {
        store
            .create_api_key(
                &NewApiKey {
                    user_id: owner.id,
                    name: "k".to_owned(),
                    key_hash: vec![hash; 32],
                    prefix: "ck_x".to_owned(),
                    created_at: now,
                },
                &|_: &coliseum_store::ApiKey| None,
            )
            .await
            .expect("key");
        store
            .append_audit(&[AuditRecord {
                id: 0,
                at: now,
                actor: format!("user:{}", owner.id),
                action: "login".to_owned(),
                subject: format!("user:{}", owner.id),
                request_id: String::new(),
                detail: "{}".to_owned(),
            }])
            .await
            .expect("audit");
    }
    let mut on_art_1 = coliseum_store::conformance::entry("e-1", now - time::Duration::minutes(1));
    on_art_1.artist_id = Some("art_1".to_owned());
    let mut on_art_2 = coliseum_store::conformance::entry("e-2", now - time::Duration::minutes(1));
    on_art_2.artist_id = Some("art_2".to_owned());
    let mut at_live_9 = coliseum_store::conformance::entry("e-3", now - time::Duration::minutes(1));
    at_live_9.artist_id = Some("art_3".to_owned());
    at_live_9.live_event_id = Some("live_9".to_owned());
    store
        .append_entries(&[on_art_1, on_art_2, at_live_9])
        .await
        .expect("append");

    let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&database.url)
        .await
        .expect("connect");
    sqlx::query("SET ROLE coliseum_restricted")
        .execute(&mut connection)
        .await
        .expect("set role");
    async fn seen(connection: &mut sqlx::PgConnection, acting: Option<i64>) -> Vec<String> {
        let setting = acting.map_or_else(String::new, |id| id.to_string());
        sqlx::query("SELECT set_config('coliseum.user_id', $1, false)")
            .bind(setting)
            .execute(&mut *connection)
            .await
            .expect("set user");
        let mut seen = Vec::new();
        for (table, column) in [
            ("users", "email"),
            ("api_keys", "user_id::text"),
            ("audit_log", "actor"),
            ("passport_entries", "event_id"),
            ("user_artists", "artist_id"),
            ("stripe_events", "event_id"),
        ] {
            let sql = format!("SELECT {column} FROM {table} ORDER BY 1");
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut *connection)
                .await
                .unwrap_or_else(|e| panic!("{table}: {e}"));
            seen.extend(rows.into_iter().map(|r| format!("{table}={r}")));
        }
        seen
    }
    assert_eq!(
        seen(&mut connection, Some(ada.id)).await,
        [
            "users=ada@example.com".to_owned(),
            format!("api_keys={}", ada.id),
            format!("audit_log=user:{}", ada.id),
            "passport_entries=e-1".to_owned(),
            "user_artists=art_1".to_owned(),
        ]
    );
    assert_eq!(
        seen(&mut connection, Some(bo.id)).await,
        [
            "users=bo@example.com".to_owned(),
            format!("api_keys={}", bo.id),
            format!("audit_log=user:{}", bo.id),
            "passport_entries=e-2".to_owned(),
            "passport_entries=e-3".to_owned(),
            "user_artists=art_2".to_owned(),
        ],
        "the artist's entries and those of the live event hosted"
    );
    assert!(
        seen(&mut connection, None).await.is_empty(),
        "acting for nobody: nothing"
    );
    let written = sqlx::query("UPDATE users SET plan = 'enterprise'")
        .execute(&mut connection)
        .await;
    assert!(written.is_err(), "the restricted role only reads");
    // Partitions are not granted: the parent's policies cannot be sidestepped.
    let partition = format!(
        "SELECT count(*) FROM passport_entries_{}_{:02}",
        now.year(),
        u8::from(now.month())
    );
    let direct = sqlx::query(sqlx::AssertSqlSafe(partition))
        .execute(&mut connection)
        .await;
    assert!(direct.is_err_and(|e| e.to_string().contains("permission denied")));
}

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

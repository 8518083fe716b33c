//! The store conformance suite on SQLite, one fresh database file per test.

use std::sync::Arc;

use coliseum_store::Store;
use coliseum_store_sqlite::SqliteStore;

async fn fresh_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("nested/coliseum.db").display());
    let store = SqliteStore::connect(&url).await.expect("open SQLite");
    (Arc::new(store), dir)
}

coliseum_store::conformance_tests!(fresh_store);

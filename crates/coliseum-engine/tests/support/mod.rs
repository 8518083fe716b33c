//! What the engine's integration tests share: a fresh store on each
//! backend, running a scenario on both, and a small deterministic generator.
#![allow(dead_code)]

use std::sync::Arc;

use coliseum_store::Store;

/// Keeps a test's database alive until the test ends.
pub enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] coliseum_store_postgres::testing::TestDatabase),
}

pub async fn sqlite() -> (Arc<dyn Store>, Guard) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let store = coliseum_store_sqlite::SqliteStore::connect(&url).await.expect("open");
    (Arc::new(store), Guard::Sqlite(dir))
}

pub async fn postgres() -> (Arc<dyn Store>, Guard) {
    let database = coliseum_store_postgres::testing::TestDatabase::create().await;
    let store = coliseum_store_postgres::PostgresStore::connect(&database.url)
        .await
        .expect("connect");
    (Arc::new(store), Guard::Postgres(database))
}

/// A small deterministic generator (xorshift), so a failure reproduces.
pub struct Random(pub u64);

impl Random {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Runs each scenario (`async fn(Arc<dyn Store>)`) on a fresh SQLite and a
/// fresh PostgreSQL database.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let (store, _guard) = super::support::sqlite().await;
                    super::$scenario(store).await;
                }
            )+
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let (store, _guard) = super::support::postgres().await;
                    super::$scenario(store).await;
                }
            )+
        }
    };
}

//! The group-commit writer against a real (SQLite) store.

use std::sync::Arc;

use coliseum_engine::{IngestConfig, IngestError, IngestWriter, PipelineStats};
use coliseum_store::conformance::entry;
use coliseum_store::{Appended, PassportLog};
use coliseum_store_sqlite::SqliteStore;
use time::macros::datetime;

async fn store() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    (Arc::new(SqliteStore::connect(&url).await.expect("open")), dir)
}

fn at() -> time::OffsetDateTime {
    datetime!(2026-11-20 10:00:00 UTC)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_commits_and_each_gets_its_own_answer() {
    let (store, _dir) = store().await;
    let config = IngestConfig {
        linger: std::time::Duration::from_millis(20),
        ..IngestConfig::default()
    };
    let (writer, task) = IngestWriter::start(store.clone(), config, Arc::new(PipelineStats::default()));
    let requests: Vec<_> = (0..50)
        .map(|i| {
            let writer = writer.clone();
            // Request i repeats the entry of request i - 1: one of each pair is a duplicate.
            let entries = vec![
                entry(&format!("e-{i}"), at()),
                entry(&format!("e-{}", i.max(1) - 1), at()),
            ];
            tokio::spawn(async move { writer.submit(entries).await })
        })
        .collect();
    let mut accepted = 0;
    for request in requests {
        let fates = request.await.expect("task").expect("written");
        assert_eq!(fates.len(), 2);
        accepted += fates.iter().filter(|f| matches!(f, Appended::Accepted { .. })).count();
    }
    assert_eq!(accepted, 50, "each event id is accepted exactly once");
    assert_eq!(store.count_entries().await.expect("count"), 50);
    writer.shutdown();
    task.await.expect("writer stops");
    assert_eq!(
        writer.submit(vec![entry("late", at())]).await,
        Err(IngestError::ShuttingDown)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_within_one_request_is_reported_as_such() {
    let (store, _dir) = store().await;
    let (writer, _task) = IngestWriter::start(store, IngestConfig::default(), Arc::new(PipelineStats::default()));
    let fates = writer
        .submit(vec![entry("x", at()), entry("x", at())])
        .await
        .expect("written");
    assert!(matches!(fates[0], Appended::Accepted { .. }));
    assert_eq!(fates[1], Appended::Duplicate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_turns_requests_away_instead_of_growing() {
    let (store, _dir) = store().await;
    let config = IngestConfig {
        queue_entries: 10,
        ..IngestConfig::default()
    };
    let (writer, _task) = IngestWriter::start(store.clone(), config, Arc::new(PipelineStats::default()));
    let too_many: Vec<_> = (0..11).map(|i| entry(&format!("o-{i}"), at())).collect();
    assert_eq!(writer.submit(too_many).await, Err(IngestError::Overloaded));
    assert_eq!(
        store.count_entries().await.expect("count"),
        0,
        "nothing of it was stored"
    );
    let fits: Vec<_> = (0..10).map(|i| entry(&format!("f-{i}"), at())).collect();
    assert_eq!(writer.submit(fits).await.expect("written").len(), 10);
    assert_eq!(writer.queued_entries(), 0, "permits come back after the commit");
}

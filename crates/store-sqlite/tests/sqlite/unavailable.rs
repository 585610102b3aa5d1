//! A store that goes away: the database's directory moved or removed under a running gateway.
//! Appends must fail promptly (the gateway answers 503) rather than be acknowledged into a file that
//! no longer is the database, and succeed again once it is back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use custos_store::conformance::sample_record;
use custos_store::{Appender, AppenderConfig, LogStore, StoreError};
use custos_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_fail_promptly_while_the_file_is_gone_and_recover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("custos-data");
    let moved = dir.path().join("moved-away");
    let store: Arc<dyn LogStore> = Arc::new(SqliteStore::open_in(&data).await.expect("open"));
    let appender = Appender::spawn(
        Arc::clone(&store),
        AppenderConfig {
            timeout: Duration::from_secs(3),
            ..AppenderConfig::default()
        },
    );
    appender.append(sample_record(0)).await.expect("store up");

    std::fs::rename(&data, &moved).expect("move the data dir away");
    let started = Instant::now();
    let err = appender
        .append(sample_record(1))
        .await
        .expect_err("must not acknowledge");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(err.is_transient());
    assert!(store.sequence(10).await.is_err(), "sequencing refuses too");

    std::fs::rename(&moved, &data).expect("move it back");
    let id = appender.append(sample_record(2)).await.expect("store back");
    assert_eq!(
        store.entry(id).await.expect("read").map(|e| e.record),
        Some(sample_record(2))
    );

    std::fs::remove_dir_all(&data).expect("remove the data dir");
    let started = Instant::now();
    assert!(appender.append(sample_record(3)).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(1));
    store.close().await;
}

#[tokio::test]
async fn a_closed_store_refuses_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn LogStore> = Arc::new(SqliteStore::open_in(dir.path()).await.expect("open"));
    let appender = Appender::spawn(Arc::clone(&store), AppenderConfig::default());
    store.close().await;
    assert!(matches!(
        appender.append(sample_record(0)).await,
        Err(StoreError::Closed)
    ));
}

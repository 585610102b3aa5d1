//! A database that is not there, goes away or hangs: connecting and appending fail promptly (the
//! gateway answers 503) and appends succeed again once the database is back. The proxy stands in for
//! a stopped server (connections reset, new ones refused) without stopping the server other tests use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use custos_store::conformance::sample_record;
use custos_store::{Appender, AppenderConfig, LogStore, StoreError};
use custos_store_postgres::{PostgresOptions, PostgresStore};

use crate::support::{drop_schemas, fresh_schema, store, Mode, Proxy};

#[tokio::test]
async fn nothing_listening_fails_at_once() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let started = Instant::now();
    let err = PostgresStore::connect(
        &format!("postgres://custos:custos@127.0.0.1:{port}/custos_test"),
        PostgresOptions::default(),
    )
    .await
    .expect_err("no server");
    assert!(err.is_transient(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        PostgresStore::connect("not a url", PostgresOptions::default())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_fail_promptly_while_the_database_is_gone_and_recover() {
    let schema = fresh_schema("down");
    let proxy = Proxy::start().await;
    let store: Arc<dyn LogStore> = Arc::new(store(&proxy.url, &schema).await);
    let limit = Duration::from_secs(2);
    let appender = Appender::spawn(
        Arc::clone(&store),
        AppenderConfig {
            timeout: limit,
            ..AppenderConfig::default()
        },
    );
    appender.append(sample_record(0)).await.expect("up");

    // Stopped: connections reset, new ones refused.
    proxy.set(Mode::Cut);
    for i in 1..4 {
        let started = Instant::now();
        let err = appender
            .append(sample_record(i))
            .await
            .expect_err("must not acknowledge");
        assert!(err.is_transient(), "{err}");
        assert!(started.elapsed() <= limit + Duration::from_millis(500));
    }

    // Hanging: connections accepted, never answered. The caller still gets an answer in time.
    proxy.set(Mode::Blackhole);
    for i in 4..6 {
        let started = Instant::now();
        let err = appender
            .append(sample_record(i))
            .await
            .expect_err("must not acknowledge");
        assert!(
            matches!(err, StoreError::Timeout(_) | StoreError::Unavailable { .. }),
            "{err}"
        );
        assert!(
            started.elapsed() <= limit + Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }

    // Back: appends succeed again (a stale pooled connection may cost one failed attempt).
    proxy.set(Mode::Forward);
    let mut recovered = None;
    for attempt in 0..10 {
        match appender.append(sample_record(100 + attempt)).await {
            Ok(id) => {
                recovered = Some((attempt, id));
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let (attempt, id) = recovered.expect("appends succeed once the database is back");
    assert!(attempt <= 2, "recovered after {attempt} failed attempts");
    assert_eq!(
        store.entry(id).await.expect("read").map(|e| e.record),
        Some(sample_record(100 + attempt))
    );
    store.close().await;
    drop_schemas(&[schema]).await;
}

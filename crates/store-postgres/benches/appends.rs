//! Durable appends/s with 1 and 16 writers (and 16 without group commit), sequencing and full
//! verification speed, against the database in `CUSTOS_TEST_POSTGRES_URL` (each measurement in a
//! fresh schema, dropped afterwards). `cargo bench -p custos-store-postgres`; `CUSTOS_BENCH_SECS` sets
//! the seconds per measurement (3).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custos_store::conformance::measure;
use custos_store::LogStore;
use custos_store_postgres::{PostgresOptions, PostgresStore};
use tokio_postgres::NoTls;

fn main() {
    let url = std::env::var("CUSTOS_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "CUSTOS_TEST_POSTGRES_URL is not set: export CUSTOS_TEST_POSTGRES_URL=\"$(crates/store-postgres/scripts/test-db)\""
        )
    });
    let secs = std::env::var("CUSTOS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let next = AtomicU64::new(0);
    let schemas = Mutex::new(Vec::new());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        measure::run("postgres", Duration::from_secs(secs), || async {
            let schema = format!(
                "ct_bench_{}_{}",
                std::process::id(),
                next.fetch_add(1, Ordering::Relaxed)
            );
            schemas.lock().expect("schemas").push(schema.clone());
            let options = PostgresOptions {
                schema: Some(schema),
                ..PostgresOptions::default()
            };
            Arc::new(
                PostgresStore::connect(&url, options)
                    .await
                    .expect("connect"),
            ) as Arc<dyn LogStore>
        })
        .await;
        let (client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("admin");
        tokio::spawn(connection);
        let created = schemas.lock().expect("schemas").clone();
        for s in created {
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"))
                .await
                .expect("drop schema");
        }
    });
}

//! The conformance story against PostgreSQL, each log in a schema of its own.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use custos_store::conformance::{self, Backend, Tamper, TestLog};

use crate::support::{admin, drop_schemas, fresh_schema, store, url};

struct Postgres {
    tag: &'static str,
    schemas: Mutex<Vec<String>>,
}

impl Postgres {
    fn new(tag: &'static str) -> Postgres {
        Postgres {
            tag,
            schemas: Mutex::new(Vec::new()),
        }
    }

    async fn cleanup(self) {
        let schemas = self.schemas.lock().expect("schemas").clone();
        drop_schemas(&schemas).await;
    }
}

#[async_trait]
impl Backend for Postgres {
    async fn open(&self) -> TestLog {
        let schema = fresh_schema(self.tag);
        self.schemas.lock().expect("schemas").push(schema.clone());
        TestLog {
            store: Arc::new(store(&url(), &schema).await),
            location: schema,
        }
    }

    async fn reopen(&self, log: TestLog) -> TestLog {
        log.store.close().await;
        TestLog {
            store: Arc::new(store(&url(), &log.location).await),
            location: log.location,
        }
    }

    async fn tamper(&self, log: &TestLog, tamper: Tamper) {
        let c = admin().await;
        c.batch_execute(&format!("SET search_path = {}", log.location))
            .await
            .expect("search_path");
        let leaf_hash = |r: &[u8]| custos_audit::merkle::leaf_hash(r).0.to_vec();
        let i = |v: u64| i64::try_from(v).expect("small");
        let changed = match tamper {
            Tamper::SetRecord { index, record } => {
                c.execute(
                    "UPDATE audit_entries SET record = $1 WHERE leaf_index = $2",
                    &[&record, &i(index)],
                )
                .await
            }
            Tamper::SetRecordAndHash { index, record } => {
                c.execute(
                    "UPDATE audit_entries SET record = $1, leaf_hash = $2 WHERE leaf_index = $3",
                    &[&record, &leaf_hash(&record), &i(index)],
                )
                .await
            }
            Tamper::Delete { index } => {
                c.execute(
                    "DELETE FROM audit_entries WHERE leaf_index = $1",
                    &[&i(index)],
                )
                .await
            }
            Tamper::Swap { a, b } => {
                c.execute(
                    "UPDATE audit_entries e SET record = o.record, leaf_hash = o.leaf_hash \
                     FROM audit_entries o \
                     WHERE e.leaf_index IN ($1, $2) AND o.leaf_index IN ($1, $2) \
                       AND o.leaf_index <> e.leaf_index",
                    &[&i(a), &i(b)],
                )
                .await
            }
            Tamper::Truncate { size, frontier } => {
                c.batch_execute("BEGIN").await.expect("begin");
                let n = c
                    .execute(
                        "DELETE FROM audit_entries WHERE leaf_index >= $1",
                        &[&i(size)],
                    )
                    .await
                    .expect("delete leaves");
                c.execute(
                    "DELETE FROM audit_nodes WHERE ((idx + 1) << level::int) > $1",
                    &[&i(size)],
                )
                .await
                .expect("delete nodes");
                c.execute(
                    "UPDATE audit_tree SET size = $1, frontier = $2",
                    &[&i(size), &frontier],
                )
                .await
                .expect("tree");
                c.batch_execute("COMMIT").await.map(|()| n)
            }
            Tamper::DropCheckpointsAbove { size } => {
                c.execute("DELETE FROM audit_checkpoints WHERE size > $1", &[&i(size)])
                    .await
            }
            Tamper::SetNode { level, index, hash } => {
                c.execute(
                    "UPDATE audit_nodes SET hash = $1 WHERE level = $2 AND idx = $3",
                    &[&&hash[..], &i16::from(level), &i(index)],
                )
                .await
            }
        }
        .expect("tamper");
        assert!(changed > 0, "the tamper changed nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn story() {
    let pg = Postgres::new("story");
    conformance::story(&pg).await;
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sequencing_under_load() {
    let pg = Postgres::new("load");
    conformance::sequencing_under_load(&pg).await;
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tampering_is_detected() {
    let pg = Postgres::new("tamper");
    conformance::tampering(&pg).await;
    pg.cleanup().await;
}

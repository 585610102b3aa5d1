//! The conformance story against SQLite files in a temporary directory.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use custos_store::conformance::{self, Backend, Tamper, TestLog};
use custos_store_sqlite::SqliteStore;
use rusqlite::{params, Connection};

struct Sqlite {
    dir: tempfile::TempDir,
    next: AtomicU64,
}

impl Sqlite {
    fn new() -> Sqlite {
        Sqlite {
            dir: tempfile::tempdir().expect("tempdir"),
            next: AtomicU64::new(0),
        }
    }
}

async fn open(path: &str) -> TestLog {
    TestLog {
        store: Arc::new(SqliteStore::open(path).await.expect("open")),
        location: path.to_owned(),
    }
}

#[async_trait]
impl Backend for Sqlite {
    async fn open(&self) -> TestLog {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("log-{n}/audit.db"));
        open(path.to_str().expect("utf-8 path")).await
    }

    async fn reopen(&self, log: TestLog) -> TestLog {
        log.store.close().await;
        drop(log.store);
        open(&log.location).await
    }

    async fn tamper(&self, log: &TestLog, tamper: Tamper) {
        let conn = Connection::open(Path::new(&log.location)).expect("attacker connection");
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .expect("busy timeout");
        let leaf_hash = |r: &[u8]| custos_audit::merkle::leaf_hash(r).0.to_vec();
        let i = |v: u64| i64::try_from(v).expect("small");
        let changed = match tamper {
            Tamper::SetRecord { index, record } => conn.execute(
                "UPDATE audit_entries SET record = ?1 WHERE leaf_index = ?2",
                params![record, i(index)],
            ),
            Tamper::SetRecordAndHash { index, record } => conn.execute(
                "UPDATE audit_entries SET record = ?1, leaf_hash = ?2 WHERE leaf_index = ?3",
                params![record, leaf_hash(&record), i(index)],
            ),
            Tamper::Delete { index } => conn.execute(
                "DELETE FROM audit_entries WHERE leaf_index = ?1",
                [i(index)],
            ),
            Tamper::Swap { a, b } => conn.execute(
                "UPDATE audit_entries SET \
                   record = (SELECT record FROM audit_entries o WHERE o.leaf_index = \
                     CASE audit_entries.leaf_index WHEN ?1 THEN ?2 ELSE ?1 END), \
                   leaf_hash = (SELECT leaf_hash FROM audit_entries o WHERE o.leaf_index = \
                     CASE audit_entries.leaf_index WHEN ?1 THEN ?2 ELSE ?1 END) \
                 WHERE leaf_index IN (?1, ?2)",
                params![i(a), i(b)],
            ),
            Tamper::Truncate { size, frontier } => conn
                .execute_batch("BEGIN")
                .and_then(|()| {
                    conn.execute(
                        "DELETE FROM audit_entries WHERE leaf_index >= ?1",
                        [i(size)],
                    )
                })
                .and_then(|n| {
                    conn.execute(
                        "DELETE FROM audit_nodes WHERE ((idx + 1) << level) > ?1",
                        [i(size)],
                    )?;
                    conn.execute(
                        "UPDATE audit_tree SET size = ?1, frontier = ?2",
                        params![i(size), frontier],
                    )?;
                    conn.execute_batch("COMMIT")?;
                    Ok(n)
                }),
            Tamper::DropCheckpointsAbove { size } => {
                conn.execute("DELETE FROM audit_checkpoints WHERE size > ?1", [i(size)])
            }
            Tamper::SetNode { level, index, hash } => conn.execute(
                "UPDATE audit_nodes SET hash = ?1 WHERE level = ?2 AND idx = ?3",
                params![&hash[..], level, i(index)],
            ),
        }
        .expect("tamper");
        assert!(changed > 0, "the tamper changed nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn story() {
    conformance::story(&Sqlite::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sequencing_under_load() {
    conformance::sequencing_under_load(&Sqlite::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tampering_is_detected() {
    conformance::tampering(&Sqlite::new()).await;
}

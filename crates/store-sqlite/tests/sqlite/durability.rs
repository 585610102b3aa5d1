//! Crash durability: a child process appends from 8 tasks (with the sequencer running) and prints each
//! record's number and entry id only after `append` returned; the parent SIGKILLs it mid-load. Every
//! acknowledged record must be in the database after reopening, and the log must verify.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use custos_store::conformance::{sample_record, test_key};
use custos_store::{
    verify_store, Appender, AppenderConfig, EntryId, LogStore, Sequencer, SequencerConfig,
};
use custos_store_sqlite::SqliteStore;

const CHILD_ENV: &str = "CUSTOS_SQLITE_CRASH_CHILD_DB";
/// Acknowledgements to wait for before the kill.
const KILL_AFTER: usize = 400;

/// The child side of `acknowledged_records_survive_sigkill`: does nothing unless the parent started
/// this binary with the database path in `CUSTOS_SQLITE_CRASH_CHILD_DB`.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let store: Arc<dyn LogStore> = Arc::new(SqliteStore::open(&path).await.expect("open"));
        let config = SequencerConfig {
            interval: Duration::from_millis(5),
            checkpoint_interval: Duration::from_millis(20),
            max_batch: 50,
            ..SequencerConfig::default()
        };
        let _sequencer = Sequencer::new(Arc::clone(&store), test_key(), config).spawn();
        let appender = Appender::spawn(store, AppenderConfig::default());
        let next = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (appender, next) = (appender.clone(), Arc::clone(&next));
            tasks.push(tokio::spawn(async move {
                // Bounded: stops by itself if the parent never kills it.
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let id = appender.append(sample_record(i)).await.expect("append");
                    println!("ACK {i} {id}");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
    });
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("custos-data/audit.db");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "durability::crash_child", "--nocapture"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("child");
    let stdout = child.stdout.take().expect("stdout");
    let mut acked: BTreeMap<u64, EntryId> = BTreeMap::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Some(rest) = line.strip_prefix("ACK ") else {
            continue;
        };
        let mut parts = rest.split(' ');
        let (Some(i), Some(id)) = (parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(i), Ok(id)) = (i.parse(), id.parse()) else {
            continue;
        };
        acked.insert(i, EntryId(id));
        if !killed && acked.len() >= KILL_AFTER {
            child.kill().expect("SIGKILL");
            killed = true;
        }
    }
    let status = child.wait().expect("wait");
    assert!(killed, "the child ended by itself: {status:?}");
    assert!(acked.len() >= KILL_AFTER);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let store: Arc<dyn LogStore> = Arc::new(SqliteStore::open(&path).await.expect("reopen"));
        for (i, id) in &acked {
            let entry = store
                .entry(*id)
                .await
                .expect("read")
                .unwrap_or_else(|| panic!("acknowledged record {i} (entry {id}) was lost"));
            assert_eq!(entry.record, sample_record(*i), "entry {id}");
        }
        let seq = Sequencer::new(Arc::clone(&store), test_key(), SequencerConfig::default());
        let size = seq.integrate_all().await.expect("integrate after restart");
        seq.sign().await.expect("sign after restart");
        let report = verify_store(store.as_ref(), &test_key().verifier())
            .await
            .expect("the log verifies after the crash");
        assert_eq!(report.log.leaves, size);
        assert!(size >= acked.len() as u64);
        eprintln!(
            "crash test: {} acknowledged, {size} in the log, {} checkpoints",
            acked.len(),
            report.log.checkpoints
        );
        store.close().await;
    });
}

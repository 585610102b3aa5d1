//! The appender against a scripted store: batching, errors reaching every caller, hangs bounded by
//! the timeout, recovery. Backends' own tests cover real durability.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use custos_audit::merkle::Hash;

use super::*;
use crate::{
    Entry, Leaf, NodeId, SearchQuery, Sequenced, SequencerLease, StoredCheckpoint, TreeState,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Fail,
    Hang,
}

struct Scripted {
    mode: Mutex<Mode>,
    batches: Mutex<Vec<usize>>,
    next: AtomicU64,
    /// How long each commit takes (an fsync).
    commit: Duration,
}

impl Scripted {
    fn new(commit: Duration) -> Arc<Scripted> {
        Arc::new(Scripted {
            mode: Mutex::new(Mode::Ok),
            batches: Mutex::new(Vec::new()),
            next: AtomicU64::new(1),
            commit,
        })
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }
}

fn unused<T>() -> Result<T, StoreError> {
    Err(StoreError::Invalid("not used by the appender".into()))
}

#[async_trait]
impl LogStore for Scripted {
    async fn enqueue(&self, batch: Vec<NewEntry>) -> Result<Vec<EntryId>, StoreError> {
        self.batches.lock().expect("batches").push(batch.len());
        let mode = *self.mode.lock().expect("mode");
        tokio::time::sleep(self.commit).await;
        match mode {
            Mode::Ok => Ok(batch
                .iter()
                .map(|_| EntryId(self.next.fetch_add(1, Ordering::Relaxed)))
                .collect()),
            Mode::Fail => Err(StoreError::unavailable(
                "committing",
                std::io::Error::other("disk full"),
            )),
            Mode::Hang => std::future::pending().await,
        }
    }
    async fn sequence(&self, _: usize) -> Result<Vec<Sequenced>, StoreError> {
        unused()
    }
    async fn tree(&self) -> Result<TreeState, StoreError> {
        unused()
    }
    async fn queued(&self) -> Result<u64, StoreError> {
        unused()
    }
    async fn read(&self, _: u64, _: u64) -> Result<Vec<Leaf>, StoreError> {
        unused()
    }
    async fn node_hashes(&self, _: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
        unused()
    }
    async fn put_checkpoint(&self, _: u64, _: &str) -> Result<(), StoreError> {
        unused()
    }
    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        unused()
    }
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        unused()
    }
    async fn search(&self, _: &SearchQuery) -> Result<Vec<Entry>, StoreError> {
        unused()
    }
    async fn entry(&self, _: EntryId) -> Result<Option<Entry>, StoreError> {
        unused()
    }
    async fn acquire_sequencer(&self) -> Result<Option<Box<dyn SequencerLease>>, StoreError> {
        unused()
    }
    async fn close(&self) {}
}

fn record(i: u64) -> Vec<u8> {
    format!(r#"{{"auditID":"a-{i}"}}"#).into_bytes()
}

async fn concurrently(appender: &Appender, n: u64) -> Vec<Result<EntryId, StoreError>> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let appender = appender.clone();
        tasks.spawn(async move { appender.append(record(i)).await });
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        out.push(r.expect("task"));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn callers_waiting_during_a_commit_share_the_next_one() {
    let store = Scripted::new(Duration::from_millis(2));
    let appender = Appender::spawn(store.clone(), AppenderConfig::default());
    let results = concurrently(&appender, 64).await;
    assert!(results.iter().all(Result::is_ok));
    let batches = store.batches.lock().expect("batches").clone();
    assert_eq!(batches.iter().sum::<usize>(), 64);
    assert!(
        batches.len() <= 3,
        "64 concurrent callers took {} commits: {batches:?}",
        batches.len()
    );
}

#[tokio::test(start_paused = true)]
async fn batches_respect_the_limits() {
    let store = Scripted::new(Duration::from_millis(2));
    let config = AppenderConfig {
        max_batch: 10,
        ..AppenderConfig::default()
    };
    let appender = Appender::spawn(store.clone(), config);
    assert!(concurrently(&appender, 45).await.iter().all(Result::is_ok));
    let batches = store.batches.lock().expect("batches").clone();
    assert!(batches.iter().all(|b| *b <= 10), "{batches:?}");

    let small = Appender::spawn(
        store.clone(),
        AppenderConfig {
            max_record_bytes: 8,
            ..AppenderConfig::default()
        },
    );
    assert!(matches!(
        small.append(record(1)).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        appender.append(b"{ }".to_vec()).await,
        Err(StoreError::NotCanonical(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_failed_commit_fails_every_caller_in_it_and_the_next_one_succeeds() {
    let store = Scripted::new(Duration::from_millis(2));
    let appender = Appender::spawn(store.clone(), AppenderConfig::default());
    store.set(Mode::Fail);
    let results = concurrently(&appender, 20).await;
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(StoreError::Unavailable { .. }))));
    store.set(Mode::Ok);
    assert!(appender.append(record(99)).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_hung_store_times_out_and_the_writer_recovers() {
    let store = Scripted::new(Duration::from_millis(2));
    let timeout = Duration::from_secs(2);
    let appender = Appender::spawn(
        store.clone(),
        AppenderConfig {
            timeout,
            ..AppenderConfig::default()
        },
    );
    store.set(Mode::Hang);
    let started = tokio::time::Instant::now();
    let results = concurrently(&appender, 5).await;
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(StoreError::Timeout(_)))));
    assert!(started.elapsed() <= timeout + Duration::from_millis(10));
    // The writer gave up on the hung commit too, so it serves the next records once the store answers.
    store.set(Mode::Ok);
    tokio::time::sleep(timeout).await;
    assert!(appender.append(record(7)).await.is_ok());
}

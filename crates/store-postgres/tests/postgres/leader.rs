//! One sequencer at a time, and a new one when it dies: two replicas share a log; the leader is killed
//! mid-load (cut off the database like a crashed process, or only its lock connection terminated); the
//! other takes over. Afterwards every acknowledged record is in the log exactly once and the log
//! verifies.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custos_store::conformance::{sample_record, test_key};
use custos_store::{
    verify_store, Appender, AppenderConfig, EntryId, LogStore, Sequencer, SequencerConfig,
    SequencerHandle,
};
use tokio::task::JoinSet;

use crate::support::{admin, drop_schemas, fresh_schema, store, url, Mode, Proxy};

type Acks = Arc<Mutex<BTreeMap<u64, EntryId>>>;

fn config() -> SequencerConfig {
    SequencerConfig {
        interval: Duration::from_millis(20),
        checkpoint_interval: Duration::from_millis(100),
        election_interval: Duration::from_millis(100),
        max_batch: 64,
        sink: None,
    }
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

/// 8 writers appending `per_writer` records each, numbered from `base`; acknowledged ones go in `acks`.
fn load(store: &Arc<dyn LogStore>, base: u64, per_writer: u64, acks: &Acks) -> JoinSet<u64> {
    let appender = Appender::spawn(
        Arc::clone(store),
        AppenderConfig {
            timeout: Duration::from_secs(2),
            ..AppenderConfig::default()
        },
    );
    let mut tasks = JoinSet::new();
    for w in 0..8 {
        let (appender, acks) = (appender.clone(), Arc::clone(acks));
        tasks.spawn(async move {
            let mut failed = 0;
            for j in 0..per_writer {
                let i = base + w * per_writer + j;
                match appender.append(sample_record(i)).await {
                    Ok(id) => {
                        acks.lock().expect("acks").insert(i, id);
                    }
                    Err(_) => {
                        failed += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            failed
        });
    }
    tasks
}

/// Everything acknowledged is in the log once, nothing is left queued, and the log verifies.
async fn check_log(schema: &str, acks: &Acks) {
    let store: Arc<dyn LogStore> = Arc::new(store(&url(), schema).await);
    assert_eq!(store.queued().await.expect("queued"), 0, "all sequenced");
    let size = store.tree().await.expect("tree").size;
    let leaves = store.read(0, size).await.expect("read");
    let ids: BTreeMap<EntryId, u64> = leaves.iter().map(|l| (l.id, l.index)).collect();
    assert_eq!(ids.len() as u64, size, "no entry has two leaves");
    let acks = acks.lock().expect("acks").clone();
    for (i, id) in &acks {
        let index = ids
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged record {i} (entry {id}) is not in the log"));
        let leaf = &leaves[usize::try_from(*index).expect("index")];
        assert_eq!(leaf.record, sample_record(*i));
    }
    let report = verify_store(store.as_ref(), &test_key().verifier())
        .await
        .expect("the log verifies");
    assert_eq!(report.log.leaves, size);
    assert_eq!(report.log.unsigned_tail, 0, "the new leader signed the end");
    eprintln!(
        "{} acknowledged, {size} in the log, {} checkpoints",
        acks.len(),
        report.log.checkpoints
    );
    store.close().await;
}

async fn wait_for_acks(acks: &Acks, n: usize) {
    let acks = Arc::clone(acks);
    wait_until("enough records were acknowledged", move || {
        acks.lock().expect("acks").len() >= n
    })
    .await;
}

async fn drain(mut tasks: JoinSet<u64>) -> u64 {
    let mut failed = 0;
    while let Some(f) = tasks.join_next().await {
        failed += f.expect("writer");
    }
    failed
}

fn leader(handle: &SequencerHandle) -> bool {
    handle.status().leader
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_crash_mid_load_another_takes_over() {
    let schema = fresh_schema("crash");
    let proxy = Proxy::start().await;
    // Replica A reaches the database only through the proxy, so cutting it is A's death.
    let a: Arc<dyn LogStore> = Arc::new(store(&proxy.url, &schema).await);
    let b: Arc<dyn LogStore> = Arc::new(store(&url(), &schema).await);
    let seq_a = Sequencer::new(Arc::clone(&a), test_key(), config()).spawn();
    wait_until("A leads", || leader(&seq_a)).await;
    let seq_b = Sequencer::new(Arc::clone(&b), test_key(), config()).spawn();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!leader(&seq_b), "only one leader at a time");

    let acks: Acks = Arc::default();
    let load_a = load(&a, 0, 150, &acks);
    let load_b = load(&b, 100_000, 150, &acks);
    wait_for_acks(&acks, 600).await;

    // A dies: every connection drops, the lock with its session; its writers fail from now on.
    proxy.set(Mode::Cut);
    seq_a.abort();
    wait_until("B takes over", || leader(&seq_b)).await;

    let failed_a = drain(load_a).await;
    let failed_b = drain(load_b).await;
    assert_eq!(failed_b, 0, "the surviving replica never refused a record");
    assert!(
        failed_a > 0,
        "the dead replica's writers were refused, not acknowledged"
    );
    seq_b.shutdown().await.expect("final round");
    check_log(&schema, &acks).await;
    b.close().await;
    drop_schemas(&[schema]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_loses_its_lock_connection_and_steps_down() {
    let schema = fresh_schema("lock");
    let sep = if url().contains('?') { '&' } else { '?' };
    let url_a = format!("{}{sep}application_name={schema}_a", url());
    let a: Arc<dyn LogStore> = Arc::new(store(&url_a, &schema).await);
    let b: Arc<dyn LogStore> = Arc::new(store(&url(), &schema).await);
    let seq_a = Sequencer::new(Arc::clone(&a), test_key(), config()).spawn();
    wait_until("A leads", || leader(&seq_a)).await;
    let seq_b = Sequencer::new(Arc::clone(&b), test_key(), config()).spawn();
    let mut status_a = seq_a.subscribe();

    let acks: Acks = Arc::default();
    let load_a = load(&a, 0, 100, &acks);
    let load_b = load(&b, 100_000, 100, &acks);
    wait_for_acks(&acks, 400).await;

    // Only A's lock session dies (its pool lives on): A must notice and stop sequencing.
    let killed = admin()
        .await
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("{schema}_a/sequencer")],
        )
        .await
        .expect("terminate");
    assert_eq!(killed, 1, "A's lock connection");
    tokio::time::timeout(Duration::from_secs(5), status_a.wait_for(|s| !s.leader))
        .await
        .expect("A notices it lost the lease")
        .expect("status");
    wait_until("someone leads again", || leader(&seq_a) || leader(&seq_b)).await;

    assert_eq!(
        drain(load_a).await,
        0,
        "appends never depended on the leader"
    );
    assert_eq!(drain(load_b).await, 0);
    seq_a.shutdown().await.expect("A stops");
    seq_b.shutdown().await.expect("B stops");
    check_log(&schema, &acks).await;
    a.close().await;
    b.close().await;
    drop_schemas(&[schema]).await;
}

//! The storage benchmark every backend's `benches/` binary runs: durable appends per second with 1
//! and 16 writers (and 16 writers with group commit turned off, the ratio that shows what it buys),
//! then sequencing and full verification in records per second. Ratios in one run, same machine.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::{sample_record, test_key};
use crate::{verify_store, Appender, AppenderConfig, LogStore, Sequencer, SequencerConfig};

/// How many records in how long.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Records done.
    pub records: u64,
    /// Time taken.
    pub elapsed: Duration,
}

impl Throughput {
    /// Records per second.
    pub fn per_sec(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Appends sample records from `writers` tasks for `duration`, each waiting for durability before
/// the next; `max_batch` 1 turns group commit off.
pub async fn appends(
    store: &Arc<dyn LogStore>,
    writers: u64,
    duration: Duration,
    max_batch: usize,
) -> Throughput {
    let appender = Appender::spawn(
        Arc::clone(store),
        AppenderConfig {
            max_batch,
            ..AppenderConfig::default()
        },
    );
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..writers {
        let (appender, stop, next) = (appender.clone(), Arc::clone(&stop), Arc::clone(&next));
        tasks.spawn(async move {
            let mut done = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                appender.append(sample_record(i)).await.expect("append");
                done += 1;
            }
            done
        });
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut records = 0;
    while let Some(done) = tasks.join_next().await {
        records += done.expect("writer");
    }
    Throughput {
        records,
        elapsed: started.elapsed(),
    }
}

/// Runs the benchmark on fresh stores from `open`, printing one line per measurement.
pub async fn run<F, Fut>(backend: &str, duration: Duration, open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn LogStore>>,
{
    println!(
        "{backend}: durable appends ({duration:?} each; every acknowledged record is flushed)"
    );
    let mut rates = Vec::new();
    for (writers, max_batch, label) in [
        (1, 512, "group commit"),
        (16, 512, "group commit"),
        (16, 1, "one commit per record"),
    ] {
        let store = open().await;
        let t = appends(&store, writers, duration, max_batch).await;
        println!(
            "  {writers:>2} writers, {label:<22} {:>9.0} appends/s  ({} records)",
            t.per_sec(),
            t.records
        );
        rates.push(t.per_sec());
        store.close().await;
    }
    println!(
        "  16 writers: group commit is {:.1}x one commit per record, {:.1}x one writer",
        rates[1] / rates[2].max(1e-9),
        rates[1] / rates[0].max(1e-9)
    );

    let store = open().await;
    let filled = appends(&store, 16, duration, 512).await;
    let seq = Sequencer::new(Arc::clone(&store), test_key(), SequencerConfig::default());
    let started = Instant::now();
    let size = seq.integrate_all().await.expect("integrate");
    let sequencing = Throughput {
        records: size,
        elapsed: started.elapsed(),
    };
    seq.sign().await.expect("sign");
    let started = Instant::now();
    let report = verify_store(store.as_ref(), &test_key().verifier())
        .await
        .expect("verify");
    let verify = Throughput {
        records: report.log.leaves,
        elapsed: started.elapsed(),
    };
    println!(
        "  sequencing {:>9.0} records/s; full verify {:>9.0} records/s ({} records, {} bytes each)",
        sequencing.per_sec(),
        verify.per_sec(),
        filled.records,
        sample_record(0).len()
    );
    store.close().await;
}

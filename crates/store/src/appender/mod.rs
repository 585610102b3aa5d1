//! Group commit. Callers hand in records; one task takes whatever has queued up while the previous
//! transaction was committing (up to a batch limit), writes it in one transaction with one flush, and
//! only then answers each caller: with its entry id, or with the batch's error.
//!
//! No timer is needed for batching to happen: under load, records pile up during each flush and the
//! next transaction takes them all, so sixteen writers share one fsync; with one writer there is no
//! added wait. An optional `linger` trades latency for larger batches.

use std::sync::Arc;
use std::time::Duration;

use custos_audit::Record;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::{timeout, Instant};

use crate::{EntryId, LogStore, NewEntry, StoreError};

#[cfg(test)]
mod tests;

/// How the appender batches and how long callers wait.
#[derive(Debug, Clone)]
pub struct AppenderConfig {
    /// Records waiting for the writer, at most; callers beyond wait for room (within `timeout`).
    pub queue: usize,
    /// Record bytes waiting for the writer, at most (with `queue`, what bounds the appender's memory).
    pub max_pending_bytes: usize,
    /// Records in one transaction, at most.
    pub max_batch: usize,
    /// Record bytes in one transaction, at most (a single larger record goes alone).
    pub max_batch_bytes: usize,
    /// The largest record accepted.
    pub max_record_bytes: usize,
    /// How long the writer waits for more records after the first of a batch (zero: take only what
    /// is already queued).
    pub linger: Duration,
    /// How long a caller waits for its record to be durable before it gets
    /// [`StoreError::Timeout`]; also bounds each transaction, so a hung store cannot hang the writer.
    pub timeout: Duration,
}

impl Default for AppenderConfig {
    fn default() -> AppenderConfig {
        AppenderConfig {
            queue: 4096,
            max_pending_bytes: 64 << 20,
            max_batch: 512,
            max_batch_bytes: 8 << 20,
            max_record_bytes: 4 << 20,
            linger: Duration::ZERO,
            timeout: Duration::from_secs(5),
        }
    }
}

struct Job {
    entry: NewEntry,
    reply: oneshot::Sender<Result<EntryId, StoreError>>,
}

/// The write path into the audit store: `append` returns once the record is durable, never before.
/// Cheap to clone; the writer task ends when the last clone is dropped, after answering every record
/// already handed in.
#[derive(Clone)]
pub struct Appender {
    tx: mpsc::Sender<Job>,
    config: Arc<AppenderConfig>,
    /// One permit per KiB of record bytes waiting or being written.
    pending: Arc<Semaphore>,
}

/// Permits a record of `len` bytes holds: one per started KiB.
fn kib(len: usize) -> u32 {
    u32::try_from(len.div_ceil(1024)).unwrap_or(u32::MAX)
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Appender {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(store: Arc<dyn LogStore>, config: AppenderConfig) -> Appender {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let mut config = config;
        // A record must fit in the pending budget, or it would wait for room forever.
        config.max_record_bytes = config
            .max_record_bytes
            .min(config.max_pending_bytes.max(1024));
        let pending = Arc::new(Semaphore::new(kib(config.max_pending_bytes) as usize));
        let config = Arc::new(config);
        tokio::spawn(write_loop(store, rx, Arc::clone(&config)));
        Appender {
            tx,
            config,
            pending,
        }
    }

    /// Appends a record's canonical bytes; returns its entry id once it is durable.
    pub async fn append(&self, record: Vec<u8>) -> Result<EntryId, StoreError> {
        self.check_size(record.len())?;
        self.append_entry(NewEntry::new(record)?).await
    }

    fn check_size(&self, len: usize) -> Result<(), StoreError> {
        if len > self.config.max_record_bytes {
            return Err(StoreError::Invalid(format!(
                "record of {len} bytes is over the limit of {}",
                self.config.max_record_bytes
            )));
        }
        Ok(())
    }

    /// Appends a record (encoded canonically); returns its entry id once it is durable.
    pub async fn append_record(&self, record: &Record) -> Result<EntryId, StoreError> {
        let bytes = record.canonical_bytes().map_err(StoreError::NotCanonical)?;
        self.append(bytes).await
    }

    /// Appends a prepared entry; returns its entry id once it is durable.
    pub async fn append_entry(&self, entry: NewEntry) -> Result<EntryId, StoreError> {
        self.check_size(entry.record().len())?;
        let limit = self.config.timeout;
        let (reply, answer) = oneshot::channel();
        let permits = kib(entry.record().len());
        let job = Job { entry, reply };
        let wait = async {
            // Held until the answer: the bytes stay in memory until the writer is done with them.
            let _budget = self
                .pending
                .acquire_many(permits)
                .await
                .map_err(|_| StoreError::Closed)?;
            self.tx.send(job).await.map_err(|_| StoreError::Closed)?;
            // A dropped reply means the writer is gone: not durable as far as anyone knows.
            answer.await.map_err(|_| StoreError::Closed)?
        };
        timeout(limit, wait)
            .await
            .unwrap_or(Err(StoreError::Timeout(limit)))
    }
}

/// The single writer: batch, commit, answer, repeat.
async fn write_loop(
    store: Arc<dyn LogStore>,
    mut rx: mpsc::Receiver<Job>,
    config: Arc<AppenderConfig>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(config.max_batch);
    while let Some(first) = rx.recv().await {
        let mut bytes = first.entry.record().len();
        batch.push(first);
        let linger_until = Instant::now() + config.linger;
        while batch.len() < config.max_batch.max(1) && bytes < config.max_batch_bytes {
            let next = match rx.try_recv() {
                Ok(job) => Some(job),
                Err(_) if !config.linger.is_zero() => {
                    tokio::time::timeout_at(linger_until, rx.recv())
                        .await
                        .ok()
                        .flatten()
                }
                Err(_) => None,
            };
            let Some(job) = next else { break };
            bytes += job.entry.record().len();
            batch.push(job);
        }
        commit(store.as_ref(), &mut batch, config.timeout).await;
    }
}

/// Writes one batch and answers every caller in it.
async fn commit(store: &dyn LogStore, batch: &mut Vec<Job>, limit: Duration) {
    let (entries, replies): (Vec<NewEntry>, Vec<_>) =
        batch.drain(..).map(|j| (j.entry, j.reply)).unzip();
    let count = entries.len();
    let result = match timeout(limit, store.enqueue(entries)).await {
        Ok(Ok(ids)) if ids.len() == count => Ok(ids),
        Ok(Ok(ids)) => Err(StoreError::Corrupt(format!(
            "store returned {} ids for {count} records",
            ids.len()
        ))),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(StoreError::Timeout(limit)),
    };
    match result {
        Ok(ids) => {
            for (reply, id) in replies.into_iter().zip(ids) {
                // A caller that gave up (timed out, cancelled) is not waiting any more.
                let _ = reply.send(Ok(id));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, records = count, "audit append failed; refusing the batch");
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

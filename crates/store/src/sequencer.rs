//! The sequencer: integrates queued records into the Merkle log and signs checkpoints. One per log at
//! a time: each round it holds the store's [`SequencerLease`] (an advisory lock on PostgreSQL, the
//! single process on SQLite) or it waits and tries again, so when a leader dies another replica takes
//! over from the stored tree. Correctness does not rest on the lease alone: the store's `sequence`
//! locks the tree row, so even two sequencers at once would give each entry one index.
//!
//! Before signing it checks that the stored tree still has the root the latest stored checkpoint
//! signed at that size: it never signs on top of a rewritten history.

use std::sync::Arc;
use std::time::Duration;

use custos_audit::note::{SignerKey, VerifierKey};
use custos_audit::Checkpoint;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::proofs::root_at;
use crate::{CheckpointSink, LogStore, SequencerLease, StoreError, StoredCheckpoint};

/// Sequencing transactions per leader round, at most, before signing is considered.
const ROUND_BATCHES: usize = 16;

/// How often the sequencer works.
#[derive(Clone)]
pub struct SequencerConfig {
    /// How often to integrate queued records while leader.
    pub interval: Duration,
    /// How often to sign a checkpoint when the tree grew.
    pub checkpoint_interval: Duration,
    /// How often a follower tries to become leader.
    pub election_interval: Duration,
    /// Records per sequencing transaction, at most.
    pub max_batch: usize,
    /// Where copies of new checkpoints go, besides the store.
    pub sink: Option<Arc<dyn CheckpointSink>>,
}

impl Default for SequencerConfig {
    fn default() -> SequencerConfig {
        SequencerConfig {
            interval: Duration::from_millis(200),
            checkpoint_interval: Duration::from_secs(1),
            election_interval: Duration::from_secs(1),
            max_batch: 4096,
            sink: None,
        }
    }
}

impl std::fmt::Debug for SequencerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequencerConfig")
            .field("interval", &self.interval)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("election_interval", &self.election_interval)
            .field("max_batch", &self.max_batch)
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

/// What the sequencer last did, for readiness and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SequencerStatus {
    /// Whether this process holds the sequencer lease.
    pub leader: bool,
    /// The tree size after the last round (as this process saw it).
    pub tree_size: u64,
    /// The size of the latest checkpoint this process signed or found.
    pub signed_size: u64,
    /// The last error, cleared by the next successful round.
    pub last_error: Option<String>,
}

/// Integrates and signs. Use [`spawn`](Self::spawn) in a server, or the single steps in tools and
/// tests.
pub struct Sequencer {
    store: Arc<dyn LogStore>,
    key: SignerKey,
    verifier: VerifierKey,
    config: SequencerConfig,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("log", &self.key.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A running sequencer. Dropping it, or [`shutdown`](Self::shutdown), stops it after a last round
/// (integrate everything queued, sign) if it is the leader.
#[derive(Debug)]
pub struct SequencerHandle {
    stop: Option<oneshot::Sender<()>>,
    status: watch::Receiver<SequencerStatus>,
    task: Option<JoinHandle<Result<(), StoreError>>>,
}

impl SequencerHandle {
    /// The latest status.
    pub fn status(&self) -> SequencerStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn subscribe(&self) -> watch::Receiver<SequencerStatus> {
        self.status.clone()
    }

    /// Stops the sequencer: a final round if leader, then the lease is released. Returns the final
    /// round's error, if any.
    pub async fn shutdown(mut self) -> Result<(), StoreError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| StoreError::unavailable("sequencer task", e))?,
            None => Ok(()),
        }
    }

    /// Stops the sequencer abruptly, as a crash would: no final round, no release (tests use it to
    /// kill a leader; its connections close when the task is dropped).
    pub fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Sequencer {
    /// A sequencer for the log in `store`, signing with `key` (whose name is the log's origin).
    pub fn new(store: Arc<dyn LogStore>, key: SignerKey, config: SequencerConfig) -> Sequencer {
        let verifier = key.verifier();
        Sequencer {
            store,
            key,
            verifier,
            config,
        }
    }

    /// Runs the sequencer on the current runtime until its handle is shut down or dropped.
    pub fn spawn(self) -> SequencerHandle {
        let (stop, stopped) = oneshot::channel();
        let (status_tx, status) = watch::channel(SequencerStatus::default());
        let task = tokio::spawn(self.run(stopped, status_tx));
        SequencerHandle {
            stop: Some(stop),
            status,
            task: Some(task),
        }
    }

    /// Integrates everything queued (in transactions of at most `max_batch`); returns the tree size.
    /// Does not take the lease: for a single process (tests, tools) or a caller that holds it.
    pub async fn integrate_all(&self) -> Result<u64, StoreError> {
        self.integrate(usize::MAX).await
    }

    /// Integrates at most `rounds` transactions' worth of queued records; returns the tree size.
    async fn integrate(&self, rounds: usize) -> Result<u64, StoreError> {
        let max = self.config.max_batch.max(1);
        for _ in 0..rounds {
            if self.store.sequence(max).await?.len() < max {
                break;
            }
        }
        Ok(self.store.tree().await?.size)
    }

    /// Signs and stores a checkpoint of the stored tree if it is larger than the latest stored
    /// checkpoint; publishes it to the sink. Returns the new checkpoint, or `None` when there was
    /// nothing new to sign. Refuses ([`StoreError::Corrupt`]) when the stored tree is not an extension
    /// of the latest checkpoint.
    pub async fn sign(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        // Latest checkpoint first, then the tree: a checkpoint another replica just signed is never
        // ahead of the tree we read.
        let latest = self.store.latest_checkpoint().await?;
        let tree = self.store.tree().await?;
        let signed_size = match &latest {
            Some(stored) => self.check_extends(stored, tree.size).await?,
            None => 0,
        };
        if tree.size <= signed_size {
            return Ok(None);
        }
        // The frontier and the stored nodes must agree on the head we are about to sign.
        let root = tree.root();
        let from_nodes = root_at(self.store.as_ref(), tree.size).await?;
        if from_nodes != root {
            return Err(StoreError::Corrupt(format!(
                "stored frontier of {} leaves has root {root}, stored nodes give {from_nodes}",
                tree.size
            )));
        }
        let note = Checkpoint::new(self.key.name(), tree.size, root)
            .sign(&self.key)
            .map_err(|e| StoreError::Invalid(format!("signing checkpoint: {e}")))?;
        self.store.put_checkpoint(tree.size, &note).await?;
        let stored = StoredCheckpoint {
            size: tree.size,
            note,
        };
        if let Some(sink) = &self.config.sink {
            sink.publish(&stored).await?;
        }
        Ok(Some(stored))
    }

    /// Checks that the latest stored checkpoint is ours and that the stored tree still has its root
    /// at its size; returns its size.
    async fn check_extends(&self, stored: &StoredCheckpoint, size: u64) -> Result<u64, StoreError> {
        let cp = Checkpoint::open(&stored.note, &self.verifier).map_err(|e| {
            StoreError::Corrupt(format!(
                "latest stored checkpoint does not verify under {}: {e}",
                self.verifier.label()
            ))
        })?;
        if cp.size > size {
            return Err(StoreError::Corrupt(format!(
                "latest checkpoint signs {} leaves but the stored tree has {size}: the log was truncated",
                cp.size
            )));
        }
        if cp.size > 0 {
            let now = root_at(self.store.as_ref(), cp.size).await?;
            if now != cp.root {
                return Err(StoreError::Corrupt(format!(
                    "stored tree of {} leaves has root {now}, the signed checkpoint says {}: history was rewritten; refusing to sign",
                    cp.size, cp.root
                )));
            }
        }
        Ok(cp.size)
    }

    /// One leader round: integrate, and sign when due.
    async fn round(&self, sign_due: bool, status: &watch::Sender<SequencerStatus>) -> bool {
        let result = async {
            // Bounded, so a sustained flood of appends cannot starve signing.
            let size = self.integrate(ROUND_BATCHES).await?;
            let signed = if sign_due { self.sign().await? } else { None };
            Ok::<_, StoreError>((size, signed))
        }
        .await;
        match result {
            Ok((size, signed)) => {
                status.send_modify(|s| {
                    s.tree_size = size;
                    if let Some(c) = &signed {
                        s.signed_size = c.size;
                    }
                    s.last_error = None;
                });
                true
            }
            Err(e) => {
                let message = e.to_string();
                // Once per distinct error, not every round.
                if status.borrow().last_error.as_deref() != Some(message.as_str()) {
                    tracing::error!(error = %e, "audit sequencer round failed");
                }
                status.send_modify(|s| s.last_error = Some(message));
                false
            }
        }
    }

    async fn run(
        self,
        mut stop: oneshot::Receiver<()>,
        status: watch::Sender<SequencerStatus>,
    ) -> Result<(), StoreError> {
        let mut lease: Option<Box<dyn SequencerLease>> = None;
        let mut last_sign = Instant::now();
        loop {
            lease = self.keep_or_take(lease, &status).await;
            if lease.is_some() {
                let due = last_sign.elapsed() >= self.config.checkpoint_interval;
                if self.round(due, &status).await && due {
                    last_sign = Instant::now();
                }
            }
            let wait = if lease.is_some() {
                self.config.interval
            } else {
                self.config.election_interval
            };
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        // Shutting down: finish what is queued and sign it, if we still lead.
        let Some(lease) = lease else { return Ok(()) };
        let result = if lease.still_held().await {
            // Bounded too: other replicas may still be appending.
            match self.integrate(ROUND_BATCHES * 64).await {
                Ok(_) => self.sign().await.map(|_| ()),
                Err(e) => Err(e),
            }
        } else {
            Ok(())
        };
        lease.release().await;
        status.send_modify(|s| s.leader = false);
        result
    }

    /// Keeps a lease that is still held, or tries to take one.
    async fn keep_or_take(
        &self,
        lease: Option<Box<dyn SequencerLease>>,
        status: &watch::Sender<SequencerStatus>,
    ) -> Option<Box<dyn SequencerLease>> {
        if let Some(lease) = lease {
            if lease.still_held().await {
                return Some(lease);
            }
            tracing::warn!("audit sequencer lost its lease; another replica may take over");
            status.send_modify(|s| s.leader = false);
            return None;
        }
        match self.store.acquire_sequencer().await {
            Ok(Some(lease)) => {
                tracing::info!(log = self.key.name(), "audit sequencer is now the leader");
                let signed = self.store.latest_checkpoint().await.ok().flatten();
                status.send_modify(|s| {
                    s.leader = true;
                    s.last_error = None;
                    s.signed_size = signed.map_or(s.signed_size, |c| c.size);
                });
                Some(lease)
            }
            Ok(None) => None,
            Err(e) => {
                status.send_modify(|s| s.last_error = Some(e.to_string()));
                None
            }
        }
    }
}

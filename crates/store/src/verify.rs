//! Full verification of a stored log: every leaf is read in order, its bytes re-hashed and compared
//! with the stored leaf hash, the tree recomputed and held against every stored (and any externally
//! kept) signed checkpoint by `custos_audit::verify::LogVerifier`, and every interior node the store
//! keeps for proofs compared with the recomputed one. Memory stays O(chunk + log n).

use custos_audit::merkle::{Frontier, Hash};
use custos_audit::note::VerifierKey;
use custos_audit::{LogReport, LogVerifier, VerifyError};

use crate::{LogStore, NodeId, StoreError};

/// Leaves read per store call.
const CHUNK: u64 = 2048;

/// What a successful store verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreReport {
    /// The log verification (leaves, root, checkpoints, unsigned tail).
    pub log: LogReport,
    /// Interior nodes compared with the recomputed tree.
    pub nodes: u64,
    /// Records queued but not yet in the log (not covered by the verification).
    pub queued: u64,
}

/// Where and why a stored log does not verify.
#[derive(Debug, thiserror::Error)]
pub enum StoreVerifyError {
    /// The leaves and checkpoints disagree (a record changed, moved, removed or added, a forged or
    /// foreign checkpoint, a truncated log), as `custos_audit` reports it.
    #[error("{0}")]
    Log(#[from] VerifyError),
    /// A leaf the stored tree size says exists is not in the store.
    #[error(
        "leaf {index} is missing from the store (the tree has {size} leaves): a record was deleted"
    )]
    MissingLeaf {
        /// The missing index.
        index: u64,
        /// The stored tree size.
        size: u64,
    },
    /// A leaf is stored beyond the tree's size.
    #[error("leaf {index} is stored beyond the tree's {size} leaves: a record was inserted")]
    ExtraLeaf {
        /// Its index.
        index: u64,
        /// The stored tree size.
        size: u64,
    },
    /// A stored interior node is not the hash of its children: proofs served from it would not verify.
    #[error("stored node (level {level}, index {index}) is {}, the leaves give {computed}: the proof data was changed", stored.map_or("missing".to_owned(), |h| h.to_string()))]
    Node {
        /// Its level.
        level: u8,
        /// Its index.
        index: u64,
        /// What the store holds.
        stored: Option<Hash>,
        /// What the leaves give.
        computed: Hash,
    },
    /// The stored frontier does not describe the stored leaves.
    #[error("the stored tree head ({stored}) is not the head of the stored leaves ({computed})")]
    Frontier {
        /// The stored frontier's root.
        stored: Hash,
        /// The recomputed root.
        computed: Hash,
    },
    /// The store could not be read.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Verifies everything in `store` against its stored checkpoints under `key`.
pub async fn verify_store(
    store: &dyn LogStore,
    key: &VerifierKey,
) -> Result<StoreReport, StoreVerifyError> {
    verify_store_with(store, key, &[]).await
}

/// Like [`verify_store`], also holding the log against checkpoints kept outside the store (copies an
/// auditor or a [`CheckpointSink`](crate::CheckpointSink) kept): a restored older copy of the
/// database still verifies against its own checkpoints, but not against a newer one kept elsewhere.
pub async fn verify_store_with(
    store: &dyn LogStore,
    key: &VerifierKey,
    pinned: &[String],
) -> Result<StoreReport, StoreVerifyError> {
    let mut notes: Vec<String> = store
        .checkpoints()
        .await?
        .into_iter()
        .map(|c| c.note)
        .collect();
    notes.extend(pinned.iter().cloned());
    let mut verifier = LogVerifier::new(key, None, &notes)?.require_canonical(true);
    let tree = store.tree().await?;
    let mut frontier = Frontier::new();
    let mut nodes_checked = 0u64;
    let mut start = 0u64;
    while start < tree.size {
        let end = tree.size.min(start + CHUNK);
        let leaves = store.read(start, end).await?;
        let mut completed: Vec<(NodeId, Hash)> = Vec::new();
        let mut expect = start;
        for leaf in &leaves {
            if leaf.index != expect {
                return Err(StoreVerifyError::MissingLeaf {
                    index: expect,
                    size: tree.size,
                });
            }
            verifier.push_leaf_with_hash(&leaf.record, &leaf.leaf_hash)?;
            frontier.push_with(leaf.leaf_hash, |level, index, hash| {
                if level > 0 {
                    completed.push((NodeId { level, index }, *hash));
                }
            });
            expect += 1;
        }
        if expect != end {
            return Err(StoreVerifyError::MissingLeaf {
                index: expect,
                size: tree.size,
            });
        }
        nodes_checked += check_nodes(store, &completed).await?;
        start = end;
    }
    if let Some(extra) = store
        .read(tree.size, tree.size.saturating_add(1))
        .await?
        .first()
    {
        return Err(StoreVerifyError::ExtraLeaf {
            index: extra.index,
            size: tree.size,
        });
    }
    let log = verifier.finish()?;
    if tree.root() != log.root {
        return Err(StoreVerifyError::Frontier {
            stored: tree.root(),
            computed: log.root,
        });
    }
    Ok(StoreReport {
        log,
        nodes: nodes_checked,
        queued: store.queued().await?,
    })
}

async fn check_nodes(
    store: &dyn LogStore,
    completed: &[(NodeId, Hash)],
) -> Result<u64, StoreVerifyError> {
    let ids: Vec<NodeId> = completed.iter().map(|(id, _)| *id).collect();
    let stored = store.node_hashes(&ids).await?;
    for ((id, computed), stored) in completed.iter().zip(stored) {
        if stored != Some(*computed) {
            return Err(StoreVerifyError::Node {
                level: id.level,
                index: id.index,
                stored,
                computed: *computed,
            });
        }
    }
    Ok(completed.len() as u64)
}

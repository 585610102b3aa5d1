//! Tree heads and proofs read from a store.
//!
//! `custos_audit`'s proof code reads hashes through the synchronous [`HashSource`]. Which nodes a proof
//! needs depends only on the leaf index and tree sizes, never on hash values, so the async functions
//! here run the proof once against a source that only writes down what is asked, fetch exactly those
//! nodes in one [`LogStore::node_hashes`] call, and run it again from memory: O(log n) nodes, one round
//! trip, no blocking. [`BlockingSource`] is the other way, for synchronous callers such as
//! `custos_audit::bundle::write`: it must run on a blocking thread (`spawn_blocking`), never on an
//! async worker.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use custos_audit::merkle::{self, ConsistencyProof, Frontier, Hash, InclusionProof, ProofError};
use custos_audit::HashSource;
use tokio::runtime::Handle;

use crate::{LogStore, NodeId, StoreError};

/// Where the two runs of a proof read nodes from: the recording dry run, or the fetched nodes.
trait NodeSource {
    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError>;
}

/// Writes down every node asked for and answers with zeros.
#[derive(Default)]
struct Recorder(RefCell<Vec<NodeId>>);

impl NodeSource for Recorder {
    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        self.0.borrow_mut().push(NodeId { level, index });
        Ok(Hash::default())
    }
}

/// Nodes fetched ahead.
struct Prefetched(HashMap<NodeId, Hash>);

impl NodeSource for Prefetched {
    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        let node = NodeId { level, index };
        self.0.get(&node).copied().ok_or_else(|| missing(node))
    }
}

fn missing(node: NodeId) -> StoreError {
    StoreError::Corrupt(format!(
        "node (level {}, index {}) is not stored: beyond the tree, or removed",
        node.level, node.index
    ))
}

/// Runs `compute` against the store's hashes: first to learn which nodes it reads, then for real.
async fn with_nodes<T, E>(
    store: &dyn LogStore,
    compute: impl Fn(&dyn NodeSource) -> Result<T, E>,
    map_err: impl Fn(E) -> StoreError,
) -> Result<T, StoreError> {
    let recorder = Recorder::default();
    // The dry run's result is meaningless; its errors (bad sizes) are the real run's errors too.
    if let Err(e) = compute(&recorder) {
        return Err(map_err(e));
    }
    let mut wanted = recorder.0.into_inner();
    wanted.sort_unstable();
    wanted.dedup();
    let hashes = store.node_hashes(&wanted).await?;
    let mut map = HashMap::with_capacity(wanted.len());
    for (node, hash) in wanted.into_iter().zip(hashes) {
        map.insert(node, hash.ok_or_else(|| missing(node))?);
    }
    compute(&Prefetched(map)).map_err(map_err)
}

/// Adapts the object-safe trait back to [`HashSource`].
struct Adapt<'a>(&'a dyn NodeSource);

impl HashSource for Adapt<'_> {
    type Error = StoreError;

    fn leaf_hashes(&self, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), StoreError> {
        for index in start..end {
            out.push(self.0.node(0, index)?);
        }
        Ok(())
    }

    fn node_hash(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        self.0.node(level, index)
    }
}

fn proof_err(e: ProofError<StoreError>) -> StoreError {
    match e {
        ProofError::Source(e) => e,
        other => StoreError::Invalid(other.to_string()),
    }
}

/// The tree head of the first `size` leaves, from stored nodes (`popcount(size)` reads).
pub async fn root_at(store: &dyn LogStore, size: u64) -> Result<Hash, StoreError> {
    with_nodes(store, |s| merkle::root(&Adapt(s), size), |e| e).await
}

/// The frontier of the first `size` leaves, from stored nodes.
pub async fn frontier_at(store: &dyn LogStore, size: u64) -> Result<Frontier, StoreError> {
    with_nodes(store, |s| Frontier::from_source(&Adapt(s), size), |e| e).await
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves.
pub async fn inclusion_proof(
    store: &dyn LogStore,
    index: u64,
    size: u64,
) -> Result<InclusionProof, StoreError> {
    with_nodes(
        store,
        |s| merkle::inclusion_proof(&Adapt(s), index, size),
        proof_err,
    )
    .await
}

/// The consistency proof from the tree of `old` leaves to the tree of `new` leaves.
pub async fn consistency_proof(
    store: &dyn LogStore,
    old: u64,
    new: u64,
) -> Result<ConsistencyProof, StoreError> {
    with_nodes(
        store,
        |s| merkle::consistency_proof(&Adapt(s), old, new),
        proof_err,
    )
    .await
}

/// A synchronous [`HashSource`] over a store, for code that needs one (evidence bundles). Each node is
/// one store call, driven with `Handle::block_on`: use it only on a blocking thread
/// (`tokio::task::spawn_blocking`), where blocking is allowed; on an async worker it panics.
#[derive(Clone)]
pub struct BlockingSource {
    store: Arc<dyn LogStore>,
    handle: Handle,
}

impl BlockingSource {
    /// A source over `store`, driving its futures on `handle`'s runtime.
    pub fn new(store: Arc<dyn LogStore>, handle: Handle) -> BlockingSource {
        BlockingSource { store, handle }
    }
}

impl std::fmt::Debug for BlockingSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingSource").finish_non_exhaustive()
    }
}

impl HashSource for BlockingSource {
    type Error = StoreError;

    fn leaf_hashes(&self, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), StoreError> {
        let wanted: Vec<NodeId> = (start..end)
            .map(|index| NodeId { level: 0, index })
            .collect();
        let got = self.handle.block_on(self.store.node_hashes(&wanted))?;
        for (node, hash) in wanted.into_iter().zip(got) {
            out.push(hash.ok_or_else(|| missing(node))?);
        }
        Ok(())
    }

    fn node_hash(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        let node = NodeId { level, index };
        let got = self.handle.block_on(self.store.node_hashes(&[node]))?;
        got.into_iter()
            .next()
            .flatten()
            .ok_or_else(|| missing(node))
    }
}

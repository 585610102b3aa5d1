//! The interface every backend implements. Async (boxed futures through `async-trait`) so the gateway
//! holds one `Arc<dyn LogStore>` whichever backend the configuration chose.

use async_trait::async_trait;
use custos_audit::merkle::{Frontier, Hash};

use crate::{Entry, EntryId, Leaf, NewEntry, NodeId, SearchQuery, Sequenced, StoreError};

/// The tree as stored: its size and right edge (from which its head follows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeState {
    /// Leaves in the log.
    pub size: u64,
    /// The complete subtree roots of those leaves.
    pub frontier: Frontier,
}

impl TreeState {
    /// The tree head (RFC 6962 root) of the stored tree.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree size it signs (as the store recorded it; verification reads the note, not this).
    pub size: u64,
    /// The C2SP signed note.
    pub note: String,
}

/// Proof that this process is, for now, the only sequencer of a log (an advisory lock held on a
/// dedicated connection, or trivially the single process of an embedded store).
#[async_trait]
pub trait SequencerLease: Send + Sync {
    /// Whether the lease is still held (the connection holding it is alive).
    async fn still_held(&self) -> bool;
    /// Gives the lease up, so another replica can take over at once.
    async fn release(self: Box<Self>);
}

/// A durable, append-only audit log: a queue of durable records, the Merkle log they are sequenced
/// into, its interior nodes, and its signed checkpoints.
///
/// Every method either does what it says or returns an error; none may report success for a write
/// that is not durable.
#[async_trait]
pub trait LogStore: Send + Sync + 'static {
    /// Queues records in one transaction, durable (fsync'd / WAL-flushed) when this returns `Ok`.
    /// Returns their ids in the order given.
    async fn enqueue(&self, batch: Vec<NewEntry>) -> Result<Vec<EntryId>, StoreError>;

    /// Moves up to `max` queued entries into the log, oldest id first, in one transaction that
    /// assigns contiguous leaf indexes after the stored tree size, stores the interior nodes they
    /// complete and the new frontier (see [`integrate`](crate::integrate)). Returns what it
    /// sequenced (empty when the queue is empty). Safe to call from several processes at once: each
    /// entry gets exactly one index.
    async fn sequence(&self, max: usize) -> Result<Vec<Sequenced>, StoreError>;

    /// The stored tree: size and frontier.
    async fn tree(&self) -> Result<TreeState, StoreError>;

    /// Entries queued but not yet sequenced.
    async fn queued(&self) -> Result<u64, StoreError>;

    /// The leaves with indexes in `start..end`, in index order. A leaf missing from the store is
    /// simply absent from the result (verification reports the gap).
    async fn read(&self, start: u64, end: u64) -> Result<Vec<Leaf>, StoreError>;

    /// The stored hashes of complete subtrees, in the order asked: level 0 is a leaf's hash, higher
    /// levels the interior nodes sequencing stored. `None` where the store has no such node.
    async fn node_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError>;

    /// Stores a signed checkpoint of `size` leaves (storing the same note twice keeps one).
    async fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError>;

    /// Every stored checkpoint, oldest first.
    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError>;

    /// The checkpoint with the largest size, if any.
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// Records matching `query`, by id in the query's order.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Entry>, StoreError>;

    /// One record by id.
    async fn entry(&self, id: EntryId) -> Result<Option<Entry>, StoreError>;

    /// Tries to become the log's sole sequencer; `None` when another holds the lease.
    async fn acquire_sequencer(&self) -> Result<Option<Box<dyn SequencerLease>>, StoreError>;

    /// Finishes pending writes and closes connections. Later calls fail with
    /// [`StoreError::Closed`].
    async fn close(&self);
}

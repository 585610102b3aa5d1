//! The right edge of a growing tree: one complete subtree root per set bit of its size. Appending a
//! leaf is amortised O(1) hashing; the tree head is O(log n). A sequencer keeps one of these in memory
//! and persists the nodes each append completes.

use super::{node_hash, source::fold_right, Hash, HashSource, EMPTY_ROOT};

/// The roots of the complete subtrees that make up a tree of [`size`](Frontier::size) leaves, largest
/// (leftmost) first. Also called a compact range `[0, size)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

/// A frontier restored from parts that cannot describe a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a frontier of size {size} has {expected} nodes, not {got}")]
pub struct FrontierError {
    /// The claimed tree size.
    pub size: u64,
    /// How many nodes that size needs (its number of set bits).
    pub expected: usize,
    /// How many were given.
    pub got: usize,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Restores a frontier from its size and its nodes, largest first (as [`nodes`](Self::nodes) gave
    /// them).
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Result<Frontier, FrontierError> {
        let expected = size.count_ones() as usize;
        if nodes.len() != expected {
            return Err(FrontierError {
                size,
                expected,
                got: nodes.len(),
            });
        }
        Ok(Frontier { size, nodes })
    }

    /// Reads the frontier of the first `size` leaves from a source: one
    /// [`node_hash`](HashSource::node_hash) per set bit of `size`.
    pub fn from_source<S: HashSource + ?Sized>(
        source: &S,
        size: u64,
    ) -> Result<Frontier, S::Error> {
        let mut nodes = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size >> level & 1 == 1 {
                nodes.push(source.node_hash(level, start >> level)?);
                start += 1 << level;
            }
        }
        Ok(Frontier { size, nodes })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The complete subtree roots, largest (leftmost) first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _, _| {});
    }

    /// Appends a leaf hash and reports every node this completes, bottom up, as `(level, index, hash)`:
    /// first the leaf itself `(0, size)`, then each interior node it closes. A store that saves these
    /// can serve [`HashSource::node_hash`] by lookup.
    pub fn push_with(&mut self, leaf: Hash, mut completed: impl FnMut(u8, u64, &Hash)) {
        let index = self.size;
        let mut hash = leaf;
        let mut level = 0u8;
        completed(level, index, &hash);
        while index >> level & 1 == 1 {
            // A set bit means a complete left sibling of the same size is waiting on the stack.
            let Some(left) = self.nodes.pop() else { break };
            hash = node_hash(&left, &hash);
            level += 1;
            completed(level, index >> level, &hash);
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// The tree head (RFC 6962 MTH) of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        fold_right(&self.nodes).unwrap_or(EMPTY_ROOT)
    }
}

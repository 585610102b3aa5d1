//! An in-memory log that keeps every completed node: for tests, benchmarks and verifiers that rebuild a
//! bundle's or a store's tree in memory.

use super::{leaf_hash, Frontier, Hash, HashSource};

/// Every completed node of a tree, level by level, plus its frontier. Memory: about 64 bytes per leaf.
#[derive(Debug, Clone, Default)]
pub struct MemoryLog {
    levels: Vec<Vec<Hash>>,
    frontier: Frontier,
}

/// A node that a [`MemoryLog`] does not have (beyond its size, or not yet complete).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no complete node at level {level}, index {index} in a log of {size} leaves")]
pub struct MemoryError {
    /// The node's level.
    pub level: u8,
    /// The node's index within its level.
    pub index: u64,
    /// The log's size.
    pub size: u64,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }

    /// Appends a leaf's bytes (its canonical record); returns its index.
    pub fn append(&mut self, leaf: &[u8]) -> u64 {
        self.append_hash(leaf_hash(leaf))
    }

    /// Appends a leaf by its leaf hash; returns its index.
    pub fn append_hash(&mut self, leaf: Hash) -> u64 {
        let index = self.frontier.size();
        let levels = &mut self.levels;
        self.frontier.push_with(leaf, |level, _, hash| {
            let level = usize::from(level);
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            levels[level].push(*hash);
        });
        index
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The tree head of all leaves.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The frontier of all leaves.
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }
}

impl HashSource for MemoryLog {
    type Error = MemoryError;

    fn leaf_hashes(&self, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), MemoryError> {
        for index in start..end {
            out.push(self.node_hash(0, index)?);
        }
        Ok(())
    }

    fn node_hash(&self, level: u8, index: u64) -> Result<Hash, MemoryError> {
        let missing = MemoryError {
            level,
            index,
            size: self.size(),
        };
        let row = self.levels.get(usize::from(level)).ok_or(missing.clone())?;
        let at = usize::try_from(index).map_err(|_| missing.clone())?;
        row.get(at).copied().ok_or(missing)
    }
}

//! Where proofs get their hashes from: the seam between the pure Merkle code and a store.

use super::{node_hash, Frontier, Hash};

/// Leaf hashes (and, optionally, stored interior nodes) of one log, by index.
///
/// A store implements [`leaf_hashes`](HashSource::leaf_hashes); proofs then cost O(n) hashing for the
/// largest subtree they touch. A store that also keeps the completed interior nodes that
/// [`Frontier::push_with`] reports overrides [`node_hash`](HashSource::node_hash) with a lookup, and every
/// tree head or proof costs O(log n) reads.
pub trait HashSource {
    /// Why a hash could not be read (a store's I/O error, a missing node).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Appends the leaf hashes of leaves `start..end`, in index order, to `out`: exactly `end - start`
    /// of them, or an error. Callers ask for at most [`LEAF_BATCH`](Self::LEAF_BATCH) leaves at a time.
    fn leaf_hashes(&self, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), Self::Error>;

    /// How many leaf hashes the default [`node_hash`](Self::node_hash) reads per call of
    /// [`leaf_hashes`](Self::leaf_hashes); bounds its memory.
    const LEAF_BATCH: u64 = 4096;

    /// The hash of the complete subtree of `2^level` leaves that starts at leaf `index << level`.
    ///
    /// The default recomputes it from leaf hashes, reading [`LEAF_BATCH`](Self::LEAF_BATCH) at a time,
    /// in O(2^level) time and O(`LEAF_BATCH` + level) memory.
    fn node_hash(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        let start = index << level;
        let end = start + (1u64 << level);
        if level == 0 {
            let mut one = Vec::with_capacity(1);
            self.leaf_hashes(start, end, &mut one)?;
            return Ok(one.first().copied().unwrap_or_default());
        }
        let mut frontier = Frontier::new();
        let mut batch = Vec::new();
        let mut at = start;
        while at < end {
            let upto = end.min(at + Self::LEAF_BATCH.max(1));
            batch.clear();
            self.leaf_hashes(at, upto, &mut batch)?;
            for leaf in &batch {
                frontier.push(*leaf);
            }
            at = upto;
        }
        Ok(frontier.root())
    }
}

impl<S: HashSource + ?Sized> HashSource for &S {
    type Error = S::Error;
    const LEAF_BATCH: u64 = S::LEAF_BATCH;

    fn leaf_hashes(&self, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), Self::Error> {
        (**self).leaf_hashes(start, end, out)
    }

    fn node_hash(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        (**self).node_hash(level, index)
    }
}

/// A slice of leaf hashes is a source (for tests and small in-memory logs); interior nodes are
/// recomputed from the leaves.
impl HashSource for [Hash] {
    type Error = super::MemoryError;

    fn leaf_hashes(&self, start: u64, end: u64, out: &mut Vec<Hash>) -> Result<(), Self::Error> {
        let size = self.len() as u64;
        let missing = |index| super::MemoryError {
            level: 0,
            index,
            size,
        };
        let s = usize::try_from(start).map_err(|_| missing(start))?;
        let e = usize::try_from(end).map_err(|_| missing(end))?;
        let slice = self.get(s..e).ok_or(missing(end.saturating_sub(1)))?;
        out.extend_from_slice(slice);
        Ok(())
    }
}

/// Folds complete subtree hashes, given left to right, into the hash of the range they cover
/// (right to left, as RFC 6962 nests an incomplete tree's right edge).
pub(crate) fn fold_right(parts: &[Hash]) -> Option<Hash> {
    let (last, rest) = parts.split_last()?;
    Some(
        rest.iter()
            .rev()
            .fold(*last, |acc, left| node_hash(left, &acc)),
    )
}

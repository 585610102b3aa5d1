//! The RFC 6962/9162 Merkle tree over SHA-256: leaf and node hashing with 0x00/0x01 domain separation,
//! tree heads, and inclusion and consistency proofs, generated from a [`HashSource`] and verified from
//! hashes alone.
//!
//! Nodes are named as in transparency-dev/merkle's `compact` package: `(level, index)` is the complete
//! subtree of `2^level` leaves that starts at leaf `index << level`. Only complete subtrees have a name;
//! the hash of an incomplete right edge is recomputed from complete ones, so a store that keeps every
//! completed node (what [`Frontier::push_with`] reports) can answer any proof with O(log n) reads.

mod frontier;
mod hash;
mod memory;
mod prove;
mod source;
mod verify;

#[cfg(test)]
mod tests;

pub use frontier::{Frontier, FrontierError};
pub use hash::{leaf_hash, node_hash, Hash, HashParseError, EMPTY_ROOT};
pub use memory::{MemoryError, MemoryLog};
pub use prove::{consistency_proof, inclusion_proof, root, subtree_hash, ProofError};
pub use source::HashSource;
pub use verify::{ConsistencyError, ConsistencyProof, InclusionError, InclusionProof};

/// The largest power of two strictly below `n` (`n >= 2`): where RFC 6962 splits a tree of `n` leaves.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The number of hashes in an inclusion proof for leaf `index` in a tree of `size` leaves
/// (`index < size`).
pub fn inclusion_proof_len(index: u64, size: u64) -> usize {
    // One hash per split on the way down from the root to the leaf (RFC 9162 §2.1.3.1).
    let (mut n, mut m, mut len) = (size, index, 0);
    while n > 1 {
        let k = split_point(n);
        if m < k {
            n = k;
        } else {
            m -= k;
            n -= k;
        }
        len += 1;
    }
    len
}

/// The number of hashes in a consistency proof from `old` to `new` leaves (`0 < old <= new`).
pub fn consistency_proof_len(old: u64, new: u64) -> usize {
    if old == new {
        return 0;
    }
    let (mut m, mut n, mut complete, mut len) = (old, new, true, 0usize);
    while m != n {
        let k = split_point(n);
        if m <= k {
            n = k;
        } else {
            m -= k;
            n -= k;
            complete = false;
        }
        len += 1;
    }
    if !complete {
        len += 1;
    }
    len
}

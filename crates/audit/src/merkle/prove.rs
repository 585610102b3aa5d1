//! Tree heads and proofs from a [`HashSource`], following RFC 9162 §2.1.1 (MTH), §2.1.3.1 (PATH) and
//! §2.1.4.1 (PROOF/SUBPROOF) literally, with every subtree read as complete nodes.

use super::{
    source::fold_right, split_point, ConsistencyProof, Hash, HashSource, InclusionProof, EMPTY_ROOT,
};

/// Why a proof could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ProofError<E: std::error::Error + 'static> {
    /// The leaf is not in a tree of that size.
    #[error("leaf {index} is not in a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size asked for.
        size: u64,
    },
    /// Consistency needs `0 < old <= new`.
    #[error("no consistency proof from {old} to {new} leaves (needs 0 < old <= new)")]
    BadSizes {
        /// The older (smaller) size.
        old: u64,
        /// The newer (larger) size.
        new: u64,
    },
    /// The source could not supply a hash.
    #[error("reading a hash: {0}")]
    Source(#[source] E),
}

/// The tree head of the first `size` leaves: RFC 6962 `MTH(D[0:size])`.
pub fn root<S: HashSource + ?Sized>(source: &S, size: u64) -> Result<Hash, S::Error> {
    subtree_hash(source, 0, size)
}

/// `MTH(D[start:start+len])` for a range that RFC 6962's recursion produces: `start` is a multiple of the
/// largest power of two not above `len`. Read as `popcount(len)` complete nodes, folded right to left.
pub fn subtree_hash<S: HashSource + ?Sized>(
    source: &S,
    start: u64,
    len: u64,
) -> Result<Hash, S::Error> {
    if len == 0 {
        return Ok(EMPTY_ROOT);
    }
    let mut parts = Vec::with_capacity(len.count_ones() as usize);
    let mut at = start;
    for level in (0..64u8).rev() {
        if len >> level & 1 == 1 {
            debug_assert_eq!(at % (1 << level), 0, "unaligned subtree {start}+{len}");
            parts.push(source.node_hash(level, at >> level)?);
            at += 1 << level;
        }
    }
    Ok(fold_right(&parts).unwrap_or(EMPTY_ROOT))
}

/// The inclusion proof (audit path) of leaf `index` in the tree of the first `size` leaves.
pub fn inclusion_proof<S: HashSource + ?Sized>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<InclusionProof, ProofError<S::Error>> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut hashes = Vec::new();
    path(source, index, 0, size, &mut hashes).map_err(ProofError::Source)?;
    Ok(InclusionProof {
        index,
        size,
        hashes,
    })
}

/// PATH(m, D[start:start+n]): the sibling hashes from the leaf up, so the sub-path comes first.
fn path<S: HashSource + ?Sized>(
    source: &S,
    m: u64,
    start: u64,
    n: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(source, m, start, k, out)?;
        out.push(subtree_hash(source, start + k, n - k)?);
    } else {
        path(source, m - k, start + k, n - k, out)?;
        out.push(subtree_hash(source, start, k)?);
    }
    Ok(())
}

/// The consistency proof that the tree of `old` leaves is a prefix of the tree of `new` leaves.
pub fn consistency_proof<S: HashSource + ?Sized>(
    source: &S,
    old: u64,
    new: u64,
) -> Result<ConsistencyProof, ProofError<S::Error>> {
    if old == 0 || old > new {
        return Err(ProofError::BadSizes { old, new });
    }
    let mut hashes = Vec::new();
    subproof(source, old, 0, new, true, &mut hashes).map_err(ProofError::Source)?;
    Ok(ConsistencyProof { old, new, hashes })
}

/// SUBPROOF(m, D[start:start+n], b).
fn subproof<S: HashSource + ?Sized>(
    source: &S,
    m: u64,
    start: u64,
    n: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if m == n {
        if !complete {
            out.push(subtree_hash(source, start, n)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(source, m, start, k, complete, out)?;
        out.push(subtree_hash(source, start + k, n - k)?);
    } else {
        subproof(source, m - k, start + k, n - k, false, out)?;
        out.push(subtree_hash(source, start, k)?);
    }
    Ok(())
}

//! Proof verification from hashes alone, as RFC 9162 §2.1.3.2 and §2.1.4.2 spell it out. Nothing here
//! reads a store: an examiner's verifier is this file plus SHA-256.

use super::{consistency_proof_len, inclusion_proof_len, node_hash, Hash, EMPTY_ROOT};

/// A Merkle audit path: the hashes that lead from leaf `index` to the root of a tree of `size` leaves,
/// the leaf's sibling first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The leaf's zero-based index.
    pub index: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// Sibling hashes, from the leaf's sibling up to a child of the root.
    pub hashes: Vec<Hash>,
}

/// Why an inclusion proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InclusionError {
    /// The index is not in the tree.
    #[error("leaf {index} is not in a tree of {size} leaves")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// Too many or too few hashes for that index and size.
    #[error("an inclusion proof for leaf {index} in a tree of {size} leaves has {expected} hashes, this one has {got}")]
    WrongLength {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
        /// The length the index and size call for.
        expected: usize,
        /// The proof's length.
        got: usize,
    },
    /// The path leads to another root: the leaf, a proof hash, the index or the root is not what it
    /// claims to be.
    #[error("leaf {index} with this proof hashes to root {computed}, the tree head of size {size} is {expected}")]
    RootMismatch {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
        /// The root the path leads to.
        computed: Hash,
        /// The root it should lead to.
        expected: Hash,
    },
}

impl InclusionProof {
    /// The root that `leaf` and this path lead to (RFC 9162 §2.1.3.2 steps 1–4).
    pub fn root_from(&self, leaf: &Hash) -> Result<Hash, InclusionError> {
        let (index, size) = (self.index, self.size);
        if index >= size {
            return Err(InclusionError::IndexOutOfRange { index, size });
        }
        let expected = inclusion_proof_len(index, size);
        if self.hashes.len() != expected {
            return Err(InclusionError::WrongLength {
                index,
                size,
                expected,
                got: self.hashes.len(),
            });
        }
        let (mut fn_, mut sn) = (index, size - 1);
        let mut r = *leaf;
        for p in &self.hashes {
            if sn == 0 {
                return Err(InclusionError::WrongLength {
                    index,
                    size,
                    expected,
                    got: self.hashes.len(),
                });
            }
            if fn_ & 1 == 1 || fn_ == sn {
                r = node_hash(p, &r);
                if fn_ & 1 == 0 {
                    while fn_ & 1 == 0 && fn_ != 0 {
                        fn_ >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                r = node_hash(&r, p);
            }
            fn_ >>= 1;
            sn >>= 1;
        }
        if sn != 0 {
            return Err(InclusionError::WrongLength {
                index,
                size,
                expected,
                got: self.hashes.len(),
            });
        }
        Ok(r)
    }

    /// Checks that `leaf` is at [`index`](Self::index) in the tree of [`size`](Self::size) leaves whose
    /// head is `root`.
    pub fn verify(&self, leaf: &Hash, root: &Hash) -> Result<(), InclusionError> {
        let computed = self.root_from(leaf)?;
        if computed != *root {
            return Err(InclusionError::RootMismatch {
                index: self.index,
                size: self.size,
                computed,
                expected: *root,
            });
        }
        Ok(())
    }
}

/// A Merkle consistency proof: the tree of `old` leaves is a prefix of the tree of `new` leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The older (smaller) tree size.
    pub old: u64,
    /// The newer (larger) tree size.
    pub new: u64,
    /// The proof hashes, as RFC 9162 §2.1.4.1 orders them.
    pub hashes: Vec<Hash>,
}

/// Why a consistency proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsistencyError {
    /// The older size is larger than the newer one.
    #[error("tree size {old} cannot be a prefix of the smaller tree of {new}")]
    OldLarger {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// A tree of zero leaves has the empty root, and needs no proof.
    #[error("the empty tree's head must be SHA-256(\"\") and its consistency proof empty")]
    EmptyTree,
    /// Two heads of the same size must be equal, with an empty proof.
    #[error("two tree heads of size {size} differ ({old_root} and {new_root}): the log forked")]
    SameSizeDiffer {
        /// The size of both.
        size: u64,
        /// The older head.
        old_root: Hash,
        /// The newer head.
        new_root: Hash,
    },
    /// Too many or too few hashes for these sizes.
    #[error(
        "a consistency proof from {old} to {new} leaves has {expected} hashes, this one has {got}"
    )]
    WrongLength {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
        /// The length the sizes call for.
        expected: usize,
        /// The proof's length.
        got: usize,
    },
    /// The proof does not reproduce the older head: the older tree is not a prefix of the newer one.
    #[error("the proof does not lead to the tree head of size {old} ({expected}, computed {computed}): the log was rewritten before leaf {old}")]
    OldRootMismatch {
        /// The older size.
        old: u64,
        /// The head it should reproduce.
        expected: Hash,
        /// The head it reproduces.
        computed: Hash,
    },
    /// The proof does not reproduce the newer head.
    #[error(
        "the proof does not lead to the tree head of size {new} ({expected}, computed {computed})"
    )]
    NewRootMismatch {
        /// The newer size.
        new: u64,
        /// The head it should reproduce.
        expected: Hash,
        /// The head it reproduces.
        computed: Hash,
    },
}

impl ConsistencyProof {
    /// Checks that `old_root` (of [`old`](Self::old) leaves) and `new_root` (of [`new`](Self::new)
    /// leaves) are heads of one append-only log (RFC 9162 §2.1.4.2; for `old == 0`, the tlog-witness
    /// rule: the empty tree is consistent with every tree and needs no proof).
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), ConsistencyError> {
        let (old, new) = (self.old, self.new);
        if old > new {
            return Err(ConsistencyError::OldLarger { old, new });
        }
        if old == 0 {
            let new_ok = new != 0 || *new_root == EMPTY_ROOT;
            if *old_root != EMPTY_ROOT || !self.hashes.is_empty() || !new_ok {
                return Err(ConsistencyError::EmptyTree);
            }
            return Ok(());
        }
        let expected = consistency_proof_len(old, new);
        let wrong_length = || ConsistencyError::WrongLength {
            old,
            new,
            expected,
            got: self.hashes.len(),
        };
        if old == new {
            if !self.hashes.is_empty() {
                return Err(wrong_length());
            }
            if old_root != new_root {
                return Err(ConsistencyError::SameSizeDiffer {
                    size: old,
                    old_root: *old_root,
                    new_root: *new_root,
                });
            }
            return Ok(());
        }
        if self.hashes.len() != expected {
            return Err(wrong_length());
        }
        let (fr, sr, sn) = self.fold(old_root).ok_or_else(wrong_length)?;
        if sn != 0 {
            return Err(wrong_length());
        }
        if fr != *old_root {
            return Err(ConsistencyError::OldRootMismatch {
                old,
                expected: *old_root,
                computed: fr,
            });
        }
        if sr != *new_root {
            return Err(ConsistencyError::NewRootMismatch {
                new,
                expected: *new_root,
                computed: sr,
            });
        }
        Ok(())
    }

    /// Steps 2–6 of RFC 9162 §2.1.4.2: the two heads the proof leads to, and the final `sn`.
    fn fold(&self, old_root: &Hash) -> Option<(Hash, Hash, u64)> {
        let mut path = self.hashes.iter();
        // A power-of-two old tree is itself a node of the new tree, so its head starts the path.
        let first = if self.old.is_power_of_two() {
            *old_root
        } else {
            *path.next()?
        };
        let (mut fn_, mut sn) = (self.old - 1, self.new - 1);
        while fn_ & 1 == 1 {
            fn_ >>= 1;
            sn >>= 1;
        }
        let (mut fr, mut sr) = (first, first);
        for c in path {
            if sn == 0 {
                return None;
            }
            if fn_ & 1 == 1 || fn_ == sn {
                fr = node_hash(c, &fr);
                sr = node_hash(c, &sr);
                if fn_ & 1 == 0 {
                    while fn_ & 1 == 0 && fn_ != 0 {
                        fn_ >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                sr = node_hash(&sr, c);
            }
            fn_ >>= 1;
            sn >>= 1;
        }
        Some((fr, sr, sn))
    }
}

//! Whole-log verification: recompute the tree from the leaves, in order, and hold every signed
//! checkpoint against it. Streaming: memory is O(log n + checkpoints), whatever the log's length.
//!
//! Every failure says where: which checkpoint (its position in the input and its size), which leaves.
//! A root mismatch can only be narrowed down to the leaves between the last checkpoint that still
//! matches and the first that does not: the signed checkpoints are the only anchors an attacker cannot
//! recompute. A store that also keeps each leaf's hash lets [`LogVerifier::push_leaf_with_hash`] name
//! the exact record whose bytes changed.

use crate::canonical::{self, CanonicalError};
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::merkle::{leaf_hash, Frontier, Hash, EMPTY_ROOT};
use crate::note::VerifierKey;

/// Where and why a log does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A checkpoint's signature or text is bad (tampered, signed by another key, malformed).
    #[error("checkpoint #{position}{}: {source}", size_note(*.size))]
    Checkpoint {
        /// Its 0-based position among the checkpoints given.
        position: usize,
        /// Its claimed size, when the text could be read.
        size: Option<u64>,
        /// Why.
        #[source]
        source: CheckpointError,
    },
    /// A checkpoint names another log.
    #[error("checkpoint #{position} (size {size}) is for log {found:?}, expected {expected:?}")]
    Origin {
        /// Its position among the checkpoints given.
        position: usize,
        /// Its size.
        size: u64,
        /// The expected origin.
        expected: String,
        /// Its origin.
        found: String,
    },
    /// Two validly signed checkpoints of the same size with different roots: the log forked.
    #[error("checkpoints #{first} and #{second} both sign size {size} with different roots ({first_root} vs {second_root}): the log forked")]
    Fork {
        /// The size both claim.
        size: u64,
        /// Position of one.
        first: usize,
        /// Position of the other.
        second: usize,
        /// Root of the first.
        first_root: Hash,
        /// Root of the second.
        second_root: Hash,
    },
    /// The leaves do not hash to a checkpoint's root: some leaf in `from..size` was changed, removed,
    /// inserted or moved.
    #[error("leaves {from}..{size} do not match checkpoint #{position} of size {size} (signed root {signed}, recomputed {computed}){}", good_note(*.from))]
    RootMismatch {
        /// The failing checkpoint's position.
        position: usize,
        /// Its size.
        size: u64,
        /// The size of the last checkpoint that still matched (0 if none): the change is at or after it.
        from: u64,
        /// The signed root.
        signed: Hash,
        /// The recomputed root.
        computed: Hash,
    },
    /// A checkpoint covers more leaves than the log has: leaves were cut off the end (or an older copy
    /// of the log was restored).
    #[error("checkpoint #{position} signs {size} leaves but the log has only {leaves}: leaves {leaves}..{size} are missing (truncated, or an older copy was restored)")]
    Truncated {
        /// The checkpoint's position.
        position: usize,
        /// Its size.
        size: u64,
        /// Leaves present.
        leaves: u64,
    },
    /// A leaf's bytes do not match the leaf hash stored beside them.
    #[error("leaf {index}: its bytes hash to {computed}, the stored leaf hash is {stored}: this record was changed")]
    LeafHash {
        /// The leaf's index.
        index: u64,
        /// The stored hash.
        stored: Hash,
        /// The hash of the bytes.
        computed: Hash,
    },
    /// A leaf is not canonical JSON (a record rewritten by hand, or not a record).
    #[error("leaf {index} is not a canonical record: {source}")]
    NotCanonical {
        /// The leaf's index.
        index: u64,
        /// Why.
        #[source]
        source: CanonicalError,
    },
}

fn size_note(size: Option<u64>) -> String {
    size.map(|s| format!(" (size {s})")).unwrap_or_default()
}

fn good_note(from: u64) -> String {
    if from == 0 {
        String::new()
    } else {
        format!("; leaves 0..{from} still match an earlier checkpoint")
    }
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// Leaves read.
    pub leaves: u64,
    /// The recomputed head of all leaves.
    pub root: Hash,
    /// Checkpoints verified.
    pub checkpoints: usize,
    /// The largest verified checkpoint.
    pub latest: Option<Checkpoint>,
    /// Leaves after the latest checkpoint (not yet covered by a signature).
    pub unsigned_tail: u64,
}

/// Verifies a log leaf by leaf against a set of signed checkpoints.
#[derive(Debug)]
pub struct LogVerifier {
    /// (position, checkpoint), sorted by size, duplicates (same size and root) removed.
    checkpoints: Vec<(usize, Checkpoint)>,
    next: usize,
    last_good: u64,
    frontier: Frontier,
    require_canonical: bool,
}

impl LogVerifier {
    /// Opens every signed checkpoint with `key` (each must verify, and name `origin`; the origin
    /// defaults to the key's name), and checks that none contradicts another.
    pub fn new<S: AsRef<str>>(
        key: &VerifierKey,
        origin: Option<&str>,
        signed: &[S],
    ) -> Result<LogVerifier, VerifyError> {
        let origin = origin.unwrap_or(key.name());
        let mut checkpoints = Vec::with_capacity(signed.len());
        for (position, note) in signed.iter().enumerate() {
            let note = note.as_ref();
            let checkpoint =
                Checkpoint::open(note, key).map_err(|source| VerifyError::Checkpoint {
                    position,
                    size: claimed_size(note),
                    source,
                })?;
            if checkpoint.origin != origin {
                return Err(VerifyError::Origin {
                    position,
                    size: checkpoint.size,
                    expected: origin.to_owned(),
                    found: checkpoint.origin,
                });
            }
            checkpoints.push((position, checkpoint));
        }
        checkpoints.sort_by_key(|(position, c)| (c.size, *position));
        let mut deduped: Vec<(usize, Checkpoint)> = Vec::with_capacity(checkpoints.len());
        for (position, c) in checkpoints {
            if let Some((first, prev)) = deduped.last() {
                if prev.size == c.size {
                    if prev.root != c.root {
                        return Err(VerifyError::Fork {
                            size: c.size,
                            first: *first,
                            second: position,
                            first_root: prev.root,
                            second_root: c.root,
                        });
                    }
                    continue;
                }
            }
            deduped.push((position, c));
        }
        let mut verifier = LogVerifier {
            checkpoints: deduped,
            next: 0,
            last_good: 0,
            frontier: Frontier::new(),
            require_canonical: false,
        };
        verifier.check_reached()?;
        Ok(verifier)
    }

    /// Also require every leaf to be canonical JSON (RFC 8785), as Custos records are.
    pub fn require_canonical(mut self, yes: bool) -> LogVerifier {
        self.require_canonical = yes;
        self
    }

    /// Leaves pushed so far.
    pub fn leaves(&self) -> u64 {
        self.frontier.size()
    }

    /// Adds the next leaf's bytes.
    pub fn push_leaf(&mut self, leaf: &[u8]) -> Result<(), VerifyError> {
        if self.require_canonical {
            let index = self.frontier.size();
            canonical::check(leaf).map_err(|source| VerifyError::NotCanonical { index, source })?;
        }
        self.push_hash(leaf_hash(leaf))
    }

    /// Adds the next leaf's bytes and checks them against the leaf hash a store kept beside them.
    pub fn push_leaf_with_hash(&mut self, leaf: &[u8], stored: &Hash) -> Result<(), VerifyError> {
        let computed = leaf_hash(leaf);
        if computed != *stored {
            return Err(VerifyError::LeafHash {
                index: self.frontier.size(),
                stored: *stored,
                computed,
            });
        }
        self.push_leaf(leaf)
    }

    /// Adds the next leaf by its leaf hash.
    pub fn push_hash(&mut self, leaf: Hash) -> Result<(), VerifyError> {
        self.frontier.push(leaf);
        self.check_reached()
    }

    /// Checks every checkpoint whose size the leaves have now reached.
    fn check_reached(&mut self) -> Result<(), VerifyError> {
        let size = self.frontier.size();
        while let Some((position, c)) = self.checkpoints.get(self.next) {
            if c.size != size {
                break;
            }
            let computed = if size == 0 {
                EMPTY_ROOT
            } else {
                self.frontier.root()
            };
            if computed != c.root {
                return Err(VerifyError::RootMismatch {
                    position: *position,
                    size,
                    from: self.last_good,
                    signed: c.root,
                    computed,
                });
            }
            self.last_good = size;
            self.next += 1;
        }
        Ok(())
    }

    /// Ends verification: every checkpoint must have been reached.
    pub fn finish(self) -> Result<LogReport, VerifyError> {
        if let Some((position, c)) = self.checkpoints.get(self.next) {
            return Err(VerifyError::Truncated {
                position: *position,
                size: c.size,
                leaves: self.frontier.size(),
            });
        }
        let latest = self.checkpoints.last().map(|(_, c)| c.clone());
        let leaves = self.frontier.size();
        Ok(LogReport {
            leaves,
            root: self.frontier.root(),
            checkpoints: self.checkpoints.len(),
            unsigned_tail: leaves - latest.as_ref().map_or(0, |c| c.size),
            latest,
        })
    }
}

/// The size line of a checkpoint note, if it can be read without trusting it (for error messages).
fn claimed_size(note: &str) -> Option<u64> {
    note.split('\n').nth(1)?.parse().ok()
}

/// Verifies a whole log: `leaves` in index order against `signed` checkpoints under `key`.
pub fn verify_log<I, L>(
    leaves: I,
    signed: &[impl AsRef<str>],
    key: &VerifierKey,
) -> Result<LogReport, VerifyError>
where
    I: IntoIterator<Item = L>,
    L: AsRef<[u8]>,
{
    let mut verifier = LogVerifier::new(key, None, signed)?;
    for leaf in leaves {
        verifier.push_leaf(leaf.as_ref())?;
    }
    verifier.finish()
}

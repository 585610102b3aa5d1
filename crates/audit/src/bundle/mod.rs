//! Evidence bundles: a directory an examiner can verify with nothing but its files and the log's public
//! key.
//!
//! ```text
//! BUNDLE                       custos.dev/evidence-bundle@v1, records <n>, contiguous yes|no
//! records.jsonl                one record per line, each line exactly its canonical bytes (the leaf)
//! proofs/<index>.tlog-proof    C2SP tlog-proof of each record, by leaf index
//! checkpoint                   the signed checkpoint every proof is for
//! verifier-key                 the log's verifier key (to compare with the one you trust)
//! consistency/<size>.tlog-consistency
//!                              optional: the checkpoint of <size> leaves is a prefix of `checkpoint`
//! MANIFEST                     `sha256sum` lines for every other file (`sha256sum -c MANIFEST`)
//! ```
//!
//! Line `k` of `records.jsonl` goes with the `k`-th proof in ascending index order. The MANIFEST only
//! guards against damage in transit: authenticity comes from the checkpoint's signature and the proofs.
//!
//! This module reads and writes files (one file at a time; memory stays bounded by the largest file
//! but `records.jsonl`, which is streamed).

mod manifest;
mod read;
mod write;

#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;

use crate::canonical::CanonicalError;
#[cfg(test)]
use crate::checkpoint::Checkpoint;
use crate::checkpoint::CheckpointError;
use crate::merkle::{Hash, InclusionError};
use crate::note::KeyError;
use crate::proof::{ProofCheckError, ProofFormatError};

pub use manifest::{sha256_file, Manifest};
pub use read::{verify_bundle, BundleReport, BundleTrust, KeySource};
pub use write::{write, BundleSpec, BundleSummary};

/// The first line of `BUNDLE`.
pub const BUNDLE_HEADER: &str = "custos.dev/evidence-bundle@v1";
/// The descriptor file.
pub const DESCRIPTOR: &str = "BUNDLE";
/// The records file.
pub const RECORDS: &str = "records.jsonl";
/// The signed checkpoint file.
pub const CHECKPOINT: &str = "checkpoint";
/// The verifier key file.
pub const VERIFIER_KEY: &str = "verifier-key";
/// The manifest file.
pub const MANIFEST: &str = "MANIFEST";
/// The directory of inclusion proofs.
pub const PROOFS_DIR: &str = "proofs";
/// The directory of consistency proofs.
pub const CONSISTENCY_DIR: &str = "consistency";
/// Suffix of inclusion proof files.
pub const PROOF_SUFFIX: &str = ".tlog-proof";
/// Suffix of consistency proof files.
pub const CONSISTENCY_SUFFIX: &str = ".tlog-consistency";

/// Why a bundle cannot be written or does not verify, and where.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The target directory exists and is not empty.
    #[error("{0} is not empty; a bundle is written into a new directory")]
    NotEmpty(PathBuf),
    /// A MANIFEST line is malformed.
    #[error("MANIFEST line {line}: expected \"<sha256 hex>  <relative path>\"")]
    ManifestLine {
        /// 1-based line.
        line: usize,
    },
    /// A file's SHA-256 is not the MANIFEST's.
    #[error(
        "{path}: SHA-256 is {actual}, MANIFEST says {listed}: the file was changed after export"
    )]
    ManifestMismatch {
        /// The file.
        path: String,
        /// What MANIFEST lists.
        listed: Hash,
        /// What the file hashes to.
        actual: Hash,
    },
    /// A file listed in MANIFEST is missing.
    #[error("{0}: listed in MANIFEST but missing")]
    Missing(String),
    /// A file is present but not listed in MANIFEST.
    #[error("{0}: present but not listed in MANIFEST")]
    Unlisted(String),
    /// `BUNDLE` is malformed.
    #[error("BUNDLE: {0}")]
    Descriptor(&'static str),
    /// The verifier key file is not a key.
    #[error("verifier-key: {0}")]
    Key(#[from] KeyError),
    /// The bundle's key is not the key the examiner trusts.
    #[error("verifier-key is {bundle}, but the trusted key is {trusted}: the bundle was signed by another key")]
    KeyMismatch {
        /// The bundle's key.
        bundle: String,
        /// The trusted key.
        trusted: String,
    },
    /// The checkpoint does not verify.
    #[error("checkpoint: {0}")]
    Checkpoint(#[source] CheckpointError),
    /// The checkpoint's root is not the source's root at that size (writing).
    #[error(
        "checkpoint of size {size} signs root {signed}, the log's root at that size is {actual}"
    )]
    CheckpointRoot {
        /// Its size.
        size: u64,
        /// The signed root.
        signed: Hash,
        /// The source's root.
        actual: Hash,
    },
    /// A proof file's name is not `<index>.tlog-proof`.
    #[error("{0}: not named <leaf index>{PROOF_SUFFIX}")]
    ProofName(String),
    /// A proof file is malformed.
    #[error("{path}: {source}")]
    ProofFormat {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: ProofFormatError,
    },
    /// A proof's `index` line is not its file name's index.
    #[error("{path}: says index {inside}")]
    ProofIndex {
        /// The file.
        path: String,
        /// The index inside.
        inside: u64,
    },
    /// A proof embeds another checkpoint than the bundle's.
    #[error("{0}: embeds a different checkpoint than the bundle's `checkpoint`")]
    ProofCheckpoint(String),
    /// Records and proofs do not pair up.
    #[error("records.jsonl has {records} records but proofs/ has {proofs} proofs: a record or a proof was removed or added")]
    Count {
        /// Lines in records.jsonl.
        records: u64,
        /// Files in proofs/.
        proofs: u64,
    },
    /// A record is not canonical JSON.
    #[error("records.jsonl line {line} (leaf {index}) is not a canonical record: {source}")]
    NotCanonical {
        /// 1-based line.
        line: u64,
        /// Its leaf index.
        index: u64,
        /// Why.
        #[source]
        source: CanonicalError,
    },
    /// A record is not the leaf its proof proves: it was changed, or records were swapped or removed.
    #[error("records.jsonl line {line}: not the leaf at index {index} that the checkpoint of size {size} signs ({source}): the record was changed, moved or replaced")]
    NotIncluded {
        /// 1-based line.
        line: u64,
        /// The leaf index its proof is for.
        index: u64,
        /// The checkpoint's size.
        size: u64,
        /// Why.
        #[source]
        source: InclusionError,
    },
    /// The bundle says it is contiguous but a leaf is missing.
    #[error("records.jsonl line {line} is leaf {index}, but the previous record was leaf {previous}: leaves {}..{index} are missing from a contiguous export", previous + 1)]
    Gap {
        /// 1-based line.
        line: u64,
        /// Its index.
        index: u64,
        /// The previous record's index.
        previous: u64,
    },
    /// The pinned checkpoint does not verify.
    #[error("pinned checkpoint: {0}")]
    Pin(#[source] CheckpointError),
    /// The pinned checkpoint is newer than the bundle's: the log shrank or was rolled back.
    #[error("the bundle's checkpoint signs {bundle} leaves, fewer than the {pin} of your pinned checkpoint: the log was rolled back or truncated (or the bundle is stale)")]
    OlderThanPin {
        /// The bundle checkpoint's size.
        bundle: u64,
        /// The pin's size.
        pin: u64,
    },
    /// The pinned checkpoint contradicts the bundle's.
    #[error("pinned checkpoint (size {pin}) is not a prefix of the bundle's checkpoint (size {bundle}): {source}")]
    PinInconsistent {
        /// The pin's size.
        pin: u64,
        /// The bundle checkpoint's size.
        bundle: u64,
        /// Why.
        #[source]
        source: ProofCheckError,
    },
    /// No consistency proof from the pinned size in the bundle.
    #[error("the bundle has no consistency proof from size {pin} (consistency/{pin}{CONSISTENCY_SUFFIX}); export it again with that size")]
    NoConsistencyProof {
        /// The pin's size.
        pin: u64,
    },
    /// A consistency file ends in another checkpoint than the bundle's.
    #[error("{0}: ends in a different checkpoint than the bundle's `checkpoint`")]
    ConsistencyCheckpoint(String),
    /// Records given to the writer are not in ascending leaf order, or beyond the checkpoint.
    #[error("record for leaf {index} after leaf {previous} (records must be in ascending order, below the checkpoint's size {size})")]
    Order {
        /// The offending index.
        index: u64,
        /// The previous index.
        previous: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// A consistency proof was asked for from a size the checkpoint does not cover.
    #[error("no consistency proof from size {old} to the checkpoint's {size}")]
    ConsistencySize {
        /// The size asked for.
        old: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// Reading a hash from the log failed (writing).
    #[error("reading the log: {0}")]
    Source(String),
}

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> BundleError {
    let path = path.into();
    move |source| BundleError::Io { path, source }
}

/// The `BUNDLE` descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Number of records.
    pub records: u64,
    /// Whether the records are every leaf from the first to the last (an unfiltered export).
    pub contiguous: bool,
}

impl Descriptor {
    /// The file's text.
    pub fn to_text(&self) -> String {
        format!(
            "{BUNDLE_HEADER}\nrecords {}\ncontiguous {}\n",
            self.records,
            if self.contiguous { "yes" } else { "no" }
        )
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Descriptor, BundleError> {
        let mut lines = text.lines();
        if lines.next() != Some(BUNDLE_HEADER) {
            return Err(BundleError::Descriptor(
                "first line is not custos.dev/evidence-bundle@v1",
            ));
        }
        let records = lines
            .next()
            .and_then(|l| l.strip_prefix("records "))
            .and_then(|n| n.parse().ok())
            .ok_or(BundleError::Descriptor(
                "second line is not \"records <n>\"",
            ))?;
        let contiguous = match lines.next() {
            Some("contiguous yes") => true,
            Some("contiguous no") => false,
            _ => {
                return Err(BundleError::Descriptor(
                    "third line is not \"contiguous yes|no\"",
                ))
            }
        };
        Ok(Descriptor {
            records,
            contiguous,
        })
    }
}

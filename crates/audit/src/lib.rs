//! The tamper-evident audit log's pure core: what a record is, how it becomes bytes, and how those bytes
//! are bound into an RFC 6962/9162 Merkle log whose signed checkpoints anyone can verify offline.
//!
//! Owns: [`Record`] (a superset of the `audit.k8s.io/v1` Event), its [`canonical`] encoding (RFC 8785
//! JCS; the Merkle leaf is exactly those bytes), the [`merkle`] tree (leaf and node hashing, tree heads,
//! inclusion and consistency proofs over a [`HashSource`], an O(log n) [`Frontier`] for appends),
//! [`note`] (C2SP signed notes with Ed25519), [`Checkpoint`] (C2SP tlog-checkpoint), the [`proof`] file
//! formats (C2SP tlog-proof and the tlog-witness consistency form), log verification that says *where*
//! it fails ([`verify`]), and evidence [`bundle`]s. [`keys`] reads and writes the signing key file.
//!
//! It must never do network or database I/O, read a clock (callers pass timestamps in), hold unmasked
//! content (records carry what the masker let through, and until masking lands only body sizes), or
//! accept a floating-point number into a leaf. Verification must never need anything but the bytes
//! and the log's public key.
#![deny(missing_docs)]

pub mod bundle;
pub mod canonical;
pub mod checkpoint;
pub mod keys;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod record;
pub mod verify;

pub use bundle::{verify_bundle, BundleError, BundleReport, BundleTrust};
pub use checkpoint::{Checkpoint, CheckpointError};
pub use merkle::{ConsistencyProof, Frontier, Hash, HashSource, InclusionProof, MemoryLog};
pub use note::{SignerKey, VerifierKey};
pub use proof::{ConsistencyFile, TlogProof};
pub use record::{MicroTime, Record, RecordKind};
pub use verify::{verify_log, LogReport, LogVerifier, VerifyError};

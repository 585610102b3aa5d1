//! The audit log's storage layer, shared by every backend: the [`LogStore`] trait a backend
//! implements, the group-commit [`Appender`] that makes each record durable before anyone is told it
//! was written, the [`Sequencer`] that integrates queued records into the Merkle log and signs
//! checkpoints (one at a time, elected through the store), proofs read from a store ([`proofs`]),
//! full verification of a stored log ([`verify_store`]), and the `conformance` story every backend's
//! integration test runs (feature `conformance`).
//!
//! A record travels in two steps. **Append**: its canonical bytes, leaf hash and a few search columns
//! are written to the queue in one fsync'd transaction (many callers share it: group commit); only
//! then is the caller answered with its [`EntryId`]. **Sequence**: the sequencer moves queued entries
//! into the log in the same transaction that assigns their leaf indexes and stores the interior nodes
//! they complete, so an entry is in the log exactly once whoever crashes when.
//!
//! This crate must never acknowledge an append before the store says it is durable, answer an error
//! with anything but an error (the gateway turns it into 503: fail closed), sign a checkpoint that is
//! not consistent with the latest one already stored, block an async thread on I/O, or contain SQL:
//! only the backend crates (`custos-store-sqlite`, `custos-store-postgres`) touch a database.
#![deny(missing_docs)]

mod appender;
mod entry;
mod error;
mod integrate;
pub mod proofs;
mod search;
mod sequencer;
mod sink;
mod store;
mod verify;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use appender::{Appender, AppenderConfig};
pub use entry::{Entry, EntryId, Leaf, NewEntry, SearchFields, Sequenced};
pub use error::StoreError;
pub use integrate::{decode_frontier, encode_frontier, integrate, Integration, NodeId};
pub use search::{Filter, FilterValue, SearchQuery, MAX_SEARCH_LIMIT};
pub use sequencer::{Sequencer, SequencerConfig, SequencerHandle, SequencerStatus};
pub use sink::{
    CheckpointSink, FileSink, HttpSink, HttpSinkConfig, HttpSinkConfigError, MultiSink,
};
pub use store::{LogStore, SequencerLease, StoredCheckpoint, TreeState};
pub use verify::{verify_store, verify_store_with, StoreReport, StoreVerifyError};

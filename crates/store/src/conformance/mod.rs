//! The story every backend runs (atuin's `db_story.rs` style): one integration test per backend calls
//! these functions against a real database, so both backends are held to the same behaviour.
//!
//! A backend provides a [`Backend`]: fresh isolated logs, reopening one, and tampering with its rows
//! directly (as an attacker with database access would). The stories panic with a message on the first
//! deviation.
//!
//! - [`story`]: concurrent appends, sequencing, signed checkpoints, inclusion and consistency proofs
//!   verified with `custos_audit`'s verifiers, an evidence bundle exported through
//!   [`BlockingSource`](crate::proofs::BlockingSource), search, full verification, reopen.
//! - [`sequencing_under_load`]: the [`Sequencer`](crate::Sequencer) running while many appenders write.
//! - [`tampering`]: every tamper the acceptance criteria name is caught by [`verify_store`](crate::verify_store),
//!   and the sequencer refuses to sign over rewritten history.
//! - [`measure`]: the throughput benchmark each backend's `benches/` binary runs.

pub mod measure;
mod records;
mod story;
mod tamper;

use std::sync::Arc;

use async_trait::async_trait;
use custos_audit::note::SignerKey;

use crate::LogStore;

pub use records::{sample_record, sample_time};
pub use story::{sequencing_under_load, story};
pub use tamper::tampering;

/// A log under test: the store and where it lives (a file path, a schema name), so the backend can
/// reopen it or tamper with it.
#[derive(Clone)]
pub struct TestLog {
    /// The open store.
    pub store: Arc<dyn LogStore>,
    /// Backend-specific location.
    pub location: String,
}

/// A direct change to stored rows, bypassing the store's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tamper {
    /// Replace a leaf's record bytes, keeping its stored leaf hash.
    SetRecord {
        /// The leaf.
        index: u64,
        /// The new bytes.
        record: Vec<u8>,
    },
    /// Replace a leaf's record bytes and its stored leaf hash (an attacker who recomputes hashes).
    SetRecordAndHash {
        /// The leaf.
        index: u64,
        /// The new bytes.
        record: Vec<u8>,
    },
    /// Delete a leaf's row.
    Delete {
        /// The leaf.
        index: u64,
    },
    /// Exchange two leaves' bytes and hashes.
    Swap {
        /// One leaf.
        a: u64,
        /// The other.
        b: u64,
    },
    /// Cut the log to `size` leaves: leaves, nodes and the tree row, consistently (checkpoints kept).
    Truncate {
        /// The new size.
        size: u64,
        /// The frontier of that size (the test reads it before tampering).
        frontier: Vec<u8>,
    },
    /// Delete every checkpoint above `size` (with [`Tamper::Truncate`]: an older copy restored).
    DropCheckpointsAbove {
        /// The largest size kept.
        size: u64,
    },
    /// Overwrite a stored interior node.
    SetNode {
        /// Its level (≥ 1).
        level: u8,
        /// Its index.
        index: u64,
        /// The new hash.
        hash: [u8; 32],
    },
}

/// What a backend gives the stories.
#[async_trait]
pub trait Backend: Send + Sync {
    /// A fresh, empty, isolated log.
    async fn open(&self) -> TestLog;
    /// Closes `log`'s store and opens the same log again.
    async fn reopen(&self, log: TestLog) -> TestLog;
    /// Changes `log`'s rows directly.
    async fn tamper(&self, log: &TestLog, tamper: Tamper);
}

/// The signing key the stories use.
pub fn test_key() -> SignerKey {
    SignerKey::from_seed("custos.test/log", [7; 32]).expect("test key")
}

//! One error type for every store operation. It is `Clone` because one failed group commit answers
//! every caller in the batch with the same error.

use std::sync::Arc;
use std::time::Duration;

use custos_audit::canonical::CanonicalError;

/// Why a store operation failed. On the write path every variant means "not recorded": the gateway
/// answers 503 and forwards nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or refused the operation (I/O error, connection lost, disk
    /// full, file removed, SQL error).
    #[error("audit store unavailable: {context}: {source}")]
    Unavailable {
        /// What was being done.
        context: String,
        /// The backend's error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The store did not answer in time; the record may or may not have been written, and the caller
    /// must treat it as not written.
    #[error("audit store did not answer within {0:?}")]
    Timeout(Duration),
    /// The appender or store was shut down.
    #[error("audit store is closed")]
    Closed,
    /// A record is not canonical JSON (RFC 8785) and would never verify.
    #[error("record is not canonical JSON: {0}")]
    NotCanonical(#[source] CanonicalError),
    /// A caller asked for something impossible (a record over the size limit, a range beyond the tree).
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// What is stored contradicts itself (a missing node, a frontier of the wrong length, a checkpoint
    /// not consistent with the tree): damage or tampering. `custos audit verify` says where.
    #[error("audit store is inconsistent: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Wraps a backend error with what was being done.
    pub fn unavailable(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Unavailable {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// True when retrying later may succeed (the store is down or slow), as opposed to a request that
    /// will never succeed or a damaged store.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Timeout(_) | StoreError::Closed
        )
    }
}

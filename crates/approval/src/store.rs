//! Where reviews, grants and sessions live: the [`ApprovalStore`] trait, implemented on SQLite (one
//! gateway) and PostgreSQL (several replicas, changes announced with LISTEN/NOTIFY). Every record is
//! one JSON document plus the columns that are searched; updates are compare-and-swap on a version, so
//! two approvers (or two replicas) deciding at once never both win.

use async_trait::async_trait;
use tokio::time::Instant;

use custos_audit::record::MicroTime;

use crate::model::{Grant, Review, Session, State, VoteError};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The database could not be reached or refused the statement.
    #[error("approval store unavailable while {context}: {message}")]
    Unavailable {
        /// What was being done.
        context: &'static str,
        /// The database's message.
        message: String,
    },
    /// No such review, grant or session.
    #[error("{0} not found")]
    NotFound(String),
    /// A vote was refused by the rules.
    #[error(transparent)]
    Vote(#[from] VoteError),
    /// A stored document does not parse (written by a newer Custos, or damaged).
    #[error("stored {what} {id} does not parse: {message}")]
    Corrupt {
        /// `review`, `grant` or `session`.
        what: &'static str,
        /// Its id.
        id: String,
        /// The parser's message.
        message: String,
    },
    /// Bad input to the store (an invalid schema name).
    #[error("{0}")]
    Invalid(String),
}

impl ApprovalError {
    /// An `Unavailable` from any displayable error.
    pub fn unavailable(context: &'static str, e: impl std::fmt::Display) -> Self {
        ApprovalError::Unavailable {
            context,
            message: e.to_string(),
        }
    }
}

/// Reviews, grants and sessions, durably.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Stores a new review.
    async fn insert_review(&self, r: &Review) -> Result<(), ApprovalError>;
    /// One review.
    async fn review(&self, id: &str) -> Result<Option<Review>, ApprovalError>;
    /// Reviews, newest first, optionally only in `state`.
    async fn reviews(
        &self,
        state: Option<State>,
        limit: usize,
    ) -> Result<Vec<Review>, ApprovalError>;
    /// Replaces a review if nobody changed it since it was read (`r.version` is the version read);
    /// stores it with the next version and announces the change. `false`: someone else did first.
    async fn update_review(&self, r: &Review) -> Result<bool, ApprovalError>;
    /// Stores a new grant.
    async fn insert_grant(&self, g: &Grant) -> Result<(), ApprovalError>;
    /// One grant.
    async fn grant(&self, id: &str) -> Result<Option<Grant>, ApprovalError>;
    /// Grants, newest first; only those of `username`, only those active at `active_at`.
    async fn grants(
        &self,
        username: Option<&str>,
        active_at: Option<MicroTime>,
    ) -> Result<Vec<Grant>, ApprovalError>;
    /// Replaces a grant (compare-and-swap on its version, like reviews).
    async fn update_grant(&self, g: &Grant) -> Result<bool, ApprovalError>;
    /// Stores a new agent session.
    async fn insert_session(&self, s: &Session) -> Result<(), ApprovalError>;
    /// The session whose token hashes to `token_sha256`.
    async fn session_by_token(&self, token_sha256: &str) -> Result<Option<Session>, ApprovalError>;
    /// Resolves when review `id` may have changed (on this replica or, with PostgreSQL, another), or
    /// at `deadline`, or after at most a second (callers re-read: a missed announcement costs a
    /// second, never a decision).
    async fn changed(&self, id: &str, deadline: Instant);
}

/// Waits on `rx` for `id` until `deadline` or one second, whichever is first.
pub(crate) async fn wait_for(
    rx: &mut tokio::sync::broadcast::Receiver<String>,
    id: &str,
    deadline: Instant,
) {
    let limit = deadline.min(Instant::now() + std::time::Duration::from_secs(1));
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(changed) if changed == id => return,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    std::future::pending::<()>().await
                }
            }
        }
    };
    let _ = tokio::time::timeout_at(limit, wait).await;
}

/// A stored document read back; a damaged or newer one is [`ApprovalError::Corrupt`].
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    what: &'static str,
    id: &str,
    doc: &str,
) -> Result<T, ApprovalError> {
    serde_json::from_str(doc).map_err(|e| ApprovalError::Corrupt {
        what,
        id: id.to_owned(),
        message: e.to_string(),
    })
}

/// A document as stored (the model types always serialize).
pub(crate) fn doc<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("approval documents serialize")
}

/// A time as stored: Unix microseconds.
pub(crate) fn micros(t: MicroTime) -> i64 {
    t.unix_micros() as i64
}

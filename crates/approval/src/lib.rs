//! Custos approval owns just-in-time approval: a review of one risky operation (who asked, in which
//! agent session and why, exactly what, the masked body and a dry-run preview), the votes of approvers
//! (justification mandatory, never the requester, only members of the policy's approver groups, an
//! optional threshold of distinct approvers), expiry, the time-bound grants an approval creates and
//! their revocation, and agent sessions (a short-lived Custos token bound to an OIDC identity and a
//! declared intent). Rules are pure ([`model`]); storage is the [`ApprovalStore`] trait on SQLite or
//! PostgreSQL (where LISTEN/NOTIFY releases a request held on another replica).
//!
//! It must never let a vote that broke a rule change anything, and never store a session token (only
//! its SHA-256).
#![deny(missing_docs)]

pub mod model;
mod postgres;
mod sqlite;
mod store;

pub use model::{
    new_id, Grant, GrantScope, Operation, Person, Review, Revocation, Session, SessionInfo, State,
    Verdict, Vote, VoteError, VoteOutcome,
};
pub use postgres::PgApprovals;
pub use sqlite::SqliteApprovals;
pub use store::{ApprovalError, ApprovalStore};

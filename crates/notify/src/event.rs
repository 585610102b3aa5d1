//! [`Event`]: what happened to a review, as the gateway hands it to the [`Notifier`](crate::Notifier).

use serde::{Deserialize, Serialize};

/// What happened. Serialized as `review.requested`, `grant.revoked`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A request is held until approvers decide.
    #[serde(rename = "review.requested")]
    ReviewRequested,
    /// Enough approvers approved.
    #[serde(rename = "review.approved")]
    ReviewApproved,
    /// An approver denied.
    #[serde(rename = "review.denied")]
    ReviewDenied,
    /// Nobody decided in time.
    #[serde(rename = "review.expired")]
    ReviewExpired,
    /// An approval created a time-bound grant.
    #[serde(rename = "grant.created")]
    GrantCreated,
    /// A grant was revoked before it lapsed.
    #[serde(rename = "grant.revoked")]
    GrantRevoked,
}

impl EventKind {
    /// Every kind, in lifecycle order.
    pub const ALL: [EventKind; 6] = [
        EventKind::ReviewRequested,
        EventKind::ReviewApproved,
        EventKind::ReviewDenied,
        EventKind::ReviewExpired,
        EventKind::GrantCreated,
        EventKind::GrantRevoked,
    ];

    /// The wire name, `review.requested` style.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ReviewRequested => "review.requested",
            EventKind::ReviewApproved => "review.approved",
            EventKind::ReviewDenied => "review.denied",
            EventKind::ReviewExpired => "review.expired",
            EventKind::GrantCreated => "grant.created",
            EventKind::GrantRevoked => "grant.revoked",
        }
    }

    /// A short title for people, `Review requested` style.
    pub fn title(self) -> &'static str {
        match self {
            EventKind::ReviewRequested => "Review requested",
            EventKind::ReviewApproved => "Review approved",
            EventKind::ReviewDenied => "Review denied",
            EventKind::ReviewExpired => "Review expired",
            EventKind::GrantCreated => "Grant created",
            EventKind::GrantRevoked => "Grant revoked",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One notification: the kind, the review it is about, a line for people and the review document.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The review's id (`rv-…`); for grant events, the review that created the grant.
    pub review_id: String,
    /// One line for people, e.g. `agent@x asks to delete deployments.apps/payments -n prod-eu —
    /// intent: … — approve: custos reviews approve rv-… --reason …`.
    pub summary: String,
    /// The review document as the approval store holds it (camelCase), already masked by the caller.
    pub payload: serde_json::Value,
    /// When it happened, RFC 3339.
    pub at: String,
}

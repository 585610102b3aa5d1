//! [`Decision`]: the outcome of one request and the policies that decided it, as the audit record
//! keeps it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The three outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Forward the request.
    Allow,
    /// Hold the request for a human's approval.
    Review,
    /// Refuse the request.
    Deny,
}

impl Outcome {
    /// `allow`, `review` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Review => "review",
            Self::Deny => "deny",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "allow" => Ok(Self::Allow),
            "review" => Ok(Self::Review),
            "deny" => Ok(Self::Deny),
            other => Err(format!("unknown outcome {other:?} (allow, review or deny)")),
        }
    }
}

/// What a review needs, merged from every deciding `@outcome("review")` permit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Groups any of whose members may approve (the union of the policies' `@approvers`).
    pub approvers: Vec<String>,
    /// How long to hold the request waiting for approval (the longest `@hold`), in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_seconds: Option<u64>,
    /// How long an approval grants the same access without asking again (the shortest `@grant`),
    /// in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_seconds: Option<u64>,
}

/// The decision on one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Allow, review or deny.
    pub outcome: Outcome,
    /// The policies that decided it: the matching forbids for a deny, the permits for an allow or a
    /// review; empty for a default deny.
    pub policy_ids: Vec<String>,
    /// The annotations of each deciding policy, by policy id.
    pub annotations: BTreeMap<String, BTreeMap<String, String>>,
    /// Why, for people: each deciding policy's `@reason`, or a sentence Custos writes.
    pub reasons: Vec<String>,
    /// For a review: approvers, hold and grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// Policies that failed to evaluate on this request. A failing forbid denies (fail closed); a
    /// failing permit is ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl Decision {
    /// A deny no policy decided (nothing permits, or the request cannot be asked at all).
    pub(crate) fn default_deny(reason: String) -> Self {
        Self {
            outcome: Outcome::Deny,
            policy_ids: Vec::new(),
            annotations: BTreeMap::new(),
            reasons: vec![reason],
            review: None,
            errors: Vec::new(),
        }
    }

    /// True for [`Outcome::Allow`].
    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allow
    }

    /// One line for a `Status` message or a log: the reasons, joined.
    pub fn message(&self) -> String {
        let reasons = self.reasons.join("; ");
        match (&self.outcome, &self.review) {
            (Outcome::Review, Some(review)) if !review.approvers.is_empty() => format!(
                "approval required: {reasons} (approvers: {})",
                review.approvers.join(", ")
            ),
            (Outcome::Review, _) => format!("approval required: {reasons}"),
            _ => reasons,
        }
    }
}

//! Reviews, votes, grants and sessions, and the rules that govern them. Pure: no I/O, the clock is a
//! parameter, so every rule is tested without a database.

use serde::{Deserialize, Serialize};

use custos_audit::record::MicroTime;

/// The exact operation a review is about (what the apiserver's RequestInfo says).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Kubernetes verb (`delete`, `create`, `get`, ...).
    pub verb: String,
    /// API group (`""` for the core group).
    #[serde(default)]
    pub api_group: String,
    /// API version.
    #[serde(default)]
    pub api_version: String,
    /// Resource (`deployments`).
    #[serde(default)]
    pub resource: String,
    /// Subresource (`exec`), if any.
    #[serde(default)]
    pub subresource: String,
    /// Namespace, if namespaced.
    #[serde(default)]
    pub namespace: String,
    /// Object name, if the request names one.
    #[serde(default)]
    pub name: String,
    /// The request path and query as sent.
    #[serde(default)]
    pub path: String,
}

impl Operation {
    /// `delete deployments/payments -n prod-eu` style, for people.
    pub fn describe(&self) -> String {
        let mut res = self.resource.clone();
        if !self.api_group.is_empty() {
            res = format!("{res}.{}", self.api_group);
        }
        if !self.name.is_empty() {
            res = format!("{res}/{}", self.name);
        }
        if !self.subresource.is_empty() {
            res = format!("{res}/{}", self.subresource);
        }
        let mut s = format!("{} {res}", self.verb);
        if !self.namespace.is_empty() {
            s.push_str(&format!(" -n {}", self.namespace));
        }
        s
    }
}

/// Who asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// User name as authenticated.
    pub username: String,
    /// Groups as authenticated.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The agent session a request came in on, with its declared purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    /// Session id.
    pub id: String,
    /// The declared intent.
    #[serde(default)]
    pub intent: Option<String>,
    /// The ticket it refers to.
    #[serde(default)]
    pub ticket: Option<String>,
}

/// Where a review stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for approvers.
    Pending,
    /// Enough approvers approved.
    Approved,
    /// An approver denied.
    Denied,
    /// Nobody decided before it expired.
    Expired,
}

impl State {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Denied => "denied",
            State::Expired => "expired",
        }
    }
}

/// Approve or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Let it through.
    Approve,
    /// Refuse it.
    Deny,
}

/// One approver's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vote {
    /// Who.
    pub by: Person,
    /// Approve or deny.
    pub verdict: Verdict,
    /// Why (mandatory).
    pub justification: String,
    /// When.
    pub at: MicroTime,
}

/// How far an approval's grant reaches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantScope {
    /// Exactly the reviewed operation (verb, resource, namespace, name, subresource).
    #[default]
    Operation,
    /// The same verb on the same resource in the same namespace, any name.
    Namespace,
}

/// A request held (or refused) until people decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// `rv-` and 12 random base32 characters.
    pub id: String,
    /// Optimistic-concurrency version, bumped on every change.
    #[serde(default)]
    pub version: u64,
    /// When it was opened.
    pub created: MicroTime,
    /// When a pending review expires.
    pub expires: MicroTime,
    /// The audit id of the request that opened it.
    pub audit_id: String,
    /// Who asked.
    pub requester: Person,
    /// The agent session, with intent and ticket.
    #[serde(default)]
    pub session: Option<SessionInfo>,
    /// What exactly.
    pub operation: Operation,
    /// The request body, masked.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// For mutations: what the apiserver's dry run returned (masked), when it could be had.
    #[serde(default)]
    pub preview: Option<serde_json::Value>,
    /// For mutations on an existing object: a diff of the live object against the dry run (masked).
    #[serde(default)]
    pub diff: Option<String>,
    /// The policies that asked for review.
    #[serde(default)]
    pub policy_ids: Vec<String>,
    /// Their reasons.
    #[serde(default)]
    pub reason: String,
    /// Groups whose members may decide.
    pub approvers: Vec<String>,
    /// Distinct approvals needed.
    pub threshold: u32,
    /// How long an approval lets the same access through (seconds); none: only this request.
    #[serde(default)]
    pub grant_seconds: Option<u64>,
    /// How far that grant reaches.
    #[serde(default)]
    pub grant_scope: GrantScope,
    /// Where it stands.
    pub state: State,
    /// Decisions so far.
    #[serde(default)]
    pub votes: Vec<Vote>,
    /// The grant an approval created.
    #[serde(default)]
    pub grant_id: Option<String>,
    /// Whether the held request was released (it ran), for the timeline.
    #[serde(default)]
    pub released: bool,
}

/// Why a vote was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteError {
    /// No justification given.
    #[error("a justification is required (--reason)")]
    NoJustification,
    /// The requester tried to decide on their own request.
    #[error("{0} asked for this review and cannot decide on it")]
    SelfApproval(String),
    /// The voter is in none of the approver groups.
    #[error("{user} is not an approver of this review (approvers: members of {groups})")]
    NotAnApprover {
        /// The voter.
        user: String,
        /// The approver groups.
        groups: String,
    },
    /// The review is no longer pending.
    #[error("review {id} is {state}, not pending")]
    NotPending {
        /// Review id.
        id: String,
        /// Its state.
        state: &'static str,
    },
    /// The review expired before this vote.
    #[error("review {0} has expired")]
    Expired(String),
    /// This approver already voted.
    #[error("{0} already decided on this review")]
    AlreadyVoted(String),
}

/// What a vote did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteOutcome {
    /// Counted; more approvals are needed.
    Counted {
        /// Approvals so far.
        approvals: u32,
        /// Needed.
        threshold: u32,
    },
    /// The review is now approved.
    Approved,
    /// The review is now denied.
    Denied,
}

/// The longest justification kept.
pub const MAX_JUSTIFICATION: usize = 2000;

impl Review {
    /// Applies `voter`'s vote at `now`, or says why not (the review is unchanged then).
    pub fn vote(
        &mut self,
        voter: &Person,
        verdict: Verdict,
        justification: &str,
        now: MicroTime,
    ) -> Result<VoteOutcome, VoteError> {
        let justification = justification.trim();
        if justification.is_empty() {
            return Err(VoteError::NoJustification);
        }
        if self.state == State::Pending && now >= self.expires {
            return Err(VoteError::Expired(self.id.clone()));
        }
        if self.state != State::Pending {
            return Err(VoteError::NotPending {
                id: self.id.clone(),
                state: self.state.as_str(),
            });
        }
        if voter.username == self.requester.username {
            return Err(VoteError::SelfApproval(voter.username.clone()));
        }
        if !voter.groups.iter().any(|g| self.approvers.contains(g)) {
            return Err(VoteError::NotAnApprover {
                user: voter.username.clone(),
                groups: self.approvers.join(", "),
            });
        }
        if self.votes.iter().any(|v| v.by.username == voter.username) {
            return Err(VoteError::AlreadyVoted(voter.username.clone()));
        }
        self.votes.push(Vote {
            by: voter.clone(),
            verdict,
            justification: justification.chars().take(MAX_JUSTIFICATION).collect(),
            at: now,
        });
        Ok(match verdict {
            Verdict::Deny => {
                self.state = State::Denied;
                VoteOutcome::Denied
            }
            Verdict::Approve => {
                let approvals = self.approvals();
                if approvals >= self.threshold.max(1) {
                    self.state = State::Approved;
                    VoteOutcome::Approved
                } else {
                    VoteOutcome::Counted {
                        approvals,
                        threshold: self.threshold,
                    }
                }
            }
        })
    }

    /// Distinct approvals so far.
    pub fn approvals(&self) -> u32 {
        self.votes
            .iter()
            .filter(|v| v.verdict == Verdict::Approve)
            .count() as u32
    }

    /// Marks a pending review expired if `now` is past its expiry; says whether it did.
    pub fn expire(&mut self, now: MicroTime) -> bool {
        if self.state == State::Pending && now >= self.expires {
            self.state = State::Expired;
            true
        } else {
            false
        }
    }

    /// The justifications of the deciding votes, for the client's message.
    pub fn justification(&self) -> String {
        self.votes
            .iter()
            .map(|v| format!("{}: {}", v.by.username, v.justification))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The grant an approval creates (when the policy asked for one), starting at `now`.
    pub fn grant(&self, id: String, now: MicroTime) -> Option<Grant> {
        let seconds = self.grant_seconds?;
        let expires = MicroTime::from_unix_micros(now.unix_micros() + seconds * 1_000_000).ok()?;
        let mut scope = self.operation.clone();
        if self.grant_scope == GrantScope::Namespace {
            scope.name.clear();
            scope.path.clear();
        }
        Some(Grant {
            id,
            version: 0,
            review_id: self.id.clone(),
            username: self.requester.username.clone(),
            scope,
            scope_kind: self.grant_scope,
            created: now,
            expires,
            revoked: None,
        })
    }
}

/// Who revoked a grant, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    /// Who.
    pub by: Person,
    /// When.
    pub at: MicroTime,
    /// Why.
    pub reason: String,
}

/// Time-bound permission, created by an approval, for the requester to repeat the approved access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// `gr-` and 12 random base32 characters.
    pub id: String,
    /// Optimistic-concurrency version.
    #[serde(default)]
    pub version: u64,
    /// The review that created it.
    pub review_id: String,
    /// Whom it lets through.
    pub username: String,
    /// What it covers (an empty name covers any name in the namespace).
    pub scope: Operation,
    /// How it was scoped.
    #[serde(default)]
    pub scope_kind: GrantScope,
    /// When it was created.
    pub created: MicroTime,
    /// When it lapses.
    pub expires: MicroTime,
    /// Set when revoked.
    #[serde(default)]
    pub revoked: Option<Revocation>,
}

impl Grant {
    /// In force at `now`: not revoked, not expired.
    pub fn active(&self, now: MicroTime) -> bool {
        self.revoked.is_none() && now < self.expires
    }

    /// Whether it lets `username` do `op` at `now`.
    pub fn covers(&self, username: &str, op: &Operation, now: MicroTime) -> bool {
        let s = &self.scope;
        self.active(now)
            && self.username == username
            && s.verb == op.verb
            && s.api_group == op.api_group
            && s.resource == op.resource
            && s.subresource == op.subresource
            && s.namespace == op.namespace
            && (s.name.is_empty() || s.name == op.name)
    }
}

/// An agent session: a short-lived Custos token bound to an OIDC identity and a declared intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// `ss-` and 12 random base32 characters.
    pub id: String,
    /// SHA-256 (hex) of the session token; the token itself is never stored.
    pub token_sha256: String,
    /// Who opened it (as authenticated by OIDC when it was minted).
    pub user: Person,
    /// Extra user attributes carried through impersonation.
    #[serde(default)]
    pub uid: Option<String>,
    /// The declared intent.
    pub intent: String,
    /// The ticket.
    #[serde(default)]
    pub ticket: Option<String>,
    /// When it was opened.
    pub created: MicroTime,
    /// When it ends.
    pub expires: MicroTime,
    /// The OIDC issuer that authenticated the opener.
    #[serde(default)]
    pub issuer: Option<String>,
}

impl Session {
    /// The session as a record and review carry it.
    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            id: self.id.clone(),
            intent: Some(self.intent.clone()),
            ticket: self.ticket.clone(),
        }
    }
}

/// A fresh id: `prefix` and 12 random base32 characters (60 bits).
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the OS random source");
    let tail: String = bytes
        .iter()
        .map(|b| ALPHABET[(*b & 31) as usize] as char)
        .collect();
    format!("{prefix}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> MicroTime {
        MicroTime::from_unix_micros(1_800_000_000_000_000 + s * 1_000_000).expect("test step")
    }

    fn person(name: &str, groups: &[&str]) -> Person {
        Person {
            username: name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    fn review(threshold: u32) -> Review {
        Review {
            id: "rv-test".into(),
            version: 0,
            created: t(0),
            expires: t(600),
            audit_id: "a".into(),
            requester: person("agent@x", &["agents"]),
            session: None,
            operation: Operation {
                verb: "delete".into(),
                api_group: "apps".into(),
                resource: "deployments".into(),
                namespace: "prod-eu".into(),
                name: "payments".into(),
                ..Operation::default()
            },
            body: None,
            preview: None,
            diff: None,
            policy_ids: vec!["p".into()],
            reason: "r".into(),
            approvers: vec!["sre-oncall".into()],
            threshold,
            grant_seconds: Some(1800),
            grant_scope: GrantScope::Operation,
            state: State::Pending,
            votes: vec![],
            grant_id: None,
            released: false,
        }
    }

    #[test]
    fn an_approver_approves_with_a_justification() {
        let mut r = review(1);
        let oncall = person("oncall@x", &["sre-oncall"]);
        assert_eq!(
            r.vote(&oncall, Verdict::Approve, "  ", t(1)),
            Err(VoteError::NoJustification)
        );
        assert_eq!(
            r.vote(&oncall, Verdict::Approve, "INC-1 rollback", t(1)),
            Ok(VoteOutcome::Approved)
        );
        assert_eq!(r.state, State::Approved);
        assert!(matches!(
            r.vote(&oncall, Verdict::Deny, "x", t(2)),
            Err(VoteError::NotPending { .. })
        ));
    }

    #[test]
    fn requesters_and_non_approvers_cannot_decide_and_nothing_changes() {
        let mut r = review(1);
        let before = r.clone();
        let me = person("agent@x", &["agents", "sre-oncall"]);
        assert_eq!(
            r.vote(&me, Verdict::Approve, "mine", t(1)),
            Err(VoteError::SelfApproval("agent@x".into()))
        );
        let other = person("dev@x", &["developers"]);
        assert!(matches!(
            r.vote(&other, Verdict::Approve, "ok", t(1)),
            Err(VoteError::NotAnApprover { .. })
        ));
        assert_eq!(r, before);
    }

    #[test]
    fn an_expired_review_cannot_be_approved() {
        let mut r = review(1);
        let oncall = person("oncall@x", &["sre-oncall"]);
        assert_eq!(
            r.vote(&oncall, Verdict::Approve, "late", t(600)),
            Err(VoteError::Expired("rv-test".into()))
        );
        assert!(r.expire(t(601)));
        assert_eq!(r.state, State::Expired);
        assert!(!r.expire(t(602)), "expires once");
    }

    #[test]
    fn a_threshold_needs_distinct_approvers_and_one_deny_ends_it() {
        let mut r = review(2);
        let a = person("a@x", &["sre-oncall"]);
        let b = person("b@x", &["sre-oncall"]);
        assert_eq!(
            r.vote(&a, Verdict::Approve, "ok", t(1)),
            Ok(VoteOutcome::Counted {
                approvals: 1,
                threshold: 2
            })
        );
        assert_eq!(
            r.vote(&a, Verdict::Approve, "again", t(2)),
            Err(VoteError::AlreadyVoted("a@x".into()))
        );
        assert_eq!(
            r.vote(&b, Verdict::Approve, "ok too", t(3)),
            Ok(VoteOutcome::Approved)
        );
        let mut r = review(2);
        r.vote(&a, Verdict::Approve, "ok", t(1)).expect("test step");
        assert_eq!(
            r.vote(&b, Verdict::Deny, "not during the freeze", t(2)),
            Ok(VoteOutcome::Denied)
        );
        assert_eq!(r.state, State::Denied);
        assert!(r.justification().contains("b@x: not during the freeze"));
    }

    #[test]
    fn a_grant_covers_the_operation_until_it_expires_or_is_revoked() {
        let r = review(1);
        let mut g = r.grant("gr-1".into(), t(10)).expect("test step");
        assert!(g.covers("agent@x", &r.operation, t(11)));
        assert!(
            !g.covers("other@x", &r.operation, t(11)),
            "only the requester"
        );
        let mut other = r.operation.clone();
        other.name = "ledger".into();
        assert!(!g.covers("agent@x", &other, t(11)), "only this object");
        assert!(!g.covers("agent@x", &r.operation, t(10 + 1800)), "expired");
        g.revoked = Some(Revocation {
            by: person("o@x", &[]),
            at: t(12),
            reason: "done".into(),
        });
        assert!(!g.covers("agent@x", &r.operation, t(13)), "revoked");

        let mut ns = review(1);
        ns.grant_scope = GrantScope::Namespace;
        let g = ns.grant("gr-2".into(), t(10)).expect("test step");
        assert!(
            g.covers("agent@x", &other, t(11)),
            "any name in the namespace"
        );
        let mut elsewhere = other.clone();
        elsewhere.namespace = "staging".into();
        assert!(!g.covers("agent@x", &elsewhere, t(11)));
    }

    #[test]
    fn ids_are_prefixed_and_distinct() {
        let a = new_id("rv-");
        assert!(a.starts_with("rv-") && a.len() == 15);
        assert_ne!(a, new_id("rv-"));
    }
}

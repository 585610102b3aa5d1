//! The approve step: when policy says *review*, a grant from an earlier approval may cover the request;
//! otherwise a review is opened (recorded, announced) and the request is held until an approver
//! decides or the policy's hold time passes. Decisions, grants, revocations and expiries are made here
//! too (for the API in `api.rs`), each one a record in the tamper-evident log.
//!
//! Fail closed: if the review cannot be stored or recorded, the request does not reach the cluster
//! (503); a decision whose record cannot be written is undone and refused.

use std::sync::Arc;
use std::time::Duration;

use custos_approval::{
    new_id, ApprovalError, ApprovalStore, Grant, Operation, Person, Review, Revocation, State,
    Verdict, VoteOutcome,
};
use custos_audit::record::{
    ApprovalRef, GrantRef, MicroTime, ObjectReference, Record, RecordKind, SessionRef, UserInfo,
};
use custos_kube::RequestAttributes;

use crate::recorder::{self, Recorder};

/// What a review waits on, and the defaults policy does not set.
#[derive(Debug, Clone)]
pub struct ApprovalSettings {
    /// How long a review stays open for a decision (at least the policy's hold).
    pub pending_ttl: Duration,
    /// How long an approval lets the same operation through when policy sets no `@grant`: long enough
    /// for the agent to retry a request that was not held.
    pub default_grant: Duration,
    /// The longest a request is held waiting (caps the policy's `@hold`); zero answers at once.
    pub max_hold: Duration,
    /// The longest agent session a caller may open.
    pub max_session: Duration,
    /// How the gateway is reached, for the commands in messages (`custos reviews approve …`).
    pub public_url: String,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        ApprovalSettings {
            pending_ttl: Duration::from_secs(3600),
            default_grant: Duration::from_secs(300),
            max_hold: Duration::from_secs(600),
            max_session: Duration::from_secs(12 * 3600),
            public_url: String::new(),
        }
    }
}

/// Reviews and grants, their store and their records.
pub struct Approvals {
    /// Where reviews, grants and sessions live.
    pub store: Arc<dyn ApprovalStore>,
    /// Defaults.
    pub settings: ApprovalSettings,
    /// Where approvers hear about reviews.
    pub notify: Option<Arc<dyn Notify>>,
}

/// Something that tells approvers (webhooks); it never decides anything.
pub trait Notify: Send + Sync {
    /// Announces `kind` (`review.requested`, `review.approved`, …) about `review`.
    fn announce(&self, kind: &str, review: &Review);
}

/// Why an approval operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] ApprovalError),
    /// The audit log could not take the record.
    #[error("the audit log is unavailable: {0}")]
    Audit(#[from] custos_store::StoreError),
    /// Another decision was made at the same moment; the caller may retry.
    #[error("review {0} changed while deciding; try again")]
    Conflict(String),
}

/// How a held request ends.
#[derive(Debug)]
pub enum Held {
    /// Approved: forward it.
    Approved(Review),
    /// Denied: 403 with the justification.
    Denied(Review),
    /// Still pending when the hold ran out (or no hold): 403 with the id and what to do.
    Pending(Review),
}

/// The operation a request performs, as reviews and grants name it.
pub fn operation(attrs: &RequestAttributes, path_and_query: &str) -> Operation {
    Operation {
        verb: attrs.verb.clone(),
        api_group: attrs.api_group.clone(),
        api_version: attrs.api_version.clone(),
        resource: attrs.resource.clone(),
        subresource: attrs.subresource.clone(),
        namespace: attrs.namespace.clone(),
        name: attrs.name.clone(),
        path: path_and_query.chars().take(2048).collect(),
    }
}

fn now() -> MicroTime {
    recorder::now()
}

fn after(d: Duration) -> MicroTime {
    MicroTime::from_unix_micros(now().unix_micros() + d.as_micros() as u64)
        .unwrap_or_else(|_| now())
}

impl Approvals {
    /// An active grant letting `username` do `op` now, if one exists.
    pub async fn grant_for(
        &self,
        username: &str,
        op: &Operation,
    ) -> Result<Option<Grant>, ApprovalError> {
        let at = now();
        Ok(self
            .store
            .grants(Some(username), Some(at))
            .await?
            .into_iter()
            .find(|g| g.covers(username, op, at)))
    }

    /// Opens `review` (stored, then recorded: fail closed) and announces it.
    pub async fn open(&self, recorder: &Recorder, review: &Review) -> Result<(), ApproveError> {
        self.store.insert_review(review).await?;
        recorder
            .append(&approval_record(
                RecordKind::ApprovalRequested,
                review,
                None,
            ))
            .await?;
        self.announce("review.requested", review);
        Ok(())
    }

    /// Waits until `id` is decided, or `hold` passes.
    pub async fn hold(&self, id: &str, hold: Duration) -> Result<Held, ApproveError> {
        let deadline = tokio::time::Instant::now() + hold;
        loop {
            let r = self
                .store
                .review(id)
                .await?
                .ok_or_else(|| ApprovalError::NotFound(format!("review {id}")))?;
            match r.state {
                State::Approved => return Ok(Held::Approved(r)),
                State::Denied => return Ok(Held::Denied(r)),
                State::Expired => return Ok(Held::Pending(r)),
                State::Pending if tokio::time::Instant::now() >= deadline => {
                    return Ok(Held::Pending(r))
                }
                State::Pending => self.store.changed(id, deadline).await,
            }
        }
    }

    /// Marks a held request as released (it went to the cluster), for the timeline.
    pub async fn released(&self, id: &str) {
        for _ in 0..3 {
            let Ok(Some(mut r)) = self.store.review(id).await else {
                return;
            };
            r.released = true;
            if matches!(self.store.update_review(&r).await, Ok(true)) {
                return;
            }
        }
    }

    /// Applies `voter`'s decision on review `id`; on approval creates the grant. Each change is
    /// recorded; a change whose record cannot be written is undone.
    pub async fn decide(
        &self,
        recorder: &Recorder,
        id: &str,
        voter: &Person,
        verdict: Verdict,
        justification: &str,
    ) -> Result<Review, ApproveError> {
        for _ in 0..5 {
            let Some(read) = self.store.review(id).await? else {
                return Err(ApprovalError::NotFound(format!("review {id}")).into());
            };
            let mut r = read.clone();
            // A review past its expiry is expired first (and recorded), so it can never be approved.
            if r.expire(now()) {
                if self.store.update_review(&r).await? {
                    r.version += 1;
                    recorder
                        .append(&approval_record(RecordKind::ApprovalExpired, &r, None))
                        .await?;
                    self.announce("review.expired", &r);
                }
                return Err(ApprovalError::from(custos_approval::VoteError::Expired(
                    id.to_owned(),
                ))
                .into());
            }
            let outcome = r
                .vote(voter, verdict, justification, now())
                .map_err(ApprovalError::from)?;
            let grant = match outcome {
                VoteOutcome::Approved => {
                    let mut with_default = r.clone();
                    if with_default.grant_seconds.is_none() {
                        with_default.grant_seconds = Some(self.settings.default_grant.as_secs());
                    }
                    let g = with_default.grant(new_id("gr-"), now());
                    r.grant_id = g.as_ref().map(|g| g.id.clone());
                    g
                }
                _ => None,
            };
            if !self.store.update_review(&r).await? {
                continue; // someone else decided meanwhile: read again
            }
            r.version += 1;
            let kind = match outcome {
                VoteOutcome::Denied => RecordKind::ApprovalDenied,
                _ => RecordKind::ApprovalGranted,
            };
            let mut rec = approval_record(kind, &r, Some(voter));
            rec.annotations.insert(
                "custos.dev/vote".into(),
                format!(
                    "{} by {} ({} of {} approvals): {}",
                    match verdict {
                        Verdict::Approve => "approve",
                        Verdict::Deny => "deny",
                    },
                    voter.username,
                    r.approvals(),
                    r.threshold.max(1),
                    justification.trim()
                ),
            );
            if let Err(e) = recorder.append(&rec).await {
                // Not recorded, not decided: undo the vote.
                let mut undo = read.clone();
                undo.version = r.version;
                let _ = self.store.update_review(&undo).await;
                return Err(e.into());
            }
            if let Some(g) = &grant {
                self.store.insert_grant(g).await?;
                recorder
                    .append(&grant_record(RecordKind::GrantCreated, g, &r, Some(voter)))
                    .await?;
                self.announce("grant.created", &r);
            }
            match outcome {
                VoteOutcome::Approved => self.announce("review.approved", &r),
                VoteOutcome::Denied => self.announce("review.denied", &r),
                VoteOutcome::Counted { .. } => {}
            }
            return Ok(r);
        }
        Err(ApproveError::Conflict(id.to_owned()))
    }

    /// Revokes grant `id` now (recorded).
    pub async fn revoke(
        &self,
        recorder: &Recorder,
        id: &str,
        by: &Person,
        reason: &str,
    ) -> Result<Grant, ApproveError> {
        for _ in 0..5 {
            let Some(mut g) = self.store.grant(id).await? else {
                return Err(ApprovalError::NotFound(format!("grant {id}")).into());
            };
            if g.revoked.is_some() {
                return Ok(g);
            }
            g.revoked = Some(Revocation {
                by: by.clone(),
                at: now(),
                reason: reason.trim().chars().take(2000).collect(),
            });
            if !self.store.update_grant(&g).await? {
                continue;
            }
            g.version += 1;
            let review = self.store.review(&g.review_id).await?;
            let mut rec = grant_record(
                RecordKind::GrantRevoked,
                &g,
                review.as_ref().unwrap_or(&placeholder(&g)),
                Some(by),
            );
            rec.annotations.insert(
                "custos.dev/revoke-reason".into(),
                reason.trim().chars().take(512).collect(),
            );
            recorder.append(&rec).await?;
            if let Some(r) = &review {
                self.announce("grant.revoked", r);
            }
            return Ok(g);
        }
        Err(ApproveError::Conflict(id.to_owned()))
    }

    /// Expires pending reviews past their time (each recorded once, whichever replica gets there
    /// first); returns how many.
    pub async fn sweep(&self, recorder: &Recorder) -> Result<usize, ApproveError> {
        let mut n = 0;
        for mut r in self.store.reviews(Some(State::Pending), 500).await? {
            if r.expire(now()) && self.store.update_review(&r).await? {
                r.version += 1;
                recorder
                    .append(&approval_record(RecordKind::ApprovalExpired, &r, None))
                    .await?;
                self.announce("review.expired", &r);
                n += 1;
            }
        }
        Ok(n)
    }

    /// A new review for a request policy sent to review.
    #[allow(clippy::too_many_arguments)]
    pub fn new_review(
        &self,
        audit_id: &str,
        requester: Person,
        session: Option<custos_approval::SessionInfo>,
        operation: Operation,
        decision: &custos_policy::Decision,
        body: Option<serde_json::Value>,
    ) -> Review {
        let review = decision.review.clone().unwrap_or(custos_policy::Review {
            approvers: Vec::new(),
            hold_seconds: None,
            grant_seconds: None,
        });
        let hold = Duration::from_secs(review.hold_seconds.unwrap_or(0));
        let ttl = self.settings.pending_ttl.max(hold);
        let threshold = decision
            .annotations
            .values()
            .filter_map(|a| a.get("threshold"))
            .filter_map(|t| t.trim().parse::<u32>().ok())
            .max()
            .unwrap_or(1)
            .max(1);
        let scope = if decision
            .annotations
            .values()
            .any(|a| a.get("grant_scope").map(String::as_str) == Some("namespace"))
        {
            custos_approval::GrantScope::Namespace
        } else {
            custos_approval::GrantScope::Operation
        };
        Review {
            id: new_id("rv-"),
            version: 0,
            created: now(),
            expires: after(ttl),
            audit_id: audit_id.to_owned(),
            requester,
            session,
            operation,
            body,
            preview: None,
            diff: None,
            policy_ids: decision.policy_ids.clone(),
            reason: decision.reasons.join("; "),
            approvers: review.approvers,
            threshold,
            grant_seconds: review.grant_seconds,
            grant_scope: scope,
            state: State::Pending,
            votes: Vec::new(),
            grant_id: None,
            released: false,
        }
    }

    /// The command an approver runs, for messages.
    pub fn approve_command(&self, id: &str) -> String {
        format!("custos reviews approve {id} --reason \"…\"")
    }

    fn announce(&self, kind: &str, r: &Review) {
        if let Some(n) = &self.notify {
            n.announce(kind, r);
        }
    }
}

fn placeholder(g: &Grant) -> Review {
    Review {
        id: g.review_id.clone(),
        version: 0,
        created: g.created,
        expires: g.expires,
        audit_id: String::new(),
        requester: Person {
            username: g.username.clone(),
            groups: Vec::new(),
        },
        session: None,
        operation: g.scope.clone(),
        body: None,
        preview: None,
        diff: None,
        policy_ids: Vec::new(),
        reason: String::new(),
        approvers: Vec::new(),
        threshold: 1,
        grant_seconds: None,
        grant_scope: g.scope_kind,
        state: State::Approved,
        votes: Vec::new(),
        grant_id: Some(g.id.clone()),
        released: false,
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn object_ref(op: &Operation) -> ObjectReference {
    ObjectReference {
        resource: non_empty(&op.resource),
        namespace: non_empty(&op.namespace),
        name: non_empty(&op.name),
        api_group: non_empty(&op.api_group),
        api_version: non_empty(&op.api_version),
        subresource: non_empty(&op.subresource),
        ..ObjectReference::default()
    }
}

fn user(p: &Person) -> UserInfo {
    UserInfo {
        username: p.username.clone(),
        groups: p.groups.clone(),
        ..UserInfo::default()
    }
}

/// The reference a record carries to `r`.
pub fn approval_ref(r: &Review) -> ApprovalRef {
    let decided: Vec<&custos_approval::Vote> = r.votes.iter().collect();
    ApprovalRef {
        id: r.id.clone(),
        approvers: decided.iter().map(|v| v.by.username.clone()).collect(),
        justification: (!decided.is_empty()).then(|| r.justification()),
        expires: Some(r.expires),
    }
}

/// The session reference of `r`.
pub fn session_ref(r: &Review) -> Option<SessionRef> {
    r.session.as_ref().map(|s| SessionRef {
        id: s.id.clone(),
        intent: s.intent.clone(),
        ticket: s.ticket.clone(),
    })
}

/// A record of a step of review `r`; `actor` is who took it (none: Custos itself).
fn approval_record(kind: RecordKind, r: &Review, actor: Option<&Person>) -> Record {
    let requested = kind == RecordKind::ApprovalRequested;
    let mut rec = Record::new(kind, now());
    rec.audit_id = Some(r.audit_id.clone());
    rec.verb = Some(r.operation.verb.clone());
    rec.request_uri = non_empty(&r.operation.path);
    rec.object_ref = Some(object_ref(&r.operation));
    rec.user = Some(user(actor.unwrap_or(&r.requester)));
    if actor.is_some() {
        rec.annotations
            .insert("custos.dev/requester".into(), r.requester.username.clone());
    }
    rec.custos.approval = Some(approval_ref(r));
    rec.custos.session = session_ref(r);
    if requested {
        rec.request_object = r.body.clone().map(recorder::storable);
        rec.annotations.insert(
            "custos.dev/review".into(),
            format!(
                "approvers: {}; threshold {}; policies: {}; reason: {}",
                r.approvers.join(", "),
                r.threshold.max(1),
                r.policy_ids.join(", "),
                r.reason
            )
            .chars()
            .take(1024)
            .collect(),
        );
        if let Some(d) = &r.diff {
            rec.annotations.insert(
                "custos.dev/preview-diff".into(),
                d.chars().take(16 * 1024).collect(),
            );
        }
    }
    rec
}

fn grant_record(kind: RecordKind, g: &Grant, r: &Review, actor: Option<&Person>) -> Record {
    let mut rec = approval_record(kind, r, actor);
    rec.custos.grant = Some(GrantRef {
        id: g.id.clone(),
        expires: Some(g.expires),
    });
    rec.annotations.insert(
        "custos.dev/grant".into(),
        format!(
            "{} for {} until {}",
            g.scope.describe(),
            g.username,
            g.expires
        ),
    );
    rec
}

/// The requester of a review, as authenticated.
pub fn person(identity: &custos_authn::Identity) -> Person {
    Person {
        username: identity.user.username.clone(),
        groups: identity.user.groups.clone(),
    }
}

/// The reference a record carries to a grant used.
pub fn grant_ref(g: &Grant) -> GrantRef {
    GrantRef {
        id: g.id.clone(),
        expires: Some(g.expires),
    }
}

/// Webhooks as the [`Notify`] of approvals: each step of a review becomes an event for approvers'
/// endpoints; each delivery outcome a record (`approval-notified`). Nothing a webhook answers reaches
/// a review.
pub struct WebhookNotify {
    notifier: custos_notify::Notifier,
}

impl WebhookNotify {
    /// Webhooks per `configs`; delivery outcomes are recorded through `recorder`.
    pub fn new(
        configs: &[custos_notify::WebhookConfig],
        recorder: Recorder,
    ) -> Result<Self, custos_notify::NotifyError> {
        let reporter: custos_notify::Reporter =
            Arc::new(move |report: custos_notify::DeliveryReport| {
                if !report.outcome.is_final() {
                    return;
                }
                let mut rec = Record::new(RecordKind::parse("approval-notified"), now());
                rec.custos.approval = Some(ApprovalRef {
                    id: report.review_id.clone(),
                    ..ApprovalRef::default()
                });
                rec.annotations.insert(
                    "custos.dev/notification".into(),
                    format!(
                        "{} to webhook {} ({}): {:?}",
                        report.kind, report.webhook, report.endpoint, report.outcome
                    )
                    .chars()
                    .take(1024)
                    .collect(),
                );
                recorder.append_later(rec);
            });
        Ok(WebhookNotify {
            notifier: custos_notify::Notifier::new(configs, reporter)?,
        })
    }

    /// Waits (at most `limit`) for queued notifications, at shutdown.
    pub async fn flush(&self, limit: Duration) -> bool {
        self.notifier.flush(limit).await
    }
}

impl Notify for WebhookNotify {
    fn announce(&self, kind: &str, r: &Review) {
        use custos_notify::EventKind as K;
        let kind = match kind {
            "review.requested" => K::ReviewRequested,
            "review.approved" => K::ReviewApproved,
            "review.denied" => K::ReviewDenied,
            "review.expired" => K::ReviewExpired,
            "grant.created" => K::GrantCreated,
            "grant.revoked" => K::GrantRevoked,
            _ => return,
        };
        let intent = r
            .session
            .as_ref()
            .and_then(|s| s.intent.as_deref())
            .map(|i| format!(" — intent: {i}"))
            .unwrap_or_default();
        let summary = match kind {
            K::ReviewRequested => format!(
                "{} asks to {}{} — approve: custos reviews approve {} --reason \"…\"",
                r.requester.username,
                r.operation.describe(),
                intent,
                r.id
            ),
            _ => format!(
                "{} {}: {} by {}{}",
                r.id,
                kind.as_str(),
                r.operation.describe(),
                r.requester.username,
                if r.votes.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", r.justification())
                }
            ),
        };
        self.notifier.send(custos_notify::Event {
            kind,
            review_id: r.id.clone(),
            summary,
            payload: serde_json::to_value(r).unwrap_or_default(),
            at: now().to_string(),
        });
    }
}

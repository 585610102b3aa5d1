//! [`decide`]: Cedar's answer turned into allow, review or deny, and [`explain`] for people.
//!
//! The rules, in order:
//! 1. a satisfied `forbid` denies, and so does a `forbid` that fails to evaluate (fail closed);
//! 2. otherwise satisfied permits allow, unless every one of them is `@outcome("review")`: then the
//!    request needs review, with the approvers, hold and grant of those permits;
//! 3. nothing satisfied denies.

use std::collections::BTreeMap;
use std::time::SystemTime;

use cedar_policy::{AuthorizationError, Authorizer, Decision as CedarDecision, PolicyId};
use serde::Serialize;

use crate::decision::{Decision, Outcome, Review};
use crate::entities::{build, describe, Built, ContextFacts};
use crate::request::Request;
use crate::set::{Effect, PolicyInfo, PolicySet};

/// Decides `request` at `now` against `policies`. Pure and infallible: a request that cannot be put
/// to policy at all (a verb the schema lacks) is denied with the reason.
pub fn decide(policies: &PolicySet, request: &Request<'_>, now: SystemTime) -> Decision {
    match build(request, now) {
        Ok(built) => evaluate(policies, request, &built),
        Err(e) => Decision::default_deny(format!("no policy permits {}: {e}", describe(request))),
    }
}

/// A decision with what it was decided on, for `custos policy explain` and for people reading an
/// audit record.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation<'p> {
    /// The decision.
    pub decision: Decision,
    /// The Cedar principal, e.g. `k8s::User::"alice"`.
    pub principal: String,
    /// The groups it is in (implicit ones included).
    pub groups: Vec<String>,
    /// The Cedar action, e.g. `k8s::Action::"delete"`.
    pub action: String,
    /// The Cedar resource, e.g. `k8s::Resource::"/api/v1/namespaces/a/pods/web"`.
    pub resource: String,
    /// The context policies saw.
    pub context: ContextFacts,
    /// The deciding policies, in load order.
    pub deciding: Vec<&'p PolicyInfo>,
}

/// Decides `request` and says what the decision was made on.
pub fn explain<'p>(
    policies: &'p PolicySet,
    request: &Request<'_>,
    now: SystemTime,
) -> Explanation<'p> {
    let decision = decide(policies, request, now);
    let (principal, groups, action, resource) = match build(request, now) {
        Ok(b) => (
            b.caller.uid.to_string(),
            b.caller.groups.clone(),
            b.request
                .action()
                .map(ToString::to_string)
                .unwrap_or_default(),
            b.request
                .resource()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        Err(_) => (
            request.user.username.clone(),
            request.user.groups.clone(),
            request.verb().to_owned(),
            String::new(),
        ),
    };
    let deciding = decision
        .policy_ids
        .iter()
        .filter_map(|id| policies.policy(id))
        .collect();
    Explanation {
        decision,
        principal,
        groups,
        action,
        resource,
        context: ContextFacts::of(request, now),
        deciding,
    }
}

/// What the evaluated policies said.
#[derive(Default)]
struct Matches<'p> {
    forbids: Vec<&'p PolicyInfo>,
    permits: Vec<&'p PolicyInfo>,
    failed_forbids: Vec<&'p PolicyInfo>,
    errors: Vec<String>,
}

fn evaluate(policies: &PolicySet, request: &Request<'_>, built: &Built) -> Decision {
    let authorizer = Authorizer::new();
    let mut m = Matches::default();
    let info = |id: &PolicyId| policies.info(id);
    for set in policies
        .index
        .sets(request.verb(), &built.caller.uid, &built.caller.groups)
    {
        let response = authorizer.is_authorized(&built.request, set, &built.entities);
        let satisfied = response.diagnostics().reason().filter_map(info);
        match response.decision() {
            CedarDecision::Deny => m.forbids.extend(satisfied),
            CedarDecision::Allow => m.permits.extend(satisfied),
        }
        for AuthorizationError::PolicyEvaluationError(e) in response.diagnostics().errors() {
            m.errors.push(e.to_string());
            if let Some(p) = info(e.policy_id()).filter(|p| p.effect == Effect::Forbid) {
                m.failed_forbids.push(p);
            }
        }
    }
    combine(m, request)
}

fn combine(mut m: Matches<'_>, request: &Request<'_>) -> Decision {
    for list in [&mut m.forbids, &mut m.permits, &mut m.failed_forbids] {
        list.sort_by_key(|p| p.ordinal);
        list.dedup_by_key(|p| p.ordinal);
    }
    m.errors.sort();
    let (outcome, deciding, reasons): (Outcome, Vec<&PolicyInfo>, Vec<String>) =
        if !m.forbids.is_empty() || !m.failed_forbids.is_empty() {
            let mut reasons: Vec<String> = m
                .forbids
                .iter()
                .map(|p| reason(p, || format!("forbidden by policy {}", p.id)))
                .collect();
            reasons.extend(
                m.failed_forbids
                    .iter()
                    .map(|p| format!("policy {} could not be evaluated, so it denies", p.id)),
            );
            let mut deciding = m.forbids;
            deciding.extend(m.failed_forbids);
            (Outcome::Deny, deciding, reasons)
        } else if m.permits.is_empty() {
            let mut d = Decision::default_deny(format!("no policy permits {}", describe(request)));
            d.errors = m.errors;
            return d;
        } else if m.permits.iter().all(|p| p.review) {
            let reasons = m
                .permits
                .iter()
                .map(|p| reason(p, || format!("policy {} requires approval", p.id)))
                .collect();
            (Outcome::Review, m.permits, reasons)
        } else {
            let deciding: Vec<&PolicyInfo> = m.permits.into_iter().filter(|p| !p.review).collect();
            let reasons = deciding
                .iter()
                .map(|p| reason(p, || format!("permitted by policy {}", p.id)))
                .collect();
            (Outcome::Allow, deciding, reasons)
        };
    let review = (outcome == Outcome::Review).then(|| merge_reviews(&deciding));
    Decision {
        outcome,
        policy_ids: deciding.iter().map(|p| p.id.clone()).collect(),
        annotations: deciding
            .iter()
            .map(|p| (p.id.clone(), p.annotations.clone()))
            .collect::<BTreeMap<_, _>>(),
        reasons,
        review,
        errors: m.errors,
    }
}

fn reason(p: &PolicyInfo, default: impl FnOnce() -> String) -> String {
    p.annotations
        .get("reason")
        .filter(|r| !r.trim().is_empty())
        .cloned()
        .unwrap_or_else(default)
}

/// Approvers: the union; hold: the longest; grant: the shortest (least privilege).
fn merge_reviews(deciding: &[&PolicyInfo]) -> Review {
    let mut review = Review::default();
    for spec in deciding.iter().filter_map(|p| p.review_spec.as_ref()) {
        for a in &spec.approvers {
            if !review.approvers.contains(a) {
                review.approvers.push(a.clone());
            }
        }
        review.hold_seconds = review.hold_seconds.max(spec.hold_seconds);
        review.grant_seconds = match (review.grant_seconds, spec.grant_seconds) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    review
}

#[cfg(test)]
mod tests;

//! The decide step: Cedar policy over the authenticated identity, the classified request and facts from
//! its body, plus the gate on client impersonation. The policy set can be reloaded while serving; an
//! invalid new set is refused and the last good one stays in force.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use custos_audit::record::{DecisionRecord, Outcome as RecordOutcome};
use custos_authn::{AuthMethod, Identity};
use custos_kube::RequestAttributes;
use custos_policy::{
    decide, decide_impersonation, is_agent, BodyFacts, Decision, ImpersonationRequest, Outcome,
    PolicyError, PolicyStore, Request,
};

/// The loaded policy and how to apply it.
pub struct PolicyGate {
    store: PolicyStore,
    path: PathBuf,
    agent_groups: Vec<String>,
}

impl PolicyGate {
    /// Loads and validates the policies at `path` (a file or a folder); an invalid set is an error.
    pub fn load(path: &Path, agent_groups: Vec<String>) -> Result<Self, PolicyError> {
        let loaded = custos_policy::load(path)?;
        for w in &loaded.warnings {
            tracing::warn!(warning = %w, "policy validator warning");
        }
        tracing::info!(policies = loaded.set.len(), files = loaded.files.len(), path = %path.display(), "policies loaded");
        Ok(PolicyGate {
            store: PolicyStore::new(loaded.set),
            path: path.to_owned(),
            agent_groups,
        })
    }

    /// Reloads from the same path; on error the current set stays in force.
    pub fn reload(&self) -> Result<usize, PolicyError> {
        self.store.reload(&self.path).map(|r| r.policies)
    }

    /// The policy path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn request<'a>(
        &self,
        identity: &'a Identity,
        attrs: &'a RequestAttributes,
        facts: &'a BodyFacts,
        peer: IpAddr,
    ) -> Request<'a> {
        Request::api(&identity.user, attrs)
            .agent(is_agent(&identity.user, &self.agent_groups))
            .auth_method(auth_method(identity))
            .source_ip(Some(peer))
            .body(Some(facts))
    }

    /// Decides an API request.
    pub fn decide(
        &self,
        identity: &Identity,
        attrs: &RequestAttributes,
        facts: &BodyFacts,
        peer: IpAddr,
        session: Option<&custos_policy::Session>,
    ) -> Decision {
        let policies = self.store.current();
        decide(
            &policies,
            &self.request(identity, attrs, facts, peer).session(session),
            SystemTime::now(),
        )
    }

    /// Decides whether the caller may impersonate what its `Impersonate-*` headers ask for.
    pub fn decide_impersonation(
        &self,
        identity: &Identity,
        attrs: &RequestAttributes,
        asked: &ImpersonationRequest,
        peer: IpAddr,
    ) -> Decision {
        let policies = self.store.current();
        let facts = BodyFacts::none();
        let req = self.request(identity, attrs, &facts, peer);
        decide_impersonation(&policies, &req, asked, SystemTime::now())
    }
}

fn auth_method(identity: &Identity) -> &'static str {
    match identity.method {
        AuthMethod::Oidc { .. } => "oidc",
        AuthMethod::ClientCert => "client_cert",
        AuthMethod::StaticToken => "static_token",
    }
}

/// The decision as the audit record carries it.
pub fn decision_record(d: &Decision) -> DecisionRecord {
    DecisionRecord {
        outcome: match d.outcome {
            Outcome::Allow => RecordOutcome::Allow,
            Outcome::Review => RecordOutcome::Review,
            Outcome::Deny => RecordOutcome::Deny,
        },
        policy_ids: d.policy_ids.clone(),
        reason: (!d.is_allowed()).then(|| d.message()),
        annotations: d
            .annotations
            .iter()
            .flat_map(|(id, kv)| {
                kv.iter()
                    .map(move |(k, v)| (format!("{id}/{k}"), v.clone()))
            })
            .collect(),
    }
}

/// Whether a request's body carries facts policy looks at (and so must be read before deciding).
pub fn needs_body(attrs: &RequestAttributes) -> bool {
    matches!(attrs.verb.as_str(), "create" | "update" | "patch")
}

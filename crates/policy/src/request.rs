//! [`Request`]: what is decided on. Borrowed from the gateway's per-request values, so deciding
//! copies nothing it does not have to.

use std::net::IpAddr;

use custos_kube::{RequestAttributes, UserInfo};
use serde::{Deserialize, Serialize};

use crate::body::BodyFacts;

/// One question for policy: may `user` do `target`, in this context?
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Who asks, as authenticated (and as impersonated upstream).
    pub user: &'a UserInfo,
    /// True when the caller is an agent; see [`crate::is_agent`].
    pub agent: bool,
    /// How the caller authenticated: `oidc`, `client_cert`, `static_token`; empty when unknown.
    pub auth_method: &'a str,
    /// What the caller wants to do.
    pub target: Target<'a>,
    /// The agent session the request belongs to, when there is one.
    pub session: Option<&'a Session>,
    /// The caller's address.
    pub source_ip: Option<IpAddr>,
    /// Facts from the request body; `None` when there is no body (reads, deletes).
    pub body: Option<&'a BodyFacts>,
}

/// What a request does: an API call, or taking on another identity.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A Kubernetes API request, classified as the apiserver does.
    Api(&'a RequestAttributes),
    /// One identity named in a client's `Impersonate-*` headers (action `impersonate`).
    Impersonate(&'a ImpersonationTarget),
}

/// One thing a client asks to impersonate; each is decided separately, as the apiserver does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ImpersonationTarget {
    /// `Impersonate-User` naming a user (resource `k8s::User`).
    User {
        /// The username.
        name: String,
    },
    /// `Impersonate-User: system:serviceaccount:<namespace>:<name>` (resource `k8s::ServiceAccount`).
    ServiceAccount {
        /// The service account's namespace.
        namespace: String,
        /// The service account's name.
        name: String,
    },
    /// One `Impersonate-Group` (resource `k8s::Group`).
    Group {
        /// The group name.
        name: String,
    },
    /// `Impersonate-Uid` (resource `k8s::PrincipalUID`).
    Uid {
        /// The uid.
        uid: String,
    },
    /// One value of one `Impersonate-Extra-<key>` (resource `k8s::Extra`).
    Extra {
        /// The extra key (lowercase, percent-decoded).
        key: String,
        /// The value.
        value: String,
    },
}

impl ImpersonationTarget {
    /// The target for an impersonated username: a service account when it has that form.
    pub fn user(username: &str) -> Self {
        match service_account(username) {
            Some((namespace, name)) => Self::ServiceAccount {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            },
            None => Self::User {
                name: username.to_owned(),
            },
        }
    }
}

/// The agent session a request belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session id, when sessions are tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The declared intent: why the agent is doing this, in a sentence.
    pub intent: String,
    /// The change or incident ticket the work is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

impl<'a> Request<'a> {
    /// A request for an API call by `user`, with no agent flag, session, address or body.
    pub fn api(user: &'a UserInfo, attributes: &'a RequestAttributes) -> Self {
        Self::new(user, Target::Api(attributes))
    }

    /// A request by `user` to impersonate `target`.
    pub fn impersonate(user: &'a UserInfo, target: &'a ImpersonationTarget) -> Self {
        Self::new(user, Target::Impersonate(target))
    }

    fn new(user: &'a UserInfo, target: Target<'a>) -> Self {
        Self {
            user,
            agent: false,
            auth_method: "",
            target,
            session: None,
            source_ip: None,
            body: None,
        }
    }

    /// Marks the caller as an agent (or not).
    #[must_use]
    pub fn agent(mut self, agent: bool) -> Self {
        self.agent = agent;
        self
    }

    /// Sets how the caller authenticated.
    #[must_use]
    pub fn auth_method(mut self, method: &'a str) -> Self {
        self.auth_method = method;
        self
    }

    /// Sets the session.
    #[must_use]
    pub fn session(mut self, session: Option<&'a Session>) -> Self {
        self.session = session;
        self
    }

    /// Sets the caller's address.
    #[must_use]
    pub fn source_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.source_ip = ip;
        self
    }

    /// Sets the body facts (see [`BodyFacts::extract`]).
    #[must_use]
    pub fn body(mut self, body: Option<&'a BodyFacts>) -> Self {
        self.body = body;
        self
    }

    /// The Kubernetes verb, which is the Cedar action.
    pub fn verb(&self) -> &'a str {
        match self.target {
            Target::Api(a) => &a.verb,
            Target::Impersonate(_) => "impersonate",
        }
    }
}

/// True when `user` is a member of any of `agent_groups` (compared exactly, prefixes included).
pub fn is_agent(user: &UserInfo, agent_groups: &[String]) -> bool {
    user.groups.iter().any(|g| agent_groups.contains(g))
}

/// `(namespace, name)` of a `system:serviceaccount:<namespace>:<name>` username.
pub(crate) fn service_account(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix("system:serviceaccount:")?;
    let (namespace, name) = rest.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then_some((namespace, name))
}

//! Cedar policy for Kubernetes requests: every request Custos sees gets a [`Decision`] — allow,
//! review or deny — naming the policies that decided it.
//!
//! Owns: the Cedar schema for Kubernetes requests ([`SCHEMA_SOURCE`]: principals `k8s::User` and
//! `k8s::ServiceAccount` in `k8s::Group`s; resources `k8s::Resource` and `k8s::NonResourceURL`;
//! the Kubernetes verbs as actions; a `context` with the agent flag, session, source IP, time and
//! facts read from the request body), compiling and validating policy sets ([`PolicySet`],
//! [`load()`], with `file:line:column` for every problem), [`decide`] and [`explain`], client
//! impersonation checks ([`decide_impersonation`]), the body-fact extractor ([`BodyFacts`]), the
//! holder of the set in force ([`PolicyStore`]) and policy tests ([`Suite`]). docs/policy.md is
//! the guide for policy authors.
//!
//! Never: performs network I/O, reads clocks (`now` is passed in), or lets a failure widen access —
//! a forbid that cannot be evaluated denies, a request that does not fit the schema is denied, a
//! body it cannot read has `known == false`, and an invalid policy set is refused whole. Reading
//! policy files happens only in [`load`](mod@load).
#![deny(missing_docs)]

mod annotations;
mod body;
mod compile;
mod decide;
mod decision;
mod entities;
mod error;
mod impersonation;
mod index;
pub mod load;
mod request;
mod rewrite;
mod schema;
mod set;
mod store;
pub mod suite;

pub use annotations::parse_duration;
pub use body::{registry, BodyFacts, MAX_BODY_BYTES};
pub use compile::{Compiled, Source};
pub use decide::{decide, explain, Explanation};
pub use decision::{Decision, Outcome, Review};
pub use entities::{ContextFacts, TimeFacts, AUTHENTICATED_GROUP};
pub use error::{Diagnostic, Location, PolicyError};
pub use impersonation::{
    decide_impersonation, impersonation_request, ImpersonationHeaderError, ImpersonationRequest,
};
pub use load::{load, LoadedPolicies};
pub use request::{is_agent, ImpersonationTarget, Request, Session, Target};
pub use schema::{schema, verbs, NAMESPACE, SCHEMA_SOURCE};
pub use set::{Effect, PolicyInfo, PolicySet};
pub use store::{PolicyStore, Reloaded};
pub use suite::{CaseResult, Suite};

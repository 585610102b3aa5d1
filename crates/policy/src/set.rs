//! [`PolicySet`]: a validated, compiled set of policies with what Custos knows about each one.

use std::collections::{BTreeMap, HashMap};

use cedar_policy::PolicyId;
use serde::Serialize;

use crate::annotations::ReviewSpec;
use crate::error::Location;
use crate::index::Index;

/// A policy's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// `permit`.
    Permit,
    /// `forbid`.
    Forbid,
}

/// One policy as loaded: id, effect, annotations and where it is written.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyInfo {
    /// Its id: `@id`, or `<file>#<n>` for the n-th policy of a file without one.
    pub id: String,
    /// Permit or forbid.
    pub effect: Effect,
    /// True for a permit annotated `@outcome("review")`.
    pub review: bool,
    /// Every annotation, as written.
    pub annotations: BTreeMap<String, String>,
    /// Where the policy starts.
    pub location: Location,
    /// The policy's source text.
    pub text: String,
    /// False for a permit that names a resource (`resource.resource`) but never mentions
    /// `subresource`: Custos applies it to requests without a subresource only, as RBAC's
    /// `pods` does not grant `pods/exec`.
    pub covers_subresources: bool,
    #[serde(skip)]
    pub(crate) review_spec: Option<ReviewSpec>,
    /// Position in load order, for stable output.
    #[serde(skip)]
    pub(crate) ordinal: usize,
}

/// A validated policy set, ready for [`crate::decide`]. Immutable: a reload builds a new one.
#[derive(Debug)]
pub struct PolicySet {
    pub(crate) index: Index,
    pub(crate) infos: HashMap<PolicyId, PolicyInfo>,
    /// Every (rewritten) policy in one set: evaluated whole in tests, to check the index.
    #[cfg(test)]
    pub(crate) all: cedar_policy::PolicySet,
}

impl PolicySet {
    /// How many policies the set holds.
    pub fn len(&self) -> usize {
        self.infos.len()
    }

    /// True when the set holds no policy (every request is denied).
    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    /// The policies, in load order (files in name order, policies in file order).
    pub fn policies(&self) -> Vec<&PolicyInfo> {
        let mut all: Vec<&PolicyInfo> = self.infos.values().collect();
        all.sort_by_key(|p| p.ordinal);
        all
    }

    /// The policy with this id.
    pub fn policy(&self, id: &str) -> Option<&PolicyInfo> {
        self.infos.get(&PolicyId::new(id))
    }

    pub(crate) fn info(&self, id: &PolicyId) -> Option<&PolicyInfo> {
        self.infos.get(id)
    }
}

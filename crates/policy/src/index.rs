//! Buckets of policies by verb and by the principal they name, so a decision evaluates only the
//! policies that could apply: the ones for its verb that name no principal, name one of its groups,
//! or name it. Cedar's answer is a union over policies (any satisfied forbid denies, else any
//! satisfied permit allows), so evaluating the buckets separately and joining their answers is the
//! same decision as evaluating the whole set; `decide`'s tests check exactly that.

use std::collections::HashMap;

use cedar_policy::{ActionConstraint, EntityUid, Policy, PolicySet, PrincipalConstraint};

use crate::schema::{action_in, compiled};

/// The policies of one verb.
#[derive(Debug, Default)]
pub(crate) struct VerbBucket {
    /// Policies whose principal scope names no group or principal.
    pub(crate) any: Option<PolicySet>,
    /// Policies scoped `principal in k8s::Group::"<name>"`, by group name.
    pub(crate) groups: HashMap<String, PolicySet>,
    /// Policies scoped to one principal (`principal == k8s::User::"alice"`).
    pub(crate) principals: HashMap<EntityUid, PolicySet>,
}

/// The whole index.
#[derive(Debug, Default)]
pub(crate) struct Index {
    verbs: HashMap<String, VerbBucket>,
}

/// Whom a policy's principal scope can match.
enum Scope {
    Any,
    Group(String),
    Principal(EntityUid),
}

impl Index {
    /// Files every policy under each verb its action scope admits and the principal it names.
    /// Each item is a policy as written and the form to evaluate (see
    /// `compile::without_action_hierarchy`).
    pub(crate) fn build<'a>(policies: impl IntoIterator<Item = (&'a Policy, &'a Policy)>) -> Self {
        let mut index = Self::default();
        let verbs: Vec<(&String, &EntityUid)> = compiled().verbs.iter().collect();
        for (policy, evaluated) in policies {
            let scope = scope(policy);
            for (verb, uid) in &verbs {
                if !admits(&policy.action_constraint(), uid) {
                    continue;
                }
                let bucket = index.verbs.entry((*verb).clone()).or_default();
                let set = match &scope {
                    Scope::Any => bucket.any.get_or_insert_with(PolicySet::new),
                    Scope::Group(g) => bucket.groups.entry(g.clone()).or_default(),
                    Scope::Principal(p) => bucket.principals.entry(p.clone()).or_default(),
                };
                // Ids are unique in the source set, so adding cannot collide.
                let _ = set.add(evaluated.clone());
            }
        }
        index
    }

    /// The policy sets to evaluate for `verb` asked by `principal`, a member of `groups`.
    pub(crate) fn sets<'a>(
        &'a self,
        verb: &str,
        principal: &'a EntityUid,
        groups: &'a [String],
    ) -> impl Iterator<Item = &'a PolicySet> + 'a {
        let bucket = self.verbs.get(verb);
        bucket
            .and_then(|b| b.any.as_ref())
            .into_iter()
            .chain(
                groups
                    .iter()
                    .filter_map(move |g| bucket.and_then(|b| b.groups.get(g))),
            )
            .chain(bucket.and_then(|b| b.principals.get(principal)))
    }
}

fn admits(constraint: &ActionConstraint, verb: &EntityUid) -> bool {
    match constraint {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(a) => action_in(verb, a),
        ActionConstraint::In(list) => list.iter().any(|a| action_in(verb, a)),
    }
}

fn scope(policy: &Policy) -> Scope {
    let group_type = &compiled().types.group;
    let named = |uid: EntityUid| {
        if uid.type_name() == group_type {
            Scope::Group(uid.id().unescaped().to_owned())
        } else {
            // Users and service accounts have no members: `in` one is `==` it.
            Scope::Principal(uid)
        }
    };
    match policy.principal_constraint() {
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => Scope::Any,
        PrincipalConstraint::In(uid)
        | PrincipalConstraint::Eq(uid)
        | PrincipalConstraint::IsIn(_, uid) => named(uid),
    }
}

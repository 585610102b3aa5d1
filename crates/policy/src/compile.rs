//! Policy sources → [`PolicySet`]: parse each file, name each policy, check Custos's annotations,
//! validate everything against the schema in strict mode, then compile (the subresource rule, the
//! index). Pure: the sources are strings; `load` reads them from disk.

use std::collections::{BTreeMap, HashMap};

use cedar_policy::{Effect as CedarEffect, Policy, PolicyId, ValidationMode};

use crate::annotations::review_spec;
use crate::error::{from_miette, Diagnostic, Location, PolicyError};
use crate::index::Index;
use crate::rewrite::{names_resource_only, without_action_hierarchy, without_subresources};
use crate::schema::compiled;
use crate::set::{Effect, PolicyInfo, PolicySet};

/// One policy file's name (as it should appear in messages) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The name used in ids and `file:line:column` messages.
    pub name: String,
    /// The Cedar text.
    pub text: String,
}

/// A policy set with the warnings Cedar's validator raised about it (which do not refuse it).
#[derive(Debug)]
pub struct Compiled {
    /// The set.
    pub set: PolicySet,
    /// Warnings, e.g. a policy that can never apply.
    pub warnings: Vec<Diagnostic>,
}

/// A parsed policy and where it came from.
struct Parsed<'s> {
    policy: Policy,
    source: &'s Source,
    offset: usize,
    info: PolicyInfo,
}

impl PolicySet {
    /// Parses, checks and validates `sources` as one set. Every problem in every file is reported,
    /// each with its `file:line:column`.
    pub fn compile(sources: &[Source]) -> Result<Compiled, PolicyError> {
        let mut errors = Vec::new();
        let mut parsed = Vec::new();
        let mut syntax_ok = true;
        for source in sources {
            syntax_ok &= parse_file(source, &mut parsed, &mut errors);
        }
        check_ids(&parsed, &mut errors);
        // Type errors are worth reporting beside annotation problems, but not beside syntax
        // errors: a file that does not parse is missing from the set, and its absence would
        // show up as spurious errors elsewhere.
        let warnings = if syntax_ok {
            validate(&parsed, &mut errors)
        } else {
            Vec::new()
        };
        if !errors.is_empty() {
            errors.sort_by(|a, b| a.location.cmp(&b.location));
            return Err(PolicyError::Invalid(errors));
        }
        Ok(Compiled {
            set: assemble(parsed).map_err(|message| {
                PolicyError::Invalid(vec![Diagnostic {
                    location: Location::at("", "", 0),
                    message: format!("internal error compiling policies: {message}"),
                    policy_id: None,
                    help: None,
                }])
            })?,
            warnings,
        })
    }

    /// Compiles one source text (tests, examples, `custos policy explain` on a single file).
    pub fn from_text(name: &str, text: &str) -> Result<PolicySet, PolicyError> {
        Self::compile(&[Source {
            name: name.to_owned(),
            text: text.to_owned(),
        }])
        .map(|c| c.set)
    }
}

/// The set as evaluated: each permit under the subresource rule, indexed without the action
/// hierarchy. Fails only if Cedar refuses its own JSON form back.
fn assemble(parsed: Vec<Parsed<'_>>) -> Result<PolicySet, String> {
    let mut infos = HashMap::new();
    let mut policies = Vec::new();
    for p in parsed {
        let policy = if p.info.covers_subresources {
            p.policy
        } else {
            without_subresources(&p.policy)?
        };
        infos.insert(policy.id().clone(), p.info);
        policies.push(policy);
    }
    let evaluated = policies
        .iter()
        .map(without_action_hierarchy)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PolicySet {
        index: Index::build(policies.iter().zip(&evaluated)),
        infos,
        #[cfg(test)]
        all: cedar_policy::PolicySet::from_policies(policies).map_err(|e| e.to_string())?,
    })
}

/// Parses one file into `out`; false when it has syntax errors (reported in `errors`).
fn parse_file<'s>(
    source: &'s Source,
    out: &mut Vec<Parsed<'s>>,
    errors: &mut Vec<Diagnostic>,
) -> bool {
    let set = match source.text.parse::<cedar_policy::PolicySet>() {
        Ok(set) => set,
        Err(errs) => {
            errors.extend(
                errs.iter()
                    .map(|e| from_miette(&source.name, &source.text, 0, None, e)),
            );
            return false;
        }
    };
    for template in set.templates() {
        let offset = find(&source.text, &template.to_cedar(), 0);
        errors.push(Diagnostic {
            location: Location::at(&source.name, &source.text, offset),
            message: "policy templates (?principal, ?resource) are not supported".into(),
            policy_id: None,
            help: Some("write the principal or resource into the policy".into()),
        });
    }
    // Cedar names the policies of a text policy0, policy1, ... in order of appearance.
    let mut policies: Vec<&Policy> = set.policies().collect();
    policies.sort_by_key(|p| ordinal(p.id()));
    let mut cursor = 0;
    for (n, policy) in policies.into_iter().enumerate() {
        let text = policy.to_cedar().unwrap_or_default();
        let offset = find(&source.text, &text, cursor);
        cursor = offset + text.len();
        let ordinal = out.len();
        out.push(parse_policy(
            source, policy, n, offset, text, ordinal, errors,
        ));
    }
    true
}

/// The last component of a path-like source name: ids stay the same wherever the folder is.
fn file_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// Names one policy, checks its annotations and notes what Custos needs to know about it.
fn parse_policy<'s>(
    source: &'s Source,
    policy: &Policy,
    n: usize,
    offset: usize,
    text: String,
    ordinal: usize,
    errors: &mut Vec<Diagnostic>,
) -> Parsed<'s> {
    let id = match policy.annotation("id") {
        Some(id) => id.to_owned(),
        None => format!("{}#{}", file_name(&source.name), n + 1),
    };
    let review = review_spec(policy).unwrap_or_else(|problems| {
        for p in problems {
            let at = find(&text, &format!("@{}", p.key), 0);
            errors.push(Diagnostic {
                location: Location::at(&source.name, &source.text, offset + at),
                message: p.message,
                policy_id: Some(id.clone()),
                help: None,
            });
        }
        None
    });
    let effect = match policy.effect() {
        CedarEffect::Permit => Effect::Permit,
        CedarEffect::Forbid => Effect::Forbid,
    };
    let info = PolicyInfo {
        id: id.clone(),
        effect,
        review: review.is_some(),
        annotations: policy
            .annotations()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        location: Location::at(&source.name, &source.text, offset),
        text,
        covers_subresources: effect == Effect::Forbid || !names_resource_only(policy),
        review_spec: review,
        ordinal,
    };
    Parsed {
        policy: policy.new_id(PolicyId::new(&id)),
        source,
        offset,
        info,
    }
}

fn ordinal(id: &PolicyId) -> usize {
    id.to_string()
        .strip_prefix("policy")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Byte offset of `needle` in `haystack` at or after `from`; `from` when absent.
fn find(haystack: &str, needle: &str, from: usize) -> usize {
    haystack
        .get(from..)
        .and_then(|rest| rest.find(needle))
        .map_or(from, |i| from + i)
}

fn check_ids(parsed: &[Parsed<'_>], errors: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<&str, &Location> = BTreeMap::new();
    for p in parsed {
        if let Some(first) = seen.insert(&p.info.id, &p.info.location) {
            errors.push(Diagnostic {
                location: p.info.location.clone(),
                message: format!("duplicate policy id {:?} (first at {first})", p.info.id),
                policy_id: Some(p.info.id.clone()),
                help: Some("give each policy a unique @id".into()),
            });
        }
    }
}

/// Validates the whole set against the schema in strict mode: errors go to `errors` (they refuse
/// the set), warnings are returned.
fn validate(parsed: &[Parsed<'_>], errors: &mut Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut set = cedar_policy::PolicySet::new();
    let mut by_id = HashMap::new();
    for (n, p) in parsed.iter().enumerate() {
        // A duplicate id (already reported) is validated under a stand-in id.
        let policy = if set.policy(p.policy.id()).is_some() {
            p.policy
                .new_id(PolicyId::new(format!("{}#duplicate{n}", p.info.id)))
        } else {
            p.policy.clone()
        };
        by_id.insert(policy.id().clone(), p);
        let _ = set.add(policy);
    }
    let result = compiled().validator.validate(&set, ValidationMode::Strict);
    let diagnostic = |id: &PolicyId, e: &dyn miette::Diagnostic| match by_id.get(id) {
        Some(p) => from_miette(
            &p.source.name,
            &p.source.text,
            p.offset,
            Some(p.info.id.clone()),
            e,
        ),
        None => Diagnostic {
            location: Location::at("", "", 0),
            message: e.to_string(),
            policy_id: Some(id.to_string()),
            help: None,
        },
    };
    errors.extend(once_per_place(
        result
            .validation_errors()
            .map(|e| diagnostic(e.policy_id(), e)),
    ));
    once_per_place(
        result
            .validation_warnings()
            .map(|w| diagnostic(w.policy_id(), w)),
    )
}

/// Cedar checks a policy once per action it can apply to, so one mistake comes back once per
/// verb; keep the first of each (place, policy, hint).
fn once_per_place(diagnostics: impl Iterator<Item = Diagnostic>) -> Vec<Diagnostic> {
    let mut all: Vec<Diagnostic> = diagnostics.collect();
    all.sort_by(|a, b| (&a.location, &a.message).cmp(&(&b.location, &b.message)));
    let mut seen = std::collections::HashSet::new();
    all.into_iter()
        .filter(|d| seen.insert((d.location.clone(), d.policy_id.clone(), d.help.clone())))
        .collect()
}

#[cfg(test)]
mod tests;

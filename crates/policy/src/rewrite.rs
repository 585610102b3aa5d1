//! Policies as Custos evaluates them, rewritten in Cedar's JSON form (so the rewrite is on the
//! syntax tree, never on text): the subresource rule for permits, and the form the index evaluates,
//! which needs no action hierarchy. The originals are what is validated and shown.

use cedar_policy::Policy;
use serde_json::{json, Value};

use crate::schema::{action_in, compiled};

/// True when the policy reads `resource.resource` (names a resource) but never mentions
/// `subresource`.
pub(crate) fn names_resource_only(policy: &Policy) -> bool {
    let Ok(est) = policy.to_json() else {
        // Cannot inspect it: treat it as naming a resource, the narrower reading for a permit.
        return true;
    };
    let mut names_resource = false;
    let mut mentions_subresource = false;
    visit_attrs(&est, &mut |left, attr| {
        if attr == "subresource" {
            mentions_subresource = true;
        }
        if attr == "resource" && left == &json!({"Var": "resource"}) {
            names_resource = true;
        }
    });
    names_resource && !mentions_subresource
}

/// Calls `f(left, attr)` for every `.attr` access and `has attr` test in a policy's JSON form.
fn visit_attrs(value: &Value, f: &mut impl FnMut(&Value, &str)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "." || k == "has" {
                    if let (Some(left), Some(Value::String(attr))) = (v.get("left"), v.get("attr"))
                    {
                        f(left, attr);
                    }
                }
                visit_attrs(v, f);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| visit_attrs(v, f)),
        _ => {}
    }
}

/// The policy with `unless { resource is k8s::Resource && resource has subresource }` added.
pub(crate) fn without_subresources(policy: &Policy) -> Result<Policy, String> {
    let mut est = policy.to_json().map_err(|e| e.to_string())?;
    let guard = json!({
        "kind": "unless",
        "body": {"&&": {
            "left": {"is": {"left": {"Var": "resource"}, "entity_type": "k8s::Resource"}},
            "right": {"has": {"left": {"Var": "resource"}, "attr": "subresource"}},
        }},
    });
    match est.get_mut("conditions") {
        Some(Value::Array(conditions)) => conditions.push(guard),
        _ => {
            if let Value::Object(map) = &mut est {
                map.insert("conditions".into(), json!([guard]));
            }
        }
    }
    Policy::from_json(Some(policy.id().clone()), est).map_err(|e| e.to_string())
}

/// The policy as the index evaluates it, without the action hierarchy: its action scope removed
/// (a verb's bucket holds only policies whose scope admits that verb) and every action group in its
/// conditions (`action in k8s::Action::"readOnly"`) replaced by the set of its verbs. Requests then
/// need no action entities, and the policy no set built per evaluation.
pub(crate) fn without_action_hierarchy(policy: &Policy) -> Result<Policy, String> {
    let mut est = policy.to_json().map_err(|e| e.to_string())?;
    if let Value::Object(map) = &mut est {
        map.insert("action".into(), json!({"op": "All"}));
        if let Some(conditions) = map.get_mut("conditions") {
            expand_action_groups(conditions);
        }
    }
    Policy::from_json(Some(policy.id().clone()), est).map_err(|e| e.to_string())
}

/// Rewrites the right side of every `in` whose left side is `action`.
fn expand_action_groups(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(op)) = map.get_mut("in") {
                if op.get("left") == Some(&json!({"Var": "action"})) {
                    if let Some(right) = op.get_mut("right") {
                        expand_right(right);
                    }
                }
            }
            map.values_mut().for_each(expand_action_groups);
        }
        Value::Array(items) => items.iter_mut().for_each(expand_action_groups),
        _ => {}
    }
}

/// `k8s::Action::"readOnly"` or a set holding it → the set of the group's verbs.
fn expand_right(right: &mut Value) {
    let literals: Vec<Value> = match right {
        Value::Object(o) if o.contains_key("Value") || o.contains_key("Set") => {
            match (o.get("Value"), o.get("Set")) {
                (Some(Value::Object(e)), _) if e.contains_key("__entity") => vec![right.clone()],
                (Some(Value::Array(items)), _) => {
                    items.iter().map(|i| json!({"Value": i})).collect()
                }
                (_, Some(Value::Array(items))) => items.clone(),
                _ => return,
            }
        }
        _ => return,
    };
    let mut expanded = Vec::new();
    for literal in literals {
        match action_group_members(&literal) {
            Some(members) => expanded.extend(members),
            None => expanded.push(literal),
        }
    }
    *right = json!({"Set": expanded});
}

/// The verbs of an action group literal; `None` for anything else (a verb, a non-literal).
fn action_group_members(literal: &Value) -> Option<Vec<Value>> {
    let entity = literal.get("Value")?.get("__entity")?;
    if entity.get("type")?.as_str()? != "k8s::Action" {
        return None;
    }
    let id = entity.get("id")?.as_str()?;
    let group = compiled()
        .schema
        .action_groups()
        .find(|g| g.id().unescaped() == id)?;
    Some(
        compiled()
            .verbs
            .iter()
            .filter(|(_, uid)| action_in(uid, group))
            .map(|(verb, _)| json!({"Value": {"__entity": {"type": "k8s::Action", "id": verb}}}))
            .collect(),
    )
}

//! The Cedar schema for Kubernetes requests (`k8s.cedarschema`), parsed once.

use std::collections::HashMap;
use std::sync::OnceLock;

use cedar_policy::{Entities, EntityTypeName, EntityUid, Schema, Validator};

/// The schema's source text: what policies are validated against and what `custos policy` prints.
pub const SCHEMA_SOURCE: &str = include_str!("k8s.cedarschema");

/// The Cedar namespace of every type and action in the schema.
pub const NAMESPACE: &str = "k8s";

/// The parsed schema with its action hierarchy, shared by every policy set.
pub(crate) struct Compiled {
    pub(crate) schema: Schema,
    /// The strict-mode validator over that schema.
    pub(crate) validator: Validator,
    /// Action entities (with their groups), to resolve `action in k8s::Action::"readOnly"` at load.
    pub(crate) actions: Entities,
    /// The entity types requests are built from, parsed once.
    pub(crate) types: Types,
    /// `k8s::Action::"<verb>"` for every concrete verb of the schema.
    pub(crate) verbs: HashMap<String, EntityUid>,
}

/// The schema's entity types.
pub(crate) struct Types {
    pub(crate) user: EntityTypeName,
    pub(crate) service_account: EntityTypeName,
    pub(crate) group: EntityTypeName,
    pub(crate) resource: EntityTypeName,
    pub(crate) non_resource_url: EntityTypeName,
    pub(crate) principal_uid: EntityTypeName,
    pub(crate) extra: EntityTypeName,
}

/// The parsed schema.
pub fn schema() -> &'static Schema {
    &compiled().schema
}

pub(crate) fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        // The schema is a constant of this crate; the `schema_parses` test proves it parses.
        let (schema, _warnings) = Schema::from_cedarschema_str(SCHEMA_SOURCE)
            .unwrap_or_else(|e| panic!("k8s.cedarschema does not parse: {e}"));
        let actions = schema
            .action_entities()
            .unwrap_or_else(|e| panic!("k8s.cedarschema actions: {e}"));
        let groups: Vec<&EntityUid> = schema.action_groups().collect();
        let verbs = schema
            .actions()
            .filter(|a| !groups.contains(a))
            .map(|a| (a.id().unescaped().to_owned(), a.clone()))
            .collect();
        let types = Types {
            user: entity_type("User"),
            service_account: entity_type("ServiceAccount"),
            group: entity_type("Group"),
            resource: entity_type("Resource"),
            non_resource_url: entity_type("NonResourceURL"),
            principal_uid: entity_type("PrincipalUID"),
            extra: entity_type("Extra"),
        };
        Compiled {
            validator: Validator::new(schema.clone()),
            schema,
            actions,
            types,
            verbs,
        }
    })
}

/// `k8s::<name>` as an entity type.
pub(crate) fn entity_type(name: &str) -> EntityTypeName {
    // Every caller passes one of the schema's type names: a valid identifier.
    format!("{NAMESPACE}::{name}")
        .parse()
        .unwrap_or_else(|e| panic!("entity type {name}: {e}"))
}

/// `k8s::Action::"<verb>"`.
#[cfg(test)]
pub(crate) fn action_uid(verb: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(entity_type("Action"), cedar_policy::EntityId::new(verb))
}

/// The concrete (non-group) actions of the schema, by verb.
pub fn verbs() -> impl Iterator<Item = &'static str> {
    compiled().verbs.keys().map(String::as_str)
}

/// True when the schema has an action for `verb`.
#[cfg(test)]
pub(crate) fn has_verb(verb: &str) -> bool {
    compiled().verbs.contains_key(verb)
}

/// The action of `verb`, when the schema has one.
pub(crate) fn verb_uid(verb: &str) -> Option<&'static EntityUid> {
    compiled().verbs.get(verb)
}

/// True when the action `verb` is `group` or a member of it.
pub(crate) fn action_in(verb: &EntityUid, group: &EntityUid) -> bool {
    verb == group || compiled().actions.is_ancestor_of(group, verb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parses_and_has_the_kubernetes_verbs() {
        let verbs: Vec<_> = verbs().collect();
        for v in [
            "get",
            "list",
            "watch",
            "create",
            "update",
            "patch",
            "delete",
            "deletecollection",
            "proxy",
            "impersonate",
            "head",
            "post",
            "put",
            "options",
        ] {
            assert!(verbs.contains(&v), "missing {v}: {verbs:?}");
        }
        assert!(!verbs.contains(&"readOnly"));
        assert!(has_verb("watch") && !has_verb("connect") && !has_verb(""));
    }

    #[test]
    fn action_groups_resolve() {
        let read = action_uid("readOnly");
        assert!(action_in(&action_uid("list"), &read));
        assert!(action_in(&action_uid("get"), &read));
        assert!(!action_in(&action_uid("proxy"), &read));
        assert!(!action_in(&action_uid("create"), &read));
        assert!(action_in(&action_uid("create"), &action_uid("write")));
        assert!(action_in(&action_uid("get"), &action_uid("get")));
    }
}

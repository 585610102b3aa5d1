//! Turns a [`Request`] into Cedar's principal, action, resource, context and entities. Built fresh
//! for every request from the request alone; the policy set is never touched or copied.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use cedar_policy::{Context, Entities, Entity, EntityId, EntityUid, RestrictedExpression};
use custos_kube::{RequestAttributes, UserInfo};
use serde::Serialize;

use crate::body::BodyFacts;
use crate::request::{service_account, ImpersonationTarget, Request, Target};
use crate::schema::{compiled, verb_uid};

/// Every authenticated caller is in this group, as in the apiserver.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// A Cedar request with the entities it refers to.
pub(crate) struct Built {
    pub(crate) request: cedar_policy::Request,
    pub(crate) entities: Entities,
    /// The caller, for finding the policies that name it or its groups.
    pub(crate) caller: Rc<Caller>,
}

/// The principal of a caller, built once per identity (per thread) and reused: its entity with its
/// groups as parents, and an entity store holding just it, its transitive closure computed.
pub(crate) struct Caller {
    pub(crate) uid: EntityUid,
    /// Every group the principal is in (implicit ones included), sorted.
    pub(crate) groups: Vec<String>,
    entity: Entity,
    entities: Entities,
}

/// Why a request could not be put to Cedar; it is then denied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BuildError {
    #[error("verb {0:?} is not an action of the policy schema")]
    UnknownVerb(String),
    #[error("the request does not fit the policy schema: {0}")]
    Schema(String),
}

/// `context`, as policies see it (and as `explain` and audit records show it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextFacts {
    /// `context.agent`.
    pub agent: bool,
    /// `context.authMethod`.
    pub auth_method: String,
    /// `context.session`, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<crate::request::Session>,
    /// `context.sourceIP`, when known.
    #[serde(rename = "sourceIP", skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// `context.time`.
    pub time: TimeFacts,
    /// `context.body` (with `known`).
    pub body: BodyFacts,
}

/// `context.time`, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeFacts {
    /// Seconds since the Unix epoch (0 for earlier times).
    pub unix: i64,
    /// 0..23.
    pub hour: i64,
    /// 0..59.
    pub minute: i64,
    /// 1 = Monday .. 7 = Sunday.
    pub weekday: i64,
}

impl TimeFacts {
    /// The facts of `now`.
    pub fn at(now: SystemTime) -> Self {
        let unix = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let days = unix / 86_400;
        let of_day = unix % 86_400;
        Self {
            unix,
            hour: of_day / 3600,
            minute: of_day % 3600 / 60,
            // 1970-01-01 was a Thursday (4).
            weekday: (days + 3) % 7 + 1,
        }
    }
}

impl ContextFacts {
    /// The context of `req` at `now`.
    pub fn of(req: &Request<'_>, now: SystemTime) -> Self {
        Self {
            agent: req.agent,
            auth_method: req.auth_method.to_owned(),
            session: req.session.cloned(),
            source_ip: req.source_ip.map(|ip| ip.to_string()),
            time: TimeFacts::at(now),
            body: req.body.cloned().unwrap_or_default(),
        }
    }
}

/// Builds the Cedar request for `req` at `now`.
pub(crate) fn build(req: &Request<'_>, now: SystemTime) -> Result<Built, BuildError> {
    let c = compiled();
    let verb = req.verb();
    let action = verb_uid(verb)
        .ok_or_else(|| BuildError::UnknownVerb(verb.to_owned()))?
        .clone();
    let caller = caller(req.user)?;
    let mut entities: HashMap<EntityUid, Entity> = HashMap::new();
    let resource = match req.target {
        Target::Api(attrs) => api_resource(attrs, &mut entities)?,
        Target::Impersonate(target) => impersonated(target, &mut entities)?,
    };
    // A caller impersonating itself: its own entity (with its groups) is the one kept.
    entities.remove(&caller.uid);
    let context = context(req, now)?;
    // Checking the request and entities against the schema costs more than deciding; they are
    // built to fit it, so only debug builds (and so every test) check that they do.
    let check = cfg!(debug_assertions).then_some(&c.schema);
    let request = cedar_policy::Request::new(caller.uid.clone(), action, resource, context, check)
        .map_err(|e| BuildError::Schema(e.to_string()))?;
    if let Some(schema) = check {
        let all = entities.values().cloned().chain([caller.entity.clone()]);
        Entities::from_entities(all, Some(schema))
            .map_err(|e| BuildError::Schema(e.to_string()))?;
    }
    // No action entities: the index leaves no policy that needs the action hierarchy. Adding
    // parentless entities to the caller's store leaves its transitive closure as it is.
    let entities = caller
        .entities
        .clone()
        .upsert_entities(entities.into_values(), None)
        .map_err(|e| BuildError::Schema(e.to_string()))?;
    Ok(Built {
        request,
        entities,
        caller,
    })
}

/// The caller's principal, from this thread's cache of the last identities seen. Computing the
/// transitive closure of a principal and its groups is the dearest part of building a request,
/// and a gateway sees the same few identities again and again.
fn caller(user: &UserInfo) -> Result<Rc<Caller>, BuildError> {
    const KEPT: usize = 256;
    thread_local! {
        static CALLERS: RefCell<HashMap<String, Rc<Caller>>> = RefCell::new(HashMap::new());
    }
    let key = identity_key(user);
    if let Some(c) = CALLERS.with(|cache| cache.borrow().get(&key).cloned()) {
        return Ok(c);
    }
    let ((uid, entity), groups) = principal(user);
    let entities = Entities::from_entities([entity.clone()], None)
        .map_err(|e| BuildError::Schema(e.to_string()))?;
    let c = Rc::new(Caller {
        uid,
        groups,
        entity,
        entities,
    });
    CALLERS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= KEPT {
            cache.clear();
        }
        cache.insert(key, Rc::clone(&c));
    });
    Ok(c)
}

/// Everything a principal entity is built from, unambiguously (each part length-prefixed).
fn identity_key(user: &UserInfo) -> String {
    use std::fmt::Write;
    let mut key = String::new();
    let mut part = |s: &str| {
        let _ = write!(key, "{}:{s}", s.len());
    };
    part(&user.username);
    part(user.uid.as_deref().unwrap_or("\u{0}"));
    for g in &user.groups {
        part(g);
    }
    part("\u{0}extra");
    for (k, values) in &user.extra {
        part(k);
        for v in values {
            part(v);
        }
        part("\u{0}");
    }
    key
}

fn uid(ty: &cedar_policy::EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_owned())
}

fn entity(
    uid: EntityUid,
    attrs: impl IntoIterator<Item = (&'static str, RestrictedExpression)>,
    parents: HashSet<EntityUid>,
) -> Result<Entity, BuildError> {
    let attrs = attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    Entity::new(uid, attrs, parents).map_err(|e| BuildError::Schema(e.to_string()))
}

fn group_entity(uid: EntityUid, name: &str) -> Result<Entity, BuildError> {
    entity(uid, [("name", string(name))], HashSet::new())
}

/// The principal entity (`User` or `ServiceAccount`) and the groups it is in: its own, plus the
/// ones the apiserver adds (`system:authenticated`; for service accounts `system:serviceaccounts`
/// and `system:serviceaccounts:<namespace>`).
fn principal(user: &UserInfo) -> ((EntityUid, Entity), Vec<String>) {
    let c = compiled();
    let mut groups: Vec<String> = user.groups.clone();
    let sa = service_account(&user.username);
    if let Some((namespace, _)) = sa {
        groups.push("system:serviceaccounts".to_owned());
        groups.push(format!("system:serviceaccounts:{namespace}"));
    }
    groups.push(AUTHENTICATED_GROUP.to_owned());
    groups.sort();
    groups.dedup();
    let parents: HashSet<EntityUid> = groups.iter().map(|g| uid(&c.types.group, g)).collect();
    let mut attrs = vec![("extra", extra(&user.extra))];
    let ty = match sa {
        Some((namespace, name)) => {
            attrs.push(("name", string(name)));
            attrs.push(("namespace", string(namespace)));
            &c.types.service_account
        }
        None => {
            attrs.push(("name", string(&user.username)));
            &c.types.user
        }
    };
    if let Some(u) = &user.uid {
        attrs.push(("uid", string(u)));
    }
    let principal = uid(ty, &user.username);
    // Attributes are plain strings and sets of records: building them cannot fail.
    let entity = entity(principal.clone(), attrs, parents)
        .unwrap_or_else(|_| Entity::new_no_attrs(principal.clone(), HashSet::new()));
    ((principal, entity), groups)
}

fn extra(extra: &BTreeMap<String, Vec<String>>) -> RestrictedExpression {
    RestrictedExpression::new_set(extra.iter().map(|(k, values)| {
        RestrictedExpression::new_record([
            ("key".to_owned(), string(k)),
            (
                "values".to_owned(),
                RestrictedExpression::new_set(values.iter().map(|v| string(v))),
            ),
        ])
        // Two distinct literal keys: a record cannot fail to build.
        .unwrap_or_else(|_| RestrictedExpression::new_set([]))
    }))
}

/// `Resource` (or `NonResourceURL`) for an API request; its id is the request path.
fn api_resource(
    attrs: &RequestAttributes,
    entities: &mut HashMap<EntityUid, Entity>,
) -> Result<EntityUid, BuildError> {
    let c = compiled();
    let (resource, entity) = if attrs.is_resource_request {
        let resource = uid(&c.types.resource, &attrs.path);
        let mut a = vec![
            ("apiGroup", string(&attrs.api_group)),
            ("apiVersion", string(&attrs.api_version)),
            ("resource", string(&attrs.resource)),
        ];
        let optional = [
            ("subresource", &attrs.subresource),
            ("namespace", &attrs.namespace),
            ("name", &attrs.name),
            ("labelSelector", &attrs.label_selector),
            ("fieldSelector", &attrs.field_selector),
        ];
        a.extend(
            optional
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k, string(v))),
        );
        let e = entity(resource.clone(), a, HashSet::new())?;
        (resource, e)
    } else {
        let resource = uid(&c.types.non_resource_url, &attrs.path);
        let e = entity(
            resource.clone(),
            [("path", string(&attrs.path))],
            HashSet::new(),
        )?;
        (resource, e)
    };
    entities.insert(resource.clone(), entity);
    Ok(resource)
}

/// The entity a client asks to impersonate.
fn impersonated(
    target: &ImpersonationTarget,
    entities: &mut HashMap<EntityUid, Entity>,
) -> Result<EntityUid, BuildError> {
    let c = compiled();
    let no_extra = || RestrictedExpression::new_set([]);
    let (resource, entity) = match target {
        ImpersonationTarget::User { name } => {
            let r = uid(&c.types.user, name);
            let e = entity(
                r.clone(),
                [("name", string(name)), ("extra", no_extra())],
                HashSet::new(),
            )?;
            (r, e)
        }
        ImpersonationTarget::ServiceAccount { namespace, name } => {
            let r = uid(
                &c.types.service_account,
                &format!("system:serviceaccount:{namespace}:{name}"),
            );
            let e = entity(
                r.clone(),
                [
                    ("name", string(name)),
                    ("namespace", string(namespace)),
                    ("extra", no_extra()),
                ],
                HashSet::new(),
            )?;
            (r, e)
        }
        ImpersonationTarget::Group { name } => {
            let r = uid(&c.types.group, name);
            let e = group_entity(r.clone(), name)?;
            (r, e)
        }
        ImpersonationTarget::Uid { uid: id } => {
            let r = uid(&c.types.principal_uid, id);
            let e = entity(r.clone(), [("uid", string(id))], HashSet::new())?;
            (r, e)
        }
        ImpersonationTarget::Extra { key, value } => {
            let r = uid(&c.types.extra, &format!("{key}={value}"));
            let e = entity(
                r.clone(),
                [("key", string(key)), ("value", string(value))],
                HashSet::new(),
            )?;
            (r, e)
        }
    };
    entities.insert(resource.clone(), entity);
    Ok(resource)
}

fn context(req: &Request<'_>, now: SystemTime) -> Result<Context, BuildError> {
    let record = |pairs: Vec<(&str, RestrictedExpression)>| {
        RestrictedExpression::new_record(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)))
            .map_err(|e| BuildError::Schema(e.to_string()))
    };
    let t = TimeFacts::at(now);
    let time = record(vec![
        ("unix", RestrictedExpression::new_long(t.unix)),
        ("hour", RestrictedExpression::new_long(t.hour)),
        ("minute", RestrictedExpression::new_long(t.minute)),
        ("weekday", RestrictedExpression::new_long(t.weekday)),
    ])?;
    let body = match req.body {
        Some(b) if *b != BodyFacts::none() => body(b, record)?,
        // Most requests (reads, deletes) have no body: its record is the same every time.
        _ => {
            thread_local! {
                static NO_BODY: RefCell<Option<RestrictedExpression>> = const { RefCell::new(None) };
            }
            match NO_BODY.with(|c| c.borrow().clone()) {
                Some(e) => e,
                None => {
                    let e = body(&BodyFacts::none(), record)?;
                    NO_BODY.with(|c| *c.borrow_mut() = Some(e.clone()));
                    e
                }
            }
        }
    };
    let mut pairs = vec![
        ("agent", RestrictedExpression::new_bool(req.agent)),
        ("authMethod", string(req.auth_method)),
        ("time", time),
        ("body", body),
    ];
    if let Some(s) = req.session {
        let mut session = vec![("intent", string(&s.intent))];
        if let Some(id) = &s.id {
            session.push(("id", string(id)));
        }
        if let Some(ticket) = &s.ticket {
            session.push(("ticket", string(ticket)));
        }
        pairs.push(("session", record(session)?));
    }
    if let Some(ip) = req.source_ip {
        pairs.push(("sourceIP", ip_expression(ip)));
    }
    Context::from_pairs(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)))
        .map_err(|e| BuildError::Schema(e.to_string()))
}

/// `ip("<addr>")`. Cedar parses the extension function's name on every `new_ip` (a tenth of a
/// decision), and callers come from few addresses, so each thread keeps the expressions of the
/// last addresses it saw.
fn ip_expression(ip: IpAddr) -> RestrictedExpression {
    const KEPT: usize = 1024;
    thread_local! {
        static IPS: RefCell<HashMap<IpAddr, RestrictedExpression>> = RefCell::new(HashMap::new());
    }
    IPS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(e) = cache.get(&ip) {
            return e.clone();
        }
        if cache.len() >= KEPT {
            cache.clear();
        }
        let e = RestrictedExpression::new_ip(ip.to_string());
        cache.insert(ip, e.clone());
        e
    })
}

fn body(
    b: &BodyFacts,
    record: impl Fn(Vec<(&str, RestrictedExpression)>) -> Result<RestrictedExpression, BuildError>,
) -> Result<RestrictedExpression, BuildError> {
    let set = |s: &std::collections::BTreeSet<String>| {
        RestrictedExpression::new_set(s.iter().map(|v| string(v)))
    };
    let mut pairs = vec![
        ("present", RestrictedExpression::new_bool(b.present)),
        ("known", RestrictedExpression::new_bool(b.known())),
        ("kind", string(&b.kind)),
        ("privileged", RestrictedExpression::new_bool(b.privileged)),
        ("hostPath", RestrictedExpression::new_bool(b.host_path)),
        (
            "hostNetwork",
            RestrictedExpression::new_bool(b.host_network),
        ),
        ("hostPID", RestrictedExpression::new_bool(b.host_pid)),
        ("hostIPC", RestrictedExpression::new_bool(b.host_ipc)),
        ("capabilities", set(&b.capabilities)),
        ("images", set(&b.images)),
        ("registries", set(&b.registries)),
    ];
    if let Some(n) = b.replicas {
        pairs.push(("replicas", RestrictedExpression::new_long(n)));
    }
    record(pairs)
}

/// A short description of what `req` asks, for default-deny messages:
/// `delete on pods "web" in namespace prod-a`.
pub(crate) fn describe(req: &Request<'_>) -> String {
    match req.target {
        Target::Api(a) if a.is_resource_request => {
            let mut s = format!("{} on ", a.verb);
            if !a.api_group.is_empty() {
                s.push_str(&a.api_group);
                s.push('/');
            }
            s.push_str(&a.resource);
            if !a.subresource.is_empty() {
                s.push('/');
                s.push_str(&a.subresource);
            }
            if !a.name.is_empty() {
                s.push_str(&format!(" {:?}", a.name));
            }
            if a.namespace.is_empty() {
                s.push_str(" (cluster-wide)");
            } else {
                s.push_str(&format!(" in namespace {}", a.namespace));
            }
            s
        }
        Target::Api(a) => format!("{} on {}", a.verb, a.path),
        Target::Impersonate(t) => match t {
            ImpersonationTarget::User { name } => format!("impersonate user {name:?}"),
            ImpersonationTarget::ServiceAccount { namespace, name } => {
                format!("impersonate service account {namespace}/{name}")
            }
            ImpersonationTarget::Group { name } => format!("impersonate group {name:?}"),
            ImpersonationTarget::Uid { uid } => format!("impersonate uid {uid:?}"),
            ImpersonationTarget::Extra { key, value } => {
                format!("impersonate extra {key}={value:?}")
            }
        },
    }
}

//! What a replay compares, made comparable (no I/O): namespaces mapped into the sandbox's, and
//! everything the server or its controllers decide on their own taken out — ids, versions,
//! generations, timestamps, generated names, managed fields, fields written by controllers — so that
//! only what the session's requests caused remains. Masked values are recognised here too: a value
//! masked on either side is never a difference, and a request that carries one is never sent.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// The annotation `kubectl apply` keeps the applied manifest in, as a JSON string.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What replaces a timestamp, so its presence still counts but its value does not.
pub const TIME: &str = "<time>";

/// Field managers of the control plane: fields they own are their doing, not the session's.
pub const CONTROLLERS: &[&str] = &[
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-apiserver",
    "kwok",
    "kwok-controller",
];

/// Keys that hold user content: nothing inside is dropped as server-set.
const USER_CONTENT: &[&str] = &["data", "stringData", "binaryData", "labels", "annotations"];

/// Server-set keys of `metadata`.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "continue",
];

/// Whether a string is (or holds) a value Custos masked: the marker, its base64, or a run of
/// `*` left by the length-preserving text masker.
pub fn is_masked(s: &str) -> bool {
    s.contains(custos_mask::MARKER) || s.contains(MARKER_BASE64_STEM) || star_run(s, 4)
}

/// The base64 marker without its padding (as the gateway looks for it).
const MARKER_BASE64_STEM: &str = "Y3VzdG9zOm1hc2tlZA";

fn star_run(s: &str, n: usize) -> bool {
    let mut run = 0;
    for b in s.bytes() {
        if b == b'*' {
            run += 1;
            if run >= n {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// Whether the marker (plain or base64) appears anywhere in the document, keys included.
pub fn carries_marker(v: &Value) -> bool {
    let marked = |s: &str| s.contains(custos_mask::MARKER) || s.contains(MARKER_BASE64_STEM);
    match v {
        Value::String(s) => marked(s),
        Value::Array(a) => a.iter().any(carries_marker),
        Value::Object(m) => m.iter().any(|(k, v)| marked(k) || carries_marker(v)),
        _ => false,
    }
}

/// Paths of strings in `v` that hold masked values.
pub fn masked_paths(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    collect_masked(v, &mut path, &mut out);
    out
}

fn collect_masked(v: &Value, path: &mut Vec<Seg>, out: &mut Vec<String>) {
    match v {
        Value::String(s) if is_masked(s) => out.push(render(path)),
        Value::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                collect_masked(item, path, out);
                path.pop();
            }
        }
        Value::Object(m) => {
            for (k, item) in m {
                path.push(Seg::Key(k.clone()));
                collect_masked(item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// `spec.template.spec.containers[0].image`, `metadata.annotations["a.b/c"]`; `(body)` for the root.
pub fn render(path: &[Seg]) -> String {
    if path.is_empty() {
        return "(body)".to_owned();
    }
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k)
                if !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Key(k) => {
                out.push('[');
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(']');
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Recorded namespace → sandbox namespace (`--namespace-map a=b`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceMap(pub BTreeMap<String, String>);

impl NamespaceMap {
    /// Parses `a=b` pairs; both sides must be namespace names (DNS labels).
    pub fn parse(pairs: &[String]) -> Result<NamespaceMap, String> {
        let mut map = BTreeMap::new();
        for pair in pairs {
            let (from, to) = pair
                .split_once('=')
                .ok_or_else(|| format!("--namespace-map {pair:?}: expected RECORDED=SANDBOX"))?;
            for name in [from, to] {
                if !is_dns_label(name) {
                    return Err(format!(
                        "--namespace-map {pair:?}: {name:?} is not a namespace name"
                    ));
                }
            }
            if map.insert(from.to_owned(), to.to_owned()).is_some() {
                return Err(format!("--namespace-map: {from:?} is mapped twice"));
            }
        }
        Ok(NamespaceMap(map))
    }

    /// The sandbox's name for a recorded namespace (itself when unmapped).
    pub fn get<'a>(&'a self, ns: &'a str) -> &'a str {
        self.0.get(ns).map_or(ns, String::as_str)
    }

    /// Whether nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A DNS-1123 label: what namespace names are.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Maps namespaces in a document: every `namespace` member with a mapped value (object metadata,
/// references, subjects), a Namespace object's own name and name label, and the same inside a
/// `last-applied-configuration` annotation.
pub fn map_namespaces(v: &mut Value, map: &NamespaceMap) {
    if map.is_empty() {
        return;
    }
    match v {
        Value::Array(a) => a.iter_mut().for_each(|item| map_namespaces(item, map)),
        Value::Object(m) => {
            if m.get("kind").and_then(Value::as_str) == Some("Namespace") {
                map_namespace_object(m, map);
            }
            for (k, item) in m.iter_mut() {
                match item {
                    Value::String(s) if k == "namespace" => {
                        if let Some(to) = map.0.get(s.as_str()) {
                            *s = to.clone();
                        }
                    }
                    Value::String(s) if k == LAST_APPLIED => {
                        if let Ok(mut inner) = serde_json::from_str::<Value>(s) {
                            let before = inner.clone();
                            map_namespaces(&mut inner, map);
                            if inner != before {
                                *s = inner.to_string();
                            }
                        }
                    }
                    _ => map_namespaces(item, map),
                }
            }
        }
        _ => {}
    }
}

fn map_namespace_object(m: &mut Map<String, Value>, map: &NamespaceMap) {
    let Some(Value::Object(meta)) = m.get_mut("metadata") else {
        return;
    };
    if let Some(Value::String(name)) = meta.get_mut("name") {
        if let Some(to) = map.0.get(name.as_str()) {
            *name = to.clone();
        }
    }
    if let Some(Value::Object(labels)) = meta.get_mut("labels") {
        if let Some(Value::String(name)) = labels.get_mut("kubernetes.io/metadata.name") {
            if let Some(to) = map.0.get(name.as_str()) {
                *name = to.clone();
            }
        }
    }
}

/// Makes a recorded and a replayed response comparable: fields controllers own (on either side)
/// dropped from both, then each normalised.
pub fn normalize_pair(recorded: &mut Value, replayed: &mut Value, controllers: &[String]) {
    drop_controller_fields(recorded, replayed, controllers);
    if let (Some(Value::Array(a)), Some(Value::Array(b))) =
        (recorded.get_mut("items"), replayed.get_mut("items"))
    {
        for (x, y) in a.iter_mut().zip(b.iter_mut()) {
            drop_controller_fields(x, y, controllers);
        }
    }
    normalize(recorded);
    normalize(replayed);
}

fn drop_controller_fields(a: &mut Value, b: &mut Value, controllers: &[String]) {
    let mut paths = controller_paths(a, controllers);
    paths.extend(controller_paths(b, controllers));
    for path in &paths {
        remove_path(a, path);
        remove_path(b, path);
    }
}

/// Paths (relative to the object) of fields owned by a controller manager, or written through the
/// status subresource, per the object's `metadata.managedFields`. A list owned element by element
/// (`k:`/`v:`/`i:`) is dropped whole.
pub fn controller_paths(obj: &Value, controllers: &[String]) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let Some(Value::Array(entries)) = obj.get("metadata").and_then(|m| m.get("managedFields"))
    else {
        return out;
    };
    for entry in entries {
        let manager = entry.get("manager").and_then(Value::as_str).unwrap_or("");
        let status = entry.get("subresource").and_then(Value::as_str) == Some("status");
        let known = controllers.iter().any(|c| c == manager) || CONTROLLERS.contains(&manager);
        if !(known || status) {
            continue;
        }
        if let Some(Value::Object(fields)) = entry.get("fieldsV1") {
            owned_fields(fields, &mut Vec::new(), &mut out);
        }
    }
    out
}

fn owned_fields(
    fields: &Map<String, Value>,
    prefix: &mut Vec<String>,
    out: &mut BTreeSet<Vec<String>>,
) {
    for (k, child) in fields {
        if k == "." {
            continue;
        }
        if k.starts_with("k:") || k.starts_with("v:") || k.starts_with("i:") {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            return;
        }
        let Some(name) = k.strip_prefix("f:") else {
            continue;
        };
        prefix.push(name.to_owned());
        match child.as_object() {
            Some(m) if m.keys().any(|k| k != ".") => owned_fields(m, prefix, out),
            _ => {
                out.insert(prefix.clone());
            }
        }
        prefix.pop();
    }
}

fn remove_path(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = v;
    for key in parents {
        match at.get_mut(key) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Value::Object(m) = at {
        m.remove(last);
    }
}

/// Normalises one document in place (see the module doc).
pub fn normalize(v: &mut Value) {
    clean(v, false);
    if let Value::Object(m) = v {
        m.retain(|_, child| !is_empty_container(child));
    }
}

fn clean(v: &mut Value, user_content: bool) {
    match v {
        Value::String(s) if is_timestamp(s) => *s = TIME.to_owned(),
        Value::String(s) if is_token_volume(s) => *s = TOKEN_VOLUME.to_owned(),
        Value::Array(a) => a.iter_mut().for_each(|item| clean(item, user_content)),
        Value::Object(m) => clean_object(m, user_content),
        _ => {}
    }
}

fn clean_object(m: &mut Map<String, Value>, user_content: bool) {
    let kind = m
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if !user_content {
        if let Some(Value::Object(meta)) = m.get_mut("metadata") {
            for key in SERVER_METADATA {
                meta.remove(*key);
            }
            if meta.contains_key("generateName") {
                meta.remove("name");
            }
        }
        m.remove("uid");
        m.remove("resourceVersion");
        m.remove("observedGeneration");
        match kind.as_str() {
            // A Scale's status mirrors its target's status, which controllers keep changing.
            "Scale" => {
                if let Some(Value::Object(status)) = m.get_mut("status") {
                    status.remove("replicas");
                }
            }
            "Table" => drop_age_column(m),
            // Where a pod runs is the scheduler's choice (bound through a subresource that leaves no
            // managed fields).
            "Pod" => unschedule(m),
            "PodList" => {
                if let Some(Value::Array(items)) = m.get_mut("items") {
                    for item in items.iter_mut().filter_map(Value::as_object_mut) {
                        unschedule(item);
                    }
                }
            }
            _ => {}
        }
    }
    for (k, child) in m.iter_mut() {
        if k == LAST_APPLIED {
            if let Value::String(s) = child {
                if let Ok(mut inner) = serde_json::from_str::<Value>(s) {
                    normalize(&mut inner);
                    *child = inner;
                    continue;
                }
            }
        }
        clean(child, user_content || USER_CONTENT.contains(&k.as_str()));
    }
    if !user_content {
        m.retain(|_, child| !is_empty_container(child));
    }
}

fn unschedule(pod: &mut Map<String, Value>) {
    if let Some(Value::Object(spec)) = pod.get_mut("spec") {
        spec.remove("nodeName");
    }
}

/// What replaces the name admission generates for a pod's service-account token volume.
pub const TOKEN_VOLUME: &str = "kube-api-access-<generated>";

/// `kube-api-access-xxxxx`: the service-account token volume the apiserver's admission adds to every
/// pod, with a random suffix.
pub fn is_token_volume(s: &str) -> bool {
    s.strip_prefix("kube-api-access-").is_some_and(|suffix| {
        suffix.len() == 5
            && suffix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

fn is_empty_container(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.is_empty())
}

/// A Table's `Age` column is "now minus creation": it differs on every run.
fn drop_age_column(m: &mut Map<String, Value>) {
    let Some(Value::Array(columns)) = m.get_mut("columnDefinitions") else {
        return;
    };
    let Some(age) = columns
        .iter()
        .position(|c| c.get("name").and_then(Value::as_str) == Some("Age"))
    else {
        return;
    };
    columns.remove(age);
    if let Some(Value::Array(rows)) = m.get_mut("rows") {
        for row in rows {
            if let Some(Value::Array(cells)) = row.get_mut("cells") {
                if age < cells.len() {
                    cells.remove(age);
                }
            }
        }
    }
}

/// Whether `s` is an RFC 3339 date-time (`2025-06-15T09:00:00Z`, with optional fraction and offset).
pub fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let shape = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

//! [`BodyFacts`]: what a create, update or patch body would do to a pod, read by a pure function so
//! that guardrails ("no privileged pods", "no scale to zero in prod") are ordinary policies.
//!
//! The body is not trusted to have the shape of its kind: facts are gathered wherever they appear
//! (a Pod, a Deployment's template, a CronJob's job template, a custom resource embedding a pod
//! spec, a merge or strategic-merge patch, a JSON patch), and anything Custos cannot read with
//! certainty (not JSON, too large, duplicate keys, a JSON patch that copies or moves values) makes
//! the facts *unknown* (`context.body.known == false`), which policy can forbid. Flags err towards
//! "set": a body that mentions `privileged: true` anywhere under a `securityContext` counts as
//! privileged.

mod json;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use json::Json;

/// Bodies larger than this are not read; their facts are unknown. The apiserver's own limit on a
/// request body is 3 MiB.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The most path segments of a JSON patch operation Custos reads.
const MAX_POINTER_SEGMENTS: usize = 64;

/// Object keys under which a list of containers sits.
const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// Facts about a request body, as they appear in `context.body`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BodyFacts {
    /// The request carried a body.
    pub present: bool,
    /// Why some facts could not be determined; empty when every fact is known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
    /// The body's `kind`; empty when it has none (patches).
    #[serde(default)]
    pub kind: String,
    /// Some container sets `securityContext.privileged: true`.
    #[serde(default)]
    pub privileged: bool,
    /// Some volume (or persistent volume) is a `hostPath`.
    #[serde(default)]
    pub host_path: bool,
    /// `hostNetwork: true`.
    #[serde(default)]
    pub host_network: bool,
    /// `hostPID: true`.
    #[serde(default, rename = "hostPID")]
    pub host_pid: bool,
    /// `hostIPC: true`.
    #[serde(default, rename = "hostIPC")]
    pub host_ipc: bool,
    /// Capabilities added by any container, uppercase without `CAP_` (e.g. `SYS_ADMIN`).
    #[serde(default)]
    pub capabilities: BTreeSet<String>,
    /// Images of every container, init container and ephemeral container.
    #[serde(default)]
    pub images: BTreeSet<String>,
    /// The registries of those images (`docker.io` for unqualified names).
    #[serde(default)]
    pub registries: BTreeSet<String>,
    /// `spec.replicas`, when the body sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
}

impl BodyFacts {
    /// No body: nothing to know, so every fact is known (and false).
    pub fn none() -> Self {
        Self::default()
    }

    /// A body Custos did not read (too large to buffer, streamed, ...): every fact is unknown.
    pub fn unknown(why: impl Into<String>) -> Self {
        Self {
            present: true,
            unknown: vec![why.into()],
            ..Self::default()
        }
    }

    /// True when every fact was determined.
    pub fn known(&self) -> bool {
        self.unknown.is_empty()
    }

    /// Reads the facts of a request body (JSON: an object, or a JSON patch array). Never panics;
    /// whatever it cannot read for certain is reported in [`BodyFacts::unknown`].
    pub fn extract(body: &[u8]) -> Self {
        if body.is_empty() {
            return Self::none();
        }
        if body.len() > MAX_BODY_BYTES {
            return Self::unknown(format!("body larger than {MAX_BODY_BYTES} bytes"));
        }
        let doc = match Json::parse(body) {
            Ok(doc) => doc,
            Err(e) => return Self::unknown(format!("body is not JSON ({e})")),
        };
        let mut facts = Self {
            present: true,
            ..Self::default()
        };
        if doc.has_duplicate_keys() {
            facts.note("body has an object with a duplicate key");
        }
        match &doc {
            Json::Object(_) => facts.document(&doc),
            Json::Array(ops) => facts.json_patch(ops),
            _ => facts.note("body is neither a JSON object nor a JSON patch"),
        }
        facts
    }

    fn note(&mut self, why: impl Into<String>) {
        let why = why.into();
        if !self.unknown.contains(&why) {
            self.unknown.push(why);
        }
    }

    /// A whole object, or the object a JSON patch operation would write.
    fn document(&mut self, doc: &Json) {
        if let Some(Json::String(kind)) = doc.members("kind").next() {
            if self.kind.is_empty() {
                self.kind.clone_from(kind);
            }
        }
        for replicas in doc.members("spec").flat_map(|s| s.members("replicas")) {
            match replicas {
                Json::Int(n) => self.replicas = Some(self.replicas.map_or(*n, |r| r.min(*n))),
                Json::Null => {}
                _ => self.note("spec.replicas is not an integer"),
            }
        }
        self.walk(doc, "");
    }

    /// Visits every value, knowing the key it sits under (array items inherit their array's key).
    fn walk(&mut self, value: &Json, key: &str) {
        match value {
            Json::Object(members) => {
                for (k, v) in members {
                    self.member(key, k, v);
                    self.walk(v, k);
                }
            }
            Json::Array(items) => items.iter().for_each(|item| self.walk(item, key)),
            _ => {}
        }
    }

    /// One member `key: value` of an object that sits under `object_key`. Keys are compared
    /// ignoring ASCII case, which only ever errs towards a flag being set.
    fn member(&mut self, object_key: &str, key: &str, value: &Json) {
        let is = |name: &str| key.eq_ignore_ascii_case(name);
        let is_true = matches!(value, Json::Bool(true));
        if object_key.eq_ignore_ascii_case("securityContext") {
            if is("privileged") && is_true {
                self.privileged = true;
            }
            if is("capabilities") {
                for cap in value.members("add").flat_map(array_strings) {
                    self.capabilities.insert(capability(cap));
                }
            }
        }
        if is("hostPath") && matches!(value, Json::Object(_)) {
            self.host_path = true;
        }
        if is("hostNetwork") && is_true {
            self.host_network = true;
        }
        if is("hostPID") && is_true {
            self.host_pid = true;
        }
        if is("hostIPC") && is_true {
            self.host_ipc = true;
        }
        if is("image")
            && CONTAINER_LISTS
                .iter()
                .any(|l| object_key.eq_ignore_ascii_case(l))
        {
            match value {
                Json::String(image) if !image.trim().is_empty() => {
                    self.registries.insert(registry(image));
                    self.images.insert(image.clone());
                }
                Json::Null => {}
                _ => self.note("a container image is not a non-empty string"),
            }
        }
    }

    /// An RFC 6902 JSON patch: each value an operation writes is read as the object it would build.
    fn json_patch(&mut self, ops: &[Json]) {
        for op in ops {
            let name = match op.members("op").next() {
                Some(Json::String(name)) => name.as_str(),
                _ => {
                    self.note("JSON patch operation without an op");
                    continue;
                }
            };
            let path = match op.members("path").next() {
                Some(Json::String(path)) => path.as_str(),
                _ => {
                    self.note("JSON patch operation without a path");
                    continue;
                }
            };
            match name {
                "test" | "remove" => {}
                "add" | "replace" => match (pointer(path), op.members("value").next()) {
                    (Some(segments), Some(value)) => self.document(&nest(&segments, value)),
                    (None, _) => self.note("JSON patch path is not a readable JSON pointer"),
                    (_, None) => self.note("JSON patch add or replace without a value"),
                },
                // Values copied or moved from elsewhere in the object cannot be seen in the body.
                "copy" | "move" if path.starts_with("/metadata/") => {}
                "copy" | "move" => self.note(format!("JSON patch {name} into {path}")),
                _ => self.note("JSON patch operation Custos does not know"),
            }
        }
    }
}

/// The string items of a JSON array.
fn array_strings(value: &Json) -> impl Iterator<Item = &str> {
    let items: &[Json] = match value {
        Json::Array(items) => items,
        _ => &[],
    };
    items.iter().filter_map(|i| match i {
        Json::String(s) => Some(s.as_str()),
        _ => None,
    })
}

/// `cap_sys_admin` and `SYS_ADMIN` both become `SYS_ADMIN`.
fn capability(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    upper
        .strip_prefix("CAP_")
        .map_or(upper.clone(), str::to_owned)
}

/// The registry of an image reference, as a container runtime resolves it: the first path
/// component when it looks like a host (has a `.` or `:`, or is `localhost`), else Docker Hub.
pub fn registry(image: &str) -> String {
    let image = image.trim();
    match image.split_once('/') {
        Some((first, _))
            if first.contains(['.', ':']) || first.eq_ignore_ascii_case("localhost") =>
        {
            match first.to_ascii_lowercase().as_str() {
                "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
                host => host.to_owned(),
            }
        }
        _ => "docker.io".to_owned(),
    }
}

/// The unescaped segments of a JSON pointer (`/a/b~1c` → `["a", "b/c"]`); `None` when it is not one
/// or is deeper than Custos reads.
fn pointer(path: &str) -> Option<Vec<String>> {
    if path.is_empty() {
        return Some(Vec::new());
    }
    let rest = path.strip_prefix('/')?;
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    (segments.len() <= MAX_POINTER_SEGMENTS).then_some(segments)
}

/// The object that writing `value` at `segments` builds: array indexes (and `-`) become arrays.
fn nest(segments: &[String], value: &Json) -> Json {
    segments.iter().rev().fold(value.clone(), |inner, segment| {
        if segment == "-" || (!segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())) {
            Json::Array(vec![inner])
        } else {
            Json::Object(vec![(segment.clone(), inner)])
        }
    })
}

#[cfg(test)]
mod tests;

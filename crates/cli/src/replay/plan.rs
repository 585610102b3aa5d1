//! What replaying one recorded step means (no I/O): the HTTP request to send to the sandbox — method
//! from the verb, a path that can only name a resource on the sandbox's server, namespaces mapped,
//! the recorded (masked) body — a delete's `DeleteOptions` too — with the content type the gateway
//! recorded (`custos.dev/content-type`), inferred for records older than that — or the exec command
//! to run again, or why the step cannot be replayed.
//!
//! A record is untrusted input: a request URI that is not a plain absolute path (a full URL, `//host`,
//! `..` segments, encoded slashes or dots, control characters) is refused, never sent; a body that
//! carries masked values is never sent (it would write the marker where a secret was).

use custos_audit::record::Record;
use custos_gateway::recorder::{known_media_type, CONTENT_TYPE_ANNOTATION};
use serde::Serialize;
use serde_json::Value;

use super::normalize::{self, carries_marker, masked_paths, NamespaceMap};
use crate::sessions::timeline::Step;

/// `application/json`.
pub const JSON: &str = "application/json";
/// Strategic merge patch (kubectl's default for built-in types).
pub const STRATEGIC: &str = "application/strategic-merge-patch+json";
/// JSON merge patch (RFC 7386).
pub const MERGE: &str = "application/merge-patch+json";
/// JSON patch (RFC 6902).
pub const JSON_PATCH: &str = "application/json-patch+json";
/// Server-side apply.
pub const APPLY: &str = "application/apply-patch+yaml";

/// How a replay is done.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Recorded namespace → sandbox namespace.
    pub namespaces: NamespaceMap,
    /// Writes carry `dryRun=All`; exec is not run.
    pub dry_run: bool,
}

/// What to do with one step.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Send this request.
    Http(HttpCall),
    /// Run this command again in the pod.
    Exec(ExecCall),
    /// Not replayable, and why (explained: not a failure).
    Skip(String),
    /// The record cannot be used safely (a failure: someone should look at it).
    Refuse(String),
}

/// How the responses are compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// Status code and normalised body.
    Full,
    /// Status code only, and why.
    StatusOnly(String),
}

/// Where the content type a call is sent with comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TypeSource {
    /// The request record's `custos.dev/content-type`.
    Recorded,
    /// Inferred from the body (records written before the gateway recorded it).
    Inferred,
    /// Strategic and merge tried with `dryRun=All`; the one reproducing the recording was sent.
    Probed,
}

impl TypeSource {
    /// How reports name it.
    pub fn label(self) -> &'static str {
        match self {
            TypeSource::Recorded => "recorded",
            TypeSource::Inferred => "inferred",
            TypeSource::Probed => "probed",
        }
    }
}

/// A request for the sandbox.
#[derive(Debug, Clone)]
pub struct HttpCall {
    /// HTTP method.
    pub method: http::Method,
    /// Path and query, safe, namespaces mapped, `dryRun=All` added when asked.
    pub path_and_query: String,
    /// The body (JSON bytes).
    pub body: Option<Vec<u8>>,
    /// Its content type.
    pub content_type: Option<&'static str>,
    /// Where the content type comes from (with a body).
    pub content_type_from: Option<TypeSource>,
    /// A patch whose type was not recorded and matters (lists in a built-in type's patch): the
    /// replay tries strategic and merge with `dryRun=All` first and applies the one that reproduces
    /// the recording.
    pub probe_patch_type: bool,
    /// What to ask for.
    pub accept: String,
    /// How to compare.
    pub compare: Compare,
    /// The recorded status code.
    pub recorded_status: Option<u16>,
    /// The recorded response body, namespaces mapped.
    pub recorded_body: Option<Value>,
    /// API group, resource and subresource (for masking the sandbox's answer).
    pub resource: (String, String, String),
    /// Things the report should say about this step.
    pub notes: Vec<String>,
}

/// A non-interactive exec to run again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCall {
    /// Sandbox namespace.
    pub namespace: String,
    /// Pod.
    pub pod: String,
    /// Container, when named.
    pub container: Option<String>,
    /// The command and its arguments.
    pub command: Vec<String>,
    /// The recording of the original run, if any.
    pub recording: Option<String>,
    /// The original run's exit code (`custos.dev/exit-code` of its `stream-closed` record).
    pub recorded_exit: Option<i32>,
}

/// Plans one step.
pub fn plan(step: &Step, opts: &Options) -> Plan {
    let Some(request) = step.request() else {
        let status = step
            .response()
            .and_then(|r| r.response_status.as_ref())
            .and_then(|s| s.code)
            .map_or("no status".to_owned(), |c| c.to_string());
        return Plan::Skip(format!(
            "refused by Custos before it became a request record ({status}): never reached the cluster"
        ));
    };
    let uri = request.request_uri.as_deref().unwrap_or_default();
    if uri.starts_with("/custos/") {
        return Plan::Skip("a call to Custos's own API, not to the cluster".to_owned());
    }
    if let Some(why) = step.refused_by_custos() {
        return Plan::Skip(format!("{why}: never reached the cluster"));
    }
    let target = match SafePath::parse(uri) {
        Ok(p) => p,
        Err(why) => return Plan::Refuse(format!("request URI refused ({why}): not sent")),
    };
    let verb = request.verb.as_deref().unwrap_or_default();
    let object = request.object_ref.clone().unwrap_or_default();
    let subresource = object.subresource.as_deref().unwrap_or_default();
    match subresource {
        "exec" => return plan_exec(step, request, &target, opts),
        "attach" => return Plan::Skip("attach: an interactive stream is not re-run".to_owned()),
        "portforward" => return Plan::Skip("port-forward: connections are not re-run".to_owned()),
        "proxy" => {
            return Plan::Skip("proxy: the target's own protocol is not replayed".to_owned())
        }
        _ => {}
    }
    let resource_request = request.object_ref.is_some();
    let Some(method) = method_for(verb, resource_request) else {
        return Plan::Skip(format!(
            "verb {verb:?} has no HTTP method to replay it with"
        ));
    };
    http_call(step, request, target, method, opts)
}

fn http_call(
    step: &Step,
    request: &Record,
    target: SafePath,
    method: http::Method,
    opts: &Options,
) -> Plan {
    let verb = request.verb.as_deref().unwrap_or_default();
    let object = request.object_ref.clone().unwrap_or_default();
    let mut notes = Vec::new();
    let mut body = None;
    let mut content_type = None;
    let mut content_type_from = None;
    let mut probe = false;
    // Only a type of the gateway's allow-list is ever sent, whatever a record says.
    let recorded_type = request
        .annotations
        .get(CONTENT_TYPE_ANNOTATION)
        .and_then(|t| known_media_type(t));
    if matches!(verb, "create" | "update" | "patch") || request.request_object.is_some() {
        match &request.request_object {
            Some(v) => {
                if carries_marker(v) || !request.custos.masked.is_empty() {
                    let paths = masked_paths(v);
                    let listed = if paths.is_empty() {
                        let rules: Vec<&str> =
                            request.custos.masked.keys().map(String::as_str).collect();
                        format!("masked by {}", rules.join(", "))
                    } else {
                        paths.join(", ")
                    };
                    return Plan::Skip(format!(
                        "not replayable: request carries masked values ({listed})"
                    ));
                }
                let mut v = v.clone();
                normalize::map_namespaces(&mut v, &opts.namespaces);
                if method == http::Method::DELETE {
                    notes.extend(delete_options(&mut v, opts.dry_run));
                }
                let (ct, from, ambiguous, note) =
                    body_type(&method, recorded_type, &v, &target, &object);
                content_type = Some(ct);
                content_type_from = Some(from);
                probe = ambiguous;
                notes.extend(note);
                body = Some(v.to_string().into_bytes());
            }
            None => {
                let size = request
                    .custos
                    .bodies
                    .as_ref()
                    .and_then(|b| b.request)
                    .unwrap_or(0);
                if size > 0 {
                    let of = recorded_type
                        .map(|t| format!(" of {t}"))
                        .unwrap_or_default();
                    return Plan::Skip(format!(
                        "not replayable: the request body ({size} bytes{of}) was not recorded (neither JSON nor YAML)"
                    ));
                }
            }
        }
    }
    let unrecorded_options = request
        .custos
        .bodies
        .as_ref()
        .and_then(|b| b.request)
        .is_some_and(|n| n > 0);
    if body.is_none() && unrecorded_options && matches!(verb, "delete" | "deletecollection") {
        notes.push(
            "the delete's options body was not recorded: sent without one (the server's default propagation)"
                .into(),
        );
    }
    let mut path_and_query = target.render(&opts.namespaces);
    let write = !matches!(
        method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    );
    if opts.dry_run && write {
        path_and_query = with_param(&path_and_query, "dryRun", "All", false);
    }
    let response = step.response();
    let recorded_status = response
        .and_then(|r| r.response_status.as_ref())
        .and_then(|s| s.code);
    let mut recorded_body = response.and_then(|r| r.response_object.clone());
    if let Some(b) = recorded_body.as_mut() {
        normalize::map_namespaces(b, &opts.namespaces);
    }
    let compare = if verb == "watch" || target.query_has("watch") {
        path_and_query = with_param(&path_and_query, "timeoutSeconds", "1", true);
        Compare::StatusOnly("a watch: events depend on timing, the status is compared".into())
    } else if request.object_ref.is_none() {
        Compare::StatusOnly(
            "discovery and other non-resource paths depend on the server's version: the status is compared"
                .into(),
        )
    } else if recorded_body.is_none() {
        Compare::StatusOnly("the response body was not recorded: the status is compared".into())
    } else {
        Compare::Full
    };
    if let Some(err) = response.and_then(|r| r.custos.error.as_deref()) {
        notes.push(format!("recorded: {err}"));
    }
    if request.impersonated_user.is_some() {
        notes.push("the recorded request impersonated another user; the replay acts as the sandbox kubeconfig's user".into());
    }
    Plan::Http(HttpCall {
        method,
        path_and_query,
        body,
        content_type,
        content_type_from,
        probe_patch_type: probe,
        accept: accept_for(recorded_body.as_ref()),
        compare,
        recorded_status,
        recorded_body,
        resource: (
            object.api_group.unwrap_or_default(),
            object.resource.unwrap_or_default(),
            object.subresource.unwrap_or_default(),
        ),
        notes,
    })
}

/// The content type to send a recorded body with, where it comes from, whether the replay should
/// probe, and a note. A patch goes as recorded (any allow-listed type: a recorded 415 is reproduced),
/// else as inferred by [`patch_type`]. Other bodies are JSON — the record holds JSON even when YAML
/// was sent.
fn body_type(
    method: &http::Method,
    recorded: Option<&'static str>,
    body: &Value,
    target: &SafePath,
    object: &custos_audit::record::ObjectReference,
) -> (&'static str, TypeSource, bool, Option<String>) {
    if *method == http::Method::PATCH {
        if let Some(t) = recorded {
            return (t, TypeSource::Recorded, false, None);
        }
        let (t, ambiguous, note) =
            patch_type(body, target.query.as_deref(), object.api_group.as_deref());
        return (t, TypeSource::Inferred, ambiguous, note);
    }
    match recorded {
        Some(JSON) => (JSON, TypeSource::Recorded, false, None),
        Some(other) => (
            JSON,
            TypeSource::Inferred,
            false,
            Some(format!(
                "the body was sent as {other}; the record holds it as JSON, sent as {JSON}"
            )),
        ),
        None => (JSON, TypeSource::Inferred, false, None),
    }
}

/// A recorded delete's options made fit for the sandbox: `preconditions` name the recorded
/// cluster's object (its uid and resourceVersion, which the sandbox's copy never has) and are
/// dropped; a dry run puts `dryRun: [All]` in the body, because the apiserver reads a delete's
/// options from its body when it has one and then ignores the query. Returns notes.
pub fn delete_options(options: &mut Value, dry_run: bool) -> Vec<String> {
    let mut notes = Vec::new();
    let Value::Object(map) = options else {
        return notes;
    };
    if map.remove("preconditions").is_some() {
        notes.push(
            "the delete's preconditions name the recorded cluster's object (uid, resourceVersion): sent without them"
                .into(),
        );
    }
    if dry_run {
        map.insert("dryRun".into(), Value::Array(vec![Value::from("All")]));
    }
    notes
}

fn plan_exec(step: &Step, request: &Record, target: &SafePath, opts: &Options) -> Plan {
    let object = request.object_ref.clone().unwrap_or_default();
    let params: Vec<(String, String)> = target
        .query
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let flag = |name: &str| {
        params
            .iter()
            .any(|(k, v)| k == name && matches!(v.as_str(), "true" | "1"))
    };
    if flag("stdin") || flag("tty") {
        return Plan::Skip(
            "interactive exec (stdin or a terminal): typed input is not re-sent; play it with `custos sessions play`"
                .into(),
        );
    }
    let command: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if command.is_empty() {
        return Plan::Skip("exec without a recorded command".into());
    }
    if opts.dry_run {
        return Plan::Skip("dry run: exec commands are not run".into());
    }
    let ns = object.namespace.as_deref().unwrap_or_default();
    let namespace = opts.namespaces.get(ns).to_owned();
    let pod = object.name.unwrap_or_default();
    let container = params
        .iter()
        .find(|(k, _)| k == "container")
        .map(|(_, v)| v.clone());
    let names_ok = is_object_name(&namespace)
        && is_object_name(&pod)
        && container.as_deref().is_none_or(is_object_name);
    if !names_ok {
        return Plan::Refuse(
            "exec names a namespace, pod or container that is not a valid name: not run".into(),
        );
    }
    let recording = crate::sessions::view::events(std::slice::from_ref(step))
        .into_iter()
        .flat_map(|e| e.recordings)
        .map(|r| r.recording)
        .next();
    let recorded_exit = step
        .records
        .iter()
        .filter(|l| l.record.custos.record_kind == custos_audit::RecordKind::StreamClosed)
        .find_map(|l| l.record.annotations.get("custos.dev/exit-code"))
        .and_then(|c| c.parse().ok());
    Plan::Exec(ExecCall {
        namespace,
        pod,
        container,
        command,
        recording,
        recorded_exit,
    })
}

/// A DNS-1123 subdomain (pod, container and namespace names): never starts with `-`, so it cannot
/// be taken for a flag.
pub fn is_object_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

/// The HTTP method of a Kubernetes verb (resource requests) or of a non-resource request's verb
/// (the lowercased method).
pub fn method_for(verb: &str, resource_request: bool) -> Option<http::Method> {
    use http::Method;
    Some(match verb {
        "get" | "list" | "watch" => Method::GET,
        "create" => Method::POST,
        "update" => Method::PUT,
        "patch" => Method::PATCH,
        "delete" | "deletecollection" => Method::DELETE,
        "post" if !resource_request => Method::POST,
        "put" if !resource_request => Method::PUT,
        "head" => Method::HEAD,
        "options" if !resource_request => Method::OPTIONS,
        _ => return None,
    })
}

/// The content type of a recorded patch whose record does not say it (written before the gateway
/// recorded `custos.dev/content-type`): a JSON array is a JSON patch; `force=` is only valid for server-side apply; strategic-merge directives
/// mean strategic; built-in types default to strategic (kubectl's default), others to merge. Returns
/// whether the choice matters and is a guess (lists in a built-in type's patch without directives).
pub fn patch_type(
    body: &Value,
    query: Option<&str>,
    group: Option<&str>,
) -> (&'static str, bool, Option<String>) {
    if body.is_array() {
        return (JSON_PATCH, false, None);
    }
    let forced = query.is_some_and(|q| {
        q.split('&')
            .any(|p| p == "force" || p.starts_with("force="))
    });
    if forced {
        return (
            APPLY,
            false,
            Some("patch type not recorded: server-side apply (the request has force=)".into()),
        );
    }
    if has_directive(body) {
        return (STRATEGIC, false, None);
    }
    if !is_builtin_group(group.unwrap_or_default()) {
        return (MERGE, false, None);
    }
    (STRATEGIC, has_array(body), None)
}

fn has_directive(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| k.starts_with('$') || has_directive(v)),
        Value::Array(a) => a.iter().any(has_directive),
        _ => false,
    }
}

fn has_array(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.values().any(|v| v.is_array() || has_array(v)),
        Value::Array(_) => true,
        _ => false,
    }
}

/// Whether an API group is served by kube-apiserver itself (strategic merge patch works there).
pub fn is_builtin_group(group: &str) -> bool {
    const BUILTIN: &[&str] = &[
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "internal.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
    ];
    !group.contains('.') || BUILTIN.contains(&group)
}

/// The Accept header that gets the representation the recording holds: a Table, partial metadata or
/// aggregated discovery when that is what the client asked for, else JSON.
pub fn accept_for(recorded: Option<&Value>) -> String {
    let kind = recorded.and_then(|v| v.get("kind")).and_then(Value::as_str);
    let api_version = recorded
        .and_then(|v| v.get("apiVersion"))
        .and_then(Value::as_str);
    match (kind, api_version.and_then(|a| a.split_once('/'))) {
        (
            Some(
                k @ ("Table"
                | "PartialObjectMetadata"
                | "PartialObjectMetadataList"
                | "APIGroupDiscoveryList"),
            ),
            Some((g, v)),
        ) if is_object_name(g) && v.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            format!("{JSON};as={k};v={v};g={g}, {JSON}")
        }
        _ => JSON.to_owned(),
    }
}

/// A request path that can only address the server it is sent to: absolute, no authority, no dot
/// segments (plain or percent-encoded), no encoded slashes, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafePath {
    /// Path segments, as sent (percent-encoding kept).
    pub segments: Vec<String>,
    /// Whether the path ended in `/`.
    pub trailing_slash: bool,
    /// The raw query.
    pub query: Option<String>,
}

impl SafePath {
    /// Checks and splits a recorded request URI.
    pub fn parse(uri: &str) -> Result<SafePath, String> {
        if uri.len() > 8192 {
            return Err("longer than 8 KiB".into());
        }
        if !uri.starts_with('/') || uri.starts_with("//") {
            return Err("not an absolute path on the server (a URL or //host)".into());
        }
        if uri
            .bytes()
            .any(|b| b <= b' ' || b == 0x7f || b == b'\\' || b == b'#' || b >= 0x80)
        {
            return Err("control, space, backslash, # or non-ASCII characters".into());
        }
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (uri, None),
        };
        let trailing_slash = path.len() > 1 && path.ends_with('/');
        let inner = path.trim_start_matches('/');
        let inner = inner.strip_suffix('/').unwrap_or(inner);
        let mut segments = Vec::new();
        if !inner.is_empty() {
            for seg in inner.split('/') {
                let decoded = percent_decode(seg).ok_or("a malformed percent escape")?;
                if seg.is_empty() {
                    return Err("an empty path segment".into());
                }
                if decoded == "." || decoded == ".." {
                    return Err("a dot segment (. or ..)".into());
                }
                if decoded.contains(['/', '\\', '\0', '?', '#']) {
                    return Err("an encoded slash, backslash, NUL, ? or #".into());
                }
                segments.push(seg.to_owned());
            }
        }
        Ok(SafePath {
            segments,
            trailing_slash,
            query,
        })
    }

    /// Whether the query has parameter `name`.
    pub fn query_has(&self, name: &str) -> bool {
        self.query.as_deref().is_some_and(|q| {
            q.split('&').any(|p| {
                p == name
                    || p.split_once('=')
                        .is_some_and(|(k, v)| k == name && v != "false" && v != "0")
            })
        })
    }

    /// The path and query for the sandbox, the namespace segment mapped.
    pub fn render(&self, map: &NamespaceMap) -> String {
        let mut segments = self.segments.clone();
        if let Some(i) = namespace_segment(&segments) {
            let mapped = map.get(&segments[i]).to_owned();
            segments[i] = mapped;
        }
        let mut out = format!("/{}", segments.join("/"));
        if self.trailing_slash {
            out.push('/');
        }
        if let Some(q) = &self.query {
            out.push('?');
            out.push_str(q);
        }
        out
    }
}

/// Where the namespace is in an API path: `/api/v1/namespaces/{ns}/…`, `/apis/{g}/{v}/namespaces/{ns}`,
/// also behind the legacy `watch/` prefix.
fn namespace_segment(segments: &[String]) -> Option<usize> {
    let start = match segments.first().map(String::as_str) {
        Some("api") => 2,
        Some("apis") => 3,
        _ => return None,
    };
    let mut i = start;
    if segments.get(i).map(String::as_str) == Some("watch") {
        i += 1;
    }
    (segments.get(i).map(String::as_str) == Some("namespaces") && segments.len() > i + 1)
        .then_some(i + 1)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Adds `key=value` to a path's query; `replace` drops an existing `key` first, otherwise an existing
/// one is kept as it is.
pub fn with_param(path_and_query: &str, key: &str, value: &str, replace: bool) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_and_query, ""),
    };
    let named = |p: &&str| *p == key || p.split_once('=').is_some_and(|(k, _)| k == key);
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    if params.iter().any(named) {
        if !replace {
            return path_and_query.to_owned();
        }
        params.retain(|p| !named(p));
    }
    let pair = format!("{key}={value}");
    params.push(&pair);
    format!("{path}?{}", params.join("&"))
}

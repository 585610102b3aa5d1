//! What a request does, in the apiserver's own terms: [`RequestAttributes`] mirrors `RequestInfo`,
//! and [`classify`] mirrors `RequestInfoFactory.NewRequestInfo` (k8s.io/apiserver v0.34) with the
//! kube-apiserver's prefixes: `api` (the core group, no group segment) and `apis`.
//!
//! Policy is decided on these attributes and the apiserver authorizes on its own copy of them, so any
//! difference between the two is a hole. Mirrored quirks include: `/apis/apps/v1` is *not* a resource
//! request, `/api/v1/watch/...` and `/api/v1/proxy/...` take the verb from the path whatever the
//! method, a `metadata.name=` field selector gives a list or watch a name, and any `ListOptions`
//! parameter that fails to decode (say `limit=x`) makes the apiserver forget that name.

mod query;
mod selector;

use http::Method;
use serde::{Deserialize, Serialize};

use crate::path::{validate_path, PathError};
use query::Query;

/// Most query parameters Custos reads; more is refused (Go's own limit, 10000, drops them all).
pub const MAX_QUERY_PARAMS: usize = 1000;

/// The attributes of a request the apiserver authorizes on: its `RequestInfo`, field for field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAttributes {
    /// True for requests on an API resource or subresource; false for discovery, `/healthz` and the like.
    pub is_resource_request: bool,
    /// The percent-decoded URL path.
    pub path: String,
    /// The Kubernetes verb (`get`, `list`, `watch`, `create`, ...); the lowercase HTTP method for
    /// non-resource requests; empty for a resource request with a method the apiserver does not map.
    pub verb: String,
    /// `api` or `apis`; also set on non-resource requests whose path starts with one of them.
    pub api_prefix: String,
    /// The API group; empty for the core group.
    pub api_group: String,
    /// The API version, e.g. `v1`.
    pub api_version: String,
    /// The namespace; empty for cluster-scoped requests and requests across all namespaces.
    pub namespace: String,
    /// The resource, e.g. `pods` (not the kind).
    pub resource: String,
    /// The subresource, e.g. `exec` or `status`.
    pub subresource: String,
    /// The object name, when the path (or a `metadata.name` field selector on a list) gives one.
    pub name: String,
    /// The path segments from the resource on: `resource/name/subresource/...`.
    pub parts: Vec<String>,
    /// The raw `fieldSelector` of a `list`, `watch` or `deletecollection`; empty otherwise.
    pub field_selector: String,
    /// The raw `labelSelector` of a `list`, `watch` or `deletecollection`; empty otherwise.
    pub label_selector: String,
}

/// Path prefixes under which the apiserver serves resources.
const API_PREFIXES: &[&str] = &["api", "apis"];
/// Prefixes whose paths have no group segment (the core group).
const GROUPLESS_API_PREFIXES: &[&str] = &["api"];
/// Path verbs after which every segment is part of the proxied path, none a subresource.
const SPECIAL_VERBS_NO_SUBRESOURCES: &[&str] = &["proxy"];
/// Subresources of a namespace, as opposed to resources inside it.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];
/// Verbs for which the apiserver records the field and label selectors.
const VERBS_WITH_SELECTORS: &[&str] = &["list", "watch", "deletecollection"];
/// Verbs the kube-apiserver treats as long-running (no request timeout).
const LONG_RUNNING_VERBS: &[&str] = &["watch", "proxy"];
/// Subresources the kube-apiserver treats as long-running.
const LONG_RUNNING_SUBRESOURCES: &[&str] = &["attach", "exec", "proxy", "log", "portforward"];

/// Classifies a request from its method, raw path and raw query, as the apiserver will.
///
/// The path is checked with [`validate_path`] first; `path` and every attribute derived from it are
/// percent-decoded. Fails where the apiserver would fail the request (`/api/v1/watch`), and where
/// Custos cannot be sure to agree with it (see [`PathError`]).
pub fn classify(
    method: &Method,
    raw_path: &str,
    raw_query: Option<&str>,
) -> Result<RequestAttributes, PathError> {
    let path = validate_path(raw_path)?;
    let query = Query::parse(raw_query.unwrap_or(""))?;
    resolve(method, &path, &query)
}

/// True when the kube-apiserver exempts the request from its timeout: watches, proxies, `exec`,
/// `attach`, `portforward`, `log`, and the profiler under `/debug/pprof/`.
pub fn is_long_running(attributes: &RequestAttributes) -> bool {
    LONG_RUNNING_VERBS.contains(&attributes.verb.as_str())
        || (attributes.is_resource_request
            && LONG_RUNNING_SUBRESOURCES.contains(&attributes.subresource.as_str()))
        || (!attributes.is_resource_request && attributes.path.starts_with("/debug/pprof/"))
}

/// `NewRequestInfo` on a decoded path.
fn resolve(method: &Method, path: &str, query: &Query) -> Result<RequestAttributes, PathError> {
    let mut info = RequestAttributes {
        path: path.to_owned(),
        verb: method.as_str().to_ascii_lowercase(),
        ..RequestAttributes::default()
    };
    let segments = split_path(path);
    let Some(rest) = read_group_version(&segments, &mut info) else {
        return Ok(info);
    };
    let (verb_from_path, rest) = read_path_verb(rest)?;
    info.verb = verb_from_path
        .unwrap_or_else(|| verb_for_method(method))
        .to_owned();
    let rest = namespace_scope(rest, &mut info);
    info.parts = rest.iter().map(|s| (*s).to_owned()).collect();
    set_resource_name_subresource(rest, &mut info);
    refine_with_query(&mut info, query, verb_from_path.is_some())?;
    Ok(info)
}

/// Reads `{prefix}/[{group}/]{version}`; returns the segments after the version (at least one),
/// or `None` for a non-resource request. The prefix is recorded even when the group check fails.
fn read_group_version<'a>(
    segments: &'a [&'a str],
    info: &mut RequestAttributes,
) -> Option<&'a [&'a str]> {
    let (prefix, mut rest) = segments.split_first()?;
    if segments.len() < 3 || !API_PREFIXES.contains(prefix) {
        return None;
    }
    info.api_prefix = (*prefix).to_owned();
    if !GROUPLESS_API_PREFIXES.contains(prefix) {
        let (group, tail) = rest.split_first().filter(|_| rest.len() >= 3)?;
        info.api_group = (*group).to_owned();
        rest = tail;
    }
    // At least two segments remain: the version and what follows it.
    let (version, tail) = rest.split_first()?;
    info.is_resource_request = true;
    info.api_version = (*version).to_owned();
    Some(tail)
}

/// Reads a `watch/` or `proxy/` verb segment, which must be followed by something.
fn read_path_verb<'a>(
    rest: &'a [&'a str],
) -> Result<(Option<&'static str>, &'a [&'a str]), PathError> {
    let verb = match rest.first() {
        Some(&"watch") => "watch",
        Some(&"proxy") => "proxy",
        _ => return Ok((None, rest)),
    };
    match rest.get(1..) {
        Some(tail) if !tail.is_empty() => Ok((Some(verb), tail)),
        _ => Err(PathError::MissingResourceAfterVerb { verb }),
    }
}

/// Without a name, `get` is really `list` or `watch` (maybe named by a field selector) and
/// `delete` is `deletecollection`; those verbs record their selectors.
fn refine_with_query(
    info: &mut RequestAttributes,
    query: &Query,
    verb_from_path: bool,
) -> Result<(), PathError> {
    if info.name.is_empty() && info.verb == "get" {
        let options = query.list_options()?;
        info.verb = if options.watch { "watch" } else { "list" }.to_owned();
        if let Some(name) = options.exact_name.filter(|n| is_valid_path_segment_name(n)) {
            info.name = name;
        }
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_owned();
    }
    // Selectors on the deprecated `/watch/` paths are not honoured consistently, so not recorded.
    if !verb_from_path && VERBS_WITH_SELECTORS.contains(&info.verb.as_str()) {
        info.field_selector = query.first_str("fieldSelector")?.unwrap_or("").to_owned();
        info.label_selector = query.first_str("labelSelector")?.unwrap_or("").to_owned();
    }
    Ok(())
}

/// The apiserver's verb for an HTTP method on a resource path; empty for methods it does not map.
fn verb_for_method(method: &Method) -> &'static str {
    match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
}

/// Handles `namespaces/{namespace}/...`: sets the namespace and returns the segments from the
/// resource on. `namespaces/{name}` and its `status` and `finalize` subresources are the namespace
/// object itself, so for them the segments stay as they are.
fn namespace_scope<'a>(rest: &'a [&'a str], info: &mut RequestAttributes) -> &'a [&'a str] {
    match rest {
        ["namespaces", namespace, from_resource @ ..] => {
            info.namespace = (*namespace).to_owned();
            match from_resource.first() {
                Some(next) if !NAMESPACE_SUBRESOURCES.contains(next) => from_resource,
                _ => rest,
            }
        }
        _ => rest,
    }
}

/// Reads `resource/name/subresource/...`; after `proxy/` nothing is a subresource.
fn set_resource_name_subresource(parts: &[&str], info: &mut RequestAttributes) {
    if let Some(resource) = parts.first() {
        info.resource = (*resource).to_owned();
    }
    if let Some(name) = parts.get(1) {
        info.name = (*name).to_owned();
    }
    if let Some(subresource) = parts.get(2) {
        if !SPECIAL_VERBS_NO_SUBRESOURCES.contains(&info.verb.as_str()) {
            info.subresource = (*subresource).to_owned();
        }
    }
}

/// `path.IsValidPathSegmentName`: not `.` or `..`, and no `/` or `%`.
fn is_valid_path_segment_name(name: &str) -> bool {
    name != "." && name != ".." && !name.contains(['/', '%'])
}

/// Splits like the apiserver: trims every leading and trailing `/`, then splits on `/`.
fn split_path(path: &str) -> Vec<&str> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

#[cfg(test)]
mod tests;

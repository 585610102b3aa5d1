use http::Method;
use proptest::prelude::*;

use super::*;

const GET: Method = Method::GET;
const HEAD: Method = Method::HEAD;
const POST: Method = Method::POST;
const PUT: Method = Method::PUT;
const PATCH: Method = Method::PATCH;
const DELETE: Method = Method::DELETE;
const OPTIONS: Method = Method::OPTIONS;

/// Splits a request target into raw path and raw query and classifies it.
fn classify_target(method: &Method, target: &str) -> Result<RequestAttributes, PathError> {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    classify(method, path, query)
}

/// A resource request, columns in the order of the apiserver's own test table.
#[allow(clippy::too_many_arguments)]
fn res(
    verb: &str,
    prefix: &str,
    group: &str,
    version: &str,
    namespace: &str,
    resource: &str,
    subresource: &str,
    name: &str,
    parts: &[&str],
) -> RequestAttributes {
    RequestAttributes {
        is_resource_request: true,
        verb: verb.into(),
        api_prefix: prefix.into(),
        api_group: group.into(),
        api_version: version.into(),
        namespace: namespace.into(),
        resource: resource.into(),
        subresource: subresource.into(),
        name: name.into(),
        parts: parts.iter().map(|p| (*p).to_owned()).collect(),
        ..RequestAttributes::default()
    }
}

/// A non-resource request.
fn non_res(verb: &str, prefix: &str) -> RequestAttributes {
    RequestAttributes {
        verb: verb.into(),
        api_prefix: prefix.into(),
        ..RequestAttributes::default()
    }
}

fn selectors(mut attributes: RequestAttributes, field: &str, label: &str) -> RequestAttributes {
    attributes.field_selector = field.into();
    attributes.label_selector = label.into();
    attributes
}

/// Runs a table; `want.path` is filled in from the target, decoded where the target is encoded.
fn check(cases: Vec<(&str, Method, &str, RequestAttributes)>) {
    for (name, method, target, mut want) in cases {
        let path = target.split('?').next().unwrap_or_default();
        want.path = validate_path(path)
            .map(|p| p.into_owned())
            .unwrap_or_default();
        match classify_target(&method, target) {
            Ok(got) => assert_eq!(got, want, "{name}: {method} {target}"),
            Err(err) => panic!("{name}: {method} {target} refused: {err}"),
        }
    }
}

/// Every success case of `TestGetAPIRequestInfo` (requestinfo_test.go, apiserver v0.34.4). The
/// upstream table puts prefix "api" on its `/apis/...` rows but never checks the prefix; these use
/// the real one, "apis".
#[test]
#[rustfmt::skip]
fn upstream_resource_paths_classify_like_the_apiserver() {
    let pods_foo: &[&str] = &["pods", "foo"];
    check(vec![
        ("list namespaces", GET, "/api/v1/namespaces", res("list", "api", "", "v1", "", "namespaces", "", "", &["namespaces"])),
        ("get a namespace names itself", GET, "/api/v1/namespaces/other", res("get", "api", "", "v1", "other", "namespaces", "", "other", &["namespaces", "other"])),
        ("list pods in a namespace", GET, "/api/v1/namespaces/other/pods", res("list", "api", "", "v1", "other", "pods", "", "", &["pods"])),
        ("get a pod", GET, "/api/v1/namespaces/other/pods/foo", res("get", "api", "", "v1", "other", "pods", "", "foo", pods_foo)),
        ("HEAD a pod is get", HEAD, "/api/v1/namespaces/other/pods/foo", res("get", "api", "", "v1", "other", "pods", "", "foo", pods_foo)),
        ("list pods in all namespaces", GET, "/api/v1/pods", res("list", "api", "", "v1", "", "pods", "", "", &["pods"])),
        ("HEAD pods is list", HEAD, "/api/v1/pods", res("list", "api", "", "v1", "", "pods", "", "", &["pods"])),
        ("get a pod, again", GET, "/api/v1/namespaces/other/pods/foo", res("get", "api", "", "v1", "other", "pods", "", "foo", pods_foo)),
        ("list pods in a namespace, again", GET, "/api/v1/namespaces/other/pods", res("list", "api", "", "v1", "other", "pods", "", "", &["pods"])),
        ("legacy proxy verb", GET, "/api/v1/proxy/namespaces/other/pods/foo", res("proxy", "api", "", "v1", "other", "pods", "", "foo", pods_foo)),
        ("legacy proxy keeps the subpath out of subresource", GET, "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource", res("proxy", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo", "subpath", "not", "a", "subresource"])),
        ("legacy watch verb", GET, "/api/v1/watch/pods", res("watch", "api", "", "v1", "", "pods", "", "", &["pods"])),
        ("watch=true makes a list a watch", GET, "/api/v1/pods?watch=true", res("watch", "api", "", "v1", "", "pods", "", "", &["pods"])),
        ("watch=false stays a list", GET, "/api/v1/pods?watch=false", res("list", "api", "", "v1", "", "pods", "", "", &["pods"])),
        ("legacy namespaced watch", GET, "/api/v1/watch/namespaces/other/pods", res("watch", "api", "", "v1", "other", "pods", "", "", &["pods"])),
        ("watch=1 is a watch", GET, "/api/v1/namespaces/other/pods?watch=1", res("watch", "api", "", "v1", "other", "pods", "", "", &["pods"])),
        ("watch=0 is a list", GET, "/api/v1/namespaces/other/pods?watch=0", res("list", "api", "", "v1", "other", "pods", "", "", &["pods"])),
        ("status subresource", GET, "/api/v1/namespaces/other/pods/foo/status", res("get", "api", "", "v1", "other", "pods", "status", "foo", &["pods", "foo", "status"])),
        ("proxy subresource keeps its subpath in parts", GET, "/api/v1/namespaces/other/pods/foo/proxy/subpath", res("get", "api", "", "v1", "other", "pods", "proxy", "foo", &["pods", "foo", "proxy", "subpath"])),
        ("namespace finalize is a namespace subresource", PUT, "/api/v1/namespaces/other/finalize", res("update", "api", "", "v1", "other", "namespaces", "finalize", "other", &["namespaces", "other", "finalize"])),
        ("namespace status is a namespace subresource", PUT, "/api/v1/namespaces/other/status", res("update", "api", "", "v1", "other", "namespaces", "status", "other", &["namespaces", "other", "status"])),
        ("PATCH is patch", PATCH, "/api/v1/namespaces/other/pods/foo", res("patch", "api", "", "v1", "other", "pods", "", "foo", pods_foo)),
        ("DELETE a named object is delete", DELETE, "/api/v1/namespaces/other/pods/foo", res("delete", "api", "", "v1", "other", "pods", "", "foo", pods_foo)),
        ("POST is create", POST, "/api/v1/namespaces/other/pods", res("create", "api", "", "v1", "other", "pods", "", "", &["pods"])),
        ("DELETE cluster-scoped collection", DELETE, "/api/v1/nodes", res("deletecollection", "api", "", "v1", "", "nodes", "", "", &["nodes"])),
        ("DELETE namespaces collection", DELETE, "/api/v1/namespaces", res("deletecollection", "api", "", "v1", "", "namespaces", "", "", &["namespaces"])),
        ("DELETE namespaced collection", DELETE, "/api/v1/namespaces/other/pods", res("deletecollection", "api", "", "v1", "other", "pods", "", "", &["pods"])),
        ("DELETE collection in a named group", DELETE, "/apis/extensions/v1/namespaces/other/pods", res("deletecollection", "apis", "extensions", "v1", "other", "pods", "", "", &["pods"])),
        ("named group", POST, "/apis/extensions/v1/namespaces/other/pods", res("create", "apis", "extensions", "v1", "other", "pods", "", "", &["pods"])),
        ("named group and beta version", POST, "/apis/extensions/v1beta3/namespaces/other/pods", res("create", "apis", "extensions", "v1beta3", "other", "pods", "", "", &["pods"])),
    ]);
}

/// The error cases of `TestGetAPIRequestInfo` and all of `TestGetNonAPIRequestInfo`.
#[test]
fn upstream_resource_and_non_resource_paths_are_told_apart() {
    let cases: &[(&str, &str, bool)] = &[
        ("no resource path", "/", false),
        ("just apiversion", "/api/version/", false),
        ("just prefix, group, version", "/apis/group/version/", false),
        ("bad prefix", "/badprefix/version/resource", false),
        ("missing api group", "/apis/version/resource", false),
        ("simple groupless", "/api/version/resource", true),
        (
            "simple group",
            "/apis/group/version/resource/name/subresource",
            true,
        ),
        ("more steps", "/api/version/resource/name/subresource", true),
        ("group list", "/apis/batch/v1/job", true),
        ("group get", "/apis/batch/v1/job/foo", true),
        ("group subresource", "/apis/batch/v1/job/foo/scale", true),
        ("bad root", "/not-api/version/resource", false),
        (
            "group without enough steps",
            "/apis/extensions/v1beta1",
            false,
        ),
        (
            "group without enough steps 2",
            "/apis/extensions/v1beta1/",
            false,
        ),
        ("not enough steps", "/api/version", false),
        ("one step", "/api", false),
        ("zero step", "/", false),
    ];
    for (name, path, want) in cases {
        let got = classify(&GET, path, None).map(|a| a.is_resource_request);
        assert_eq!(got, Ok(*want), "{name}: {path}");
    }
    // Upstream's "empty" case: Go resolves "" as a non-resource request; Custos refuses a
    // non-absolute path before classifying (hyper never produces one).
    assert_eq!(classify(&GET, "", None), Err(PathError::NotAbsolute));
}

/// Every case of `TestSelectorParsing`: (name, method, target, name, verb, fieldSelector, labelSelector).
#[test]
#[rustfmt::skip]
fn upstream_selectors_name_lists_and_are_recorded() {
    let cases: &[(&str, Method, &str, &str, &str, &str, &str)] = &[
        ("no selector", GET, "/apis/group/version/resource", "", "list", "", ""),
        ("metadata.name selector", GET, "/apis/group/version/resource?fieldSelector=metadata.name=name1", "name1", "list", "metadata.name=name1", ""),
        ("metadata.name selector with watch", GET, "/apis/group/version/resource?watch=true&fieldSelector=metadata.name=name1", "name1", "watch", "metadata.name=name1", ""),
        ("random selector", GET, "/apis/group/version/resource?fieldSelector=foo=bar&labelSelector=baz=qux", "", "list", "foo=bar", "baz=qux"),
        ("invalid selector with metadata.name", GET, "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo", "", "list", "metadata.name=name1,foo", ""),
        ("invalid selector with metadata.name with watch", GET, "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=true", "", "watch", "metadata.name=name1,foo", ""),
        ("invalid selector with metadata.name with watch false", GET, "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=false", "", "list", "metadata.name=name1,foo", ""),
        ("selector on deletecollection is honored", DELETE, "/apis/group/version/resource?fieldSelector=foo=bar&labelSelector=baz=qux", "", "deletecollection", "foo=bar", "baz=qux"),
        ("selector on repeated param matches parsed param", GET, "/apis/group/version/resource?fieldSelector=metadata.name=foo&fieldSelector=metadata.name=bar&labelSelector=foo=bar&labelSelector=foo=baz", "foo", "list", "metadata.name=foo", "foo=bar"),
        ("selector on other verb is ignored", GET, "/apis/group/version/resource/name?fieldSelector=foo=bar&labelSelector=foo=bar", "name", "get", "", ""),
        ("selector on deprecated root type watch is not parsed", GET, "/apis/group/version/watch/resource?fieldSelector=metadata.name=foo&labelSelector=foo=bar", "", "watch", "", ""),
        ("selector on deprecated root item watch is not parsed", GET, "/apis/group/version/watch/resource/name?fieldSelector=metadata.name=foo&labelSelector=foo=bar", "name", "watch", "", ""),
    ];
    for (case, method, target, name, verb, field, label) in cases {
        let got = classify_target(method, target)
            .map(|a| (a.name, a.verb, a.field_selector, a.label_selector));
        let want = (
            (*name).into(),
            (*verb).into(),
            (*field).into(),
            (*label).into(),
        );
        assert_eq!(got, Ok(want), "{case}: {target}");
    }
}

/// Discovery, health and other non-resource endpoints kubectl and operators call.
#[test]
#[rustfmt::skip]
fn non_resource_requests_keep_the_lowercase_method_as_verb() {
    check(vec![
        ("core discovery", GET, "/api", non_res("get", "")),
        ("group discovery", GET, "/apis", non_res("get", "")),
        (
            "one group's discovery",
            GET,
            "/apis/apps",
            non_res("get", ""),
        ),
        (
            "core version discovery has no prefix (too few segments)",
            GET,
            "/api/v1",
            non_res("get", ""),
        ),
        (
            "group version discovery keeps the prefix it read",
            GET,
            "/apis/apps/v1",
            non_res("get", "apis"),
        ),
        ("healthz", GET, "/healthz", non_res("get", "")),
        ("version", GET, "/version", non_res("get", "")),
        ("openapi v3 root", GET, "/openapi/v3", non_res("get", "")),
        (
            "openapi v3 group document",
            GET,
            "/openapi/v3/apis/apps/v1",
            non_res("get", ""),
        ),
        ("readyz check", GET, "/readyz/etcd", non_res("get", "")),
        (
            "POST to a non-resource path",
            POST,
            "/healthz",
            non_res("post", ""),
        ),
        (
            "OPTIONS on a non-resource path",
            OPTIONS,
            "/api",
            non_res("options", ""),
        ),
        (
            "HEAD is not mapped for non-resource paths",
            HEAD,
            "/version",
            non_res("head", ""),
        ),
        (
            "extension method is lowercased",
            Method::from_bytes(b"PROPFIND").unwrap_or(GET),
            "/metrics",
            non_res("propfind", ""),
        ),
    ]);
}

/// The paths and queries kubectl sends, beyond the upstream table.
#[test]
#[rustfmt::skip]
fn kubectl_requests_classify_like_the_apiserver() {
    let exec = &["pods", "web", "exec"][..];
    check(vec![
        ("cluster-scoped get", GET, "/api/v1/nodes/n1", res("get", "api", "", "v1", "", "nodes", "", "n1", &["nodes", "n1"])),
        ("cluster-scoped named group", GET, "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin", res("get", "apis", "rbac.authorization.k8s.io", "v1", "", "clusterroles", "", "admin", &["clusterroles", "admin"])),
        ("namespaced named group", GET, "/apis/apps/v1/namespaces/prod/deployments/web", res("get", "apis", "apps", "v1", "prod", "deployments", "", "web", &["deployments", "web"])),
        ("scale subresource update", PUT, "/apis/apps/v1/namespaces/prod/deployments/web/scale", res("update", "apis", "apps", "v1", "prod", "deployments", "scale", "web", &["deployments", "web", "scale"])),
        ("status subresource patch", PATCH, "/apis/apps/v1/namespaces/prod/deployments/web/status", res("patch", "apis", "apps", "v1", "prod", "deployments", "status", "web", &["deployments", "web", "status"])),
        ("custom resource", GET, "/apis/example.com/v1alpha1/namespaces/ns/widgets/w1", res("get", "apis", "example.com", "v1alpha1", "ns", "widgets", "", "w1", &["widgets", "w1"])),
        ("exec over SPDY is create on pods/exec", POST, "/api/v1/namespaces/ns/pods/web/exec?command=sh&stdin=true&tty=true", res("create", "api", "", "v1", "ns", "pods", "exec", "web", exec)),
        ("exec over WebSocket is get on pods/exec", GET, "/api/v1/namespaces/ns/pods/web/exec?command=sh&command=-c", res("get", "api", "", "v1", "ns", "pods", "exec", "web", exec)),
        ("attach", POST, "/api/v1/namespaces/ns/pods/web/attach?container=app&stdin=true", res("create", "api", "", "v1", "ns", "pods", "attach", "web", &["pods", "web", "attach"])),
        ("port-forward over SPDY", POST, "/api/v1/namespaces/ns/pods/web/portforward", res("create", "api", "", "v1", "ns", "pods", "portforward", "web", &["pods", "web", "portforward"])),
        ("port-forward over WebSocket", GET, "/api/v1/namespaces/ns/pods/web/portforward?ports=8080", res("get", "api", "", "v1", "ns", "pods", "portforward", "web", &["pods", "web", "portforward"])),
        ("logs with follow", GET, "/api/v1/namespaces/ns/pods/web/log?follow=true&container=app", res("get", "api", "", "v1", "ns", "pods", "log", "web", &["pods", "web", "log"])),
        ("service proxy with scheme, port and subpath", GET, "/api/v1/namespaces/ns/services/https:web:443/proxy/api/v1/items?x=1", res("get", "api", "", "v1", "ns", "services", "proxy", "https:web:443", &["services", "https:web:443", "proxy", "api", "v1", "items"])),
        ("service proxy POST", POST, "/api/v1/namespaces/ns/services/web/proxy/submit", res("create", "api", "", "v1", "ns", "services", "proxy", "web", &["services", "web", "proxy", "submit"])),
        ("node proxy", GET, "/api/v1/nodes/n1/proxy/stats/summary", res("get", "api", "", "v1", "", "nodes", "proxy", "n1", &["nodes", "n1", "proxy", "stats", "summary"])),
        ("legacy proxy verb on a node", GET, "/api/v1/proxy/nodes/n1/stats", res("proxy", "api", "", "v1", "", "nodes", "", "n1", &["nodes", "n1", "stats"])),
        ("eviction", POST, "/api/v1/namespaces/ns/pods/web/eviction", res("create", "api", "", "v1", "ns", "pods", "eviction", "web", &["pods", "web", "eviction"])),
        ("service account token", POST, "/api/v1/namespaces/ns/serviceaccounts/sa/token", res("create", "api", "", "v1", "ns", "serviceaccounts", "token", "sa", &["serviceaccounts", "sa", "token"])),
        ("delete a namespace", DELETE, "/api/v1/namespaces/old", res("delete", "api", "", "v1", "old", "namespaces", "", "old", &["namespaces", "old"])),
        ("a namespace's status shadows a resource called status", GET, "/api/v1/namespaces/ns/status/x", res("get", "api", "", "v1", "ns", "namespaces", "status", "ns", &["namespaces", "ns", "status", "x"])),
        ("namespaces with trailing slash is a list", GET, "/api/v1/namespaces/", res("list", "api", "", "v1", "", "namespaces", "", "", &["namespaces"])),
        ("trailing slash is trimmed", GET, "/api/v1/pods/", res("list", "api", "", "v1", "", "pods", "", "", &["pods"])),
        ("percent-encoded namespace is decoded", GET, "/api/v1/namespaces/%64efault/pods", res("list", "api", "", "v1", "default", "pods", "", "", &["pods"])),
        ("legacy watch of one object", GET, "/api/v1/watch/namespaces/ns/pods/foo", res("watch", "api", "", "v1", "ns", "pods", "", "foo", &["pods", "foo"])),
        ("legacy watch path ignores the method", POST, "/api/v1/watch/pods", res("watch", "api", "", "v1", "", "pods", "", "", &["pods"])),
        ("legacy proxy path ignores the method", DELETE, "/api/v1/proxy/nodes/n1", res("proxy", "api", "", "v1", "", "nodes", "", "n1", &["nodes", "n1"])),
        ("watch query on a named get is ignored", GET, "/api/v1/namespaces/ns/pods/foo?watch=true", res("get", "api", "", "v1", "ns", "pods", "", "foo", &["pods", "foo"])),
        ("OPTIONS on a resource has no verb", OPTIONS, "/api/v1/pods", res("", "api", "", "v1", "", "pods", "", "", &["pods"])),
        ("selectors on deletecollection are recorded", DELETE, "/apis/apps/v1/namespaces/ns/deployments?labelSelector=app%3Dweb", selectors(res("deletecollection", "apis", "apps", "v1", "ns", "deployments", "", "", &["deployments"]), "", "app=web")),
        ("a name selector does not name a deletecollection", DELETE, "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dx", selectors(res("deletecollection", "api", "", "v1", "ns", "pods", "", "", &["pods"]), "metadata.name=x", "")),
        ("kubectl get --watch with a name", GET, "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dweb&resourceVersion=0&watch=true", selectors(res("watch", "api", "", "v1", "ns", "pods", "", "web", &["pods"]), "metadata.name=web", "")),
    ]);
}

/// `watch` is decoded as `Convert_Slice_string_To_bool`: only `0` and (Unicode) case-insensitive
/// `false` are false; when another list option fails to decode, the fallback is ASCII-only.
#[test]
fn watch_query_follows_the_apiservers_bool_rules() {
    let cases: &[(&str, &str, &str)] = &[
        ("TRUE", "?watch=TRUE", "watch"),
        ("FALSE is false", "?watch=FALSE", "list"),
        ("empty value is true", "?watch=", "watch"),
        ("bare key is true", "?watch", "watch"),
        ("any other word is true", "?watch=no", "watch"),
        ("the first value wins", "?watch=true&watch=false", "watch"),
        ("the first value wins, false", "?watch=0&watch=1", "list"),
        ("the key is percent-decoded", "?w%61tch=true", "watch"),
        ("plus is a space, so not false", "?watch=false+", "watch"),
        ("long s folds to s", "?watch=fal%C5%BFe", "list"),
        (
            "long s is true once another option fails",
            "?watch=fal%C5%BFe&limit=x",
            "watch",
        ),
        (
            "FALSE stays false in the fallback",
            "?watch=FALSE&limit=x",
            "list",
        ),
        (
            "a pair with a semicolon is dropped",
            "?watch=true;x=1",
            "list",
        ),
        (
            "a pair with a bad escape is dropped",
            "?watch=tr%zzue",
            "list",
        ),
        (
            "the other pairs survive a bad one",
            "?x=%zz&watch=1",
            "watch",
        ),
        ("empty pairs are skipped", "?&&watch=1&", "watch"),
    ];
    for (name, query, verb) in cases {
        let target = format!("/apis/apps/v1/deployments{query}");
        let got = classify_target(&GET, &target).map(|a| a.verb);
        assert_eq!(got.as_deref(), Ok(*verb), "{name}: {target}");
    }
}

/// A `metadata.name` field selector names a list or watch only when every list option decodes.
#[test]
fn field_selector_names_follow_the_apiservers_parse() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "double equals",
            "fieldSelector=metadata.name%3D%3Dweb",
            "web",
        ),
        (
            "not-equals names nothing",
            "fieldSelector=metadata.name!%3Dweb",
            "",
        ),
        (
            "alphabetically first term wins",
            "fieldSelector=metadata.name%3Db,metadata.name%3Da",
            "a",
        ),
        (
            "other terms are kept",
            "fieldSelector=spec.nodeName%3Dn1,metadata.name%3Dweb",
            "web",
        ),
        (
            "escaped value is unescaped",
            "fieldSelector=metadata.name%3Da%5C%3Db",
            "a=b",
        ),
        (
            "bad escape drops the name",
            "fieldSelector=metadata.name%3Da%5Cb",
            "",
        ),
        (
            "dot-dot is not a valid name",
            "fieldSelector=metadata.name%3D..",
            "",
        ),
        (
            "percent is not a valid name",
            "fieldSelector=metadata.name%3Da%2525b",
            "",
        ),
        (
            "empty name names nothing",
            "fieldSelector=metadata.name%3D",
            "",
        ),
        (
            "spaces are part of the field",
            "fieldSelector=metadata.name+%3Dweb",
            "",
        ),
        (
            "bad limit drops the name",
            "fieldSelector=metadata.name%3Dweb&limit=x",
            "",
        ),
        (
            "signed limit decodes",
            "fieldSelector=metadata.name%3Dweb&limit=%2B5",
            "web",
        ),
        (
            "overflowing limit drops the name",
            "fieldSelector=metadata.name%3Dweb&limit=9223372036854775808",
            "",
        ),
        (
            "fractional timeout drops the name",
            "fieldSelector=metadata.name%3Dweb&timeoutSeconds=1.5",
            "",
        ),
        (
            "bad label selector drops the name",
            "fieldSelector=metadata.name%3Dweb&labelSelector=app+in+(a",
            "",
        ),
        (
            "good label selector keeps the name",
            "fieldSelector=metadata.name%3Dweb&labelSelector=app+in+(a,b)",
            "web",
        ),
        (
            "only the first label selector is parsed",
            "fieldSelector=metadata.name%3Dweb&labelSelector=a&labelSelector=(",
            "web",
        ),
    ];
    for (name, query, want) in cases {
        let target = format!("/api/v1/namespaces/ns/pods?{query}");
        let got = classify_target(&GET, &target).map(|a| a.name);
        assert_eq!(got.as_deref(), Ok(*want), "{name}: {target}");
    }
}

#[test]
#[rustfmt::skip]
fn requests_custos_cannot_mirror_are_refused() {
    let separator = PathError::EncodedSeparator { escape: "%2F".into(), offset: 20 };
    let cases: Vec<(&str, Method, &str, PathError)> = vec![
        ("legacy watch without a resource", GET, "/api/v1/watch", PathError::MissingResourceAfterVerb { verb: "watch" }),
        ("legacy proxy without a resource", GET, "/api/v1/proxy/", PathError::MissingResourceAfterVerb { verb: "proxy" }),
        ("group watch without a resource", GET, "/apis/apps/v1/watch", PathError::MissingResourceAfterVerb { verb: "watch" }),
        ("invalid path", GET, "/api/v1/namespaces/a%2Fb/pods", separator),
        ("control character in query", GET, "/api/v1/pods?watch=1\n", PathError::QueryControlCharacter { offset: 7 }),
        ("field selector that is not UTF-8 on a list", GET, "/api/v1/pods?fieldSelector=%FF", PathError::QueryNotUtf8 { parameter: "fieldSelector" }),
        ("label selector that is not UTF-8 on a deletecollection", DELETE, "/api/v1/pods?labelSelector=%C3", PathError::QueryNotUtf8 { parameter: "labelSelector" }),
    ];
    for (name, method, target, want) in cases {
        assert_eq!(classify_target(&method, target), Err(want), "{name}: {target}");
    }
    let many = "a=1&".repeat(MAX_QUERY_PARAMS);
    let too_many = PathError::TooManyQueryParameters { max: MAX_QUERY_PARAMS };
    assert_eq!(classify(&GET, "/api/v1/pods", Some(&many)), Err(too_many));
    let enough = "a=1&".repeat(MAX_QUERY_PARAMS - 1) + "watch=1";
    assert!(classify(&GET, "/api/v1/pods", Some(&enough)).is_ok_and(|a| a.verb == "watch"));
    // A selector the request does not use is not interpreted, so it need not be UTF-8.
    assert!(classify_target(&GET, "/api/v1/namespaces/ns/pods/x?fieldSelector=%FF").is_ok());
}

#[test]
fn long_running_requests_match_the_kube_apiserver() {
    let cases: &[(&str, Method, &str, bool)] = &[
        ("watch query", GET, "/api/v1/pods?watch=1", true),
        ("legacy watch path", GET, "/api/v1/watch/pods", true),
        ("legacy proxy path", GET, "/api/v1/proxy/nodes/n1", true),
        ("exec", POST, "/api/v1/namespaces/ns/pods/p/exec", true),
        ("attach", POST, "/api/v1/namespaces/ns/pods/p/attach", true),
        (
            "port-forward",
            GET,
            "/api/v1/namespaces/ns/pods/p/portforward",
            true,
        ),
        ("log", GET, "/api/v1/namespaces/ns/pods/p/log", true),
        (
            "proxy subresource",
            GET,
            "/api/v1/namespaces/ns/services/s/proxy/x",
            true,
        ),
        ("profiler", GET, "/debug/pprof/profile", true),
        ("list", GET, "/api/v1/pods", false),
        ("get", GET, "/api/v1/namespaces/ns/pods/p", false),
        (
            "status subresource",
            GET,
            "/api/v1/namespaces/ns/pods/p/status",
            false,
        ),
        ("create", POST, "/api/v1/namespaces/ns/pods", false),
        ("profiler index without slash", GET, "/debug/pprof", false),
        ("healthz", GET, "/healthz", false),
    ];
    for (name, method, target, want) in cases {
        let got = classify_target(method, target).map(|a| is_long_running(&a));
        assert_eq!(got, Ok(*want), "{name}: {target}");
    }
}

fn method() -> impl Strategy<Value = Method> {
    prop::sample::select(vec![GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS])
}

/// Pieces that make the interesting targets: prefixes, verbs, namespaces, escapes.
fn target_piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/",
        "/",
        "/",
        "api",
        "apis",
        "v1",
        "apps",
        "namespaces",
        "ns",
        "pods",
        "watch",
        "proxy",
        "status",
        "finalize",
        "exec",
        "..",
        ".",
        "%2e",
        "%2F",
        "%41",
        "%",
        "?",
        "&",
        "=",
        "watch=",
        "true",
        "false",
        "fieldSelector=",
        "metadata.name",
        "%3D",
        "labelSelector=",
        "limit=x",
        "(",
        ",",
        "!",
        "in",
        ";",
        "+",
        "%C5%BF",
        "%FF",
        "é",
    ])
}

fn target() -> impl Strategy<Value = String> {
    prop::collection::vec(target_piece(), 0..24).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn classify_never_panics_on_arbitrary_strings(
        method in method(),
        path in ".*",
        query in prop::option::of(".*"),
    ) {
        let _ = classify(&method, &path, query.as_deref());
    }

    #[test]
    fn classify_never_panics_on_target_like_strings_and_stays_consistent(
        method in method(),
        target in target(),
    ) {
        if let Ok(a) = classify_target(&method, &target) {
            let path = target.split('?').next().unwrap_or_default();
            let decoded = validate_path(path);
            prop_assert_eq!(Ok(a.path.as_str()), decoded.as_deref());
            if a.is_resource_request {
                prop_assert!(!a.api_version.is_empty());
                prop_assert_eq!(a.parts.first(), Some(&a.resource));
            } else {
                prop_assert!(a.parts.is_empty() && a.resource.is_empty());
            }
        }
    }
}

//! Tests of replay planning, normalisation, diffing and reports: pure functions over records and
//! JSON, no cluster.

use custos_audit::record::{
    BodySizes, DecisionRecord, ObjectReference, Outcome, Record, RecordKind, ResponseStatus,
    SessionRef,
};
use custos_audit::MicroTime;
use serde_json::{json, Value};

use super::diff::diff;
use super::normalize::{
    self, controller_paths, is_masked, is_timestamp, map_namespaces, masked_paths, normalize_pair,
    NamespaceMap,
};
use super::plan::{self, plan, Compare, Options, Plan, SafePath};
use super::report::{Counts, Report, StepReport, Verdict};
use super::send::ReplyBody;
use crate::sessions::timeline::{steps, Logged, Step};

fn t(micros: u64) -> MicroTime {
    MicroTime::from_unix_micros(1_750_000_000_000_000 + micros).expect("time")
}

fn map(pairs: &[&str]) -> NamespaceMap {
    let pairs: Vec<String> = pairs.iter().map(|p| (*p).to_owned()).collect();
    NamespaceMap::parse(&pairs).expect("map")
}

/// A request record and its response record, as the gateway writes them.
fn exchange(verb: &str, uri: &str, object: ObjectReference, body: Option<Value>) -> Vec<Record> {
    let mut req = Record::new(RecordKind::Request, t(1));
    req.audit_id = Some(format!("a-{uri}"));
    req.verb = Some(verb.to_owned());
    req.request_uri = Some(uri.to_owned());
    req.object_ref = Some(object);
    req.request_object = body;
    req.custos.session = Some(SessionRef {
        id: "ss-1".into(),
        ..SessionRef::default()
    });
    let mut resp = req.clone();
    resp.custos.record_kind = RecordKind::Response;
    resp.stage_timestamp = t(2);
    resp.response_status = Some(ResponseStatus {
        code: Some(200),
        ..ResponseStatus::default()
    });
    vec![req, resp]
}

fn step_of(records: Vec<Record>) -> Step {
    let logged = records
        .into_iter()
        .enumerate()
        .map(|(i, record)| Logged {
            id: i as u64 + 1,
            leaf: Some(i as u64),
            record,
        })
        .collect();
    steps(logged).into_iter().next().expect("a step")
}

fn cm_ref(ns: &str, name: Option<&str>) -> ObjectReference {
    ObjectReference {
        resource: Some("configmaps".into()),
        namespace: Some(ns.into()),
        name: name.map(str::to_owned),
        api_version: Some("v1".into()),
        ..ObjectReference::default()
    }
}

fn opts(pairs: &[&str], dry_run: bool) -> Options {
    Options {
        namespaces: map(pairs),
        dry_run,
    }
}

fn http(p: Plan) -> plan::HttpCall {
    match p {
        Plan::Http(call) => call,
        other => panic!("expected an HTTP call, got {other:?}"),
    }
}

// ---- normalisation ----

#[test]
fn server_set_fields_timestamps_and_generated_names_are_dropped() {
    let mut v = json!({
        "kind": "Pod",
        "metadata": {
            "name": "web-7f9c", "generateName": "web-", "namespace": "a",
            "uid": "u1", "resourceVersion": "17", "generation": 3,
            "creationTimestamp": "2026-01-02T03:04:05Z", "selfLink": "/x",
            "managedFields": [{"manager": "kubectl"}],
            "ownerReferences": [{"kind": "ReplicaSet", "name": "web", "uid": "u2"}],
            "labels": {"uid": "kept: user content"}
        },
        "data": {"resourceVersion": "kept too"},
        "status": {"observedGeneration": 3, "startTime": "2026-01-02T03:04:05.123456+02:00"}
    });
    normalize::normalize(&mut v);
    assert_eq!(
        v,
        json!({
            "kind": "Pod",
            "metadata": {
                "generateName": "web-", "namespace": "a",
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web"}],
                "labels": {"uid": "kept: user content"}
            },
            "data": {"resourceVersion": "kept too"},
            "status": {"startTime": "<time>"}
        })
    );
}

#[test]
fn timestamps_are_recognised_strictly() {
    for yes in [
        "2026-11-27T11:37:02Z",
        "2026-11-27t11:37:02.951196z",
        "2026-11-27T11:37:02+01:00",
        "2026-11-27T11:37:02.5-05:30",
    ] {
        assert!(is_timestamp(yes), "{yes}");
    }
    for no in [
        "2026-11-27",
        "2026-11-27T11:37:02",
        "2026-11-27T11:37:02.Z",
        "2026-11-27 11:37:02Z",
        "blue",
        "2026-11-27T11:37:02Zextra",
    ] {
        assert!(!is_timestamp(no), "{no}");
    }
}

#[test]
fn fields_controllers_own_on_either_side_are_not_compared() {
    let kcm = json!({
        "manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
        "fieldsV1": {"f:status": {"f:replicas": {}, "f:conditions": {".": {},
            "k:{\"type\":\"Available\"}": {".": {}, "f:status": {}}}}}
    });
    let revision = json!({
        "manager": "kube-controller-manager", "operation": "Update",
        "fieldsV1": {"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}}
    });
    let mut recorded = json!({
        "kind": "Deployment",
        "metadata": {"name": "web", "managedFields": [kcm, revision],
            "annotations": {"deployment.kubernetes.io/revision": "1", "team": "a"}},
        "spec": {"replicas": 3},
        "status": {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
    });
    let mut replayed = json!({
        "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"team": "a"}},
        "spec": {"replicas": 3},
        "status": {}
    });
    let owned = controller_paths(&recorded, &[]);
    assert!(owned.contains(&vec!["status".to_owned(), "conditions".to_owned()]));
    normalize_pair(&mut recorded, &mut replayed, &[]);
    assert_eq!(recorded, replayed);
    assert!(diff(&recorded, &replayed).is_empty());

    // A person's manager is compared, and so is a field a controller does not own.
    let person = json!({"manager": "kubectl-patch", "operation": "Update",
        "fieldsV1": {"f:spec": {"f:replicas": {}}}});
    let mut a = json!({"metadata": {"managedFields": [person]}, "spec": {"replicas": 3}});
    let mut b = json!({"spec": {"replicas": 2}});
    normalize_pair(&mut a, &mut b, &[]);
    assert_eq!(diff(&a, &b).len(), 1);
    // --ignore-manager adds one.
    let mut a = json!({"metadata": {"managedFields": [{"manager": "my-operator",
        "fieldsV1": {"f:spec": {"f:replicas": {}}}}]}, "spec": {"replicas": 3}});
    let mut b = json!({"spec": {"replicas": 2}});
    normalize_pair(&mut a, &mut b, &["my-operator".to_owned()]);
    assert!(diff(&a, &b).is_empty());
}

#[test]
fn scale_status_table_age_and_last_applied_are_normalised() {
    let mut scale = json!({"kind": "Scale", "spec": {"replicas": 3},
        "status": {"replicas": 1, "selector": "app=web"}});
    normalize::normalize(&mut scale);
    assert_eq!(scale["status"], json!({"selector": "app=web"}));

    let mut table = json!({"kind": "Table",
        "columnDefinitions": [{"name": "Name"}, {"name": "Age"}, {"name": "Data"}],
        "rows": [{"cells": ["x", "5s", 2]}]});
    normalize::normalize(&mut table);
    assert_eq!(table["rows"][0]["cells"], json!(["x", 2]));

    // kubectl writes the annotation with a newline, the masker without: the same object.
    let mut a = json!({"metadata": {"annotations": {normalize::LAST_APPLIED:
        "{\"data\":{\"a\":\"1\"},\"metadata\":{\"name\":\"x\"}}\n"}}});
    let mut b = json!({"metadata": {"annotations": {normalize::LAST_APPLIED:
        "{\"metadata\":{\"name\":\"x\"},\"data\":{\"a\":\"1\"}}"}}});
    normalize_pair(&mut a, &mut b, &[]);
    assert!(diff(&a, &b).is_empty());
}

// ---- masked values ----

#[test]
fn masked_values_are_recognised_and_never_a_difference() {
    assert!(is_masked("custos:masked"));
    assert!(is_masked("Y3VzdG9zOm1hc2tlZA=="));
    assert!(is_masked("password=********"));
    assert!(!is_masked("*/5 * * * *"));
    assert!(!is_masked("plain"));
    let recorded = json!({"data": {"token": "Y3VzdG9zOm1hc2tlZA==", "a": "x"},
        "env": "KEY=****", "gone": "custos:masked"});
    let replayed = json!({"data": {"token": "c2VjcmV0", "a": "x"}, "env": "KEY=abcd"});
    assert!(diff(&recorded, &replayed).is_empty());
    let reverse = diff(&replayed, &recorded);
    assert!(reverse.is_empty(), "{reverse:?}");
    let paths = masked_paths(&json!({"data": {"k": "custos:masked"},
        "spec": {"args": ["--x", "--token=******"]}}));
    assert_eq!(paths, vec!["data.k", "spec.args[1]"]);
}

// ---- diff ----

#[test]
fn differences_name_their_json_paths() {
    let a = json!({"data": {"colour": "blue"}, "metadata": {"annotations": {"a.b/c": "1"}},
        "list": [1, 2], "only": true});
    let b = json!({"data": {"colour": "red"}, "metadata": {"annotations": {"a.b/c": "2"}},
        "list": [1], "new": null});
    let d = diff(&a, &b);
    let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "data.colour",
            "list[1]",
            "metadata.annotations[\"a.b/c\"]",
            "new",
            "only"
        ]
    );
    assert_eq!(d[0].recorded, Some(json!("blue")));
    assert_eq!(d[0].replayed, Some(json!("red")));
    assert_eq!(d[1].replayed, None);
    assert_eq!(d[4].replayed, None);
    assert!(diff(&json!(1), &json!(1)).is_empty());
    assert_eq!(diff(&json!(1), &json!("1"))[0].path, "(body)");
}

// ---- namespaces ----

#[test]
fn namespace_maps_are_validated() {
    assert!(NamespaceMap::parse(&["a=b".into()]).is_ok());
    for bad in ["a", "a=", "=b", "A=b", "a=b/c", "a=-b", "a=b c"] {
        assert!(NamespaceMap::parse(&[bad.into()]).is_err(), "{bad}");
    }
    assert!(NamespaceMap::parse(&["a=b".into(), "a=c".into()]).is_err());
}

#[test]
fn namespaces_are_mapped_in_paths() {
    let m = map(&["a=b"]);
    let cases = [
        (
            "/api/v1/namespaces/a/configmaps",
            "/api/v1/namespaces/b/configmaps",
        ),
        ("/api/v1/namespaces/a", "/api/v1/namespaces/b"),
        (
            "/apis/apps/v1/namespaces/a/deployments/web/scale?x=1",
            "/apis/apps/v1/namespaces/b/deployments/web/scale?x=1",
        ),
        (
            "/api/v1/watch/namespaces/a/pods",
            "/api/v1/watch/namespaces/b/pods",
        ),
        ("/api/v1/namespaces/c/pods", "/api/v1/namespaces/c/pods"),
        (
            "/api/v1/pods?fieldSelector=namespaces/a",
            "/api/v1/pods?fieldSelector=namespaces/a",
        ),
        (
            "/api/v1/namespaces/b/configmaps/a",
            "/api/v1/namespaces/b/configmaps/a",
        ),
        ("/version", "/version"),
        ("/apis/", "/apis/"),
    ];
    for (from, to) in cases {
        let p = SafePath::parse(from).expect(from);
        assert_eq!(p.render(&m), to, "{from}");
    }
}

#[test]
fn namespaces_are_mapped_in_bodies() {
    let m = map(&["a=b"]);
    let mut v = json!({
        "metadata": {"name": "x", "namespace": "a", "annotations": {normalize::LAST_APPLIED:
            "{\"metadata\":{\"name\":\"x\",\"namespace\":\"a\"}}"}},
        "subjects": [{"kind": "ServiceAccount", "name": "s", "namespace": "a"}],
        "data": {"namespace": "other", "note": "a"}
    });
    map_namespaces(&mut v, &m);
    assert_eq!(v["metadata"]["namespace"], "b");
    assert_eq!(v["subjects"][0]["namespace"], "b");
    assert_eq!(v["data"]["namespace"], "other");
    assert_eq!(v["data"]["note"], "a");
    let inner: Value = serde_json::from_str(
        v["metadata"]["annotations"][normalize::LAST_APPLIED]
            .as_str()
            .expect("string"),
    )
    .expect("json");
    assert_eq!(inner["metadata"]["namespace"], "b");
    let mut ns = json!({"kind": "Namespace", "metadata": {"name": "a",
        "labels": {"kubernetes.io/metadata.name": "a"}}});
    map_namespaces(&mut ns, &m);
    assert_eq!(ns["metadata"]["name"], "b");
    assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "b");
}

// ---- planning ----

#[test]
fn a_create_is_sent_with_its_body_in_the_sandbox_namespace() {
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "a"}, "data": {"k": "v"}});
    let mut records = exchange(
        "create",
        "/api/v1/namespaces/a/configmaps?fieldManager=kubectl-client-side-apply",
        cm_ref("a", None),
        Some(body),
    );
    records[1].response_object = Some(json!({"kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "a"}}));
    records[1].response_status = Some(ResponseStatus {
        code: Some(201),
        ..ResponseStatus::default()
    });
    let call = http(plan(&step_of(records.clone()), &opts(&["a=b"], false)));
    assert_eq!(call.method, http::Method::POST);
    assert_eq!(
        call.path_and_query,
        "/api/v1/namespaces/b/configmaps?fieldManager=kubectl-client-side-apply"
    );
    let sent: Value = serde_json::from_slice(call.body.as_deref().expect("body")).expect("json");
    assert_eq!(sent["metadata"]["namespace"], "b");
    assert_eq!(call.content_type, Some(plan::JSON));
    assert_eq!(call.recorded_status, Some(201));
    assert_eq!(call.compare, Compare::Full);
    assert_eq!(
        call.recorded_body.as_ref().expect("recorded")["metadata"]["namespace"],
        "b"
    );
    // --dry-run adds dryRun=All to writes, not to reads.
    let dry = http(plan(&step_of(records), &opts(&["a=b"], true)));
    assert!(
        dry.path_and_query.ends_with("&dryRun=All"),
        "{}",
        dry.path_and_query
    );
    let get = exchange(
        "get",
        "/api/v1/namespaces/a/configmaps/x",
        cm_ref("a", Some("x")),
        None,
    );
    let get = http(plan(&step_of(get), &opts(&[], true)));
    assert_eq!(get.path_and_query, "/api/v1/namespaces/a/configmaps/x");
    assert_eq!(get.method, http::Method::GET);
}

#[test]
fn hostile_request_uris_are_never_sent() {
    let hostile = [
        "https://evil.example/api/v1/namespaces/a/configmaps",
        "//evil.example/api/v1/pods",
        "/api/v1/namespaces/a/../../../evil",
        "/api/v1/namespaces/%2e%2e/pods",
        "/api/v1/namespaces/a%2Fb/pods",
        "/api/v1/namespaces/a/pods\r\nHost: evil",
        "/api\\v1",
        "/api/v1/pods#x",
        "/api//v1/pods",
        "api/v1/pods",
        "/api/v1/namespaces/a/pods/%zz",
        "/api/v1/naméspaces",
    ];
    for uri in hostile {
        let records = exchange("get", uri, cm_ref("a", None), None);
        match plan(&step_of(records), &opts(&[], false)) {
            Plan::Refuse(why) => assert!(why.contains("refused"), "{uri}: {why}"),
            other => panic!("{uri} was planned: {other:?}"),
        }
    }
    // What is accepted can only address the sandbox: its authority and scheme are the sandbox's.
    let sandbox = custos_gateway::kubeconfig::UpstreamConfig {
        server: "https://sandbox.example:6443/prefix".parse().expect("uri"),
        ca_pem: None,
        insecure: true,
        tls_server_name: None,
        credential: custos_gateway::kubeconfig::UpstreamCredential::None,
    };
    let upstream = custos_gateway::Upstream::new(&sandbox).expect("upstream");
    for uri in [
        "/api/v1/pods?next=https://evil.example/x",
        "/api/v1/namespaces/a/pods/@evil.example",
        "/api/v1/namespaces/a/pods/x:443",
    ] {
        let call = http(plan(
            &step_of(exchange("get", uri, cm_ref("a", None), None)),
            &opts(&[], false),
        ));
        let sent = upstream.uri_for(&call.path_and_query).expect("uri");
        assert_eq!(
            sent.authority().map(|a| a.as_str()),
            Some("sandbox.example:6443"),
            "{uri}"
        );
        assert!(sent.path().starts_with("/prefix/api/v1/"), "{uri}: {sent}");
    }
}

#[test]
fn requests_with_masked_or_unrecorded_bodies_are_not_replayable() {
    let body = json!({"kind": "Secret", "metadata": {"name": "s"},
        "data": {"password": "Y3VzdG9zOm1hc2tlZA=="}});
    let records = exchange(
        "create",
        "/api/v1/namespaces/a/secrets",
        cm_ref("a", None),
        Some(body),
    );
    match plan(&step_of(records), &opts(&[], false)) {
        Plan::Skip(why) => assert_eq!(
            why,
            "not replayable: request carries masked values (data.password)"
        ),
        other => panic!("{other:?}"),
    }
    // Masked by the text masker (runs of *), known from the record's counts.
    let mut records = exchange(
        "patch",
        "/api/v1/namespaces/a/configmaps/x",
        cm_ref("a", Some("x")),
        Some(json!({"data": {"url": "postgres://u:********@db"}})),
    );
    records[0].custos.masked.insert("url-password".into(), 1);
    match plan(&step_of(records), &opts(&[], false)) {
        Plan::Skip(why) => assert!(why.contains("(data.url)"), "{why}"),
        other => panic!("{other:?}"),
    }
    // A body that was neither JSON nor YAML is recorded by size only.
    let mut records = exchange(
        "create",
        "/api/v1/namespaces/a/configmaps",
        cm_ref("a", None),
        None,
    );
    records[0].custos.bodies = Some(BodySizes {
        request: Some(42),
        response: None,
    });
    match plan(&step_of(records), &opts(&[], false)) {
        Plan::Skip(why) => assert!(
            why.contains("42 bytes") && why.contains("not recorded"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn refused_steps_are_explained_not_sent() {
    let mut records = exchange(
        "delete",
        "/api/v1/namespaces/a/configmaps/x",
        cm_ref("a", Some("x")),
        None,
    );
    records[0].custos.decision = Some(DecisionRecord {
        outcome: Outcome::Deny,
        policy_ids: vec!["no-deletes".into()],
        reason: None,
        annotations: Default::default(),
    });
    match plan(&step_of(records), &opts(&[], false)) {
        Plan::Skip(why) => assert!(why.starts_with("denied by policy (no-deletes)"), "{why}"),
        other => panic!("{other:?}"),
    }
    let mut records = exchange(
        "get",
        "/api/v1/namespaces/a/configmaps/x",
        cm_ref("a", Some("x")),
        None,
    );
    records[1].response_status = Some(ResponseStatus {
        code: Some(400),
        reason: Some("BadRequest".into()),
        message: Some("path refused".into()),
    });
    records[1].custos.error = Some("path refused".into());
    assert!(
        matches!(plan(&step_of(records), &opts(&[], false)), Plan::Skip(w) if w.contains("refused by Custos"))
    );
    let records = exchange("get", "/custos/v1/reviews", cm_ref("a", None), None);
    assert!(matches!(
        plan(&step_of(records), &opts(&[], false)),
        Plan::Skip(_)
    ));
}

#[test]
fn patch_types_are_inferred() {
    use plan::{patch_type, APPLY, JSON_PATCH, MERGE, STRATEGIC};
    assert_eq!(
        patch_type(&json!([{"op": "add"}]), None, None).0,
        JSON_PATCH
    );
    assert_eq!(
        patch_type(
            &json!({"kind": "X"}),
            Some("fieldManager=kubectl&force=false"),
            Some("apps")
        )
        .0,
        APPLY
    );
    assert_eq!(
        patch_type(&json!({"data": {"a": "1"}}), None, None),
        (STRATEGIC, false, None)
    );
    assert_eq!(
        patch_type(&json!({"spec": {"x": [1]}}), None, Some("example.com")).0,
        MERGE
    );
    // Lists in a built-in type's patch: strategic and merge differ, so the replay probes.
    assert_eq!(
        patch_type(
            &json!({"spec": {"containers": [{"name": "a"}]}}),
            None,
            Some("apps")
        ),
        (STRATEGIC, true, None)
    );
    let directive = json!({"$setElementOrder/containers": [{"name": "a"}]});
    assert_eq!(
        patch_type(&directive, None, Some("apps")),
        (STRATEGIC, false, None)
    );
}

/// A patch's exchange with its recorded `custos.dev/content-type`, if any.
fn patch_of(body: Value, group: &str, content_type: Option<&str>) -> Vec<Record> {
    let object = ObjectReference {
        resource: Some("deployments".into()),
        namespace: Some("a".into()),
        name: Some("web".into()),
        api_group: Some(group.into()),
        api_version: Some("v1".into()),
        ..ObjectReference::default()
    };
    let mut records = exchange(
        "patch",
        &format!("/apis/{group}/v1/namespaces/a/deployments/web"),
        object,
        Some(body),
    );
    if let Some(ct) = content_type {
        records[0]
            .annotations
            .insert("custos.dev/content-type".into(), ct.into());
    }
    records
}

#[test]
fn a_recorded_patch_type_is_sent_as_recorded_without_probing() {
    use plan::{TypeSource, APPLY, JSON_PATCH, MERGE, STRATEGIC};
    // Lists in a built-in type's patch: without the recorded type the replay would probe.
    let lists = json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}});
    for ct in [STRATEGIC, MERGE, JSON_PATCH, APPLY] {
        let call = http(plan(
            &step_of(patch_of(lists.clone(), "apps", Some(ct))),
            &opts(&[], false),
        ));
        assert_eq!(call.content_type, Some(ct));
        assert_eq!(call.content_type_from, Some(TypeSource::Recorded));
        assert!(!call.probe_patch_type, "{ct}: no probing");
    }
    // On a custom type inference says merge; a recorded strategic patch is sent as strategic (the
    // apiserver's 415, if that is what was recorded, is reproduced, not worked around).
    let call = http(plan(
        &step_of(patch_of(lists.clone(), "example.com", Some(STRATEGIC))),
        &opts(&[], false),
    ));
    assert_eq!(call.content_type, Some(STRATEGIC));
    // Recorded with parameters or in capitals (never by the gateway, but records are input): the
    // allow-listed constant is sent.
    let call = http(plan(
        &step_of(patch_of(
            lists.clone(),
            "apps",
            Some("Application/Merge-Patch+JSON; charset=utf-8"),
        )),
        &opts(&[], false),
    ));
    assert_eq!(call.content_type, Some(MERGE));
    // Anything off the allow-list is not sent: the type is inferred as for an old record.
    for odd in ["text/html", "application/merge-patch+json\r\nX-Evil: 1", ""] {
        let call = http(plan(
            &step_of(patch_of(lists.clone(), "apps", Some(odd))),
            &opts(&[], false),
        ));
        assert_eq!(call.content_type, Some(STRATEGIC), "{odd:?}");
        assert_eq!(call.content_type_from, Some(TypeSource::Inferred));
        assert!(call.probe_patch_type, "{odd:?}");
    }
    // An old record (no annotation) keeps the inference.
    let call = http(plan(
        &step_of(patch_of(lists, "apps", None)),
        &opts(&[], false),
    ));
    assert_eq!(
        (
            call.content_type,
            call.content_type_from,
            call.probe_patch_type
        ),
        (Some(STRATEGIC), Some(TypeSource::Inferred), true)
    );
    // A create is sent as JSON (the record holds JSON), recorded or not.
    let records = exchange(
        "create",
        "/api/v1/namespaces/a/configmaps",
        cm_ref("a", None),
        Some(json!({"kind": "ConfigMap", "metadata": {"name": "x"}})),
    );
    let mut yaml = records.clone();
    yaml[0]
        .annotations
        .insert("custos.dev/content-type".into(), "application/yaml".into());
    let call = http(plan(&step_of(yaml), &opts(&[], false)));
    assert_eq!(call.content_type, Some(plan::JSON));
    assert!(call
        .notes
        .iter()
        .any(|n| n.contains("sent as application/yaml")));
    let mut json_ct = records;
    json_ct[0]
        .annotations
        .insert("custos.dev/content-type".into(), "application/json".into());
    let call = http(plan(&step_of(json_ct), &opts(&[], false)));
    assert_eq!(call.content_type_from, Some(TypeSource::Recorded));
}

#[test]
fn a_delete_is_sent_with_its_recorded_options() {
    let options = json!({"kind": "DeleteOptions", "apiVersion": "v1",
        "propagationPolicy": "Foreground", "gracePeriodSeconds": 0,
        "preconditions": {"uid": "u-recorded", "resourceVersion": "17"}});
    let delete = |options: Value| {
        let mut records = exchange(
            "delete",
            "/api/v1/namespaces/a/configmaps/x",
            cm_ref("a", Some("x")),
            Some(options),
        );
        records[0]
            .annotations
            .insert("custos.dev/content-type".into(), "application/json".into());
        records
    };
    let call = http(plan(
        &step_of(delete(options.clone())),
        &opts(&["a=b"], false),
    ));
    assert_eq!(call.method, http::Method::DELETE);
    assert_eq!(call.path_and_query, "/api/v1/namespaces/b/configmaps/x");
    assert_eq!(call.content_type, Some(plan::JSON));
    assert_eq!(call.content_type_from, Some(plan::TypeSource::Recorded));
    let sent: Value = serde_json::from_slice(call.body.as_deref().expect("a body")).expect("json");
    assert_eq!(
        sent,
        json!({"kind": "DeleteOptions", "apiVersion": "v1",
            "propagationPolicy": "Foreground", "gracePeriodSeconds": 0}),
        "preconditions name the recorded cluster's object: dropped"
    );
    assert!(call.notes.iter().any(|n| n.contains("preconditions")));
    // A dry run puts dryRun in the body: with a body the apiserver ignores the query's.
    let call = http(plan(&step_of(delete(options.clone())), &opts(&[], true)));
    assert!(call.path_and_query.ends_with("?dryRun=All"));
    let sent: Value = serde_json::from_slice(call.body.as_deref().expect("a body")).expect("json");
    assert_eq!(sent["dryRun"], json!(["All"]));
    assert_eq!(sent["propagationPolicy"], "Foreground");
    // A deletecollection's options too, with its label selector in the query.
    let mut records = exchange(
        "deletecollection",
        "/api/v1/namespaces/a/configmaps?labelSelector=app%3Dweb",
        cm_ref("a", None),
        Some(json!({"propagationPolicy": "Background"})),
    );
    records[0].custos.bodies = Some(BodySizes {
        request: Some(35),
        response: None,
    });
    let call = http(plan(&step_of(records), &opts(&[], false)));
    assert_eq!(call.method, http::Method::DELETE);
    assert_eq!(
        call.body.as_deref(),
        Some(br#"{"propagationPolicy":"Background"}"#.as_slice())
    );
    assert!(!call.notes.iter().any(|n| n.contains("not recorded")));
    // Masked options (a planted key) are never sent.
    let mut records = delete(json!({"preconditions": {"resourceVersion": "********************"}}));
    records[0].custos.masked.insert("aws-access-key".into(), 1);
    assert!(matches!(
        plan(&step_of(records), &opts(&[], false)),
        Plan::Skip(w) if w.contains("masked")
    ));
    // An old record: options not recorded, sent without a body, and the report says so.
    let mut records = exchange(
        "delete",
        "/api/v1/namespaces/a/configmaps/x",
        cm_ref("a", Some("x")),
        None,
    );
    records[0].custos.bodies = Some(BodySizes {
        request: Some(40),
        response: None,
    });
    let call = http(plan(&step_of(records), &opts(&[], false)));
    assert!(call.body.is_none() && call.content_type.is_none());
    assert!(call
        .notes
        .iter()
        .any(|n| n.contains("options body was not recorded")));
}

#[test]
fn watches_discovery_and_tables_get_what_the_recording_holds() {
    let pods = ObjectReference {
        resource: Some("pods".into()),
        namespace: Some("a".into()),
        ..ObjectReference::default()
    };
    let w = http(plan(
        &step_of(exchange(
            "watch",
            "/api/v1/namespaces/a/pods?watch=1&timeoutSeconds=300",
            pods.clone(),
            None,
        )),
        &opts(&[], false),
    ));
    assert_eq!(
        w.path_and_query,
        "/api/v1/namespaces/a/pods?watch=1&timeoutSeconds=1"
    );
    assert!(matches!(w.compare, Compare::StatusOnly(_)));
    let mut records = exchange("list", "/api/v1/namespaces/a/pods", pods, None);
    records[1].response_object = Some(json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1"}));
    let table = http(plan(&step_of(records), &opts(&[], false)));
    assert_eq!(
        table.accept,
        "application/json;as=Table;v=v1;g=meta.k8s.io, application/json"
    );
    let mut version = exchange("get", "/version", ObjectReference::default(), None);
    version[0].object_ref = None;
    version[1].object_ref = None;
    let v = http(plan(&step_of(version), &opts(&[], false)));
    assert!(matches!(v.compare, Compare::StatusOnly(_)));
}

#[test]
fn exec_commands_are_planned_only_when_non_interactive_and_named_safely() {
    let pod = ObjectReference {
        resource: Some("pods".into()),
        subresource: Some("exec".into()),
        namespace: Some("a".into()),
        name: Some("web-0".into()),
        ..ObjectReference::default()
    };
    let uri = "/api/v1/namespaces/a/pods/web-0/exec?command=cat&command=%2Fetc%2Fhostname&command=a+b&container=app&stdout=true&stderr=true";
    let mut records = exchange("create", uri, pod.clone(), None);
    let mut closed = records[0].clone();
    closed.custos.record_kind = RecordKind::StreamClosed;
    closed
        .annotations
        .insert("custos.dev/exit-code".into(), "3".into());
    records.push(closed);
    match plan(&step_of(records.clone()), &opts(&["a=b"], false)) {
        Plan::Exec(e) => {
            assert_eq!(e.namespace, "b");
            assert_eq!(e.pod, "web-0");
            assert_eq!(e.container.as_deref(), Some("app"));
            assert_eq!(e.command, vec!["cat", "/etc/hostname", "a b"]);
            assert_eq!(e.recorded_exit, Some(3));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        plan(&step_of(records), &opts(&[], true)),
        Plan::Skip(_)
    ));
    let tty = exchange(
        "create",
        &format!("{uri}&stdin=true&tty=true"),
        pod.clone(),
        None,
    );
    assert!(
        matches!(plan(&step_of(tty), &opts(&[], false)), Plan::Skip(w) if w.contains("interactive"))
    );
    let mut flag = pod;
    flag.name = Some("--kubeconfig=/etc/x".into());
    let hostile = exchange(
        "create",
        "/api/v1/namespaces/a/pods/x/exec?command=id",
        flag,
        None,
    );
    assert!(matches!(
        plan(&step_of(hostile), &opts(&[], false)),
        Plan::Refuse(_)
    ));
}

// ---- comparing ----

#[test]
fn answers_are_compared_by_status_then_normalised_body() {
    let mut records = exchange(
        "get",
        "/api/v1/namespaces/a/configmaps/x",
        cm_ref("a", Some("x")),
        None,
    );
    records[1].response_object = Some(json!({"kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "a", "uid": "1", "resourceVersion": "5"},
        "data": {"colour": "blue"}}));
    let call = http(plan(&step_of(records), &opts(&["a=b"], false)));
    let mut notes = Vec::new();
    let same = json!({"kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "b", "uid": "2", "resourceVersion": "9"},
        "data": {"colour": "blue"}});
    assert!(super::compare(&call, 200, ReplyBody::Json(same.clone()), &[], &mut notes).is_empty());
    let mut changed = same.clone();
    changed["data"]["colour"] = json!("red");
    let d = super::compare(&call, 200, ReplyBody::Json(changed), &[], &mut notes);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].path, "data.colour");
    let status = super::compare(
        &call,
        409,
        ReplyBody::Json(json!({"kind": "Status", "message": "already exists"})),
        &[],
        &mut notes,
    );
    assert_eq!(status[0].path, "(status)");
    assert!(notes.iter().any(|n| n.contains("already exists")));
    // A body that is not JSON is a difference, shown by type and size only.
    let other = ReplyBody::Other {
        content_type: "text/plain".into(),
        bytes: 12,
    };
    let d = super::compare(&call, 200, other, &[], &mut notes);
    assert_eq!(d[0].path, "(body)");
    assert!(d[0]
        .replayed
        .as_ref()
        .expect("replayed")
        .to_string()
        .contains("12 bytes"));
}

// ---- reports ----

fn sample_report() -> Report {
    let mut differ = StepReport {
        index: 3,
        time: Some(t(5)),
        audit_id: Some("a1".into()),
        verb: "patch".into(),
        resource: "configmaps".into(),
        namespace: Some("a".into()),
        sandbox_namespace: Some("b".into()),
        name: Some("x|y".into()),
        sent: Some("PATCH /api/v1/namespaces/b/configmaps/x".into()),
        content_type: Some("application/merge-patch+json".into()),
        content_type_from: Some(plan::TypeSource::Recorded),
        recorded_status: Some(200),
        replayed_status: Some(200),
        verdict: Verdict::Match,
        reason: None,
        notes: vec!["a note".into()],
        differences: Vec::new(),
        more_differences: 0,
    };
    let many: Vec<super::diff::Difference> = (0..60)
        .map(|i| super::diff::Difference {
            path: format!("data.k{i}"),
            recorded: Some(json!("a`|b\ninjected")),
            replayed: None,
        })
        .collect();
    differ.set_differences(many);
    let mut skipped = differ.clone();
    skipped.index = 4;
    skipped.verdict = Verdict::NotReplayable;
    skipped.reason = Some("not replayable: request carries masked values (data.k)".into());
    skipped.differences.clear();
    skipped.more_differences = 0;
    let mut report = Report {
        session: "ss-1".into(),
        against: "https://sandbox:6443/".into(),
        dry_run: false,
        namespace_map: [("a".to_owned(), "b".to_owned())].into(),
        started: Some(t(10)),
        finished: Some(t(20)),
        summary: Counts::default(),
        steps: vec![differ, skipped],
    };
    report.count();
    report
}

#[test]
fn reports_render_as_json_and_escaped_markdown() {
    let report = sample_report();
    assert!(!report.passed());
    assert_eq!(report.summary.differ, 1);
    assert_eq!(report.summary.not_replayable, 1);
    let json: Value = serde_json::from_str(&report.to_json()).expect("json");
    assert_eq!(json["steps"][0]["verdict"], "differ");
    assert_eq!(
        json["steps"][0]["differences"].as_array().map(Vec::len),
        Some(50)
    );
    assert_eq!(json["steps"][0]["moreDifferences"], 10);
    assert_eq!(json["steps"][1]["verdict"], "not-replayable");
    assert_eq!(
        json["steps"][0]["contentType"],
        "application/merge-patch+json"
    );
    assert_eq!(json["steps"][0]["contentTypeFrom"], "recorded");
    assert_eq!(json["namespaceMap"]["a"], "b");
    let md = report.to_markdown();
    assert!(
        md.contains(
            "sent: `PATCH /api/v1/namespaces/b/configmaps/x` as `application/merge-patch+json` (recorded)"
        ),
        "{md}"
    );
    assert!(md.contains("**FAIL**"), "{md}");
    assert!(md.contains("| 3 | "), "{md}");
    assert!(md.contains("x\\|y"), "{md}");
    assert!(md.contains("`data.k0`"), "{md}");
    // A value cannot end its code span, its table cell or its line.
    assert!(md.contains("`\"a'\\|b\\ninjected\"`"), "{md}");
    assert!(md.contains("…and 10 more"), "{md}");
    assert!(md.contains("## Not replayed"), "{md}");
    assert!(
        md.contains("request carries masked values (data.k)"),
        "{md}"
    );
    for line in md.lines().filter(|l| l.starts_with("| `data.k")) {
        assert_eq!(line.matches(" | ").count(), 2, "{line}");
    }
    let mut passing = report;
    passing.steps.truncate(0);
    passing.count();
    assert!(passing.passed());
    assert!(passing.to_markdown().contains("**PASS**"));
}

#[test]
fn names_the_server_generated_follow_into_later_steps() {
    let pods = ObjectReference {
        resource: Some("pods".into()),
        namespace: Some("a".into()),
        ..ObjectReference::default()
    };
    let mut records = exchange(
        "create",
        "/api/v1/namespaces/a/pods",
        pods.clone(),
        Some(json!({"metadata": {"generateName": "job-"}})),
    );
    records[1].response_object =
        Some(json!({"metadata": {"name": "job-abcde", "generateName": "job-"}}));
    let create = http(plan(&step_of(records), &opts(&[], false)));
    let reply = ReplyBody::Json(json!({"metadata": {"name": "job-xyz12", "generateName": "job-"}}));
    assert_eq!(
        super::generated_name(&create, &reply),
        Some(("job-abcde".to_owned(), "job-xyz12".to_owned()))
    );
    let mut named = pods;
    named.name = Some("job-abcde".into());
    let get = exchange(
        "patch",
        "/api/v1/namespaces/a/pods/job-abcde?fieldManager=x",
        named,
        Some(json!({"metadata": {"name": "job-abcde", "labels": {"a": "job-abcde"}}})),
    );
    let get = http(plan(&step_of(get), &opts(&[], false)));
    let generated = [("job-abcde".to_owned(), "job-xyz12".to_owned())].into();
    let renamed = super::rename_generated(&get, &generated);
    assert_eq!(
        renamed.path_and_query,
        "/api/v1/namespaces/a/pods/job-xyz12?fieldManager=x"
    );
    let body: Value = serde_json::from_slice(renamed.body.as_deref().expect("body")).expect("json");
    assert_eq!(
        body,
        json!({"metadata": {"name": "job-xyz12", "labels": {"a": "job-abcde"}}})
    );
}

#[test]
fn scheduler_placement_and_generated_token_volumes_are_the_servers_choice() {
    let pod = |node: &str, volume: &str| {
        json!({"kind": "Pod", "spec": {"nodeName": node,
            "containers": [{"volumeMounts": [{"name": volume}]}], "volumes": [{"name": volume}]}})
    };
    let mut a = pod("kwok-node-0", "kube-api-access-44twc");
    let mut b = pod("kwok-node-1", "kube-api-access-6cc25");
    normalize_pair(&mut a, &mut b, &[]);
    assert!(diff(&a, &b).is_empty(), "{a} {b}");
    let mut list = json!({"kind": "PodList", "items": [{"spec": {"nodeName": "n"}}]});
    normalize::normalize(&mut list);
    assert_eq!(list["items"][0], json!({}));
    assert!(!normalize::is_token_volume("kube-api-access-mine"));
    assert!(!normalize::is_token_volume("kube-api-access-ABCDE"));
}

#[test]
fn kubectls_closing_message_is_not_output_but_names_the_exit_code() {
    use super::send::split_closing_message;
    assert_eq!(
        split_closing_message("oops\ncommand terminated with exit code 3\n"),
        ("oops\n".to_owned(), Some(3))
    );
    assert_eq!(
        split_closing_message("oops\nerror: Internal error occurred: cmd wait: exit status 7\n"),
        ("oops\n".to_owned(), Some(7))
    );
    assert_eq!(
        split_closing_message("error: pod not found\n"),
        (String::new(), None)
    );
    assert_eq!(
        split_closing_message("just stderr\n"),
        ("just stderr\n".to_owned(), None)
    );
    assert_eq!(
        super::normalize_output("b\r\na\n\n"),
        super::normalize_output("a\nb")
    );
}

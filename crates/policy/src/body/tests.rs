use proptest::prelude::*;
use serde_json::json;

use super::*;

fn facts(v: serde_json::Value) -> BodyFacts {
    BodyFacts::extract(v.to_string().as_bytes())
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn pod_spec() -> serde_json::Value {
    json!({
        "initContainers": [{"name": "init", "image": "registry.k8s.io/pause:3.9"}],
        "containers": [{
            "name": "app",
            "image": "ghcr.io/acme/app@sha256:abc",
            "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN", "cap_sys_admin"]}}
        }],
        "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}, {"name": "tmp", "emptyDir": {}}],
        "hostNetwork": true, "hostPID": true, "hostIPC": true
    })
}

#[test]
fn pod_specs_are_found_in_every_workload_kind() {
    let spec = pod_spec();
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": spec});
    let bodies = [
        ("Pod", json!({"kind": "Pod", "spec": spec})),
        (
            "Deployment",
            json!({"kind": "Deployment", "spec": {"replicas": 2, "template": template}}),
        ),
        (
            "StatefulSet",
            json!({"kind": "StatefulSet", "spec": {"replicas": 2, "template": template}}),
        ),
        (
            "ReplicaSet",
            json!({"kind": "ReplicaSet", "spec": {"replicas": 2, "template": template}}),
        ),
        (
            "DaemonSet",
            json!({"kind": "DaemonSet", "spec": {"template": template}}),
        ),
        (
            "Job",
            json!({"kind": "Job", "spec": {"template": template}}),
        ),
        (
            "CronJob",
            json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": template}}}}),
        ),
        (
            "PodTemplate",
            json!({"kind": "PodTemplate", "template": template}),
        ),
        (
            "a custom resource",
            json!({"kind": "Rollout", "spec": {"workload": {"template": template}}}),
        ),
        (
            "a List",
            json!({"kind": "List", "items": [{"kind": "Pod", "spec": spec}]}),
        ),
    ];
    for (name, body) in bodies {
        let f = facts(body);
        assert!(f.present && f.known(), "{name}: {:?}", f.unknown);
        assert!(
            f.privileged && f.host_path && f.host_network && f.host_pid && f.host_ipc,
            "{name}"
        );
        assert_eq!(f.capabilities, set(&["NET_ADMIN", "SYS_ADMIN"]), "{name}");
        assert_eq!(
            f.images,
            set(&[
                "registry.k8s.io/pause:3.9",
                "ghcr.io/acme/app@sha256:abc",
                "busybox"
            ]),
            "{name}"
        );
        assert_eq!(
            f.registries,
            set(&["registry.k8s.io", "ghcr.io", "docker.io"]),
            "{name}"
        );
    }
}

#[test]
fn a_plain_pod_has_no_flags() {
    let f = facts(json!({
        "kind": "Pod",
        "metadata": {"name": "web", "annotations": {"hostNetwork": "true", "privileged": "true"}},
        "spec": {
            "containers": [{"name": "web", "image": "nginx:1.27", "securityContext": {"privileged": false, "runAsNonRoot": true}}],
            "hostNetwork": false,
            "volumes": [{"name": "c", "configMap": {"name": "hostPath"}}]
        }
    }));
    assert!(f.known());
    assert_eq!(f.kind, "Pod");
    assert!(!f.privileged && !f.host_path && !f.host_network && !f.host_pid && !f.host_ipc);
    assert_eq!(f.registries, set(&["docker.io"]));
    assert_eq!(f.replicas, None);
}

#[test]
fn replicas_from_workloads_scale_and_patches() {
    assert_eq!(
        facts(json!({"kind": "Deployment", "spec": {"replicas": 3}})).replicas,
        Some(3)
    );
    assert_eq!(
        facts(json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "spec": {"replicas": 0}}))
            .replicas,
        Some(0)
    );
    assert_eq!(
        facts(json!({"spec": {"replicas": 0}})).replicas,
        Some(0),
        "merge patch"
    );
    assert_eq!(facts(json!({"spec": {"replicas": null}})).replicas, None);
    assert_eq!(
        facts(json!({"status": {"replicas": 0}})).replicas,
        None,
        "status is not spec"
    );
    let jp = facts(json!([{"op": "replace", "path": "/spec/replicas", "value": 0}]));
    assert_eq!((jp.replicas, jp.known()), (Some(0), true));
    for odd in [
        json!("0"),
        json!(0.5),
        json!(1e300),
        json!(true),
        json!({"x": 1}),
    ] {
        let f = facts(json!({"spec": {"replicas": odd}}));
        assert!(!f.known(), "replicas {odd}: {f:?}");
    }
}

#[test]
fn json_patches_are_read_operation_by_operation() {
    let f = facts(json!([
        {"op": "test", "path": "/metadata/name", "value": "web"},
        {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "x", "image": "quay.io/x/y:1"}},
        {"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/privileged", "value": true},
        {"op": "add", "path": "/spec/template/spec/volumes/0", "value": {"name": "h", "hostPath": {"path": "/etc"}}},
        {"op": "replace", "path": "/spec/template/spec/hostPID", "value": true},
        {"op": "remove", "path": "/spec/template/spec/containers/1"},
        {"op": "copy", "from": "/metadata/labels/a", "path": "/metadata/labels/b"}
    ]));
    assert!(f.known(), "{:?}", f.unknown);
    assert!(f.privileged && f.host_path && f.host_pid);
    assert_eq!(f.registries, set(&["quay.io"]));
    let f = facts(
        json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "evil.io/x"}]),
    );
    assert_eq!(f.registries, set(&["evil.io"]));
    let f = facts(
        json!([{"op": "replace", "path": "", "value": {"kind": "Pod", "spec": {"hostNetwork": true}}}]),
    );
    assert!(f.host_network && f.known());
    let f = facts(json!([{"op": "add", "path": "/a~1b/c~0d/hostNetwork", "value": true}]));
    assert!(f.host_network);
}

#[test]
fn json_patches_that_move_values_around_are_unknown() {
    for body in [
        json!([{"op": "copy", "from": "/metadata/labels", "path": "/spec/template/spec/volumes/0/hostPath"}]),
        json!([{"op": "move", "from": "/metadata/annotations/x", "path": "/spec/hostNetwork"}]),
        json!([{"op": "frobnicate", "path": "/spec"}]),
        json!([{"op": "add", "path": "/spec/replicas"}]),
        json!([{"path": "/spec/replicas", "value": 0}]),
        json!([{"op": "add", "path": "spec/replicas", "value": 0}]),
        json!(["not an operation"]),
        json!([{"op": "add", "path": format!("/{}", vec!["a"; 100].join("/")), "value": 1}]),
    ] {
        let f = facts(body.clone());
        assert!(f.present && !f.known(), "{body}: {f:?}");
    }
}

#[test]
fn hostile_and_malformed_bodies_give_unknown_facts_and_never_panic() {
    let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(5000), "}".repeat(5000));
    let huge = vec![b' '; MAX_BODY_BYTES + 1];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("YAML", b"kind: Pod\nspec:\n  hostNetwork: true\n".to_vec()),
        ("protobuf", b"k8s\x00\n\x0f\n\x02v1\x12\x03Pod".to_vec()),
        (
            "truncated JSON",
            br#"{"spec": {"containers": [{"image": "#.to_vec(),
        ),
        (
            "trailing garbage",
            br#"{"kind":"Pod"} {"kind":"Pod"}"#.to_vec(),
        ),
        ("a string", br#""hello""#.to_vec()),
        ("a number", b"42".to_vec()),
        ("null", b"null".to_vec()),
        ("invalid UTF-8", b"{\"kind\": \"\xff\xfe\"}".to_vec()),
        ("deeply nested arrays", deep_array.into_bytes()),
        ("deeply nested objects", deep_object.into_bytes()),
        ("larger than the limit", huge),
        ("a lone surrogate", br#"{"kind": "\ud800"}"#.to_vec()),
    ];
    for (name, body) in cases {
        let f = BodyFacts::extract(&body);
        assert!(f.present, "{name}");
        assert!(!f.known(), "{name}: {f:?}");
        assert!(!f.unknown.is_empty(), "{name}");
    }
}

#[test]
fn duplicate_keys_cannot_hide_a_flag() {
    let f = BodyFacts::extract(
        br#"{"spec":{"containers":[{"image":"a","securityContext":{"privileged":true,"privileged":false}}]}}"#,
    );
    assert!(f.privileged, "either copy counts");
    assert!(!f.known(), "and the body is unknown");
    let f = BodyFacts::extract(br#"{"spec":{"replicas":3,"replicas":0}}"#);
    assert_eq!(f.replicas, Some(0), "the smallest");
    assert!(!f.known());
}

#[test]
fn key_case_and_odd_types_err_towards_flags_set() {
    let f = facts(
        json!({"spec": {"HostNetwork": true, "containers": [{"image": "x", "SecurityContext": {"Privileged": true}}]}}),
    );
    assert!(f.host_network && f.privileged);
    let f = facts(json!({"spec": {"containers": [{"image": 7}]}}));
    assert!(!f.known());
    let f = facts(json!({"spec": {"containers": [{"image": ""}]}}));
    assert!(!f.known());
    let f = facts(json!({"spec": {"containers": "not a list", "volumes": {"hostPath": {}}}}));
    assert!(f.host_path);
}

#[test]
fn empty_and_absent_bodies() {
    let none = BodyFacts::none();
    assert!(!none.present && none.known());
    assert_eq!(BodyFacts::extract(b""), none);
    let u = BodyFacts::unknown("not buffered");
    assert!(u.present && !u.known());
    let f = BodyFacts::extract(b"{}");
    assert!(f.present && f.known());
}

#[test]
fn registries() {
    for (image, expected) in [
        ("nginx", "docker.io"),
        ("nginx:1.27", "docker.io"),
        ("library/nginx", "docker.io"),
        ("bitnami/redis:7", "docker.io"),
        ("docker.io/library/nginx", "docker.io"),
        ("index.docker.io/library/nginx", "docker.io"),
        ("ghcr.io/acme/app:1", "ghcr.io"),
        ("GHCR.IO/acme/app", "ghcr.io"),
        ("registry.corp:5000/team/app", "registry.corp:5000"),
        ("localhost/app", "localhost"),
        ("localhost:5000/app", "localhost:5000"),
        ("quay.io/x/y@sha256:0123", "quay.io"),
        (" ghcr.io/x ", "ghcr.io"),
    ] {
        assert_eq!(registry(image), expected, "{image}");
    }
}

#[test]
fn facts_serialise_for_the_audit_record() {
    let f =
        facts(json!({"kind": "Pod", "spec": {"hostPID": true, "containers": [{"image": "a"}]}}));
    let v = serde_json::to_value(&f).expect("serialises");
    assert_eq!(v["hostPID"], true);
    assert_eq!(v["registries"], json!(["docker.io"]));
    assert!(v.get("unknown").is_none());
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let key = prop::sample::select(vec![
        "spec",
        "template",
        "containers",
        "initContainers",
        "image",
        "securityContext",
        "privileged",
        "hostPath",
        "hostNetwork",
        "replicas",
        "capabilities",
        "add",
        "kind",
        "op",
        "path",
        "value",
    ]);
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "[a-z./:@]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|members| {
                serde_json::Value::Object(
                    members
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

proptest! {
    #[test]
    fn extract_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let f = BodyFacts::extract(&body);
        prop_assert_eq!(f.present, !body.is_empty());
    }

    #[test]
    fn extract_never_panics_on_json(v in arb_json()) {
        let f = facts(v);
        prop_assert!(f.present);
        prop_assert_eq!(f.images.is_empty(), f.registries.is_empty());
    }
}

use serde_json::json;

use super::diff::*;
use super::*;

/// The query parameters as Go's `url.ParseQuery` reads them (segments with `;` or a bad escape skipped).
fn go_query(path_and_query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let query = path_and_query.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter(|s| !s.is_empty() && !s.contains(';'))
        .filter_map(|s| {
            let (k, v) = s.split_once('=').unwrap_or((s, ""));
            Some((query_unescape(k)?, query_unescape(v)?))
        })
        .collect()
}

fn dry_run_values(path_and_query: &str) -> Vec<Vec<u8>> {
    go_query(path_and_query)
        .into_iter()
        .filter(|(k, _)| k == b"dryRun")
        .map(|(_, v)| v)
        .collect()
}

fn rewrite(pq: &str) -> String {
    dry_run_path(pq).expect("rewritten")
}

#[test]
fn dry_run_is_added_to_a_path_without_query() {
    assert_eq!(
        rewrite("/api/v1/namespaces/a/configmaps/x"),
        "/api/v1/namespaces/a/configmaps/x?dryRun=All"
    );
    assert_eq!(
        rewrite("/api/v1/namespaces/a/configmaps?"),
        "/api/v1/namespaces/a/configmaps?dryRun=All"
    );
}

#[test]
fn other_parameters_are_kept_in_order_as_sent() {
    assert_eq!(
        rewrite("/apis/apps/v1/namespaces/a/deployments/d?fieldManager=kubectl-client-side-apply&fieldValidation=Strict"),
        "/apis/apps/v1/namespaces/a/deployments/d?fieldManager=kubectl-client-side-apply&fieldValidation=Strict&dryRun=All"
    );
    assert_eq!(
        rewrite("/p?a=%2F%20b&c=d+e"),
        "/p?a=%2F%20b&c=d+e&dryRun=All"
    );
}

#[test]
fn dry_run_appears_once_whatever_the_client_sent() {
    assert_eq!(rewrite("/p?dryRun=All"), "/p?dryRun=All");
    assert_eq!(
        rewrite("/p?dryRun=None&a=1&dryRun=All"),
        "/p?a=1&dryRun=All"
    );
    assert_eq!(rewrite("/p?dryRun=&dryRun&b=2"), "/p?b=2&dryRun=All");
}

#[test]
fn hostile_queries_cannot_hide_or_override_the_dry_run() {
    let hostile = [
        "/p?%64ryRun=None",
        "/p?dry%52un=None&x=1",
        "/p?%64%72%79%52%75%6E=",
        "/p?dryRun%3DNone",
        "/p?dryrun=None",
        "/p?+dryRun=None",
        "/p?a=1;dryRun=None",
        "/p?dryRun=None;",
        "/p?%zz=1&dryRun=%zz",
        "/p?&&&",
        "/p?a=1#&dryRun=None",
        "/p#?dryRun=None",
        "/p?dryRun=None&",
        "/p?x=%",
    ];
    for pq in hostile {
        let out = rewrite(pq);
        assert_eq!(dry_run_values(&out), vec![b"All".to_vec()], "{pq} -> {out}");
        assert!(
            out.ends_with("&dryRun=All") || out.ends_with("?dryRun=All"),
            "{out}"
        );
        assert!(!out.contains('#'), "{out}");
        assert_eq!(out.matches("dryRun=All").count(), 1, "{out}");
    }
    // Parameters Go reads as something else than dryRun are kept as they are.
    assert_eq!(rewrite("/p?dryrun=None"), "/p?dryrun=None&dryRun=All");
    assert_eq!(rewrite("/p?dryRun%3DNone"), "/p?dryRun%3DNone&dryRun=All");
    assert_eq!(rewrite("/p?%zz=1"), "/p?%zz=1&dryRun=All");
    assert_eq!(rewrite("/p?%64ryRun=None&a=1"), "/p?a=1&dryRun=All");
}

#[test]
fn a_query_go_would_drop_whole_gets_no_dry_run() {
    // Go drops every parameter of a query with too many, `dryRun` included: the write would be real.
    let many: Vec<String> = (0..MAX_QUERY_PARAMS).map(|i| format!("p{i}=1")).collect();
    let pq = format!("/p?{}", many.join("&"));
    assert!(dry_run_path(&pq).is_err());
    // Empty segments do not count: they are dropped.
    let pq = format!("/p?a=1{}", "&".repeat(20_000));
    assert_eq!(rewrite(&pq), "/p?a=1&dryRun=All");
}

#[test]
fn the_live_object_is_read_without_the_query() {
    assert_eq!(
        path_only("/api/v1/namespaces/a/secrets/s?fieldManager=x"),
        "/api/v1/namespaces/a/secrets/s"
    );
    assert_eq!(
        path_only("/api/v1/namespaces/a/secrets/s"),
        "/api/v1/namespaces/a/secrets/s"
    );
    assert_eq!(path_only("/p#x?y"), "/p");
}

#[test]
fn a_delete_with_options_gets_dry_run_in_its_body() {
    let body = Bytes::from_static(br#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background","dryRun":[],"DryRun":["x"]}"#);
    let (ct, out) =
        dry_run_body(Action::Delete, Some("application/json"), Some(&body)).expect("rewritten");
    assert_eq!(ct.as_deref(), Some("application/json"));
    let v: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v["dryRun"], json!(["All"]));
    assert_eq!(v["propagationPolicy"], "Background");
    assert!(v.get("DryRun").is_none());

    let yaml = Bytes::from_static(b"propagationPolicy: Foreground\ndryRun: [None]\n");
    let (ct, out) =
        dry_run_body(Action::Delete, Some("application/yaml"), Some(&yaml)).expect("yaml");
    assert_eq!(ct.as_deref(), Some("application/json"));
    let v: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(
        v,
        json!({"propagationPolicy": "Foreground", "dryRun": ["All"]})
    );

    // No content type: the apiserver reads JSON.
    let (_, out) =
        dry_run_body(Action::Delete, None, Some(&Bytes::from_static(b"{}"))).expect("json");
    assert_eq!(
        serde_json::from_slice::<Value>(&out).expect("json"),
        json!({"dryRun": ["All"]})
    );
}

#[test]
fn delete_options_custos_cannot_rewrite_get_no_dry_run() {
    for (ct, body) in [
        (
            Some("application/vnd.kubernetes.protobuf"),
            &b"k8s\x00\x0a"[..],
        ),
        (Some("application/cbor"), &b"\xa1"[..]),
        (Some("application/json"), &b"not json"[..]),
        (Some("application/json"), &b"[1]"[..]),
        (Some("application/json"), &b"null"[..]),
        (None, &b"   "[..]),
    ] {
        let body = Bytes::copy_from_slice(body);
        assert!(
            dry_run_body(Action::Delete, ct, Some(&body)).is_err(),
            "{ct:?} {body:?}"
        );
    }
}

#[test]
fn other_bodies_go_as_sent() {
    let body = Bytes::from_static(b"\x00binary");
    let (ct, out) = dry_run_body(
        Action::Patch,
        Some("application/strategic-merge-patch+json"),
        Some(&body),
    )
    .expect("as sent");
    assert_eq!(
        ct.as_deref(),
        Some("application/strategic-merge-patch+json")
    );
    assert_eq!(out, body);
    let (ct, out) = dry_run_body(Action::Delete, Some("application/json"), None).expect("none");
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert!(out.is_empty());
}

fn attrs(method: &str, path: &str) -> RequestAttributes {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    custos_kube::classify(&method, path, None).expect("classified")
}

#[test]
fn only_writes_to_named_objects_or_creates_get_a_preview() {
    let ok = |m: &str, p| {
        action(
            &Method::from_bytes(m.as_bytes()).expect("method"),
            &attrs(m, p),
        )
    };
    assert_eq!(
        ok("POST", "/api/v1/namespaces/a/configmaps"),
        Ok(Action::Create)
    );
    assert_eq!(
        ok("PUT", "/api/v1/namespaces/a/configmaps/c"),
        Ok(Action::Update)
    );
    assert_eq!(
        ok("PATCH", "/apis/apps/v1/namespaces/a/deployments/d"),
        Ok(Action::Patch)
    );
    assert_eq!(
        ok("DELETE", "/api/v1/namespaces/a/secrets/s"),
        Ok(Action::Delete)
    );
    for (m, p) in [
        ("POST", "/api/v1/namespaces/a/pods/p/exec"),
        ("PATCH", "/apis/apps/v1/namespaces/a/deployments/d/scale"),
        ("DELETE", "/api/v1/namespaces/a/configmaps"),
        ("GET", "/api/v1/namespaces/a/configmaps/c"),
        ("POST", "/version"),
    ] {
        assert!(ok(m, p).is_err(), "{m} {p}");
    }
}

#[test]
fn a_method_the_classification_does_not_match_gets_no_dry_run() {
    // The DELETE body is rewritten by action: a DELETE classified as a patch must not be sent.
    let patch = attrs("PATCH", "/api/v1/namespaces/a/configmaps/c");
    assert!(action(&Method::DELETE, &patch).is_err());
    assert!(action(&Method::POST, &patch).is_err());
    let delete = attrs("DELETE", "/api/v1/namespaces/a/configmaps/c");
    assert!(action(&Method::PATCH, &delete).is_err());
}

#[test]
fn noise_is_removed_and_the_rest_kept() {
    let mut v = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": "c", "namespace": "a", "labels": {"x": "y"}, "annotations": {"k": "v"},
            "uid": "u", "resourceVersion": "7", "generation": 2,
            "creationTimestamp": "2024-01-01T00:00:00Z", "managedFields": [{"manager": "kubectl"}],
        },
        "data": {"k": "v"},
        "status": {"phase": "x"},
    });
    strip_noise(&mut v);
    assert_eq!(
        v,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "a", "labels": {"x": "y"}, "annotations": {"k": "v"}},
            "data": {"k": "v"},
        })
    );
    let mut s = json!("not an object");
    strip_noise(&mut s);
    assert_eq!(s, json!("not an object"));
}

fn cm(value: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "a", "resourceVersion": "1", "uid": "u"},
        "data": {"colour": value, "size": "L"},
    })
}

#[test]
fn an_update_diff_shows_the_changed_key_old_and_new() {
    let diff = render_diff(Some(&cm("blue")), Some(&cm("green")))
        .expect("rendered")
        .expect("a diff");
    assert!(diff.starts_with("--- live\n+++ after\n@@ "), "{diff}");
    assert!(diff.contains("\n-  colour: blue\n"), "{diff}");
    assert!(diff.contains("\n+  colour: green\n"), "{diff}");
    assert!(diff.contains("\n   size: L\n"), "{diff}");
    assert_eq!(render_diff(Some(&cm("blue")), Some(&cm("blue"))), Ok(None));
}

#[test]
fn a_create_diff_adds_everything_and_a_delete_removes_everything() {
    let create = render_diff(None, Some(&cm("blue")))
        .expect("ok")
        .expect("diff");
    let body: Vec<&str> = create.lines().skip(3).collect();
    assert!(
        create.starts_with("--- live\n+++ after\n@@ -0,0 +1,"),
        "{create}"
    );
    assert!(
        !body.is_empty() && body.iter().all(|l| l.starts_with('+')),
        "{create}"
    );
    let delete = render_diff(Some(&cm("blue")), None)
        .expect("ok")
        .expect("diff");
    let body: Vec<&str> = delete.lines().skip(3).collect();
    assert!(
        delete.contains("\n@@ -1,") && delete.contains(" +0,0 @@\n"),
        "{delete}"
    );
    assert!(
        !body.is_empty() && body.iter().all(|l| l.starts_with('-')),
        "{delete}"
    );
}

#[test]
fn a_long_diff_is_cut_at_a_line_and_says_so() {
    let short = "--- live\n+++ after\n".to_owned();
    assert_eq!(cap_diff(short.clone(), MAX_DIFF_BYTES), short);
    let long: String = (0..20_000).map(|i| format!("+line é {i}\n")).collect();
    let cut = cap_diff(long.clone(), MAX_DIFF_BYTES);
    assert!(cut.len() <= MAX_DIFF_BYTES, "{}", cut.len());
    assert!(cut.ends_with(&format!(
        "# diff truncated: {} bytes, the first {MAX_DIFF_BYTES} at most shown\n",
        long.len()
    )));
    let kept = &cut[..cut.rfind("# diff truncated").expect("trailer")];
    assert!(long.starts_with(kept) && kept.ends_with('\n'));
    assert!(kept.len() > MAX_DIFF_BYTES - 200);
    // A single line longer than the cap keeps nothing but the note.
    let one = "x".repeat(MAX_DIFF_BYTES * 2);
    assert!(cap_diff(one, MAX_DIFF_BYTES).starts_with("# diff truncated"));
}

fn strict_mask() -> impl Fn(Value) -> Value {
    let detector = crate::mask::builtin_detector().expect("builtin rules");
    let hint = Hint::default();
    move |mut v| {
        custos_mask::mask_document(detector, &Profile::strict(), &hint, &mut v);
        v
    }
}

const SECRET_OLD: &str = "hunter2-old-password";
const SECRET_NEW: &str = "correct-horse-battery";

fn secret(password: &str) -> Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(password);
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": "s", "namespace": "a", "resourceVersion": "3",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration":
                    json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"password": password}}).to_string(),
            },
        },
        "type": "Opaque",
        "data": {"password": b64, "user": "YWRtaW4="},
    })
}

fn assert_no_secret(preview: &Preview) {
    use base64::Engine;
    let shown = serde_json::to_string(preview).expect("serialise");
    for s in [SECRET_OLD, SECRET_NEW] {
        let b64 = base64::engine::general_purpose::STANDARD.encode(s);
        assert!(!shown.contains(s), "{s} shown: {shown}");
        assert!(!shown.contains(&b64), "{b64} shown: {shown}");
        assert!(!shown.contains("YWRtaW4="), "{shown}");
    }
}

#[test]
fn a_secret_update_shows_no_value_but_says_one_changed() {
    let p = assemble(
        Action::Patch,
        Ok((StatusCode::OK, secret(SECRET_NEW))),
        Some(Ok((StatusCode::OK, secret(SECRET_OLD)))),
        strict_mask(),
    );
    assert_no_secret(&p);
    let dry = p.dry_run.as_ref().expect("dry run");
    assert_eq!(dry["data"]["password"], custos_mask::MARKER_BASE64);
    assert_eq!(
        p.live.as_ref().expect("live")["data"]["password"],
        custos_mask::MARKER_BASE64
    );
    let note = p.note.as_deref().expect("note");
    assert!(
        note.starts_with("masked values change (not shown): "),
        "{note}"
    );
    assert!(note.contains("data.password"), "{note}");
    assert!(note.contains("last-applied-configuration"), "{note}");
    assert!(!note.contains("data.user"), "{note}");
}

#[test]
fn a_secret_create_and_delete_show_only_markers() {
    let create = assemble(
        Action::Create,
        Ok((StatusCode::CREATED, secret(SECRET_NEW))),
        None,
        strict_mask(),
    );
    assert_no_secret(&create);
    let diff = create.diff.as_deref().expect("diff");
    assert!(diff.contains(custos_mask::MARKER_BASE64), "{diff}");
    assert_eq!(create.note, None);

    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": "s", "kind": "secrets"}});
    let delete = assemble(
        Action::Delete,
        Ok((StatusCode::OK, status)),
        Some(Ok((StatusCode::OK, secret(SECRET_OLD)))),
        strict_mask(),
    );
    assert_no_secret(&delete);
    let diff = delete.diff.as_deref().expect("diff");
    assert!(
        diff.contains("-  password: Y3VzdG9zOm1hc2tlZA==") && diff.contains(" +0,0 @@"),
        "{diff}"
    );
    assert_eq!(delete.note, None);
}

#[test]
fn a_refused_dry_run_says_why_with_its_masked_message_and_shows_no_diff() {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Invalid", "code": 422,
        "message": format!("Secret \"s\" is invalid: data[password]: token ghp_{} refused", "a".repeat(36)),
    });
    let p = assemble(
        Action::Patch,
        Ok((StatusCode::UNPROCESSABLE_ENTITY, status)),
        Some(Ok((StatusCode::OK, cm("blue")))),
        strict_mask(),
    );
    let note = p.note.as_deref().expect("note");
    assert!(
        note.starts_with("dry run refused: Secret \"s\" is invalid"),
        "{note}"
    );
    assert!(!note.contains(&"a".repeat(36)), "masked message: {note}");
    assert_eq!(p.diff, None);
    assert!(p.live.is_some());
    assert_eq!(p.dry_run.as_ref().expect("status")["reason"], "Invalid");
}

#[test]
fn errors_become_notes() {
    let p = assemble(
        Action::Update,
        Err("no answer within 5 s".into()),
        Some(Err("the API server is unavailable: refused".into())),
        strict_mask(),
    );
    assert_eq!(p.dry_run, None);
    assert_eq!(p.live, None);
    assert_eq!(p.diff, None);
    assert_eq!(
        p.note.as_deref(),
        Some("no dry run: no answer within 5 s; live object unavailable: the API server is unavailable: refused")
    );
    let forbidden = json!({"kind": "Status", "status": "Failure", "message": "configmaps \"c\" is forbidden", "code": 403});
    let p = assemble(
        Action::Update,
        Ok((StatusCode::OK, cm("green"))),
        Some(Ok((StatusCode::FORBIDDEN, forbidden))),
        strict_mask(),
    );
    assert_eq!(p.diff, None);
    assert_eq!(
        p.note.as_deref(),
        Some("live object unavailable: configmaps \"c\" is forbidden")
    );
}

#[test]
fn an_update_of_a_missing_object_diffs_from_nothing_and_a_no_op_says_so() {
    let p = assemble(
        Action::Patch,
        Ok((StatusCode::CREATED, cm("blue"))),
        Some(Ok((
            StatusCode::NOT_FOUND,
            json!({"kind": "Status", "status": "Failure", "code": 404}),
        ))),
        strict_mask(),
    );
    assert!(p.diff.as_deref().expect("diff").contains("@@ -0,0 +1,"));
    assert_eq!(p.live, None);
    let mut after = cm("blue");
    after["metadata"]["resourceVersion"] = json!("2");
    let p = assemble(
        Action::Update,
        Ok((StatusCode::OK, after)),
        Some(Ok((StatusCode::OK, cm("blue")))),
        strict_mask(),
    );
    assert_eq!(p.diff, None);
    assert_eq!(p.note.as_deref(), Some("the dry run changes nothing"));
}

#[test]
fn a_delete_of_an_object_with_finalizers_says_it_waits_for_them() {
    let mut live = cm("blue");
    live["metadata"]["finalizers"] = json!(["example.com/keep"]);
    let mut dry = live.clone();
    dry["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    let p = assemble(
        Action::Delete,
        Ok((StatusCode::OK, dry)),
        Some(Ok((StatusCode::OK, live))),
        strict_mask(),
    );
    assert!(p.note.as_deref().expect("note").contains("finalizers"));
    assert!(p.diff.as_deref().expect("diff").contains(" +0,0 @@"));
}

#[test]
fn hidden_changes_name_paths_only_where_masking_hides_a_change() {
    let mask = strict_mask();
    let (b, a) = (secret(SECRET_OLD), secret(SECRET_NEW));
    let (mb, ma) = (mask(b.clone()), mask(a.clone()));
    let mut out = Vec::new();
    hidden_changes(&b, &a, &mb, &ma, "", &mut out);
    out.sort();
    assert_eq!(
        out,
        vec![
            "data.password".to_owned(),
            "metadata.annotations.kubectl.kubernetes.io/last-applied-configuration".to_owned(),
        ]
    );
    let mut out = Vec::new();
    hidden_changes(&cm("a"), &cm("b"), &cm("a"), &cm("b"), "", &mut out);
    assert!(out.is_empty());
}

#[test]
fn refusal_messages_are_bounded() {
    let long = json!({"message": "x".repeat(5000)});
    assert_eq!(
        message(StatusCode::BAD_REQUEST, &long).chars().count(),
        MAX_MESSAGE_CHARS + 1
    );
    assert_eq!(
        message(StatusCode::BAD_GATEWAY, &json!({})),
        "HTTP 502 Bad Gateway"
    );
}

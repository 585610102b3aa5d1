//! A generated Kubernetes list for the JSON benchmarks: Pods (env, args), ConfigMaps and Secrets in
//! turn, the shape the apiserver writes (`kind` first, items without kind).

/// One item of the list, `i` choosing its kind.
pub fn item(i: usize) -> String {
    let meta = format!(
        r#""metadata":{{"name":"obj-{i}","namespace":"payments","uid":"6f1c2d3e-4b5a-4c6d-8e7f-{i:012}","resourceVersion":"{rv}","creationTimestamp":"2026-11-27T09:59:20Z","labels":{{"app":"payments","tier":"backend","pod-template-hash":"7d9f8c6b5"}},"annotations":{{"deployment.kubernetes.io/revision":"42"}}}}"#,
        rv = 884_000 + i
    );
    match i % 3 {
        0 => format!(
            r#"{{{meta},"spec":{{"containers":[{{"name":"api","image":"registry.k8s.io/payments/api@sha256:7031c1b283388d2c2e09b57badb803c05ebed362dc88d84b480cc47f72a21097","args":["--port=8080","--db-password=hunter2-{i}","--log-level=info"],"env":[{{"name":"DB_PASSWORD","value":"s3cret-{i}"}},{{"name":"LOG_LEVEL","value":"info"}},{{"name":"REGION","value":"eu-west-1"}}],"resources":{{"requests":{{"cpu":"100m","memory":"128Mi"}}}}}}],"nodeName":"kwok-node-0","serviceAccountName":"payments"}},"status":{{"phase":"Running","podIP":"10.244.1.{ip}","conditions":[{{"type":"Ready","status":"True","lastTransitionTime":"2026-11-27T09:59:25Z"}}]}}}}"#,
            ip = i % 250
        ),
        1 => format!(
            r#"{{{meta},"data":{{"app.properties":"server.port=8080\nspring.datasource.url=jdbc:postgresql://db-0:5432/payments\nfeature.flags=a,b,c\n","region":"eu-west-1","greeting":"hello world {i}"}}}}"#
        ),
        _ => format!(
            r#"{{{meta},"data":{{"password":"aHVudGVyMi1zM2NyZXQtdmFsdWU=","username":"cGF5bWVudHM="}},"type":"Opaque"}}"#
        ),
    }
}

/// The list with `n` items, as bytes.
#[allow(dead_code)]
pub fn list_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(
        br#"{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"884213"},"items":["#,
    );
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item(i).as_bytes());
    }
    out.extend_from_slice(b"]}");
    out
}

//! Kubernetes-aware JSON masking: objects by kind, lists item by item, Tables, watch streams, Helm
//! releases, profiles, malformed and oversized input, any chunking.

use base64::Engine;
use custos_mask::{
    Detector, HelmReleases, Hint, JsonMaskError, JsonMasker, Profile, Reveal, MARKER, MARKER_BASE64,
};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::OnceLock;

fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| Detector::builtin().expect("test step"))
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Masks `input` pushed in chunks of `chunk` bytes, strict profile.
fn mask_chunked(input: &[u8], chunk: usize, hint: Hint) -> Result<Vec<u8>, JsonMaskError> {
    let mut m = JsonMasker::new(detector(), Profile::strict(), hint, 1 << 20);
    let mut out = Vec::new();
    for c in input.chunks(chunk.max(1)) {
        m.push(c, &mut out)?;
    }
    m.finish(&mut out)?;
    Ok(out)
}

fn mask(input: &Value, hint: Hint) -> Value {
    let bytes = serde_json::to_vec(input).expect("test step");
    serde_json::from_slice(&mask_chunked(&bytes, 7, hint).expect("test step")).expect("test step")
}

fn secret(name: &str, pw: &str) -> Value {
    json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":name,"namespace":"ns","resourceVersion":"4711","uid":"0b8f6a4e-7d2c-4f59-9a51-3c2f0f0f9e11"},
        "data":{"password":b64(pw),"empty":""},"type":"Opaque"})
}

const PLANTED: &str = "Planted-S3cret-Value-91x";

#[test]
fn secret_data_is_replaced_by_the_base64_marker_and_the_rest_is_kept() {
    let mut s = secret("db", PLANTED);
    s["stringData"] = json!({"token": PLANTED});
    let out = mask(&s, Hint::default());
    assert_eq!(out["data"]["password"], MARKER_BASE64);
    assert_eq!(out["data"]["empty"], "", "empty values stay empty");
    assert_eq!(out["stringData"]["token"], MARKER);
    assert_eq!(out["metadata"]["resourceVersion"], "4711");
    assert_eq!(
        out["metadata"]["uid"], s["metadata"]["uid"],
        "uids are not secrets"
    );
    assert_eq!(out["type"], "Opaque");
}

#[test]
fn a_secret_list_is_masked_item_by_item_whatever_the_chunking() {
    let list = json!({"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"99"},
        "items":[ {"metadata":{"name":"a"},"data":{"k":b64(PLANTED)}}, {"metadata":{"name":"b"},"data":{"k":b64("other")}} ]});
    let bytes = serde_json::to_vec_pretty(&list).expect("test step");
    let whole = mask_chunked(&bytes, bytes.len(), Hint::default()).expect("test step");
    for chunk in [1, 2, 3, 5, 64, 1000] {
        assert_eq!(
            mask_chunked(&bytes, chunk, Hint::default()).expect("test step"),
            whole,
            "chunk {chunk}"
        );
    }
    let out: Value = serde_json::from_slice(&whole).expect("test step");
    assert_eq!(out["kind"], "SecretList");
    assert_eq!(out["metadata"]["resourceVersion"], "99");
    assert_eq!(out["items"].as_array().expect("test step").len(), 2);
    for item in out["items"].as_array().expect("test step") {
        assert_eq!(
            item["data"]["k"], MARKER_BASE64,
            "items without a kind take it from the list"
        );
    }
}

#[test]
fn list_items_of_unknown_kind_take_the_kind_from_the_request() {
    let list = json!({"apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"a"},"data":{"k":b64(PLANTED)}}]});
    let out = mask(&list, Hint::for_resource("", "secrets", ""));
    assert_eq!(out["items"][0]["data"]["k"], MARKER_BASE64);
}

#[test]
fn table_rows_mask_their_objects_and_cells() {
    let table = json!({"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"5"},
        "columnDefinitions":[{"name":"Name","type":"string"},{"name":"Note","type":"string"}],
        "rows":[{"cells":["db","key AKIAIOSFODNN7EXAMPLE"],"object":secret("db", PLANTED)}]});
    let out = mask(&table, Hint::default());
    let row = &out["rows"][0];
    assert_eq!(row["cells"][0], "db");
    assert!(!row["cells"][1]
        .as_str()
        .expect("test step")
        .contains("AKIAIOSFODNN7EXAMPLE"));
    assert_eq!(row["object"]["data"]["password"], MARKER_BASE64);
    assert_eq!(out["columnDefinitions"][1]["name"], "Note");
}

#[test]
fn watch_events_are_masked_and_emitted_one_by_one() {
    let e1 = json!({"type":"ADDED","object":secret("a", PLANTED)}).to_string();
    let e2 = json!({"type":"MODIFIED","object":secret("b", PLANTED)}).to_string();
    let mut m = JsonMasker::new(detector(), Profile::strict(), Hint::default(), 1 << 20);
    let mut out = Vec::new();
    m.push(format!("{e1}\n").as_bytes(), &mut out)
        .expect("test step");
    m.push(&e2.as_bytes()[..e2.len() / 2], &mut out)
        .expect("test step");
    let first: Value =
        serde_json::from_slice(&out).expect("the first event is out before the second completes");
    assert_eq!(first["object"]["data"]["password"], MARKER_BASE64);
    m.push(&e2.as_bytes()[e2.len() / 2..], &mut out)
        .expect("test step");
    m.push(b"\n", &mut out).expect("test step");
    m.finish(&mut out).expect("test step");
    let text = String::from_utf8(out).expect("test step");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("test step"))
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["type"], "MODIFIED");
    assert!(!text.contains(&b64(PLANTED)));
}

#[test]
fn watch_of_tables_masks_row_objects() {
    let ev = json!({"type":"ADDED","object":{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{},
        "rows":[{"cells":["a"],"object":secret("a", PLANTED)}]}});
    let out = mask(&ev, Hint::default());
    assert_eq!(
        out["object"]["rows"][0]["object"]["data"]["password"],
        MARKER_BASE64
    );
}

#[test]
fn pod_env_with_a_secret_name_and_secret_flags_are_masked() {
    let pod = json!({"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nginx@sha256:0f3e5b2a1c4d6e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f",
        "env":[{"name":"DB_PASSWORD","value":"hunter2"},{"name":"LOG_LEVEL","value":"debug"},{"name":"FROM_SECRET","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}],
        "args":["--db-password=hunter2","--token","abc123","--verbose","--port=8080"],
        "command":["sh","-c","echo AKIAIOSFODNN7EXAMPLE"]}]}});
    let out = mask(&pod, Hint::default());
    let c = &out["spec"]["containers"][0];
    assert_eq!(c["env"][0]["value"], MARKER);
    assert_eq!(c["env"][1]["value"], "debug");
    assert_eq!(
        c["env"][2]["valueFrom"]["secretKeyRef"]["name"], "s",
        "references are not secrets"
    );
    assert_eq!(
        c["args"],
        json!([
            "--db-password=custos:masked",
            "--token",
            "custos:masked",
            "--verbose",
            "--port=8080"
        ])
    );
    assert!(!c["command"][2]
        .as_str()
        .expect("test step")
        .contains("AKIA"));
    assert_eq!(
        c["image"], pod["spec"]["containers"][0]["image"],
        "image digests are not secrets"
    );
}

#[test]
fn deployment_pod_templates_are_masked_too() {
    let d = json!({"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"name":"c","env":[{"name":"API_TOKEN","value":"x-planted"}]}]}}}});
    let out = mask(&d, Hint::default());
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
        MARKER
    );
}

#[test]
fn configmap_values_go_through_the_detectors_and_binary_data_is_decoded() {
    let cm = json!({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"},
        "data":{"aws":"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\nregion = eu-west-1","plain":"hello"},
        "binaryData":{"key":b64("id=AKIAIOSFODNN7EXAMPLE"),"ok":b64("just bytes")}});
    let out = mask(&cm, Hint::default());
    let aws = out["data"]["aws"].as_str().expect("test step");
    assert!(
        !aws.contains("AKIAIOSFODNN7EXAMPLE") && aws.contains("region = eu-west-1"),
        "{aws}"
    );
    assert_eq!(out["data"]["plain"], "hello");
    assert_eq!(out["binaryData"]["key"], MARKER_BASE64);
    assert_eq!(out["binaryData"]["ok"], b64("just bytes"));
}

#[test]
fn last_applied_configuration_is_masked_inside_and_stays_json() {
    let inner = secret("db", PLANTED).to_string();
    let mut s = secret("db", PLANTED);
    s["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": inner});
    let out = mask(&s, Hint::default());
    let la = out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .expect("test step");
    let parsed: Value = serde_json::from_str(la).expect("test step");
    assert_eq!(parsed["data"]["password"], MARKER_BASE64);
    assert!(!la.contains(&b64(PLANTED)));
}

#[test]
fn token_request_token_is_masked() {
    let tr = json!({"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","spec":{},"status":{"token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln","expirationTimestamp":"2026-11-27T11:00:00Z"}});
    let out = mask(&tr, Hint::default());
    assert_eq!(out["status"]["token"], MARKER);
    assert_eq!(out["status"]["expirationTimestamp"], "2026-11-27T11:00:00Z");
}

fn helm_secret(values_pw: &str) -> Value {
    let release = json!({"name":"web","version":1,"config":{"password":values_pw},"manifest":"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n"});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(release.to_string().as_bytes())
        .expect("test step");
    let inner = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("test step"));
    json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":"sh.helm.release.v1.web.v1","labels":{"owner":"helm"}},
        "data":{"release": b64(&inner)},"type":"helm.sh/release.v1"})
}

#[test]
fn helm_releases_are_masked_whole_by_default_and_revealed_only_to_the_client_by_a_deploy_profile() {
    let s = helm_secret(PLANTED);
    let out = mask(&s, Hint::default());
    assert_eq!(out["data"]["release"], MARKER_BASE64);

    let deploy = Profile {
        helm_releases: HelmReleases::Reveal,
        ..Profile::default()
    };
    let mut m = JsonMasker::new(detector(), deploy, Hint::default(), 1 << 20).with_record(1 << 20);
    let mut client = Vec::new();
    m.push(s.to_string().as_bytes(), &mut client)
        .expect("test step");
    m.finish(&mut client).expect("test step");
    let client: Value = serde_json::from_slice(&client).expect("test step");
    assert_eq!(
        client["data"]["release"], s["data"]["release"],
        "helm reads its release"
    );
    let record: Value =
        serde_json::from_slice(&m.take_record().expect("test step")).expect("test step");
    assert_eq!(
        record["data"]["release"], MARKER_BASE64,
        "the record is masked strictly"
    );
}

#[test]
fn helm_release_inside_profile_keeps_the_release_decodable_without_the_values() {
    let s = helm_secret(PLANTED);
    let inside = Profile {
        helm_releases: HelmReleases::Inside,
        ..Profile::default()
    };
    let mut m = JsonMasker::new(detector(), inside, Hint::default(), 1 << 20);
    let mut out = Vec::new();
    m.push(s.to_string().as_bytes(), &mut out)
        .expect("test step");
    m.finish(&mut out).expect("test step");
    let v: Value = serde_json::from_slice(&out).expect("test step");
    let e = base64::engine::general_purpose::STANDARD;
    let gz = e
        .decode(
            e.decode(v["data"]["release"].as_str().expect("test step"))
                .expect("test step"),
        )
        .expect("test step");
    let mut json = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut json)
        .expect("test step");
    assert!(!json.contains(PLANTED), "{json}");
    let rel: Value = serde_json::from_str(&json).expect("test step");
    assert_eq!(rel["name"], "web");
}

#[test]
fn secrets_reveal_profile_shows_data_to_the_client_and_masks_the_record() {
    let p = Profile {
        secrets: Reveal::Reveal,
        ..Profile::default()
    };
    let s = secret("db", PLANTED);
    let mut m = JsonMasker::new(detector(), p, Hint::default(), 1 << 20).with_record(1 << 20);
    let mut out = Vec::new();
    m.push(s.to_string().as_bytes(), &mut out)
        .expect("test step");
    m.finish(&mut out).expect("test step");
    assert!(String::from_utf8_lossy(&out).contains(&b64(PLANTED)));
    let rec = String::from_utf8(m.take_record().expect("test step")).expect("test step");
    assert!(!rec.contains(&b64(PLANTED)), "{rec}");
}

#[test]
fn the_record_copy_is_dropped_beyond_its_cap() {
    let list = json!({"kind":"SecretList","apiVersion":"v1","metadata":{},"items":(0..50).map(|i| secret(&format!("s{i}"), PLANTED)).collect::<Vec<_>>()});
    let mut m =
        JsonMasker::new(detector(), Profile::strict(), Hint::default(), 1 << 20).with_record(1024);
    let mut out = Vec::new();
    m.push(list.to_string().as_bytes(), &mut out)
        .expect("test step");
    m.finish(&mut out).expect("test step");
    assert!(m.take_record().is_none());
    assert!(serde_json::from_slice::<Value>(&out).is_ok());
}

#[test]
fn an_object_with_its_own_items_field_is_masked_as_one_object() {
    let obj = json!({"kind":"Widget","apiVersion":"example.com/v1","metadata":{"name":"w"},"items":[{"password":"x-planted-1"}]});
    let out = mask(&obj, Hint::default());
    assert_eq!(out["items"][0]["password"], MARKER);
    assert_eq!(out["kind"], "Widget");
}

#[test]
fn malformed_and_truncated_bodies_are_errors_not_output() {
    for bad in [
        &b"{\"kind\":\"Secret\",\"data\":{\"p\":\"x\"}"[..],
        b"{\"items\":[{\"a\":1},",
        b"not json",
        b"{\"a\":1]}",
        b"{\"a\" 1}",
        b"{,}",
        b"{\"items\":[1,]}",
        b"]",
    ] {
        let r = mask_chunked(bad, 3, Hint::default());
        assert!(
            r.is_err(),
            "{:?} gave {:?}",
            String::from_utf8_lossy(bad),
            r.map(|o| String::from_utf8_lossy(&o).into_owned())
        );
    }
}

#[test]
fn nothing_unmasked_is_written_before_an_error() {
    let mut m = JsonMasker::new(detector(), Profile::strict(), Hint::default(), 1 << 20);
    let mut out = Vec::new();
    let body = format!(
        "{{\"kind\":\"Secret\",\"data\":{{\"p\":\"{}\"}} garbage",
        b64(PLANTED)
    );
    let r = m.push(body.as_bytes(), &mut out);
    assert!(r.is_err() || m.finish(&mut out).is_err());
    assert!(!String::from_utf8_lossy(&out).contains(&b64(PLANTED)));
}

#[test]
fn one_object_over_the_bound_is_refused_but_a_long_list_of_small_ones_streams() {
    let big =
        json!({"kind":"ConfigMap","apiVersion":"v1","data":{"x":"a".repeat(2000)}}).to_string();
    let mut m = JsonMasker::new(detector(), Profile::strict(), Hint::default(), 1000);
    let mut out = Vec::new();
    assert_eq!(
        m.push(big.as_bytes(), &mut out),
        Err(JsonMaskError::TooLarge { limit: 1000 })
    );

    // 5 MB of items through a 4 KiB bound: only one item is ever held.
    let item =
        json!({"metadata":{"name":"cm","namespace":"ns"},"data":{"k":"v".repeat(200)}}).to_string();
    let mut m = JsonMasker::new(detector(), Profile::strict(), Hint::default(), 4096);
    let mut out = Vec::new();
    m.push(
        br#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{},"items":["#,
        &mut out,
    )
    .expect("test step");
    let mut total = 0usize;
    for i in 0..20_000 {
        if i > 0 {
            m.push(b",", &mut out).expect("test step");
        }
        m.push(item.as_bytes(), &mut out).expect("test step");
        total += out.len();
        out.clear();
    }
    m.push(b"]}", &mut out).expect("test step");
    m.finish(&mut out).expect("test step");
    assert!(total > 5_000_000);
}

#[test]
fn secrets_behind_json_escapes_are_still_found() {
    // `\u0041` is `A`: the raw text holds no keyword, the decoded string does.
    let escaped = br#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"},"data":{"k":"id=\u0041KIAIOSFODNN7EXAMPLE","l":"x\npassword=Xk9#mQ2vL7pR\n"}}"#;
    let out = mask_chunked(escaped, 5, Hint::default()).expect("masked");
    let v: Value = serde_json::from_slice(&out).expect("json");
    assert!(!v["data"]["k"].as_str().expect("k").contains("AKIA"), "{v}");
    assert!(
        !v["data"]["l"].as_str().expect("l").contains("Xk9#mQ2vL7pR"),
        "{v}"
    );
}

#[test]
fn a_list_with_nothing_to_find_passes_unchanged_in_content() {
    let list = json!({"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"1"},
        "items":[{"metadata":{"name":"a","uid":"0b8f6a4e-7d2c-4f59-9a51-3c2f0f0f9e11"},"data":{"x":"hello world","y":"eu-west-1"}}]});
    let out = mask(&list, Hint::default());
    assert_eq!(out["items"][0]["data"], list["items"][0]["data"]);
    assert_eq!(out["items"][0]["metadata"], list["items"][0]["metadata"]);
}

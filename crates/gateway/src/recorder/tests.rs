//! What a request record says about the request body: its media type, from an allow-list only, and
//! the body masked strictly — a delete's `DeleteOptions` included.

use custos_audit::record::{Record, RecordKind};
use custos_mask::Hint;
use http::{HeaderMap, HeaderValue};
use serde_json::json;

use super::*;
use crate::mask::{builtin_detector, MaskSettings};

fn settings() -> MaskSettings {
    MaskSettings::new(builtin_detector().expect("built-in rules compile"))
}

fn headers(content_type: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_bytes(content_type).expect("a header value"),
    );
    h
}

fn request(verb: &str) -> Record {
    let mut r = Record::new(RecordKind::Request, now());
    r.verb = Some(verb.into());
    r
}

/// The record of a request with `verb`, `content_type` and `body`, as the pipeline writes it.
fn recorded(verb: &str, content_type: &[u8], body: &[u8], hint: &Hint) -> Record {
    let mut r = request(verb);
    request_body(&mut r, &settings(), hint, &headers(content_type), body);
    r
}

#[test]
fn every_patch_type_and_apply_is_recorded_as_its_media_type() {
    let hint = Hint::for_resource("", "configmaps", "");
    let cases: [(&[u8], &str, &[u8]); 5] = [
        (
            b"application/strategic-merge-patch+json",
            "application/strategic-merge-patch+json",
            br#"{"data":{"colour":"green"}}"#,
        ),
        (
            b"application/merge-patch+json",
            "application/merge-patch+json",
            br#"{"data":{"colour":"green"}}"#,
        ),
        (
            b"application/json-patch+json",
            "application/json-patch+json",
            br#"[{"op":"replace","path":"/data/colour","value":"green"}]"#,
        ),
        (
            b"application/apply-patch+yaml",
            "application/apply-patch+yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {colour: green}\n",
        ),
        // Parameters dropped, case and whitespace ignored: the type the apiserver reads.
        (
            b" Application/Merge-Patch+JSON ; charset=utf-8",
            "application/merge-patch+json",
            br#"{"data":{"colour":"green"}}"#,
        ),
    ];
    for (header, want, body) in cases {
        let r = recorded("patch", header, body, &hint);
        assert_eq!(
            r.annotations
                .get(CONTENT_TYPE_ANNOTATION)
                .map(String::as_str),
            Some(want),
            "{}",
            String::from_utf8_lossy(header)
        );
        assert!(r.request_object.is_some(), "{want}: the body is recorded");
    }
    // An apply's YAML is recorded as the object it is.
    let r = recorded(
        "patch",
        b"application/apply-patch+yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {colour: green}\n",
        &hint,
    );
    assert_eq!(
        r.request_object,
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c"}, "data": {"colour": "green"}}))
    );
}

#[test]
fn a_delete_with_options_is_recorded_masked_as_delete_options() {
    // On secrets: the options are not a Secret, and a planted key in them is masked all the same.
    let hint = Hint::for_resource("", "secrets", "");
    let body = br#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground","gracePeriodSeconds":0,"preconditions":{"resourceVersion":"AKIAIOSFODNN7EXAMPLE"}}"#;
    for verb in ["delete", "deletecollection"] {
        let r = recorded(verb, b"application/json", body, &hint);
        let object = r.request_object.as_ref().expect("the options are recorded");
        assert_eq!(object["propagationPolicy"], "Foreground", "{verb}");
        assert_eq!(object["gracePeriodSeconds"], 0, "{verb}");
        let text = object.to_string();
        assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"), "{verb}: {text}");
        assert!(
            !r.custos.masked.is_empty(),
            "{verb}: what was masked is counted"
        );
        assert_eq!(
            r.annotations
                .get(CONTENT_TYPE_ANNOTATION)
                .map(String::as_str),
            Some("application/json")
        );
    }
    // A delete without a body records nothing about one.
    let r = recorded("delete", b"application/json", b"", &hint);
    assert!(r.request_object.is_none() && r.annotations.is_empty());
}

#[test]
fn hostile_unknown_or_oversized_content_types_are_not_recorded() {
    let hint = Hint::default();
    let body = br#"{"data":{"colour":"green"}}"#;
    let long = format!("application/{}+json", "x".repeat(200));
    let long_params = format!("application/merge-patch+json; a={}", "b".repeat(4000));
    let hostile: [&[u8]; 8] = [
        long.as_bytes(),
        b"application/x-evil",
        b"text/html; <script>",
        b"application/merge-patch+json\xff",
        b"application/merge-patch+jsonx",
        b"application/json-patch+json, application/merge-patch+json",
        b"",
        b"custos.dev/content-type",
    ];
    for header in hostile {
        let r = recorded("patch", header, body, &hint);
        assert!(
            !r.annotations.contains_key(CONTENT_TYPE_ANNOTATION),
            "{:?} was recorded",
            String::from_utf8_lossy(header)
        );
        assert!(
            r.request_object.is_some(),
            "the body is recorded all the same"
        );
    }
    // Long parameters do not hide the type (the apiserver reads it the same way); nothing of them
    // is stored.
    let r = recorded("patch", long_params.as_bytes(), body, &hint);
    assert_eq!(
        r.annotations
            .get(CONTENT_TYPE_ANNOTATION)
            .map(String::as_str),
        Some("application/merge-patch+json")
    );
    // No header: no annotation.
    let mut r = request("patch");
    request_body(&mut r, &settings(), &hint, &HeaderMap::new(), body);
    assert!(r.annotations.is_empty());
}

#[test]
fn only_allow_listed_types_are_known() {
    for t in REQUEST_MEDIA_TYPES {
        assert_eq!(known_media_type(t), Some(t));
        assert_eq!(known_media_type(&t.to_ascii_uppercase()), Some(t));
    }
    assert_eq!(
        known_media_type("application/json;stream=watch"),
        Some("application/json")
    );
    assert_eq!(known_media_type("application/jsonp"), None);
    assert_eq!(known_media_type(""), None);
}

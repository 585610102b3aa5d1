use super::*;

fn t(s: &str) -> MicroTime {
    MicroTime::parse(s).expect("timestamp")
}

#[test]
fn microtime_round_trips_and_is_strict() {
    assert_eq!(
        MicroTime::from_unix_micros(0).expect("epoch").to_string(),
        "1970-01-01T00:00:00.000000Z"
    );
    let x = t("2024-02-29T23:59:59.123456Z");
    assert_eq!(x.unix_micros(), 1_709_251_199_123_456);
    assert_eq!(x.to_string(), "2024-02-29T23:59:59.123456Z");
    assert_eq!(
        t("9999-12-31T23:59:59.999999Z").to_string(),
        "9999-12-31T23:59:59.999999Z"
    );
    for bad in [
        "2023-02-29T00:00:00.000000Z",
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00.000000+00:00",
        "2024-01-01 00:00:00.000000Z",
        "1969-12-31T23:59:59.999999Z",
        "2024-13-01T00:00:00.000000Z",
        "2024-01-01T24:00:00.000000Z",
        "2024-01-01T00:00:60.000000Z",
        "+024-01-01T00:00:00.000000Z",
    ] {
        assert!(MicroTime::parse(bad).is_err(), "{bad}");
    }
    // Every day boundary over a few centuries survives the round trip.
    for days in (0..150_000u64).step_by(97) {
        let m = MicroTime::from_unix_micros(days * 86_400_000_000 + 1).expect("in range");
        assert_eq!(t(&m.to_string()), m);
    }
}

fn sample() -> Record {
    let mut r = Record::new(RecordKind::Request, t("2025-01-02T03:04:05.678901Z"));
    r.level = Some(Level::Metadata);
    r.audit_id = Some("5b6c7d8e-0000-4000-8000-000000000001".into());
    r.stage = Some(Stage::RequestReceived);
    r.request_uri = Some("/api/v1/namespaces/default/pods?limit=500".into());
    r.verb = Some("list".into());
    r.user = Some(UserInfo {
        username: "oidc:alice".into(),
        groups: vec!["oidc:sre".into()],
        ..Default::default()
    });
    r.source_ips = vec!["127.0.0.1".into()];
    r.object_ref = Some(ObjectReference {
        resource: Some("pods".into()),
        namespace: Some("default".into()),
        api_version: Some("v1".into()),
        ..Default::default()
    });
    r.request_received_timestamp = Some(t("2025-01-02T03:04:05.678000Z"));
    r.custos.gateway = Some("gw-0".into());
    r.custos.session = Some(SessionRef {
        id: "s-1".into(),
        intent: Some("rotate certs".into()),
        ticket: Some("OPS-7".into()),
    });
    r.custos.decision = Some(DecisionRecord {
        outcome: Outcome::Allow,
        policy_ids: vec!["read-only".into()],
        reason: None,
        annotations: BTreeMap::new(),
    });
    r.custos.bodies = Some(BodySizes {
        request: Some(0),
        response: None,
    });
    r
}

#[test]
fn record_canonical_form_is_stable() {
    let r = sample();
    let bytes = r.canonical_bytes().expect("canonical");
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    // Pinned: a change here changes every leaf hash, so it must be deliberate (bump SCHEMA_VERSION).
    assert_eq!(
        text,
        concat!(
            r#"{"auditID":"5b6c7d8e-0000-4000-8000-000000000001","custos":{"bodies":{"request":0},"#,
            r#""decision":{"outcome":"allow","policyIds":["read-only"]},"gateway":"gw-0","recordKind":"request","#,
            r#""session":{"id":"s-1","intent":"rotate certs","ticket":"OPS-7"},"v":1},"level":"Metadata","#,
            r#""objectRef":{"apiVersion":"v1","namespace":"default","resource":"pods"},"#,
            r#""requestReceivedTimestamp":"2025-01-02T03:04:05.678000Z","#,
            r#""requestURI":"/api/v1/namespaces/default/pods?limit=500","sourceIPs":["127.0.0.1"],"#,
            r#""stage":"RequestReceived","stageTimestamp":"2025-01-02T03:04:05.678901Z","#,
            r#""user":{"groups":["oidc:sre"],"username":"oidc:alice"},"verb":"list"}"#
        )
    );
    assert_eq!(Record::from_canonical(&bytes).expect("read back"), r);
    assert_eq!(
        r.leaf_hash().expect("hash"),
        crate::merkle::leaf_hash(&bytes)
    );
}

#[test]
fn unknown_kinds_and_fields_from_newer_writers_are_read() {
    let mut r = sample();
    r.custos.record_kind = RecordKind::parse("quantum-entangled");
    let mut v = serde_json::to_value(&r).expect("value");
    v["custos"]["futureField"] = serde_json::json!({"x": 1});
    let bytes = crate::canonical::from_value(&v).expect("canonical");
    let back = Record::from_canonical(&bytes).expect("lenient read");
    assert_eq!(
        back.custos.record_kind,
        RecordKind::Other("quantum-entangled".into())
    );
    assert_eq!(
        RecordKind::parse("approval-granted"),
        RecordKind::ApprovalGranted
    );
}

#[test]
fn non_canonical_bytes_are_refused() {
    let text = String::from_utf8(sample().canonical_bytes().expect("c")).expect("utf-8");
    let spaced = text.replacen(':', ": ", 1);
    assert!(Record::from_canonical(spaced.as_bytes()).is_err());
}

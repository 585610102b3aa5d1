//! Tests of sessions built from records: which session a record joins, the counts of `sessions list`,
//! the timeline of `sessions show` and its text.

use custos_audit::record::{
    ApprovalRef, Authentication, DecisionRecord, GrantRef, ObjectReference, Outcome, Record,
    RecordKind, ResponseStatus, SessionRef, StreamRef, UserInfo,
};
use custos_audit::MicroTime;

use super::timeline::{steps, Aggregator, Logged, SessionKey};
use super::view::{events, session_recordings};
use super::{clean, show_text};

fn t(s: u64) -> MicroTime {
    MicroTime::from_unix_micros(1_750_000_000_000_000 + s * 1_000_000).expect("time")
}

fn record(kind: RecordKind, audit: Option<&str>, at: u64) -> Record {
    let mut r = Record::new(kind, t(at));
    r.audit_id = audit.map(str::to_owned);
    r
}

fn in_session(mut r: Record, id: &str) -> Record {
    r.custos.session = Some(SessionRef {
        id: id.into(),
        intent: Some("rotate the banner".into()),
        ticket: Some("CHG-1".into()),
    });
    r
}

fn by(mut r: Record, user: &str, token: Option<&str>) -> Record {
    r.user = Some(UserInfo {
        username: user.into(),
        ..UserInfo::default()
    });
    r.custos.authn = Some(Authentication {
        method: "oidc".into(),
        issuer: None,
        token_id: token.map(str::to_owned),
    });
    r
}

fn logged(records: Vec<Record>) -> Vec<Logged> {
    records
        .into_iter()
        .enumerate()
        .map(|(i, record)| Logged {
            id: i as u64 + 1,
            leaf: Some(i as u64),
            record,
        })
        .collect()
}

/// A session: started, an allowed get, a reviewed delete approved by on-call, a denied patch whose
/// refusal record does not carry the session, and an exec with a recording.
fn session_records() -> Vec<Record> {
    let mut out = Vec::new();
    let mut started = by(record(RecordKind::SessionStarted, None, 0), "agent", None);
    started = in_session(started, "ss-1");
    out.push(started);

    let mut get = in_session(
        by(
            record(RecordKind::Request, Some("a1"), 1),
            "agent",
            Some("ss-1"),
        ),
        "ss-1",
    );
    get.verb = Some("get".into());
    get.object_ref = Some(ObjectReference {
        resource: Some("configmaps".into()),
        namespace: Some("prod".into()),
        name: Some("banner".into()),
        ..ObjectReference::default()
    });
    get.custos.decision = Some(decision(Outcome::Allow));
    let mut got = get.clone();
    got.custos.record_kind = RecordKind::Response;
    got.response_status = Some(ResponseStatus {
        code: Some(200),
        ..ResponseStatus::default()
    });
    got.custos.masked.insert("aws-key".into(), 2);
    out.extend([get.clone(), got]);

    let mut delete = get.clone();
    delete.audit_id = Some("a2".into());
    delete.verb = Some("delete".into());
    delete.custos.decision = Some(decision(Outcome::Review));
    out.push(delete.clone());
    let mut requested = in_session(record(RecordKind::ApprovalRequested, Some("a2"), 3), "ss-1");
    requested.custos.approval = Some(ApprovalRef {
        id: "rv-1".into(),
        ..ApprovalRef::default()
    });
    out.push(requested);
    let mut granted = record(RecordKind::ApprovalGranted, Some("a2"), 4);
    granted.user = Some(UserInfo {
        username: "oncall".into(),
        ..UserInfo::default()
    });
    granted.custos.approval = Some(ApprovalRef {
        id: "rv-1".into(),
        approvers: vec!["oncall".into()],
        justification: Some("CHG-1 approved\u{1b}[2J".into()),
        expires: None,
    });
    granted.custos.grant = Some(GrantRef {
        id: "gr-1".into(),
        expires: None,
    });
    out.push(granted.clone());
    let mut deleted = delete.clone();
    deleted.custos.record_kind = RecordKind::Response;
    deleted.custos.approval = granted.custos.approval.clone();
    deleted.response_status = Some(ResponseStatus {
        code: Some(200),
        ..ResponseStatus::default()
    });
    out.push(deleted);

    let mut patch = get.clone();
    patch.audit_id = Some("a3".into());
    patch.verb = Some("patch".into());
    patch.custos.decision = Some(decision(Outcome::Deny));
    out.push(patch);
    // The refusal: no session, no decision.
    let mut refused = by(
        record(RecordKind::Response, Some("a3"), 6),
        "agent",
        Some("ss-1"),
    );
    refused.response_status = Some(ResponseStatus {
        code: Some(403),
        reason: Some("Forbidden".into()),
        message: Some("denied by policy".into()),
    });
    refused.custos.error = Some("denied by policy".into());
    out.push(refused);

    let mut exec = get.clone();
    exec.audit_id = Some("a4".into());
    exec.verb = Some("create".into());
    exec.object_ref = Some(ObjectReference {
        resource: Some("pods".into()),
        subresource: Some("exec".into()),
        namespace: Some("prod".into()),
        name: Some("web-0".into()),
        ..ObjectReference::default()
    });
    out.push(exec.clone());
    for seq in 0..2u64 {
        let mut chunk = record(RecordKind::StreamChunk, Some("a4"), 8 + seq);
        chunk.custos.streams.push(StreamRef {
            recording: "a4.cast".into(),
            seq: Some(seq),
            offset: Some(seq * 10),
            bytes: 10,
            sha256: Some("00".into()),
            ..StreamRef::default()
        });
        out.push(chunk);
    }
    let mut closed = exec;
    closed.custos.record_kind = RecordKind::StreamClosed;
    closed
        .annotations
        .insert("custos.dev/exit-code".into(), "3".into());
    closed.custos.streams.push(StreamRef {
        recording: "a4.cast".into(),
        channel: Some("stdout".into()),
        bytes: 20,
        ..StreamRef::default()
    });
    out.push(closed);
    out
}

fn decision(outcome: Outcome) -> DecisionRecord {
    DecisionRecord {
        outcome,
        policy_ids: vec!["p1".into()],
        reason: None,
        annotations: Default::default(),
    }
}

#[test]
fn session_ids_parse_and_print_back() {
    for id in ["ss-abc", "oidc:sha256:0123", "client-cert:sha256:ff"] {
        let key = SessionKey::parse(id).expect(id);
        assert_eq!(key.id(), id);
    }
    assert_eq!(SessionKey::parse("ss-1").expect("id").kind(), "custos");
    assert_eq!(SessionKey::parse("oidc:jti-1").expect("id").kind(), "oidc");
    for bad in ["", "nothing", ":x", "oidc:"] {
        assert!(SessionKey::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn records_join_their_session_by_session_token_or_audit_id() {
    let mut all = session_records();
    // Another user's OIDC token without a session: an implicit session of its own.
    let mut other = by(
        record(RecordKind::Request, Some("b1"), 20),
        "bob",
        Some("jti-9"),
    );
    other.verb = Some("list".into());
    let mut other_resp = other.clone();
    other_resp.custos.record_kind = RecordKind::Response;
    all.extend([other, other_resp]);
    // A record with no session, credential or known audit id belongs to nothing.
    all.push(record(RecordKind::GatewayStarted, None, 21));
    let mut agg = Aggregator::default();
    for r in &all {
        agg.add(r);
    }
    let list = agg.finish();
    assert_eq!(list.len(), 2, "{list:?}");
    let s = &list[0];
    assert_eq!(s.id, "ss-1");
    assert_eq!(s.kind, "custos");
    assert_eq!(s.user, "agent");
    assert_eq!(s.intent.as_deref(), Some("rotate the banner"));
    assert_eq!(s.ticket.as_deref(), Some("CHG-1"));
    assert_eq!(
        (s.requests, s.denials, s.reviews, s.recordings),
        (4, 1, 1, 1)
    );
    assert_eq!(s.first, Some(t(0)));
    let b = &list[1];
    assert_eq!(
        (b.id.as_str(), b.kind.as_str(), b.user.as_str()),
        ("oidc:jti-9", "oidc", "bob")
    );
    assert_eq!(b.requests, 1);
}

#[test]
fn the_timeline_groups_each_request_with_its_decision_approval_status_and_recording() {
    let steps = steps(logged(session_records()));
    let events = events(&steps);
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "session-started",
            "request",
            "request",
            "request",
            "request"
        ]
    );
    let get = &events[1];
    assert_eq!(get.verb.as_deref(), Some("get"));
    assert_eq!(get.status.as_ref().and_then(|s| s.code), Some(200));
    assert_eq!(get.masked.response.get("aws-key"), Some(&2));
    let delete = &events[2];
    assert_eq!(
        delete.decision.as_ref().map(|d| d.outcome.as_str()),
        Some("review")
    );
    let approval = delete.approval.as_ref().expect("approval");
    assert_eq!(approval.outcome, "granted");
    assert_eq!(approval.approvers, vec!["oncall"]);
    assert!(
        steps[2].refused_by_custos().is_none(),
        "an approved review went through"
    );
    let patch = &events[3];
    assert_eq!(patch.status.as_ref().and_then(|s| s.code), Some(403));
    assert!(steps[3]
        .refused_by_custos()
        .is_some_and(|w| w.starts_with("denied by policy (p1)")));
    let exec = &events[4];
    assert_eq!(exec.resource.as_deref(), Some("pods/exec"));
    assert_eq!(exec.recordings.len(), 1);
    assert_eq!(exec.recordings[0].chunks, 2);
    assert_eq!(exec.recordings[0].bytes, 20);
    assert_eq!(exec.recordings[0].channels, vec!["stdout"]);
    assert!(exec.recordings[0].closed);
    assert_eq!(session_recordings(&steps), vec!["a4.cast"]);
    let json = serde_json::to_value(&events).expect("json");
    assert_eq!(json[2]["approval"]["id"], "rv-1");
    assert_eq!(json[1]["auditID"], "a1");
}

#[test]
fn show_text_is_one_line_per_step_and_never_drives_the_terminal() {
    let steps = steps(logged(session_records()));
    let mut agg = Aggregator::default();
    for l in steps.iter().flat_map(|s| &s.records) {
        agg.add(&l.record);
    }
    let summary = agg.finish().remove(0);
    let text = show_text(&summary, &events(&steps));
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(text.contains("intent      rotate the banner"), "{text}");
    assert!(
        text.contains("review rv-1 granted by oncall: CHG-1 approved?[2J"),
        "{text}"
    );
    assert!(
        text.contains("recording a4.cast (stdout; 2 chunks, 20 bytes, exit code 3)"),
        "{text}"
    );
    assert!(text.contains("deny:p1"), "{text}");
    assert!(
        text.contains("masked: 0 in the request, 2 in the response"),
        "{text}"
    );
    assert_eq!(clean("a\nb\u{7}", 10), "a?b?");
    assert_eq!(clean("abcdef", 3), "abc…");
}

/// The session's records in a real (SQLite) store, and what the loader and the export find there.
#[tokio::test]
async fn a_session_is_read_whole_from_the_store_also_records_without_its_id() {
    use custos_store::{LogStore, NewEntry};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = custos_store_sqlite::SqliteStore::open(dir.path().join("audit.db"))
        .await
        .expect("store");
    let mut batch = Vec::new();
    for r in session_records() {
        batch.push(NewEntry::new(r.canonical_bytes().expect("canonical")).expect("entry"));
    }
    // Someone else's request in between.
    let mut other = by(
        record(RecordKind::Request, Some("z9"), 5),
        "bob",
        Some("jti-2"),
    );
    other.verb = Some("list".into());
    batch.push(NewEntry::new(other.canonical_bytes().expect("canonical")).expect("entry"));
    store.enqueue(batch).await.expect("enqueue");

    let key = SessionKey::parse("ss-1").expect("key");
    let records = super::session_records(&store, &key, &super::Window::default())
        .await
        .expect("load");
    let kinds: Vec<String> = records
        .iter()
        .map(|l| l.record.custos.record_kind.to_string())
        .collect();
    // All 13 records of the session: the approval, the refusal and the chunks carry no session id.
    assert_eq!(records.len(), 13, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "stream-chunk").count(), 2);
    assert!(records
        .iter()
        .all(|l| l.record.audit_id.as_deref() != Some("z9")));
    let ids: Vec<u64> = records.iter().map(|l| l.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "log order");

    let list = super::list(&store, &super::Window::default())
        .await
        .expect("list");
    let ids: Vec<&str> = list.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, vec!["ss-1", "oidc:jti-2"]);

    // An export selecting only the records that carry the session still gets the stream's chunks.
    let selected = store
        .search(&custos_store::SearchQuery {
            session: Some("ss-1".into()),
            limit: 1000,
            ..custos_store::SearchQuery::default()
        })
        .await
        .expect("search");
    let mut streams = crate::recordings::StreamsOf::default();
    for e in &selected {
        streams.note(e);
    }
    let added = streams.missing_records(&store).await.expect("missing");
    assert_eq!(added.len(), 2, "the two chunk records");
    store.close().await;
}

#[test]
fn a_recording_without_its_stream_closed_record_is_shown_as_not_closed() {
    let mut records = session_records();
    records.retain(|r| r.custos.record_kind != RecordKind::StreamClosed);
    let steps = steps(logged(records));
    let mut agg = Aggregator::default();
    for l in steps.iter().flat_map(|s| &s.records) {
        agg.add(&l.record);
    }
    let summary = agg.finish().remove(0);
    let events = events(&steps);
    assert!(!events[4].recordings[0].closed);
    let text = show_text(&summary, &events);
    assert!(
        text.contains(
            "recording a4.cast (2 chunks, 20 bytes; not closed: still running, or its gateway stopped)"
        ),
        "{text}"
    );
}

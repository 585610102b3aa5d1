//! Sample records with predictable search columns: record `i` is by user `["alice", "bob", "carol"][i % 3]`,
//! in session `s-{i % 4}`, verb `["get", "list", "delete", "create", "patch"][i % 5]`, resource
//! `["pods", "secrets"][i % 2]`, audit id `a-{i}`, received at [`sample_time`]`(i)`.

use custos_audit::record::{ObjectReference, SessionRef, UserInfo};
use custos_audit::{MicroTime, Record, RecordKind};

const USERS: [&str; 3] = ["alice", "bob", "carol"];
const VERBS: [&str; 5] = ["get", "list", "delete", "create", "patch"];
const RESOURCES: [&str; 2] = ["pods", "secrets"];

/// When sample record `i` was received: one second apart from 2025-06-15T00:00:00Z.
pub fn sample_time(i: u64) -> MicroTime {
    MicroTime::from_unix_micros(1_749_945_600_000_000 + i * 1_000_000).expect("sample time")
}

/// The canonical bytes of sample record `i`.
pub fn sample_record(i: u64) -> Vec<u8> {
    let at = |n: usize| usize::try_from(i).expect("small index") % n;
    let mut r = Record::new(RecordKind::Request, sample_time(i));
    r.audit_id = Some(format!("a-{i}"));
    r.verb = Some(VERBS[at(VERBS.len())].to_owned());
    r.request_uri = Some(format!("/api/v1/namespaces/ns-{}/pods", at(7)));
    r.request_received_timestamp = Some(sample_time(i));
    r.user = Some(UserInfo {
        username: USERS[at(USERS.len())].to_owned(),
        ..UserInfo::default()
    });
    r.object_ref = Some(ObjectReference {
        resource: Some(RESOURCES[at(RESOURCES.len())].to_owned()),
        namespace: Some(format!("ns-{}", at(7))),
        ..ObjectReference::default()
    });
    r.custos.session = Some(SessionRef {
        id: format!("s-{}", at(4)),
        intent: Some("rotate the database credentials".into()),
        ticket: Some("OPS-1".into()),
    });
    r.canonical_bytes().expect("sample record is canonical")
}

/// Which sample indexes in `range` have `pred` true.
pub(crate) fn count(range: std::ops::Range<u64>, pred: impl Fn(u64) -> bool) -> usize {
    range.filter(|i| pred(*i)).count()
}

/// The user of sample record `i`.
pub(crate) fn user_of(i: u64) -> &'static str {
    USERS[(i % 3) as usize]
}

/// The verb of sample record `i`.
pub(crate) fn verb_of(i: u64) -> &'static str {
    VERBS[(i % 5) as usize]
}

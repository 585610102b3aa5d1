//! What goes into a store and what comes out: a [`NewEntry`] is a checked record with its leaf hash and
//! search columns; an [`Entry`] is a stored record found by search; a [`Leaf`] is a record at its place
//! in the log.

use custos_audit::canonical;
use custos_audit::merkle::{leaf_hash, Hash};
use custos_audit::MicroTime;
use serde_json::Value;

use crate::StoreError;

/// A record's id in the store, given when it is durably queued and kept for its life (before and
/// after it is sequenced into the log). Ids grow, but with several writers they need not be in the
/// order the records were sequenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(pub u64);

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The columns a store indexes for search, read from a record when it is queued. Absent fields and
/// values of the wrong type are `None`: search is a convenience, the record's bytes are the truth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFields {
    /// `user.username`.
    pub user: Option<String>,
    /// `custos.session.id`.
    pub session: Option<String>,
    /// `verb`.
    pub verb: Option<String>,
    /// `objectRef.resource`.
    pub resource: Option<String>,
    /// `objectRef.namespace`.
    pub namespace: Option<String>,
    /// `auditID` (a request and its response share it).
    pub audit_id: Option<String>,
    /// `custos.recordKind`.
    pub kind: Option<String>,
    /// `requestReceivedTimestamp`, else `stageTimestamp`, as microseconds since the Unix epoch.
    pub time: Option<u64>,
}

impl SearchFields {
    /// Reads the search columns from a record's JSON.
    pub fn from_json(record: &Value) -> SearchFields {
        let text = |path: &[&str]| -> Option<String> {
            let mut v = record;
            for key in path {
                v = v.get(key)?;
            }
            v.as_str().map(str::to_owned)
        };
        let time = text(&["requestReceivedTimestamp"])
            .or_else(|| text(&["stageTimestamp"]))
            .and_then(|t| MicroTime::parse(&t).ok())
            .map(|t| t.unix_micros());
        SearchFields {
            user: text(&["user", "username"]),
            session: text(&["custos", "session", "id"]),
            verb: text(&["verb"]),
            resource: text(&["objectRef", "resource"]),
            namespace: text(&["objectRef", "namespace"]),
            audit_id: text(&["auditID"]),
            kind: text(&["custos", "recordKind"]),
            time,
        }
    }
}

/// A record ready to be queued: its canonical bytes (exactly the future Merkle leaf), their leaf hash,
/// and its search columns. Built on the caller's task, so the single writer only writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    record: Vec<u8>,
    leaf_hash: Hash,
    fields: SearchFields,
}

impl NewEntry {
    /// Checks that `record` is canonical JSON (RFC 8785, as [`custos_audit::Record::canonical_bytes`]
    /// writes it), hashes it and reads its search columns.
    pub fn new(record: Vec<u8>) -> Result<NewEntry, StoreError> {
        canonical::check(&record).map_err(StoreError::NotCanonical)?;
        let json: Value = serde_json::from_slice(&record).map_err(|e| {
            StoreError::NotCanonical(canonical::CanonicalError::Json(e.to_string()))
        })?;
        Ok(NewEntry {
            leaf_hash: leaf_hash(&record),
            fields: SearchFields::from_json(&json),
            record,
        })
    }

    /// The canonical record bytes.
    pub fn record(&self) -> &[u8] {
        &self.record
    }

    /// SHA-256(0x00 || record).
    pub fn leaf_hash(&self) -> &Hash {
        &self.leaf_hash
    }

    /// The search columns.
    pub fn fields(&self) -> &SearchFields {
        &self.fields
    }
}

/// A stored record, as search finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its id.
    pub id: EntryId,
    /// Its leaf index, once sequenced.
    pub leaf_index: Option<u64>,
    /// Its canonical bytes.
    pub record: Vec<u8>,
}

/// A record at its place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// Its leaf index.
    pub index: u64,
    /// Its entry id.
    pub id: EntryId,
    /// Its canonical bytes (the leaf).
    pub record: Vec<u8>,
    /// The leaf hash stored beside the bytes (verification recomputes and compares it).
    pub leaf_hash: Hash,
}

/// An entry that [`LogStore::sequence`](crate::LogStore::sequence) put into the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequenced {
    /// The leaf index it was given.
    pub index: u64,
    /// Its entry id.
    pub id: EntryId,
    /// Its leaf hash.
    pub leaf_hash: Hash,
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_audit::record::{ObjectReference, SessionRef, UserInfo};
    use custos_audit::{Record, RecordKind};

    #[test]
    fn reads_search_columns_from_a_record() {
        let t = MicroTime::parse("2025-06-15T15:06:40.000002Z").expect("time");
        let mut r = Record::new(RecordKind::Request, t);
        r.verb = Some("delete".into());
        r.audit_id = Some("a-1".into());
        r.user = Some(UserInfo {
            username: "oidc:alice".into(),
            ..UserInfo::default()
        });
        r.object_ref = Some(ObjectReference {
            resource: Some("pods".into()),
            namespace: Some("prod".into()),
            ..ObjectReference::default()
        });
        r.custos.session = Some(SessionRef {
            id: "s-7".into(),
            ..SessionRef::default()
        });
        let e = NewEntry::new(r.canonical_bytes().expect("bytes")).expect("entry");
        assert_eq!(
            e.fields(),
            &SearchFields {
                user: Some("oidc:alice".into()),
                session: Some("s-7".into()),
                verb: Some("delete".into()),
                resource: Some("pods".into()),
                namespace: Some("prod".into()),
                audit_id: Some("a-1".into()),
                kind: Some("request".into()),
                time: Some(t.unix_micros()),
            }
        );
        assert_eq!(*e.leaf_hash(), r.leaf_hash().expect("hash"));
    }

    #[test]
    fn refuses_non_canonical_bytes() {
        assert!(matches!(
            NewEntry::new(b"{ \"a\": 1 }".to_vec()),
            Err(StoreError::NotCanonical(_))
        ));
        assert!(matches!(
            NewEntry::new(b"not json".to_vec()),
            Err(StoreError::NotCanonical(_))
        ));
        let e = NewEntry::new(br#"{"user":{"username":7}}"#.to_vec()).expect("canonical");
        assert_eq!(e.fields(), &SearchFields::default());
    }
}

//! What one audit record says. The top level is an `audit.k8s.io/v1` Event (same field names, same
//! meaning, absent fields omitted), so tools that read Kubernetes audit events read these too; what
//! Custos adds lives under one `custos` member ([`Extension`]).
//!
//! A record holds only masked content: bodies appear once the masker provides them; until then only
//! their sizes ([`BodySizes`]). Numbers are integers, timestamps are strings ([`MicroTime`]): nothing a
//! JSON implementation could round.

mod kind;
mod time;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use kind::{Outcome, RecordKind};
pub use time::{MicroTime, MicroTimeError};

use crate::canonical::{self, CanonicalError};
use crate::merkle::{leaf_hash, Hash};

/// The version of the record schema this crate writes, in `custos.v`.
pub const SCHEMA_VERSION: u32 = 1;

/// One entry of the audit log: a superset of the `audit.k8s.io/v1` Event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Event `level`: how much of the request and response the record carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// Event `auditID`: the request's Audit-ID, shared by its request and response records and sent
    /// upstream so the apiserver's own audit log correlates.
    #[serde(rename = "auditID", default, skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<String>,
    /// Event `stage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// Event `requestURI`: path and query as the client sent them.
    #[serde(
        rename = "requestURI",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub request_uri: Option<String>,
    /// Event `verb`: the Kubernetes verb (`get`, `list`, `watch`, `create`, …), not the HTTP method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    /// Event `user`: who authenticated to Custos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserInfo>,
    /// Event `impersonatedUser`: who the request acted as upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonated_user: Option<UserInfo>,
    /// Event `sourceIPs`: the client's address first, then any proxies'.
    #[serde(rename = "sourceIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub source_ips: Vec<String>,
    /// Event `userAgent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Event `objectRef`: what the request is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<ObjectReference>,
    /// Event `responseStatus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<ResponseStatus>,
    /// Event `requestObject`: the request body, masked. Absent until masking lands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_object: Option<Value>,
    /// Event `responseObject`: the response body, masked. Absent until masking lands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_object: Option<Value>,
    /// Event `requestReceivedTimestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_received_timestamp: Option<MicroTime>,
    /// Event `stageTimestamp`: when this record's stage was reached; every record has one.
    pub stage_timestamp: MicroTime,
    /// Event `annotations`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// What Custos adds.
    pub custos: Extension,
}

/// Event `level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    /// Metadata only.
    Metadata,
    /// Metadata and the request body.
    Request,
    /// Metadata, request and response bodies.
    RequestResponse,
}

/// Event `stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// The request was received, before it was forwarded.
    RequestReceived,
    /// Response headers were sent (long-running requests: watch, exec, logs -f).
    ResponseStarted,
    /// The response was sent in full.
    ResponseComplete,
    /// The request failed inside Custos.
    Panic,
}

/// `authentication.k8s.io/v1` UserInfo, as an Event carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The username, prefixed as configured (`oidc:alice`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// A stable unique id (the OIDC `sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Groups, prefixed as configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Extra attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Event `objectRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// Plural resource name (`pods`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Namespace, for namespaced resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Object UID, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// API group (`""` for the core group is written as absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Resource version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Subresource (`exec`, `log`, `status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
}

/// Event `responseStatus`: the parts of a `metav1.Status` an auditor needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseStatus {
    /// HTTP status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// `Status.reason` (`Forbidden`, `NotFound`), when the response was a Status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `Status.message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Custos's fields, under `custos`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub v: u32,
    /// What this record is.
    pub record_kind: RecordKind,
    /// The gateway instance that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// How the caller authenticated (method, issuer, token id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authn: Option<Authentication>,
    /// The agent session and its declared intent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionRef>,
    /// What policy decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionRecord>,
    /// The approval this record belongs to or relied on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRef>,
    /// The just-in-time grant this record belongs to or relied on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantRef>,
    /// Masked items by masking rule id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub masked: BTreeMap<String, u64>,
    /// Body sizes in bytes (bodies themselves are not stored until masking lands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bodies: Option<BodySizes>,
    /// Stream recordings (exec/attach channels, stream chunks) this record refers to, with hashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<StreamRef>,
    /// Port-forward facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_forward: Option<PortForward>,
    /// What went wrong inside Custos, for records of failed or cancelled requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How the caller proved who they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// `oidc`, `session`, `client-cert` or `static-token`.
    pub method: String,
    /// The token issuer (OIDC `iss`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The token's id (`jti`) or a session token's id; never the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

/// The agent session a request belongs to, and why it exists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRef {
    /// Session id.
    pub id: String,
    /// The declared intent: one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// The ticket the intent refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

/// What policy decided about a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// Allow, review or deny.
    pub outcome: Outcome,
    /// The ids of the policies that decided it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_ids: Vec<String>,
    /// The reason given to the client, for denials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Annotations of the deciding policies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An approval: the id, and for approval records, who decided, why and until when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRef {
    /// Approval (review) id.
    pub id: String,
    /// Approvers who decided, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Their justification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    /// When the approval lapses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<MicroTime>,
}

/// A just-in-time grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantRef {
    /// Grant id.
    pub id: String,
    /// When the grant lapses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<MicroTime>,
}

/// Body sizes in bytes, as received (request) and as returned to the client (response).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BodySizes {
    /// Request body bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<u64>,
    /// Response body bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<u64>,
}

/// A recorded stream (an exec channel, a recording file, one chunk of one): where it is and its hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamRef {
    /// The recording's id or path in the recording store.
    pub recording: String,
    /// Channel (`stdin`, `stdout`, `stderr`, `resize`, `data:8080`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Chunk sequence number, for stream-chunk records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Byte offset of the chunk within the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Bytes covered.
    pub bytes: u64,
    /// SHA-256 of the (masked) bytes covered, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// One forwarded port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortForward {
    /// The pod port.
    pub port: u16,
    /// Bytes from client to pod.
    #[serde(default)]
    pub bytes_in: u64,
    /// Bytes from pod to client.
    #[serde(default)]
    pub bytes_out: u64,
}

impl Record {
    /// A record of `kind` reached at `stage_timestamp`, every other field empty.
    pub fn new(kind: RecordKind, stage_timestamp: MicroTime) -> Record {
        Record {
            level: None,
            audit_id: None,
            stage: None,
            request_uri: None,
            verb: None,
            user: None,
            impersonated_user: None,
            source_ips: Vec::new(),
            user_agent: None,
            object_ref: None,
            response_status: None,
            request_object: None,
            response_object: None,
            request_received_timestamp: None,
            stage_timestamp,
            annotations: BTreeMap::new(),
            custos: Extension::new(kind),
        }
    }

    /// The record's canonical bytes (RFC 8785): exactly the Merkle leaf.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, CanonicalError> {
        canonical::to_vec(self)
    }

    /// The record's Merkle leaf hash: SHA-256(0x00 || canonical bytes).
    pub fn leaf_hash(&self) -> Result<Hash, CanonicalError> {
        Ok(leaf_hash(&self.canonical_bytes()?))
    }

    /// Reads a record from its canonical bytes, refusing bytes that are not canonical (so what is
    /// read is exactly what was hashed). Unknown fields from newer writers are ignored here, but they
    /// are still in the bytes and the hash.
    pub fn from_canonical(bytes: &[u8]) -> Result<Record, CanonicalError> {
        canonical::check(bytes)?;
        serde_json::from_slice(bytes).map_err(|e| CanonicalError::Json(e.to_string()))
    }
}

impl Extension {
    /// Custos fields of a record of `kind`, everything else empty.
    pub fn new(kind: RecordKind) -> Extension {
        Extension {
            v: SCHEMA_VERSION,
            record_kind: kind,
            gateway: None,
            authn: None,
            session: None,
            decision: None,
            approval: None,
            grant: None,
            masked: BTreeMap::new(),
            bodies: None,
            streams: Vec::new(),
            port_forward: None,
            error: None,
        }
    }
}

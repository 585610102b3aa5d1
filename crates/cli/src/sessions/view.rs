//! A session's timeline as `sessions show` prints it and `-o json` writes it (no I/O): one [`Event`]
//! per [`Step`], with its decision, review, grant, status, masked counts and recordings.

use std::collections::BTreeMap;

use custos_audit::record::RecordKind;
use custos_audit::MicroTime;
use serde::Serialize;

use super::timeline::Step;

/// One line of a session's timeline, as `sessions show` prints it (and `-o json` writes it).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// 1-based position in the timeline.
    pub index: usize,
    /// When the request was received (or the record written).
    pub time: Option<MicroTime>,
    /// `request` for API requests, else the record kind (`session-started`, …).
    pub kind: String,
    /// The audit ID shared by the request's records.
    #[serde(rename = "auditID", skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<String>,
    /// Leaf index of the step's first record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf: Option<u64>,
    /// Who acted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Kubernetes verb.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    /// Resource (with `/subresource`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Path and query as sent.
    #[serde(rename = "requestURI", skip_serializing_if = "Option::is_none")]
    pub request_uri: Option<String>,
    /// Policy's decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionView>,
    /// The review and who decided it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalView>,
    /// The just-in-time grant the request used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// The response status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusView>,
    /// Values masked in the request and the response, by rule.
    #[serde(skip_serializing_if = "MaskedView::is_empty")]
    pub masked: MaskedView,
    /// Stream recordings of this request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recordings: Vec<RecordingView>,
    /// What went wrong inside Custos.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A decision as shown.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionView {
    /// allow, review, deny.
    pub outcome: String,
    /// Deciding policy ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// The reason given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A review as shown.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalView {
    /// Review id.
    pub id: String,
    /// requested, granted, denied, expired.
    pub outcome: String,
    /// Who decided.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Their justification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
}

/// A response status as shown.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    /// HTTP code.
    pub code: Option<u16>,
    /// Status reason (Custos refusals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Status message (Custos refusals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Masked value counts by rule.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MaskedView {
    /// In the recorded request body.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub request: BTreeMap<String, u64>,
    /// In the response.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub response: BTreeMap<String, u64>,
}

impl MaskedView {
    /// Whether nothing was masked.
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.response.is_empty()
    }
}

/// A recording as shown.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingView {
    /// Its file name in the recordings directory.
    pub recording: String,
    /// Channels seen.
    pub channels: Vec<String>,
    /// Chunk records.
    pub chunks: u64,
    /// Bytes the chunks cover.
    pub bytes: u64,
    /// The command's exit code, when the stream recorded one (`custos.dev/exit-code`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Whether the log has its `stream-closed` record (else the stream is still running, or its
    /// gateway stopped before closing it).
    pub closed: bool,
}

/// The timeline of a session's steps.
pub fn events(steps: &[Step]) -> Vec<Event> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| event(i + 1, s))
        .collect()
}

fn event(index: usize, step: &Step) -> Event {
    let main = step.main();
    let object = main.object_ref.as_ref();
    let resource = object.and_then(|o| {
        o.resource.clone().map(|r| match &o.subresource {
            Some(sub) => format!("{r}/{sub}"),
            None => r,
        })
    });
    let kind = if step.is_request() {
        "request".to_owned()
    } else {
        main.custos.record_kind.to_string()
    };
    let response = step.response();
    Event {
        index,
        time: Some(step.time()),
        kind,
        audit_id: step.audit_id.clone(),
        leaf: step.records.first().and_then(|l| l.leaf),
        user: main.user.as_ref().map(|u| u.username.clone()),
        verb: main.verb.clone(),
        resource,
        namespace: object.and_then(|o| o.namespace.clone()),
        name: object
            .and_then(|o| o.name.clone())
            .or_else(|| created_name(step)),
        request_uri: main.request_uri.clone(),
        decision: step
            .request()
            .and_then(|r| r.custos.decision.as_ref())
            .map(|d| DecisionView {
                outcome: d.outcome.to_string(),
                policies: d.policy_ids.clone(),
                reason: d.reason.clone(),
            }),
        approval: approval(step),
        grant: step
            .records
            .iter()
            .find_map(|l| match l.record.custos.record_kind {
                RecordKind::Request | RecordKind::Response => l.record.custos.grant.as_ref(),
                _ => None,
            })
            .map(|g| g.id.clone()),
        status: response
            .and_then(|r| r.response_status.as_ref())
            .map(|s| StatusView {
                code: s.code,
                reason: s.reason.clone(),
                message: s.message.clone(),
            }),
        masked: MaskedView {
            request: step
                .request()
                .map(|r| r.custos.masked.clone())
                .unwrap_or_default(),
            response: response
                .map(|r| r.custos.masked.clone())
                .unwrap_or_default(),
        },
        recordings: recordings(step),
        error: response.and_then(|r| r.custos.error.clone()),
    }
}

/// The name a create request gives its object (the path has none), from the masked body.
fn created_name(step: &Step) -> Option<String> {
    let body = step.request()?.request_object.as_ref()?;
    let meta = body.get("metadata")?;
    meta.get("name")
        .or_else(|| meta.get("generateName"))
        .and_then(|n| n.as_str())
        .map(str::to_owned)
}

/// The review of a step: its last decision record (granted, denied, expired), else the request for
/// it, else the approval the response carries.
fn approval(step: &Step) -> Option<ApprovalView> {
    let mut found: Option<ApprovalView> = None;
    for l in &step.records {
        let r = &l.record;
        let outcome = match &r.custos.record_kind {
            RecordKind::ApprovalRequested => "requested",
            RecordKind::ApprovalGranted => "granted",
            RecordKind::ApprovalDenied => "denied",
            RecordKind::ApprovalExpired => "expired",
            RecordKind::Response if found.is_none() => "granted",
            _ => continue,
        };
        if let Some(a) = &r.custos.approval {
            found = Some(ApprovalView {
                id: a.id.clone(),
                outcome: outcome.to_owned(),
                approvers: a.approvers.clone(),
                justification: a.justification.clone(),
            });
        }
    }
    found
}

fn recordings(step: &Step) -> Vec<RecordingView> {
    let mut out: Vec<RecordingView> = Vec::new();
    for l in &step.records {
        for s in &l.record.custos.streams {
            let i = match out.iter().position(|r| r.recording == s.recording) {
                Some(i) => i,
                None => {
                    out.push(RecordingView {
                        recording: s.recording.clone(),
                        channels: Vec::new(),
                        chunks: 0,
                        bytes: 0,
                        exit_code: None,
                        closed: false,
                    });
                    out.len() - 1
                }
            };
            let view = &mut out[i];
            if let Some(c) = &s.channel {
                if !view.channels.contains(c) {
                    view.channels.push(c.clone());
                }
            }
            if l.record.custos.record_kind == RecordKind::StreamChunk {
                view.chunks += 1;
                view.bytes += s.bytes;
            }
            if l.record.custos.record_kind == RecordKind::StreamClosed {
                view.closed = true;
                if let Some(code) = l.record.annotations.get("custos.dev/exit-code") {
                    view.exit_code = code.parse().ok();
                }
            }
        }
    }
    out
}

/// The session's recordings in the order they were opened.
pub fn session_recordings(steps: &[Step]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for step in steps {
        for r in recordings(step) {
            if !out.contains(&r.recording) {
                out.push(r.recording);
            }
        }
    }
    out
}

//! The gateway's side of the audit log: building records from what a request carried and appending
//! them through the store's group-commit appender.
//!
//! The request record is appended — durably — before anything is forwarded; if that fails the request
//! is refused with 503 (fail closed). The response record follows when the response body ends or is
//! dropped (a cancelled watch still gets its record), and refusals are recorded too. Streams add
//! their own records (`stream-opened`, `stream-chunk`, `stream-closed`, `port-forward-*`; see
//! [`crate::stream_record`]), derived from the request record with [`Recorder::derived`]; exec and
//! attach recordings are written to the directory given with [`Recorder::with_recordings`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use custos_audit::record::{
    Authentication, BodySizes, MicroTime, ObjectReference, Record, RecordKind, ResponseStatus,
    Stage, UserInfo,
};
use custos_authn::{AuthMethod, Identity};
use custos_kube::RequestAttributes;
use custos_store::Appender;

use crate::{Body, BoxError};

#[cfg(test)]
mod tests;

/// Appends the gateway's records.
#[derive(Clone)]
pub struct Recorder {
    appender: Appender,
    gateway_id: Arc<str>,
    /// One clone per record still being appended in the background; see [`Recorder::flush`].
    in_flight: Arc<()>,
    /// Where exec/attach (and captured port-forward) recordings are written; without it those streams
    /// are refused (503).
    recordings: Option<custos_recording::Recordings>,
}

/// What the request looked like, kept to write its response record later.
#[derive(Clone)]
pub struct RequestFacts {
    /// The record as appended before forwarding; the response record copies its identifying fields.
    pub record: Record,
}

impl Recorder {
    /// A recorder appending through `appender`, stamping records with `gateway_id`.
    pub fn new(appender: Appender, gateway_id: impl Into<Arc<str>>) -> Self {
        Recorder {
            appender,
            gateway_id: gateway_id.into(),
            in_flight: Arc::new(()),
            recordings: None,
        }
    }

    /// Writes exec/attach (and captured port-forward) recordings to `recordings` (`recordings.dir`;
    /// by default the data dir's `recordings/`). Without one, exec and attach are refused: nothing
    /// streams unrecorded.
    pub fn with_recordings(mut self, recordings: custos_recording::Recordings) -> Self {
        self.recordings = Some(recordings);
        self
    }

    /// Where exec/attach recordings are written, if configured.
    pub fn recordings(&self) -> Option<&custos_recording::Recordings> {
        self.recordings.as_ref()
    }

    /// The gateway instance id stamped on records.
    pub fn gateway_id(&self) -> &str {
        &self.gateway_id
    }

    /// A record of `kind`, now, about the same request as `request` (audit id, who, what, session).
    pub fn derived(&self, kind: RecordKind, request: &Record) -> Record {
        let mut r = Record::new(kind, now());
        r.audit_id.clone_from(&request.audit_id);
        r.request_uri.clone_from(&request.request_uri);
        r.verb.clone_from(&request.verb);
        r.user.clone_from(&request.user);
        r.impersonated_user.clone_from(&request.impersonated_user);
        r.source_ips.clone_from(&request.source_ips);
        r.object_ref.clone_from(&request.object_ref);
        r.request_received_timestamp = request.request_received_timestamp;
        r.custos.gateway = Some(self.gateway_id.to_string());
        r.custos.authn.clone_from(&request.custos.authn);
        r.custos.session.clone_from(&request.custos.session);
        r
    }

    /// The request record, as received (before policy and forwarding).
    pub fn request_record(
        &self,
        audit_id: &str,
        req: &http::request::Parts,
        identity: &Identity,
        attrs: &RequestAttributes,
        peer: std::net::IpAddr,
        received: MicroTime,
    ) -> Record {
        let mut r = Record::new(RecordKind::Request, received);
        r.stage = Some(Stage::RequestReceived);
        r.audit_id = Some(audit_id.to_owned());
        r.request_uri = req.uri.path_and_query().map(|p| p.as_str().to_owned());
        r.verb = Some(attrs.verb.clone());
        r.user = Some(user_info(identity));
        r.source_ips = vec![peer.to_string()];
        r.user_agent = req
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect());
        r.request_received_timestamp = Some(received);
        if attrs.is_resource_request {
            r.object_ref = Some(ObjectReference {
                resource: non_empty(&attrs.resource),
                namespace: non_empty(&attrs.namespace),
                name: non_empty(&attrs.name),
                api_group: non_empty(&attrs.api_group),
                api_version: non_empty(&attrs.api_version),
                subresource: non_empty(&attrs.subresource),
                ..ObjectReference::default()
            });
        }
        r.custos.gateway = Some(self.gateway_id.to_string());
        r.custos.authn = Some(authentication(identity));
        r.custos.bodies = crate::sanitize::content_length(&req.headers).map(|n| BodySizes {
            request: Some(n),
            response: None,
        });
        r
    }

    /// Appends `record` durably. An error means the request must not be forwarded.
    pub async fn append(&self, record: &Record) -> Result<(), custos_store::StoreError> {
        self.appender.append_record(record).await.map(|_| ())
    }

    /// Appends a record without waiting for it (after the response: nothing left to refuse).
    pub fn append_later(&self, record: Record) {
        let this = self.clone();
        let token = self.in_flight.clone();
        tokio::spawn(async move {
            let _in_flight = token;
            if let Err(e) = this.append(&record).await {
                tracing::error!(audit_id = ?record.audit_id, error = %e, "audit record could not be written after the response");
            }
        });
    }

    /// Waits (at most `limit`) until every record appended in the background is durable; called at
    /// shutdown so the last responses' records are not lost.
    pub async fn flush(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        // Every clone of the recorder shares `in_flight`: response bodies still streaming and records
        // still being appended hold one each. At shutdown only the gateway's own is left when done.
        while Arc::strong_count(&self.in_flight) > 1 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }

    /// Records a refusal (authentication, sanitising, …) with what is known of the request.
    pub fn refusal(
        &self,
        audit_id: &str,
        req: &RefusedRequest,
        code: u16,
        reason: &str,
        message: &str,
    ) {
        let now = now();
        let mut r = Record::new(RecordKind::Response, now);
        r.stage = Some(Stage::ResponseComplete);
        r.audit_id = Some(audit_id.to_owned());
        r.request_uri = Some(req.uri.chars().take(4096).collect());
        r.verb = Some(req.method.to_ascii_lowercase());
        r.source_ips = vec![req.peer.to_string()];
        r.user = req.identity.as_ref().map(user_info);
        r.request_received_timestamp = Some(req.received);
        r.response_status = Some(ResponseStatus {
            code: Some(code),
            reason: Some(reason.to_owned()),
            message: Some(message.chars().take(1024).collect()),
        });
        r.custos.gateway = Some(self.gateway_id.to_string());
        r.custos.authn = req.identity.as_ref().map(authentication);
        r.custos.error = Some(message.chars().take(1024).collect());
        self.append_later(r);
    }

    /// Wraps a response so that its record is appended when the body ends or is dropped.
    pub fn on_response(
        &self,
        facts: RequestFacts,
        resp: http::Response<Body>,
        masking: crate::mask::SharedSummary,
    ) -> http::Response<Body> {
        let code = resp.status().as_u16();
        let recorder = self.clone();
        resp.map(|body| {
            let tracked = Tracked {
                inner: body,
                bytes: 0,
                finished: false,
                on_end: Some(Box::new(move |bytes: u64, finished: bool| {
                    let mut r = facts.record;
                    r.custos.record_kind = RecordKind::Response;
                    r.stage = Some(Stage::ResponseComplete);
                    r.stage_timestamp = now();
                    r.response_status = Some(ResponseStatus {
                        code: Some(code),
                        ..ResponseStatus::default()
                    });
                    let request = r.custos.bodies.as_ref().and_then(|b| b.request);
                    r.custos.bodies = Some(BodySizes {
                        request,
                        response: Some(bytes),
                    });
                    r.custos.masked.clear();
                    if let Ok(mut m) = masking.lock() {
                        r.custos.masked = m.counts.iter().map(|(k, n)| (k.to_owned(), n)).collect();
                        if let Some(body) = m.body.take() {
                            r.response_object = serde_json::from_slice(&body).ok().map(storable);
                        }
                        if !m.profile.is_empty() && m.profile != "default" {
                            r.annotations
                                .insert("custos.dev/mask-profile".into(), m.profile.clone());
                        }
                        if let Some(note) = &m.note {
                            r.annotations
                                .insert("custos.dev/mask".into(), note.chars().take(512).collect());
                        }
                    }
                    if !finished {
                        r.custos.error = Some(
                            "response body not completed (client went away or stream ended early)"
                                .into(),
                        );
                    }
                    recorder.append_later(r);
                })),
            };
            http_body_util::BodyExt::boxed(tracked)
        })
    }
}

/// The request record's annotation naming the media type of the body it carries.
pub const CONTENT_TYPE_ANNOTATION: &str = "custos.dev/content-type";

/// The request media types Kubernetes reads: the only values [`CONTENT_TYPE_ANNOTATION`] takes.
pub const REQUEST_MEDIA_TYPES: [&str; 9] = [
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/cbor",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/apply-patch+cbor",
];

/// Longest media type (type/subtype, before any parameter) looked at; longer is not recorded.
const MAX_MEDIA_TYPE: usize = 100;

/// The known request media type `s` names: its type/subtype (parameters dropped, whitespace trimmed,
/// case ignored) when that is one of [`REQUEST_MEDIA_TYPES`]; `None` for anything else.
pub fn known_media_type(s: &str) -> Option<&'static str> {
    let essence = s.split(';').next().unwrap_or_default().trim();
    if essence.len() > MAX_MEDIA_TYPE {
        return None;
    }
    REQUEST_MEDIA_TYPES
        .into_iter()
        .find(|t| t.eq_ignore_ascii_case(essence))
}

/// The media type of a request's body as recorded: the first `Content-Type` header (the one the
/// apiserver reads) when it names a known type; `None` when absent, unknown, over-long or not text.
/// Only an allow-listed constant is ever recorded, never the client's bytes.
pub fn request_media_type(headers: &http::HeaderMap) -> Option<&'static str> {
    let value = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    known_media_type(value)
}

/// Whether the body of a request with `verb` is `DeleteOptions` rather than an object.
pub fn is_delete(verb: &str) -> bool {
    matches!(verb, "delete" | "deletecollection")
}

/// Adds what a request body says to its request record: the body masked strictly (JSON or YAML;
/// other bodies stay recorded by size) with what was masked, and its media type
/// ([`CONTENT_TYPE_ANNOTATION`]). A delete's body is masked as `DeleteOptions`, not as the object.
pub fn request_body(
    record: &mut Record,
    masking: &crate::mask::MaskSettings,
    hint: &custos_mask::Hint,
    headers: &http::HeaderMap,
    body: &[u8],
) {
    if body.is_empty() {
        return;
    }
    if let Some(media_type) = request_media_type(headers) {
        record
            .annotations
            .insert(CONTENT_TYPE_ANNOTATION.into(), media_type.into());
    }
    let options;
    let hint = if record.verb.as_deref().is_some_and(is_delete) {
        options = custos_mask::Hint {
            kind: Some("DeleteOptions".into()),
            exempt: hint.exempt.clone(),
        };
        &options
    } else {
        hint
    };
    if let Some((object, counts)) = crate::mask::request_object(masking, hint, body) {
        record.request_object = Some(storable(object));
        record.custos.masked = counts.iter().map(|(k, n)| (k.to_owned(), n)).collect();
    }
}

/// A masked body made fit for the canonical log: numbers that are not integers (rare in Kubernetes
/// objects; the canonical form refuses them) become their decimal strings.
pub fn storable(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => Value::String(n.to_string()),
        Value::Array(a) => Value::Array(a.into_iter().map(storable).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, storable(v))).collect()),
        other => other,
    }
}

/// What is known about a request that was refused before (or while) it was classified.
pub struct RefusedRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query as sent.
    pub uri: String,
    /// The client's address.
    pub peer: std::net::IpAddr,
    /// The identity, when authentication succeeded.
    pub identity: Option<Identity>,
    /// When the request arrived.
    pub received: MicroTime,
}

/// The current time as a record timestamp (a clock before 1970 reads as the epoch).
pub fn now() -> MicroTime {
    MicroTime::from_system_time(SystemTime::now())
        .or_else(|_| MicroTime::from_unix_micros(0))
        .expect("the epoch is a valid record time")
}

/// The identity's user as a record carries it.
pub fn user_info(identity: &Identity) -> UserInfo {
    UserInfo {
        username: identity.user.username.clone(),
        uid: identity.user.uid.clone(),
        groups: identity.user.groups.clone(),
        extra: identity.user.extra.clone(),
    }
}

fn authentication(identity: &Identity) -> Authentication {
    let (method, issuer) = match &identity.method {
        AuthMethod::Oidc { issuer } => ("oidc", Some(issuer.clone())),
        AuthMethod::ClientCert => ("client-cert", None),
        AuthMethod::StaticToken => ("static-token", None),
    };
    Authentication {
        method: method.into(),
        issuer,
        token_id: identity.token_id.clone(),
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

type OnEnd = Box<dyn FnOnce(u64, bool) + Send + Sync>;

/// A body that counts its bytes and calls `on_end` once: at its end, or when dropped before it.
struct Tracked {
    inner: Body,
    bytes: u64,
    finished: bool,
    on_end: Option<OnEnd>,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.bytes += d.len() as u64;
                }
            }
            Poll::Ready(None) => {
                this.finished = true;
                if let Some(f) = this.on_end.take() {
                    f(this.bytes, true);
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(f) = self.on_end.take() {
            let finished = self.finished || self.inner.is_end_stream();
            f(self.bytes, finished);
        }
    }
}

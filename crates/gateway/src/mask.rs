//! The mask step: every response body, stream and record leaves the gateway masked. Content
//! negotiation keeps responses in a form Custos can parse (JSON, text); the body is masked as it
//! streams (JSON by Kubernetes kind, text length-preserving); what cannot be parsed is refused with 502
//! unless the caller's profile says otherwise. The profile comes from policy (`@mask("name")`).

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;

use custos_mask::{
    Detector, Hint, JsonMasker, MaskCounts, Profile, RuleError, TextMasker, Unparseable,
};
use custos_policy::Decision;

use crate::error::GatewayError;
use crate::{Body, BoxError};

/// How much masked output an ordinary response reads ahead before its status line goes out.
const READ_AHEAD: usize = 64 * 1024;

/// What responses, streams and records are masked with.
#[derive(Debug, Clone)]
pub struct MaskSettings {
    /// The compiled detectors (built-in plus the operator's rules), built once per process.
    pub detector: &'static Detector,
    /// Named profiles policy can select with `@mask("name")`; anything else gets the strict default.
    pub profiles: BTreeMap<String, Profile>,
    /// Largest single object (or list frame) a JSON response may hold; larger is refused.
    pub max_object_bytes: usize,
    /// Largest masked response body kept in an audit record; larger ones are recorded by size only.
    pub record_body_bytes: usize,
    /// Idle time after which a terminal or log stream's held-back bytes are flushed (masked).
    pub idle_flush: Duration,
}

/// The built-in detectors, compiled once.
pub fn builtin_detector() -> Result<&'static Detector, RuleError> {
    static BUILTIN: OnceLock<Detector> = OnceLock::new();
    if let Some(d) = BUILTIN.get() {
        return Ok(d);
    }
    let d = Detector::builtin()?;
    Ok(BUILTIN.get_or_init(|| d))
}

impl MaskSettings {
    /// Settings with `detector` and defaults: no named profiles, 64 MiB per object, 1 MiB of masked
    /// body per record, 25 ms idle flush.
    pub fn new(detector: &'static Detector) -> Self {
        Self {
            detector,
            profiles: BTreeMap::new(),
            max_object_bytes: custos_mask::DEFAULT_MAX_OBJECT,
            record_body_bytes: 1024 * 1024,
            idle_flush: Duration::from_millis(25),
        }
    }
}

/// The profile a request's response is masked with, and its name for the record.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// `default` for the strict profile, else the configured name.
    pub name: String,
    /// The profile itself.
    pub profile: Profile,
}

impl MaskSettings {
    /// The profile the deciding policies name with `@mask("name")`: every deciding permit must name
    /// the same configured profile. Otherwise (no name, a permit without one, different names, a name
    /// not configured) the strict default — fail closed, with a warning for the last two.
    pub fn choose(&self, decision: Option<&Decision>) -> Chosen {
        let strict = Chosen {
            name: "default".into(),
            profile: Profile::strict(),
        };
        let Some(d) = decision else { return strict };
        let names: Vec<Option<&str>> = d
            .policy_ids
            .iter()
            .map(|id| {
                d.annotations
                    .get(id)
                    .and_then(|a| a.get("mask"))
                    .map(String::as_str)
            })
            .collect();
        let Some(Some(name)) = names.first().copied() else {
            return strict;
        };
        if names.iter().any(|n| *n != Some(name)) {
            tracing::warn!(policies = ?d.policy_ids, "deciding policies name different mask profiles; masking everything");
            return strict;
        }
        match self.profiles.get(name) {
            Some(p) => Chosen {
                name: name.to_owned(),
                profile: p.clone(),
            },
            None => {
                tracing::warn!(
                    profile = name,
                    "policy names a mask profile that is not configured; masking everything"
                );
                strict
            }
        }
    }
}

/// The apiserver's OpenAPI schemas (`/openapi/v2`, `/openapi/v3/...`): descriptions of types, not
/// cluster data. They keep the client's content negotiation (kubectl 1.27 reads v2 as protobuf) and
/// pass unmasked.
pub fn is_schema(path: &str) -> bool {
    path == "/openapi/v2" || path.starts_with("/openapi/")
}

/// Rewrites the client's `Accept` so the apiserver answers in a form Custos can mask (JSON, not
/// protobuf, CBOR or YAML), and asks for an uncompressed body.
pub fn negotiate(headers: &mut HeaderMap) {
    if let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        let kept: Vec<&str> = accept
            .split(',')
            .map(str::trim)
            .filter(|m| {
                let t = m
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                !(t.contains("protobuf") || t.contains("cbor") || t.contains("yaml"))
            })
            .collect();
        let value = if kept.is_empty() {
            "application/json".to_owned()
        } else {
            kept.join(", ")
        };
        if value != accept {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(header::ACCEPT, v);
            }
        }
    } else {
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, */*"),
        );
    }
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
}

/// The masked request body for the record (strict profile), with what was masked; `None` for a body
/// that is neither JSON nor YAML (recorded by size only).
pub fn request_object(
    settings: &MaskSettings,
    hint: &Hint,
    body: &[u8],
) -> Option<(serde_json::Value, MaskCounts)> {
    if body.is_empty() {
        return None;
    }
    let mut v: serde_json::Value = serde_json::from_slice(body)
        .ok()
        .or_else(|| serde_yaml_ng::from_slice(body).ok())?;
    let counts = custos_mask::mask_document(settings.detector, &Profile::strict(), hint, &mut v);
    Some((v, counts))
}

/// What masking a response did, for its record: filled in as the body streams.
#[derive(Debug, Default)]
pub struct MaskSummary {
    /// The profile's name.
    pub profile: String,
    /// Items masked in what the client received, by rule.
    pub counts: MaskCounts,
    /// The strictly masked JSON body, when it fit the record bound.
    pub body: Option<Vec<u8>>,
    /// Why the body is not fully masked or recorded (passed by profile, too large, failed).
    pub note: Option<String>,
}

/// A summary shared between the masked body and the response record.
pub type SharedSummary = Arc<Mutex<MaskSummary>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Text,
    Opaque,
}

fn kind_of(content_type: Option<&str>) -> Kind {
    let Some(ct) = content_type else {
        return Kind::Opaque;
    };
    let t = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if t == "application/json" || (t.starts_with("application/") && t.ends_with("+json")) {
        Kind::Json
    } else if t.starts_with("text/") {
        Kind::Text
    } else {
        Kind::Opaque
    }
}

/// Where a response goes through the masker, and how.
#[derive(Debug, Clone)]
pub struct ResponseContext<'a> {
    /// The profile.
    pub chosen: &'a Chosen,
    /// What the request said about the object kind.
    pub hint: Hint,
    /// The request path (non-resource schema paths may pass unparsed).
    pub path: &'a str,
    /// A long-running response (watch, follow): no read-ahead, idle flushes.
    pub streaming: bool,
    /// The request method was HEAD (no body).
    pub head: bool,
}

/// Puts `resp`'s body through the masker. Refuses (502) a body Custos cannot parse, unless the
/// profile passes it; for ordinary responses the body is read until the first masked bytes, so a
/// malformed one is refused before the client sees a status line.
pub async fn response(
    settings: &MaskSettings,
    ctx: ResponseContext<'_>,
    resp: Response<Body>,
    summary: SharedSummary,
) -> Result<Response<Body>, GatewayError> {
    let (mut parts, body) = resp.into_parts();
    if let Ok(mut s) = summary.lock() {
        s.profile.clone_from(&ctx.chosen.name);
    }
    let no_body = ctx.head
        || matches!(
            parts.status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        );
    if no_body {
        return Ok(Response::from_parts(parts, body));
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let gzip = match parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => false,
        Some(e) if e == "identity" => false,
        Some(e) if e == "gzip" => true,
        Some(e) => {
            return Err(GatewayError::Unmaskable(format!(
                "the API server answered with content encoding {e:?}, which Custos cannot decode"
            )))
        }
    };
    let engine = match kind_of(content_type.as_deref()) {
        Kind::Json => {
            let mut m = JsonMasker::new(
                settings.detector,
                ctx.chosen.profile.clone(),
                ctx.hint.clone(),
                settings.max_object_bytes,
            );
            if !ctx.streaming {
                m = m.with_record(settings.record_body_bytes);
            }
            Engine::Json(Box::new(m))
        }
        Kind::Text => Engine::Text(Box::new(TextMasker::new(settings.detector))),
        Kind::Opaque => {
            let ct = content_type.as_deref().unwrap_or("no content type");
            let schema = is_schema(ctx.path);
            if schema || ctx.chosen.profile.unparseable == Unparseable::Pass {
                if let Ok(mut s) = summary.lock() {
                    s.note = Some(format!(
                        "{ct} passed unmasked ({})",
                        if schema { "API schema" } else { "profile" }
                    ));
                }
                return Ok(Response::from_parts(parts, body));
            }
            return Err(GatewayError::Unmaskable(format!(
                "the API server answered with {ct}, which Custos cannot mask; ask for application/json"
            )));
        }
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    let mut masked = MaskedBody {
        inner: body,
        gunzip: gzip.then(|| flate2::write::GzDecoder::new(Vec::new())),
        engine,
        pending: None,
        ended: false,
        idle: ctx.streaming.then_some(settings.idle_flush),
        timer: None,
        dirty: false,
        summary,
    };
    if !ctx.streaming {
        // Read ahead (bounded) so that a body Custos cannot mask is refused with a Status before the
        // client sees a status line, and a small body goes out whole with its length.
        let mut head = bytes::BytesMut::new();
        while head.len() < READ_AHEAD {
            match std::future::poll_fn(|cx| Pin::new(&mut masked).poll_frame(cx)).await {
                Some(Ok(frame)) => {
                    if let Ok(d) = frame.into_data() {
                        head.extend_from_slice(&d);
                    }
                }
                Some(Err(e)) => return Err(GatewayError::Unmaskable(e.to_string())),
                None => break,
            }
        }
        if masked.ended && masked.pending.is_none() {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(head.len()));
        }
        if !head.is_empty() {
            masked.pending = Some(head.freeze());
        }
    }
    Ok(Response::from_parts(parts, masked.boxed()))
}

enum Engine {
    Json(Box<JsonMasker<'static>>),
    Text(Box<TextMasker<'static>>),
}

/// Why a masked body stopped: the client sees a broken stream, never unmasked bytes.
#[derive(Debug, thiserror::Error)]
#[error("Custos stopped the response: {0}")]
pub struct MaskFailed(String);

/// A response body streamed through the masker.
struct MaskedBody {
    inner: Body,
    gunzip: Option<flate2::write::GzDecoder<Vec<u8>>>,
    engine: Engine,
    pending: Option<Bytes>,
    ended: bool,
    idle: Option<Duration>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Bytes went in since the last flush.
    dirty: bool,
    summary: SharedSummary,
}

impl MaskedBody {
    fn feed(&mut self, data: &[u8]) -> Result<Vec<u8>, MaskFailed> {
        let decoded;
        let input: &[u8] = match &mut self.gunzip {
            Some(gz) => {
                gz.write_all(data)
                    .map_err(|e| MaskFailed(format!("gzip: {e}")))?;
                decoded = std::mem::take(gz.get_mut());
                &decoded
            }
            None => data,
        };
        let mut out = Vec::with_capacity(input.len() + 64);
        match &mut self.engine {
            Engine::Json(m) => m
                .push(input, &mut out)
                .map_err(|e| MaskFailed(e.to_string()))?,
            Engine::Text(m) => {
                m.push(input, &mut out);
                self.dirty = true;
            }
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<u8>, MaskFailed> {
        let mut out = Vec::new();
        if let Some(gz) = self.gunzip.take() {
            let rest = gz.finish().map_err(|e| MaskFailed(format!("gzip: {e}")))?;
            if !rest.is_empty() {
                self.gunzip = None;
                out = self.feed_plain(&rest)?;
            }
        }
        match &mut self.engine {
            Engine::Json(m) => {
                m.finish(&mut out).map_err(|e| MaskFailed(e.to_string()))?;
                let body = m.take_record();
                if let Ok(mut s) = self.summary.lock() {
                    match body {
                        Some(b) => s.body = Some(b),
                        None if s.note.is_none() => {
                            s.note = Some(
                                "response body larger than the record bound: recorded by size"
                                    .into(),
                            )
                        }
                        None => {}
                    }
                }
            }
            Engine::Text(m) => m.flush(&mut out),
        }
        Ok(out)
    }

    fn feed_plain(&mut self, data: &[u8]) -> Result<Vec<u8>, MaskFailed> {
        let mut out = Vec::new();
        match &mut self.engine {
            Engine::Json(m) => m
                .push(data, &mut out)
                .map_err(|e| MaskFailed(e.to_string()))?,
            Engine::Text(m) => m.push(data, &mut out),
        }
        Ok(out)
    }

    fn idle_flush(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Engine::Text(m) = &mut self.engine {
            // A held partial secret leaves masked; what was emitted stays context for the next bytes.
            m.flush_idle(&mut out);
        }
        self.dirty = false;
        out
    }

    fn counts(&self) -> MaskCounts {
        match &self.engine {
            Engine::Json(m) => m.counts().clone(),
            Engine::Text(m) => m.counts().clone(),
        }
    }

    fn fail(&mut self, e: MaskFailed) -> BoxError {
        self.ended = true;
        if let Ok(mut s) = self.summary.lock() {
            s.note = Some(e.0.clone());
        }
        tracing::warn!(error = %e, "response stopped: it could not be masked");
        Box::new(e)
    }
}

impl HttpBody for MaskedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(b) = this.pending.take() {
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers: Kubernetes sends none; dropped
                    };
                    this.timer = None;
                    match this.feed(&data) {
                        Ok(out) if !out.is_empty() => this.pending = Some(out.into()),
                        Ok(_) => {}
                        Err(e) => return Poll::Ready(Some(Err(this.fail(e)))),
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.ended = true;
                    if let Ok(mut s) = this.summary.lock() {
                        s.note = Some(format!("upstream body failed: {e}"));
                    }
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => match this.finish() {
                    Ok(out) => {
                        this.ended = true;
                        if !out.is_empty() {
                            this.pending = Some(out.into());
                        }
                    }
                    Err(e) => return Poll::Ready(Some(Err(this.fail(e)))),
                },
                Poll::Pending => {
                    let Some(idle) = this.idle.filter(|_| this.dirty) else {
                        return Poll::Pending;
                    };
                    let timer = this
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.timer = None;
                    let out = this.idle_flush();
                    if out.is_empty() {
                        return Poll::Pending;
                    }
                    this.pending = Some(out.into());
                }
            }
        }
    }
}

impl Drop for MaskedBody {
    fn drop(&mut self) {
        let counts = self.counts();
        if let Ok(mut s) = self.summary.lock() {
            s.counts = counts;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_policy::Outcome;
    use futures_util::StreamExt;
    use http_body_util::{BodyExt, StreamBody};

    fn settings() -> MaskSettings {
        let mut s = MaskSettings::new(builtin_detector().expect("test step"));
        s.profiles.insert(
            "deploy".into(),
            serde_yaml_ng::from_str("helmReleases: reveal").expect("test step"),
        );
        s
    }

    fn decision(masks: &[Option<&str>]) -> Decision {
        let ids: Vec<String> = (0..masks.len()).map(|i| format!("p{i}")).collect();
        Decision {
            outcome: Outcome::Allow,
            policy_ids: ids.clone(),
            annotations: ids
                .iter()
                .zip(masks)
                .map(|(id, m)| {
                    let mut a = BTreeMap::new();
                    if let Some(m) = m {
                        a.insert("mask".to_owned(), (*m).to_owned());
                    }
                    (id.clone(), a)
                })
                .collect(),
            reasons: vec![],
            review: None,
            errors: vec![],
        }
    }

    #[test]
    fn the_profile_is_the_one_every_deciding_permit_names_else_strict() {
        let s = settings();
        assert_eq!(s.choose(None).name, "default");
        assert_eq!(s.choose(Some(&decision(&[Some("deploy")]))).name, "deploy");
        assert_eq!(
            s.choose(Some(&decision(&[Some("deploy"), Some("deploy")])))
                .name,
            "deploy"
        );
        assert_eq!(
            s.choose(Some(&decision(&[Some("deploy"), None]))).name,
            "default",
            "a permit that names no profile keeps everything masked"
        );
        assert_eq!(
            s.choose(Some(&decision(&[Some("nope")]))).name,
            "default",
            "an unknown profile masks everything"
        );
        assert!(s
            .choose(Some(&decision(&[Some("nope")])))
            .profile
            .is_strict());
    }

    #[test]
    fn accept_is_narrowed_to_json_and_compression_declined() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.kubernetes.protobuf, application/json"),
        );
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        negotiate(&mut h);
        assert_eq!(h[header::ACCEPT], "application/json");
        assert_eq!(h[header::ACCEPT_ENCODING], "identity");

        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(table));
        negotiate(&mut h);
        assert_eq!(
            h[header::ACCEPT],
            "application/json;as=Table;v=v1;g=meta.k8s.io, application/json"
        );

        for only in [
            "application/vnd.kubernetes.protobuf",
            "application/cbor",
            "application/yaml",
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(only));
            negotiate(&mut h);
            assert_eq!(h[header::ACCEPT], "application/json", "{only}");
        }
    }

    fn upstream(content_type: &str, chunks: Vec<Vec<u8>>) -> Response<Body> {
        let stream = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, BoxError>(Frame::data(Bytes::from(c)))),
        );
        let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("test step"),
        );
        r
    }

    fn ctx(chosen: &Chosen) -> ResponseContext<'_> {
        ResponseContext {
            chosen,
            hint: Hint::default(),
            path: "/api/v1/namespaces/a/secrets/s",
            streaming: false,
            head: false,
        }
    }

    fn strict() -> Chosen {
        Chosen {
            name: "default".into(),
            profile: Profile::strict(),
        }
    }

    const SECRET: &str = r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s"},"data":{"p":"aHVudGVyMi1wbGFudGVk"}}"#;

    #[tokio::test]
    async fn a_json_response_is_masked_has_its_length_and_fills_the_summary() {
        let s = settings();
        let chosen = strict();
        let sum = SharedSummary::default();
        let resp = upstream(
            "application/json",
            vec![
                SECRET.as_bytes()[..20].to_vec(),
                SECRET.as_bytes()[20..].to_vec(),
            ],
        );
        let resp = response(&s, ctx(&chosen), resp, sum.clone())
            .await
            .expect("test step");
        let len: usize = resp.headers()[header::CONTENT_LENGTH]
            .to_str()
            .expect("test step")
            .parse()
            .expect("test step");
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("test step")
            .to_bytes();
        assert_eq!(body.len(), len);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("test step");
        assert_eq!(v["data"]["p"], custos_mask::MARKER_BASE64);
        let sum = sum.lock().expect("test step");
        assert_eq!(sum.counts.get("k8s-secret-data"), 1);
        assert!(sum.body.is_some(), "the masked body is kept for the record");
    }

    #[tokio::test]
    async fn a_gzip_response_is_decoded_and_masked() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(SECRET.as_bytes()).expect("test step");
        let gz = enc.finish().expect("test step");
        let mut resp = upstream(
            "application/json",
            vec![gz[..10].to_vec(), gz[10..].to_vec()],
        );
        resp.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let s = settings();
        let chosen = strict();
        let resp = response(&s, ctx(&chosen), resp, SharedSummary::default())
            .await
            .expect("test step");
        assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("test step")
            .to_bytes();
        assert!(!String::from_utf8_lossy(&body).contains("aHVudGVyMi1wbGFudGVk"));
    }

    #[tokio::test]
    async fn protobuf_broken_json_and_unknown_encodings_are_refused_with_502() {
        let s = settings();
        let chosen = strict();
        let cases = [
            upstream(
                "application/vnd.kubernetes.protobuf",
                vec![b"k8s\0...".to_vec()],
            ),
            upstream(
                "application/json",
                vec![b"{\"kind\":\"Secret\",\"data\":".to_vec()],
            ),
            upstream("application/octet-stream", vec![b"\x00\x01".to_vec()]),
            {
                let mut r = upstream("application/json", vec![SECRET.as_bytes().to_vec()]);
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
                r
            },
        ];
        for resp in cases {
            let ct = resp.headers()[header::CONTENT_TYPE].clone();
            let err = response(&s, ctx(&chosen), resp, SharedSummary::default())
                .await
                .expect_err("refused");
            assert!(matches!(err, GatewayError::Unmaskable(_)), "{ct:?}: {err}");
            let (status, _) = crate::rescue::status_for(&err);
            assert_eq!(status.code, 502);
        }
    }

    #[tokio::test]
    async fn a_profile_may_pass_what_cannot_be_parsed_and_the_summary_says_so() {
        let s = settings();
        let chosen = Chosen {
            name: "raw".into(),
            profile: serde_yaml_ng::from_str("unparseable: pass").expect("test step"),
        };
        let sum = SharedSummary::default();
        let resp = upstream("application/octet-stream", vec![b"\x00\x01".to_vec()]);
        let resp = response(&s, ctx(&chosen), resp, sum.clone())
            .await
            .expect("test step");
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("test step")
            .to_bytes();
        assert_eq!(&body[..], b"\x00\x01");
        assert!(sum
            .lock()
            .expect("test step")
            .note
            .as_deref()
            .expect("test step")
            .contains("passed unmasked"));
    }

    #[tokio::test]
    async fn a_followed_log_is_masked_and_held_bytes_flush_when_the_stream_idles() {
        let s = settings();
        let chosen = strict();
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|c| (Ok::<_, BoxError>(Frame::data(Bytes::from(c))), rx))
        });
        let mut up = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        up.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let mut c = ctx(&chosen);
        c.streaming = true;
        let resp = response(&s, c, up, SharedSummary::default())
            .await
            .expect("test step");
        let mut body = resp.into_body().into_data_stream();
        let line = b"key AKIAIOSFODNN7EXAMPLE seen\n";
        tx.send(line.to_vec()).await.expect("test step");
        // Nothing more comes: the idle flush must release the held line, masked.
        let got = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("the idle flush released the held bytes")
            .expect("test step")
            .expect("test step");
        assert_eq!(got.len(), line.len(), "length-preserving");
        assert!(!String::from_utf8_lossy(&got).contains("AKIA"));
        drop(tx);
        assert!(body.next().await.is_none());
    }
}

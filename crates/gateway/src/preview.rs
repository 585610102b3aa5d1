//! What an approver is shown for a mutation held for review: the apiserver's own answer to the same
//! request sent with `dryRun=All` (defaulting, admission and validation included), the live object it
//! would change, and a unified diff between the two, every part masked strictly.
//!
//! The preview runs as the requester (impersonated with the gateway's credential, like forwarding), so
//! it shows what the requester's write would do and nothing the requester could not read. It never
//! fails the caller: whatever goes wrong becomes [`Preview::note`] and the review opens without that
//! part. It must never change the cluster (a DELETE carrying `DeleteOptions` is read from its body, not
//! its query, so `dryRun` goes into both) and never show an unmasked value, in the objects or the diff.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Limited};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use custos_authn::Identity;
use custos_kube::impersonation::set_impersonation_headers;
use custos_kube::request::MAX_QUERY_PARAMS;
use custos_kube::RequestAttributes;
use custos_mask::{Hint, Profile};

use crate::forward::buffered_body;
use crate::mask::MaskSettings;
use crate::upstream::{Upstream, UpstreamBody};
use crate::Gateway;

/// How long each upstream call of a preview may take, answer read included.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest upstream answer a preview reads (less when the masker's object limit is lower).
pub const MAX_UPSTREAM_BYTES: usize = 8 * 1024 * 1024;
/// The largest diff shown; a longer one is cut at a line and says so.
pub const MAX_DIFF_BYTES: usize = 64 * 1024;
/// Longest apiserver message quoted in a note.
const MAX_MESSAGE_CHARS: usize = 1024;

/// A mutation held for review, as the client sent it.
#[derive(Debug, Clone, Copy)]
pub struct PreviewRequest<'a> {
    /// The HTTP method.
    pub method: &'a Method,
    /// The request's path and query, as received.
    pub path_and_query: &'a str,
    /// The request's `Content-Type`.
    pub content_type: Option<&'a str>,
    /// The request body, already read for policy.
    pub body: Option<&'a Bytes>,
    /// The requester, impersonated upstream.
    pub identity: &'a Identity,
    /// The request's classification.
    pub attrs: &'a RequestAttributes,
    /// What the request says about the object's kind, and the strings exempt from detection.
    pub hint: &'a Hint,
    /// The request's audit id, sent upstream with both calls.
    pub audit_id: &'a str,
}

/// What the approver is shown; every part is optional (the review opens whatever is missing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    /// The apiserver's answer to the dry run (the object as it would be stored, or a `Status`), masked.
    pub dry_run: Option<Value>,
    /// The object as it is now (update, patch and delete of a named object), masked.
    pub live: Option<Value>,
    /// A unified diff `--- live` / `+++ after` of the objects in YAML, without server-managed fields.
    pub diff: Option<String>,
    /// Why part of the preview is missing, or what it cannot show (changes only in masked values).
    pub note: Option<String>,
}

impl Preview {
    fn noted(note: impl Into<String>) -> Self {
        Preview {
            note: Some(note.into()),
            ..Preview::default()
        }
    }
}

/// The mutations a preview knows how to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Update,
    Patch,
    Delete,
}

/// The preview of `req` as its requester, through the gateway's upstream and masking settings.
pub async fn preview(gw: &Gateway, req: &PreviewRequest<'_>) -> Preview {
    preview_with(&gw.upstream, &gw.masking, req).await
}

/// The preview of `req` through `upstream`, masked with `masking`'s detector and the strict profile.
pub async fn preview_with(
    upstream: &Upstream,
    masking: &MaskSettings,
    req: &PreviewRequest<'_>,
) -> Preview {
    let action = match action(req.method, req.attrs) {
        Ok(a) => a,
        Err(why) => return Preview::noted(why),
    };
    let call = Call {
        upstream,
        identity: req.identity,
        audit_id: req.audit_id,
        limit: masking.max_object_bytes.min(MAX_UPSTREAM_BYTES),
    };
    let dry = async {
        let path = dry_run_path(req.path_and_query)?;
        let (content_type, body) = dry_run_body(action, req.content_type, req.body)?;
        call.send(req.method, &path, content_type.as_deref(), body)
            .await
    };
    let live = async {
        match action {
            Action::Create => None,
            _ => Some(
                call.send(
                    &Method::GET,
                    path_only(req.path_and_query),
                    None,
                    Bytes::new(),
                )
                .await,
            ),
        }
    };
    let (dry, live) = tokio::join!(dry, live);
    let mask = |mut v: Value| {
        custos_mask::mask_document(masking.detector, &Profile::strict(), req.hint, &mut v);
        v
    };
    assemble(action, dry, live, mask)
}

/// An upstream answer: its status and JSON body, unmasked; or why there is none.
type Answer = Result<(StatusCode, Value), String>;

/// The preview from the upstream answers (`live` is `None` when not asked for). Everything shown goes
/// through `mask`; the raw answers are only compared.
fn assemble(
    action: Action,
    dry: Answer,
    live: Option<Answer>,
    mask: impl Fn(Value) -> Value,
) -> Preview {
    let mut out = Preview::default();
    let mut notes = Vec::new();
    // The object after and before, raw; `Some(None)`: known to be absent; `None`: unknown.
    let mut after: Option<Option<Value>> = None;
    match dry {
        Err(why) => notes.push(format!("no dry run: {why}")),
        Ok((status, raw)) => {
            let masked = mask(raw.clone());
            if refused(status, &raw) {
                notes.push(format!("dry run refused: {}", message(status, &masked)));
            } else if action == Action::Delete {
                if has_finalizers(&raw) {
                    notes.push(
                        "the object has finalizers: it is marked for deletion and removed once they finish"
                            .into(),
                    );
                }
                after = Some(None);
            } else {
                after = Some(Some(raw));
            }
            out.dry_run = Some(masked);
        }
    }
    let before: Option<Option<Value>> = match live {
        None => Some(None),
        Some(Err(why)) => {
            notes.push(format!("live object unavailable: {why}"));
            None
        }
        Some(Ok((StatusCode::NOT_FOUND, _))) => Some(None),
        Some(Ok((status, raw))) if refused(status, &raw) => {
            notes.push(format!(
                "live object unavailable: {}",
                message(status, &mask(raw))
            ));
            None
        }
        Some(Ok((_, raw))) => {
            out.live = Some(mask(raw.clone()));
            Some(Some(raw))
        }
    };
    if let (Some(before), Some(after)) = (before, after) {
        let (diff, more) = diff::compare(before, after, &mask);
        out.diff = diff;
        notes.extend(more);
    }
    if !notes.is_empty() {
        out.note = Some(notes.join("; "));
    }
    out
}

/// Which mutation `attrs` is, or why it gets no preview. The method must say the same: the DELETE
/// body is rewritten by action, so a DELETE classified as anything else must not be sent.
fn action(method: &Method, attrs: &RequestAttributes) -> Result<Action, String> {
    if !attrs.is_resource_request {
        return Err("no preview for a request that is not on an API resource".into());
    }
    if !attrs.subresource.is_empty() {
        return Err(format!(
            "no preview for the {:?} subresource",
            attrs.subresource
        ));
    }
    let action = match attrs.verb.as_str() {
        "create" => Action::Create,
        "update" => Action::Update,
        "patch" => Action::Patch,
        "delete" => Action::Delete,
        verb => return Err(format!("no preview for the {verb:?} verb")),
    };
    let expected = match action {
        Action::Create => Method::POST,
        Action::Update => Method::PUT,
        Action::Patch => Method::PATCH,
        Action::Delete => Method::DELETE,
    };
    if *method != expected {
        return Err(format!(
            "no preview: a {method} request classified as {:?}",
            attrs.verb
        ));
    }
    if action != Action::Create && attrs.name.is_empty() {
        return Err("no preview for a write that names no object".into());
    }
    Ok(action)
}

/// The request's path and query with `dryRun=All` and no other `dryRun` (so a client's `dryRun=None`
/// cannot make the preview refuse). Every other parameter is kept as sent. Go's `ParseQuery` drops every
/// parameter of a query with too many, ours included: such a query gets no dry run.
fn dry_run_path(path_and_query: &str) -> Result<String, String> {
    // A fragment is never sent; nothing after `#` may hide a parameter.
    let pq = path_and_query.split('#').next().unwrap_or_default();
    let (path, query) = pq.split_once('?').unwrap_or((pq, ""));
    let mut out = String::with_capacity(pq.len() + 12);
    out.push_str(path);
    out.push('?');
    let mut params = 1;
    for param in query
        .split('&')
        .filter(|p| !p.is_empty() && !is_dry_run_param(p))
    {
        out.push_str(param);
        out.push('&');
        params += 1;
    }
    if params > MAX_QUERY_PARAMS {
        return Err(format!(
            "the query has more than {MAX_QUERY_PARAMS} parameters"
        ));
    }
    out.push_str("dryRun=All");
    Ok(out)
}

/// Whether a query parameter is named `dryRun` once decoded the way Go decodes it.
fn is_dry_run_param(param: &str) -> bool {
    let key = param.split_once('=').map_or(param, |(k, _)| k);
    query_unescape(key).is_some_and(|k| k == b"dryRun")
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; `None` for a malformed escape.
fn query_unescape(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// The path alone, for reading the live object.
fn path_only(path_and_query: &str) -> &str {
    path_and_query
        .split(['?', '#'])
        .next()
        .unwrap_or(path_and_query)
}

/// The dry run's `Content-Type` and body. The apiserver reads a DELETE's options from its body when it
/// has one and then ignores the query: without `dryRun` in the body the "preview" would delete.
fn dry_run_body(
    action: Action,
    content_type: Option<&str>,
    body: Option<&Bytes>,
) -> Result<(Option<String>, Bytes), String> {
    let body = body.cloned().unwrap_or_default();
    if action != Action::Delete || body.is_empty() {
        return Ok((content_type.map(str::to_owned), body));
    }
    let options = delete_options_dry_run(content_type, &body)?;
    Ok((Some("application/json".into()), options))
}

/// The client's `DeleteOptions` (JSON or YAML) with `dryRun: [All]`, as JSON.
fn delete_options_dry_run(content_type: Option<&str>, body: &[u8]) -> Result<Bytes, String> {
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let parsed: Result<Value, String> = match media.as_str() {
        "" | "application/json" => serde_json::from_slice(body).map_err(|e| e.to_string()),
        m if m.starts_with("application/") && m.ends_with("+json") => {
            serde_json::from_slice(body).map_err(|e| e.to_string())
        }
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            serde_yaml_ng::from_slice(body).map_err(|e| e.to_string())
        }
        other => {
            return Err(format!(
                "the delete options are {other}, which Custos cannot rewrite for a dry run"
            ))
        }
    };
    let mut options = parsed.map_err(|e| format!("the delete options do not parse: {e}"))?;
    let Value::Object(map) = &mut options else {
        return Err("the delete options are not an object".into());
    };
    map.retain(|k, _| !k.eq_ignore_ascii_case("dryRun"));
    map.insert("dryRun".into(), Value::from(vec!["All"]));
    serde_json::to_vec(&options)
        .map(Bytes::from)
        .map_err(|e| format!("writing the delete options: {e}"))
}

/// Sends requests upstream as the requester.
struct Call<'a> {
    upstream: &'a Upstream,
    identity: &'a Identity,
    audit_id: &'a str,
    limit: usize,
}

impl Call<'_> {
    /// One exchange, time-bound: the status and the JSON answer (unmasked: mask before showing).
    async fn send(
        &self,
        method: &Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<(StatusCode, Value), String> {
        let req = self.request(method, path_and_query, content_type, body)?;
        let limit = self.limit;
        let exchange = async {
            let resp = self
                .upstream
                .send(req)
                .await
                .map_err(|e| format!("the API server is unavailable: {}", error_chain(&e)))?;
            let status = resp.status();
            let header = |name| resp.headers().get(name).and_then(|v| v.to_str().ok());
            if let Some(enc) = header(header::CONTENT_ENCODING) {
                if !enc.trim().eq_ignore_ascii_case("identity") {
                    return Err(format!("the answer is encoded with {enc:?}"));
                }
            }
            let ct = header(header::CONTENT_TYPE).unwrap_or("no content type");
            if !is_json(ct) {
                return Err(format!("the answer is {ct}, not JSON (HTTP {status})"));
            }
            let bytes = Limited::new(resp.into_body(), limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        format!("the answer is larger than {limit} bytes")
                    } else {
                        format!("reading the answer: {e}")
                    }
                })?
                .to_bytes();
            let value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("the answer is not JSON: {e}"))?;
            Ok((status, value))
        };
        tokio::time::timeout(UPSTREAM_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no answer within {} s", UPSTREAM_TIMEOUT.as_secs()))?
    }

    /// The upstream request, built as forwarding builds it: upstream URI, the requester impersonated,
    /// the gateway's own credential, the audit id; JSON asked for, uncompressed.
    fn request(
        &self,
        method: &Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Request<UpstreamBody>, String> {
        let uri = self
            .upstream
            .uri_for(path_and_query)
            .map_err(|e| format!("building the upstream URI: {e}"))?;
        let mut req = Request::new(buffered_body(body));
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        let headers = req.headers_mut();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        if let Some(ct) = content_type {
            let v = HeaderValue::from_str(ct)
                .map_err(|_| "the request's Content-Type is not a valid header".to_owned())?;
            headers.insert(header::CONTENT_TYPE, v);
        }
        set_impersonation_headers(headers, &self.identity.user)
            .map_err(|e| format!("impersonating the requester: {e}"))?;
        self.upstream.authorize(headers);
        if let Ok(v) = HeaderValue::from_str(self.audit_id) {
            headers.insert("audit-id", v);
        }
        Ok(req)
    }
}

fn is_json(content_type: &str) -> bool {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// An error status, or a `Status` saying `Failure`.
fn refused(status: StatusCode, answer: &Value) -> bool {
    !status.is_success()
        || (answer.get("kind").and_then(Value::as_str) == Some("Status")
            && answer.get("status").and_then(Value::as_str) == Some("Failure"))
}

/// A refusal's message (from the masked answer: messages quote the values they refuse), bounded.
fn message(status: StatusCode, masked: &Value) -> String {
    match masked.get("message").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => {
            let mut m = m.to_owned();
            if let Some((cut, _)) = m.char_indices().nth(MAX_MESSAGE_CHARS) {
                m.truncate(cut);
                m.push('…');
            }
            m
        }
        _ => format!("HTTP {status}"),
    }
}

fn has_finalizers(object: &Value) -> bool {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

mod diff;
#[cfg(test)]
mod tests;

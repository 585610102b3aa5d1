//! The request pipeline, top to bottom. Every request to the gateway passes these steps in this order;
//! the order is the security argument, so each step says why it stands where it does.
//!
//! ```text
//! trace → authenticate → sanitize → classify → decide → approve → record → forward → mask → record
//! ```
//! Steps not built yet (decide: policy; approve; record: audit log; mask) are marked where they go.

use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response};
use hyper::body::Incoming;

use custos_authn::Identity;
use custos_kube::{classify, RequestAttributes};

use crate::credentials::bearer_token;
use crate::error::GatewayError;
use crate::forward;
use crate::recorder::{self, RefusedRequest, RequestFacts};
use crate::rescue::rescue;
use crate::sanitize::{self, SanitizeError};
use crate::{Body, ConnInfo, Gateway};

/// Serves one request through the whole pipeline; never fails: errors become `Status` responses.
pub async fn handle(
    gw: Arc<Gateway>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    // trace: one id follows the request through our logs and the apiserver's audit log.
    let audit_id = audit_id(&req);
    let received = recorder::now();
    let method = req.method().as_str().to_owned();
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut verb = method.to_ascii_lowercase();
    let mut identity = None;
    let resp = match pipeline(&gw, &conn, req, &audit_id, &mut verb, &mut identity).await {
        Ok(resp) => resp,
        Err(e) => {
            gw.metrics.refuse(refusal_reason(&e));
            let resp = rescue(&e, &audit_id);
            // Refusals are evidence too (failed logins, impersonation attempts, path tricks).
            let (status, _) = crate::rescue::status_for(&e);
            let refused = RefusedRequest {
                method,
                uri,
                peer: conn.peer.ip(),
                identity,
                received,
            };
            gw.recorder.refusal(
                &audit_id,
                &refused,
                status.code,
                &format!("{:?}", status.reason),
                &status.message,
            );
            resp
        }
    };
    gw.metrics
        .observe(&verb, resp.status().as_u16(), started.elapsed());
    resp
}

async fn pipeline(
    gw: &Gateway,
    conn: &ConnInfo,
    req: Request<Incoming>,
    audit_id: &str,
    verb: &mut String,
    identity_slot: &mut Option<Identity>,
) -> Result<Response<Body>, GatewayError> {
    let received = recorder::now();
    // Bounded before anything looks at the headers' content.
    let size = sanitize::header_bytes(req.headers());
    if size > gw.limits.max_header_bytes {
        return Err(SanitizeError::HeadersTooLarge {
            size,
            limit: gw.limits.max_header_bytes,
        }
        .into());
    }

    // authenticate: first, so an anonymous caller learns nothing about paths, policy or the cluster.
    let identity = authenticate(gw, conn, &req).await?;
    *identity_slot = Some(identity.clone());

    // sanitize: refuse what would change who the apiserver thinks is calling, and a body announced
    // larger than we forward (a chunked body is cut off at the same limit while it streams).
    sanitize::refuse_impersonation(req.headers())?;
    if sanitize::content_length(req.headers()).is_some_and(|n| n > gw.limits.max_body_bytes as u64)
    {
        return Err(GatewayError::BodyTooLarge {
            limit: gw.limits.max_body_bytes,
        });
    }

    // classify: exactly the apiserver's RequestInfo, so policy judges what the apiserver will do. The
    // path is validated here too: one the apiserver could read differently from us is refused (400).
    let attrs = classify(req.method(), req.uri().path(), req.uri().query())?;
    verb.clone_from(&attrs.verb);
    tracing::debug!(audit_id, user = %identity.user.username, verb = %attrs.verb, resource = %attrs.resource, "classified");

    // decide: Cedar policy (issue 4). Until then every authenticated request is forwarded and the
    // apiserver's RBAC judges the impersonated identity, as with kube-oidc-proxy.
    // approve: held or refused reviews (issue 7).

    // record: the request record is durable before anything reaches the apiserver; no record, no
    // forwarding (503).
    let (parts, body) = req.into_parts();
    let record = gw.recorder.request_record(
        audit_id,
        &parts,
        &identity,
        &attrs,
        conn.peer.ip(),
        received,
    );
    gw.recorder.append(&record).await?;
    let facts = RequestFacts { record };
    let req = Request::from_parts(parts, body);

    // forward: as the identity, via impersonation; upgrades are relayed with per-chunk taps.
    let resp = if sanitize::is_upgrade(req.headers()) {
        forward::upgrade(gw, conn, req, &identity, audit_id, stream_kind(&attrs)).await?
    } else if custos_kube::request::is_long_running(&attrs) {
        let guard = gw.metrics.stream_opened(stream_kind(&attrs));
        forward::forward(gw, conn, req, &identity, audit_id, true)
            .await
            .map(|r| hold_while_streaming(r, guard))?
    } else {
        forward::forward(gw, conn, req, &identity, audit_id, false).await?
    };
    // mask: response bodies through the masker (issue 6).
    // record: the response record, when the body ends or the client goes away.
    Ok(gw.recorder.on_response(facts, resp))
}

async fn authenticate(
    gw: &Gateway,
    conn: &ConnInfo,
    req: &Request<Incoming>,
) -> Result<Identity, GatewayError> {
    let bearer = bearer_token(req.headers())?;
    Ok(gw
        .authenticator
        .authenticate(bearer.as_deref(), conn.client_cert.as_deref())
        .await?)
}

/// The client's `Audit-ID` if it sent a sane one, else a fresh UUID.
fn audit_id(req: &Request<Incoming>) -> String {
    req.headers()
        .get("audit-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn stream_kind(attrs: &RequestAttributes) -> &str {
    match attrs.subresource.as_str() {
        "exec" | "attach" | "portforward" | "log" | "proxy" => &attrs.subresource,
        _ if attrs.verb == "watch" => "watch",
        _ if attrs.verb == "proxy" => "proxy",
        _ => "upgrade",
    }
}

/// Keeps the open-stream gauge raised until the response body is dropped.
fn hold_while_streaming(
    resp: Response<Body>,
    guard: crate::metrics::StreamGuard,
) -> Response<Body> {
    use http_body_util::BodyExt;
    resp.map(|b| {
        b.map_frame(move |f| {
            let _ = &guard;
            f
        })
        .boxed()
    })
}

fn refusal_reason(e: &GatewayError) -> &'static str {
    match e {
        GatewayError::Unauthenticated(_) => "unauthenticated",
        GatewayError::Sanitize(SanitizeError::MalformedAuthorization) => "unauthenticated",
        GatewayError::Path(_) => "path",
        GatewayError::Sanitize(SanitizeError::Impersonation(_)) => "impersonation",
        GatewayError::Sanitize(_) => "headers",
        GatewayError::Impersonation(_) => "identity",
        GatewayError::BodyTooLarge { .. } => "body_too_large",
        GatewayError::UpstreamUnavailable(_) => "upstream_unavailable",
        GatewayError::AuditUnavailable(_) => "audit_unavailable",
        GatewayError::Internal(_) => "internal",
    }
}

//! Sending a request to the apiserver as the authenticated identity, and streaming the answer back.
//!
//! Bodies are never buffered: the request body streams up (bounded by the body limit), the response
//! body streams down frame by frame, so watches and chunked lists flow with no added delay.

use std::error::Error as _;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use custos_authn::Identity;
use custos_kube::impersonation::set_impersonation_headers;
use custos_stream::spdy::Streams;
use custos_stream::{wire, MaskingTap, UpstreamObserver, Wire};

use crate::credentials::strip_websocket_token;
use crate::error::GatewayError;
use crate::relay::{relay, PassThrough, Tap};
use crate::sanitize::{strip_for_upstream, strip_response};
use crate::upstream::UpstreamBody;
use crate::{Body, ConnInfo, Gateway};

/// Rewrites `parts` for the apiserver: upstream URI, stripped headers, impersonation, gateway credential.
fn upstream_parts(
    gw: &Gateway,
    conn: &ConnInfo,
    parts: &mut http::request::Parts,
    identity: &Identity,
    audit_id: &str,
    upgrade: bool,
) -> Result<(), GatewayError> {
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    parts.uri = gw
        .upstream
        .uri_for(pq)
        .map_err(|e| GatewayError::Internal(format!("building the upstream URI: {e}")))?;
    parts.version = Version::HTTP_11;
    strip_for_upstream(&mut parts.headers, upgrade, Some(conn.peer.ip()));
    strip_websocket_token(&mut parts.headers);
    set_impersonation_headers(&mut parts.headers, &identity.user)?;
    gw.upstream.authorize(&mut parts.headers);
    if let Ok(v) = header::HeaderValue::from_str(audit_id) {
        parts.headers.insert("audit-id", v);
    }
    Ok(())
}

/// Forwards an ordinary (non-upgrade) request and streams the response back; `long_running` requests
/// (watch, logs -f, proxy) get their own HTTP/1.1 connection instead of a stream of the shared HTTP/2 one.
pub async fn forward(
    gw: &Gateway,
    conn: &ConnInfo,
    req: Request<UpstreamBody>,
    identity: &Identity,
    audit_id: &str,
    long_running: bool,
) -> Result<Response<Body>, GatewayError> {
    let (mut parts, body) = req.into_parts();
    upstream_parts(gw, conn, &mut parts, identity, audit_id, false)?;
    let limit = gw.limits.max_body_bytes;
    let req = Request::from_parts(parts, body);
    let resp = if long_running {
        gw.upstream.send_stream(req).await
    } else {
        gw.upstream.send(req).await
    }
    .map_err(|e| send_error(&e, limit))?;
    Ok(downstream(resp, false))
}

/// Forwards an upgrade request; on `101 Switching Protocols` relays both upgraded connections.
pub async fn upgrade(
    gw: &Gateway,
    conn: &ConnInfo,
    mut req: Request<Incoming>,
    identity: &Identity,
    audit_id: &str,
    stream_kind: &str,
) -> Result<Response<Body>, GatewayError> {
    if req.version() != Version::HTTP_11 {
        return Err(GatewayError::Sanitize(
            crate::sanitize::SanitizeError::UpgradeNeedsHttp1,
        ));
    }
    let client_upgrade = hyper::upgrade::on(&mut req);
    let (mut parts, _) = req.into_parts();
    upstream_parts(gw, conn, &mut parts, identity, audit_id, true)?;
    let body = Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed();
    let mut resp = gw
        .upstream
        .send_stream(Request::from_parts(parts, body))
        .await
        .map_err(|e| send_error(&e, 0))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The apiserver refused the upgrade (RBAC, bad subprotocol, …): the client sees its answer as-is,
        // which also lets kubectl's WebSocket→SPDY fallback work.
        return Ok(downstream(resp, false));
    }
    // The taps of the stream. exec and attach carry terminal output: the apiserver→client direction
    // is parsed frame by frame and stdout/stderr masked, length-preserving (over SPDY the client's
    // direction is followed too: only its SYN_STREAMs say which stream is stdout). A wire Custos cannot
    // parse is refused here, fail closed, rather than relayed unmasked. port-forward (and proxied
    // upgrades) carry an application's own protocol — TLS, HTTP, a database's wire format — not
    // terminal output: masking bytes inside it would corrupt it, so it passes through unchanged.
    let (mut to_upstream, mut to_client): (Box<dyn Tap>, Box<dyn Tap>) =
        if matches!(stream_kind, "exec" | "attach") {
            let header = |name| resp.headers().get(name).and_then(|v| v.to_str().ok());
            let detector = gw.masking.detector;
            match wire(
                header(header::UPGRADE),
                header(header::SEC_WEBSOCKET_PROTOCOL),
            ) {
                Wire::Spdy => {
                    let streams = Streams::new();
                    (
                        Box::new(UpstreamObserver::spdy(streams.clone())),
                        Box::new(MaskingTap::spdy(detector, streams)),
                    )
                }
                Wire::WebSocket => (
                    Box::new(PassThrough),
                    Box::new(MaskingTap::websocket(detector)),
                ),
                // Dropping the apiserver's connection here ends the session it started.
                Wire::Unmaskable(why) => return Err(GatewayError::Unmaskable(why)),
            }
        } else {
            (Box::new(PassThrough), Box::new(PassThrough))
        };
    let idle = gw.masking.idle_flush;
    let upstream_upgrade = hyper::upgrade::on(&mut resp);
    let guard = gw.metrics.stream_opened(stream_kind);
    let audit = audit_id.to_owned();
    tokio::spawn(async move {
        let _open = guard;
        let (client, upstream) = match tokio::try_join!(client_upgrade, upstream_upgrade) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(audit_id = %audit, error = %e, "upgrade did not complete");
                return;
            }
        };
        let result = relay(
            TokioIo::new(client),
            TokioIo::new(upstream),
            to_upstream.as_mut(),
            to_client.as_mut(),
            idle,
        )
        .await;
        match result {
            Ok(t) => {
                tracing::info!(audit_id = %audit, to_upstream = t.to_upstream, to_client = t.to_client, "stream closed")
            }
            Err(e) => tracing::info!(audit_id = %audit, error = %e, "stream ended with an error"),
        }
    });
    Ok(downstream(resp, true))
}

/// The apiserver's response, hop-by-hop headers removed, body streamed.
fn downstream(resp: Response<Incoming>, upgrade: bool) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    strip_response(&mut parts.headers, upgrade);
    let body = if upgrade {
        crate::empty()
    } else {
        body.map_err(|e| Box::new(e) as crate::BoxError).boxed()
    };
    Response::from_parts(parts, body)
}

/// Maps a failed upstream exchange: our body limit (client's fault) or an unavailable apiserver.
fn send_error(e: &hyper_util::client::legacy::Error, limit: usize) -> GatewayError {
    let mut source = e.source();
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return GatewayError::BodyTooLarge { limit };
        }
        source = s.source();
    }
    GatewayError::UpstreamUnavailable(error_chain(e))
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

/// The request body as it goes upstream: streamed (cut off at `limit`) or already read.
pub fn upstream_body(body: Incoming, limit: usize) -> UpstreamBody {
    Limited::new(body, limit).boxed()
}

/// Reads a request body whole, refusing one over `limit`; used when policy must see the body.
pub async fn read_body(body: Incoming, limit: usize) -> Result<bytes::Bytes, GatewayError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(GatewayError::BodyTooLarge { limit })
        }
        Err(e) => Err(GatewayError::BodyRead(e.to_string())),
    }
}

/// A body from bytes already read.
pub fn buffered_body(bytes: bytes::Bytes) -> UpstreamBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

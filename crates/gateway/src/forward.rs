//! Sending a request to the apiserver as the authenticated identity, and streaming the answer back.
//!
//! Bodies are never buffered: the request body streams up (bounded by the body limit), the response
//! body streams down frame by frame, so watches and chunked lists flow with no added delay.

use std::error::Error as _;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use custos_audit::record::Record;
use custos_authn::Identity;
use custos_kube::impersonation::set_impersonation_headers;
use custos_stream::spdy::Streams;
use custos_stream::{wire, MaskingTap, UpstreamObserver, Wire};

use crate::credentials::strip_websocket_token;
use crate::error::GatewayError;
use crate::port_forward::{captures_payload, Capture, PortForwardWire, PortForwards};
use crate::relay::{relay, PassThrough, Tap};
use crate::sanitize::{strip_for_upstream, strip_response};
use crate::stream_record::StreamRecording;
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
/// `request` is the request's audit record (durable already): stream records are derived from it.
pub async fn upgrade(
    gw: &Gateway,
    conn: &ConnInfo,
    mut req: Request<Incoming>,
    identity: &Identity,
    audit_id: &str,
    stream_kind: &str,
    request: &Record,
) -> Result<Response<Body>, GatewayError> {
    if req.version() != Version::HTTP_11 {
        return Err(GatewayError::Sanitize(
            crate::sanitize::SanitizeError::UpgradeNeedsHttp1,
        ));
    }
    let client_upgrade = hyper::upgrade::on(&mut req);
    let (mut parts, _) = req.into_parts();
    // record: exec and attach are recorded from their first byte. The recording's file, its header
    // and the stream-opened record are durable before the apiserver is asked to start anything (over
    // WebSocket it starts the command as soon as it upgrades): no recording, no stream (503).
    let recording = if is_terminal(stream_kind) {
        let detector = gw.masking.detector;
        Some(StreamRecording::open(&gw.recorder, detector, &parts, request, stream_kind).await?)
    } else {
        None
    };
    // record: a port-forward whose policy asks for its payloads gets its recording the same way.
    let mut capture =
        if stream_kind == "portforward" && captures_payload(request.custos.decision.as_ref()) {
            let detector = gw.masking.detector;
            Some(Capture::open(&gw.recorder, detector, &parts, request).await?)
        } else {
            None
        };
    let query = parts.uri.query().unwrap_or("").to_owned();
    // Whatever stops the request now, a recording opened above is closed with the reason.
    let sent = match upstream_parts(gw, conn, &mut parts, identity, audit_id, true) {
        Ok(()) => {
            let body = Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed();
            gw.upstream
                .send_stream(Request::from_parts(parts, body))
                .await
                .map_err(|e| send_error(&e, 0))
        }
        Err(e) => Err(e),
    };
    let mut resp = match sent {
        Ok(resp) => resp,
        Err(e) => {
            if let Some(r) = &recording {
                r.abandon(None, &e.to_string()).await;
            }
            if let Some(c) = capture.take() {
                c.abandon(&gw.recorder, request, &e.to_string()).await;
            }
            return Err(e);
        }
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The apiserver refused the upgrade (RBAC, bad subprotocol, …): the client sees its answer as-is,
        // which also lets kubectl's WebSocket→SPDY fallback work.
        if let Some(r) = &recording {
            let why = format!(
                "the API server answered {} instead of starting the stream",
                resp.status()
            );
            r.abandon(Some(resp.status().as_u16()), &why).await;
        }
        if let Some(c) = capture.take() {
            let why = format!(
                "the API server answered {} instead of starting the stream",
                resp.status()
            );
            c.abandon(&gw.recorder, request, &why).await;
        }
        return Ok(downstream(resp, false));
    }
    let header = |name| resp.headers().get(name).and_then(|v| v.to_str().ok());
    let (upgrade, subprotocol) = (
        header(header::UPGRADE),
        header(header::SEC_WEBSOCKET_PROTOCOL),
    );
    let chosen = subprotocol
        .or_else(|| header(header::HeaderName::from_static("x-stream-protocol-version")))
        .map(str::to_owned);
    // The taps of the stream. exec and attach carry terminal output: masked, then recorded (see
    // `terminal_taps`); a wire Custos cannot parse is refused here, fail closed, rather than relayed
    // unmasked or unrecorded — dropping the apiserver's connection ends the session it started.
    // port-forward (and proxied upgrades) carry an application's own protocol — TLS, HTTP, a
    // database's wire format — not terminal output: masking bytes inside it would corrupt it, so it
    // passes through unchanged; port-forward's connections are followed for their records (and their
    // payloads recorded, masked, when policy asks).
    let mut port_forwards = None;
    let taps: Taps = match &recording {
        Some(rec) => match terminal_taps(rec, gw.masking.detector, upgrade, subprotocol) {
            Ok(taps) => taps,
            Err(why) => {
                rec.abandon(Some(502), &why).await;
                return Err(GatewayError::Unmaskable(why));
            }
        },
        None if stream_kind == "portforward" => {
            let wire = PortForwardWire::of(upgrade, subprotocol, &query);
            let opaque = matches!(wire, PortForwardWire::Opaque(_));
            if let Some(c) = capture.take_if(|_| opaque) {
                // Bytes Custos cannot take out of their framing (base64 channels, an unknown
                // subprotocol) cannot be masked for the recording policy asks for: refused, as an
                // exec Custos cannot mask is.
                let why = format!(
                    "port-forward payloads are recorded here, and the stream protocol the API server \
                     chose ({}) cannot be read for that",
                    subprotocol.or(upgrade).unwrap_or("none")
                );
                c.abandon(&gw.recorder, request, &why).await;
                return Err(GatewayError::Unmaskable(why));
            }
            let (pf, up, down) = PortForwards::start(&gw.recorder, request, &wire, capture.take());
            port_forwards = Some(pf);
            (Box::new(up), Box::new(down))
        }
        None => (Box::new(PassThrough), Box::new(PassThrough)),
    };
    let relayed = Relayed {
        client: client_upgrade,
        upstream: hyper::upgrade::on(&mut resp),
        taps,
        idle: gw.masking.idle_flush,
        guard: gw.metrics.stream_opened(stream_kind),
        audit_id: audit_id.to_owned(),
        recording,
        port_forwards,
        chosen,
    };
    tokio::spawn(relayed.run());
    Ok(downstream(resp, true))
}

/// The taps of an exec/attach stream on the wire the apiserver chose: the apiserver→client direction
/// is parsed frame by frame and stdout/stderr masked, length-preserving (over SPDY the client's
/// direction is followed too: only its SYN_STREAMs say which stream is stdout); both directions are
/// recorded as they are forwarded. `Err` says why the wire cannot be relayed.
fn terminal_taps(
    rec: &Arc<StreamRecording>,
    detector: &'static custos_mask::Detector,
    upgrade: Option<&str>,
    subprotocol: Option<&str>,
) -> Result<Taps, String> {
    let (observe, mask, websocket): (Box<dyn Tap>, Box<dyn Tap>, bool) =
        match wire(upgrade, subprotocol) {
            Wire::Spdy => {
                let streams = Streams::new();
                (
                    Box::new(UpstreamObserver::spdy(streams.clone())),
                    Box::new(MaskingTap::spdy(detector, streams)),
                    false,
                )
            }
            Wire::WebSocket => (
                Box::new(PassThrough),
                Box::new(MaskingTap::websocket(detector)),
                true,
            ),
            Wire::Unmaskable(why) => return Err(why),
        };
    let (up, down) = rec.taps(websocket, observe, mask);
    Ok((Box::new(up), Box::new(down)))
}

/// The taps of both directions: (client → apiserver, apiserver → client).
type Taps = (Box<dyn Tap>, Box<dyn Tap>);

/// An upgraded stream to relay once both sides have switched protocols, and what to finish after.
struct Relayed {
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    taps: Taps,
    idle: std::time::Duration,
    guard: crate::metrics::StreamGuard,
    audit_id: String,
    recording: Option<Arc<StreamRecording>>,
    port_forwards: Option<Arc<PortForwards>>,
    /// The subprotocol the apiserver chose.
    chosen: Option<String>,
}

impl Relayed {
    async fn run(self) {
        let Relayed {
            client,
            upstream,
            taps: (mut to_upstream, mut to_client),
            idle,
            guard,
            audit_id: audit,
            recording,
            port_forwards,
            chosen,
        } = self;
        let _open = guard;
        let result = match tokio::try_join!(client, upstream) {
            Ok((client, upstream)) => {
                relay(
                    TokioIo::new(client),
                    TokioIo::new(upstream),
                    to_upstream.as_mut(),
                    to_client.as_mut(),
                    idle,
                )
                .await
            }
            Err(e) => {
                tracing::warn!(audit_id = %audit, error = %e, "upgrade did not complete");
                Err(std::io::Error::other(format!(
                    "the upgrade did not complete: {e}"
                )))
            }
        };
        match &result {
            Ok(t) => {
                tracing::info!(audit_id = %audit, to_upstream = t.to_upstream, to_client = t.to_client, "stream closed")
            }
            Err(e) => tracing::info!(audit_id = %audit, error = %e, "stream ended with an error"),
        }
        // The taps go first: the recording's last events are what they let out.
        drop((to_upstream, to_client));
        if let Some(rec) = recording {
            rec.finish(&result, chosen.as_deref()).await;
        }
        if let Some(pf) = port_forwards {
            pf.finish(&result).await;
        }
    }
}

/// Streams that carry a terminal: masked and recorded.
fn is_terminal(stream_kind: &str) -> bool {
    matches!(stream_kind, "exec" | "attach")
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

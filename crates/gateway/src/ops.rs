//! The operations endpoint, on its own plain-HTTP listener: `/healthz`, `/readyz`, `/metrics`.
//!
//! It is separate from the gateway's listener on purpose: `/healthz` and `/readyz` on the gateway's
//! port belong to the apiserver (clients ask for them through the gateway) and must be forwarded.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::{full, Body, Gateway};

/// Whether the gateway can serve: the apiserver answers and every OIDC issuer's keys are loaded.
pub async fn readiness(gw: &Gateway) -> Result<(), String> {
    if !gw.authenticator.is_ready() {
        let missing: Vec<String> = gw
            .authenticator
            .readiness()
            .into_iter()
            .filter(|r| !r.keys_loaded)
            .map(|r| match r.last_error {
                Some(e) => format!("{} ({e})", r.issuer),
                None => r.issuer,
            })
            .collect();
        return Err(format!("OIDC keys not loaded for {}", missing.join(", ")));
    }
    let uri = gw
        .upstream
        .uri_for("/readyz")
        .map_err(|e| format!("upstream URI: {e}"))?;
    let mut req = Request::get(uri)
        .body(
            Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed(),
        )
        .map_err(|e| e.to_string())?;
    gw.upstream.authorize(req.headers_mut());
    let resp = tokio::time::timeout(Duration::from_secs(5), gw.upstream.send(req))
        .await
        .map_err(|_| "upstream: /readyz timed out".to_string())?
        .map_err(|e| format!("upstream: {e}"))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("upstream: /readyz answered {}", resp.status()))
    }
}

async fn route(gw: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    let (code, body, ctype) = match req.uri().path() {
        "/healthz" | "/livez" => (StatusCode::OK, "ok".to_string(), "text/plain"),
        "/readyz" => match readiness(&gw).await {
            Ok(()) => (StatusCode::OK, "ok".to_string(), "text/plain"),
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {e}"),
                "text/plain",
            ),
        },
        "/metrics" => (
            StatusCode::OK,
            gw.metrics.encode(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        _ => (StatusCode::NOT_FOUND, "not found".to_string(), "text/plain"),
    };
    let mut resp = Response::new(full(Bytes::from(body)));
    *resp.status_mut() = code;
    if let Ok(v) = http::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

/// Serves the operations endpoint until `shutdown` resolves.
pub async fn serve_ops(
    listener: TcpListener,
    gw: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            a = listener.accept() => match a { Ok(p) => p, Err(_) => continue },
            () = &mut shutdown => return,
        };
        let gw = gw.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let gw = gw.clone();
                async move { Ok::<_, std::convert::Infallible>(route(gw, req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

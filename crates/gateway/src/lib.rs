//! The Custos gateway: the TLS listener, the request pipeline and the upstream client.
//!
//! Owns: accepting connections (rustls, HTTP/1.1 and HTTP/2 by ALPN, graceful shutdown), the pipeline in
//! [`stack`] (read it first), forwarding with impersonation ([`forward`]), relaying upgraded streams
//! ([`relay`]) with exec/attach recorded ([`stream_record`]) and port-forward connections recorded
//! ([`port_forward`]), turning errors into `Status` responses ([`rescue`]), health and metrics
//! ([`ops`]).
//! It must never forward a request it has not authenticated, never pass the client's credentials or
//! impersonation headers upstream, and never buffer a whole body.
#![deny(missing_docs)]

pub mod api;
pub mod approve;
pub mod credentials;
pub mod decide;
pub mod error;
pub mod forward;
pub mod kubeconfig;
pub mod mask;
pub mod metrics;
pub mod ops;
pub mod port_forward;
pub mod preview;
pub mod recorder;
pub mod relay;
pub mod rescue;
pub mod sanitize;
pub mod session;
pub mod stack;
pub mod stream_record;
pub mod tls;
pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The recording format and files (re-exported: the binary wires `Recordings` through the gateway).
pub use custos_recording as recording;
pub use error::GatewayError;
pub use upstream::{BoxError, Upstream};

/// The body type of every response the gateway writes.
pub type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// A complete body from bytes.
pub fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Size limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body forwarded, in bytes (the apiserver itself refuses objects over ~3 MiB).
    pub max_body_bytes: usize,
    /// Largest header section accepted, in bytes.
    pub max_header_bytes: usize,
    /// Time allowed for a client's TLS handshake.
    pub handshake_timeout: Duration,
    /// How long shutdown waits for in-flight requests before closing what is left (watches, streams).
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 * 1024 * 1024,
            max_header_bytes: 32 * 1024,
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Everything a request needs, shared by all connections.
pub struct Gateway {
    /// Validates callers' credentials.
    pub authenticator: Arc<custos_authn::Authenticator>,
    /// The apiserver.
    pub upstream: Upstream,
    /// Request limits.
    pub limits: Limits,
    /// Prometheus metrics.
    pub metrics: metrics::Metrics,
    /// Appends audit records (request before forwarding, response after).
    pub recorder: recorder::Recorder,
    /// The policy; `None` forwards every authenticated request (the apiserver's RBAC still applies).
    pub policy: Option<decide::PolicyGate>,
    /// What responses, streams and records are masked with.
    pub masking: mask::MaskSettings,
    /// Reviews, approvals and grants.
    pub approvals: approve::Approvals,
}

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The client's certificate (DER), when it presented one that the configured CA verified.
    pub client_cert: Option<Vec<u8>>,
}

/// Serves the gateway on `listener` until `shutdown` resolves, then drains in-flight requests for at
/// most `limits.shutdown_grace`.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(gateway.limits.max_header_bytes.max(8192) * 2)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    builder
        .http2()
        .max_header_list_size((gateway.limits.max_header_bytes * 2) as u32)
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    tokio::pin!(shutdown);
    // Connection tasks live in a set so that, once the grace period is over, what is still open
    // (watches, logs -f) is closed for real: their bodies drop and their records are written.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let gateway = gateway.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        connections.spawn(async move {
            let tls =
                match tokio::time::timeout(gateway.limits.handshake_timeout, acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let client_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.as_ref().to_vec());
            let conn = Arc::new(ConnInfo { peer, client_cert });
            let svc = hyper::service::service_fn(move |req| {
                let gateway = gateway.clone();
                let conn = conn.clone();
                async move { Ok::<_, std::convert::Infallible>(stack::handle(gateway, conn, req).await) }
            });
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    if tokio::time::timeout(gateway.limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing remaining connections");
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

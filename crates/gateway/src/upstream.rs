//! The connection to the apiserver: one pooled client for short requests (HTTP/2 when offered) and one
//! HTTP/1.1 client for long-running ones: upgrades (exec, attach, port-forward), which HTTP/2 cannot
//! carry, and watches, `logs -f` and proxy streams. Long-running streams must not share the HTTP/2
//! connection: the apiserver allows 100 concurrent streams per connection and hyper does not open a
//! second one when they are used up, so 100 open watches would stall every other request.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::kubeconfig::{UpstreamConfig, UpstreamCredential};
use crate::tls::{certs_from_pem, key_from_pem};

/// Boxed error used by request and response bodies that cross the gateway.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of requests the gateway sends upstream.
pub type UpstreamBody = BoxBody<Bytes, BoxError>;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, UpstreamBody>;

/// The upstream could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// A certificate, key or TLS setting was refused.
    #[error("upstream TLS: {0}")]
    Tls(String),
}

/// Clients towards the apiserver, built once and shared by every request.
#[derive(Clone)]
pub struct Upstream {
    /// Base URL of the apiserver.
    pub server: http::Uri,
    /// Bearer token the gateway authenticates with, if it uses one.
    token: Option<http::HeaderValue>,
    pooled: HttpsClient,
    streams: HttpsClient,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// Builds the clients from an upstream configuration.
    pub fn new(cfg: &UpstreamConfig) -> Result<Self, UpstreamError> {
        let tls = client_tls(cfg)?;
        let token = match &cfg.credential {
            UpstreamCredential::Token(t) => Some(
                http::HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                    UpstreamError::Tls("the upstream token is not a valid header value".into())
                })?,
            ),
            _ => None,
        };
        let pooled = client(tls.clone(), cfg, true);
        let streams = client(tls, cfg, false);
        Ok(Upstream {
            server: cfg.server.clone(),
            token,
            pooled,
            streams,
        })
    }

    /// The absolute upstream URI for a client request's path and query.
    pub fn uri_for(&self, path_and_query: &str) -> Result<http::Uri, http::Error> {
        let base = self.server.path().trim_end_matches('/');
        let mut parts = http::uri::Parts::default();
        parts.scheme = self.server.scheme().cloned();
        parts.authority = self.server.authority().cloned();
        parts.path_and_query = Some(format!("{base}{path_and_query}").parse()?);
        Ok(http::Uri::from_parts(parts)?)
    }

    /// Adds the gateway's own credential (bearer token) to an upstream request's headers.
    pub fn authorize(&self, headers: &mut http::HeaderMap) {
        headers.remove(http::header::AUTHORIZATION);
        if let Some(t) = &self.token {
            headers.insert(http::header::AUTHORIZATION, t.clone());
        }
    }

    /// Sends a short request over the pooled (HTTP/2 when offered) client.
    pub async fn send(
        &self,
        req: http::Request<UpstreamBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        self.pooled.request(req).await
    }

    /// Sends an upgrade or other long-running request over HTTP/1.1, one connection per stream.
    pub async fn send_stream(
        &self,
        req: http::Request<UpstreamBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        self.streams.request(req).await
    }
}

fn client(tls: rustls::ClientConfig, cfg: &UpstreamConfig, http2: bool) -> HttpsClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    http.set_keepalive(Some(Duration::from_secs(30)));
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only();
    let builder = match &cfg.tls_server_name {
        Some(name) => {
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(
                ServerName::try_from(name.clone()).unwrap_or_else(|_| {
                    ServerName::try_from("invalid.invalid").expect("static name")
                }),
            ))
        }
        None => builder,
    };
    let connector = if http2 {
        builder.enable_http1().enable_http2().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    };
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .build(connector)
}

fn client_tls(cfg: &UpstreamConfig) -> Result<rustls::ClientConfig, UpstreamError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamError::Tls(e.to_string()))?;
    let builder = if cfg.insecure {
        tracing::warn!(
            "upstream TLS verification is DISABLED (insecure-skip-tls-verify in the kubeconfig)"
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let pem = cfg.ca_pem.as_deref().unwrap_or_default();
        for c in certs_from_pem(pem).map_err(|e| UpstreamError::Tls(format!("upstream CA: {e}")))? {
            roots
                .add(c)
                .map_err(|e| UpstreamError::Tls(format!("upstream CA: {e}")))?;
        }
        builder.with_root_certificates(roots)
    };
    match &cfg.credential {
        UpstreamCredential::ClientCert { cert_pem, key_pem } => {
            let certs = certs_from_pem(cert_pem)
                .map_err(|e| UpstreamError::Tls(format!("client certificate: {e}")))?;
            let key = key_from_pem(key_pem)
                .map_err(|e| UpstreamError::Tls(format!("client key: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| UpstreamError::Tls(e.to_string()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// Accepts any server certificate; used only when the kubeconfig says `insecure-skip-tls-verify`.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

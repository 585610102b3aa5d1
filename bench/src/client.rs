//! The HTTP client both paths use. Direct and through-Custos clients come out of the same function with
//! the same settings (hyper + rustls/ring, HTTP/2 by ALPN, pooled connections, TCP_NODELAY, the same
//! pool limits as Custos's own upstream client); only the URL, the trusted CA and the credential differ.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Longest wait for a non-streaming exchange (headers and body) before it counts as a failure.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

type Https = HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How a client proves who it is.
pub enum Credential {
    /// A TLS client certificate (the testbed admin's, for the direct path).
    ClientCert {
        /// PEM certificate chain.
        cert_pem: Vec<u8>,
        /// PEM private key.
        key_pem: Vec<u8>,
    },
    /// A bearer token (a Dex ID token, for the path through Custos).
    Bearer(String),
}

/// A pooled HTTPS client bound to one server and one credential. Clones share the pool (and so the
/// HTTP/2 connection); [`Client::fresh`] makes one with a pool of its own.
#[derive(Clone)]
pub struct Client {
    base: String,
    bearer: Option<HeaderValue>,
    tls: rustls::ClientConfig,
    http: Https,
}

impl Client {
    /// A client for `base` (e.g. `https://127.0.0.1:6443`) trusting `ca_pem`, authenticating with `cred`.
    pub fn new(base: &str, ca_pem: &[u8], cred: Credential) -> Result<Client> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in certs(ca_pem)? {
            roots.add(c).context("CA certificate")?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let (tls, bearer) = match cred {
            Credential::ClientCert { cert_pem, key_pem } => {
                let key: PrivateKeyDer<'static> =
                    rustls_pemfile::private_key(&mut &key_pem[..])?
                        .ok_or_else(|| anyhow!("no private key in the client key file"))?;
                (builder.with_client_auth_cert(certs(&cert_pem)?, key)?, None)
            }
            Credential::Bearer(token) => (
                builder.with_no_client_auth(),
                Some(HeaderValue::from_str(&format!("Bearer {token}"))?),
            ),
        };
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            http: pool(tls.clone()),
            bearer,
            tls,
        })
    }

    /// A client like this one (same server, credential and settings) with its own connection pool, as
    /// a second, independent program would have.
    pub fn fresh(&self) -> Client {
        Client {
            http: pool(self.tls.clone()),
            ..self.clone()
        }
    }

    /// Sends a request and returns as soon as the response headers arrive (the body streams).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> Result<Response<Incoming>> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::ACCEPT, "application/json")
            .body(Full::new(body))?;
        if let Some(ct) = content_type {
            req.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        if let Some(b) = &self.bearer {
            req.headers_mut().insert(header::AUTHORIZATION, b.clone());
        }
        Ok(self.http.request(req).await?)
    }

    /// A complete exchange with a time limit: status and whole body.
    pub async fn exchange(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        let fut = async {
            let resp = self.send(method, path, content_type, body).await?;
            let status = resp.status();
            let bytes = resp.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, bytes))
        };
        tokio::time::timeout(EXCHANGE_TIMEOUT, fut)
            .await
            .map_err(|_| anyhow!("{path}: no complete answer within {EXCHANGE_TIMEOUT:?}"))?
    }

    /// GETs `path` and parses the JSON answer; any status but 200 is an error.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let (status, body) = self.exchange(Method::GET, path, None, Bytes::new()).await?;
        if status != StatusCode::OK {
            bail!("GET {path}: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(serde_json::from_slice(&body)?)
    }

    /// The HTTP version the server answers `path` with (HTTP/2 when ALPN chose it).
    pub async fn version(&self, path: &str) -> Result<Version> {
        let resp = self.send(Method::GET, path, None, Bytes::new()).await?;
        let v = resp.version();
        resp.into_body().collect().await?;
        Ok(v)
    }
}

/// The connection pool: the same settings on both paths, and the same pool limits as Custos's own
/// upstream client.
fn pool(tls: rustls::ClientConfig) -> Https {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(Duration::from_secs(10)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp);
    HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .build(connector)
}

fn certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &pem[..]).collect::<Result<_, _>>()?;
    if certs.is_empty() {
        bail!("no certificate in PEM data");
    }
    Ok(certs)
}

//! A tiny fake OIDC provider over HTTPS: discovery document and JWKS, with request counters.
//!
//! For fast tests only; acceptance tests run against a real IdP.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::certs::TestCa;
use crate::jwt::TestIssuer;

/// The path the fake serves its JWKS on.
pub const JWKS_PATH: &str = "/keys";

#[derive(Debug)]
struct State {
    issuer_url: String,
    jwks: Mutex<Value>,
    discovery_issuer: Mutex<String>,
    jwks_status: Mutex<StatusCode>,
    jwks_requests: AtomicUsize,
    discovery_requests: AtomicUsize,
}

/// A running fake OIDC provider on `https://127.0.0.1:<port>`; stops when dropped.
#[derive(Debug)]
pub struct FakeOidc {
    url: String,
    ca: TestCa,
    issuer: TestIssuer,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl FakeOidc {
    /// Binds 127.0.0.1:0 and serves discovery and the issuer's default JWKS over TLS from a fresh CA.
    pub async fn start() -> anyhow::Result<FakeOidc> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("https://{}", listener.local_addr()?);
        let ca = TestCa::new();
        let server = ca.server_cert(&["127.0.0.1", "localhost"]);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(server.cert_chain(), server.private_key())?;
        let issuer = TestIssuer::new(url.clone());
        let state = Arc::new(State {
            issuer_url: url.clone(),
            jwks: Mutex::new(issuer.jwks()),
            discovery_issuer: Mutex::new(url.clone()),
            jwks_status: Mutex::new(StatusCode::OK),
            jwks_requests: AtomicUsize::new(0),
            discovery_requests: AtomicUsize::new(0),
        });
        let task = tokio::spawn(serve(
            listener,
            TlsAcceptor::from(Arc::new(tls)),
            state.clone(),
        ));
        Ok(FakeOidc {
            url,
            ca,
            issuer,
            state,
            task,
        })
    }

    /// The issuer URL, `https://127.0.0.1:<port>` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The CA that signed the server certificate (trust it to connect).
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// The token issuer whose `iss` is this server's URL.
    pub fn issuer(&self) -> &TestIssuer {
        &self.issuer
    }

    /// Replaces the JWKS the server publishes (key rotation).
    pub fn set_jwks(&self, jwks: Value) {
        *lock(&self.state.jwks) = jwks;
    }

    /// Makes the discovery document name a different `issuer` (a misconfigured or hostile IdP).
    pub fn set_discovery_issuer(&self, issuer: &str) {
        *lock(&self.state.discovery_issuer) = issuer.to_string();
    }

    /// Makes the JWKS endpoint answer with `status` (e.g. 500) instead of the keys; 200 restores them.
    pub fn set_jwks_status(&self, status: u16) {
        *lock(&self.state.jwks_status) = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    }

    /// How many JWKS requests the server has answered.
    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }

    /// How many discovery requests the server has answered.
    pub fn discovery_requests(&self) -> usize {
        self.state.discovery_requests.load(Ordering::SeqCst)
    }
}

impl Drop for FakeOidc {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, &req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

fn route(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    match req.uri().path() {
        "/.well-known/openid-configuration" => {
            state.discovery_requests.fetch_add(1, Ordering::SeqCst);
            let doc = json!({
                "issuer": *lock(&state.discovery_issuer),
                "jwks_uri": format!("{}{JWKS_PATH}", state.issuer_url),
                "authorization_endpoint": format!("{}/auth", state.issuer_url),
                "token_endpoint": format!("{}/token", state.issuer_url),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            });
            json_response(StatusCode::OK, &doc)
        }
        JWKS_PATH => {
            state.jwks_requests.fetch_add(1, Ordering::SeqCst);
            let status = *lock(&state.jwks_status);
            if status == StatusCode::OK {
                json_response(status, &lock(&state.jwks))
            } else {
                json_response(status, &json!({"error": "unavailable"}))
            }
        }
        _ => json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

//! `HttpSink` against a tiny local endpoint: it posts the exact signed note with the bearer token, over
//! http on loopback and over https with a configured CA, and a failing or hanging endpoint gives an
//! error after its bounded retries instead of stalling the sequencer.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use custos_audit::note::SignerKey;
use custos_audit::{Checkpoint, Hash};
use custos_store::{
    CheckpointSink, FileSink, HttpSink, HttpSinkConfig, MultiSink, StoreError, StoredCheckpoint,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// One request as the endpoint saw it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    content_type: Option<String>,
    authorization: Option<String>,
    body: String,
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    /// The status to answer (0: 200).
    status: AtomicU16,
    /// Never answer.
    hang: AtomicBool,
}

struct Endpoint {
    url: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Endpoint {
    /// Plain http on 127.0.0.1:0.
    async fn http() -> Endpoint {
        Self::start(None).await
    }

    /// https on 127.0.0.1:0 with a certificate from `ca`.
    async fn https(ca: &custos_testkit::TestCa) -> Endpoint {
        let server = ca.server_cert(&["127.0.0.1", "localhost"]);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(server.cert_chain(), server.private_key())
            .expect("server config");
        Self::start(Some(TlsAcceptor::from(Arc::new(tls)))).await
    }

    async fn start(tls: Option<TlsAcceptor>) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!(
            "{scheme}://{}/add-checkpoint?log=test",
            listener.local_addr().expect("addr")
        );
        let state = Arc::new(State::default());
        let served = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let state = served.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve(stream, state).await;
                            }
                        }
                        None => serve(tcp, state).await,
                    }
                });
            }
        });
        Endpoint { url, state, task }
    }

    fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }
}

async fn serve(io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static, state: Arc<State>) {
    let service = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(&state, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut seen = Received {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        content_type: header("content-type"),
        authorization: header("authorization"),
        body: String::new(),
    };
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    seen.body = String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
    lock(&state.received).push(seen);
    if state.hang.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let status = match state.status.load(Ordering::SeqCst) {
        0 => StatusCode::OK,
        code => StatusCode::from_u16(code).expect("status"),
    };
    let mut resp = Response::new(Full::new(Bytes::from(format!(
        "status {}\n",
        status.as_u16()
    ))));
    *resp.status_mut() = status;
    resp
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn key() -> SignerKey {
    SignerKey::from_seed("custos.test/log", [7; 32]).expect("key")
}

fn checkpoint(key: &SignerKey, size: u64) -> StoredCheckpoint {
    let note = Checkpoint::new(key.name(), size, Hash([size as u8; 32]))
        .sign(key)
        .expect("sign");
    StoredCheckpoint { size, note }
}

/// Fast retries for tests.
fn quick(url: &str) -> HttpSinkConfig {
    HttpSinkConfig {
        timeout: Duration::from_secs(2),
        backoff: Duration::from_millis(20),
        ..HttpSinkConfig::new(url)
    }
}

#[tokio::test]
async fn posts_each_signed_note_with_the_bearer_token() {
    let endpoint = Endpoint::http().await;
    let dir = tempfile::tempdir().expect("dir");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").expect("token");
    let sink = HttpSink::new(&HttpSinkConfig {
        token_file: Some(token.clone()),
        ..quick(&endpoint.url)
    })
    .expect("sink");
    let key = key();
    let mut sent = Vec::new();
    for size in 1..=3 {
        if size == 3 {
            // A rotated token is read at the next publish.
            std::fs::write(&token, "rotated").expect("rotate");
        }
        let cp = checkpoint(&key, size);
        sink.publish(&cp).await.expect("publish");
        sent.push(cp);
    }

    let received = endpoint.received();
    assert_eq!(received.len(), 3, "{received:?}");
    let verifier = key.verifier();
    for (i, (got, cp)) in received.iter().zip(&sent).enumerate() {
        assert_eq!(got.method, "POST");
        assert_eq!(got.path, "/add-checkpoint");
        assert_eq!(
            got.content_type.as_deref(),
            Some("text/plain; charset=utf-8")
        );
        let want = if i < 2 {
            "Bearer s3cret"
        } else {
            "Bearer rotated"
        };
        assert_eq!(got.authorization.as_deref(), Some(want));
        assert_eq!(got.body, cp.note, "the exact signed note");
        let opened = Checkpoint::open(&got.body, &verifier).expect("opens with the log's key");
        assert_eq!(opened.size, cp.size);
        assert_eq!(opened.origin, key.name());
    }
}

#[tokio::test]
async fn https_with_the_configured_ca_and_no_token() {
    let ca = custos_testkit::TestCa::new();
    let endpoint = Endpoint::https(&ca).await;
    let dir = tempfile::tempdir().expect("dir");
    let ca_file = ca.write_to(dir.path()).expect("ca");
    let sink = HttpSink::new(&HttpSinkConfig {
        ca_file: Some(ca_file),
        ..quick(&endpoint.url)
    })
    .expect("sink");
    let key = key();
    let cp = checkpoint(&key, 5);
    sink.publish(&cp).await.expect("publish over https");
    let received = endpoint.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].authorization, None);
    Checkpoint::open(&received[0].body, &key.verifier()).expect("opens");

    // Without the CA the endpoint's certificate is not trusted: an error, not a copy.
    let untrusted = HttpSink::new(&HttpSinkConfig {
        attempts: 1,
        ..quick(&endpoint.url)
    })
    .expect("sink");
    untrusted
        .publish(&cp)
        .await
        .expect_err("untrusted certificate");
    assert_eq!(endpoint.received().len(), 1);
}

#[tokio::test]
async fn a_failing_endpoint_is_an_error_after_the_retries() {
    let endpoint = Endpoint::http().await;
    endpoint.state.status.store(500, Ordering::SeqCst);
    let sink = HttpSink::new(&quick(&endpoint.url)).expect("sink");
    let started = Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        sink.publish(&checkpoint(&key(), 1)),
    )
    .await
    .expect("does not hang")
    .expect_err("500 is an error");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(endpoint.received().len(), 3, "three tries");
    assert!(err.is_transient(), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("500"), "{message}");
    assert!(message.contains("attempt 3 of 3"), "{message}");
    assert!(
        !message.contains("log=test"),
        "no query in messages: {message}"
    );

    // A refusal that retrying cannot fix is not retried.
    endpoint.state.status.store(401, Ordering::SeqCst);
    let err = sink
        .publish(&checkpoint(&key(), 2))
        .await
        .expect_err("401 is an error");
    assert_eq!(endpoint.received().len(), 4, "one try");
    assert!(err.to_string().contains("attempt 1 of 3"), "{err}");

    // Recovered: the next checkpoint goes through.
    endpoint.state.status.store(0, Ordering::SeqCst);
    sink.publish(&checkpoint(&key(), 3)).await.expect("publish");
}

#[tokio::test]
async fn a_hanging_or_absent_endpoint_times_out() {
    let endpoint = Endpoint::http().await;
    endpoint.state.hang.store(true, Ordering::SeqCst);
    let sink = HttpSink::new(&HttpSinkConfig {
        timeout: Duration::from_millis(300),
        attempts: 2,
        ..quick(&endpoint.url)
    })
    .expect("sink");
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        sink.publish(&checkpoint(&key(), 1)),
    )
    .await
    .expect("bounded by the per-attempt timeout");
    assert!(
        matches!(result, Err(StoreError::Unavailable { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(endpoint.received().len(), 2);

    // Nobody listening: refused at once, retried, an error.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let absent = HttpSink::new(&quick(&format!("http://127.0.0.1:{port}/"))).expect("sink");
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        absent.publish(&checkpoint(&key(), 1)),
    )
    .await
    .expect("does not hang")
    .expect_err("nobody there");
    assert!(err.to_string().contains("attempt 3 of 3"), "{err}");
}

#[tokio::test]
async fn a_dead_endpoint_does_not_cost_the_file_copy() {
    let endpoint = Endpoint::http().await;
    endpoint.state.status.store(503, Ordering::SeqCst);
    let dir = tempfile::tempdir().expect("dir");
    let file = FileSink::new(dir.path().join("checkpoint"));
    let http = HttpSink::new(&HttpSinkConfig {
        attempts: 1,
        ..quick(&endpoint.url)
    })
    .expect("sink");
    let both = MultiSink::new(vec![Arc::new(http), Arc::new(file.clone())]);
    let cp = checkpoint(&key(), 9);
    let err = both.publish(&cp).await.expect_err("the endpoint failed");
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(std::fs::read_to_string(file.path()).expect("copy"), cp.note);
}

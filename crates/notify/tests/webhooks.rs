//! The notifier against a real local endpoint (hyper on 127.0.0.1:0, plain http or https with a test
//! CA): deliveries are signed, retried on 5xx/429/connection failures and not on other 4xx, `send`
//! returns before anything touches the network, a full queue drops its oldest event, and every
//! outcome reaches the reporter.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use custos_notify::format::{SLACK_FIELD_MAX, SLACK_HEADER_MAX, SLACK_TEXT_MAX};
use custos_notify::{
    verify_signature, AttemptError, DeliveryOptions, DeliveryOutcome, DeliveryReport, DropReason,
    Event, EventKind, Format, Notifier, NotifyError, Reporter, WebhookConfig,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const SECRET: &str = "5f0c1b7e9a2d4c6e8f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d1e3f5a7b9c0d2e";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---- the endpoint ----

/// One request as the endpoint saw it.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// What to answer, in order; 200 once the script runs out.
struct Answer {
    status: u16,
    retry_after: Option<&'static str>,
    body: &'static str,
}

fn status(status: u16) -> Answer {
    Answer {
        status,
        retry_after: None,
        body: "",
    }
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Answer>>,
    /// When each connection was accepted.
    contacts: Mutex<Vec<Instant>>,
    /// Read requests but never answer.
    silent: AtomicBool,
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
    /// Plain http on 127.0.0.1:0, answering `script` and then 200.
    async fn http(script: Vec<Answer>) -> Endpoint {
        Self::start(None, script).await
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
        Self::start(Some(TlsAcceptor::from(Arc::new(tls))), vec![]).await
    }

    async fn start(tls: Option<TlsAcceptor>, script: Vec<Answer>) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let addr = listener.local_addr().expect("addr");
        let url = format!("{scheme}://{addr}/hooks/custos-secret-path");
        let state = Arc::new(State {
            script: Mutex::new(script.into()),
            ..State::default()
        });
        let served = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                lock(&served.contacts).push(Instant::now());
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

    fn contacts(&self) -> Vec<Instant> {
        lock(&self.state.contacts).clone()
    }
}

async fn serve(io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static, state: Arc<State>) {
    let service = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(answer(&state, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

async fn answer(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let headers = req.headers().clone();
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    lock(&state.received).push(Received {
        headers,
        body: body.unwrap_or_default().to_vec(),
    });
    if state.silent.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let next = lock(&state.script).pop_front().unwrap_or(status(200));
    let mut resp = Response::new(Full::new(Bytes::from(next.body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(next.status).expect("status");
    if let Some(seconds) = next.retry_after {
        resp.headers_mut()
            .insert("retry-after", seconds.parse().expect("header"));
    }
    resp
}

// ---- the notifier's side ----

struct Setup {
    _dir: tempfile::TempDir,
    secret_file: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("dir");
        let secret_file = dir.path().join("webhook.secret");
        std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        Setup {
            _dir: dir,
            secret_file,
        }
    }

    fn config(&self, url: &str, format: Format) -> WebhookConfig {
        WebhookConfig::new(url, format, &self.secret_file)
    }

    fn dir(&self) -> &Path {
        self._dir.path()
    }
}

/// A reporter that keeps every report.
fn collector() -> (Reporter, Arc<Mutex<Vec<DeliveryReport>>>) {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let kept = reports.clone();
    let reporter: Reporter = Arc::new(move |r| lock(&kept).push(r));
    (reporter, reports)
}

/// Quick retries so tests take milliseconds.
fn fast(max_attempts: u32) -> DeliveryOptions {
    DeliveryOptions {
        max_attempts,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        queue_capacity: 1000,
    }
}

fn event(kind: EventKind, review_id: &str) -> Event {
    Event {
        kind,
        review_id: review_id.into(),
        summary: format!(
            "agent@x asks to delete deployments.apps/payments -n prod-eu — intent: roll back after \
             INC-1 — approve: custos reviews approve {review_id} --reason …"
        ),
        payload: json!({
            "id": review_id,
            "requester": { "username": "agent@x", "groups": ["agents"] },
            "session": { "id": "ss-1", "intent": "roll back after INC-1", "ticket": "INC-1" },
            "operation": { "verb": "delete", "apiGroup": "apps", "resource": "deployments",
                           "namespace": "prod-eu", "name": "payments" },
            "approvers": ["sre-oncall"],
            "threshold": 1,
            "state": "pending",
            "body": { "kind": "DeleteOptions", "token": "***" },
        }),
        at: "2027-01-15T10:00:00Z".into(),
    }
}

fn outcomes(reports: &Mutex<Vec<DeliveryReport>>) -> Vec<DeliveryOutcome> {
    lock(reports).iter().map(|r| r.outcome.clone()).collect()
}

async fn flushed(notifier: &Notifier) {
    assert!(
        notifier.flush(Duration::from_secs(20)).await,
        "queues drained"
    );
}

// ---- tests ----

#[tokio::test]
async fn a_delivery_is_signed_and_a_tampered_body_fails_verification() {
    let setup = Setup::new();
    let endpoint = Endpoint::http(vec![]).await;
    let (reporter, reports) = collector();
    let notifier =
        Notifier::new(&[setup.config(&endpoint.url, Format::Generic)], reporter).expect("notifier");
    notifier.send(event(EventKind::ReviewRequested, "rv-signed"));
    flushed(&notifier).await;

    let received = endpoint.received();
    assert_eq!(received.len(), 1);
    let req = &received[0];
    assert_eq!(req.header("content-type"), "application/json");
    assert_eq!(req.header("x-custos-event"), "review.requested");
    assert_eq!(req.header("x-custos-delivery").len(), 36, "a UUID");
    let timestamp = req.header("x-custos-timestamp");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let sent: u64 = timestamp.parse().expect("unix seconds");
    assert!(sent.abs_diff(now) < 300, "{sent} vs {now}");
    let signature = req.header("x-custos-signature");
    assert!(signature.starts_with("v1="), "{signature}");

    let secret = SECRET.as_bytes();
    assert!(verify_signature(secret, timestamp, &req.body, signature));
    let tampered = String::from_utf8(req.body.clone())
        .expect("utf-8")
        .replace("prod-eu", "staging");
    assert!(!verify_signature(
        secret,
        timestamp,
        tampered.as_bytes(),
        signature
    ));
    let later = (sent + 1).to_string();
    assert!(
        !verify_signature(secret, &later, &req.body, signature),
        "timestamp is signed"
    );
    assert!(!verify_signature(
        b"not the secret",
        timestamp,
        &req.body,
        signature
    ));

    let body = req.json();
    assert_eq!(body["kind"], "review.requested");
    assert_eq!(body["reviewId"], "rv-signed");
    assert_eq!(body["at"], "2027-01-15T10:00:00Z");
    assert_eq!(body["review"]["operation"]["name"], "payments");

    let reports = lock(&reports).clone();
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(
        report.outcome,
        DeliveryOutcome::Delivered {
            attempt: 1,
            status: 200
        }
    );
    assert_eq!(report.delivery_id, req.header("x-custos-delivery"));
    assert_eq!(
        (report.webhook, report.kind),
        (0, EventKind::ReviewRequested)
    );
    assert_eq!(report.review_id, "rv-signed");
    assert!(
        !report.endpoint.contains("secret-path"),
        "the path stays out of reports"
    );
    assert!(endpoint.url.starts_with(&report.endpoint));
}

#[tokio::test]
async fn a_server_answering_500_twice_then_200_gets_three_attempts_and_a_delivered_report() {
    let setup = Setup::new();
    let endpoint = Endpoint::http(vec![status(500), status(500)]).await;
    let (reporter, reports) = collector();
    let notifier = Notifier::with_options(
        &[setup.config(&endpoint.url, Format::Generic)],
        reporter,
        fast(8),
    )
    .expect("notifier");
    notifier.send(event(EventKind::ReviewRequested, "rv-retried"));
    flushed(&notifier).await;

    let received = endpoint.received();
    assert_eq!(received.len(), 3, "three attempts");
    let id = received[0].header("x-custos-delivery");
    for req in &received {
        assert_eq!(
            req.header("x-custos-delivery"),
            id,
            "one delivery id across retries"
        );
        assert!(verify_signature(
            SECRET.as_bytes(),
            req.header("x-custos-timestamp"),
            &req.body,
            req.header("x-custos-signature")
        ));
    }
    let outcomes = outcomes(&reports);
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    for (i, outcome) in outcomes[..2].iter().enumerate() {
        match outcome {
            DeliveryOutcome::Failed {
                attempt,
                error,
                retry_in,
            } => {
                assert_eq!(*attempt, i as u32 + 1);
                assert!(
                    matches!(error, AttemptError::Status { status: 500, .. }),
                    "{error}"
                );
                assert!(*retry_in <= Duration::from_millis(50), "{retry_in:?}");
            }
            other => panic!("attempt {}: {other:?}", i + 1),
        }
    }
    assert_eq!(
        outcomes[2],
        DeliveryOutcome::Delivered {
            attempt: 3,
            status: 200
        }
    );
    assert!(outcomes[2].is_final() && !outcomes[0].is_final());
}

#[tokio::test]
async fn a_400_gives_up_after_one_attempt() {
    let setup = Setup::new();
    let endpoint = Endpoint::http(vec![Answer {
        status: 400,
        retry_after: None,
        body: "invalid_payload\n\u{1b}[31m",
    }])
    .await;
    let (reporter, reports) = collector();
    let notifier = Notifier::with_options(
        &[setup.config(&endpoint.url, Format::Slack)],
        reporter,
        fast(8),
    )
    .expect("notifier");
    notifier.send(event(EventKind::ReviewDenied, "rv-refused"));
    flushed(&notifier).await;

    assert_eq!(endpoint.received().len(), 1, "no retry");
    let outcomes = outcomes(&reports);
    assert_eq!(
        outcomes,
        [DeliveryOutcome::GaveUp {
            attempts: 1,
            error: AttemptError::Status {
                status: 400,
                body: "invalid_payload  [31m".into()
            },
        }]
    );
}

#[tokio::test]
async fn a_429_is_retried_and_its_retry_after_is_capped() {
    let setup = Setup::new();
    let endpoint = Endpoint::http(vec![Answer {
        status: 429,
        retry_after: Some("3600"),
        body: "",
    }])
    .await;
    let (reporter, reports) = collector();
    let notifier = Notifier::with_options(
        &[setup.config(&endpoint.url, Format::Generic)],
        reporter,
        fast(8),
    )
    .expect("notifier");
    notifier.send(event(EventKind::ReviewRequested, "rv-throttled"));
    flushed(&notifier).await;

    let outcomes = outcomes(&reports);
    assert_eq!(
        outcomes,
        [
            DeliveryOutcome::Failed {
                attempt: 1,
                error: AttemptError::Status {
                    status: 429,
                    body: String::new()
                },
                retry_in: Duration::from_millis(50),
            },
            DeliveryOutcome::Delivered {
                attempt: 2,
                status: 200
            },
        ]
    );
}

/// `#[tokio::test]` runs everything on this one thread, so while the test body runs without awaiting,
/// no delivery task and no endpoint task can: whatever `send` did, it did without the network.
#[tokio::test]
async fn send_returns_before_a_silent_endpoint_is_contacted_and_timeouts_are_reported() {
    let setup = Setup::new();
    let endpoint = Endpoint::http(vec![]).await;
    endpoint.state.silent.store(true, Ordering::SeqCst);
    let (reporter, reports) = collector();
    let mut config = setup.config(&endpoint.url, Format::Generic);
    config.timeout_seconds = 1;
    let notifier = Notifier::with_options(&[config], reporter, fast(2)).expect("notifier");

    notifier.send(event(EventKind::ReviewRequested, "rv-silent"));
    let returned = Instant::now();
    assert!(
        endpoint.contacts().is_empty(),
        "send did not wait for the endpoint"
    );
    assert!(lock(&reports).is_empty());

    flushed(&notifier).await;
    let contacts = endpoint.contacts();
    assert_eq!(contacts.len(), 2, "one connection per attempt");
    assert!(
        returned < contacts[0],
        "send returned before the endpoint was contacted"
    );
    let outcomes = outcomes(&reports);
    assert!(
        matches!(
            outcomes.as_slice(),
            [
                DeliveryOutcome::Failed {
                    attempt: 1,
                    error: AttemptError::Timeout,
                    ..
                },
                DeliveryOutcome::GaveUp {
                    attempts: 2,
                    error: AttemptError::Timeout
                },
            ]
        ),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_reports_each_failed_attempt_then_gives_up() {
    let setup = Setup::new();
    // A port that was just free: nothing listens there, so connections are refused.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let url = format!("http://{addr}/services/T0/B0/secret-path");
    let (reporter, reports) = collector();
    let notifier = Notifier::with_options(&[setup.config(&url, Format::Slack)], reporter, fast(3))
        .expect("notifier");
    notifier.send(event(EventKind::ReviewRequested, "rv-nowhere"));
    assert!(lock(&reports).is_empty(), "nothing happened inside send");
    flushed(&notifier).await;

    let reports = lock(&reports).clone();
    let attempts: Vec<(u32, bool)> = reports
        .iter()
        .map(|r| match &r.outcome {
            DeliveryOutcome::Failed {
                attempt,
                error: AttemptError::Request(_),
                ..
            } => (*attempt, false),
            DeliveryOutcome::GaveUp {
                attempts,
                error: AttemptError::Request(_),
            } => (*attempts, true),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(attempts, [(1, false), (2, false), (3, true)]);
    for report in &reports {
        assert!(!format!("{report:?}").contains("secret-path"), "{report:?}");
    }
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_event_and_reports_it() {
    let setup = Setup::new();
    let endpoint = Endpoint::http(vec![]).await;
    let (reporter, reports) = collector();
    let options = DeliveryOptions {
        queue_capacity: 2,
        ..fast(3)
    };
    let notifier = Notifier::with_options(
        &[setup.config(&endpoint.url, Format::Generic)],
        reporter,
        options,
    )
    .expect("notifier");
    // No await in between: the delivery task cannot take anything off the queue meanwhile.
    for id in ["rv-1", "rv-2", "rv-3"] {
        notifier.send(event(EventKind::ReviewRequested, id));
    }
    {
        let reports = lock(&reports);
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].review_id, "rv-1", "the oldest is dropped");
        assert_eq!(
            reports[0].outcome,
            DeliveryOutcome::Dropped {
                reason: DropReason::QueueFull
            }
        );
    }
    flushed(&notifier).await;
    let delivered: Vec<String> = endpoint
        .received()
        .iter()
        .map(|r| r.json()["reviewId"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(delivered, ["rv-2", "rv-3"], "the newest two, in order");
    let tail: Vec<(String, DeliveryOutcome)> = lock(&reports)[1..]
        .iter()
        .map(|r| (r.review_id.clone(), r.outcome.clone()))
        .collect();
    let ok = DeliveryOutcome::Delivered {
        attempt: 1,
        status: 200,
    };
    assert_eq!(tail, [("rv-2".into(), ok.clone()), ("rv-3".into(), ok)]);
}

#[tokio::test]
async fn a_slack_webhook_receives_text_and_blocks_within_block_kit_limits() {
    let setup = Setup::new();
    let endpoint = Endpoint::http(vec![]).await;
    let (reporter, _reports) = collector();
    let notifier =
        Notifier::new(&[setup.config(&endpoint.url, Format::Slack)], reporter).expect("notifier");
    let mut long = event(EventKind::ReviewRequested, "rv-slack");
    long.payload["session"]["intent"] = json!("why ".repeat(2000));
    long.summary = format!("{} <!here>", "s".repeat(5000));
    notifier.send(long);
    flushed(&notifier).await;

    let received = endpoint.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].header("x-custos-event"), "review.requested");
    let body = received[0].json();
    let text = body["text"].as_str().expect("text");
    assert_eq!(text.chars().count(), SLACK_TEXT_MAX);
    assert!(text.ends_with('…'));
    let blocks = body["blocks"].as_array().expect("blocks");
    assert_eq!(blocks[0]["type"], "header");
    assert!(
        blocks[0]["text"]["text"]
            .as_str()
            .expect("header")
            .chars()
            .count()
            <= SLACK_HEADER_MAX
    );
    let summary = blocks[1]["text"]["text"].as_str().expect("summary");
    assert!(summary.chars().count() <= SLACK_TEXT_MAX);
    let fields = blocks[2]["fields"].as_array().expect("fields");
    assert!(fields.len() <= 10);
    for field in fields {
        assert!(field["text"].as_str().expect("field").chars().count() <= SLACK_FIELD_MAX);
    }
    assert!(fields[0]["text"]
        .as_str()
        .expect("op")
        .contains("delete deployments.apps/payments -n prod-eu"));
    let commands = blocks[3]["text"]["text"].as_str().expect("commands");
    assert!(
        commands.contains("custos reviews approve rv-slack"),
        "{commands}"
    );
    assert!(
        commands.contains("custos reviews deny rv-slack"),
        "{commands}"
    );
    assert!(
        !body.to_string().contains("<!here>"),
        "mentions are escaped"
    );
}

#[tokio::test]
async fn the_events_filter_sends_only_the_chosen_kinds() {
    let setup = Setup::new();
    let endpoint = Endpoint::http(vec![]).await;
    let (reporter, reports) = collector();
    let mut config = setup.config(&endpoint.url, Format::Generic);
    config.events = Some(vec![EventKind::ReviewExpired]);
    let notifier = Notifier::new(&[config], reporter).expect("notifier");
    notifier.send(event(EventKind::ReviewRequested, "rv-a"));
    notifier.send(event(EventKind::ReviewExpired, "rv-b"));
    notifier.send(event(EventKind::GrantCreated, "rv-c"));
    flushed(&notifier).await;

    let kinds: Vec<String> = endpoint
        .received()
        .iter()
        .map(|r| r.header("x-custos-event").to_owned())
        .collect();
    assert_eq!(kinds, ["review.expired"]);
    assert_eq!(lock(&reports).len(), 1, "filtered events are not reported");
}

#[tokio::test]
async fn https_is_delivered_with_the_configured_ca_and_refused_without_it() {
    let setup = Setup::new();
    let ca = custos_testkit::TestCa::new();
    let endpoint = Endpoint::https(&ca).await;
    let mut trusted = setup.config(&endpoint.url, Format::Generic);
    trusted.ca_file = Some(ca.write_to(setup.dir()).expect("write CA"));
    let untrusted = setup.config(&endpoint.url, Format::Generic);
    let (reporter, reports) = collector();
    let notifier =
        Notifier::with_options(&[trusted, untrusted], reporter, fast(1)).expect("notifier");
    notifier.send(event(EventKind::GrantCreated, "rv-tls"));
    flushed(&notifier).await;

    assert_eq!(
        endpoint.received().len(),
        1,
        "only the client trusting the CA got through"
    );
    let mut by_webhook: Vec<(usize, DeliveryOutcome)> = lock(&reports)
        .iter()
        .map(|r| (r.webhook, r.outcome.clone()))
        .collect();
    by_webhook.sort_by_key(|(w, _)| *w);
    assert_eq!(
        by_webhook[0],
        (
            0,
            DeliveryOutcome::Delivered {
                attempt: 1,
                status: 200
            }
        )
    );
    assert!(
        matches!(
            &by_webhook[1],
            (
                1,
                DeliveryOutcome::GaveUp {
                    attempts: 1,
                    error: AttemptError::Request(_)
                }
            )
        ),
        "{by_webhook:?}"
    );
}

#[tokio::test]
async fn dropping_the_notifier_reports_what_it_never_delivered() {
    let setup = Setup::new();
    let endpoint = Endpoint::http(vec![]).await;
    endpoint.state.silent.store(true, Ordering::SeqCst);
    let (reporter, reports) = collector();
    let notifier =
        Notifier::new(&[setup.config(&endpoint.url, Format::Generic)], reporter).expect("notifier");
    notifier.send(event(EventKind::ReviewRequested, "rv-in-flight"));
    notifier.send(event(EventKind::ReviewRequested, "rv-queued"));
    assert!(
        !notifier.flush(Duration::from_millis(300)).await,
        "the endpoint never answers"
    );
    assert_eq!(endpoint.received().len(), 1, "the first is in flight");
    drop(notifier);

    let deadline = Instant::now() + Duration::from_secs(10);
    while lock(&reports).len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut dropped: Vec<(String, DeliveryOutcome)> = lock(&reports)
        .iter()
        .map(|r| (r.review_id.clone(), r.outcome.clone()))
        .collect();
    dropped.sort_by(|a, b| a.0.cmp(&b.0));
    let shutdown = DeliveryOutcome::Dropped {
        reason: DropReason::Shutdown,
    };
    assert_eq!(
        dropped,
        [
            ("rv-in-flight".into(), shutdown.clone()),
            ("rv-queued".into(), shutdown)
        ]
    );
}

#[tokio::test]
async fn a_bad_webhook_is_named_by_its_position_and_field() {
    let setup = Setup::new();
    let (reporter, _) = collector();
    let configs = [
        setup.config("https://hooks.example.com/a", Format::Slack),
        setup.config("http://hooks.example.com/b", Format::Generic),
    ];
    let err = Notifier::new(&configs, reporter).expect_err("plain http to a remote host");
    assert!(
        matches!(err, NotifyError::Webhook { index: 1, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("approvals.webhooks[1]: url: "),
        "{err}"
    );
}

#[test]
fn a_notifier_needs_a_runtime() {
    let (reporter, _) = collector();
    assert!(matches!(
        Notifier::new(&[], reporter),
        Err(NotifyError::NoRuntime)
    ));
}

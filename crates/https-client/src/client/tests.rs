use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{client, ClientError, ClientOptions};
use crate::RootsReason;

const UA: &str = "custos-https-client-test/1";

fn options() -> ClientOptions<'static> {
    ClientOptions::new(UA, Duration::from_secs(5))
}

/// A plain-http endpoint that answers one request with `response` and returns what it received.
async fn answer_once(response: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/start", listener.local_addr().expect("addr"));
    let served = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.expect("accept");
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.expect("read");
            assert!(n > 0, "request ended early");
            request.extend_from_slice(&buf[..n]);
        }
        conn.write_all(response.as_bytes()).await.expect("write");
        String::from_utf8_lossy(&request).into_owned()
    });
    (url, served)
}

#[test]
fn builds_with_the_platform_verifier_or_a_ca_file() {
    client(options()).expect("platform roots");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ca.pem");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![]).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(&path, params.self_signed(&key).expect("cert").pem()).expect("write");
    client(ClientOptions {
        ca_file: Some(&path),
        ..options()
    })
    .expect("CA file roots");
}

#[test]
fn a_bad_ca_file_is_a_roots_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing.pem");
    let err = client(ClientOptions {
        ca_file: Some(&path),
        ..options()
    })
    .expect_err("refused");
    let ClientError::Roots(roots) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(roots.path, path);
    assert!(
        matches!(roots.reason, RootsReason::Unreadable(_)),
        "{err:?}"
    );
    assert_eq!(err.to_string(), roots.to_string());
}

#[tokio::test]
async fn a_redirect_is_the_answer_not_followed() {
    let (url, served) = answer_once(
        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n",
    )
    .await;
    let resp = client(options())
        .expect("client")
        .get(&url)
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), reqwest::StatusCode::FOUND);
    let request = served.await.expect("served");
    assert!(request.starts_with("GET /start "), "{request}");
    assert!(
        request
            .to_ascii_lowercase()
            .contains(&format!("user-agent: {UA}\r\n")),
        "{request}"
    );
}

#[tokio::test]
async fn https_only_refuses_plain_http_before_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let err = client(ClientOptions {
        https_only: true,
        ..options()
    })
    .expect("client")
    .get(&url)
    .send()
    .await
    .expect_err("refused");
    assert!(err.is_builder(), "{err:?}");
    let nobody = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
    assert!(nobody.is_err(), "no connection was made");
}

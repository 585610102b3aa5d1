//! Authentication against a fake OIDC provider over real HTTPS (discovery + JWKS), and client
//! certificates through a real TLS handshake.

use std::sync::Arc;
use std::time::Duration;

use custos_authn::{
    client_cert_verifier, AuthMethod, Authenticator, AuthnError, ClientCertConfig, FetchError,
    OidcAuthenticator, OidcIssuerConfig, SigningAlg, MAX_TOKEN_BYTES,
};
use custos_testkit::jwt::{hostile, jwks_of, now, AUDIENCE};
use custos_testkit::{FakeOidc, TestCa, TestIssuer, TestKey};
use jsonwebtoken::{Algorithm, Header};
use serde_json::json;

struct Fixture {
    idp: FakeOidc,
    authn: Authenticator,
    _dir: tempfile::TempDir,
}

async fn fixture_with(edit: impl FnOnce(&mut OidcIssuerConfig)) -> Fixture {
    let idp = FakeOidc::start().await.expect("fake IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = OidcIssuerConfig::new(idp.url(), vec![AUDIENCE.into()]);
    config.ca_file = Some(idp.ca().write_to(dir.path()).expect("write CA"));
    config.username_prefix = Some("oidc:".into());
    config.groups_prefix = Some("oidc:".into());
    edit(&mut config);
    let oidc = OidcAuthenticator::new(vec![config]).expect("valid config");
    Fixture {
        idp,
        authn: Authenticator::new().with_oidc(oidc),
        _dir: dir,
    }
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

impl Fixture {
    fn issuer(&self) -> &TestIssuer {
        self.idp.issuer()
    }

    async fn auth(&self, token: &str) -> Result<custos_authn::Identity, AuthnError> {
        self.authn.authenticate(Some(token), None).await
    }
}

#[tokio::test]
async fn valid_token_maps_to_identity_with_prefixed_username_and_groups() {
    let f = fixture().await;
    let mut claims = f.issuer().claims("alice");
    claims["groups"] = json!(["dev", "ops"]);
    let id = f.auth(&f.issuer().token(&claims)).await.expect("valid");
    assert_eq!(id.user.username, "oidc:alice");
    assert_eq!(id.user.groups, vec!["oidc:dev", "oidc:ops"]);
    assert_eq!(
        id.method,
        AuthMethod::Oidc {
            issuer: f.idp.url().into()
        }
    );
    assert_eq!(id.token_id, claims["jti"].as_str().map(String::from));
    assert_eq!(id.expires_at, claims["exp"].as_u64());
    assert_eq!((f.idp.discovery_requests(), f.idp.jwks_requests()), (1, 1));
}

#[tokio::test]
async fn default_username_prefix_is_the_issuer_url() {
    let f = fixture_with(|c| c.username_prefix = None).await;
    let id = f
        .auth(&f.issuer().token(&f.issuer().claims("alice")))
        .await
        .expect("valid");
    assert_eq!(id.user.username, format!("{}#alice", f.idp.url()));
}

#[tokio::test]
async fn expired_token_is_rejected() {
    let f = fixture().await;
    let claims = f.issuer().claims_at("alice", now() - 3600);
    assert!(matches!(
        f.auth(&f.issuer().token(&claims)).await,
        Err(AuthnError::Expired)
    ));
}

#[tokio::test]
async fn not_yet_valid_token_is_rejected() {
    let f = fixture().await;
    let mut claims = f.issuer().claims("alice");
    claims["nbf"] = json!(now() + 600);
    assert!(matches!(
        f.auth(&f.issuer().token(&claims)).await,
        Err(AuthnError::NotYetValid)
    ));
}

#[tokio::test]
async fn token_from_an_untrusted_issuer_is_rejected_without_fetching() {
    let f = fixture().await;
    let evil = TestIssuer::new("https://evil.example.com");
    let err = f.auth(&evil.token(&evil.claims("alice"))).await;
    assert!(matches!(err, Err(AuthnError::UnknownIssuer { .. })));
    assert_eq!(f.idp.jwks_requests(), 0);
}

#[tokio::test]
async fn wrong_audience_is_rejected() {
    let f = fixture().await;
    let mut claims = f.issuer().claims("alice");
    claims["aud"] = json!(["someone-else"]);
    assert!(matches!(
        f.auth(&f.issuer().token(&claims)).await,
        Err(AuthnError::WrongAudience)
    ));
}

#[tokio::test]
async fn bad_signature_is_rejected() {
    let f = fixture().await;
    let token = f.issuer().token(&f.issuer().claims("alice"));
    let err = f.auth(&hostile::tampered_signature(&token)).await;
    assert!(matches!(err, Err(AuthnError::BadSignature)));
    let forged = hostile::swapped_payload(&token, &f.issuer().claims("admin"));
    assert!(matches!(
        f.auth(&forged).await,
        Err(AuthnError::BadSignature)
    ));
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let f = fixture().await;
    let token = hostile::alg_none(&f.issuer().claims("alice"), TestKey::RsaA.kid());
    let err = f.auth(&token).await;
    assert!(matches!(err, Err(AuthnError::AlgorithmNotAllowed { ref alg }) if alg == "none"));
    assert_eq!(f.idp.jwks_requests(), 0);
}

#[tokio::test]
async fn hmac_signed_with_the_rsa_public_key_is_rejected() {
    let f = fixture_with(|c| c.signing_algs = SigningAlg::ALL.to_vec()).await;
    let token = hostile::hs256_with_public_key(&f.issuer().claims("alice"), TestKey::RsaA);
    let err = f.auth(&token).await;
    assert!(matches!(err, Err(AuthnError::AlgorithmNotAllowed { ref alg }) if alg == "HS256"));
}

#[tokio::test]
async fn garbage_is_rejected() {
    let f = fixture().await;
    for garbage in [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJSUzI1NiJ9.!!!.sig",
        "....",
        "Bearer x",
    ] {
        let err = f.auth(garbage).await;
        assert!(
            matches!(err, Err(AuthnError::MalformedToken(_))),
            "{garbage}: {err:?}"
        );
    }
    assert_eq!(f.idp.jwks_requests(), 0);
}

#[tokio::test]
async fn oversize_token_is_rejected() {
    let f = fixture().await;
    let mut claims = f.issuer().claims("alice");
    claims["padding"] = json!("x".repeat(MAX_TOKEN_BYTES));
    let token = f.issuer().token(&claims);
    assert!(matches!(
        f.auth(&token).await,
        Err(AuthnError::TokenTooLarge { .. })
    ));
}

#[tokio::test]
async fn ec_and_ed25519_tokens_verify_when_allowed() {
    let f = fixture_with(|c| c.signing_algs = vec![SigningAlg::Es256, SigningAlg::EdDsa]).await;
    let claims = f.issuer().claims("alice");
    for key in [TestKey::EcP256, TestKey::Ed25519] {
        let token = f.issuer().token_with(key, key.default_alg(), &claims);
        f.auth(&token).await.expect("verifies");
    }
    let rsa = f.issuer().token(&claims);
    assert!(matches!(
        f.auth(&rsa).await,
        Err(AuthnError::AlgorithmNotAllowed { .. })
    ));
}

#[tokio::test]
async fn unknown_kid_triggers_one_refresh_and_succeeds_after_key_rotation() {
    let f = fixture_with(|c| c.jwks_min_refresh_secs = 1).await;
    let claims = f.issuer().claims("alice");
    f.auth(&f.issuer().token(&claims)).await.expect("rsa-a");
    assert_eq!(f.idp.jwks_requests(), 1);

    // The IdP rotates to a new key; the next token names it.
    f.idp.set_jwks(jwks_of(&[TestKey::RsaB]));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated = f
        .issuer()
        .token_with(TestKey::RsaB, Algorithm::RS256, &claims);
    f.auth(&rotated).await.expect("rsa-b after one refresh");
    assert_eq!(f.idp.jwks_requests(), 2);
    // Known again: no more fetches.
    f.auth(&rotated).await.expect("cached");
    assert_eq!(f.idp.jwks_requests(), 2);
    // The old key is gone from the JWKS, so its tokens no longer verify. (A token verified before the
    // rotation may still be honoured from the verified-token cache for its short TTL; this one never was.)
    let old = f.issuer().token(&f.issuer().claims("bob"));
    assert!(matches!(
        f.auth(&old).await,
        Err(AuthnError::UnknownKey { .. })
    ));
}

#[tokio::test]
async fn flood_of_unknown_kids_fetches_at_most_once_per_interval() {
    let f = fixture().await;
    let claims = f.issuer().claims("mallory");
    let authn = Arc::new(f.authn);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(format!("random-kid-{i}"));
            let token = f
                .idp
                .issuer()
                .token_with_header(TestKey::RsaA, &header, &claims);
            let authn = authn.clone();
            tokio::spawn(async move { authn.authenticate(Some(&token), None).await })
        })
        .collect();
    for task in tasks {
        let result = task.await.expect("join");
        assert!(
            matches!(result, Err(AuthnError::UnknownKey { .. })),
            "{result:?}"
        );
    }
    assert_eq!(f.idp.jwks_requests(), 1);
    assert_eq!(f.idp.discovery_requests(), 1);
}

#[tokio::test]
async fn failed_refresh_keeps_the_keys_already_held() {
    let f = fixture_with(|c| c.jwks_min_refresh_secs = 1).await;
    let claims = f.issuer().claims("alice");
    f.auth(&f.issuer().token(&claims))
        .await
        .expect("loads keys");
    f.idp.set_jwks_status(500);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = f.authn.refresh().await;
    assert!(report[0].keys_loaded);
    assert!(report[0]
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("500")));
    f.auth(&f.issuer().token(&claims))
        .await
        .expect("old keys still verify");
}

#[tokio::test]
async fn readiness_turns_true_after_refresh() {
    let f = fixture().await;
    assert!(!f.authn.is_ready());
    let report = f.authn.refresh().await;
    assert!(f.authn.is_ready());
    assert_eq!(report[0].issuer, f.idp.url());
    assert_eq!(report[0].key_count, 3);
}

#[tokio::test]
async fn discovery_naming_another_issuer_makes_keys_unavailable() {
    let f = fixture().await;
    f.idp.set_discovery_issuer("https://evil.example.com");
    let err = f.auth(&f.issuer().token(&f.issuer().claims("alice"))).await;
    match err {
        Err(
            e @ AuthnError::KeysUnavailable {
                source: FetchError::IssuerMismatch { .. },
                ..
            },
        ) => {
            assert!(!e.is_client_fault());
        }
        other => panic!("expected KeysUnavailable(IssuerMismatch), got {other:?}"),
    }
    assert_eq!(f.idp.jwks_requests(), 0);
}

#[tokio::test]
async fn issuer_with_a_certificate_from_another_ca_is_not_trusted() {
    let idp = FakeOidc::start().await.expect("fake IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = OidcIssuerConfig::new(idp.url(), vec![AUDIENCE.into()]);
    config.ca_file = Some(TestCa::new().write_to(dir.path()).expect("write CA"));
    let oidc = OidcAuthenticator::new(vec![config]).expect("valid config");
    let token = idp.issuer().token(&idp.issuer().claims("alice"));
    let err = oidc.authenticate(&token, now()).await;
    assert!(
        matches!(
            err,
            Err(AuthnError::KeysUnavailable {
                source: FetchError::Http { .. },
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(idp.discovery_requests(), 0);
}

/// Runs one TLS handshake against a server using [`client_cert_verifier`]; returns the identity of
/// the client certificate the server saw (`Ok(None)` for no certificate), or the handshake error.
async fn handshake(
    client_ca: &TestCa,
    client_cert: Option<&custos_testkit::CertifiedKey>,
) -> Result<Option<custos_authn::Identity>, String> {
    use tokio_rustls::rustls;
    let server_ca = TestCa::new();
    let server_cert = server_ca.server_cert(&["localhost"]);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ca_file = client_ca.write_to(dir.path()).map_err(|e| e.to_string())?;
    let verifier =
        client_cert_verifier(&ClientCertConfig { ca_file }).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(server_cert.cert_chain(), server_cert.private_key())
        .map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(server_ca.cert_der().to_vec().into())
        .map_err(|e| e.to_string())?;
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let client = match client_cert {
        Some(c) => client.with_client_auth_cert(c.cert_chain(), c.private_key()),
        None => Ok(client.with_no_client_auth()),
    }
    .map_err(|e| e.to_string())?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let server_side = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let peer = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first().cloned());
        match peer {
            Some(der) => custos_authn::identity_from_client_cert(&der)
                .map(Some)
                .map_err(|e| e.to_string()),
            None => Ok(None),
        }
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    // With TLS 1.3 the client may finish before the server rejects its certificate; the server's
    // result is the one that counts.
    let _client_side = connector.connect(name, tcp).await;
    server_side.await.map_err(|e| e.to_string())?
}

#[tokio::test]
async fn client_certificate_from_the_client_ca_maps_through_a_real_handshake() {
    let ca = TestCa::new();
    let cert = ca.client_cert("alice", &["dev"]);
    let id = handshake(&ca, Some(&cert))
        .await
        .expect("handshake")
        .expect("cert seen");
    assert_eq!(id.user.username, "alice");
    assert_eq!(id.user.groups, vec!["dev"]);
    let authn = Authenticator::new().with_client_certs();
    let via_authn = authn
        .authenticate(None, Some(&cert.cert_der))
        .await
        .expect("maps");
    assert_eq!(via_authn.user, id.user);
}

#[tokio::test]
async fn client_certificate_is_optional_but_a_foreign_one_fails_the_handshake() {
    let ca = TestCa::new();
    assert!(handshake(&ca, None)
        .await
        .expect("no cert is fine")
        .is_none());
    let foreign = TestCa::new().client_cert("mallory", &["system:masters"]);
    assert!(handshake(&ca, Some(&foreign)).await.is_err());
}

use super::jwks::tests::FakeSource;
use super::*;
use custos_testkit::jwt::{hostile, now};
use custos_testkit::{TestIssuer, TestKey};
use jsonwebtoken::{Algorithm, Header};

const A: &str = "https://a.example.com";
const B: &str = "https://b.example.com/dex";

fn config(url: &str) -> OidcIssuerConfig {
    let mut cfg = OidcIssuerConfig::new(url, vec![custos_testkit::jwt::AUDIENCE.into()]);
    cfg.signing_algs = SigningAlg::ALL.to_vec();
    cfg
}

fn authenticator(sources: &[(&str, &Arc<FakeSource>)]) -> OidcAuthenticator {
    OidcAuthenticator::with_key_sources(
        sources
            .iter()
            .map(|(url, s)| (config(url), (*s).clone() as Arc<dyn KeySource>))
            .collect(),
    )
    .expect("valid config")
}

fn default_keys() -> Arc<FakeSource> {
    FakeSource::new(&[TestKey::RsaA, TestKey::EcP256, TestKey::Ed25519])
}

#[tokio::test]
async fn every_allowed_algorithm_verifies_with_a_fitting_key() {
    let source = default_keys();
    let authn = authenticator(&[(A, &source)]);
    let issuer = TestIssuer::new(A);
    for (key, alg) in [
        (TestKey::RsaA, Algorithm::RS256),
        (TestKey::RsaA, Algorithm::RS384),
        (TestKey::RsaA, Algorithm::RS512),
        (TestKey::RsaA, Algorithm::PS256),
        (TestKey::RsaA, Algorithm::PS512),
        (TestKey::EcP256, Algorithm::ES256),
        (TestKey::Ed25519, Algorithm::EdDSA),
    ] {
        let token = issuer.token_with(key, alg, &issuer.claims("alice"));
        let id = authn.authenticate(&token, now()).await.expect("valid");
        assert_eq!(id.user.username, format!("{A}#alice"), "{alg:?}");
    }
    assert_eq!(source.fetches(), 1);
}

#[tokio::test]
async fn algorithm_outside_the_allow_list_is_rejected() {
    let source = default_keys();
    let cfg = OidcIssuerConfig::new(A, vec![custos_testkit::jwt::AUDIENCE.into()]);
    let authn =
        OidcAuthenticator::with_key_sources(vec![(cfg, source.clone() as Arc<dyn KeySource>)])
            .expect("config");
    let issuer = TestIssuer::new(A);
    let token = issuer.token_with(TestKey::EcP256, Algorithm::ES256, &issuer.claims("alice"));
    assert!(matches!(
        authn.authenticate(&token, now()).await,
        Err(AuthnError::AlgorithmNotAllowed { alg }) if alg == "ES256"
    ));
    assert_eq!(
        source.fetches(),
        0,
        "a disallowed algorithm must not cause a fetch"
    );
}

#[tokio::test]
async fn alg_none_and_hmac_are_never_accepted() {
    let source = default_keys();
    let authn = authenticator(&[(A, &source)]);
    let issuer = TestIssuer::new(A);
    let claims = issuer.claims("mallory");
    assert!(matches!(
        authn.authenticate(&hostile::alg_none(&claims, "rsa-a"), now()).await,
        Err(AuthnError::AlgorithmNotAllowed { alg }) if alg == "none"
    ));
    assert!(matches!(
        authn.authenticate(&hostile::hs256_with_public_key(&claims, TestKey::RsaA), now()).await,
        Err(AuthnError::AlgorithmNotAllowed { alg }) if alg == "HS256"
    ));
}

#[tokio::test]
async fn header_alg_must_fit_the_named_key() {
    let source = default_keys();
    let authn = authenticator(&[(A, &source)]);
    let issuer = TestIssuer::new(A);
    // Signed with the RSA key, but claims the EC key's kid.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(TestKey::EcP256.kid().into());
    let token = issuer.token_with_header(TestKey::RsaA, &header, &issuer.claims("alice"));
    assert!(matches!(
        authn.authenticate(&token, now()).await,
        Err(AuthnError::KeyMismatch { alg }) if alg == "RS256"
    ));
}

#[tokio::test]
async fn empty_or_tampered_signature_is_rejected() {
    let source = default_keys();
    let authn = authenticator(&[(A, &source)]);
    let issuer = TestIssuer::new(A);
    let token = issuer.token(&issuer.claims("alice"));
    let unsigned = format!("{}.", token.rsplit_once('.').expect("parts").0);
    assert!(matches!(
        authn.authenticate(&unsigned, now()).await,
        Err(AuthnError::BadSignature)
    ));
    let tampered = hostile::tampered_signature(&token);
    assert!(matches!(
        authn.authenticate(&tampered, now()).await,
        Err(AuthnError::BadSignature)
    ));
    let swapped = hostile::swapped_payload(&token, &issuer.claims("admin"));
    assert!(matches!(
        authn.authenticate(&swapped, now()).await,
        Err(AuthnError::BadSignature)
    ));
}

#[tokio::test]
async fn token_is_routed_to_the_issuer_named_by_iss() {
    let (sa, sb) = (default_keys(), default_keys());
    let authn = authenticator(&[(A, &sa), (B, &sb)]);
    let ib = TestIssuer::new(B);
    let id = authn
        .authenticate(&ib.token(&ib.claims("bob")), now())
        .await
        .expect("valid");
    assert_eq!(id.method, crate::AuthMethod::Oidc { issuer: B.into() });
    assert_eq!((sa.fetches(), sb.fetches()), (0, 1));
    let other = TestIssuer::new("https://c.example.com");
    assert!(matches!(
        authn.authenticate(&other.token(&other.claims("eve")), now()).await,
        Err(AuthnError::UnknownIssuer { iss }) if iss == "https://c.example.com"
    ));
    let mut no_iss = ib.claims("bob");
    no_iss.as_object_mut().expect("object").remove("iss");
    assert!(matches!(
        authn.authenticate(&ib.token(&no_iss), now()).await,
        Err(AuthnError::MissingClaim { .. })
    ));
}

#[tokio::test]
async fn issuer_url_must_match_exactly() {
    let source = default_keys();
    let authn = authenticator(&[(A, &source)]);
    let slash = TestIssuer::new(format!("{A}/"));
    assert!(matches!(
        authn
            .authenticate(&slash.token(&slash.claims("alice")), now())
            .await,
        Err(AuthnError::UnknownIssuer { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn rotated_key_is_found_after_one_refresh_and_random_kids_are_rate_limited() {
    let source = FakeSource::new(&[TestKey::RsaA]);
    let authn = authenticator(&[(A, &source)]);
    let issuer = TestIssuer::new(A);
    let claims = issuer.claims_at("alice", 1_700_000_000);
    let at = 1_700_000_010;
    authn
        .authenticate(&issuer.token(&claims), at)
        .await
        .expect("rsa-a");
    assert_eq!(source.fetches(), 1);

    source.serve(Some(&[TestKey::RsaA, TestKey::RsaB]));
    tokio::time::advance(std::time::Duration::from_secs(11)).await;
    let rotated = issuer.token_with(TestKey::RsaB, Algorithm::RS256, &claims);
    authn
        .authenticate(&rotated, at)
        .await
        .expect("rsa-b after refresh");
    assert_eq!(source.fetches(), 2);

    for i in 0..25 {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(format!("random-{i}"));
        let token = issuer.token_with_header(TestKey::RsaA, &header, &claims);
        assert!(matches!(
            authn.authenticate(&token, at).await,
            Err(AuthnError::UnknownKey { .. })
        ));
    }
    assert_eq!(
        source.fetches(),
        2,
        "random kids within the interval must not fetch"
    );
}

#[tokio::test]
async fn readiness_reports_loaded_keys_and_errors() {
    let (good, bad) = (default_keys(), default_keys());
    bad.serve(None);
    let authn = authenticator(&[(A, &good), (B, &bad)]);
    assert!(!authn.is_ready());
    assert!(authn.readiness().iter().all(|r| !r.keys_loaded));
    let report = authn.refresh().await;
    assert_eq!(report[0].key_count, 3);
    assert!(report[0].keys_loaded && report[0].last_error.is_none());
    assert!(!report[1].keys_loaded);
    assert!(report[1]
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("503")));
    assert!(!authn.is_ready());
    let issuer = TestIssuer::new(B);
    let err = authn
        .authenticate(&issuer.token(&issuer.claims("bob")), now())
        .await;
    assert!(matches!(&err, Err(e @ AuthnError::KeysUnavailable { .. }) if !e.is_client_fault()));
}

#[test]
fn duplicate_issuers_are_refused() {
    let s = default_keys();
    let result = OidcAuthenticator::with_key_sources(vec![
        (config(A), s.clone() as Arc<dyn KeySource>),
        (config(A), s as Arc<dyn KeySource>),
    ]);
    assert!(matches!(
        result,
        Err(ConfigError::Oidc {
            field: "issuer_url",
            ..
        })
    ));
}

#[test]
fn invalid_config_is_refused_at_construction() {
    let mut cfg = config(A);
    cfg.audiences.clear();
    assert!(OidcAuthenticator::new(vec![cfg]).is_err());
}

use super::*;
use std::path::Path;
use std::sync::Arc;

use crate::oidc::KeySource;
use custos_testkit::jwt::{hostile, jwks_of, AUDIENCE};
use custos_testkit::{TestCa, TestIssuer, TestKey};

const ISSUER: &str = "https://idp.example.com";
const BREAK_GLASS: &str = "break-glass-0123456789abcdef0123456789abcdef";

struct StaticSource(Vec<u8>);

impl KeySource for StaticSource {
    fn fetch_jwks(
        &self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<u8>, crate::FetchError>> + Send + '_>,
    > {
        let body = self.0.clone();
        Box::pin(async move { Ok(body) })
    }
}

fn full() -> Authenticator {
    let source = Arc::new(StaticSource(
        jwks_of(&[TestKey::RsaA]).to_string().into_bytes(),
    ));
    let oidc = OidcAuthenticator::with_key_sources(vec![(
        OidcIssuerConfig::new(ISSUER, vec![AUDIENCE.into()]),
        source as Arc<dyn KeySource>,
    )])
    .expect("config");
    let tokens = StaticTokens::parse(
        &format!("{BREAK_GLASS},admin,0,system:masters"),
        Path::new("tokens.csv"),
    )
    .expect("tokens");
    Authenticator::new()
        .with_static_tokens(tokens)
        .with_oidc(oidc)
        .with_client_certs()
}

#[tokio::test]
async fn no_credentials_is_its_own_error() {
    assert!(matches!(
        full().authenticate(None, None).await,
        Err(AuthnError::NoCredentials)
    ));
}

#[tokio::test]
async fn static_token_is_checked_before_oidc() {
    let id = full()
        .authenticate(Some(BREAK_GLASS), None)
        .await
        .expect("static");
    assert_eq!(id.method, crate::AuthMethod::StaticToken);
    assert_eq!(id.user.groups, vec!["system:masters"]);
}

#[tokio::test]
async fn oidc_token_authenticates_when_no_static_token_matches() {
    let issuer = TestIssuer::new(ISSUER);
    let token = issuer.token(&issuer.claims("alice"));
    let id = full().authenticate(Some(&token), None).await.expect("oidc");
    assert_eq!(id.user.username, format!("{ISSUER}#alice"));
}

#[tokio::test]
async fn client_cert_is_used_only_without_a_bearer_token() {
    let cert = TestCa::new().client_cert("carol", &["ops"]);
    let authn = full();
    let id = authn
        .authenticate(None, Some(&cert.cert_der))
        .await
        .expect("cert");
    assert_eq!(id.user.username, "carol");
    let bad = hostile::alg_none(&serde_json::json!({"iss": ISSUER}), "rsa-a");
    assert!(matches!(
        authn.authenticate(Some(&bad), Some(&cert.cert_der)).await,
        Err(AuthnError::AlgorithmNotAllowed { .. })
    ));
}

#[tokio::test]
async fn client_cert_is_ignored_when_not_enabled() {
    let cert = TestCa::new().client_cert("carol", &[]);
    let authn = Authenticator::new();
    assert!(matches!(
        authn.authenticate(None, Some(&cert.cert_der)).await,
        Err(AuthnError::NoCredentials)
    ));
}

#[tokio::test]
async fn bearer_without_any_token_method_is_invalid() {
    let authn = Authenticator::new().with_client_certs();
    assert!(matches!(
        authn.authenticate(Some("opaque-token"), None).await,
        Err(AuthnError::InvalidBearerToken)
    ));
    assert!(matches!(
        authn.authenticate(Some(""), None).await,
        Err(AuthnError::MalformedToken(_))
    ));
    assert!(authn.is_ready());
}

#[tokio::test]
async fn oversize_bearer_is_rejected_before_any_lookup() {
    let huge = "x".repeat(crate::MAX_TOKEN_BYTES + 1);
    assert!(matches!(
        full().authenticate(Some(&huge), None).await,
        Err(AuthnError::TokenTooLarge { .. })
    ));
}

#[tokio::test]
async fn readiness_follows_the_oidc_keys() {
    let authn = full();
    assert!(!authn.is_ready());
    let report = authn.refresh().await;
    assert!(report.iter().all(|r| r.keys_loaded));
    assert!(authn.is_ready());
    assert_eq!(authn.readiness().len(), 1);
}

#[test]
fn config_builds_each_configured_method() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, format!("{BREAK_GLASS},admin,0\n")).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let config: AuthnConfig = serde_json::from_value(serde_json::json!({
        "oidc": [{ "issuer_url": ISSUER, "audiences": [AUDIENCE] }],
        "client_cert": { "ca_file": dir.path().join("ca.crt") },
        "static_token_file": file,
    }))
    .expect("parses");
    let authn = Authenticator::from_config(&config).expect("builds");
    assert!(authn.oidc().is_some());
    assert!(authn.client_certs);
    assert_eq!(authn.static_tokens.as_ref().map(StaticTokens::len), Some(1));
    let mut bad = config;
    bad.oidc[0].issuer_url = "http://insecure".into();
    assert!(Authenticator::from_config(&bad).is_err());
}

#[tokio::test]
async fn a_remembered_token_is_not_honoured_past_its_expiry() {
    let issuer = TestIssuer::new(ISSUER);
    let now = custos_testkit::jwt::now();
    let mut claims = issuer.claims_at("alice", now);
    claims["exp"] = serde_json::json!(now + 8);
    let token = issuer.token(&claims);
    let authn = full();
    authn
        .authenticate_at(Some(&token), None, now)
        .await
        .expect("valid now");
    // Within its life the remembered verification answers; after exp (and the 30 s skew), it must not.
    authn
        .authenticate_at(Some(&token), None, now + 20)
        .await
        .expect("still valid");
    let late = authn
        .authenticate_at(Some(&token), None, now + 30 + 31)
        .await;
    assert!(matches!(late, Err(AuthnError::Expired)), "{late:?}");
}

#[tokio::test]
async fn a_refused_token_is_not_remembered() {
    let issuer = TestIssuer::new(ISSUER);
    let token = hostile::tampered_signature(&issuer.token(&issuer.claims("alice")));
    let authn = full();
    for _ in 0..2 {
        assert!(authn.authenticate(Some(&token), None).await.is_err());
    }
}

//! The bearer-token path of `custos_authn::Authenticator::authenticate_at`, with OIDC keys from a fixed
//! JWKS (no network): never panics, never accepts an identity the cluster reserves (`system:`), never
//! puts the token into an identity or an error message, and the verified-token cache answers a
//! repeated token exactly as the first check did.
//!
//! The first byte picks what the rest is (ASCII digits pick modes, so seeds stay text):
//! - `0`: a raw bearer token (the JWS parser, issuer, `alg` and `kid` checks, signature verification);
//! - `1`: claims as JSON, laid over valid claims and **signed** with a test key, so that claim
//!   validation and mapping (`exp`, `aud`, `email_verified`, groups, prefixes) are reached; the second
//!   byte picks the key, `kid` and issuer;
//! - `2`: a JWKS document as an IdP would serve it, then two valid tokens checked against it;
//! - `3`: a static token file (CSV), then its first field presented as a bearer token.
#![no_main]

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use custos_authn::{
    Authenticator, AuthnError, FetchError, Identity, KeySource, OidcAuthenticator,
    OidcIssuerConfig, SigningAlg, StaticTokens,
};
use custos_testkit::jwt::{jwks_of, AUDIENCE};
use custos_testkit::{TestIssuer, TestKey};
use jsonwebtoken::{Algorithm, Header};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use tokio::runtime::Runtime;

/// "Now" for every check (tokens are built around it; nothing reads the clock).
const NOW: u64 = 1_700_000_000;
const ISSUER: &str = "https://idp.example.com";
/// A second issuer mapping `email` to the username, without prefix, with a required claim.
const EMAIL_ISSUER: &str = "https://email.example.com";

struct StaticJwks(Vec<u8>);

impl KeySource for StaticJwks {
    fn fetch_jwks(&self) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, FetchError>> + Send + '_>> {
        let body = self.0.clone();
        Box::pin(async move { Ok(body) })
    }
}

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn issuers() -> Vec<OidcIssuerConfig> {
    let mut plain = OidcIssuerConfig::new(ISSUER, vec![AUDIENCE.into()]);
    plain.signing_algs = SigningAlg::ALL.to_vec();
    let mut email = OidcIssuerConfig::new(EMAIL_ISSUER, vec![AUDIENCE.into(), "other".into()]);
    email.username_claim = "email".into();
    email.username_prefix = Some("-".into());
    email.groups_prefix = Some("oidc:".into());
    email
        .required_claims
        .insert("hd".into(), "example.com".into());
    email.signing_algs = vec![SigningAlg::EdDsa, SigningAlg::Es256];
    vec![plain, email]
}

fn oidc_with(jwks: Vec<u8>) -> OidcAuthenticator {
    let source: Arc<dyn KeySource> = Arc::new(StaticJwks(jwks));
    OidcAuthenticator::with_key_sources(
        issuers()
            .into_iter()
            .map(|c| (c, Arc::clone(&source)))
            .collect(),
    )
    .expect("valid issuer configuration")
}

fn authenticator() -> &'static Authenticator {
    static AUTHN: OnceLock<Authenticator> = OnceLock::new();
    AUTHN.get_or_init(|| {
        let jwks = jwks_of(&[
            TestKey::RsaA,
            TestKey::EcP256,
            TestKey::Ed25519,
            TestKey::RsaWeak,
        ]);
        Authenticator::new().with_oidc(oidc_with(jwks.to_string().into_bytes()))
    })
}

/// Valid tokens for mode 2, signed once. EdDSA and ES256, not RS256: under ASan a mode-2 input took
/// about 3.2 ms with an RS256 token against 2.0 ms with ES256, and mode `0` reaches RSA anyway.
fn valid_tokens() -> &'static [String; 2] {
    static TOKENS: OnceLock<[String; 2]> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let issuer = TestIssuer::new(ISSUER);
        let claims = issuer.claims_at("alice", NOW);
        [
            issuer.token_with(TestKey::Ed25519, Algorithm::EdDSA, &claims),
            issuer.token_with(TestKey::EcP256, Algorithm::ES256, &claims),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => check(authenticator(), &String::from_utf8_lossy(rest)),
        1 => signed(rest),
        2 => {
            let authn = Authenticator::new().with_oidc(oidc_with(rest.to_vec()));
            for token in valid_tokens() {
                check(&authn, token);
            }
        }
        _ => static_tokens(&String::from_utf8_lossy(rest)),
    }
});

/// Claims from the fuzzer over valid ones, signed with a key the JWKS holds (or names wrongly).
fn signed(rest: &[u8]) {
    let Some((&choice, overlay)) = rest.split_first() else {
        return;
    };
    let iss = if choice & 0x10 == 0 {
        ISSUER
    } else {
        EMAIL_ISSUER
    };
    let mut claims = TestIssuer::new(iss).claims_at("alice", NOW);
    claims["jti"] = json!("fuzz");
    claims["groups"] = json!(["dev"]);
    claims["email"] = json!("alice@example.com");
    claims["email_verified"] = json!(true);
    claims["hd"] = json!("example.com");
    match serde_json::from_slice::<Value>(overlay) {
        Ok(Value::Object(members)) => {
            for (k, v) in members {
                claims[k] = v;
            }
        }
        Ok(other) => claims["sub"] = other,
        Err(_) => claims["sub"] = json!(String::from_utf8_lossy(overlay)),
    }
    let (key, alg) = if choice & 1 == 0 {
        (TestKey::Ed25519, Algorithm::EdDSA)
    } else {
        (TestKey::EcP256, Algorithm::ES256)
    };
    let mut header = Header::new(alg);
    header.kid = match (choice >> 1) & 3 {
        0 | 1 => Some(key.kid().into()),
        2 => None,
        _ => Some(TestKey::RsaA.kid().into()),
    };
    let token = TestIssuer::new(iss).token_with_header(key, &header, &claims);
    check(authenticator(), &token);
}

fn static_tokens(text: &str) {
    let Ok(tokens) = StaticTokens::parse(text, Path::new("tokens.csv")) else {
        return;
    };
    let Some((token, fields)) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.split_once(','))
    else {
        return;
    };
    // The operator may have written the token's text into the user, uid or groups too.
    let secret = !fields.contains(token);
    check_with(
        &Authenticator::new().with_static_tokens(tokens),
        token,
        secret,
    );
}

/// Authenticates `token` twice (the second answer comes from the verified-token cache) and checks
/// what comes back.
fn check(authn: &Authenticator, token: &str) {
    check_with(authn, token, true);
}

/// [`check`], where `secret` says whether the token's text can only have come from the token.
fn check_with(authn: &Authenticator, token: &str, secret: bool) {
    let first = runtime().block_on(authn.authenticate_at(Some(token), None, NOW));
    let again = runtime().block_on(authn.authenticate_at(Some(token), None, NOW));
    match (&first, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the cache changed the identity"),
        (Err(_), Err(_)) => {}
        _ => panic!("cache disagrees: {first:?} then {again:?}"),
    }
    match first {
        Ok(identity) => accepted(&identity, token, secret),
        Err(e) => refused(&e, token),
    }
}

fn accepted(identity: &Identity, token: &str, secret: bool) {
    let user = &identity.user;
    if identity.method != custos_authn::AuthMethod::StaticToken {
        assert!(!user.username.starts_with("system:"), "{:?}", user.username);
        assert!(
            !user.groups.iter().any(|g| g.starts_with("system:")),
            "{:?}",
            user.groups
        );
        assert!(identity.expires_at.is_some_and(|exp| exp + 300 >= NOW));
    }
    if !secret {
        return;
    }
    let shown = format!("{identity:?}");
    assert!(!shown.contains(token), "identity carries the token");
    let json = serde_json::to_string(identity).expect("identity serializes");
    assert!(!json.contains(token), "identity JSON carries the token");
}

fn refused(e: &AuthnError, token: &str) {
    let message = e.to_string();
    assert!(
        message.len() < 1024,
        "unbounded error message: {} bytes",
        message.len()
    );
    if token.len() >= 8 {
        assert!(
            !message.contains(token),
            "error echoes the token: {message}"
        );
    }
    assert!(
        !message.chars().any(char::is_control),
        "control character in {message:?}"
    );
}

//! A JWT issuer with fixed keys, its JWKS, and builders for hostile tokens.

mod keys;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// The audience (client id) that [`TestIssuer::claims`] puts into tokens.
pub const AUDIENCE: &str = "custos";

/// One of the issuer's fixed signing keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TestKey {
    /// RSA 2048, kid `rsa-a`; the default signing key.
    RsaA,
    /// RSA 2048, kid `rsa-b`; not in the default JWKS, for key rotation tests.
    RsaB,
    /// RSA 1024, kid `rsa-weak`; too weak, a verifier must refuse it.
    RsaWeak,
    /// ECDSA P-256, kid `ec-p256`.
    EcP256,
    /// Ed25519, kid `ed25519`.
    Ed25519,
}

impl TestKey {
    /// The key id (`kid`) the key carries in the JWKS and in token headers.
    pub fn kid(self) -> &'static str {
        match self {
            TestKey::RsaA => "rsa-a",
            TestKey::RsaB => "rsa-b",
            TestKey::RsaWeak => "rsa-weak",
            TestKey::EcP256 => "ec-p256",
            TestKey::Ed25519 => "ed25519",
        }
    }

    /// The algorithm this key signs with by default.
    pub fn default_alg(self) -> Algorithm {
        match self {
            TestKey::RsaA | TestKey::RsaB | TestKey::RsaWeak => Algorithm::RS256,
            TestKey::EcP256 => Algorithm::ES256,
            TestKey::Ed25519 => Algorithm::EdDSA,
        }
    }

    /// The public key as a JWK (with `kid` and `use: sig`, without `alg`).
    pub fn jwk(self) -> Value {
        let kid = self.kid();
        match self {
            TestKey::RsaA => rsa_jwk(kid, keys::RSA_A_N, keys::RSA_A_E),
            TestKey::RsaB => rsa_jwk(kid, keys::RSA_B_N, keys::RSA_B_E),
            TestKey::RsaWeak => rsa_jwk(kid, keys::RSA_WEAK_N, keys::RSA_WEAK_E),
            TestKey::EcP256 => json!({
                "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                "x": keys::EC_P256_X, "y": keys::EC_P256_Y,
            }),
            TestKey::Ed25519 => json!({
                "kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "x": keys::ED25519_X,
            }),
        }
    }

    /// The public key as SPKI PEM (RSA keys only; `None` otherwise).
    pub fn public_pem(self) -> Option<&'static str> {
        match self {
            TestKey::RsaA => Some(keys::RSA_A_PUBLIC_PEM),
            TestKey::RsaB => Some(keys::RSA_B_PUBLIC_PEM),
            TestKey::RsaWeak => Some(keys::RSA_WEAK_PUBLIC_PEM),
            TestKey::EcP256 | TestKey::Ed25519 => None,
        }
    }

    fn encoding_key(self) -> EncodingKey {
        let key = match self {
            TestKey::RsaA => EncodingKey::from_rsa_pem(keys::RSA_A_PRIVATE_PEM.as_bytes()),
            TestKey::RsaB => EncodingKey::from_rsa_pem(keys::RSA_B_PRIVATE_PEM.as_bytes()),
            TestKey::RsaWeak => EncodingKey::from_rsa_pem(keys::RSA_WEAK_PRIVATE_PEM.as_bytes()),
            TestKey::EcP256 => EncodingKey::from_ec_pem(keys::EC_P256_PRIVATE_PEM.as_bytes()),
            TestKey::Ed25519 => EncodingKey::from_ed_pem(keys::ED25519_PRIVATE_PEM.as_bytes()),
        };
        key.expect("fixed test key parses")
    }
}

fn rsa_jwk(kid: &str, n: &str, e: &str) -> Value {
    json!({ "kty": "RSA", "kid": kid, "use": "sig", "n": n, "e": e })
}

/// Builds the JWKS document (`{"keys": [...]}`) that publishes `keys`.
pub fn jwks_of(keys: &[TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

/// A token issuer for one issuer URL: signs tokens with fixed keys and publishes their JWKS.
#[derive(Clone, Debug)]
pub struct TestIssuer {
    url: String,
}

static JTI: AtomicU64 = AtomicU64::new(1);

impl TestIssuer {
    /// An issuer whose `iss` is `url` (e.g. `https://127.0.0.1:5556`).
    pub fn new(url: impl Into<String>) -> Self {
        TestIssuer { url: url.into() }
    }

    /// The issuer URL (`iss`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The JWKS the issuer publishes by default: `rsa-a`, `ec-p256` and `ed25519` (not `rsa-b`).
    pub fn jwks(&self) -> Value {
        jwks_of(&[TestKey::RsaA, TestKey::EcP256, TestKey::Ed25519])
    }

    /// Valid claims for `sub` at the current time: iss, aud [`AUDIENCE`], iat, nbf, exp (+10 min), jti.
    pub fn claims(&self, sub: &str) -> Value {
        self.claims_at(sub, now())
    }

    /// Valid claims for `sub` as of `now` (unix seconds).
    pub fn claims_at(&self, sub: &str, now: u64) -> Value {
        json!({
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": format!("jti-{}", JTI.fetch_add(1, Ordering::Relaxed)),
        })
    }

    /// Signs `claims` with the default key (RS256, kid `rsa-a`).
    pub fn token(&self, claims: &Value) -> String {
        self.token_with(TestKey::RsaA, TestKey::RsaA.default_alg(), claims)
    }

    /// Signs `claims` with `key` using `alg`, with the key's kid in the header.
    pub fn token_with(&self, key: TestKey, alg: Algorithm, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(key.kid().to_string());
        self.token_with_header(key, &header, claims)
    }

    /// Signs `claims` with `key` under an arbitrary `header` (its `alg` picks the signature scheme).
    pub fn token_with_header(&self, key: TestKey, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &key.encoding_key()).expect("sign test token")
    }
}

/// Builders for tokens an attacker would send.
pub mod hostile {
    use super::*;

    /// An unsigned token: header `{"alg":"none"}` (with `kid`), the claims, and an empty signature.
    pub fn alg_none(claims: &Value, kid: &str) -> String {
        let header = json!({ "alg": "none", "typ": "JWT", "kid": kid });
        format!("{}.{}.", encode_json(&header), encode_json(claims))
    }

    /// The HMAC confusion attack: HS256 with the RSA public key's PEM bytes as the shared secret.
    pub fn hs256_with_public_key(claims: &Value, key: TestKey) -> String {
        let pem = key.public_pem().expect("HMAC confusion needs an RSA key");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid().to_string());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(pem.as_bytes()))
            .expect("sign HS256 token")
    }

    /// `token` with one bit of its signature flipped.
    pub fn tampered_signature(token: &str) -> String {
        let (rest, sig) = token.rsplit_once('.').expect("token has a signature part");
        let mut bytes = URL_SAFE_NO_PAD.decode(sig).expect("signature is base64url");
        if let Some(first) = bytes.first_mut() {
            *first ^= 0x01;
        }
        format!("{rest}.{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// `token` with its payload replaced by `claims` and the original signature kept.
    pub fn swapped_payload(token: &str, claims: &Value) -> String {
        let mut parts = token.split('.');
        let header = parts.next().unwrap_or_default();
        let _payload = parts.next();
        let sig = parts.next().unwrap_or_default();
        format!("{header}.{}.{sig}", encode_json(claims))
    }

    /// A token built from raw header and claims JSON with a junk signature (for parser tests).
    pub fn raw(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.{}",
            encode_json(header),
            encode_json(claims),
            URL_SAFE_NO_PAD.encode(b"not a signature")
        )
    }

    fn encode_json(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON serialises"))
    }
}

/// Seconds since the Unix epoch, now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn decodes(token: &str, key: TestKey, alg: Algorithm) -> bool {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk()).expect("jwk");
        let mut validation = Validation::new(alg);
        validation.set_audience(&[AUDIENCE]);
        let decoding = DecodingKey::from_jwk(&jwk).expect("decoding key");
        jsonwebtoken::decode::<Value>(token, &decoding, &validation).is_ok()
    }

    #[test]
    fn every_fixed_key_signs_tokens_its_jwk_verifies() {
        let issuer = TestIssuer::new("https://issuer.test");
        let claims = issuer.claims("alice");
        for key in [
            TestKey::RsaA,
            TestKey::RsaB,
            TestKey::EcP256,
            TestKey::Ed25519,
        ] {
            let token = issuer.token_with(key, key.default_alg(), &claims);
            assert!(decodes(&token, key, key.default_alg()), "{key:?}");
        }
        let ps = issuer.token_with(TestKey::RsaA, Algorithm::PS256, &claims);
        assert!(decodes(&ps, TestKey::RsaA, Algorithm::PS256));
    }

    #[test]
    fn tampered_signature_no_longer_verifies() {
        let issuer = TestIssuer::new("https://issuer.test");
        let token = issuer.token(&issuer.claims("alice"));
        assert!(decodes(&token, TestKey::RsaA, Algorithm::RS256));
        let bad = hostile::tampered_signature(&token);
        assert!(!decodes(&bad, TestKey::RsaA, Algorithm::RS256));
    }

    #[test]
    fn hostile_tokens_have_the_advertised_headers() {
        let claims = json!({"sub": "mallory"});
        let none = hostile::alg_none(&claims, "rsa-a");
        assert!(none.ends_with('.'));
        let header =
            jsonwebtoken::decode_header(hostile::hs256_with_public_key(&claims, TestKey::RsaA))
                .expect("header");
        assert_eq!(header.alg, Algorithm::HS256);
    }
}

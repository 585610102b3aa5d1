use super::*;
use custos_testkit::jwt::{hostile, jwks_of};
use custos_testkit::{TestIssuer, TestKey};
use serde_json::json;

fn set(jwks: serde_json::Value) -> Result<KeySet, FetchError> {
    KeySet::from_jwks_json(jwks.to_string().as_bytes())
}

fn found(set: &KeySet, kid: Option<&str>, alg: SigningAlg) -> usize {
    match set.lookup(kid, alg) {
        Lookup::Found(keys) => keys.len(),
        Lookup::Mismatch => 0,
        Lookup::Unknown => usize::MAX,
    }
}

#[test]
fn default_jwks_yields_rsa_ec_and_ed_keys() {
    let keys = set(TestIssuer::new("https://idp").jwks()).expect("usable");
    assert_eq!(keys.len(), 3);
    assert_eq!(found(&keys, Some("rsa-a"), SigningAlg::Rs256), 1);
    assert_eq!(found(&keys, Some("rsa-a"), SigningAlg::Ps512), 1);
    assert_eq!(found(&keys, Some("ec-p256"), SigningAlg::Es256), 1);
    assert_eq!(found(&keys, Some("ed25519"), SigningAlg::EdDsa), 1);
}

#[test]
fn algorithm_must_fit_the_key_type() {
    let keys = set(TestIssuer::new("https://idp").jwks()).expect("usable");
    assert!(matches!(
        keys.lookup(Some("rsa-a"), SigningAlg::Es256),
        Lookup::Mismatch
    ));
    assert!(matches!(
        keys.lookup(Some("ec-p256"), SigningAlg::Rs256),
        Lookup::Mismatch
    ));
    assert!(matches!(
        keys.lookup(Some("ec-p256"), SigningAlg::Es384),
        Lookup::Mismatch
    ));
    assert!(matches!(
        keys.lookup(Some("ed25519"), SigningAlg::Es256),
        Lookup::Mismatch
    ));
    assert!(matches!(
        keys.lookup(Some("nope"), SigningAlg::Rs256),
        Lookup::Unknown
    ));
}

#[test]
fn token_without_kid_tries_every_fitting_key() {
    let keys = set(jwks_of(&[TestKey::RsaA, TestKey::RsaB, TestKey::EcP256])).expect("usable");
    assert_eq!(found(&keys, None, SigningAlg::Rs256), 2);
    assert_eq!(found(&keys, None, SigningAlg::Es256), 1);
    assert_eq!(found(&keys, None, SigningAlg::EdDsa), usize::MAX);
}

#[test]
fn jwk_alg_pins_the_algorithm() {
    let mut jwk = TestKey::RsaA.jwk();
    jwk["alg"] = json!("PS256");
    let keys = set(json!({ "keys": [jwk] })).expect("usable");
    assert_eq!(found(&keys, Some("rsa-a"), SigningAlg::Ps256), 1);
    assert!(matches!(
        keys.lookup(Some("rsa-a"), SigningAlg::Rs256),
        Lookup::Mismatch
    ));
}

#[test]
fn symmetric_encryption_weak_and_odd_keys_are_skipped() {
    let mut enc = TestKey::RsaB.jwk();
    enc["use"] = json!("enc");
    let mut inconsistent = TestKey::EcP256.jwk();
    inconsistent["alg"] = json!("RS256");
    let mut hs_named = TestKey::RsaB.jwk();
    hs_named["alg"] = json!("HS256");
    let jwks = json!({ "keys": [
        { "kty": "oct", "kid": "hmac", "k": "c2VjcmV0" },
        enc,
        TestKey::RsaWeak.jwk(),
        inconsistent,
        hs_named,
        { "kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA" },
        { "kty": "RSA", "kid": "broken" },
        "not even an object",
        TestKey::RsaA.jwk(),
    ]});
    let keys = set(jwks).expect("one usable key");
    assert_eq!(keys.len(), 1);
    assert_eq!(found(&keys, Some("rsa-a"), SigningAlg::Rs256), 1);
}

#[test]
fn jwks_without_usable_keys_is_an_error() {
    let err = set(json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0" }] })).err();
    assert!(matches!(err, Some(FetchError::NoUsableKeys { skipped: 1 })));
    assert!(matches!(
        set(json!({ "nokeys": [] })),
        Err(FetchError::Json { .. })
    ));
}

#[test]
fn verify_accepts_the_right_signature_only() {
    let issuer = TestIssuer::new("https://idp");
    let keys = set(issuer.jwks()).expect("usable");
    let claims = issuer.claims("alice");
    for (key, alg) in [
        (TestKey::RsaA, SigningAlg::Rs256),
        (TestKey::RsaA, SigningAlg::Ps384),
        (TestKey::EcP256, SigningAlg::Es256),
        (TestKey::Ed25519, SigningAlg::EdDsa),
    ] {
        let token = issuer.token_with(key, alg.to_jwt(), &claims);
        let (input, sig) = token.rsplit_once('.').expect("three parts");
        let Lookup::Found(candidates) = keys.lookup(Some(key.kid()), alg) else {
            panic!("key {key:?} not found");
        };
        assert!(candidates[0].verify(input, sig, alg), "{alg:?}");
        let bad = hostile::tampered_signature(&token);
        let (input, sig) = bad.rsplit_once('.').expect("three parts");
        assert!(!candidates[0].verify(input, sig, alg), "tampered {alg:?}");
    }
}

#[test]
fn hmac_signature_made_with_the_public_key_never_verifies() {
    let issuer = TestIssuer::new("https://idp");
    let keys = set(issuer.jwks()).expect("usable");
    let token = hostile::hs256_with_public_key(&issuer.claims("mallory"), TestKey::RsaA);
    let (input, sig) = token.rsplit_once('.').expect("three parts");
    for alg in SigningAlg::ALL {
        if let Lookup::Found(candidates) = keys.lookup(Some("rsa-a"), alg) {
            assert!(candidates.iter().all(|k| !k.verify(input, sig, alg)));
        }
    }
}

#[test]
fn modulus_bits_ignore_leading_zeros() {
    assert_eq!(
        rsa_modulus_bits(&URL_SAFE_NO_PAD.encode([0u8, 0x80, 0])),
        Some(16)
    );
    assert_eq!(
        rsa_modulus_bits(&URL_SAFE_NO_PAD.encode([0x01, 0])),
        Some(9)
    );
    assert_eq!(rsa_modulus_bits(&URL_SAFE_NO_PAD.encode([0u8])), None);
}

#[test]
fn short_ed25519_key_is_skipped_not_a_panic() {
    let keys = set(json!({"keys": [TestKey::Ed25519.jwk(),
        {"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": "M6E"}]}))
    .expect("the good key is usable");
    let token = TestIssuer::new("https://idp").token_with(
        TestKey::Ed25519,
        jsonwebtoken::Algorithm::EdDSA,
        &json!({}),
    );
    let (input, signature) = token.rsplit_once('.').expect("three parts");
    if let Lookup::Found(c) = keys.lookup(Some("short"), SigningAlg::EdDsa) {
        assert!(!c
            .iter()
            .any(|k| k.verify(input, signature, SigningAlg::EdDsa)));
    }
    assert_eq!(
        keys.len(),
        1,
        "an Ed25519 x that is not 32 bytes is skipped"
    );
}

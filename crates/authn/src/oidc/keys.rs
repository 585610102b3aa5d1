//! [`KeySet`]: the verifying keys parsed from a JWKS document, and the rule of which key may verify
//! which algorithm.
//!
//! The header's `alg` is never trusted on its own: a key verifies a token only when the algorithm is
//! allowed for the issuer, fits the key's type and curve (RSA → RS*/PS*, EC P-256 → ES256, EC P-384 →
//! ES384, OKP Ed25519 → EdDSA), and equals the key's own `alg` when the JWK names one. Symmetric (`oct`)
//! keys are dropped on load, so the HMAC confusion attack has nothing to use.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use super::SigningAlg;
use crate::FetchError;

/// The most keys kept from one JWKS document.
pub(crate) const MAX_KEYS: usize = 64;

/// The smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// What a key is, as far as algorithm compatibility goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyKind {
    fn fits(self, alg: SigningAlg) -> bool {
        use SigningAlg::*;
        match self {
            KeyKind::Rsa => matches!(alg, Rs256 | Rs384 | Rs512 | Ps256 | Ps384 | Ps512),
            KeyKind::EcP256 => alg == Es256,
            KeyKind::EcP384 => alg == Es384,
            KeyKind::Ed25519 => alg == EdDsa,
        }
    }
}

/// One public key that may verify signatures.
pub(crate) struct VerifyingKey {
    pub kid: Option<String>,
    pub kind: KeyKind,
    /// The JWK's `alg`, when it names one.
    pub alg: Option<SigningAlg>,
    pub key: DecodingKey,
}

impl VerifyingKey {
    /// Whether this key may verify a token signed with `alg`.
    pub fn accepts(&self, alg: SigningAlg) -> bool {
        self.kind.fits(alg) && self.alg.is_none_or(|own| own == alg)
    }

    /// Checks `signature` over `signing_input` with `alg`; any failure is `false`.
    pub fn verify(&self, signing_input: &str, signature: &str, alg: SigningAlg) -> bool {
        self.accepts(alg)
            && jsonwebtoken::crypto::verify(
                signature,
                signing_input.as_bytes(),
                &self.key,
                alg.to_jwt(),
            )
            .unwrap_or(false)
    }
}

/// Which keys could verify a token.
pub(crate) enum Lookup<'a> {
    /// Keys that have the token's kid (or all keys, for a token without kid) and fit its alg.
    Found(Vec<&'a VerifyingKey>),
    /// Keys with the token's kid exist, but none fits its algorithm.
    Mismatch,
    /// No key has the token's kid (or, without a kid, no key fits the algorithm).
    Unknown,
}

/// The usable signing keys of one issuer.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: Vec<VerifyingKey>,
}

/// A JWK as published; only the fields we need, all optional so one odd key cannot spoil the set.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// Parses a JWKS document, keeping the keys usable for signature verification and skipping the
    /// rest (encryption keys, symmetric keys, weak RSA keys, unknown types). No usable key is an error.
    pub fn from_jwks_json(bytes: &[u8]) -> Result<KeySet, FetchError> {
        let raw: RawJwks = serde_json::from_slice(bytes).map_err(|source| FetchError::Json {
            what: "JWKS",
            source,
        })?;
        let mut keys = Vec::new();
        let mut skipped = 0;
        for value in raw.keys {
            match serde_json::from_value::<RawJwk>(value)
                .ok()
                .and_then(parse_key)
            {
                Some(key) if keys.len() < MAX_KEYS => keys.push(key),
                _ => skipped += 1,
            }
        }
        if keys.is_empty() {
            return Err(FetchError::NoUsableKeys { skipped });
        }
        if skipped > 0 {
            tracing::debug!(skipped, kept = keys.len(), "skipped unusable JWKS keys");
        }
        Ok(KeySet { keys })
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The keys that may verify a token with `kid` and `alg`.
    pub fn lookup(&self, kid: Option<&str>, alg: SigningAlg) -> Lookup<'_> {
        let named: Vec<&VerifyingKey> = match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            None => self.keys.iter().collect(),
        };
        let fitting: Vec<&VerifyingKey> =
            named.iter().copied().filter(|k| k.accepts(alg)).collect();
        match (named.is_empty(), fitting.is_empty()) {
            (_, false) => Lookup::Found(fitting),
            (false, true) if kid.is_some() => Lookup::Mismatch,
            _ => Lookup::Unknown,
        }
    }
}

fn parse_key(jwk: RawJwk) -> Option<VerifyingKey> {
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = &jwk.key_ops {
        if !ops.iter().any(|op| op == "verify") {
            return None;
        }
    }
    // A JWK that names an algorithm we do not accept (HS256, RSA-OAEP, ...) is not for us.
    let alg = match jwk.alg.as_deref() {
        Some(name) => Some(SigningAlg::from_name(name)?),
        None => None,
    };
    let (kind, key) = match (jwk.kty.as_deref()?, jwk.crv.as_deref()) {
        ("RSA", _) => {
            let (n, e) = (jwk.n.as_deref()?, jwk.e.as_deref()?);
            if rsa_modulus_bits(n)? < MIN_RSA_BITS {
                return None;
            }
            (KeyKind::Rsa, DecodingKey::from_rsa_components(n, e).ok()?)
        }
        ("EC", Some(crv @ ("P-256" | "P-384"))) => {
            let kind = if crv == "P-256" {
                KeyKind::EcP256
            } else {
                KeyKind::EcP384
            };
            let (x, y) = (jwk.x.as_deref()?, jwk.y.as_deref()?);
            (kind, DecodingKey::from_ec_components(x, y).ok()?)
        }
        ("OKP", Some("Ed25519")) => {
            let x = jwk.x.as_deref()?;
            // An Ed25519 public key is exactly 32 bytes; a shorter one would make the verifier panic
            // (found by fuzzing), so it is skipped like any other unusable key.
            if URL_SAFE_NO_PAD.decode(x).ok()?.len() != 32 {
                return None;
            }
            (KeyKind::Ed25519, DecodingKey::from_ed_components(x).ok()?)
        }
        // "oct" (HMAC secrets) and anything else: never.
        _ => return None,
    };
    let key = VerifyingKey {
        kid: jwk.kid,
        kind,
        alg,
        key,
    };
    // A key whose own alg contradicts its type is inconsistent; drop it.
    key.alg.is_none_or(|a| kind.fits(a)).then_some(key)
}

/// The bit length of a base64url big-endian RSA modulus, ignoring leading zero bytes.
fn rsa_modulus_bits(n: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(n).ok()?;
    let first = bytes.iter().position(|b| *b != 0)?;
    let significant = &bytes[first..];
    let lead = significant.first()?;
    Some((significant.len() - 1) * 8 + (8 - lead.leading_zeros() as usize))
}

#[cfg(test)]
mod tests;

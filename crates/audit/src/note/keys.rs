//! Ed25519 note keys in Go's `sumdb/note` string forms:
//! verifier `<name>+<hex key id>+<base64(0x01 || public key)>` and signer
//! `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || 32-byte seed)>`.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::is_valid_name;

/// The signature type byte of Ed25519 note signatures.
pub const ALG_ED25519: u8 = 0x01;

/// A key string that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not `name+hexid+base64` (or the `PRIVATE+KEY+` form).
    #[error("malformed key: {0}")]
    Malformed(&'static str),
    /// The key name is empty or has a space or a plus.
    #[error("bad key name {0:?} (non-empty, no spaces, no '+')")]
    BadName(String),
    /// Not an Ed25519 key.
    #[error("unsupported key type 0x{0:02x} (only Ed25519, 0x01)")]
    UnsupportedType(u8),
    /// The id in the string is not the id of that name and key.
    #[error("key id {given:08x} does not match name and key (expected {computed:08x})")]
    IdMismatch {
        /// The id written in the string.
        given: u32,
        /// The id of the name and key.
        computed: u32,
    },
    /// The system random generator failed.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// The key id: the first four bytes (big-endian) of SHA-256(name || 0x0A || type || public key).
pub fn key_id(name: &str, typed_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(typed_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

fn typed(public: &VerifyingKey) -> Vec<u8> {
    let mut v = vec![ALG_ED25519];
    v.extend_from_slice(public.as_bytes());
    v
}

fn parse_hex_id(text: &str) -> Result<u32, KeyError> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::Malformed("key id is not 8 hex digits"));
    }
    u32::from_str_radix(text, 16).map_err(|_| KeyError::Malformed("key id is not 8 hex digits"))
}

/// Splits `payload` (base64 of type byte || 32 bytes) into the 32 bytes, checking the type.
fn parse_typed(b64: &str) -> Result<[u8; 32], KeyError> {
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| KeyError::Malformed("key is not base64"))?;
    let (&alg, rest) = bytes
        .split_first()
        .ok_or(KeyError::Malformed("empty key"))?;
    if alg != ALG_ED25519 {
        return Err(KeyError::UnsupportedType(alg));
    }
    <[u8; 32]>::try_from(rest).map_err(|_| KeyError::Malformed("an Ed25519 key is 32 bytes"))
}

/// A public key that verifies notes: a name, a key id and an Ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// From a name and a 32-byte Ed25519 public key.
    pub fn new(name: &str, public: [u8; 32]) -> Result<VerifierKey, KeyError> {
        if !is_valid_name(name) {
            return Err(KeyError::BadName(name.to_owned()));
        }
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| KeyError::Malformed("not an Ed25519 public key"))?;
        Ok(VerifierKey {
            name: name.to_owned(),
            id: key_id(name, &typed(&key)),
            key,
        })
    }

    /// Parses `<name>+<hex id>+<base64(0x01 || key)>`, checking that the id belongs to name and key.
    pub fn parse(text: &str) -> Result<VerifierKey, KeyError> {
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(KeyError::Malformed("a verifier key is name+id+key"));
        };
        let given = parse_hex_id(id)?;
        let key = VerifierKey::new(name, parse_typed(b64)?)?;
        if key.id != given {
            return Err(KeyError::IdMismatch {
                given,
                computed: key.id,
            });
        }
        Ok(key)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// `name+hexid`, how errors and reports name this key.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }

    /// Checks an Ed25519 signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        // Strict: also refuses small-order keys and non-canonical points; honest signers never make them.
        self.key.verify_strict(message, &sig).is_ok()
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.id,
            STANDARD.encode(typed(&self.key))
        )
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl std::str::FromStr for VerifierKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VerifierKey::parse(s)
    }
}

/// A private key that signs notes. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    id: u32,
    key: SigningKey,
}

impl SignerKey {
    /// From a name and a 32-byte Ed25519 seed (RFC 8032 private key).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<SignerKey, KeyError> {
        if !is_valid_name(name) {
            return Err(KeyError::BadName(name.to_owned()));
        }
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, &typed(&key.verifying_key()));
        Ok(SignerKey {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// A new random key from the operating system's generator.
    pub fn generate(name: &str) -> Result<SignerKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        SignerKey::from_seed(name, seed)
    }

    /// Parses Go's `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`.
    pub fn parse(text: &str) -> Result<SignerKey, KeyError> {
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(KeyError::Malformed("a signer key starts with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(KeyError::Malformed(
                "a signer key is PRIVATE+KEY+name+id+key",
            ));
        };
        let given = parse_hex_id(id)?;
        let key = SignerKey::from_seed(name, parse_typed(b64)?)?;
        if key.id != given {
            return Err(KeyError::IdMismatch {
                given,
                computed: key.id,
            });
        }
        Ok(key)
    }

    /// The secret in Go's `PRIVATE+KEY+…` form, for the key file. Handle as a secret.
    pub fn to_private_string(&self) -> String {
        let mut seed = vec![ALG_ED25519];
        seed.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            STANDARD.encode(seed)
        )
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// An Ed25519 signature over `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerKey({}+{:08x}, secret hidden)", self.name, self.id)
    }
}

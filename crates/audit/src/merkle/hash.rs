//! SHA-256 with RFC 6962's domain separation: leaves are hashed with a 0x00 prefix, interior nodes with
//! 0x01, so no leaf can be passed off as a node or the other way round.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, a node hash or a tree head.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

/// The root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
pub const EMPTY_ROOT: Hash = Hash([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// A hash given as text that is not 32 bytes of base64 or hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashParseError {
    /// Not valid standard (padded) base64.
    #[error("not standard base64: {0}")]
    Base64(String),
    /// Not lowercase or uppercase hexadecimal.
    #[error("not hexadecimal")]
    Hex,
    /// Decoded to the wrong number of bytes.
    #[error("a SHA-256 hash is 32 bytes, this is {0}")]
    Length(usize),
}

impl Hash {
    /// The hash as standard base64 with padding, as checkpoints and proofs write it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Parses standard base64 with padding; refuses anything that does not re-encode to the same text,
    /// so one hash has one spelling.
    pub fn from_base64(text: &str) -> Result<Hash, HashParseError> {
        let bytes = STANDARD
            .decode(text)
            .map_err(|e| HashParseError::Base64(e.to_string()))?;
        let hash = Hash::from_slice(&bytes)?;
        if hash.to_base64() != text {
            return Err(HashParseError::Base64("non-canonical encoding".into()));
        }
        Ok(hash)
    }

    /// The hash as 64 lowercase hex digits, as `sha256sum` prints it.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        s
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Hash, HashParseError> {
        let digits = text.as_bytes();
        if digits.len() != 64 {
            return Err(HashParseError::Length(digits.len() / 2));
        }
        let mut out = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or(HashParseError::Hex)?;
            let lo = hex_value(pair[1]).ok_or(HashParseError::Hex)?;
            out[i] = hi << 4 | lo;
        }
        Ok(Hash(out))
    }

    /// Takes exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Hash, HashParseError> {
        <[u8; 32]>::try_from(bytes)
            .map(Hash)
            .map_err(|_| HashParseError::Length(bytes.len()))
    }

    /// SHA-256 of `data`, without any domain-separation prefix (for file digests, key ids).
    pub fn sha256(data: &[u8]) -> Hash {
        Hash(Sha256::digest(data).into())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The leaf hash of `data`: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    Hash(h.finalize().into())
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

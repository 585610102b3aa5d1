//! The delivery signature: `X-Custos-Signature: v1=<hex HMAC-SHA256 over "<timestamp>.<body>">`
//! (see the [crate docs](crate#signatures)). Pure functions, for the sender and for receivers.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The scheme prefix of the signature header's value.
pub const VERSION_PREFIX: &str = "v1=";

/// The MAC of `<timestamp>.<body>` under `secret`.
fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Custos-Signature` value for `body` sent at `timestamp` (Unix seconds, as in the header).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    let mut out = String::with_capacity(VERSION_PREFIX.len() + tag.len() * 2);
    out.push_str(VERSION_PREFIX);
    for byte in tag {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// Whether `header` (an `X-Custos-Signature` value) signs `body` at `timestamp` with `secret`. The MAC
/// is compared in constant time; a malformed header is simply not a valid signature. It does not look
/// at the clock: a receiver checks the timestamp's age itself.
pub fn verify_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix(VERSION_PREFIX) else {
        return false;
    };
    let Some(tag) = decode_hex(hex) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&tag).is_ok()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes from hex digits (either case); `None` for an odd length or a non-hex character.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let pairs = hex.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16);
    pairs
        .map(|pair| Some(((nibble(pair[0])? << 4) | nibble(pair[1])?) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let body = br#"{"kind":"review.requested"}"#;
        let header = sign(secret, "1800000000", body);
        assert!(
            header.starts_with("v1=") && header.len() == 3 + 64,
            "{header}"
        );
        assert!(verify_signature(secret, "1800000000", body, &header));
        assert!(verify_signature(
            secret,
            "1800000000",
            body,
            &header.to_uppercase().replace("V1=", "v1=")
        ));
        assert!(
            !verify_signature(secret, "1800000001", body, &header),
            "timestamp is signed"
        );
        assert!(!verify_signature(
            b"another secret",
            "1800000000",
            body,
            &header
        ));
        for i in 0..body.len() {
            let mut tampered = body.to_vec();
            tampered[i] ^= 1;
            assert!(
                !verify_signature(secret, "1800000000", &tampered, &header),
                "byte {i}"
            );
        }
        for bad in [
            "",
            "v1=",
            "v2=00",
            "v1=zz",
            "v1=abc",
            &header[3..],
            &header[..header.len() - 2],
        ] {
            assert!(
                !verify_signature(secret, "1800000000", body, bad),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn matches_an_independently_computed_hmac() {
        // python3: hmac.new(secret, b'1700000000.{"kind":"review.requested"}', hashlib.sha256)
        let header = sign(
            b"0123456789abcdef0123456789abcdef",
            "1700000000",
            br#"{"kind":"review.requested"}"#,
        );
        assert_eq!(
            header,
            "v1=1795b93d5c2a8516a90830b89eff9f58cd5f8c26f5bffa970f2333655d7a51c3"
        );
    }
}

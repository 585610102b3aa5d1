//! Validators that confirm a pattern match: checksums and randomness, named in a rule's `validator:`.

use crate::rule::RuleError;

/// A check a candidate must pass before it counts as a finding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validator {
    /// Luhn checksum over the digits (payment cards).
    Luhn,
    /// ISO 13616 mod-97 check (IBAN).
    IbanMod97,
    /// US SSN area/group/serial rules.
    SsnAreaGroup,
    /// A phone number: `+` and 8-15 digits (E.164; `+1` numbers follow the North American plan, a
    /// dotted quad is an IP address), or a North American number (10 digits, optional leading 1, area
    /// code and exchange starting 2-9, area code not N11).
    Phone,
    /// Base64 of `user:password` (a registry `auth` field): decodes to printable text with a colon
    /// after a non-empty user.
    Base64UserPass,
    /// Base64 of a JWT: decodes to three dot-separated base64url segments, the first two `eyJ` (or,
    /// cut short, to the first two).
    Base64Jwt,
    /// Base64 of a PEM private key (a kubeconfig's `client-key-data`, a manifest's `tls.key`): its
    /// start decodes to a `-----BEGIN … PRIVATE KEY-----` line; certificates and public keys do not.
    Base64PrivateKey,
    /// Shannon entropy of the bytes, in bits per byte, at least this value.
    EntropyAtLeast(f64),
}

impl Validator {
    /// Parses a rule's `validator:` value: `luhn`, `iban_mod97`, `ssn_area_group`, `phone`,
    /// `base64_user_pass`, `base64_jwt`, `base64_private_key`, `entropy>=X`.
    pub fn parse(s: &str) -> Result<Self, RuleError> {
        match s.trim() {
            "luhn" => Ok(Self::Luhn),
            "iban_mod97" => Ok(Self::IbanMod97),
            "ssn_area_group" => Ok(Self::SsnAreaGroup),
            "phone" => Ok(Self::Phone),
            "base64_user_pass" => Ok(Self::Base64UserPass),
            "base64_jwt" => Ok(Self::Base64Jwt),
            "base64_private_key" => Ok(Self::Base64PrivateKey),
            other => other
                .strip_prefix("entropy>=")
                .and_then(|x| x.trim().parse::<f64>().ok())
                .map(Self::EntropyAtLeast)
                .ok_or_else(|| RuleError::Validator(other.to_owned())),
        }
    }

    /// Whether `candidate` (the bytes that would be masked) passes.
    pub fn check(&self, candidate: &[u8]) -> bool {
        match *self {
            Self::Luhn => luhn(candidate),
            Self::IbanMod97 => iban_mod97(candidate),
            Self::SsnAreaGroup => ssn(candidate),
            Self::Phone => phone(candidate),
            Self::Base64UserPass => base64_user_pass(candidate),
            Self::Base64Jwt => base64_jwt(candidate),
            Self::Base64PrivateKey => base64_private_key(candidate),
            Self::EntropyAtLeast(min) => entropy(candidate) >= min,
        }
    }
}

fn luhn(s: &[u8]) -> bool {
    let digits: Vec<u32> = s
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| u32::from(b - b'0'))
        .collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2 == 1, d * 2) {
            (true, dd) if dd > 9 => dd - 9,
            (true, dd) => dd,
            (false, _) => d,
        })
        .sum();
    sum.is_multiple_of(10)
}

fn iban_mod97(s: &[u8]) -> bool {
    let compact: Vec<u8> = s.iter().copied().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for &b in tail.iter().chain(head) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn ssn(s: &[u8]) -> bool {
    let d: Vec<u32> = s
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| u32::from(b - b'0'))
        .collect();
    if d.len() != 9 {
        return false;
    }
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn digits(s: &[u8]) -> Vec<u8> {
    s.iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect()
}

/// Ten North American digits: area code and exchange start 2-9, the area code is not N11.
fn nanp(d: &[u8]) -> bool {
    d.len() == 10 && d[0] >= 2 && d[3] >= 2 && !(d[1] == 1 && d[2] == 1)
}

fn phone(s: &[u8]) -> bool {
    let d = digits(s);
    if d.windows(2).all(|w| w[0] == w[1]) {
        return false;
    }
    match s.strip_prefix(b"+") {
        Some(rest) => {
            let dotted_quad = rest.split(|&b| b == b'.').count() == 4
                && rest
                    .split(|&b| b == b'.')
                    .all(|g| (1..=3).contains(&g.len()) && g.iter().all(u8::is_ascii_digit));
            (8..=15).contains(&d.len()) && d[0] != 0 && !dotted_quad && (d[0] != 1 || nanp(&d[1..]))
        }
        None => match d.len() {
            10 => nanp(&d),
            11 if d[0] == 1 => nanp(&d[1..]),
            _ => false,
        },
    }
}

/// Standard base64, padded or not.
fn decode_base64(s: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::{
        general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig,
    };
    use base64::Engine as _;
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(s).ok()
}

/// Base64 of a JWT, or of its beginning: a stream masker holding back at most 4 KiB may see a long
/// token cut, so the header and the start of the payload are enough (a header alone is not).
fn base64_jwt(s: &[u8]) -> bool {
    let Some(plain) = decode_base64(&s[..s.len() / 4 * 4]) else {
        return false;
    };
    let parts: Vec<&[u8]> = plain.split(|&b| b == b'.').collect();
    let b64url = |p: &[u8]| {
        p.iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    };
    (2..=3).contains(&parts.len())
        && parts[..2].iter().all(|p| p.starts_with(b"eyJ"))
        && parts.iter().all(|p| b64url(p))
}

/// Base64 whose first line decodes to a PEM private-key header. Only the start is decoded (a stream
/// masker may hold a long key cut short).
fn base64_private_key(s: &[u8]) -> bool {
    let start = &s[..s.len().min(96) / 4 * 4];
    let Some(plain) = decode_base64(start) else {
        return false;
    };
    let line = plain.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(label) = line
        .strip_prefix(b"-----BEGIN ")
        .and_then(|l| l.strip_suffix(b"-----"))
    else {
        return false;
    };
    label.len() <= 40
        && label.ends_with(b"PRIVATE KEY")
        && label
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b' ')
}

fn base64_user_pass(s: &[u8]) -> bool {
    let Some(plain) = decode_base64(s) else {
        return false;
    };
    plain.iter().all(|b| (0x20..0x7f).contains(b) || *b >= 0x80)
        && std::str::from_utf8(&plain).is_ok()
        && plain.iter().position(|&b| b == b':').is_some_and(|i| i > 0)
}

/// Shannon entropy in bits per byte.
pub(crate) fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums() {
        assert!(luhn(b"4111 1111 1111 1111"));
        assert!(!luhn(b"4111 1111 1111 1112"));
        assert!(iban_mod97(b"GB82 WEST 1234 5698 7654 32"));
        assert!(!iban_mod97(b"GB82WEST12345698765433"));
        assert!(ssn(b"123-45-6789"));
        assert!(!ssn(b"666-45-6789"));
        assert!(entropy(b"aaaaaaaa") < 0.01);
        assert_eq!(
            Validator::parse("entropy>=3.5").ok(),
            Some(Validator::EntropyAtLeast(3.5))
        );
        assert!(Validator::parse("nope").is_err());
    }

    #[test]
    fn phones() {
        for ok in [
            &b"+14155550132"[..],
            b"+1 (415) 555-0132",
            b"+44 20 7946 0958",
            b"+33 1 23 45 67 89",
            b"+49 30 901820",
            b"(415) 555-0132",
            b"415-555-0132",
            b"1-800-555-0199",
        ] {
            assert!(phone(ok), "{}", String::from_utf8_lossy(ok));
        }
        for no in [
            &b"+1234567"[..],     // 7 digits
            b"+1234567890123456", // 16 digits
            b"+0000",             // a time-zone offset
            b"+192.168.100.200",  // an IP address
            b"+99999999",         // one digit repeated
            b"+1 115 555 0132",   // North American area code starting 1
            b"(911) 555-0132",    // N11 is not an area code
            b"415-155-0132",      // exchange starting 1
            b"2026-11-27",
        ] {
            assert!(!phone(no), "{}", String::from_utf8_lossy(no));
        }
    }

    #[test]
    fn base64_private_keys_but_not_certificates_or_public_keys() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        for label in [
            "RSA PRIVATE KEY",
            "PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
        ] {
            for eol in ["\n", "\r\n"] {
                let pem = format!("-----BEGIN {label}-----{eol}MIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn{eol}-----END {label}-----{eol}");
                assert!(base64_private_key(b64(&pem).as_bytes()), "{label}");
            }
        }
        for pem in [
            "-----BEGIN CERTIFICATE-----\nMIIC/jCCAeagAwIBAgIBADANBgkqhkiG9w0BAQsFADAVMRMw\n",
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU\n",
            "-----BEGIN RSA PRIV",
            "-----BEGIN <script>PRIVATE KEY-----\n",
        ] {
            assert!(!base64_private_key(b64(pem).as_bytes()), "{pem}");
        }
        assert!(!base64_private_key(b"LS0tLS1CRUdJTi@@@"));
    }

    #[test]
    fn registry_auth() {
        assert!(base64_user_pass(b"dXNlcjpwYXNz")); // user:pass
        assert!(base64_user_pass(b"YWRtaW46aHVudGVyMg==")); // admin:hunter2
        assert!(base64_user_pass(b"YWRtaW46aHVudGVyMg")); // unpadded
        assert!(!base64_user_pass(b"OnBhc3M=")); // :pass, no user
        assert!(!base64_user_pass(b"dXNlcnBhc3M=")); // userpass, no colon
        assert!(!base64_user_pass(b"not base64!"));
        assert!(!base64_user_pass(b"AAECAwQ6")); // binary
                                                 // eyJhbGciOiJub25lIn0.eyJzdWIiOiJib3QifQ.c2ln, and its header alone
        assert!(base64_jwt(
            b"ZXlKaGJHY2lPaUp1YjI1bEluMC5leUp6ZFdJaU9pSmliM1FpZlEuYzJsbg=="
        ));
        assert!(!base64_jwt(b"ZXlKaGJHY2lPaUp1YjI1bEluMA=="));
        // Cut inside the payload (as a 4 KiB hold-back may cut a long token): still a token.
        assert!(base64_jwt(b"ZXlKaGJHY2lPaUp1YjI1bEluMC5leUp6ZFdJaU9p"));
        assert!(base64_jwt(b"ZXlKaGJHY2lPaUp1YjI1bEluMC5leUp6ZFdJaU9pS"));
    }
}

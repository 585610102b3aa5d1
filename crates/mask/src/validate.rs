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
    /// Shannon entropy of the bytes, in bits per byte, at least this value.
    EntropyAtLeast(f64),
}

impl Validator {
    /// Parses a rule's `validator:` value: `luhn`, `iban_mod97`, `ssn_area_group`, `entropy>=X`.
    pub fn parse(s: &str) -> Result<Self, RuleError> {
        match s.trim() {
            "luhn" => Ok(Self::Luhn),
            "iban_mod97" => Ok(Self::IbanMod97),
            "ssn_area_group" => Ok(Self::SsnAreaGroup),
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
}

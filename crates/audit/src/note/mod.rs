//! C2SP signed notes (c2sp.org/signed-note) with Ed25519, compatible with Go's
//! `golang.org/x/mod/sumdb/note`: the same key strings, the same key ids, the same text.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then one or more lines
//! `— <key name> base64(key id || signature)`. The key id is the first four bytes of
//! SHA-256(name || 0x0A || 0x01 || 32-byte public key), big-endian. Signatures cover the text including
//! its final newline. Unknown keys' signatures are ignored; a known key's bad signature rejects the note.

mod keys;

#[cfg(test)]
pub(crate) mod tests;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

pub use keys::{key_id, KeyError, SignerKey, VerifierKey, ALG_ED25519};

/// The most signatures a note may carry (Go's limit; the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The key name.
    pub name: String,
    /// The key id (first four bytes of the line's base64 payload).
    pub key_id: u32,
    /// The signature bytes after the key id.
    pub signature: Vec<u8>,
}

impl Signature {
    /// `name+hex(id)`, how errors name a key.
    pub fn key_label(&self) -> String {
        format!("{}+{:08x}", self.name, self.key_id)
    }
}

/// A note split into its text and signature lines, signatures not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, including its final newline.
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<Signature>,
}

/// A note whose signature by a trusted key verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The signed text, including its final newline.
    pub text: String,
    /// Signatures that verified under a trusted key.
    pub verified: Vec<Signature>,
    /// Signatures by keys not trusted here (ignored, as the spec requires).
    pub unverified: Vec<Signature>,
}

/// Why a note is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note's structure is wrong.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// A key name is empty or has a space or a plus.
    #[error("malformed note: bad key name {0:?}")]
    BadName(String),
    /// A trusted key's signature does not verify: the text was changed, or the signature was.
    #[error("invalid signature for key {key}: the note's text is not what that key signed")]
    InvalidSignature {
        /// `name+id` of the key.
        key: String,
    },
    /// No signature by a trusted key.
    #[error("no signature by a trusted key ({trusted}); the note is signed by: {found}")]
    NoTrustedSignature {
        /// The trusted keys, `name+id`, comma-separated.
        trusted: String,
        /// The keys that did sign, `name+id`, comma-separated.
        found: String,
    },
    /// Two trusted keys share a name and id.
    #[error("ambiguous key {0}: two trusted keys share this name and id")]
    AmbiguousKey(String),
}

/// A valid key name: non-empty, no Unicode white space, no `+`.
pub fn is_valid_name(name: &str) -> bool {
    // Stricter than Go's note package: a control character would also make every note carrying the
    // name unsignable (note text may hold no control characters but newlines).
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// Signs `text` (which must end in a newline and have no control characters but newlines) with each
/// key, and returns the signed note.
pub fn sign(text: &str, keys: &[&SignerKey]) -> Result<String, NoteError> {
    check_text(text)?;
    if keys.is_empty() {
        return Err(NoteError::Malformed("no signing key"));
    }
    let mut out = String::with_capacity(text.len() + 1 + keys.len() * 128);
    out.push_str(text);
    out.push('\n');
    for key in keys {
        let mut payload = key.id().to_be_bytes().to_vec();
        payload.extend_from_slice(&key.sign(text.as_bytes()));
        out.push_str("\u{2014} ");
        out.push_str(key.name());
        out.push(' ');
        out.push_str(&STANDARD.encode(payload));
        out.push('\n');
    }
    Ok(out)
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text does not end in a newline"));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed("control character in text"));
    }
    Ok(())
}

/// Splits a note into text and signature lines, checking its structure (not its signatures).
pub fn parse(note: &str) -> Result<Note, NoteError> {
    if note.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed("control character"));
    }
    if !note.ends_with('\n') {
        return Err(NoteError::Malformed("does not end in a newline"));
    }
    // The text ends at the last blank line; signatures follow it.
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before signatures"))?;
    let text = &note[..=split];
    let lines = &note[split + 2..];
    if lines.is_empty() {
        return Err(NoteError::Malformed("no signatures"));
    }
    let mut signatures = Vec::new();
    for line in lines.strip_suffix('\n').unwrap_or(lines).split('\n') {
        if signatures.len() == MAX_SIGNATURES {
            return Err(NoteError::Malformed("too many signatures"));
        }
        signatures.push(parse_signature_line(line)?);
    }
    Ok(Note {
        text: text.to_owned(),
        signatures,
    })
}

fn parse_signature_line(line: &str) -> Result<Signature, NoteError> {
    let rest = line.strip_prefix("\u{2014} ").ok_or(NoteError::Malformed(
        "line after the blank line is not a signature",
    ))?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or(NoteError::Malformed("signature line without a signature"))?;
    if !is_valid_name(name) {
        return Err(NoteError::BadName(name.to_owned()));
    }
    let payload = STANDARD
        .decode(b64)
        .map_err(|_| NoteError::Malformed("signature is not base64"))?;
    if payload.len() < 5 {
        return Err(NoteError::Malformed("signature too short"));
    }
    let key_id = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
    Ok(Signature {
        name: name.to_owned(),
        key_id,
        signature: payload[4..].to_vec(),
    })
}

/// Parses a note and verifies it against trusted keys: every signature by a trusted key must verify
/// and at least one must be present; other signatures are set aside in [`Opened::unverified`].
pub fn open(note: &str, trusted: &[VerifierKey]) -> Result<Opened, NoteError> {
    let parsed = parse(note)?;
    let mut verified: Vec<Signature> = Vec::new();
    let mut unverified: Vec<Signature> = Vec::new();
    for sig in parsed.signatures {
        let mut matching = trusted
            .iter()
            .filter(|k| k.name() == sig.name && k.id() == sig.key_id);
        let Some(key) = matching.next() else {
            if !unverified.contains(&sig) {
                unverified.push(sig);
            }
            continue;
        };
        if matching.any(|other| other != key) {
            return Err(NoteError::AmbiguousKey(sig.key_label()));
        }
        if !key.verify(parsed.text.as_bytes(), &sig.signature) {
            return Err(NoteError::InvalidSignature {
                key: sig.key_label(),
            });
        }
        if !verified.contains(&sig) {
            verified.push(sig);
        }
    }
    if verified.is_empty() {
        let labels = |it: &mut dyn Iterator<Item = String>| it.collect::<Vec<_>>().join(", ");
        return Err(NoteError::NoTrustedSignature {
            trusted: labels(&mut trusted.iter().map(|k| k.label())),
            found: labels(&mut unverified.iter().map(Signature::key_label)),
        });
    }
    Ok(Opened {
        text: parsed.text,
        verified,
        unverified,
    })
}

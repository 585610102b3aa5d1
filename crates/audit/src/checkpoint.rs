//! C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): a log's signed tree head.
//!
//! The note text is `<origin>\n<tree size>\n<base64 root hash>\n` followed by optional non-empty
//! extension lines; it is signed as a [signed note](crate::note). Parsing is strict: a size with a
//! leading zero, a hash that is not exactly 32 bytes of canonical base64, an empty line or a missing
//! final newline are all refused, so one tree head has one text.

use crate::merkle::{Hash, HashParseError};
use crate::note::{self, NoteError, SignerKey, VerifierKey};

/// A log's tree head: which log, how many leaves, and their Merkle root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity (its first line); Custos uses the signing key's name.
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// RFC 6962 root hash of those leaves.
    pub root: Hash,
    /// Extension lines (opaque, optional; Custos writes none).
    pub extensions: Vec<String>,
}

/// Why a checkpoint is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The signed note does not verify (bad signature, wrong key, malformed note).
    #[error("checkpoint signature: {0}")]
    Note(#[from] NoteError),
    /// Fewer than three lines.
    #[error("checkpoint has {0} lines; it needs origin, size and root hash")]
    TooFewLines(usize),
    /// The text does not end in a newline.
    #[error("checkpoint text does not end in a newline")]
    NoFinalNewline,
    /// A line is empty (origin or an extension line).
    #[error("checkpoint line {0} is empty")]
    EmptyLine(usize),
    /// The size line is not a decimal without leading zeros.
    #[error("checkpoint size {0:?} is not a decimal number without leading zeros")]
    BadSize(String),
    /// The root line is not a 32-byte hash in canonical base64.
    #[error("checkpoint root hash {text:?}: {error}")]
    BadRoot {
        /// The line.
        text: String,
        /// Why it is not a hash.
        error: HashParseError,
    },
    /// A line that would break the text's framing (a newline inside the origin or an extension).
    #[error("checkpoint field contains a newline")]
    NewlineInField,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Checkpoint {
        Checkpoint {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text (what gets signed).
    pub fn to_text(&self) -> Result<String, CheckpointError> {
        if self.origin.is_empty() {
            return Err(CheckpointError::EmptyLine(1));
        }
        let fields = std::iter::once(&self.origin).chain(&self.extensions);
        if fields.clone().any(|f| f.contains('\n')) {
            return Err(CheckpointError::NewlineInField);
        }
        if let Some(i) = self.extensions.iter().position(String::is_empty) {
            return Err(CheckpointError::EmptyLine(i + 4));
        }
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        Ok(text)
    }

    /// Parses note text (not a signed note: see [`open`](Self::open)).
    pub fn from_text(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::NoFinalNewline)?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() < 3 {
            return Err(CheckpointError::TooFewLines(lines.len()));
        }
        if let Some(i) = lines.iter().position(|l| l.is_empty()) {
            return Err(CheckpointError::EmptyLine(i + 1));
        }
        let size = parse_size(lines[1])?;
        let root = Hash::from_base64(lines[2]).map_err(|error| CheckpointError::BadRoot {
            text: lines[2].to_owned(),
            error,
        })?;
        Ok(Checkpoint {
            origin: lines[0].to_owned(),
            size,
            root,
            extensions: lines[3..].iter().map(|l| (*l).to_owned()).collect(),
        })
    }

    /// Signs the checkpoint; returns the signed note.
    pub fn sign(&self, key: &SignerKey) -> Result<String, CheckpointError> {
        Ok(note::sign(&self.to_text()?, &[key])?)
    }

    /// Verifies a signed checkpoint note against `key` and parses it.
    pub fn open(signed: &str, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
        let opened = note::open(signed, std::slice::from_ref(key))?;
        Checkpoint::from_text(&opened.text)
    }
}

fn parse_size(text: &str) -> Result<u64, CheckpointError> {
    let bad = || CheckpointError::BadSize(text.to_owned());
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOFA: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn c2sp_example_text_round_trips() {
        let c = Checkpoint::from_text(SOFA).expect("spec example");
        assert_eq!(c.origin, "example.com/behind-the-sofa");
        assert_eq!(c.size, 20852163);
        assert_eq!(c.to_text().expect("text"), SOFA);
        let with_ext = format!("{SOFA}ext one\n");
        assert_eq!(
            Checkpoint::from_text(&with_ext).expect("ext").extensions,
            vec!["ext one".to_owned()]
        );
    }

    #[test]
    fn go_tlog_note_vectors() {
        // golang.org/x/mod/sumdb/tlog note_test.go: a good tree and two bad ones.
        let good =
            "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";
        assert_eq!(
            Checkpoint::from_text(good).expect("good").size,
            123456789012
        );
        assert!(Checkpoint::from_text(
            "go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n"
        )
        .is_err());
        assert!(Checkpoint::from_text("go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n").is_err());
    }

    #[test]
    fn strict_parsing() {
        for bad in [
            "o\n1\n",
            "o\n01\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
            "o\n+1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n",
            "\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",
            "o\n18446744073709551616\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        ] {
            assert!(Checkpoint::from_text(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Checkpoint::from_text("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")
                .expect("empty")
                .size,
            0
        );
    }

    #[test]
    fn real_sumdb_checkpoints_open() {
        let key = VerifierKey::parse(crate::note::tests::SUMDB_VKEY).expect("key");
        let c =
            Checkpoint::open(crate::note::tests::SUMDB_NOTES[0], &key).expect("sumdb checkpoint");
        assert_eq!(
            (c.origin.as_str(), c.size),
            ("go.sum database tree", 70991285)
        );
    }

    #[test]
    fn sign_and_open_reject_wrong_key_and_changes() {
        let key = SignerKey::from_seed("custos.example/log", [7; 32]).expect("key");
        let other = SignerKey::from_seed("custos.example/log", [8; 32]).expect("other");
        let cp = Checkpoint::new("custos.example/log", 3, Hash([9; 32]));
        let signed = cp.sign(&key).expect("sign");
        assert_eq!(
            Checkpoint::open(&signed, &key.verifier()).expect("open"),
            cp
        );
        assert!(matches!(
            Checkpoint::open(&signed, &other.verifier()),
            Err(CheckpointError::Note(NoteError::NoTrustedSignature { .. }))
        ));
        let changed = signed.replacen("\n3\n", "\n4\n", 1);
        assert!(matches!(
            Checkpoint::open(&changed, &key.verifier()),
            Err(CheckpointError::Note(NoteError::InvalidSignature { .. }))
        ));
        let extra_line = signed.replacen("\n\n", "\nextra\n\n", 1);
        assert!(Checkpoint::open(&extra_line, &key.verifier()).is_err());
        let missing_line = signed.replacen("custos.example/log\n", "", 1);
        assert!(Checkpoint::open(&missing_line, &key.verifier()).is_err());
    }
}

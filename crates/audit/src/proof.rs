//! Proof files an examiner can carry away and check offline.
//!
//! - [`TlogProof`]: C2SP tlog-proof (c2sp.org/tlog-proof): `c2sp.org/tlog-proof@v1`, an optional
//!   `extra <base64>` line, `index <n>`, the inclusion proof as one base64 hash per line (the leaf's
//!   sibling first), an empty line, then the signed checkpoint verbatim.
//! - [`ConsistencyFile`]: the body of a C2SP tlog-witness `add-checkpoint` request
//!   (c2sp.org/tlog-witness): `old <size>`, the consistency proof as one base64 hash per line, an empty
//!   line, then the newer signed checkpoint verbatim. It proves that the checkpoint an auditor kept
//!   (of size `old`) is a prefix of the newer one.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::merkle::{
    ConsistencyError, ConsistencyProof, Hash, HashParseError, InclusionError, InclusionProof,
};
use crate::note::VerifierKey;

/// The first line of a tlog-proof.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// More hashes than any proof in a tree of at most 2^64 leaves needs.
const MAX_PROOF_HASHES: usize = 64;

/// A file that is not a well-formed proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFormatError {
    /// The first line is not what the format requires.
    #[error("line 1: expected {expected:?}")]
    Header {
        /// The required first line.
        expected: &'static str,
    },
    /// The `extra` line is not base64.
    #[error("line 2: extra data is not base64")]
    Extra,
    /// The `index`/`old` line is missing or not a decimal without leading zeros.
    #[error("line {line}: expected \"{word} <decimal>\"")]
    Number {
        /// 1-based line number.
        line: usize,
        /// `index` or `old`.
        word: &'static str,
    },
    /// A proof line is not a 32-byte base64 hash.
    #[error("line {line}: {error}")]
    Hash {
        /// 1-based line number.
        line: usize,
        /// Why it is not a hash.
        error: HashParseError,
    },
    /// More than 64 hashes.
    #[error("more than {MAX_PROOF_HASHES} proof hashes")]
    TooManyHashes,
    /// No empty line between the proof and the checkpoint.
    #[error("no empty line before the checkpoint")]
    NoCheckpoint,
}

/// Why a well-formed proof does not prove what it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofCheckError {
    /// The embedded checkpoint does not verify under the log's key, or is malformed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint is from another log.
    #[error("checkpoint is for log {found:?}, expected {expected:?}")]
    Origin {
        /// The expected origin.
        expected: String,
        /// The checkpoint's origin.
        found: String,
    },
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error(transparent)]
    Inclusion(#[from] InclusionError),
    /// The consistency proof does not join the two checkpoints.
    #[error(transparent)]
    Consistency(#[from] ConsistencyError),
    /// The consistency file starts from another size than the checkpoint it is checked against.
    #[error("consistency proof starts at size {file}, the kept checkpoint has size {kept}")]
    OldSize {
        /// `old` in the file.
        file: u64,
        /// The kept checkpoint's size.
        kept: u64,
    },
}

/// An inclusion proof with its signed checkpoint (C2SP tlog-proof).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque, unauthenticated extra data (Custos writes none).
    pub extra: Option<Vec<u8>>,
    /// The leaf index.
    pub index: u64,
    /// The inclusion proof's hashes, the leaf's sibling first.
    pub hashes: Vec<Hash>,
    /// The signed checkpoint, verbatim.
    pub checkpoint: String,
}

impl TlogProof {
    /// Bundles an inclusion proof with the signed checkpoint whose tree size it was made for.
    pub fn new(proof: &InclusionProof, signed_checkpoint: &str) -> TlogProof {
        TlogProof {
            extra: None,
            index: proof.index,
            hashes: proof.hashes.clone(),
            checkpoint: signed_checkpoint.to_owned(),
        }
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut out = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", STANDARD.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        push_hashes(&mut out, &self.hashes);
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parses the file's text (structure only; see [`verify`](Self::verify)).
    pub fn parse(text: &str) -> Result<TlogProof, ProofFormatError> {
        let mut lines = Lines::new(text);
        if lines.next() != Some(TLOG_PROOF_HEADER) {
            return Err(ProofFormatError::Header {
                expected: TLOG_PROOF_HEADER,
            });
        }
        let mut line = lines.next();
        let mut extra = None;
        if let Some(b64) = line.and_then(|l| l.strip_prefix("extra ")) {
            extra = Some(STANDARD.decode(b64).map_err(|_| ProofFormatError::Extra)?);
            line = lines.next();
        }
        let index = number(line, "index", lines.number)?;
        let hashes = read_hashes(&mut lines)?;
        Ok(TlogProof {
            extra,
            index,
            hashes,
            checkpoint: lines.rest().to_owned(),
        })
    }

    /// Verifies the checkpoint's signature under `key` (and its origin, when given), then that `leaf`
    /// is at [`index`](Self::index) in its tree. Returns the checkpoint.
    pub fn verify(
        &self,
        leaf: &Hash,
        key: &VerifierKey,
        origin: Option<&str>,
    ) -> Result<Checkpoint, ProofCheckError> {
        let checkpoint = open_checkpoint(&self.checkpoint, key, origin)?;
        let proof = InclusionProof {
            index: self.index,
            size: checkpoint.size,
            hashes: self.hashes.clone(),
        };
        proof.verify(leaf, &checkpoint.root)?;
        Ok(checkpoint)
    }
}

/// A consistency proof from an older tree size to a newer signed checkpoint (the tlog-witness
/// `add-checkpoint` body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyFile {
    /// The older tree size.
    pub old: u64,
    /// The consistency proof's hashes.
    pub hashes: Vec<Hash>,
    /// The newer signed checkpoint, verbatim.
    pub checkpoint: String,
}

impl ConsistencyFile {
    /// Bundles a consistency proof with the newer signed checkpoint.
    pub fn new(proof: &ConsistencyProof, signed_checkpoint: &str) -> ConsistencyFile {
        ConsistencyFile {
            old: proof.old,
            hashes: proof.hashes.clone(),
            checkpoint: signed_checkpoint.to_owned(),
        }
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut out = format!("old {}\n", self.old);
        push_hashes(&mut out, &self.hashes);
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<ConsistencyFile, ProofFormatError> {
        let mut lines = Lines::new(text);
        let first = lines.next();
        let old = number(first, "old", 1)?;
        let hashes = read_hashes(&mut lines)?;
        Ok(ConsistencyFile {
            old,
            hashes,
            checkpoint: lines.rest().to_owned(),
        })
    }

    /// Verifies the newer checkpoint's signature, then that `kept` (a checkpoint the auditor already
    /// trusts, of size [`old`](Self::old)) is a prefix of it. Returns the newer checkpoint.
    pub fn verify(
        &self,
        kept: &Checkpoint,
        key: &VerifierKey,
    ) -> Result<Checkpoint, ProofCheckError> {
        if kept.size != self.old {
            return Err(ProofCheckError::OldSize {
                file: self.old,
                kept: kept.size,
            });
        }
        let newer = open_checkpoint(&self.checkpoint, key, Some(&kept.origin))?;
        let proof = ConsistencyProof {
            old: self.old,
            new: newer.size,
            hashes: self.hashes.clone(),
        };
        proof.verify(&kept.root, &newer.root)?;
        Ok(newer)
    }
}

fn open_checkpoint(
    signed: &str,
    key: &VerifierKey,
    origin: Option<&str>,
) -> Result<Checkpoint, ProofCheckError> {
    let checkpoint = Checkpoint::open(signed, key)?;
    if let Some(expected) = origin {
        if checkpoint.origin != expected {
            return Err(ProofCheckError::Origin {
                expected: expected.to_owned(),
                found: checkpoint.origin,
            });
        }
    }
    Ok(checkpoint)
}

fn push_hashes(out: &mut String, hashes: &[Hash]) {
    for h in hashes {
        out.push_str(&h.to_base64());
        out.push('\n');
    }
}

/// Newline-separated lines with their 1-based numbers, and the untouched remainder.
struct Lines<'a> {
    text: &'a str,
    number: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        Lines { text, number: 0 }
    }

    /// The next complete (newline-terminated) line.
    fn next(&mut self) -> Option<&'a str> {
        let end = self.text.find('\n')?;
        let line = &self.text[..end];
        self.text = &self.text[end + 1..];
        self.number += 1;
        Some(line)
    }

    fn rest(&self) -> &'a str {
        self.text
    }
}

fn number(line: Option<&str>, word: &'static str, at: usize) -> Result<u64, ProofFormatError> {
    let err = || ProofFormatError::Number {
        line: at.max(1),
        word,
    };
    let digits = line
        .and_then(|l| l.strip_prefix(word))
        .and_then(|l| l.strip_prefix(' '))
        .ok_or_else(err)?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return Err(err());
    }
    digits.parse().map_err(|_| err())
}

fn read_hashes(lines: &mut Lines<'_>) -> Result<Vec<Hash>, ProofFormatError> {
    let mut hashes = Vec::new();
    loop {
        let line = lines.next().ok_or(ProofFormatError::NoCheckpoint)?;
        if line.is_empty() {
            return Ok(hashes);
        }
        if hashes.len() == MAX_PROOF_HASHES {
            return Err(ProofFormatError::TooManyHashes);
        }
        let hash = Hash::from_base64(line).map_err(|error| ProofFormatError::Hash {
            line: lines.number,
            error,
        })?;
        hashes.push(hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{consistency_proof, inclusion_proof, MemoryLog};
    use crate::note::SignerKey;

    fn setup(n: u64) -> (MemoryLog, SignerKey) {
        let mut log = MemoryLog::new();
        for i in 0..n {
            log.append(format!("leaf {i}").as_bytes());
        }
        (
            log,
            SignerKey::from_seed("custos.example/log", [3; 32]).expect("key"),
        )
    }

    #[test]
    fn tlog_proof_round_trips_and_verifies() {
        let (log, key) = setup(11);
        let signed = Checkpoint::new("custos.example/log", 11, log.root())
            .sign(&key)
            .expect("sign");
        let proof = TlogProof::new(&inclusion_proof(&log, 6, 11).expect("proof"), &signed);
        let text = proof.to_text();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nindex 6\n"));
        let parsed = TlogProof::parse(&text).expect("parse");
        assert_eq!(parsed, proof);
        let leaf = crate::merkle::leaf_hash(b"leaf 6");
        parsed
            .verify(&leaf, &key.verifier(), Some("custos.example/log"))
            .expect("verifies");
        assert!(matches!(
            parsed.verify(&crate::merkle::leaf_hash(b"leaf 7"), &key.verifier(), None),
            Err(ProofCheckError::Inclusion(_))
        ));
        assert!(matches!(
            parsed.verify(&leaf, &key.verifier(), Some("other")),
            Err(ProofCheckError::Origin { .. })
        ));
        let mut with_extra = proof.clone();
        with_extra.extra = Some(b"hello".to_vec());
        assert_eq!(
            TlogProof::parse(&with_extra.to_text()).expect("extra"),
            with_extra
        );
    }

    #[test]
    fn tlog_proof_format_errors_say_where() {
        assert!(matches!(
            TlogProof::parse("wrong\nindex 0\n\ncp\n"),
            Err(ProofFormatError::Header { .. })
        ));
        assert_eq!(
            TlogProof::parse("c2sp.org/tlog-proof@v1\nextra !!\nindex 0\n\ncp\n"),
            Err(ProofFormatError::Extra)
        );
        assert!(matches!(
            TlogProof::parse("c2sp.org/tlog-proof@v1\n\n\ncp\n"),
            Err(ProofFormatError::Number { .. })
        ));
        assert!(matches!(
            TlogProof::parse("c2sp.org/tlog-proof@v1\nindex -5\n\ncp\n"),
            Err(ProofFormatError::Number { .. })
        ));
        assert!(matches!(
            TlogProof::parse("c2sp.org/tlog-proof@v1\nindex 01\n\ncp\n"),
            Err(ProofFormatError::Number { .. })
        ));
        let long = STANDARD.encode([0u8; 64]);
        assert!(matches!(
            TlogProof::parse(&format!("c2sp.org/tlog-proof@v1\nindex 0\n{long}\n\ncp\n")),
            Err(ProofFormatError::Hash { line: 3, .. })
        ));
        assert_eq!(
            TlogProof::parse("c2sp.org/tlog-proof@v1\nindex 0\n"),
            Err(ProofFormatError::NoCheckpoint)
        );
    }

    #[test]
    fn consistency_file_round_trips_and_verifies() {
        let (log, key) = setup(13);
        let old = Checkpoint::new(
            "custos.example/log",
            5,
            crate::merkle::root(&log, 5).expect("root"),
        );
        let signed_new = Checkpoint::new("custos.example/log", 13, log.root())
            .sign(&key)
            .expect("sign");
        let file =
            ConsistencyFile::new(&consistency_proof(&log, 5, 13).expect("proof"), &signed_new);
        let text = file.to_text();
        assert!(text.starts_with("old 5\n"));
        let parsed = ConsistencyFile::parse(&text).expect("parse");
        assert_eq!(
            parsed
                .verify(&old, &key.verifier())
                .expect("consistent")
                .size,
            13
        );
        let mut forked = old.clone();
        forked.root = crate::merkle::root(&log, 6).expect("other root");
        assert!(matches!(
            parsed.verify(&forked, &key.verifier()),
            Err(ProofCheckError::Consistency(_))
        ));
        let mut older = old.clone();
        older.size = 4;
        assert!(matches!(
            parsed.verify(&older, &key.verifier()),
            Err(ProofCheckError::OldSize { .. })
        ));
    }
}

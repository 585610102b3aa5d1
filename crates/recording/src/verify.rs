//! Checks a recording file against the chunk records the audit log holds for it.
//!
//! The log's `stream-chunk` records (one `StreamRef` each, in `custos.streams`) are the evidence; the
//! file is what is checked. It passes only if the chunks, in `seq` order, start at 0, follow each other
//! with no gap or overlap, end exactly at the file's end, and each chunk's bytes hash to its `sha256`.
//! So an edited byte, a truncated or extended file, and swapped passages all fail; the log itself is
//! verified (Merkle tree, signed checkpoints) by `custos audit verify`.

use std::path::Path;

use custos_audit::record::{Record, RecordKind, StreamRef};
use sha2::{Digest, Sha256};

use crate::writer::hex;

#[cfg(test)]
mod tests;

/// Why a recording does not match its chunk records.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// No chunk records were given: nothing vouches for the file.
    #[error("no chunk records for {0}")]
    NoChunks(String),
    /// A chunk record names another recording.
    #[error("chunk {seq} belongs to recording {found}, not {expected}")]
    OtherRecording {
        /// The chunk's seq.
        seq: u64,
        /// The recording it names.
        found: String,
        /// The file checked.
        expected: String,
    },
    /// A chunk record has no seq, offset or sha256.
    #[error("chunk record #{0} (in seq order) lacks seq, offset or sha256")]
    Incomplete(usize),
    /// A seq number is missing or repeated.
    #[error(
        "chunk seq {found} where {expected} was expected (a chunk record is missing or repeated)"
    )]
    Sequence {
        /// The seq expected next.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// A chunk does not start where the previous one ended.
    #[error("chunk {seq} starts at byte {offset}, but the previous chunks end at {expected} ({})", if offset > expected { "a gap" } else { "an overlap" })]
    NotContiguous {
        /// The chunk's seq.
        seq: u64,
        /// Where it starts.
        offset: u64,
        /// Where it should start.
        expected: u64,
    },
    /// The file ends before a chunk does: it was truncated.
    #[error(
        "chunk {seq} covers bytes {offset}..{end}, but the file has only {len} bytes (truncated)"
    )]
    Truncated {
        /// The chunk's seq.
        seq: u64,
        /// Where it starts.
        offset: u64,
        /// Where it ends.
        end: u64,
        /// The file's length.
        len: u64,
    },
    /// A chunk's bytes do not hash to its recorded sha256: they were changed.
    #[error("chunk {seq} (bytes {offset}..{end}) does not match its recorded SHA-256 (the recording was altered)")]
    Mismatch {
        /// The chunk's seq.
        seq: u64,
        /// Where it starts.
        offset: u64,
        /// Where it ends.
        end: u64,
    },
    /// The file goes on after the last chunk: bytes were added that no record covers.
    #[error("the file has {len} bytes, but its chunks cover only {covered} (bytes added after recording)")]
    Unrecorded {
        /// Bytes covered by chunks.
        covered: u64,
        /// The file's length.
        len: u64,
    },
}

/// The chunk references for the recording `name` among `records` (e.g. its audit id's records, in
/// any order): the `StreamRef`s naming it in `stream-chunk` records, one per chunk, header included.
pub fn chunks_of<'a>(records: impl IntoIterator<Item = &'a Record>, name: &str) -> Vec<StreamRef> {
    records
        .into_iter()
        .filter(|r| r.custos.record_kind == RecordKind::StreamChunk)
        .flat_map(|r| r.custos.streams.iter())
        .filter(|s| s.recording == name)
        .cloned()
        .collect()
}

/// Checks the recording at `path` against its chunk records (any order; sorted by seq here).
pub fn verify(path: &Path, chunks: &[StreamRef]) -> Result<(), VerifyError> {
    let (name, bytes) = read(path)?;
    verify_bytes(&name, &bytes, chunks)
}

/// A recording file's name and content.
fn read(path: &Path) -> Result<(String, Vec<u8>), VerifyError> {
    let bytes = std::fs::read(path).map_err(|source| VerifyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((name, bytes))
}

/// Checks the sealed part of a recording whose stream has no `stream-closed` record (still running,
/// or the gateway stopped before closing it): the chunks must cover a prefix of the file exactly as
/// [`verify`] requires; bytes after the last chunk are allowed and their count returned — they were
/// never sealed, so nothing vouches for them and they are not evidence.
pub fn verify_sealed(path: &Path, chunks: &[StreamRef]) -> Result<u64, VerifyError> {
    let (name, bytes) = read(path)?;
    let covered = covered(&name, &bytes, chunks)?;
    Ok(bytes.len() as u64 - covered)
}

/// Checks a recording's content `bytes`, named `name`, against its chunk records.
pub fn verify_bytes(name: &str, bytes: &[u8], chunks: &[StreamRef]) -> Result<(), VerifyError> {
    let pos = covered(name, bytes, chunks)?;
    let len = bytes.len() as u64;
    if pos != len {
        return Err(VerifyError::Unrecorded { covered: pos, len });
    }
    Ok(())
}

/// Checks the chunks against `bytes` and returns how many bytes (a prefix) they cover.
fn covered(name: &str, bytes: &[u8], chunks: &[StreamRef]) -> Result<u64, VerifyError> {
    if chunks.is_empty() {
        return Err(VerifyError::NoChunks(name.to_owned()));
    }
    let mut sorted: Vec<&StreamRef> = chunks.iter().collect();
    sorted.sort_by_key(|c| c.seq);
    let len = bytes.len() as u64;
    let mut pos = 0u64;
    for (i, c) in sorted.into_iter().enumerate() {
        let (Some(seq), Some(offset), Some(sha)) = (c.seq, c.offset, c.sha256.as_deref()) else {
            return Err(VerifyError::Incomplete(i));
        };
        if c.recording != name {
            return Err(VerifyError::OtherRecording {
                seq,
                found: c.recording.clone(),
                expected: name.to_owned(),
            });
        }
        if seq != i as u64 {
            return Err(VerifyError::Sequence {
                expected: i as u64,
                found: seq,
            });
        }
        if offset != pos {
            return Err(VerifyError::NotContiguous {
                seq,
                offset,
                expected: pos,
            });
        }
        let end = offset.saturating_add(c.bytes);
        if end > len {
            return Err(VerifyError::Truncated {
                seq,
                offset,
                end,
                len,
            });
        }
        // Both bounds are within the file, which is in memory.
        let slice = &bytes[offset as usize..end as usize];
        if !hex(&Sha256::digest(slice)).eq_ignore_ascii_case(sha) {
            return Err(VerifyError::Mismatch { seq, offset, end });
        }
        pos = end;
    }
    Ok(pos)
}

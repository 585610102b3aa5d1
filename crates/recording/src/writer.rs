//! Recording files and their chunks.
//!
//! A [`Writer`] appends event lines to `<dir>/<audit-id>.cast` as they happen (each line one `write`,
//! so a full disk or a vanished file is noticed at once) and hashes them. [`Writer::cut`] closes the
//! current chunk — always at a line boundary — and hands back a [`Chunk`]; [`Chunk::sync`] fsyncs the
//! file and returns the chunk's `StreamRef` for the log. Cutting is cheap and done under the caller's
//! lock; syncing blocks, so the gateway runs it off its async threads. The caller decides when to cut
//! ([`Writer::due`]: [`CHUNK_BYTES`] written or [`CHUNK_INTERVAL`] passed since the chunk's first
//! byte), so chunks are consecutive and cover the file exactly.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use custos_audit::record::StreamRef;
use sha2::{Digest, Sha256};

use crate::{Event, Header, WriteError};

#[cfg(test)]
pub(crate) mod tests;

/// A chunk is cut once it holds this many bytes.
pub const CHUNK_BYTES: u64 = 64 * 1024;

/// A chunk is cut once its first byte is this old.
pub const CHUNK_INTERVAL: Duration = Duration::from_secs(2);

/// How many `<audit-id>-N.cast` names are tried when `<audit-id>.cast` exists (a reused Audit-ID).
const MAX_NAME_TRIES: u32 = 100;

/// Where recordings live under a data dir: `<dataDir>/recordings`.
pub fn dir_in(data_dir: &Path) -> PathBuf {
    data_dir.join("recordings")
}

/// The recordings directory.
#[derive(Debug, Clone)]
pub struct Recordings {
    dir: PathBuf,
}

impl Recordings {
    /// Opens (creating it, mode 0700) the directory `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Recordings, WriteError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| WriteError::io("creating the recordings directory", &dir, e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| WriteError::io("restricting the recordings directory", &dir, e))?;
        Ok(Recordings { dir })
    }

    /// Opens `<data_dir>/recordings` ([`dir_in`]).
    pub fn open_in(data_dir: &Path) -> Result<Recordings, WriteError> {
        Self::open(dir_in(data_dir))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the recording called `name` (a `StreamRef`'s `recording`).
    pub fn path_of(&self, name: &str) -> Option<PathBuf> {
        valid_name(name.strip_suffix(".cast")?).then(|| self.dir.join(name))
    }

    /// Creates the recording of the stream with `audit_id` (mode 0600, never an existing file) and
    /// writes `header`; the header is the first chunk's start. Blocks (file creation, directory sync).
    pub fn create(&self, audit_id: &str, header: &Header) -> Result<Writer, WriteError> {
        if !valid_name(audit_id) {
            return Err(WriteError::BadName(audit_id.to_owned()));
        }
        let (name, path, file) = self.create_file(audit_id)?;
        // The new directory entry is made durable with the header's first chunk.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| WriteError::io("syncing the recordings directory", &self.dir, e))?;
        let mut w = Writer {
            name,
            path,
            file: Arc::new(file),
            len: 0,
            chunk_start: 0,
            chunk_hash: Sha256::new(),
            chunk_opened: None,
            whole: Sha256::new(),
            seq: 0,
            failed: false,
            line: Vec::new(),
        };
        w.append(&header.line(), Duration::ZERO)?;
        Ok(w)
    }

    fn create_file(&self, audit_id: &str) -> Result<(String, PathBuf, File), WriteError> {
        let mut last = None;
        for n in 1..=MAX_NAME_TRIES {
            let name = match n {
                1 => format!("{audit_id}.cast"),
                n => format!("{audit_id}-{n}.cast"),
            };
            let path = self.dir.join(&name);
            match OpenOptions::new()
                .append(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(f) => return Ok((name, path, f)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(WriteError::io("creating the recording", &path, e)),
            }
        }
        let e = last.unwrap_or_else(|| std::io::Error::other("no name left"));
        Err(WriteError::io("creating the recording", &self.dir, e))
    }
}

/// Audit ids name files: ASCII letters, digits, `-`, `_` and `.` (not first), at most 128.
fn valid_name(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Appends to one recording and cuts it into chunks.
#[derive(Debug)]
pub struct Writer {
    name: String,
    path: PathBuf,
    file: Arc<File>,
    /// Bytes written.
    len: u64,
    chunk_start: u64,
    chunk_hash: Sha256,
    /// When the current chunk got its first byte (time since the start).
    chunk_opened: Option<Duration>,
    whole: Sha256,
    seq: u64,
    failed: bool,
    line: Vec<u8>,
}

impl Writer {
    /// The file name (`<audit-id>.cast`), as `StreamRef.recording` names it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been written (never true once created: the header is written first).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes written since the last cut.
    pub fn unsealed(&self) -> u64 {
        self.len - self.chunk_start
    }

    /// How many chunks were cut.
    pub fn chunks(&self) -> u64 {
        self.seq
    }

    /// Whether an earlier write failed (nothing more is written).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Whether the current chunk should be cut at `now` (time since the start): it holds
    /// [`CHUNK_BYTES`], or its first byte is [`CHUNK_INTERVAL`] old.
    pub fn due(&self, now: Duration) -> bool {
        self.unsealed() >= CHUNK_BYTES
            || self
                .chunk_opened
                .is_some_and(|t| now.saturating_sub(t) >= CHUNK_INTERVAL)
    }

    /// Appends `event`'s line. An error leaves the file's tail unknown: the writer refuses from then on.
    pub fn event(&mut self, event: &Event) -> Result<(), WriteError> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        event.encode(&mut line);
        let r = self.append(&line, event.time);
        self.line = line;
        r
    }

    fn append(&mut self, bytes: &[u8], now: Duration) -> Result<(), WriteError> {
        if self.failed {
            return Err(WriteError::Failed(self.name.clone()));
        }
        if let Err(e) = (&*self.file).write_all(bytes) {
            self.failed = true;
            return Err(WriteError::io("writing the recording", &self.path, e));
        }
        self.chunk_hash.update(bytes);
        self.whole.update(bytes);
        self.len += bytes.len() as u64;
        self.chunk_opened.get_or_insert(now);
        Ok(())
    }

    /// Closes the current chunk (none if it is empty); [`Chunk::sync`] makes it durable.
    pub fn cut(&mut self) -> Option<Chunk> {
        if self.unsealed() == 0 {
            return None;
        }
        let digest = std::mem::replace(&mut self.chunk_hash, Sha256::new()).finalize();
        let stream_ref = StreamRef {
            recording: self.name.clone(),
            channel: None,
            seq: Some(self.seq),
            offset: Some(self.chunk_start),
            bytes: self.unsealed(),
            sha256: Some(hex(&digest)),
        };
        self.seq += 1;
        self.chunk_start = self.len;
        self.chunk_opened = None;
        Some(Chunk {
            stream_ref,
            file: self.file.clone(),
            path: self.path.clone(),
        })
    }

    /// The whole file so far: a `StreamRef` with its length and SHA-256 (no seq, no offset).
    pub fn whole(&self) -> StreamRef {
        StreamRef {
            recording: self.name.clone(),
            channel: None,
            seq: None,
            offset: None,
            bytes: self.len,
            sha256: Some(hex(&self.whole.clone().finalize())),
        }
    }
}

/// A cut chunk, not yet known to be on disk.
#[derive(Debug)]
pub struct Chunk {
    stream_ref: StreamRef,
    file: Arc<File>,
    path: PathBuf,
}

impl Chunk {
    /// What the chunk covers.
    pub fn stream_ref(&self) -> &StreamRef {
        &self.stream_ref
    }

    /// Fsyncs the file (everything written so far, so this chunk too); blocks. Returns the chunk's
    /// `StreamRef`, to be appended to the log in a `stream-chunk` record.
    pub fn sync(self) -> Result<StreamRef, WriteError> {
        self.file
            .sync_data()
            .map_err(|e| WriteError::io("syncing the recording", &self.path, e))?;
        Ok(self.stream_ref)
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

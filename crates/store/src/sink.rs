//! Copies of signed checkpoints outside the store, so someone who can rewrite the database cannot
//! also rewrite the last checkpoint an auditor will compare against. A file ships now; an HTTP
//! witness or object store implements the same trait later.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::{StoreError, StoredCheckpoint};

/// Somewhere a copy of each new signed checkpoint goes.
#[async_trait]
pub trait CheckpointSink: Send + Sync {
    /// Publishes a checkpoint just stored. Errors are reported by the sequencer (status and log);
    /// they do not stop the log.
    async fn publish(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError>;
}

/// Writes the latest checkpoint to a file, atomically: a temporary file beside it, flushed, renamed
/// over it, and the directory flushed; a reader sees the old note or the new one, never half.
#[derive(Debug, Clone)]
pub struct FileSink {
    path: PathBuf,
}

impl FileSink {
    /// A sink writing to `path`.
    pub fn new(path: impl Into<PathBuf>) -> FileSink {
        FileSink { path: path.into() }
    }

    /// Where it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl CheckpointSink for FileSink {
    async fn publish(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        let path = self.path.clone();
        let note = checkpoint.note.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, note.as_bytes()))
            .await
            .map_err(|e| StoreError::unavailable("checkpoint copy task", e))?
            .map_err(|e| {
                StoreError::unavailable(
                    format!("writing checkpoint copy {}", self.path.display()),
                    e,
                )
            })
    }
}

fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replaces_the_file_atomically() {
        let dir = tempfile::tempdir().expect("dir");
        let sink = FileSink::new(dir.path().join("checkpoint"));
        for (size, note) in [(1, "one\n"), (2, "two\n")] {
            sink.publish(&StoredCheckpoint {
                size,
                note: note.into(),
            })
            .await
            .expect("publish");
        }
        assert_eq!(std::fs::read_to_string(sink.path()).expect("read"), "two\n");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
        let gone = FileSink::new(dir.path().join("no/such/dir/checkpoint"));
        assert!(gone
            .publish(&StoredCheckpoint {
                size: 1,
                note: "x\n".into()
            })
            .await
            .is_err());
    }
}

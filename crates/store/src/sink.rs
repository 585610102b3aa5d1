//! Copies of signed checkpoints outside the store, so someone who can rewrite the database cannot
//! also rewrite the last checkpoint an auditor will compare against: a file ([`FileSink`]), an HTTP
//! endpoint ([`HttpSink`]), or several at once ([`MultiSink`]).

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use crate::{StoreError, StoredCheckpoint};

mod http;

pub use http::{HttpSink, HttpSinkConfig, HttpSinkConfigError};

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

/// Publishes to several sinks, in order. Every sink is tried even when an earlier one fails (a dead
/// endpoint must not cost the file copy); the error names every sink that failed.
#[derive(Clone, Default)]
pub struct MultiSink {
    sinks: Vec<Arc<dyn CheckpointSink>>,
}

impl MultiSink {
    /// Publishes to `sinks`, in this order.
    pub fn new(sinks: Vec<Arc<dyn CheckpointSink>>) -> MultiSink {
        MultiSink { sinks }
    }

    /// How many sinks it publishes to.
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Whether it publishes nowhere.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
}

impl std::fmt::Debug for MultiSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiSink")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

#[async_trait]
impl CheckpointSink for MultiSink {
    async fn publish(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        let mut errors = Vec::new();
        for sink in &self.sinks {
            if let Err(e) = sink.publish(checkpoint).await {
                errors.push(e);
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            n => Err(StoreError::unavailable(
                format!("{n} checkpoint copies failed"),
                Failures(errors),
            )),
        }
    }
}

/// Several sinks' errors as one.
#[derive(Debug)]
struct Failures(Vec<StoreError>);

impl std::fmt::Display for Failures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failures {}

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

    #[tokio::test]
    async fn multi_sink_tries_every_sink_and_names_each_failure() {
        let dir = tempfile::tempdir().expect("dir");
        let good = FileSink::new(dir.path().join("checkpoint"));
        let bad = |n: &str| {
            Arc::new(FileSink::new(dir.path().join(n).join("checkpoint")))
                as Arc<dyn CheckpointSink>
        };
        let cp = StoredCheckpoint {
            size: 1,
            note: "one\n".into(),
        };
        let one_bad = MultiSink::new(vec![bad("a"), Arc::new(good.clone())]);
        let err = one_bad.publish(&cp).await.expect_err("one failed");
        assert!(err.to_string().contains("/a/checkpoint"), "{err}");
        assert_eq!(std::fs::read_to_string(good.path()).expect("read"), "one\n");
        let two_bad = MultiSink::new(vec![bad("a"), bad("b"), Arc::new(good)]);
        let err = two_bad
            .publish(&cp)
            .await
            .expect_err("two failed")
            .to_string();
        assert!(err.contains("2 checkpoint copies failed"), "{err}");
        assert!(
            err.contains("/a/checkpoint") && err.contains("/b/checkpoint"),
            "{err}"
        );
        MultiSink::default()
            .publish(&cp)
            .await
            .expect("nowhere is fine");
    }
}

//! Why a recording cannot be written, parsed or read.

/// A line that is not asciicast v2 as Custos writes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The header line is not a v2 header.
    #[error("not an asciicast v2 header: {0}")]
    Header(String),
    /// An event line is not `[seconds, code, data]`.
    #[error("line {line}: not an asciicast event: {reason}")]
    Event {
        /// 1-based line number (the header is line 1).
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// A recording could not be written: the stream it records must be closed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The file system refused (directory missing or unwritable, disk full, I/O error).
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An earlier write failed; the file's tail is unknown and nothing more is written.
    #[error("the recording {0} failed earlier; nothing more is written to it")]
    Failed(String),
    /// The audit id cannot name a file.
    #[error("audit id {0:?} cannot name a recording file")]
    BadName(String),
}

impl WriteError {
    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        WriteError::Io {
            what,
            path: path.display().to_string(),
            source,
        }
    }
}

/// A recording could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Its content is not a recording.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        #[source]
        source: FormatError,
    },
}

//! [`PolicyError`]: why a policy set was refused, with every problem pinned to `file:line:column`.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// A place in a policy file: 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    /// The file as it was named to the loader (relative to the policy folder for folder loads).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text` (clamped to the text, and to a character boundary).
    pub fn at(file: &str, text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self {
            file: file.to_owned(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem in a policy set, printed as `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Where the problem is.
    pub location: Location,
    /// What is wrong.
    pub message: String,
    /// The id of the policy it is in, when the policy was parsed far enough to have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// How to fix it, when Cedar or Custos knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)?;
        if let Some(id) = &self.policy_id {
            write!(f, " [policy {id}]")?;
        }
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

/// Why a policy set could not be loaded. A running gateway keeps its last good set on any of these.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file or folder could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A folder holds no `*.cedar` file: refused, because an empty set silently denies everything.
    #[error("{}: no *.cedar policy files found", path.display())]
    NoPolicies {
        /// The folder.
        path: PathBuf,
    },
    /// A file is larger than [`crate::load::MAX_FILE_BYTES`], or a folder holds too many files.
    #[error("{}: {what}", path.display())]
    TooLarge {
        /// The file or folder.
        path: PathBuf,
        /// Which limit was exceeded.
        what: String,
    },
    /// The policies do not parse, do not validate against the schema in strict mode, or carry
    /// annotations Custos cannot honour.
    #[error("{}", Invalid(.0))]
    Invalid(Vec<Diagnostic>),
    /// A policy test file is malformed.
    #[error("{file}: {message}")]
    TestFile {
        /// The test file.
        file: String,
        /// What is wrong.
        message: String,
    },
}

impl PolicyError {
    /// The diagnostics of an [`PolicyError::Invalid`] set; empty for the other kinds.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Self::Invalid(d) => d,
            _ => &[],
        }
    }
}

/// Displays diagnostics one per line, with a count first when there are several.
struct Invalid<'a>(&'a [Diagnostic]);

impl fmt::Display for Invalid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, "invalid policy: {one}"),
            many => {
                write!(f, "{} problems in policies:", many.len())?;
                for d in many {
                    write!(f, "\n  {d}")?;
                }
                Ok(())
            }
        }
    }
}

/// Converts a Cedar (miette) diagnostic into ours: message, help, and the first labelled span of
/// `text` (the file it came from); without a span, the fallback offset.
pub(crate) fn from_miette(
    file: &str,
    text: &str,
    fallback_offset: usize,
    policy_id: Option<String>,
    err: &dyn miette::Diagnostic,
) -> Diagnostic {
    let offset = err
        .labels()
        .and_then(|mut labels| labels.next())
        .map_or(fallback_offset, |label| label.offset());
    let mut message = err.to_string();
    // Cedar puts the precise complaint in a label ("expected ...") when the message is general.
    if let Some(label) = err
        .labels()
        .and_then(|mut labels| labels.next())
        .and_then(|l| l.label().map(str::to_owned))
        .filter(|l| !l.is_empty() && !message.contains(l.as_str()))
    {
        message = format!("{message}: {label}");
    }
    Diagnostic {
        location: Location::at(file, text, offset),
        message,
        policy_id,
        help: err.help().map(|h| h.to_string()),
    }
}

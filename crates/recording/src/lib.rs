//! Custos recording owns the session recordings of exec and attach, and of port-forward payloads when
//! policy asks for them: their format (asciicast v2 with Custos's header and extension events, [`cast`]), how a stream's channels become events
//! ([`Transcriber`]: stdin masked, resize and exit status decoded), the files
//! (`<recordings dir>/<audit-id>.cast`, by default under the data dir, directory 0700, files 0600, [`Recordings`], [`Writer`]),
//! the chunks that bind a file to the audit log ([`Chunk`] → a `StreamRef` in a `stream-chunk`
//! record), and what an auditor does with a file: [`verify`] it against the log's chunk records and
//! [`play`] it in a terminal.
//!
//! ## Format
//! One header line, then one event line `[seconds, code, data]` per event (`seconds` since the start,
//! microseconds). Codes: `o` stdout, `i` stdin (typed input), `r` resize (`"COLSxROWS"`), and the
//! Custos extensions: `e` stderr, `x` the exit status (the error channel's `Status` as JSON text),
//! and, in port-forward recordings, `fi` / `fo` (bytes into / out of the pod: `"<connection> <base64>"`,
//! masked by the gateway before they are written).
//! asciicast v2 leaves the event list open; asciinema 3 (`asciinema play`) and asciinema-player both
//! skip codes they do not know, so a Custos recording plays there (stderr is then not shown).
//!
//! ## Coverage
//! A file is cut into consecutive chunks — at most [`CHUNK_BYTES`] or [`CHUNK_INTERVAL`] apart, and at
//! the end — each fsynced and described by a `StreamRef { recording, seq, offset, bytes, sha256 }`.
//! The chunks of a file cover every byte of it exactly once, so [`verify`] fails on any edit,
//! truncation, appended byte or reordering.
//!
//! It must never store unmasked bytes: stdout and stderr arrive already masked (the gateway records
//! what it sends the client), stdin goes through a length-preserving masker here, and the exit status
//! is masked too.
#![deny(missing_docs)]

pub mod cast;
mod error;
mod play;
mod transcript;
mod verify;
mod writer;

pub use cast::{Code, Event, Facts, Header, Identity, Recording, SessionInfo};
pub use error::{FormatError, ReadError, WriteError};
pub use play::{play, play_with, PlayError, PlayOptions, PlayStats};
pub use transcript::{Piece, Totals, Transcriber};
pub use verify::{chunks_of, verify, verify_bytes, verify_sealed, VerifyError};
pub use writer::{dir_in, Chunk, Recordings, Writer, CHUNK_BYTES, CHUNK_INTERVAL};

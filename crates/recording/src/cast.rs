//! The file format: asciicast v2 (newline-delimited JSON) with a `custos` member in the header that
//! says whose session it was, and Custos's extension event codes.
//!
//! ```text
//! {"version":2,"width":80,"height":24,"timestamp":1718000000,"env":{},"custos":{"auditID":"…",…}}
//! [0.012345,"r","120x40"]
//! [0.250000,"o","testbed$ "]
//! [1.100000,"i","l"]
//! [3.400000,"e","sh: nope: not found\r\n"]
//! [9.000000,"x","{\"metadata\":{},\"status\":\"Success\"}"]
//! ```
//! The header's size is the default 80×24: the real size arrives as the first `r` event (kubectl sends
//! it right after the stream opens), because the header is written — and hashed into the log —
//! before the stream starts.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use custos_audit::record::MicroTime;
use serde::{Deserialize, Serialize};

use crate::{FormatError, ReadError};

#[cfg(test)]
mod tests;

/// The asciicast version Custos writes.
pub const VERSION: u32 = 2;

/// Terminal size written in the header (the real one follows as an `r` event).
pub const DEFAULT_SIZE: (u16, u16) = (80, 24);

/// The first line of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always 2.
    pub version: u32,
    /// Initial terminal width (columns).
    pub width: u16,
    /// Initial terminal height (rows).
    pub height: u16,
    /// Unix time (seconds) the recording started.
    #[serde(default)]
    pub timestamp: u64,
    /// Environment variables (Custos does not see the client's; kept for players that expect it).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Who recorded what; absent in recordings Custos did not write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custos: Option<Facts>,
}

impl Header {
    /// A v2 header of the default size for a stream described by `facts`.
    pub fn new(facts: Facts) -> Header {
        Header {
            version: VERSION,
            width: DEFAULT_SIZE.0,
            height: DEFAULT_SIZE.1,
            timestamp: facts.started.unix_micros() / 1_000_000,
            env: BTreeMap::new(),
            custos: Some(facts),
        }
    }

    /// The header line, newline included.
    pub fn line(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parses a header line.
    pub fn parse(line: &str) -> Result<Header, FormatError> {
        let h: Header =
            serde_json::from_str(line).map_err(|e| FormatError::Header(e.to_string()))?;
        if h.version != VERSION {
            return Err(FormatError::Header(format!(
                "version {} (Custos reads 2)",
                h.version
            )));
        }
        Ok(h)
    }
}

/// The `custos` member of the header: the stream, who opened it, and how it was carried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// The request's audit id (its records carry the same `auditID`).
    #[serde(rename = "auditID")]
    pub audit_id: String,
    /// `exec` or `attach`.
    pub kind: String,
    /// The pod's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The container, when the request named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The command (exec), one element per argument.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Who authenticated to Custos.
    pub identity: Identity,
    /// Who the stream acted as upstream, when policy let the caller impersonate someone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting_as: Option<Identity>,
    /// The agent session and its declared intent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionInfo>,
    /// A terminal was requested (`-t`).
    #[serde(default)]
    pub tty: bool,
    /// Standard input was requested (`-i`).
    #[serde(default)]
    pub stdin: bool,
    /// The upgrade the client asked for: `SPDY/3.1` or `websocket`.
    pub protocol: String,
    /// The stream subprotocols the client offered (`v5.channel.k8s.io`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subprotocols: Vec<String>,
    /// When the recording started (microseconds, UTC).
    pub started: MicroTime,
    /// The gateway instance that recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

/// A user as the header names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The username.
    pub username: String,
    /// Its groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// An agent session as the header names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Session id.
    pub id: String,
    /// Its declared intent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// The ticket the intent refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

/// An event's type: the asciicast codes, Custos's extensions, or one nobody here knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Code {
    /// `o`: terminal output (stdout).
    Output,
    /// `i`: terminal input (stdin, masked).
    Input,
    /// `r`: the terminal was resized; data `"COLSxROWS"`.
    Resize,
    /// `m`: a marker (asciicast); Custos does not write it.
    Marker,
    /// `e` (Custos): standard error.
    Stderr,
    /// `x` (Custos): the exit status, the error channel's `Status` as JSON text.
    Exit,
    /// `fi` (Custos): port-forward bytes into the pod; data `"<connection> <base64>"` (masked bytes).
    ToPod,
    /// `fo` (Custos): port-forward bytes out of the pod; data as for [`Code::ToPod`].
    FromPod,
    /// Any other code, kept as written.
    Other(String),
}

impl Code {
    /// The code as written.
    pub fn as_str(&self) -> &str {
        match self {
            Code::Output => "o",
            Code::Input => "i",
            Code::Resize => "r",
            Code::Marker => "m",
            Code::Stderr => "e",
            Code::Exit => "x",
            Code::ToPod => "fi",
            Code::FromPod => "fo",
            Code::Other(s) => s,
        }
    }

    /// Reads a code.
    pub fn parse(s: &str) -> Code {
        match s {
            "o" => Code::Output,
            "i" => Code::Input,
            "r" => Code::Resize,
            "m" => Code::Marker,
            "e" => Code::Stderr,
            "x" => Code::Exit,
            "fi" => Code::ToPod,
            "fo" => Code::FromPod,
            other => Code::Other(other.to_owned()),
        }
    }

    /// Whether a player shows it as terminal output (`o` and Custos's `e`).
    pub fn is_output(&self) -> bool {
        matches!(self, Code::Output | Code::Stderr)
    }
}

/// One event line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Time since the recording started.
    pub time: Duration,
    /// What happened.
    pub code: Code,
    /// Its data (text; bytes that are not UTF-8 appear as U+FFFD).
    pub data: String,
}

impl Event {
    /// An event at `time`.
    pub fn new(time: Duration, code: Code, data: impl Into<String>) -> Event {
        Event {
            time,
            code,
            data: data.into(),
        }
    }

    /// A port-forward event: `bytes` (already masked) of connection `conn`, into the pod or out of it.
    pub fn forwarded(time: Duration, to_pod: bool, conn: u32, bytes: &[u8]) -> Event {
        use base64::Engine as _;
        let code = if to_pod { Code::ToPod } else { Code::FromPod };
        let data = format!(
            "{conn} {}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        );
        Event { time, code, data }
    }

    /// A port-forward event's connection and bytes; `None` for any other event or malformed data.
    pub fn forwarded_bytes(&self) -> Option<(u32, Vec<u8>)> {
        use base64::Engine as _;
        if !matches!(self.code, Code::ToPod | Code::FromPod) {
            return None;
        }
        let (conn, b64) = self.data.split_once(' ')?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        Some((conn.parse().ok()?, bytes))
    }

    /// Appends the event's line, newline included, to `out`. The time has exactly six decimals.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = write!(
            out,
            "[{}.{:06},",
            self.time.as_secs(),
            self.time.subsec_micros()
        );
        // Strings always serialize.
        let _ = serde_json::to_writer(&mut *out, self.code.as_str());
        out.push(b',');
        let _ = serde_json::to_writer(&mut *out, &self.data);
        out.extend_from_slice(b"]\n");
    }

    /// Parses an event line (`line_no` is for the error message).
    pub fn parse(line: &str, line_no: usize) -> Result<Event, FormatError> {
        let bad = |reason: String| FormatError::Event {
            line: line_no,
            reason,
        };
        let (t, code, data): (f64, String, String) =
            serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let time = Duration::try_from_secs_f64(t).map_err(|e| bad(format!("time {t}: {e}")))?;
        if code.is_empty() {
            return Err(bad("empty event code".into()));
        }
        Ok(Event {
            time,
            code: Code::parse(&code),
            data,
        })
    }
}

/// A whole recording, read into memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// The header.
    pub header: Header,
    /// The events, in file order.
    pub events: Vec<Event>,
}

impl Recording {
    /// Reads a recording file.
    pub fn read(path: &Path) -> Result<Recording, ReadError> {
        let file = std::fs::File::open(path).map_err(|source| ReadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_reader(std::io::BufReader::new(file)).map_err(|e| match e {
            Parsed::Io(source) => ReadError::Io {
                path: path.display().to_string(),
                source,
            },
            Parsed::Format(source) => ReadError::Format {
                path: path.display().to_string(),
                source,
            },
        })
    }

    /// Reads a recording from its lines.
    pub(crate) fn from_reader(r: impl BufRead) -> Result<Recording, Parsed> {
        let mut lines = Lines::new(r)?;
        let header = lines.header.clone();
        let mut events = Vec::new();
        while let Some(e) = lines.next_event()? {
            events.push(e);
        }
        Ok(Recording { header, events })
    }

    /// The text a terminal showed: every `o` and `e` event's data, in order.
    pub fn output(&self) -> String {
        self.events
            .iter()
            .filter(|e| e.code.is_output())
            .map(|e| e.data.as_str())
            .collect()
    }

    /// The data of every event with `code`, in order.
    pub fn data_of(&self, code: &Code) -> Vec<&str> {
        self.events
            .iter()
            .filter(|e| &e.code == code)
            .map(|e| e.data.as_str())
            .collect()
    }
}

/// Reading failed: I/O or format.
#[derive(Debug)]
pub(crate) enum Parsed {
    Io(std::io::Error),
    Format(FormatError),
}

impl From<std::io::Error> for Parsed {
    fn from(e: std::io::Error) -> Self {
        Parsed::Io(e)
    }
}

impl From<FormatError> for Parsed {
    fn from(e: FormatError) -> Self {
        Parsed::Format(e)
    }
}

/// A recording read line by line: the header first, then events as they are asked for.
pub(crate) struct Lines<R> {
    reader: R,
    line: String,
    line_no: usize,
    pub(crate) header: Header,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(mut reader: R) -> Result<Self, Parsed> {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(FormatError::Header("empty file".into()).into());
        }
        let header = Header::parse(line.trim_end())?;
        Ok(Lines {
            reader,
            line,
            line_no: 1,
            header,
        })
    }

    pub(crate) fn next_event(&mut self) -> Result<Option<Event>, Parsed> {
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            let text = self.line.trim_end();
            if text.is_empty() {
                continue;
            }
            return Ok(Some(Event::parse(text, self.line_no)?));
        }
    }
}

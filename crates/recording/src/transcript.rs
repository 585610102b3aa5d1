//! From channel payloads to recording events, with no I/O and no clock: the gateway's taps hand over
//! what each channel carried (stdout and stderr as already masked for the client), and get back the
//! events to stamp and write.
//!
//! - stdout → `o`, stderr → `e` (Custos), a channel of unknown type → `o` (it was masked like output);
//! - stdin → `i`, after a length-preserving [`TextMasker`]: a typed password-looking secret is stored
//!   as asterisks of the same length. The masker holds back a bounded tail (so a secret typed across
//!   keystrokes is still found); it is let out when the stream goes quiet ([`Transcriber::idle`]), so
//!   the recorded input may lag the forwarded input by at most that tail;
//! - resize JSON `{"Width":W,"Height":H}` (one or several per payload, possibly split) → `r "WxH"`;
//! - the error channel's `Status` JSON, once complete → `x` with the JSON text, masked.
//!
//! Payload bytes are decoded as UTF-8 per channel, carrying a character split across payloads over;
//! bytes that are not UTF-8 become U+FFFD (as asciinema's own recorder does).

use custos_mask::{Detector, TextMasker};
use custos_stream::Channel;
use serde_json::Value;

use crate::Code;

#[cfg(test)]
mod tests;

/// Longest resize or error-channel message kept while it arrives; a longer one is written as it is.
const MAX_MESSAGE: usize = 64 * 1024;

/// Bytes seen per channel (before decoding; masking keeps lengths).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Standard input.
    pub stdin: u64,
    /// Standard output (and channels of unknown type).
    pub stdout: u64,
    /// Standard error.
    pub stderr: u64,
    /// Resize messages.
    pub resize: u64,
    /// The error channel.
    pub error: u64,
}

/// Turns one stream's channel payloads into recording events.
#[derive(Debug)]
pub struct Transcriber {
    detector: &'static Detector,
    stdin: TextMasker<'static>,
    /// Stdin bytes taken by the masker and not yet let out.
    stdin_held: u64,
    /// Incomplete UTF-8 sequences at the end of the last payload: stdin (masked), stdout, stderr.
    carry: [Vec<u8>; 3],
    resize: Vec<u8>,
    error: Vec<u8>,
    exit: Option<Value>,
    totals: Totals,
    scratch: Vec<u8>,
}

/// What a transcriber produces: an event code and its text, to be stamped with the time.
pub type Piece = (Code, String);

impl Transcriber {
    /// A transcriber masking stdin with `detector`'s rules.
    pub fn new(detector: &'static Detector) -> Self {
        Transcriber {
            detector,
            stdin: TextMasker::new(detector),
            stdin_held: 0,
            carry: Default::default(),
            resize: Vec::new(),
            error: Vec::new(),
            exit: None,
            totals: Totals::default(),
            scratch: Vec::new(),
        }
    }

    /// Takes a payload `channel` carried; appends the events it completes to `out`.
    pub fn data(&mut self, channel: Channel, bytes: &[u8], out: &mut Vec<Piece>) {
        match channel {
            Channel::Stdin => {
                self.totals.stdin += bytes.len() as u64;
                self.scratch.clear();
                self.stdin.push(bytes, &mut self.scratch);
                self.stdin_held = (self.stdin_held + bytes.len() as u64)
                    .saturating_sub(self.scratch.len() as u64);
                let masked = std::mem::take(&mut self.scratch);
                self.text(0, Code::Input, &masked, out);
                self.scratch = masked;
            }
            Channel::Stdout | Channel::Unknown => {
                self.totals.stdout += bytes.len() as u64;
                self.text(1, Code::Output, bytes, out);
            }
            Channel::Stderr => {
                self.totals.stderr += bytes.len() as u64;
                self.text(2, Code::Stderr, bytes, out);
            }
            Channel::Resize => {
                self.totals.resize += bytes.len() as u64;
                self.resize.extend_from_slice(bytes);
                self.resizes(out);
            }
            Channel::Error => {
                self.totals.error += bytes.len() as u64;
                self.error.extend_from_slice(bytes);
                self.status(false, out);
            }
            Channel::PortData(_) | Channel::PortError(_) => {}
        }
    }

    /// `channel` ended: what it still holds is let out.
    pub fn end(&mut self, channel: Channel, out: &mut Vec<Piece>) {
        match channel {
            Channel::Stdin => self.flush_stdin(true, out),
            Channel::Stdout | Channel::Unknown => self.end_text(1, Code::Output, out),
            Channel::Stderr => self.end_text(2, Code::Stderr, out),
            Channel::Error => self.status(true, out),
            Channel::Resize => self.resize.clear(),
            Channel::PortData(_) | Channel::PortError(_) => {}
        }
    }

    /// Whether typed input is held back (then [`Transcriber::idle`] should be called when quiet).
    pub fn holds(&self) -> bool {
        self.stdin_held > 0
    }

    /// The stream went quiet: typed input held back is let out (partial secrets masked).
    pub fn idle(&mut self, out: &mut Vec<Piece>) {
        if self.stdin_held > 0 {
            self.flush_stdin(false, out);
        }
    }

    /// The stream ended: everything held is let out.
    pub fn finish(&mut self, out: &mut Vec<Piece>) {
        self.flush_stdin(true, out);
        self.end_text(1, Code::Output, out);
        self.end_text(2, Code::Stderr, out);
        self.status(true, out);
        self.resize.clear();
    }

    /// The exit status, once the error channel carried a complete `Status` (masked).
    pub fn exit_status(&self) -> Option<&Value> {
        self.exit.as_ref()
    }

    /// Bytes seen per channel.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    fn flush_stdin(&mut self, end: bool, out: &mut Vec<Piece>) {
        self.scratch.clear();
        if end {
            self.stdin.flush(&mut self.scratch);
        } else {
            self.stdin.flush_idle(&mut self.scratch);
        }
        self.stdin_held = 0;
        let masked = std::mem::take(&mut self.scratch);
        self.text(0, Code::Input, &masked, out);
        self.scratch = masked;
        if end {
            self.end_text(0, Code::Input, out);
        }
    }

    /// Decodes `bytes` after the channel's carried-over bytes; keeps an incomplete last character.
    fn text(&mut self, slot: usize, code: Code, bytes: &[u8], out: &mut Vec<Piece>) {
        if bytes.is_empty() {
            return;
        }
        let carry = &mut self.carry[slot];
        carry.extend_from_slice(bytes);
        let (text, rest) = decode(carry);
        let keep = carry.len() - rest;
        carry.drain(..keep);
        if !text.is_empty() {
            out.push((code, text));
        }
    }

    fn end_text(&mut self, slot: usize, code: Code, out: &mut Vec<Piece>) {
        let carry = std::mem::take(&mut self.carry[slot]);
        if !carry.is_empty() {
            out.push((code, String::from_utf8_lossy(&carry).into_owned()));
        }
    }

    /// Emits every complete resize message; keeps a partial one.
    fn resizes(&mut self, out: &mut Vec<Piece>) {
        let mut used = 0;
        let mut stream = serde_json::Deserializer::from_slice(&self.resize).into_iter::<Value>();
        loop {
            match stream.next() {
                Some(Ok(v)) => {
                    used = stream.byte_offset();
                    if let Some(size) = size_of(&v) {
                        out.push((Code::Resize, size));
                    }
                }
                Some(Err(e)) if e.is_eof() => break,
                // Not JSON: dropped (it carries no terminal content), and parsing starts afresh.
                Some(Err(_)) => {
                    used = self.resize.len();
                    break;
                }
                None => {
                    used = self.resize.len();
                    break;
                }
            }
        }
        self.resize.drain(..used);
        if self.resize.len() > MAX_MESSAGE {
            self.resize.clear();
        }
    }

    /// Emits the error channel's message once it is complete JSON (or at the end, or when too long).
    fn status(&mut self, end: bool, out: &mut Vec<Piece>) {
        if self.error.iter().all(u8::is_ascii_whitespace) {
            self.error.clear();
            return;
        }
        let complete = serde_json::from_slice::<Value>(&self.error).is_ok();
        if !(complete || end || self.error.len() > MAX_MESSAGE) {
            return;
        }
        let mut bytes = std::mem::take(&mut self.error);
        custos_mask::mask_text(self.detector, &mut bytes);
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            self.exit = Some(v);
        }
        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
        out.push((Code::Exit, text));
    }
}

/// `{"Width":W,"Height":H}` → `"WxH"`.
fn size_of(v: &Value) -> Option<String> {
    let w = v.get("Width")?.as_u64()?;
    let h = v.get("Height")?.as_u64()?;
    Some(format!("{w}x{h}"))
}

/// Decodes `bytes` as UTF-8 (invalid sequences → U+FFFD); returns the text and how many bytes at
/// the end are an incomplete character to keep for the next payload.
fn decode(bytes: &[u8]) -> (String, usize) {
    let mut text = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                text.push_str(s);
                return (text, 0);
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // `valid` is UTF-8 by construction.
                text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match e.error_len() {
                    None => return (text, after.len()),
                    Some(n) => {
                        text.push(char::REPLACEMENT_CHARACTER);
                        rest = &after[n..];
                    }
                }
            }
        }
    }
}

//! SPDY/3.1 framing: the 8-byte frame header, decoded incrementally across arbitrary chunk boundaries.
//! Control frames are delivered whole (they are small, and bounded by [`MAX_CONTROL`]); DATA frames
//! are delivered in pieces as their bytes arrive, so a 16 MiB frame never sits in memory.

use crate::StreamError;

/// Length of a frame header.
pub const HEADER_LEN: usize = 8;
/// Largest control frame accepted (header blocks of exec/port-forward streams are a few hundred bytes).
pub const MAX_CONTROL: usize = 256 * 1024;
/// Largest payload a frame's 24-bit length can announce.
pub const MAX_PAYLOAD: usize = 0xff_ffff;
/// DATA flag: the sender's last frame on the stream (also on SYN_STREAM/SYN_REPLY/HEADERS).
pub const FLAG_FIN: u8 = 0x01;

/// SYN_STREAM control frame type.
pub const SYN_STREAM: u16 = 1;
/// SYN_REPLY control frame type.
pub const SYN_REPLY: u16 = 2;
/// RST_STREAM control frame type.
pub const RST_STREAM: u16 = 3;
/// SETTINGS control frame type.
pub const SETTINGS: u16 = 4;
/// PING control frame type.
pub const PING: u16 = 6;
/// GOAWAY control frame type.
pub const GOAWAY: u16 = 7;
/// HEADERS control frame type.
pub const HEADERS: u16 = 8;
/// WINDOW_UPDATE control frame type.
pub const WINDOW_UPDATE: u16 = 9;

/// A decoded unit: a whole control frame, or a piece of a DATA frame's payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Part<'a> {
    /// A complete control frame.
    Control {
        /// Its type (SYN_STREAM, …).
        kind: u16,
        /// Its flags.
        flags: u8,
        /// The frame, header included.
        raw: &'a [u8],
    },
    /// Payload bytes of a DATA frame (possibly empty for a zero-length frame).
    Data {
        /// The stream id (never 0).
        stream: u32,
        /// This piece ends the frame.
        end: bool,
        /// This piece ends a frame flagged FIN.
        fin: bool,
        /// The bytes.
        bytes: &'a [u8],
    },
}

#[derive(Debug)]
enum State {
    Header,
    Control { kind: u16, flags: u8, len: usize },
    Data { stream: u32, flags: u8, left: usize },
}

/// Incremental SPDY/3.1 frame decoder for one direction of a connection.
#[derive(Debug)]
pub struct FrameDecoder {
    head: [u8; HEADER_LEN],
    have: usize,
    state: State,
    control: Vec<u8>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder at the start of a connection.
    pub fn new() -> Self {
        Self {
            head: [0; HEADER_LEN],
            have: 0,
            state: State::Header,
            control: Vec::new(),
        }
    }

    /// Whether the decoder stands between two frames (nothing of a frame pending).
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Header) && self.have == 0
    }

    /// Decodes all of `input`, calling `f` with each part in order.
    pub fn decode(
        &mut self,
        mut input: &[u8],
        f: &mut dyn FnMut(Part<'_>) -> Result<(), StreamError>,
    ) -> Result<(), StreamError> {
        while !input.is_empty() {
            match self.state {
                State::Header => {
                    let n = (HEADER_LEN - self.have).min(input.len());
                    self.head[self.have..self.have + n].copy_from_slice(&input[..n]);
                    self.have += n;
                    input = &input[n..];
                    if self.have == HEADER_LEN {
                        self.have = 0;
                        self.start_frame(f)?;
                    }
                }
                State::Control { kind, flags, len } => {
                    let n = (HEADER_LEN + len - self.control.len()).min(input.len());
                    self.control.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if self.control.len() == HEADER_LEN + len {
                        self.state = State::Header;
                        f(Part::Control {
                            kind,
                            flags,
                            raw: &self.control,
                        })?;
                        self.control.clear();
                    }
                }
                State::Data {
                    stream,
                    flags,
                    left,
                } => {
                    let n = left.min(input.len());
                    let left = left - n;
                    self.state = if left == 0 {
                        State::Header
                    } else {
                        State::Data {
                            stream,
                            flags,
                            left,
                        }
                    };
                    f(Part::Data {
                        stream,
                        end: left == 0,
                        fin: left == 0 && flags & FLAG_FIN != 0,
                        bytes: &input[..n],
                    })?;
                    input = &input[n..];
                }
            }
        }
        Ok(())
    }

    /// A header is complete: enter the frame (a zero-length one is delivered at once).
    fn start_frame(
        &mut self,
        f: &mut dyn FnMut(Part<'_>) -> Result<(), StreamError>,
    ) -> Result<(), StreamError> {
        let h = self.head;
        let word = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let flags = h[4];
        let len = u32::from_be_bytes([0, h[5], h[6], h[7]]) as usize;
        if word & 0x8000_0000 != 0 {
            let version = ((word >> 16) & 0x7fff) as u16;
            if version != 3 {
                return Err(StreamError::SpdyVersion(version));
            }
            if len > MAX_CONTROL {
                return Err(StreamError::TooLarge {
                    kind: "SPDY control frame",
                    len: len as u64,
                    max: MAX_CONTROL as u64,
                });
            }
            let kind = (word & 0xffff) as u16;
            self.control.clear();
            self.control.extend_from_slice(&h);
            if len == 0 {
                f(Part::Control {
                    kind,
                    flags,
                    raw: &self.control,
                })?;
                self.control.clear();
            } else {
                self.state = State::Control { kind, flags, len };
            }
            return Ok(());
        }
        let stream = word & 0x7fff_ffff;
        if stream == 0 {
            return Err(StreamError::Malformed("SPDY DATA frame on stream 0"));
        }
        if len == 0 {
            return f(Part::Data {
                stream,
                end: true,
                fin: flags & FLAG_FIN != 0,
                bytes: &[],
            });
        }
        self.state = State::Data {
            stream,
            flags,
            left: len,
        };
        Ok(())
    }
}

/// Appends DATA frames carrying `bytes` on `stream` to `out` (several when longer than a frame can
/// hold); `fin` goes on the last one. Nothing is written for no bytes without `fin`.
pub fn write_data(stream: u32, bytes: &[u8], fin: bool, out: &mut bytes::BytesMut) {
    let mut chunks = bytes.chunks(MAX_PAYLOAD).peekable();
    if chunks.peek().is_none() {
        if fin {
            write_data_header(stream, FLAG_FIN, 0, out);
        }
        return;
    }
    while let Some(c) = chunks.next() {
        let last = chunks.peek().is_none();
        let flags = if last && fin { FLAG_FIN } else { 0 };
        write_data_header(stream, flags, c.len(), out);
        out.extend_from_slice(c);
    }
}

fn write_data_header(stream: u32, flags: u8, len: usize, out: &mut bytes::BytesMut) {
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(&[flags]);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
}

/// A control frame header (version 3) for `kind` with `flags` and a payload of `len` bytes.
pub fn control_header(kind: u16, flags: u8, len: usize) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = 0x80;
    h[1] = 3;
    h[2..4].copy_from_slice(&kind.to_be_bytes());
    h[4] = flags;
    h[5..].copy_from_slice(&(len.min(MAX_PAYLOAD) as u32).to_be_bytes()[1..]);
    h
}

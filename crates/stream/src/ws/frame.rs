//! RFC 6455 framing, decoded incrementally across arbitrary chunk boundaries. Control and text frames
//! are delivered whole (bounded); binary and continuation payloads in pieces as they arrive, unmasked.

use crate::StreamError;

/// Continuation frame opcode.
pub const CONTINUATION: u8 = 0x0;
/// Text frame opcode.
pub const TEXT: u8 = 0x1;
/// Binary frame opcode.
pub const BINARY: u8 = 0x2;
/// Close frame opcode.
pub const CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const PING: u8 = 0x9;
/// Pong frame opcode.
pub const PONG: u8 = 0xa;

/// Largest payload of one frame accepted (binary payloads are streamed, so this only refuses absurd
/// lengths; the apiserver's own WebSocket reader stops at 32 MiB per message).
pub const MAX_FRAME: u64 = 64 * 1024 * 1024;
/// Largest text frame accepted; text frames are passed on whole.
pub const MAX_TEXT: usize = 1024 * 1024;
/// Largest control frame payload (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// Longest frame header: 2 bytes, 8 of extended length, 4 of masking key.
const MAX_HEADER: usize = 14;

/// Who sent the frames: client frames must be masked, server frames must not (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Frames from the client (masked).
    Client,
    /// Frames from the server (unmasked).
    Server,
}

/// A decoded unit: a whole control or text frame, or a piece of a binary/continuation payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Part<'a> {
    /// A complete control or text frame.
    Whole {
        /// Its opcode.
        opcode: u8,
        /// The frame as received (masked if it came masked).
        raw: &'a [u8],
        /// Its payload, unmasked.
        payload: &'a [u8],
    },
    /// Payload bytes of a binary or continuation frame, unmasked.
    Data {
        /// The opcode of the frame (BINARY or CONTINUATION).
        opcode: u8,
        /// This piece is the first of its frame.
        start: bool,
        /// This piece ends its frame.
        end: bool,
        /// The frame has FIN set (the message ends with it).
        fin: bool,
        /// The bytes.
        bytes: &'a [u8],
    },
}

#[derive(Debug, Clone, Copy)]
struct Head {
    fin: bool,
    opcode: u8,
    key: Option<[u8; 4]>,
    len: u64,
}

#[derive(Debug)]
enum State {
    Header,
    Whole { head: Head, header_len: usize },
    Data { head: Head, done: u64 },
}

/// Incremental RFC 6455 frame decoder for one direction.
#[derive(Debug)]
pub struct FrameDecoder {
    role: Role,
    head: [u8; MAX_HEADER],
    have: usize,
    state: State,
    whole: Vec<u8>,
    payload: Vec<u8>,
    scratch: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder for frames sent by `role`.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            head: [0; MAX_HEADER],
            have: 0,
            state: State::Header,
            whole: Vec::new(),
            payload: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Whether the decoder stands between two frames.
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
                    let need = header_len(&self.head[..self.have]);
                    let n = (need - self.have).min(input.len());
                    self.head[self.have..self.have + n].copy_from_slice(&input[..n]);
                    self.have += n;
                    input = &input[n..];
                    if self.have == header_len(&self.head[..self.have]) {
                        let header_len = self.have;
                        self.have = 0;
                        self.start_frame(header_len, f)?;
                    }
                }
                State::Whole { head, header_len } => {
                    let total = header_len + head.len as usize;
                    let n = (total - self.whole.len()).min(input.len());
                    self.whole.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if self.whole.len() == total {
                        self.state = State::Header;
                        self.emit_whole(head, header_len, f)?;
                    }
                }
                State::Data { head, done } => {
                    let n = (head.len - done).min(input.len() as u64) as usize;
                    let done_after = done + n as u64;
                    let end = done_after == head.len;
                    self.state = if end {
                        State::Header
                    } else {
                        State::Data {
                            head,
                            done: done_after,
                        }
                    };
                    let bytes = match head.key {
                        None => &input[..n],
                        Some(key) => {
                            self.scratch.clear();
                            self.scratch.extend_from_slice(&input[..n]);
                            unmask(&mut self.scratch, key, done);
                            &self.scratch[..]
                        }
                    };
                    f(Part::Data {
                        opcode: head.opcode,
                        start: done == 0,
                        end,
                        fin: head.fin,
                        bytes,
                    })?;
                    input = &input[n..];
                }
            }
        }
        Ok(())
    }

    /// A header is complete: validate it and enter the frame (an empty one is delivered at once).
    fn start_frame(
        &mut self,
        header_len: usize,
        f: &mut dyn FnMut(Part<'_>) -> Result<(), StreamError>,
    ) -> Result<(), StreamError> {
        let head = self.parse_head(header_len)?;
        let whole = head.opcode == TEXT || head.opcode >= CLOSE;
        if whole {
            self.whole.clear();
            self.whole.extend_from_slice(&self.head[..header_len]);
            if head.len == 0 {
                return self.emit_whole(head, header_len, f);
            }
            self.state = State::Whole { head, header_len };
            return Ok(());
        }
        if head.len == 0 {
            return f(Part::Data {
                opcode: head.opcode,
                start: true,
                end: true,
                fin: head.fin,
                bytes: &[],
            });
        }
        self.state = State::Data { head, done: 0 };
        Ok(())
    }

    fn parse_head(&self, header_len: usize) -> Result<Head, StreamError> {
        let h = &self.head[..header_len];
        let fin = h[0] & 0x80 != 0;
        let rsv = h[0] & 0x70;
        let opcode = h[0] & 0x0f;
        let masked = h[1] & 0x80 != 0;
        if rsv != 0 {
            return Err(StreamError::WsReserved(rsv));
        }
        if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
            return Err(StreamError::WsOpcode(opcode));
        }
        match (self.role, masked) {
            (Role::Client, false) => return Err(StreamError::WsMasking("client")),
            (Role::Server, true) => return Err(StreamError::WsMasking("server")),
            _ => {}
        }
        let (len, rest) = match h[1] & 0x7f {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), &h[4..]),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&h[2..10]);
                (u64::from_be_bytes(b), &h[10..])
            }
            n => (u64::from(n), &h[2..]),
        };
        let key = masked.then(|| [rest[0], rest[1], rest[2], rest[3]]);
        let max = match opcode {
            TEXT => MAX_TEXT as u64,
            CLOSE | PING | PONG => MAX_CONTROL_PAYLOAD as u64,
            _ => MAX_FRAME,
        };
        if len > max {
            return Err(StreamError::TooLarge {
                kind: "WebSocket frame",
                len,
                max,
            });
        }
        if opcode >= CLOSE && !fin {
            return Err(StreamError::Malformed("fragmented WebSocket control frame"));
        }
        if opcode == TEXT && !fin {
            return Err(StreamError::Unsupported(
                "fragmented WebSocket text messages are not relayed".into(),
            ));
        }
        Ok(Head {
            fin,
            opcode,
            key,
            len,
        })
    }

    fn emit_whole(
        &mut self,
        head: Head,
        header_len: usize,
        f: &mut dyn FnMut(Part<'_>) -> Result<(), StreamError>,
    ) -> Result<(), StreamError> {
        self.payload.clear();
        self.payload.extend_from_slice(&self.whole[header_len..]);
        if let Some(key) = head.key {
            unmask(&mut self.payload, key, 0);
        }
        f(Part::Whole {
            opcode: head.opcode,
            raw: &self.whole,
            payload: &self.payload,
        })
    }
}

/// The header length announced by the bytes seen so far (at least what is needed to know it).
fn header_len(seen: &[u8]) -> usize {
    if seen.len() < 2 {
        return 2;
    }
    let ext = match seen[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let key = if seen[1] & 0x80 != 0 { 4 } else { 0 };
    2 + ext + key
}

/// XORs `bytes` with `key`, `offset` bytes into the payload.
pub fn unmask(bytes: &mut [u8], key: [u8; 4], offset: u64) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b ^= key[((offset + i as u64) % 4) as usize];
    }
}

/// Appends an unmasked (server-to-client) frame with `fin`, `opcode` and a payload made of `parts`.
pub fn write_frame(fin: bool, opcode: u8, parts: &[&[u8]], out: &mut bytes::BytesMut) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.extend_from_slice(&[u8::from(fin) << 7 | opcode]);
    if len < 126 {
        out.extend_from_slice(&[len as u8]);
    } else if let Ok(l) = u16::try_from(len) {
        out.extend_from_slice(&[126]);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.extend_from_slice(&[127]);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    for p in parts {
        out.extend_from_slice(p);
    }
}

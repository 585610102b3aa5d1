//! SPDY/3.1 as kubectl (≤ 1.29 exec, ≤ 1.30 port-forward), client-go and helm speak it through the
//! apiserver: the client opens one stream per channel with SYN_STREAM and a `streamType` header; the
//! apiserver replies and sends DATA on them. A [`SpdyReader`] parses one direction into [`Event`]s; the
//! two readers of a connection share [`Streams`], because only the client's SYN_STREAMs say which
//! channel a stream id carries, while the output to mask flows the other way.

mod dictionary;
pub mod frame;
pub mod headers;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{Channel, ControlKind, Event, Sink, StreamError};
use frame::{FrameDecoder, Part};
use headers::HeaderInflater;

/// Most streams tracked open at once (an exec uses 5; a port-forward 2 per forwarded connection).
pub const MAX_STREAMS: usize = 1024;

/// Which end of the connection sent the bytes a reader parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// The client (kubectl): stdin, resize, and the SYN_STREAMs.
    Client,
    /// The apiserver: stdout, stderr, error.
    Server,
}

#[derive(Debug, Clone, Copy)]
struct StreamState {
    channel: Channel,
    client_fin: bool,
    server_fin: bool,
}

/// The stream table of one SPDY connection, shared by the readers of both directions: the channel
/// each open stream id carries. A stream leaves it when reset or closed by both ends.
#[derive(Debug, Clone, Default)]
pub struct Streams(Arc<Mutex<HashMap<u32, StreamState>>>);

impl Streams {
    /// An empty table for a new connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// The channel of `stream`; [`Channel::Unknown`] if it was never opened or is already gone.
    pub fn channel(&self, stream: u32) -> Channel {
        self.lock()
            .get(&stream)
            .map_or(Channel::Unknown, |s| s.channel)
    }

    /// How many streams are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no stream is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, StreamState>> {
        // A panic elsewhere while holding the lock leaves a table that is still consistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self, stream: u32, channel: Channel) -> Result<(), StreamError> {
        let mut t = self.lock();
        if t.len() >= MAX_STREAMS && !t.contains_key(&stream) {
            return Err(StreamError::TooManyStreams(MAX_STREAMS));
        }
        t.insert(
            stream,
            StreamState {
                channel,
                client_fin: false,
                server_fin: false,
            },
        );
        Ok(())
    }

    fn fin(&self, stream: u32, from: Sender) {
        let mut t = self.lock();
        if let Some(s) = t.get_mut(&stream) {
            match from {
                Sender::Client => s.client_fin = true,
                Sender::Server => s.server_fin = true,
            }
            if s.client_fin && s.server_fin {
                t.remove(&stream);
            }
        }
    }

    fn remove(&self, stream: u32) {
        self.lock().remove(&stream);
    }
}

/// Parses one direction of a SPDY/3.1 connection into [`Event`]s, across any chunking.
#[derive(Debug)]
pub struct SpdyReader {
    from: Sender,
    frames: FrameDecoder,
    headers: HeaderInflater,
    streams: Streams,
}

impl SpdyReader {
    /// A reader for what `from` sends, sharing `streams` with the reader of the other direction.
    pub fn new(from: Sender, streams: Streams) -> Self {
        Self {
            from,
            frames: FrameDecoder::new(),
            headers: HeaderInflater::new(),
            streams,
        }
    }

    /// The connection's stream table.
    pub fn streams(&self) -> &Streams {
        &self.streams
    }

    /// Whether the reader stands between two frames.
    pub fn at_boundary(&self) -> bool {
        self.frames.at_boundary()
    }

    /// Parses `chunk`, calling `sink` with each event in order.
    pub fn feed(&mut self, chunk: &[u8], sink: &mut Sink<'_>) -> Result<(), StreamError> {
        let Self {
            from,
            frames,
            headers,
            streams,
        } = self;
        frames.decode(chunk, &mut |part| match part {
            Part::Data {
                stream, fin, bytes, ..
            } => {
                let channel = streams.channel(stream);
                if fin {
                    streams.fin(stream, *from);
                }
                sink(Event::Data {
                    stream,
                    channel,
                    bytes,
                    fin,
                })
            }
            Part::Control { kind, flags, raw } => {
                control(kind, flags, raw, *from, headers, streams, &mut *sink)
            }
        })
    }
}

/// Handles one control frame: header blocks are inflated (in order, keeping the zlib stream in step),
/// SYN_STREAM registers its channel, RST_STREAM forgets the stream.
fn control(
    kind: u16,
    flags: u8,
    raw: &[u8],
    from: Sender,
    headers: &mut HeaderInflater,
    streams: &Streams,
    sink: &mut Sink<'_>,
) -> Result<(), StreamError> {
    let payload = &raw[frame::HEADER_LEN..];
    let fin = flags & frame::FLAG_FIN != 0;
    match kind {
        frame::SYN_STREAM => {
            let (stream, block) = stream_and_block(payload, 10, "SPDY SYN_STREAM")?;
            let h = headers.inflate(block)?;
            let channel =
                Channel::from_stream_type(headers::get(&h, "streamtype"), headers::get(&h, "port"));
            streams.open(stream, channel)?;
            if fin {
                streams.fin(stream, from);
            }
            sink(Event::Open {
                stream,
                channel,
                fin,
                raw,
            })
        }
        frame::SYN_REPLY | frame::HEADERS => {
            let (stream, block) = stream_and_block(payload, 4, "SPDY SYN_REPLY/HEADERS")?;
            headers.inflate(block)?;
            if fin {
                streams.fin(stream, from);
            }
            let kind = if kind == frame::SYN_REPLY {
                ControlKind::SynReply
            } else {
                ControlKind::Headers
            };
            sink(Event::Control { kind, raw })
        }
        frame::RST_STREAM => {
            let (stream, rest) = stream_and_block(payload, 4, "SPDY RST_STREAM")?;
            let status = match rest {
                [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
                _ => return Err(StreamError::Malformed("SPDY RST_STREAM length")),
            };
            streams.remove(stream);
            sink(Event::Reset {
                stream,
                status,
                raw,
            })
        }
        _ => {
            let kind = match kind {
                frame::SETTINGS => ControlKind::Settings,
                frame::PING => ControlKind::Ping,
                frame::GOAWAY => ControlKind::GoAway,
                frame::WINDOW_UPDATE => ControlKind::WindowUpdate,
                other => ControlKind::Other(other),
            };
            sink(Event::Control { kind, raw })
        }
    }
}

/// The stream id at the start of `payload` (31 bits, never 0) and what follows its fixed `fixed` bytes.
fn stream_and_block<'p>(
    payload: &'p [u8],
    fixed: usize,
    what: &'static str,
) -> Result<(u32, &'p [u8]), StreamError> {
    if payload.len() < fixed {
        return Err(StreamError::Malformed(what));
    }
    let stream = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff;
    if stream == 0 {
        return Err(StreamError::Malformed(what));
    }
    Ok((stream, &payload[fixed..]))
}

//! The Kubernetes WebSocket channel protocol (`v4`/`v5.channel.k8s.io`, KEP-4006; kubectl ≥ 1.30 exec,
//! ≥ 1.31 port-forward's legacy form): every binary message starts with its channel byte (0 stdin,
//! 1 stdout, 2 stderr, 3 error, 4 resize); `v5` adds the close signal `[255, channel]`. A [`WsReader`]
//! parses one direction into [`Event`]s. Fragmented binary messages from the server are followed (the
//! channel byte is the first payload byte of the message, as client libraries read it); from the client
//! they are refused: the apiserver and the kubelet (`golang.org/x/net/websocket`) read each *frame*'s
//! first byte as its channel, so a fragmented message would put bytes on a channel this reader did not
//! see. Fragmented text messages are refused.

pub mod frame;
#[cfg(test)]
mod tests;

use crate::{Channel, ControlKind, Event, Sink, StreamError};
use frame::{FrameDecoder, Part, Role};

/// The channel byte of the `v5.channel.k8s.io` close signal.
pub const CLOSE_SIGNAL: u8 = 255;

/// Longest close-signal message payload kept while it arrives (it is one byte).
const MAX_CLOSE_SIGNAL: usize = 8;

/// The WebSocket subprotocols whose messages are `[channel byte, payload…]` in binary frames.
pub fn is_channel_protocol(subprotocol: &str) -> bool {
    let p = subprotocol.trim().to_ascii_lowercase();
    (p == "channel.k8s.io" || p.ends_with(".channel.k8s.io")) && !p.contains("base64")
}

#[derive(Debug, Default)]
struct Message {
    channel: Option<u8>,
    close: Vec<u8>,
}

/// Parses one direction of a WebSocket channel-protocol connection into [`Event`]s.
#[derive(Debug)]
pub struct WsReader {
    frames: FrameDecoder,
    message: Option<Message>,
    /// Frames sent by the client (fragmentation refused, see the module doc).
    client: bool,
}

impl WsReader {
    /// A reader for frames sent by `role`.
    pub fn new(role: Role) -> Self {
        Self {
            frames: FrameDecoder::new(role),
            message: None,
            client: role == Role::Client,
        }
    }

    /// Whether the reader stands between two frames.
    pub fn at_boundary(&self) -> bool {
        self.frames.at_boundary()
    }

    /// Parses `chunk`, calling `sink` with each event in order.
    pub fn feed(&mut self, chunk: &[u8], sink: &mut Sink<'_>) -> Result<(), StreamError> {
        let Self {
            frames,
            message,
            client,
        } = self;
        frames.decode(chunk, &mut |part| match part {
            Part::Whole { opcode, raw, .. } => {
                if opcode == frame::TEXT && message.is_some() {
                    return Err(StreamError::Malformed(
                        "WebSocket text frame inside a fragmented message",
                    ));
                }
                let kind = match opcode {
                    frame::TEXT => ControlKind::Text,
                    frame::PING => ControlKind::Ping,
                    frame::PONG => ControlKind::Pong,
                    _ => ControlKind::GoAway,
                };
                sink(Event::Control { kind, raw })
            }
            Part::Data {
                opcode,
                start,
                end,
                fin,
                bytes,
            } => {
                if *client && (opcode == frame::CONTINUATION || !fin) {
                    return Err(StreamError::Malformed(
                        "fragmented WebSocket message from the client (the API server reads each \
                         frame's first byte as its channel)",
                    ));
                }
                data(message, opcode, start, end && fin, bytes, &mut *sink)
            }
        })
    }
}

/// One piece of a binary message: the first payload byte names the channel; `last` ends the message.
fn data(
    message: &mut Option<Message>,
    opcode: u8,
    start: bool,
    last: bool,
    mut bytes: &[u8],
    sink: &mut Sink<'_>,
) -> Result<(), StreamError> {
    match (opcode, message.is_some()) {
        (frame::BINARY, true) if start => {
            return Err(StreamError::Malformed(
                "WebSocket binary frame inside a fragmented message",
            ))
        }
        (frame::CONTINUATION, false) => {
            return Err(StreamError::Malformed(
                "WebSocket continuation frame outside a message",
            ))
        }
        _ => {}
    }
    let m = message.get_or_insert_with(Message::default);
    if m.channel.is_none() {
        if let Some((&ch, rest)) = bytes.split_first() {
            m.channel = Some(ch);
            bytes = rest;
        }
    }
    match m.channel {
        Some(CLOSE_SIGNAL) => {
            if m.close.len() + bytes.len() > MAX_CLOSE_SIGNAL {
                return Err(StreamError::Malformed("WebSocket close signal"));
            }
            m.close.extend_from_slice(bytes);
        }
        Some(ch) if !bytes.is_empty() => sink(Event::Data {
            stream: u32::from(ch),
            channel: Channel::from_ws(ch),
            bytes,
            fin: false,
        })?,
        _ => {}
    }
    if !last {
        return Ok(());
    }
    let Some(m) = message.take() else {
        return Ok(());
    };
    match (m.channel, m.close.as_slice()) {
        (Some(CLOSE_SIGNAL), &[ch]) => sink(Event::Close {
            stream: u32::from(ch),
            channel: Channel::from_ws(ch),
        }),
        (Some(CLOSE_SIGNAL), _) => Err(StreamError::Malformed("WebSocket close signal")),
        (None, _) => sink(Event::Control {
            kind: ControlKind::Empty,
            raw: &[0x80 | frame::BINARY, 0],
        }),
        _ => Ok(()),
    }
}

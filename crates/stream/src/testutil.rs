//! Frame builders and event collection for the codec and tap tests.

use custos_mask::Detector;

use crate::spdy::frame::{control_header, write_data, FLAG_FIN, RST_STREAM, SYN_REPLY, SYN_STREAM};
use crate::spdy::headers::HeaderDeflater;
use crate::ws::frame::write_frame;
use crate::{Channel, ControlKind, Event, StreamError};

/// The built-in detectors, compiled once for all tests.
pub fn detector() -> &'static Detector {
    static D: std::sync::OnceLock<Detector> = std::sync::OnceLock::new();
    D.get_or_init(|| Detector::builtin().expect("builtin rules compile"))
}

/// A SYN_STREAM for stream `id` with a `streamType` header, deflated by the connection's `z`.
pub fn syn_stream(z: &mut HeaderDeflater, id: u32, stream_type: &str) -> Vec<u8> {
    let block = z.deflate(&[("streamtype", stream_type)]).expect("deflate");
    let mut payload = Vec::new();
    payload.extend_from_slice(&id.to_be_bytes());
    payload.extend_from_slice(&0u32.to_be_bytes());
    payload.extend_from_slice(&[0, 0]);
    payload.extend_from_slice(&block);
    control(SYN_STREAM, 0, &payload)
}

/// A SYN_REPLY for stream `id`, deflated by the connection's `z`.
pub fn syn_reply(z: &mut HeaderDeflater, id: u32) -> Vec<u8> {
    let block = z.deflate(&[]).expect("deflate");
    let mut payload = id.to_be_bytes().to_vec();
    payload.extend_from_slice(&block);
    control(SYN_REPLY, 0, &payload)
}

/// A RST_STREAM for stream `id`.
pub fn rst(id: u32) -> Vec<u8> {
    let mut payload = id.to_be_bytes().to_vec();
    payload.extend_from_slice(&5u32.to_be_bytes());
    control(RST_STREAM, 0, &payload)
}

/// A control frame.
pub fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = control_header(kind, flags, payload.len()).to_vec();
    f.extend_from_slice(payload);
    f
}

/// One SPDY DATA frame.
pub fn data(id: u32, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    write_data(id, payload, fin, &mut out);
    if payload.is_empty() && !fin {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
    }
    debug_assert!(!fin || out[4] == FLAG_FIN);
    out.to_vec()
}

/// A server WebSocket frame.
pub fn ws(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    write_frame(fin, opcode, &[payload], &mut out);
    out.to_vec()
}

/// A client WebSocket frame, masked with `key`.
pub fn ws_masked(fin: bool, opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let plain = ws(fin, opcode, payload);
    let header = plain.len() - payload.len();
    let mut out = plain[..header].to_vec();
    out[1] |= 0x80;
    out.extend_from_slice(&key);
    let mut body = payload.to_vec();
    crate::ws::frame::unmask(&mut body, key, 0);
    out.extend_from_slice(&body);
    out
}

/// An event with its bytes owned, for comparing runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned {
    /// Open.
    Open(u32, Channel, bool),
    /// Data (pieces of one frame or message merged).
    Data(u32, Channel, Vec<u8>, bool),
    /// Close.
    Close(u32, Channel),
    /// Reset.
    Reset(u32, u32),
    /// Control.
    Control(ControlKind, Vec<u8>),
}

/// Collects events, merging consecutive data pieces of one channel.
#[derive(Debug, Default)]
pub struct Collect(pub Vec<Owned>);

impl Collect {
    /// Takes one event.
    pub fn push(&mut self, e: Event<'_>) -> Result<(), StreamError> {
        let owned = match e {
            Event::Open {
                stream,
                channel,
                fin,
                ..
            } => Owned::Open(stream, channel, fin),
            Event::Data {
                stream,
                channel,
                bytes,
                fin,
            } => {
                if let Some(Owned::Data(s, _, b, f)) = self.0.last_mut() {
                    if *s == stream && !*f {
                        b.extend_from_slice(bytes);
                        *f = fin;
                        return Ok(());
                    }
                }
                Owned::Data(stream, channel, bytes.to_vec(), fin)
            }
            Event::Close { stream, channel } => Owned::Close(stream, channel),
            Event::Reset { stream, status, .. } => Owned::Reset(stream, status),
            Event::Control { kind, raw } => Owned::Control(kind, raw.to_vec()),
        };
        self.0.push(owned);
        Ok(())
    }

    /// All data bytes of `stream`, in order.
    pub fn bytes_of(&self, stream: u32) -> Vec<u8> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Owned::Data(s, _, b, _) if *s == stream => Some(b.as_slice()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .concat()
    }
}

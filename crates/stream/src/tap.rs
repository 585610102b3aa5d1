//! The masking tap for the apiserver→client direction of exec and attach: frames are parsed, stdout
//! and stderr payloads (and, failing closed, payloads of unknown channels) go through one
//! length-preserving [`TextMasker`] per channel, and are re-framed with the lengths of what the masker
//! let out; every other frame passes unchanged. A masker holds back a bounded tail, so a frame may come
//! out shorter now and the rest later: on the channel's end, before the exit status, before the
//! connection ends, and when the relay finds the stream idle ([`MaskingTap::on_idle`]).
//! Per channel, the bytes out equal the bytes in.

use std::collections::BTreeMap;

use bytes::BytesMut;
use custos_mask::{Detector, TextMasker};

use crate::spdy::{frame as spdy_frame, Sender, SpdyReader, Streams, MAX_STREAMS};
use crate::ws::{frame as ws_frame, frame::Role, WsReader, CLOSE_SIGNAL};
use crate::{Channel, ControlKind, Event, StreamError};

#[cfg(test)]
mod tests;

/// The protocol an upgraded exec/attach connection speaks, from the `101 Switching Protocols` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// `Upgrade: SPDY/3.1`.
    Spdy,
    /// `Upgrade: websocket` with a binary channel subprotocol (`v5.channel.k8s.io`, `v4.…`, …).
    WebSocket,
    /// Anything else; Custos cannot mask it (the reason says what it is).
    Unmaskable(String),
}

/// Which [`Wire`] the 101 answer's `Upgrade` and `Sec-WebSocket-Protocol` headers selected.
pub fn wire(upgrade: Option<&str>, subprotocol: Option<&str>) -> Wire {
    let upgrade = upgrade.unwrap_or("").trim();
    if upgrade.eq_ignore_ascii_case("SPDY/3.1") {
        return Wire::Spdy;
    }
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Wire::Unmaskable(format!("the upgrade protocol {upgrade:?} is not relayed"));
    }
    match subprotocol.map(str::trim) {
        Some(p) if crate::ws::is_channel_protocol(p) => Wire::WebSocket,
        Some(p) if p.to_ascii_lowercase().contains("base64") => Wire::Unmaskable(format!(
            "the WebSocket subprotocol {p} is not supported through Custos; use v5.channel.k8s.io or v4.channel.k8s.io"
        )),
        Some(p) => Wire::Unmaskable(format!("the WebSocket subprotocol {p:?} is not relayed")),
        None => Wire::Unmaskable("the WebSocket upgrade selected no subprotocol".into()),
    }
}

#[derive(Debug)]
enum Codec {
    Spdy(SpdyReader),
    Ws(WsReader),
}

/// Why a masker's held bytes are let out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flush {
    /// The stream went quiet; the channel goes on.
    Idle,
    /// The session is ending (exit status, GOAWAY, WebSocket close): the channel may still see bytes.
    Keep,
    /// The channel ended (v5 close signal, RST_STREAM): its masker is dropped.
    Remove,
}

#[derive(Debug)]
struct Held {
    masker: TextMasker<'static>,
    /// Bytes taken and not yet let out.
    pending: u64,
}

/// Masks terminal output in the apiserver→client direction of an exec/attach connection.
#[derive(Debug)]
pub struct MaskingTap {
    codec: Codec,
    out: Masking,
}

#[derive(Debug)]
struct Masking {
    spdy: bool,
    detector: &'static Detector,
    held: BTreeMap<u32, Held>,
    scratch: Vec<u8>,
    findings: u64,
}

impl MaskingTap {
    /// A tap for a SPDY/3.1 connection; `streams` is shared with the [`UpstreamObserver`] of the other
    /// direction, which learns from the client's SYN_STREAMs which stream carries what.
    pub fn spdy(detector: &'static Detector, streams: Streams) -> Self {
        Self::with(
            Codec::Spdy(SpdyReader::new(Sender::Server, streams)),
            detector,
        )
    }

    /// A tap for a WebSocket channel-protocol connection (server frames, unmasked).
    pub fn websocket(detector: &'static Detector) -> Self {
        Self::with(Codec::Ws(WsReader::new(Role::Server)), detector)
    }

    fn with(codec: Codec, detector: &'static Detector) -> Self {
        Self {
            out: Masking {
                spdy: matches!(codec, Codec::Spdy(_)),
                detector,
                held: BTreeMap::new(),
                scratch: Vec::new(),
                findings: 0,
            },
            codec,
        }
    }

    /// Parses `chunk` and appends the frames to send on, masked and re-framed, to `out`. `out` only
    /// ever gets whole frames, so what was appended before an error can still be sent.
    pub fn on_chunk(&mut self, chunk: &[u8], out: &mut BytesMut) -> Result<(), StreamError> {
        let Self { codec, out: m } = self;
        let mut sink = |e: Event<'_>| m.event(e, out);
        match codec {
            Codec::Spdy(r) => r.feed(chunk, &mut sink),
            Codec::Ws(r) => r.feed(chunk, &mut sink),
        }
    }

    /// Whether a masker holds bytes back (the relay then calls [`MaskingTap::on_idle`] when the
    /// stream goes quiet).
    pub fn holds(&self) -> bool {
        self.out.held.values().any(|h| h.pending > 0)
    }

    /// The stream went quiet: appends every held byte, masked, as frames of its channel.
    pub fn on_idle(&mut self, out: &mut BytesMut) {
        let m = &mut self.out;
        let ids: Vec<u32> = m
            .held
            .iter()
            .filter(|(_, h)| h.pending > 0)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            m.flush(id, Flush::Idle, out);
        }
    }

    /// Findings masked so far, over all channels.
    pub fn findings(&self) -> u64 {
        self.out.findings
            + self
                .out
                .held
                .values()
                .map(|h| h.masker.counts().total())
                .sum::<u64>()
    }

    /// The stream is being closed because of `reason`: appends what the client should still get —
    /// held output (masked) and, for WebSocket, an error-channel `Status` and a close frame saying why
    /// (SPDY has no such message: the connection is just closed).
    pub fn farewell(&mut self, reason: &str, out: &mut BytesMut) {
        self.out.flush_all(out);
        if self.out.spdy {
            return;
        }
        let message = format!("stream closed by Custos: {reason}");
        let status = serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "InternalError",
            "code": 500,
        })
        .to_string();
        ws_frame::write_frame(true, ws_frame::BINARY, &[&[3], status.as_bytes()], out);
        let mut end = message.len().min(123);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        // 1000, as the apiserver closes after a failed command's Status: client-go reads the error
        // channel to its end (and prints the whole Status message) only on a normal closure; on any
        // other code (1011 was used here before) it reports the close frame's reason instead, cut to
        // 123 bytes.
        ws_frame::write_frame(
            true,
            ws_frame::CLOSE,
            &[&1000u16.to_be_bytes(), &message.as_bytes()[..end]],
            out,
        );
    }
}

impl Masking {
    fn event(&mut self, e: Event<'_>, out: &mut BytesMut) -> Result<(), StreamError> {
        match e {
            Event::Data {
                stream,
                channel,
                bytes,
                fin,
            } if channel.is_masked() => {
                if !self.held.contains_key(&stream) && self.held.len() >= MAX_STREAMS {
                    return Err(StreamError::TooManyStreams(MAX_STREAMS));
                }
                let detector = self.detector;
                let h = self.held.entry(stream).or_insert_with(|| Held {
                    masker: TextMasker::new(detector),
                    pending: 0,
                });
                self.scratch.clear();
                h.masker.push(bytes, &mut self.scratch);
                h.pending =
                    (h.pending + bytes.len() as u64).saturating_sub(self.scratch.len() as u64);
                if fin {
                    self.finish(stream, out);
                } else {
                    let data = std::mem::take(&mut self.scratch);
                    self.write_data(stream, &data, false, out);
                    self.scratch = data;
                }
            }
            Event::Data {
                stream,
                channel,
                bytes,
                fin,
            } => {
                // The exit status ends the session: output held so far goes first.
                if channel == Channel::Error {
                    self.flush_all(out);
                }
                self.write_data(stream, bytes, fin, out);
            }
            Event::Close { stream, .. } => {
                self.flush(stream, Flush::Remove, out);
                if let Ok(ch) = u8::try_from(stream) {
                    ws_frame::write_frame(true, ws_frame::BINARY, &[&[CLOSE_SIGNAL, ch]], out);
                }
            }
            Event::Reset { stream, raw, .. } => {
                self.flush(stream, Flush::Remove, out);
                out.extend_from_slice(raw);
            }
            Event::Control {
                kind: ControlKind::GoAway,
                raw,
            } => {
                self.flush_all(out);
                out.extend_from_slice(raw);
            }
            Event::Open { raw, .. } | Event::Control { raw, .. } => out.extend_from_slice(raw),
        }
        Ok(())
    }

    /// The channel ended (SPDY FIN): everything held goes out, the last frame flagged FIN.
    fn finish(&mut self, stream: u32, out: &mut BytesMut) {
        if let Some(mut h) = self.held.remove(&stream) {
            h.masker.flush(&mut self.scratch);
            self.findings += h.masker.counts().total();
        }
        let data = std::mem::take(&mut self.scratch);
        self.write_data(stream, &data, true, out);
        self.scratch = data;
    }

    /// Lets out everything `stream`'s masker holds, masked.
    fn flush(&mut self, stream: u32, how: Flush, out: &mut BytesMut) {
        let Some(h) = self.held.get_mut(&stream) else {
            return;
        };
        self.scratch.clear();
        match how {
            // A partial candidate (`AKIAIOSFOD`, an unterminated BEGIN line) is masked, not shown: more
            // of it may still come.
            Flush::Idle | Flush::Keep => h.masker.flush_idle(&mut self.scratch),
            Flush::Remove => h.masker.flush(&mut self.scratch),
        }
        h.pending = 0;
        if how == Flush::Remove {
            if let Some(h) = self.held.remove(&stream) {
                self.findings += h.masker.counts().total();
            }
        }
        let data = std::mem::take(&mut self.scratch);
        self.write_data(stream, &data, false, out);
        self.scratch = data;
    }

    fn flush_all(&mut self, out: &mut BytesMut) {
        let ids: Vec<u32> = self.held.keys().copied().collect();
        for id in ids {
            self.flush(id, Flush::Keep, out);
        }
    }

    /// Frames `bytes` for `stream`: SPDY DATA frames (one flagged FIN if `fin`), or a WebSocket binary
    /// message `[channel, bytes…]`. Nothing for no bytes, unless a SPDY FIN must be sent.
    fn write_data(&self, stream: u32, bytes: &[u8], fin: bool, out: &mut BytesMut) {
        if self.spdy {
            spdy_frame::write_data(stream, bytes, fin, out);
        } else if !bytes.is_empty() {
            let ch = [stream as u8];
            ws_frame::write_frame(true, ws_frame::BINARY, &[&ch, bytes], out);
        }
    }
}

/// Parses the client→apiserver direction of a SPDY connection without changing it, so the
/// [`MaskingTap`] of the other direction learns each stream's channel from the client's SYN_STREAMs.
#[derive(Debug)]
pub struct UpstreamObserver {
    reader: SpdyReader,
}

impl UpstreamObserver {
    /// An observer filling `streams`, shared with the [`MaskingTap`].
    pub fn spdy(streams: Streams) -> Self {
        Self {
            reader: SpdyReader::new(Sender::Client, streams),
        }
    }

    /// Parses `chunk`; an error means the stream cannot be followed and must be closed.
    pub fn on_chunk(&mut self, chunk: &[u8]) -> Result<(), StreamError> {
        self.reader.feed(chunk, &mut |_| Ok(()))
    }
}

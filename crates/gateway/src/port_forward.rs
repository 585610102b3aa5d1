//! port-forward: one `port-forward-opened` and one `port-forward-closed` record per forwarded
//! connection, with its pod port and the bytes each way (`custos.portForward`). Payloads pass
//! unchanged (an application's own protocol, often TLS: masking inside it would corrupt it).
//!
//! Payload capture, when a deciding permit says `@capture("payload")`: the bytes each way are also
//! written, per connection and direction through a length-preserving text masker, as `fi` / `fo` events
//! of a recording (`<recordings dir>/<audit-id>.cast`, see `custos_recording`), bound to the audit
//! log chunk by chunk like an exec recording (`stream-opened`, `stream-chunk`…, `stream-closed`). The
//! file and its `stream-opened` record are durable before the apiserver is asked (no recording, no
//! stream: 503); a write failure closes the stream. The recording lags the live bytes by what the
//! masker holds back (under 8 KiB per direction and connection, let out when the direction goes
//! quiet or the connection closes).
//!
//! Connections are followed on every wire kubectl and the client libraries use:
//! - SPDY/3.1 (`portforward.k8s.io`, kubectl ≤ 1.30): each connection is a `data` stream (with its
//!   `port` header) and an `error` stream;
//! - WebSocket tunnelling SPDY (`SPDY/3.1+portforward.k8s.io`, kubectl ≥ 1.31): the same SPDY frames
//!   inside binary WebSocket messages;
//! - the legacy WebSocket protocol (`v4.channel.k8s.io` on `?ports=`): channel 2i carries the i-th
//!   port's data (the server starts each channel with the 2-byte port); one connection per port;
//! - anything else: one connection for the whole stream, port from the query (or 0).
//!
//! An opened record is appended durably before the bytes that opened the connection are forwarded
//! (fail closed: the stream is closed if it cannot be); closed records are appended after the opened
//! ones, before the next bytes go on or when the stream ends, so a close never precedes its open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::BytesMut;
use futures_util::future::BoxFuture;

use custos_audit::record::DecisionRecord;
use custos_audit::record::{PortForward, Record, RecordKind, Stage, StreamRef};
use custos_mask::{Detector, TextMasker};
use custos_recording::{Event as CastEvent, Header, Writer};
use custos_stream::spdy::{frame as spdy_frame, Sender, SpdyReader, Streams};
use custos_stream::ws::{frame as ws_frame, frame::Role, WsReader};
use custos_stream::{Channel, Event, StreamError};

use crate::error::GatewayError;
use crate::recorder::Recorder;
use crate::relay::{RelayTotals, Tap, TapError};
use crate::stream_record::{create_file, facts, seal_chunk};

#[cfg(test)]
mod tests;

/// How a port-forward stream is carried, from the `101` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortForwardWire {
    /// SPDY/3.1.
    Spdy,
    /// SPDY/3.1 inside WebSocket binary messages.
    Tunnel,
    /// The legacy WebSocket channel protocol, with the ports of the query in order.
    Legacy(Vec<u16>),
    /// Something else: one connection, the query's first port (or 0).
    Opaque(u16),
}

impl PortForwardWire {
    /// The wire the `Upgrade` and `Sec-WebSocket-Protocol` answer headers selected; `query` gives
    /// the ports of the WebSocket forms.
    pub fn of(upgrade: Option<&str>, subprotocol: Option<&str>, query: &str) -> Self {
        let ports: Vec<u16> = crate::stream_record::query_pairs(query)
            .into_iter()
            .filter(|(k, _)| k == "ports")
            .flat_map(|(_, v)| {
                // As the kubelet reads them (Go's ParseUint: digits only, no sign or spaces).
                v.split(',')
                    .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<u16>>()
            })
            .collect();
        let upgrade = upgrade.unwrap_or("").trim();
        let sub = subprotocol.unwrap_or("").trim().to_ascii_lowercase();
        if upgrade.eq_ignore_ascii_case("SPDY/3.1") {
            PortForwardWire::Spdy
        } else if upgrade.eq_ignore_ascii_case("websocket") && sub.starts_with("spdy/3.1+") {
            PortForwardWire::Tunnel
        } else if upgrade.eq_ignore_ascii_case("websocket")
            && custos_stream::ws::is_channel_protocol(&sub)
        {
            PortForwardWire::Legacy(ports)
        } else {
            PortForwardWire::Opaque(ports.first().copied().unwrap_or(0))
        }
    }
}

/// Whether the decision asks for port-forward payloads to be recorded: any deciding permit with
/// `@capture("payload")` (recording more is the safe side of a disagreement).
pub fn captures_payload(decision: Option<&DecisionRecord>) -> bool {
    decision.is_some_and(|d| {
        d.annotations.iter().any(|(k, v)| {
            k.rsplit_once('/').is_some_and(|(_, key)| key == "capture") && v == "payload"
        })
    })
}

/// Most maskers kept for connections that already closed (each holds under 8 KiB).
const MAX_MASKERS: usize = 2048;

/// The payload recording of one port-forward stream.
pub struct Capture {
    writer: Writer,
    detector: &'static Detector,
    started: Instant,
    /// One masker per connection and direction (`true`: into the pod).
    maskers: HashMap<(u32, bool), Masked>,
    to_pod: u64,
    from_pod: u64,
    /// The file or its chunk records could not be written: nothing more is written or sealed.
    broken: bool,
}

struct Masked {
    masker: TextMasker<'static>,
    /// Bytes taken and not yet written.
    held: u64,
}

impl Capture {
    /// Creates the recording of the port-forward stream `request` describes; its header and
    /// `stream-opened` record are durable when this returns. An error refuses the stream (503).
    pub async fn open(
        recorder: &Recorder,
        detector: &'static Detector,
        parts: &http::request::Parts,
        request: &Record,
    ) -> Result<Capture, GatewayError> {
        let header = Header::new(facts(parts, request, "portforward", recorder.gateway_id()));
        let writer = create_file(
            recorder,
            request,
            header,
            "policy asks for port-forward payloads to be recorded",
        )
        .await?;
        Ok(Capture {
            writer,
            detector,
            started: Instant::now(),
            maskers: HashMap::new(),
            to_pod: 0,
            from_pod: 0,
            broken: false,
        })
    }

    /// The apiserver did not start the stream (`why`): the recording is sealed and closed with that.
    pub async fn abandon(self, recorder: &Recorder, request: &Record, why: &str) {
        let mut st = State {
            capture: Some(self),
            ..State::default()
        };
        let chunk = st.capture.as_mut().and_then(|c| c.writer.cut());
        let failure = match chunk {
            Some(c) => seal_chunk(recorder, request, c).await.err().map(|(_, d)| d),
            None => None,
        };
        let error = failure.unwrap_or_else(|| why.chars().take(1024).collect());
        if let Some(r) = closed_record(recorder, request, &st, Some(error)) {
            if let Err(e) = recorder.append(&r).await {
                tracing::error!(audit_id = ?request.audit_id, error = %e, "the stream-closed record could not be written");
            }
        }
    }

    /// Masks `bytes` of connection `conn` in one direction and writes what the masker lets out.
    fn take(&mut self, conn: u32, to_pod: bool, bytes: &[u8]) -> Result<(), String> {
        let detector = self.detector;
        let m = self
            .maskers
            .entry((conn, to_pod))
            .or_insert_with(|| Masked {
                masker: TextMasker::new(detector),
                held: 0,
            });
        let mut out = Vec::with_capacity(bytes.len());
        m.masker.push(bytes, &mut out);
        m.held += bytes.len() as u64;
        self.write(conn, to_pod, &out)
    }

    /// Lets out what the maskers of one direction (or both, `None`) hold: `end` for connections that
    /// are over (everything, masked), else an idle flush.
    fn let_out(
        &mut self,
        conn: Option<u32>,
        to_pod: Option<bool>,
        end: bool,
    ) -> Result<(), String> {
        let mut keys: Vec<(u32, bool)> = self
            .maskers
            .iter()
            .filter(|(&(c, d), m)| {
                m.held > 0 && conn.is_none_or(|x| x == c) && to_pod.is_none_or(|x| x == d)
            })
            .map(|(k, _)| *k)
            .collect();
        keys.sort_unstable();
        for (c, d) in keys {
            let mut out = Vec::new();
            if let Some(m) = self.maskers.get_mut(&(c, d)) {
                if end {
                    m.masker.flush(&mut out);
                } else {
                    m.masker.flush_idle(&mut out);
                }
            }
            self.write(c, d, &out)?;
        }
        Ok(())
    }

    fn holds(&self, to_pod: bool) -> bool {
        self.writer.unsealed() > 0
            || self
                .maskers
                .iter()
                .any(|(&(_, d), m)| d == to_pod && m.held > 0)
    }

    fn write(&mut self, conn: u32, to_pod: bool, out: &[u8]) -> Result<(), String> {
        if out.is_empty() {
            return Ok(());
        }
        if let Some(m) = self.maskers.get_mut(&(conn, to_pod)) {
            m.held = m.held.saturating_sub(out.len() as u64);
        }
        if to_pod {
            self.to_pod += out.len() as u64;
        } else {
            self.from_pod += out.len() as u64;
        }
        let event = CastEvent::forwarded(self.started.elapsed(), to_pod, conn, out);
        self.writer.event(&event).map_err(|e| {
            self.broken = true;
            format!("the port-forward payload recording could not be written: {e}")
        })
    }
}

/// The `stream-closed` record of a payload recording (`None` without one).
fn closed_record(
    recorder: &Recorder,
    request: &Record,
    st: &State,
    error: Option<String>,
) -> Option<Record> {
    let cap = st.capture.as_ref()?;
    let mut r = recorder.derived(RecordKind::StreamClosed, request);
    r.stage = Some(Stage::ResponseComplete);
    r.custos.streams.push(cap.writer.whole());
    for (channel, bytes) in [("to-pod", cap.to_pod), ("from-pod", cap.from_pod)] {
        if bytes > 0 {
            r.custos.streams.push(StreamRef {
                recording: cap.writer.name().to_owned(),
                channel: Some(channel.into()),
                bytes,
                ..StreamRef::default()
            });
        }
    }
    r.annotations.insert(
        "custos.dev/recording-chunks".into(),
        cap.writer.chunks().to_string(),
    );
    r.custos.error = st
        .failure
        .clone()
        .or(error)
        .map(|e| e.chars().take(1024).collect());
    Some(r)
}

/// The connections of one port-forward stream, shared by the taps of both directions.
pub struct PortForwards {
    recorder: Recorder,
    request: Record,
    state: Mutex<State>,
    /// Held while a payload chunk is cut, synced and recorded, so chunk records are in order.
    order: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    conns: HashMap<u32, Conn>,
    /// Opened records to append before the bytes that opened them go on, then closed records (so a
    /// connection's close is never in the log before its open).
    to_open: Vec<Record>,
    /// Legacy WebSocket: port-prefix bytes still to skip per server channel.
    prefix: HashMap<u32, usize>,
    failure: Option<String>,
    /// The payload recording, when policy asks for one.
    capture: Option<Capture>,
    /// Connections already closed (their records written): bytes still arriving for them are
    /// captured, not ignored.
    ended: std::collections::HashSet<u32>,
    /// Error streams (the kubelet's messages about a connection, not its payload).
    side: std::collections::HashSet<u32>,
}

struct Conn {
    port: u16,
    bytes_in: u64,
    bytes_out: u64,
    client_fin: bool,
    server_fin: bool,
}

impl PortForwards {
    /// Follows the connections of the stream `request` describes, carried as `wire`, recording
    /// their payloads into `capture` if given; returns the shared state and the taps
    /// `(to_upstream, to_client)`.
    pub fn start(
        recorder: &Recorder,
        request: &Record,
        wire: &PortForwardWire,
        capture: Option<Capture>,
    ) -> (Arc<PortForwards>, PortForwardTap, PortForwardTap) {
        let pf = Arc::new(PortForwards {
            recorder: recorder.clone(),
            request: request.clone(),
            state: Mutex::new(State {
                capture,
                ..State::default()
            }),
            order: tokio::sync::Mutex::new(()),
        });
        let (up, down) = match wire {
            PortForwardWire::Spdy | PortForwardWire::Tunnel => {
                let streams = Streams::new();
                let up = SpdyReader::new(Sender::Client, streams.clone());
                let down = SpdyReader::new(Sender::Server, streams);
                if *wire == PortForwardWire::Spdy {
                    (Reader::Spdy(up), Reader::Spdy(down))
                } else {
                    (
                        Reader::Tunnel(ws_frame::FrameDecoder::new(Role::Client), up),
                        Reader::Tunnel(ws_frame::FrameDecoder::new(Role::Server), down),
                    )
                }
            }
            PortForwardWire::Legacy(ports) => {
                let mut st = pf.lock();
                for (i, port) in ports.iter().enumerate() {
                    let key = 2 * i as u32;
                    st.prefix.insert(key, 2);
                    pf.open(&mut st, key, *port);
                }
                drop(st);
                (
                    Reader::Legacy(WsReader::new(Role::Client)),
                    Reader::Legacy(WsReader::new(Role::Server)),
                )
            }
            PortForwardWire::Opaque(port) => {
                pf.open(&mut pf.lock(), 0, *port);
                (Reader::Opaque, Reader::Opaque)
            }
        };
        let tap = |reader, upstream| PortForwardTap {
            reader,
            upstream,
            pf: pf.clone(),
        };
        let (a, b) = (tap(up, true), tap(down, false));
        (pf, a, b)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self, st: &mut State, key: u32, port: u16) {
        st.conns.insert(
            key,
            Conn {
                port,
                bytes_in: 0,
                bytes_out: 0,
                client_fin: false,
                server_fin: false,
            },
        );
        let mut r = self
            .recorder
            .derived(RecordKind::PortForwardOpened, &self.request);
        r.custos.port_forward = Some(PortForward {
            port,
            ..PortForward::default()
        });
        r.annotations
            .insert("custos.dev/port-forward-connection".into(), key.to_string());
        st.to_open.push(r);
    }

    fn close(&self, st: &mut State, key: u32, error: Option<&str>) {
        let Some(c) = st.conns.remove(&key) else {
            return;
        };
        if st.capture.is_some() {
            st.ended.insert(key);
        }
        if let Some(cap) = st.capture.as_mut().filter(|c| !c.broken) {
            let done = cap.let_out(Some(key), None, true);
            cap.maskers.retain(|&(conn, _), _| conn != key);
            if let Err(e) = done {
                st.failure.get_or_insert(e);
            }
        }
        let mut r = self
            .recorder
            .derived(RecordKind::PortForwardClosed, &self.request);
        r.stage = Some(Stage::ResponseComplete);
        r.custos.port_forward = Some(PortForward {
            port: c.port,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
        });
        r.annotations
            .insert("custos.dev/port-forward-connection".into(), key.to_string());
        r.custos.error = error.map(str::to_owned);
        st.to_open.push(r);
    }

    /// One SPDY event of a direction.
    fn event(&self, st: &mut State, e: Event<'_>, upstream: bool) {
        match e {
            Event::Open {
                stream,
                channel: Channel::PortData(port),
                fin,
                ..
            } => {
                self.open(st, stream, port);
                if fin {
                    self.fin(st, stream, upstream);
                }
            }
            Event::Data {
                stream, bytes, fin, ..
            } => {
                self.count(st, stream, upstream, bytes);
                if fin && !upstream {
                    // The kubelet has said all it will on an error stream.
                    st.side.remove(&stream);
                }
                if fin {
                    self.fin(st, stream, upstream);
                }
            }
            Event::Reset { stream, .. } => {
                st.side.remove(&stream);
                self.close(st, stream, None);
            }
            Event::Open {
                stream,
                channel: Channel::PortError(_) | Channel::Error,
                ..
            } => {
                st.side.insert(stream);
            }
            // A SYN_REPLY or HEADERS frame may end its side of a stream too (FIN flag).
            Event::Control {
                kind: custos_stream::ControlKind::SynReply | custos_stream::ControlKind::Headers,
                raw,
            } => {
                let fin = raw.get(4).is_some_and(|f| f & spdy_frame::FLAG_FIN != 0);
                let id = raw
                    .get(8..12)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff);
                if let (true, Some(stream)) = (fin, id) {
                    if !upstream {
                        st.side.remove(&stream);
                    }
                    self.fin(st, stream, upstream);
                }
            }
            Event::Open {
                stream, channel, ..
            } if st.capture.is_some() => {
                // The kubelet refuses such a stream, but its bytes would pass Custos unrecorded.
                st.failure.get_or_insert(format!(
                    "stream {stream} of a port-forward is neither data nor error ({channel:?}): \
                     its bytes could not be recorded"
                ));
            }
            _ => {}
        }
    }

    fn fin(&self, st: &mut State, stream: u32, upstream: bool) {
        let done = st.conns.get_mut(&stream).is_some_and(|c| {
            if upstream {
                c.client_fin = true;
            } else {
                c.server_fin = true;
            }
            c.client_fin && c.server_fin
        });
        if done {
            self.close(st, stream, None);
        }
    }

    /// One legacy WebSocket event: channel 2i is the i-th port's data.
    fn legacy(&self, st: &mut State, e: Event<'_>, upstream: bool) {
        let (stream, bytes) = match e {
            Event::Data { stream, bytes, .. } => (stream, bytes),
            // The kubelet takes a client's text message as data too (its first character names
            // the channel): followed like a binary one.
            Event::Control {
                kind: custos_stream::ControlKind::Text,
                raw,
            } if upstream => {
                let mut whole = Vec::new();
                let decoded = ws_frame::FrameDecoder::new(Role::Client).decode(raw, &mut |part| {
                    if let ws_frame::Part::Whole { payload, .. } = part {
                        whole.extend_from_slice(payload);
                    }
                    Ok(())
                });
                match (decoded, whole.split_first()) {
                    (Ok(()), Some((&ch, data))) if ch % 2 == 0 => {
                        self.count(st, u32::from(ch), true, data)
                    }
                    (Ok(()), _) => {}
                    (Err(e), _) => {
                        st.failure
                            .get_or_insert(format!("a text message could not be read: {e}"));
                    }
                }
                return;
            }
            _ => return,
        };
        if stream % 2 == 1 {
            return;
        }
        let mut payload = bytes;
        if !upstream {
            if let Some(left) = st.prefix.get_mut(&stream) {
                let skip = (*left).min(payload.len());
                *left -= skip;
                payload = &payload[skip..];
            }
        }
        self.count(st, stream, upstream, payload);
    }

    /// Payload bytes of connection `key` in one direction: counted, and captured if asked.
    fn count(&self, st: &mut State, key: u32, upstream: bool, bytes: &[u8]) {
        let late = match st.conns.get_mut(&key) {
            Some(c) => {
                if upstream {
                    c.bytes_in += bytes.len() as u64;
                } else {
                    c.bytes_out += bytes.len() as u64;
                }
                false
            }
            None if st.ended.contains(&key) => true,
            None if st.side.contains(&key) || st.capture.is_none() => return,
            None => {
                if !bytes.is_empty() {
                    st.failure.get_or_insert(format!(
                        "bytes on stream {key}, which no port-forward connection opened: they could \
                         not be recorded"
                    ));
                }
                return;
            }
        };
        if bytes.is_empty() {
            return;
        }
        let State {
            capture,
            ended,
            failure,
            ..
        } = st;
        let Some(cap) = capture.as_mut().filter(|c| !c.broken) else {
            return;
        };
        let mut taken = cap.take(key, upstream, bytes);
        // Bytes after a close keep their masker (a secret split across two late frames is still
        // found); there are at most so many of those, the oldest let out first.
        if taken.is_ok() && late && cap.maskers.len() > MAX_MASKERS {
            let mut late_keys: Vec<u32> = cap
                .maskers
                .keys()
                .map(|&(c, _)| c)
                .filter(|c| ended.contains(c))
                .collect();
            late_keys.sort_unstable();
            late_keys.dedup();
            for conn in late_keys.into_iter().take(MAX_MASKERS / 4) {
                taken = cap.let_out(Some(conn), None, true);
                cap.maskers.retain(|&(c, _), _| c != conn);
                if taken.is_err() {
                    break;
                }
            }
        }
        if let Err(e) = taken {
            failure.get_or_insert(e);
        }
    }

    /// Parses a chunk of one direction.
    fn follow(&self, reader: &mut Reader, chunk: &[u8], upstream: bool) -> Result<(), TapError> {
        let mut st = self.lock();
        if let Some(f) = &st.failure {
            return Err(TapError::new(f.clone()));
        }
        let st = &mut *st;
        let parsed = match reader {
            Reader::Spdy(r) => r.feed(chunk, &mut |e| {
                self.event(st, e, upstream);
                Ok(())
            }),
            Reader::Tunnel(ws, r) => ws.decode(chunk, &mut |part| match part {
                ws_frame::Part::Data { bytes, .. } => r.feed(bytes, &mut |e| {
                    self.event(st, e, upstream);
                    Ok(())
                }),
                ws_frame::Part::Whole { .. } => Ok::<(), StreamError>(()),
            }),
            Reader::Legacy(r) => r.feed(chunk, &mut |e| {
                self.legacy(st, e, upstream);
                Ok(())
            }),
            Reader::Opaque => {
                self.count(st, 0, upstream, chunk);
                Ok(())
            }
        };
        if let Err(e) = parsed {
            let reason =
                format!("the port-forward stream cannot be followed for the audit log: {e}");
            st.failure.get_or_insert(reason);
        }
        self.failed(st)
    }

    /// The failure, once there is one, as the error that closes the stream.
    fn failed(&self, st: &State) -> Result<(), TapError> {
        match &st.failure {
            None => Ok(()),
            Some(reason) => {
                tracing::warn!(audit_id = ?self.request.audit_id, %reason, "closing a port-forward");
                Err(TapError::new(reason.clone()))
            }
        }
    }

    /// Whether a direction should be woken when quiet: payload held by its maskers, or a recording
    /// chunk that will be due by time.
    fn holds(&self, upstream: bool) -> bool {
        let st = self.lock();
        st.failure.is_none()
            && st
                .capture
                .as_ref()
                .is_some_and(|c| !c.broken && c.holds(upstream))
    }

    /// A direction went quiet: what its maskers hold is recorded (partial candidates masked).
    fn idle(&self, upstream: bool) -> Result<(), TapError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if let Some(cap) = st.capture.as_mut().filter(|c| !c.broken) {
            if let Err(e) = cap.let_out(None, Some(upstream), false) {
                st.failure.get_or_insert(e);
            }
        }
        self.failed(st)
    }

    /// Cuts, syncs and records the payload recording's current chunk if it is due (or any
    /// unsealed bytes, `force`).
    async fn seal(&self, force: bool) -> Result<(), TapError> {
        let _order = self.order.lock().await;
        // A stream refused for another reason (a frame Custos cannot parse) still gets what was
        // recorded sealed: only a broken recording stops sealing.
        let chunk = {
            let mut st = self.lock();
            match st.capture.as_mut() {
                Some(cap) if !cap.broken && (force || cap.writer.due(cap.started.elapsed())) => {
                    cap.writer.cut()
                }
                _ => None,
            }
        };
        if let Some(chunk) = chunk {
            if let Err((_, detail)) = seal_chunk(&self.recorder, &self.request, chunk).await {
                let mut st = self.lock();
                if let Some(cap) = st.capture.as_mut() {
                    cap.broken = true;
                }
                st.failure.get_or_insert(detail);
            }
        }
        let st = self.lock();
        self.failed(&st)
    }

    /// Appends the opened records of new connections, durably, before their bytes go on.
    async fn settle(&self) -> Result<(), TapError> {
        {
            // Held while the records are appended, so the other direction's bytes wait for them
            // too (it would otherwise find the list already taken, and go on).
            let _order = self.order.lock().await;
            let pending = std::mem::take(&mut self.lock().to_open);
            for r in pending {
                if let Err(e) = self.recorder.append(&r).await {
                    let reason = format!("the audit log did not take the port-forward record: {e}");
                    self.lock().failure.get_or_insert(reason.clone());
                    return Err(TapError::new(reason));
                }
            }
        }
        self.seal(false).await
    }

    /// The relay ended: connections still open are closed (with the relay's error, if any), and
    /// opened records never appended (the stream ended first) are written before their closes.
    pub async fn finish(&self, outcome: &std::io::Result<RelayTotals>) {
        let error = outcome
            .as_ref()
            .err()
            .map(|e| format!("the stream ended with an error: {e}"));
        {
            let mut st = self.lock();
            let mut keys: Vec<u32> = st.conns.keys().copied().collect();
            keys.sort_unstable();
            for key in keys {
                self.close(&mut st, key, error.as_deref());
            }
            if let Some(cap) = st.capture.as_mut().filter(|c| !c.broken) {
                if let Err(e) = cap.let_out(None, None, true) {
                    st.failure.get_or_insert(e);
                }
            }
        }
        // Opened records not yet appended (the stream ended first), then the closes.
        let _ = self.settle().await;
        let _ = self.seal(true).await;
        let closed = closed_record(&self.recorder, &self.request, &self.lock(), error);
        if let Some(r) = closed {
            if let Err(e) = self.recorder.append(&r).await {
                tracing::error!(audit_id = ?self.request.audit_id, error = %e, "the stream-closed record could not be written");
            }
        }
    }
}

enum Reader {
    Spdy(SpdyReader),
    Tunnel(ws_frame::FrameDecoder, SpdyReader),
    Legacy(WsReader),
    Opaque,
}

/// One direction of a port-forward stream: followed, counted (and captured if asked), passed unchanged.
pub struct PortForwardTap {
    reader: Reader,
    upstream: bool,
    pf: Arc<PortForwards>,
}

impl Tap for PortForwardTap {
    fn on_chunk(&mut self, chunk: &mut BytesMut) -> Result<(), TapError> {
        self.pf.follow(&mut self.reader, chunk, self.upstream)
    }

    fn holds(&self) -> bool {
        self.pf.holds(self.upstream)
    }

    fn on_idle(&mut self, _out: &mut BytesMut) -> Result<(), TapError> {
        self.pf.idle(self.upstream)
    }

    fn settle(&mut self) -> BoxFuture<'_, Result<(), TapError>> {
        Box::pin(self.pf.settle())
    }
}

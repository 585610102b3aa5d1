//! port-forward: one `port-forward-opened` and one `port-forward-closed` record per forwarded
//! connection, with its pod port and the bytes each way (`custos.portForward`). Payloads are not
//! captured (an application's own protocol, often TLS); they pass unchanged.
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
//! (fail closed: the stream is closed if it cannot be); closed records follow without waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use futures_util::future::BoxFuture;

use custos_audit::record::{PortForward, Record, RecordKind, Stage};
use custos_stream::spdy::{Sender, SpdyReader, Streams};
use custos_stream::ws::{frame as ws_frame, frame::Role, WsReader};
use custos_stream::{Channel, Event, StreamError};

use crate::recorder::Recorder;
use crate::relay::{RelayTotals, Tap, TapError};

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
                v.split(',')
                    .filter_map(|p| p.trim().parse().ok())
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

/// The connections of one port-forward stream, shared by the taps of both directions.
pub struct PortForwards {
    recorder: Recorder,
    request: Record,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    conns: HashMap<u32, Conn>,
    /// Opened records to append before the bytes that opened them go on.
    to_open: Vec<Record>,
    /// Legacy WebSocket: port-prefix bytes still to skip per server channel.
    prefix: HashMap<u32, usize>,
    failure: Option<String>,
}

struct Conn {
    port: u16,
    bytes_in: u64,
    bytes_out: u64,
    client_fin: bool,
    server_fin: bool,
}

impl PortForwards {
    /// Follows the connections of the stream `request` describes, carried as `wire`; returns the
    /// shared state and the taps `(to_upstream, to_client)`.
    pub fn start(
        recorder: &Recorder,
        request: &Record,
        wire: &PortForwardWire,
    ) -> (Arc<PortForwards>, PortForwardTap, PortForwardTap) {
        let pf = Arc::new(PortForwards {
            recorder: recorder.clone(),
            request: request.clone(),
            state: Mutex::new(State::default()),
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
        self.recorder.append_later(r);
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
                if let Some(c) = st.conns.get_mut(&stream) {
                    if upstream {
                        c.bytes_in += bytes.len() as u64;
                    } else {
                        c.bytes_out += bytes.len() as u64;
                    }
                }
                if fin {
                    self.fin(st, stream, upstream);
                }
            }
            Event::Reset { stream, .. } => self.close(st, stream, None),
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
        let Event::Data { stream, bytes, .. } = e else {
            return;
        };
        if stream % 2 == 1 {
            return;
        }
        let mut n = bytes.len();
        if !upstream {
            if let Some(left) = st.prefix.get_mut(&stream) {
                let skip = (*left).min(n);
                *left -= skip;
                n -= skip;
            }
        }
        if let Some(c) = st.conns.get_mut(&stream) {
            if upstream {
                c.bytes_in += n as u64;
            } else {
                c.bytes_out += n as u64;
            }
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
                if let Some(c) = st.conns.get_mut(&0) {
                    if upstream {
                        c.bytes_in += chunk.len() as u64;
                    } else {
                        c.bytes_out += chunk.len() as u64;
                    }
                }
                Ok(())
            }
        };
        parsed.map_err(|e| {
            let reason =
                format!("the port-forward stream cannot be followed for the audit log: {e}");
            tracing::warn!(audit_id = ?self.request.audit_id, %reason, "closing a port-forward");
            st.failure.get_or_insert(reason.clone());
            TapError::new(reason)
        })
    }

    /// Appends the opened records of new connections, durably, before their bytes go on.
    async fn settle(&self) -> Result<(), TapError> {
        let pending = std::mem::take(&mut self.lock().to_open);
        for r in pending {
            if let Err(e) = self.recorder.append(&r).await {
                let reason = format!("the audit log did not take the port-forward record: {e}");
                self.lock().failure.get_or_insert(reason.clone());
                return Err(TapError::new(reason));
            }
        }
        Ok(())
    }

    /// The relay ended: connections still open are closed (with the relay's error, if any), and
    /// opened records never appended (the stream ended first) are written before their closes.
    pub async fn finish(&self, outcome: &std::io::Result<RelayTotals>) {
        let _ = self.settle().await;
        let error = outcome
            .as_ref()
            .err()
            .map(|e| format!("the stream ended with an error: {e}"));
        let mut st = self.lock();
        let mut keys: Vec<u32> = st.conns.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            self.close(&mut st, key, error.as_deref());
        }
    }
}

enum Reader {
    Spdy(SpdyReader),
    Tunnel(ws_frame::FrameDecoder, SpdyReader),
    Legacy(WsReader),
    Opaque,
}

/// One direction of a port-forward stream: followed, counted, passed unchanged.
pub struct PortForwardTap {
    reader: Reader,
    upstream: bool,
    pf: Arc<PortForwards>,
}

impl Tap for PortForwardTap {
    fn on_chunk(&mut self, chunk: &mut BytesMut) -> Result<(), TapError> {
        self.pf.follow(&mut self.reader, chunk, self.upstream)
    }

    fn settle(&mut self) -> BoxFuture<'_, Result<(), TapError>> {
        Box::pin(self.pf.settle())
    }
}

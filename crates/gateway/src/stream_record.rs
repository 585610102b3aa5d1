//! Recording exec and attach: what each direction of the stream carries becomes asciicast events in
//! `<recordings dir>/<audit-id>.cast` (`recordings.dir`, default `<dataDir>/recordings`; see
//! `custos_recording`), and the file is bound to the audit log chunk by chunk.
//!
//! Order, per stream:
//! 1. [`StreamRecording::open`], before the apiserver is asked for anything: the file is created, its
//!    header (who, which pod, which command) fsynced as chunk 0, and the `stream-opened` record and
//!    chunk 0's `stream-chunk` record appended durably. Either failing refuses the upgrade (503):
//!    nothing runs unrecorded.
//! 2. For every relayed chunk, [`RecordingTap`] parses the bytes exactly as they will be sent on —
//!    client→apiserver as received (stdin, resize), apiserver→client after the masking tap
//!    (stdout, stderr, exit status) — and writes their events to the file *before* the bytes are
//!    forwarded; a write error closes the stream instead.
//! 3. When the current chunk reaches 64 KiB or its first byte is 2 s old, the relay's
//!    [`Tap::settle`] cuts it, fsyncs the file and appends its `stream-chunk` record durably, again
//!    *before* the bytes that completed it are forwarded. So every forwarded byte is in the file first,
//!    and at most one chunk (< 64 KiB of recording) is forwarded ahead of its durable chunk record.
//!    Typed input is the one lag: the stdin masker holds back a bounded tail (to find a secret typed
//!    across keystrokes) that reaches the file when the stream goes quiet or ends.
//! 4. [`StreamRecording::finish`], when the relay ends: held input and output let out, the last chunk
//!    cut, synced and recorded, then `stream-closed` appended with the whole file's hash, bytes per
//!    channel and the exit status.
//!
//! When the recording cannot be written (disk full, directory gone or unwritable, audit log down) the
//! stream is closed and the client told why: over WebSocket an error-channel `Status` and a close frame;
//! over SPDY a `Status` on the error stream (FIN) when the stream table knows it, then the connection
//! closes. kubectl prints the message.
//!
//! Every chunk, the header's included, has its own `stream-chunk` record (audit id and one
//! `StreamRef` with seq, offset, bytes, sha256): `custos_recording::verify` takes exactly those.
//! `stream-opened` and `stream-closed` carry the request's identity; `stream-closed` also carries the
//! whole file's length and hash and the bytes per channel (`StreamRef`s without a seq).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;

use custos_audit::record::{Record, RecordKind, ResponseStatus, Stage, StreamRef};
use custos_mask::Detector;
use custos_recording::{Event, Header, Transcriber, Writer};
use custos_stream::spdy::{frame as spdy_frame, Sender, SpdyReader, Streams};
use custos_stream::ws::{frame as ws_frame, frame::Role, WsReader};
use custos_stream::{Channel, ControlKind, Event as Wire, StreamError};

use crate::error::GatewayError;
use crate::recorder::{now, Recorder};
use crate::relay::{RelayTotals, Tap, TapError};
pub(crate) use facts::facts;
pub(crate) use facts::query_pairs;
use facts::{exit_code, exit_status};

/// The recording of one exec/attach stream, shared by the taps of both directions.
pub struct StreamRecording {
    recorder: Recorder,
    /// The request's record: every stream record is derived from it.
    request: Record,
    started: Instant,
    state: Mutex<State>,
    /// Held while a chunk is cut, synced and recorded, so chunk records are appended in order.
    order: tokio::sync::Mutex<()>,
}

struct State {
    writer: Writer,
    transcript: Transcriber,
    pieces: Vec<custos_recording::Piece>,
    /// The wire, once the apiserver chose it (for the farewell).
    websocket: bool,
    /// The SPDY error stream, and whether the apiserver has replied to it (DATA may then be sent).
    error_stream: Option<u32>,
    error_replied: bool,
    /// Why the recording failed (for the log and the record); nothing is relayed from then on.
    failure: Option<String>,
    /// The file or its chunk records could not be written: nothing more is written or sealed. (A
    /// stream closed for another reason, a frame that cannot be parsed, still has what was recorded
    /// sealed.)
    broken: bool,
    /// What the client is told about it (no server paths).
    told: Option<String>,
}

impl StreamRecording {
    /// Creates the recording of the stream `request` describes, fsyncs its header and appends the
    /// `stream-opened` record durably. An error refuses the stream (503). `detector` masks typed input and the exit status.
    pub async fn open(
        recorder: &Recorder,
        detector: &'static Detector,
        parts: &http::request::Parts,
        request: &Record,
        kind: &str,
    ) -> Result<Arc<StreamRecording>, GatewayError> {
        let recorder = recorder.clone();
        let header = Header::new(facts(parts, request, kind, recorder.gateway_id()));
        let writer =
            create_file(&recorder, request, header, "exec and attach are recorded").await?;
        tracing::debug!(audit_id = ?request.audit_id, recording = writer.name(), "stream recording opened");
        Ok(Arc::new(StreamRecording {
            recorder,
            request: request.clone(),
            started: Instant::now(),
            state: Mutex::new(State {
                writer,
                transcript: Transcriber::new(detector),
                pieces: Vec::new(),
                websocket: false,
                error_stream: None,
                error_replied: false,
                failure: None,
                broken: false,
                told: None,
            }),
            order: tokio::sync::Mutex::new(()),
        }))
    }

    /// The taps of both directions for the wire the apiserver chose: `(to_upstream, to_client)`.
    /// `to_upstream` and `to_client` are the masking taps (or observers) the recording wraps.
    pub fn taps(
        self: &Arc<Self>,
        websocket: bool,
        to_upstream: Box<dyn Tap>,
        to_client: Box<dyn Tap>,
    ) -> (RecordingTap, RecordingTap) {
        self.lock().websocket = websocket;
        let (up, down) = if websocket {
            (
                Reader::Ws(WsReader::new(Role::Client), Role::Client),
                Reader::Ws(WsReader::new(Role::Server), Role::Server),
            )
        } else {
            // A table of its own: the masking tap's readers forget a stream once both ends closed
            // it, which may be before this reader has seen that stream's last frame.
            let streams = Streams::new();
            (
                Reader::Spdy(SpdyReader::new(Sender::Client, streams.clone())),
                Reader::Spdy(SpdyReader::new(Sender::Server, streams)),
            )
        };
        let tap = |inner, reader, upstream| RecordingTap {
            inner,
            reader,
            upstream,
            rec: self.clone(),
        };
        (tap(to_upstream, up, true), tap(to_client, down, false))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a state that is still consistent enough to close.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Parses `bytes` (what goes on in one direction) and writes their events.
    fn record(&self, reader: &mut Reader, bytes: &[u8]) -> Result<(), TapError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.failure.is_some() {
            return Err(self.farewell(st));
        }
        let parsed = {
            let State {
                transcript,
                pieces,
                error_stream,
                error_replied,
                ..
            } = st;
            let upstream = matches!(reader, Reader::Ws(_, Role::Client));
            let mut sink = |e: Wire<'_>| {
                on_event(e, upstream, transcript, pieces, error_stream, error_replied);
                Ok::<(), StreamError>(())
            };
            match reader {
                Reader::Spdy(r) => r.feed(bytes, &mut sink),
                Reader::Ws(r, _) => r.feed(bytes, &mut sink),
            }
        };
        if let Err(e) = parsed {
            let reason = format!("the stream cannot be parsed for recording: {e}");
            return Err(self.fail(st, reason.clone(), reason));
        }
        self.write_pieces(st)
    }

    /// Writes the transcript's pending pieces, stamped now.
    fn write_pieces(&self, st: &mut State) -> Result<(), TapError> {
        let at = self.elapsed();
        for (code, data) in std::mem::take(&mut st.pieces) {
            if let Err(e) = st.writer.event(&Event::new(at, code, data)) {
                let (told, detail) = unwritable(&e);
                st.broken = true;
                return Err(self.fail(st, told, detail));
            }
        }
        Ok(())
    }

    /// Marks the recording failed (`detail` for the log and the record, `told` for the client) and
    /// returns the error closing the stream.
    fn fail(&self, st: &mut State, told: String, detail: String) -> TapError {
        tracing::error!(audit_id = ?self.request.audit_id, recording = st.writer.name(), reason = %detail, "closing a stream whose recording failed");
        if st.failure.is_none() {
            st.failure = Some(detail);
            st.told = Some(told);
        }
        self.farewell(st)
    }

    /// What the client is told before the stream closes: an error-channel `Status` (WebSocket: then
    /// a close frame; SPDY: on the error stream, FIN, when the apiserver has replied to it).
    fn farewell(&self, st: &State) -> TapError {
        let reason = st.told.as_deref().unwrap_or("the session recording failed");
        let message = format!("stream closed by Custos: {reason}");
        let status = serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "ServiceUnavailable",
            "code": 503,
        })
        .to_string();
        let mut out = BytesMut::new();
        if st.websocket {
            ws_frame::write_frame(true, ws_frame::BINARY, &[&[3], status.as_bytes()], &mut out);
            let mut end = message.len().min(123);
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            // 1000, as the apiserver closes after a failed command's Status: client-go reads the
            // error channel to its end (and prints the Status) only on a normal closure; on any
            // other code it reports the close frame's reason, cut to 123 bytes, instead.
            let close: [&[u8]; 2] = [&1000u16.to_be_bytes(), &message.as_bytes()[..end]];
            ws_frame::write_frame(true, ws_frame::CLOSE, &close, &mut out);
        } else if let (Some(id), true) = (st.error_stream, st.error_replied) {
            spdy_frame::write_data(id, status.as_bytes(), true, &mut out);
        }
        TapError {
            reason: message,
            farewell: Bytes::from(out),
        }
    }

    /// Whether a direction should be woken when quiet: typed input held back (upstream), or a chunk
    /// that will be due by time.
    fn holds(&self, upstream: bool) -> bool {
        let st = self.lock();
        st.failure.is_none() && ((upstream && st.transcript.holds()) || st.writer.unsealed() > 0)
    }

    /// The client→apiserver direction went quiet: typed input held back is recorded (masked).
    fn idle_input(&self) -> Result<(), TapError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.failure.is_some() || !st.transcript.holds() {
            return Ok(());
        }
        let State {
            transcript, pieces, ..
        } = st;
        transcript.idle(pieces);
        self.write_pieces(st)
    }

    /// Cuts, syncs and records (`stream-chunk`, durably) the current chunk if it is due, or any
    /// unsealed bytes if `force`.
    async fn seal(&self, force: bool) -> Result<(), TapError> {
        let chunk = {
            let mut st = self.lock();
            if st.broken || (!force && !st.writer.due(self.elapsed())) {
                None
            } else {
                st.writer.cut()
            }
        };
        if let Some(chunk) = chunk {
            if let Err((told, detail)) = seal_chunk(&self.recorder, &self.request, chunk).await {
                let mut st = self.lock();
                st.broken = true;
                return Err(self.fail(&mut st, told, detail));
            }
        }
        let st = self.lock();
        match st.failure {
            Some(_) => Err(self.farewell(&st)),
            None => Ok(()),
        }
    }

    /// Seals the current chunk if it is due, before the bytes recorded in it are forwarded.
    async fn settle(&self) -> Result<(), TapError> {
        {
            let st = self.lock();
            if st.failure.is_none() && !st.writer.due(self.elapsed()) {
                return Ok(());
            }
        }
        let _order = self.order.lock().await;
        self.seal(false).await
    }

    /// The apiserver did not start the stream (`why`): the recording is closed with that.
    pub async fn abandon(&self, code: Option<u16>, why: &str) {
        let status = ResponseStatus {
            code,
            reason: None,
            message: Some(why.chars().take(1024).collect()),
        };
        self.close(Some(why.to_owned()), Some(status), None).await;
    }

    /// The relay ended (`outcome`): held events are written, the last chunk sealed, and
    /// `stream-closed` appended with totals and the exit status. Never fails: errors are recorded.
    pub async fn finish(&self, outcome: &std::io::Result<RelayTotals>, subprotocol: Option<&str>) {
        let error = outcome
            .as_ref()
            .err()
            .map(|e| format!("the stream ended with an error: {e}"));
        self.close(error, None, subprotocol).await;
    }

    async fn close(
        &self,
        error: Option<String>,
        status: Option<ResponseStatus>,
        subprotocol: Option<&str>,
    ) {
        let _order = self.order.lock().await;
        {
            let mut guard = self.lock();
            let st = &mut *guard;
            if !st.broken {
                let State {
                    transcript, pieces, ..
                } = st;
                transcript.finish(pieces);
                let _ = self.write_pieces(st);
            }
        }
        let _ = self.seal(true).await;
        let (r, name) = self.closed_record(error, status, subprotocol);
        if let Err(e) = self.recorder.append(&r).await {
            tracing::error!(audit_id = ?self.request.audit_id, recording = %name, error = %e, "the stream-closed record could not be written");
        }
    }
}

impl StreamRecording {
    /// The `stream-closed` record: the last chunk, the whole file, bytes per channel, exit status.
    fn closed_record(
        &self,
        error: Option<String>,
        status: Option<ResponseStatus>,
        subprotocol: Option<&str>,
    ) -> (Record, String) {
        let mut r = self
            .recorder
            .derived(RecordKind::StreamClosed, &self.request);
        r.stage = Some(Stage::ResponseComplete);
        let st = self.lock();
        r.custos.streams.push(st.writer.whole());
        let totals = st.transcript.totals();
        for (channel, bytes) in [
            ("stdin", totals.stdin),
            ("stdout", totals.stdout),
            ("stderr", totals.stderr),
            ("resize", totals.resize),
            ("error", totals.error),
        ] {
            if bytes > 0 {
                r.custos.streams.push(StreamRef {
                    recording: st.writer.name().to_owned(),
                    channel: Some(channel.into()),
                    bytes,
                    ..StreamRef::default()
                });
            }
        }
        r.response_status = status.or_else(|| st.transcript.exit_status().map(exit_status));
        if let Some(code) = st.transcript.exit_status().and_then(exit_code) {
            r.annotations
                .insert("custos.dev/exit-code".into(), code.to_string());
        }
        if let Some(p) = subprotocol {
            r.annotations.insert(
                "custos.dev/stream-protocol".into(),
                p.chars().take(128).collect(),
            );
        }
        r.annotations.insert(
            "custos.dev/recording-chunks".into(),
            st.writer.chunks().to_string(),
        );
        r.custos.error = st
            .failure
            .clone()
            .or(error)
            .map(|e| e.chars().take(1024).collect());
        (r, st.writer.name().to_owned())
    }
}

/// Creates the recording file of the stream `request` describes, fsyncs `header` as chunk 0 and
/// appends the `stream-opened` record (naming the file) and chunk 0's `stream-chunk` record durably.
/// An error refuses the stream (503); `what` says why a recording was needed.
pub(crate) async fn create_file(
    recorder: &Recorder,
    request: &Record,
    header: Header,
    what: &str,
) -> Result<Writer, GatewayError> {
    let unavailable = |what: &str, e: String| {
        GatewayError::AuditUnavailable(custos_store::StoreError::unavailable(
            format!("session recording: {what}"),
            std::io::Error::other(e),
        ))
    };
    let Some(dir) = recorder.recordings().cloned() else {
        return Err(unavailable(
            what,
            "no recordings directory is configured on this gateway".into(),
        ));
    };
    let audit_id = request.audit_id.clone().unwrap_or_default();
    let created = tokio::task::spawn_blocking(move || {
        let mut writer = dir.create(&audit_id, &header)?;
        let first = writer.cut().map(|c| c.sync()).transpose()?;
        Ok::<_, custos_recording::WriteError>((writer, first))
    })
    .await
    .map_err(|e| unavailable("creating the file", e.to_string()))?;
    let (writer, first) = created.map_err(|e| unavailable("creating the file", e.to_string()))?;
    let mut opened = recorder.derived(RecordKind::StreamOpened, request);
    opened.stage = Some(Stage::RequestReceived);
    opened.custos.streams.push(StreamRef {
        recording: writer.name().to_owned(),
        ..StreamRef::default()
    });
    // Appended together (one group commit), the opening first.
    let chunk = first.map(|c| chunk_record(recorder, request, c));
    let (opened, chunk) = tokio::join!(recorder.append(&opened), async {
        match &chunk {
            Some(c) => recorder.append(c).await,
            None => Ok(()),
        }
    });
    opened?;
    chunk?;
    Ok(writer)
}

/// Fsyncs a cut chunk and appends its `stream-chunk` record durably; an error is `(told, detail)`:
/// what the client is told and what is logged.
pub(crate) async fn seal_chunk(
    recorder: &Recorder,
    request: &Record,
    chunk: custos_recording::Chunk,
) -> Result<(), (String, String)> {
    let stream_ref = match tokio::task::spawn_blocking(move || chunk.sync()).await {
        Ok(r) => r.map_err(|e| unwritable(&e))?,
        Err(e) => {
            return Err((
                "the session recording could not be written".to_owned(),
                format!("syncing the recording: {e}"),
            ))
        }
    };
    let record = chunk_record(recorder, request, stream_ref);
    recorder.append(&record).await.map_err(|e| {
        let reason = format!("the audit log did not take the recording's chunk record: {e}");
        (reason.clone(), reason)
    })
}

/// A write error as the client is told it (the cause, no server path) and as it is logged.
fn unwritable(e: &custos_recording::WriteError) -> (String, String) {
    let cause = match e {
        custos_recording::WriteError::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    (
        format!("the session recording could not be written ({cause})"),
        format!("the session recording could not be written: {e}"),
    )
}

/// The `stream-chunk` record of one chunk: the audit id and the chunk's reference.
fn chunk_record(recorder: &Recorder, request: &Record, chunk: StreamRef) -> Record {
    let mut r = Record::new(RecordKind::StreamChunk, now());
    r.audit_id.clone_from(&request.audit_id);
    r.custos.gateway = Some(recorder.gateway_id().to_owned());
    r.custos.streams.push(chunk);
    r
}

/// One wire event: channel payloads go to the transcript; the SPDY error stream is tracked for the
/// farewell. A WebSocket text message from the client (the Python client sends stdin so) is a
/// channel message too: its first character names the channel.
fn on_event(
    e: Wire<'_>,
    upstream: bool,
    transcript: &mut Transcriber,
    pieces: &mut Vec<custos_recording::Piece>,
    error_stream: &mut Option<u32>,
    error_replied: &mut bool,
) {
    match e {
        // The kubelet reads only `streamType` for exec/attach: an error stream that also names a
        // port is still the error stream (the exit status).
        Wire::Open {
            stream,
            channel: Channel::Error | Channel::PortError(_),
            ..
        } => *error_stream = Some(stream),
        Wire::Data {
            channel,
            bytes,
            fin,
            ..
        } => {
            let channel = match channel {
                Channel::PortError(_) => Channel::Error,
                other => other,
            };
            transcript.data(channel, bytes, pieces);
            if fin {
                transcript.end(channel, pieces);
            }
        }
        Wire::Close { channel, .. } => transcript.end(
            match channel {
                Channel::PortError(_) => Channel::Error,
                other => other,
            },
            pieces,
        ),
        Wire::Control {
            kind: ControlKind::Text,
            raw,
        } if upstream => {
            let _ = ws_frame::FrameDecoder::new(Role::Client).decode(raw, &mut |part| {
                if let ws_frame::Part::Whole { payload, .. } = part {
                    if let Some((&ch, data)) = payload.split_first() {
                        transcript.data(Channel::from_ws(ch), data, pieces);
                    }
                }
                Ok(())
            });
        }
        Wire::Control {
            kind: ControlKind::SynReply,
            raw,
        } => {
            let id = raw
                .get(8..12)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff);
            if id.is_some() && id == *error_stream {
                *error_replied = true;
            }
        }
        _ => {}
    }
}

enum Reader {
    Spdy(SpdyReader),
    Ws(WsReader, Role),
}

/// One direction of a recorded exec/attach stream: the inner tap (masking, or the SPDY observer)
/// runs first, then what it lets through is recorded before the relay forwards it.
pub struct RecordingTap {
    inner: Box<dyn Tap>,
    reader: Reader,
    upstream: bool,
    rec: Arc<StreamRecording>,
}

impl Tap for RecordingTap {
    fn on_chunk(&mut self, chunk: &mut BytesMut) -> Result<(), TapError> {
        if let Err(e) = self.inner.on_chunk(chunk) {
            // The inner tap's farewell (output it had already masked, held tails, then the Status
            // and close) reaches the client: it is recorded first, or only the recording's own
            // farewell goes out.
            self.rec.record(&mut self.reader, &e.farewell)?;
            return Err(e);
        }
        self.rec.record(&mut self.reader, chunk)
    }

    fn holds(&self) -> bool {
        self.inner.holds() || self.rec.holds(self.upstream)
    }

    fn on_idle(&mut self, out: &mut BytesMut) -> Result<(), TapError> {
        self.inner.on_idle(out)?;
        self.rec.record(&mut self.reader, out)?;
        if self.upstream {
            self.rec.idle_input()?;
        }
        Ok(())
    }

    fn settle(&mut self) -> BoxFuture<'_, Result<(), TapError>> {
        Box::pin(self.rec.settle())
    }

    fn on_close(&mut self, bytes: u64) {
        self.inner.on_close(bytes);
    }
}

mod facts;
#[cfg(test)]
pub(crate) mod tests;

//! Upgraded connections (exec, attach, port-forward, cp over SPDY/3.1 or WebSocket), relayed between
//! client and apiserver once both sides have switched protocols.
//!
//! The relay moves chunks in both directions and hands each chunk to a [`Tap`] first. Taps are where
//! masking and recording plug in: exec and attach output is parsed frame by frame and masked
//! ([`custos_stream::MaskingTap`]), then recorded ([`crate::stream_record`]); the default tap lets
//! everything through. A tap error closes both sides (after the tap's last words to the client, if it
//! has any — whichever direction failed): nothing flows that a tap could not see. A tap may hold bytes
//! back (the masker's tail); when nothing arrives for the idle period the relay asks it for them, so
//! an interactive shell stays responsive.
//!
//! Per chunk the order is: [`Tap::on_chunk`] (rewrite, and record what will be sent), then
//! [`Tap::settle`] (await what must be durable before those bytes go on — a recording's chunk record),
//! then the write.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use custos_stream::{MaskingTap, StreamError, UpstreamObserver};
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

/// Largest chunk read at once; memory per stream direction is bounded by it.
pub const CHUNK: usize = 32 * 1024;

/// How long a tap's last words to the peer may take before the stream is closed regardless.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(2);

/// A tap refused a chunk; the stream is closed.
#[derive(Debug, thiserror::Error)]
#[error("stream closed by the gateway: {reason}")]
pub struct TapError {
    /// Why.
    pub reason: String,
    /// Bytes to send the client before closing, whichever direction failed (whole frames: e.g. an
    /// error-channel `Status` and a WebSocket close frame saying why).
    pub farewell: Bytes,
}

impl TapError {
    /// An error with nothing to tell the peer.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            farewell: Bytes::new(),
        }
    }
}

/// Sees every chunk of one direction of an upgraded stream, and may rewrite it.
pub trait Tap: Send {
    /// Called with each chunk before it is written to the other side; may rewrite it (to more or fewer
    /// bytes, e.g. when holding some back).
    fn on_chunk(&mut self, chunk: &mut BytesMut) -> Result<(), TapError>;
    /// Whether the tap holds bytes back that [`Tap::on_idle`] would let out.
    fn holds(&self) -> bool {
        false
    }
    /// The direction has been quiet for the idle period, or has ended: append held bytes to `out`.
    fn on_idle(&mut self, _out: &mut BytesMut) -> Result<(), TapError> {
        Ok(())
    }
    /// Awaited after [`Tap::on_chunk`] / [`Tap::on_idle`] and before their bytes are written on: what
    /// must be durable first (a recording's chunk and its audit record) is made so. An error closes
    /// the stream and those bytes are never sent.
    fn settle(&mut self) -> BoxFuture<'_, Result<(), TapError>> {
        Box::pin(std::future::ready(Ok(())))
    }
    /// Called once when the direction ends (EOF, error or cancellation), with the bytes relayed.
    fn on_close(&mut self, _bytes: u64) {}
}

/// A tap that lets everything through unchanged.
#[derive(Debug, Default)]
pub struct PassThrough;

impl Tap for PassThrough {
    fn on_chunk(&mut self, _: &mut BytesMut) -> Result<(), TapError> {
        Ok(())
    }
}

/// Exec/attach output: parsed, stdout and stderr masked and re-framed (see `custos_stream`).
impl Tap for MaskingTap {
    fn on_chunk(&mut self, chunk: &mut BytesMut) -> Result<(), TapError> {
        let mut out = BytesMut::with_capacity(chunk.len() + 64);
        match MaskingTap::on_chunk(self, chunk, &mut out) {
            Ok(()) => {
                *chunk = out;
                Ok(())
            }
            Err(e) => Err(masking_failed(self, out, &e)),
        }
    }

    fn holds(&self) -> bool {
        MaskingTap::holds(self)
    }

    fn on_idle(&mut self, out: &mut BytesMut) -> Result<(), TapError> {
        MaskingTap::on_idle(self, out);
        Ok(())
    }

    fn on_close(&mut self, bytes: u64) {
        tracing::debug!(
            bytes,
            findings = self.findings(),
            "masked stream direction ended"
        );
    }
}

/// The whole frames processed before the error go out, then the tap's farewell (for WebSocket an
/// error-channel `Status` and a close frame; SPDY is just closed).
fn masking_failed(tap: &mut MaskingTap, mut out: BytesMut, e: &StreamError) -> TapError {
    tracing::warn!(error = %e, "closing a stream Custos cannot mask");
    tap.farewell(&e.to_string(), &mut out);
    TapError {
        reason: e.to_string(),
        farewell: out.freeze(),
    }
}

/// The client→apiserver direction of SPDY exec/attach: followed (unchanged) so the masking tap of the
/// other direction knows which stream is stdout and which stderr.
impl Tap for UpstreamObserver {
    fn on_chunk(&mut self, chunk: &mut BytesMut) -> Result<(), TapError> {
        UpstreamObserver::on_chunk(self, chunk).map_err(|e| {
            tracing::warn!(error = %e, "closing a stream Custos cannot follow");
            TapError::new(e.to_string())
        })
    }
}

/// Byte counts of a finished relay.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayTotals {
    /// Bytes from the client to the apiserver.
    pub to_upstream: u64,
    /// Bytes from the apiserver to the client.
    pub to_client: u64,
}

/// Relays both directions until both have ended; an I/O or tap error on either side ends both. A tap
/// holding bytes is asked for them after `idle` without input.
pub async fn relay<C, U>(
    client: C,
    upstream: U,
    to_upstream: &mut dyn Tap,
    to_client: &mut dyn Tap,
    idle: Duration,
) -> std::io::Result<RelayTotals>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (cr, cw) = tokio::io::split(client);
    let (ur, uw) = tokio::io::split(upstream);
    // The client's writer is shared: the upstream direction's farewell (a recording that failed on
    // stdin) goes to the client too. Each write holds it for one whole chunk, so frames never mix.
    let cw = Mutex::new(cw);
    let uw = Mutex::new(uw);
    let up = pump(cr, &uw, &cw, to_upstream, idle);
    let down = pump(ur, &cw, &cw, to_client, idle);
    let (to_upstream, to_client) = tokio::try_join!(up, down)?;
    Ok(RelayTotals {
        to_upstream,
        to_client,
    })
}

/// Copies one direction through `tap` to `w`; on EOF lets out what the tap holds and shuts the writer
/// down so the peer sees the half-close. A tap's farewell goes to `client`. Returns the bytes read.
async fn pump<R, W, C>(
    mut r: R,
    w: &Mutex<W>,
    client: &Mutex<C>,
    tap: &mut dyn Tap,
    idle: Duration,
) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    C: AsyncWrite + Unpin,
{
    let mut total = 0u64;
    let mut buf = BytesMut::with_capacity(CHUNK);
    let result = async {
        loop {
            buf.clear();
            buf.reserve(CHUNK);
            let mut limited = (&mut r).take(CHUNK as u64);
            let read = limited.read_buf(&mut buf);
            let n = if tap.holds() {
                // `read_buf` is cancel-safe: on timeout nothing has been read.
                match tokio::time::timeout(idle, read).await {
                    Ok(n) => n?,
                    Err(_) => {
                        let mut held = BytesMut::new();
                        step(tap.on_idle(&mut held), client).await?;
                        step(tap.settle().await, client).await?;
                        write(w, &held).await?;
                        continue;
                    }
                }
            } else {
                read.await?
            };
            if n == 0 {
                if tap.holds() {
                    let mut held = BytesMut::new();
                    step(tap.on_idle(&mut held), client).await?;
                    step(tap.settle().await, client).await?;
                    write(w, &held).await?;
                }
                w.lock().await.shutdown().await.ok();
                return Ok(());
            }
            total += n as u64;
            step(tap.on_chunk(&mut buf), client).await?;
            step(tap.settle().await, client).await?;
            write(w, &buf).await?;
        }
    }
    .await;
    tap.on_close(total);
    result.map(|()| total)
}

async fn write<W: AsyncWrite + Unpin>(w: &Mutex<W>, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut w = w.lock().await;
    w.write_all(bytes).await?;
    w.flush().await
}

/// A tap's verdict: on error, its farewell goes to the client (bounded in time), then the stream
/// closes.
async fn step<C: AsyncWrite + Unpin>(
    verdict: Result<(), TapError>,
    client: &Mutex<C>,
) -> std::io::Result<()> {
    let Err(e) = verdict else { return Ok(()) };
    if !e.farewell.is_empty() {
        let said = async {
            let mut c = client.lock().await;
            c.write_all(&e.farewell).await?;
            c.flush().await?;
            c.shutdown().await
        };
        let _ = tokio::time::timeout(FAREWELL_TIMEOUT, said).await;
    }
    Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_millis(25);

    struct Upper;
    impl Tap for Upper {
        fn on_chunk(&mut self, chunk: &mut BytesMut) -> Result<(), TapError> {
            chunk.make_ascii_uppercase();
            Ok(())
        }
    }

    struct Refuse;
    impl Tap for Refuse {
        fn on_chunk(&mut self, _: &mut BytesMut) -> Result<(), TapError> {
            Err(TapError::new("recording failed"))
        }
    }

    #[tokio::test]
    async fn both_directions_flow_through_their_taps_and_half_close_propagates() {
        let (client_side, mut client) = tokio::io::duplex(64);
        let (upstream_side, mut server) = tokio::io::duplex(64);
        let task = tokio::spawn(async move {
            relay(
                client_side,
                upstream_side,
                &mut PassThrough,
                &mut Upper,
                IDLE,
            )
            .await
        });
        client.write_all(b"ls -l\n").await.expect("write");
        let mut got = [0u8; 6];
        server.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ls -l\n");
        server.write_all(b"total 0\n").await.expect("write");
        server.shutdown().await.expect("shutdown");
        let mut out = Vec::new();
        client.shutdown().await.expect("shutdown");
        client.read_to_end(&mut out).await.expect("read");
        assert_eq!(out, b"TOTAL 0\n");
        let totals = task.await.expect("join").expect("relay");
        assert_eq!(
            totals,
            RelayTotals {
                to_upstream: 6,
                to_client: 8
            }
        );
    }

    #[tokio::test]
    async fn a_tap_error_closes_the_stream() {
        let (client_side, mut client) = tokio::io::duplex(64);
        let (upstream_side, _server) = tokio::io::duplex(64);
        let task = tokio::spawn(async move {
            relay(
                client_side,
                upstream_side,
                &mut Refuse,
                &mut PassThrough,
                IDLE,
            )
            .await
        });
        client.write_all(b"x").await.expect("write");
        let err = task.await.expect("join").expect_err("closed");
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    }

    /// Holds everything until the stream goes idle.
    #[derive(Default)]
    struct Hold(BytesMut);
    impl Tap for Hold {
        fn on_chunk(&mut self, chunk: &mut BytesMut) -> Result<(), TapError> {
            self.0.extend_from_slice(chunk);
            chunk.clear();
            Ok(())
        }
        fn holds(&self) -> bool {
            !self.0.is_empty()
        }
        fn on_idle(&mut self, out: &mut BytesMut) -> Result<(), TapError> {
            out.extend_from_slice(&self.0.split());
            Ok(())
        }
    }

    #[tokio::test]
    async fn held_bytes_come_out_when_the_stream_goes_idle() {
        let (client_side, mut client) = tokio::io::duplex(64);
        let (upstream_side, mut server) = tokio::io::duplex(64);
        let _task = tokio::spawn(async move {
            relay(
                client_side,
                upstream_side,
                &mut PassThrough,
                &mut Hold::default(),
                IDLE,
            )
            .await
        });
        server.write_all(b"hello\n").await.expect("write");
        let started = std::time::Instant::now();
        let mut got = [0u8; 6];
        tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut got))
            .await
            .expect("flushed within the idle period")
            .expect("read");
        assert_eq!(&got, b"hello\n");
        assert!(started.elapsed() >= IDLE);
    }

    #[tokio::test]
    async fn held_bytes_come_out_before_the_half_close() {
        let (client_side, mut client) = tokio::io::duplex(64);
        let (upstream_side, mut server) = tokio::io::duplex(64);
        let task = tokio::spawn(async move {
            relay(
                client_side,
                upstream_side,
                &mut PassThrough,
                &mut Hold::default(),
                Duration::from_secs(3600),
            )
            .await
        });
        server.write_all(b"last words").await.expect("write");
        server.shutdown().await.expect("shutdown");
        let mut out = Vec::new();
        client.shutdown().await.expect("shutdown");
        client.read_to_end(&mut out).await.expect("read");
        assert_eq!(out, b"last words");
        task.await.expect("join").expect("relay");
    }

    #[tokio::test]
    async fn exec_output_is_masked_through_the_relay_and_flushed_when_idle() {
        let detector = crate::mask::builtin_detector().expect("detector");
        let (client_side, mut client) = tokio::io::duplex(4096);
        let (upstream_side, mut server) = tokio::io::duplex(4096);
        let _task = tokio::spawn(async move {
            let mut tap = MaskingTap::websocket(detector);
            relay(client_side, upstream_side, &mut PassThrough, &mut tap, IDLE).await
        });
        // One v5 stdout message: 0x82, length, channel 1, text.
        let text = b"key AKIAIOSFODNN7EXAMPLE\n";
        let mut msg = vec![0x82, (text.len() + 1) as u8, 1];
        msg.extend_from_slice(text);
        server.write_all(&msg).await.expect("write");
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut got))
            .await
            .expect("flushed when idle")
            .expect("read");
        assert_eq!(&got[..3], &msg[..3]);
        assert_eq!(&got[3..], b"key ********************\n");
    }

    #[tokio::test]
    async fn a_masking_failure_tells_a_websocket_client_why_and_closes() {
        let detector = crate::mask::builtin_detector().expect("detector");
        let (client_side, mut client) = tokio::io::duplex(4096);
        let (upstream_side, mut server) = tokio::io::duplex(4096);
        let task = tokio::spawn(async move {
            let mut tap = MaskingTap::websocket(detector);
            relay(client_side, upstream_side, &mut PassThrough, &mut tap, IDLE).await
        });
        // A frame with a reserved bit set (an extension nobody negotiated).
        server.write_all(&[0xc2, 1, 1]).await.expect("write");
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut out))
            .await
            .expect("closed")
            .expect("read");
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("stream closed by Custos"), "{text}");
        assert_eq!(out[0], 0x82, "an error-channel message first");
        let err = task.await.expect("join").expect_err("closed");
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    }
}

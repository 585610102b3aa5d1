//! Upgraded connections (exec, attach, port-forward, cp over SPDY/3.1 or WebSocket), relayed byte for
//! byte between client and apiserver once both sides have switched protocols.
//!
//! The relay is protocol-agnostic: it moves chunks in both directions and hands each chunk to a [`Tap`]
//! first. Taps are where recording and masking plug in (SPDY and WebSocket codecs come with the
//! recording work); the default tap only counts. A tap error closes both sides: nothing flows that a
//! tap could not see.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest chunk read at once; memory per stream direction is bounded by it.
pub const CHUNK: usize = 32 * 1024;

/// A tap refused a chunk; the stream is closed.
#[derive(Debug, thiserror::Error)]
#[error("stream closed by the gateway: {0}")]
pub struct TapError(pub String);

/// Sees every chunk of one direction of an upgraded stream, and may rewrite it in place.
pub trait Tap: Send {
    /// Called with each chunk before it is written to the other side.
    fn on_chunk(&mut self, chunk: &mut BytesMut) -> Result<(), TapError>;
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

/// Byte counts of a finished relay.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayTotals {
    /// Bytes from the client to the apiserver.
    pub to_upstream: u64,
    /// Bytes from the apiserver to the client.
    pub to_client: u64,
}

/// Relays both directions until both have ended; an I/O or tap error on either side ends both.
pub async fn relay<C, U>(
    client: C,
    upstream: U,
    to_upstream: &mut dyn Tap,
    to_client: &mut dyn Tap,
) -> std::io::Result<RelayTotals>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (cr, cw) = tokio::io::split(client);
    let (ur, uw) = tokio::io::split(upstream);
    let up = pump(cr, uw, to_upstream);
    let down = pump(ur, cw, to_client);
    let (to_upstream, to_client) = tokio::try_join!(up, down)?;
    Ok(RelayTotals {
        to_upstream,
        to_client,
    })
}

/// Copies one direction through `tap`; on EOF shuts the writer down so the peer sees the half-close.
async fn pump<R, W>(mut r: R, mut w: W, tap: &mut dyn Tap) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut total = 0u64;
    let mut buf = BytesMut::with_capacity(CHUNK);
    let result = async {
        loop {
            buf.clear();
            buf.reserve(CHUNK);
            let n = (&mut r).take(CHUNK as u64).read_buf(&mut buf).await?;
            if n == 0 {
                w.shutdown().await.ok();
                return Ok(());
            }
            tap.on_chunk(&mut buf)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))?;
            w.write_all(&buf).await?;
            w.flush().await?;
            total += n as u64;
        }
    }
    .await;
    tap.on_close(total);
    result.map(|()| total)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Err(TapError("recording failed".into()))
        }
    }

    #[tokio::test]
    async fn both_directions_flow_through_their_taps_and_half_close_propagates() {
        let (client_side, mut client) = tokio::io::duplex(64);
        let (upstream_side, mut server) = tokio::io::duplex(64);
        let task = tokio::spawn(async move {
            relay(client_side, upstream_side, &mut PassThrough, &mut Upper).await
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
            relay(client_side, upstream_side, &mut Refuse, &mut PassThrough).await
        });
        client.write_all(b"x").await.expect("write");
        let err = task.await.expect("join").expect_err("closed");
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    }
}

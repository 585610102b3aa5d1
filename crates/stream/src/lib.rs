//! Custos stream owns the wire protocols of exec, attach and port-forward once a connection has been
//! upgraded: SPDY/3.1 framing with its zlib-compressed header blocks ([`spdy`]) and the Kubernetes
//! WebSocket channel protocol, `v4`/`v5.channel.k8s.io` ([`ws`]). Both codecs are pure and incremental:
//! bytes in, in any chunking, [`Event`]s out (channel, payload, end of channel), so the masking here and
//! the session recording reuse one parser. Main types: [`spdy::SpdyReader`], [`ws::WsReader`],
//! [`Event`], [`Channel`], [`MaskingTap`], [`UpstreamObserver`].
//!
//! The [`MaskingTap`] rewrites the apiserver→client direction of exec/attach: stdout and stderr payloads
//! go through a length-preserving [`custos_mask::TextMasker`] per channel and are re-framed. It must never
//! let terminal output out unmasked: whatever it cannot parse is an error (the caller closes the
//! stream), never passed on; memory stays bounded by the largest control frame and the maskers' tails.
#![deny(missing_docs)]

mod error;
mod event;
pub mod spdy;
mod tap;
#[cfg(test)]
mod testutil;
pub mod ws;

pub use error::StreamError;
pub use event::{Channel, ControlKind, Event, Sink};
pub use tap::{wire, MaskingTap, UpstreamObserver, Wire};

//! What the codecs report: one [`Event`] per thing a connection carried, in wire order.

use crate::StreamError;

/// What a channel carries: the SPDY stream's `streamType` header, or the WebSocket channel byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The terminal's input (client → container).
    Stdin,
    /// The container's standard output.
    Stdout,
    /// The container's standard error.
    Stderr,
    /// The exit status (a `Status` object in JSON) or an error message.
    Error,
    /// Terminal size changes (JSON `{"Width":…,"Height":…}`, client → container).
    Resize,
    /// port-forward payload for a port (SPDY `streamType: data` with its `port` header; 0 when absent).
    PortData(u16),
    /// port-forward errors for a port.
    PortError(u16),
    /// A stream or channel of a type Custos does not know; masked like terminal output.
    Unknown,
}

impl Channel {
    /// The channel of a WebSocket message's first byte (`v4`/`v5.channel.k8s.io`).
    pub fn from_ws(byte: u8) -> Channel {
        match byte {
            0 => Channel::Stdin,
            1 => Channel::Stdout,
            2 => Channel::Stderr,
            3 => Channel::Error,
            4 => Channel::Resize,
            _ => Channel::Unknown,
        }
    }

    /// The channel a SPDY stream carries, from its `streamType` and `port` headers.
    pub fn from_stream_type(stream_type: Option<&[u8]>, port: Option<&[u8]>) -> Channel {
        let parsed = || {
            port.and_then(|p| std::str::from_utf8(p).ok())
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(0)
        };
        match stream_type.map(|t| t.to_ascii_lowercase()).as_deref() {
            Some(b"stdin") => Channel::Stdin,
            Some(b"stdout") => Channel::Stdout,
            Some(b"stderr") => Channel::Stderr,
            Some(b"resize") => Channel::Resize,
            Some(b"data") => Channel::PortData(parsed()),
            Some(b"error") if port.is_some() => Channel::PortError(parsed()),
            Some(b"error") => Channel::Error,
            _ => Channel::Unknown,
        }
    }

    /// Whether terminal masking applies: stdout, stderr, and (failing closed) channels of unknown type.
    pub fn is_masked(self) -> bool {
        matches!(self, Channel::Stdout | Channel::Stderr | Channel::Unknown)
    }
}

/// The kind of a frame that carries no channel payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// SPDY SYN_REPLY.
    SynReply,
    /// SPDY SETTINGS.
    Settings,
    /// SPDY PING or WebSocket ping.
    Ping,
    /// WebSocket pong.
    Pong,
    /// SPDY GOAWAY or WebSocket close: the connection ends.
    GoAway,
    /// SPDY HEADERS.
    Headers,
    /// SPDY WINDOW_UPDATE.
    WindowUpdate,
    /// A SPDY control frame of another type (passed on as is).
    Other(u16),
    /// A WebSocket text message (not used by the binary channel protocols; passed on as is).
    Text,
    /// A WebSocket binary message with no channel byte.
    Empty,
}

/// One thing a direction of a connection carried, in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A SPDY stream was opened (SYN_STREAM) for `channel`; `fin` when it is opened half-closed.
    Open {
        /// The stream id.
        stream: u32,
        /// What the stream carries.
        channel: Channel,
        /// The sender will send nothing on it.
        fin: bool,
        /// The frame as received.
        raw: &'a [u8],
    },
    /// Payload on a channel, unmasked (WebSocket client frames are XOR-unmasked). A frame split across
    /// chunks arrives in several pieces; `fin` marks the sender's last bytes on the channel (SPDY FIN).
    Data {
        /// SPDY stream id, or the WebSocket channel byte.
        stream: u32,
        /// What the stream carries.
        channel: Channel,
        /// The payload piece (never the WebSocket channel byte).
        bytes: &'a [u8],
        /// The sender closed the channel after these bytes.
        fin: bool,
    },
    /// The sender closed a WebSocket channel (`v5.channel.k8s.io` close signal `[255, channel]`).
    Close {
        /// The channel byte.
        stream: u32,
        /// What the channel carries.
        channel: Channel,
    },
    /// A SPDY stream was reset (RST_STREAM) with a status code.
    Reset {
        /// The stream id.
        stream: u32,
        /// The RST_STREAM status code.
        status: u32,
        /// The frame as received.
        raw: &'a [u8],
    },
    /// A frame carrying no channel payload, to be passed on as is.
    Control {
        /// What it is.
        kind: ControlKind,
        /// The frame as received (an empty WebSocket message: its unmasked encoding).
        raw: &'a [u8],
    },
}

/// Receives a codec's events; an error stops parsing and is returned by the codec.
pub type Sink<'s> = dyn FnMut(Event<'_>) -> Result<(), StreamError> + 's;

//! Why a stream cannot be parsed (or masked); any of these closes the stream.

/// A frame or header block that cannot be parsed, or a protocol Custos does not relay masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// A SPDY control frame of another protocol version than 3.
    #[error("SPDY control frame of version {0}, expected 3")]
    SpdyVersion(u16),
    /// A frame longer than Custos accepts for its kind.
    #[error("{kind} of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// What was too large.
        kind: &'static str,
        /// Its announced length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A frame whose structure is wrong.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A SPDY header block that does not inflate with the connection's zlib stream.
    #[error("SPDY header block does not inflate: {0}")]
    Inflate(String),
    /// More SPDY streams open at once than Custos tracks.
    #[error("more than {0} SPDY streams open at once")]
    TooManyStreams(usize),
    /// A WebSocket frame masked when it must not be, or the reverse (RFC 6455 §5.1).
    #[error("WebSocket frame from the {0} with the wrong masking")]
    WsMasking(&'static str),
    /// A WebSocket frame with reserved bits set (an extension Custos did not negotiate).
    #[error("WebSocket frame with reserved bits {0:#x} set")]
    WsReserved(u8),
    /// A WebSocket frame with an opcode RFC 6455 does not define.
    #[error("WebSocket frame with unknown opcode {0:#x}")]
    WsOpcode(u8),
    /// A protocol Custos cannot mask (it refuses to relay it rather than pass output unmasked).
    #[error("{0}")]
    Unsupported(String),
}

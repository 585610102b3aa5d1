//! Request path validation: Custos must classify exactly the path the apiserver will route.
//!
//! # Decoding policy
//!
//! Go's `net/http` percent-decodes the request path once (`r.URL.Path`) before the apiserver splits it
//! on `/`, so `/api/v1/namespaces/%64efault/pods` is routed as namespace `default`. Custos therefore:
//!
//! * classifies the **decoded** path, which [`validate_path`] returns, and
//! * forwards the **original bytes** unchanged, which the apiserver decodes to the same string, because
//!   percent-decoding is a function of the bytes and nothing between here and there re-encodes them.
//!
//! For that to be safe no escape may change the path's *structure*. A path is refused when
//! it:
//!
//! * is not absolute, or is longer than [`MAX_PATH_LEN`] bytes;
//! * holds a raw byte outside RFC 3986 `pchar` and `/` (so no raw non-ASCII, space, `\`, `?`, `#`,
//!   control character);
//! * holds a malformed escape, or an escape of `/` or `\` (one segment would become two on some hop),
//!   of `%` (a second decoding anywhere downstream would see a different path), or of a control
//!   character (C0, DEL or C1);
//! * decodes to bytes that are not UTF-8;
//! * has an empty segment (`//`) or a `.` or `..` segment, raw or encoded. The apiserver does not
//!   clean paths (it is not behind `http.ServeMux`), so `a/../b` would be classified one way and
//!   possibly resolved another by a proxy in between; no client we serve sends them.
//!
//! A single trailing `/` is accepted: the apiserver trims it before splitting, and so do we.

use std::borrow::Cow;

/// The longest request path Custos accepts, in bytes of the raw (still encoded) path.
pub const MAX_PATH_LEN: usize = 4096;

/// Why a request target was refused; each message is written for the person running kubectl.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("request path must be absolute (start with '/')")]
    NotAbsolute,
    /// The path is longer than [`MAX_PATH_LEN`].
    #[error("request path is {len} bytes long; at most {max} bytes are accepted")]
    TooLong {
        /// Length of the refused path in bytes.
        len: usize,
        /// The limit, [`MAX_PATH_LEN`].
        max: usize,
    },
    /// A raw control character (below 0x20, or DEL).
    #[error("request path contains a control character at byte {offset}")]
    ControlCharacter {
        /// Byte offset in the raw path.
        offset: usize,
    },
    /// A raw byte of 0x80 or above; clients must percent-encode it.
    #[error(
        "request path contains a raw non-ASCII byte at byte {offset}; it must be percent-encoded"
    )]
    NonAscii {
        /// Byte offset in the raw path.
        offset: usize,
    },
    /// A raw ASCII character that is not allowed unencoded in a path.
    #[error("request path contains {character:?} at byte {offset}, which is not allowed unencoded in a path")]
    InvalidCharacter {
        /// The refused character.
        character: char,
        /// Byte offset in the raw path.
        offset: usize,
    },
    /// A `%` not followed by two hex digits.
    #[error("request path has a malformed percent-escape at byte {offset}: '%' must be followed by two hex digits")]
    InvalidPercentEncoding {
        /// Byte offset of the `%` in the raw path.
        offset: usize,
    },
    /// An escaped `/` or `\` (`%2F`, `%5C`), which would split or join segments differently on some hop.
    #[error("request path contains the encoded separator {escape} at byte {offset}; encoded '/' and '\\' are refused")]
    EncodedSeparator {
        /// The escape as written, e.g. `%2f`.
        escape: String,
        /// Byte offset of the `%` in the raw path.
        offset: usize,
    },
    /// An escaped `%` (`%25`): a double-encoded path means something else to anything that decodes twice.
    #[error("request path contains an encoded '%' (%25) at byte {offset}; double-encoded paths are refused")]
    EncodedPercent {
        /// Byte offset of the `%` in the raw path.
        offset: usize,
    },
    /// An escape that decodes to a control character (C0, DEL or C1).
    #[error("request path contains an encoded control character at byte {offset}")]
    EncodedControl {
        /// Byte offset of the escape in the raw path.
        offset: usize,
    },
    /// The percent-escapes decode to bytes that are not UTF-8.
    #[error("request path does not decode to valid UTF-8")]
    NotUtf8,
    /// An empty segment (`//`).
    #[error("request path contains an empty segment ('//')")]
    EmptySegment,
    /// A `.` or `..` segment, raw or percent-encoded.
    #[error("request path contains a '.' or '..' segment (possibly percent-encoded); send the normalised path")]
    DotSegment,
    /// The query string contains a control character.
    #[error("query string contains a control character at byte {offset}")]
    QueryControlCharacter {
        /// Byte offset in the raw query.
        offset: usize,
    },
    /// The query string has more parameters than Custos will read.
    #[error("query string has more than {max} parameters")]
    TooManyQueryParameters {
        /// The limit, [`crate::request::MAX_QUERY_PARAMS`].
        max: usize,
    },
    /// A query parameter Custos interprets does not decode to UTF-8.
    #[error("query parameter {parameter} does not decode to valid UTF-8")]
    QueryNotUtf8 {
        /// The parameter, e.g. `fieldSelector`.
        parameter: &'static str,
    },
    /// A path such as `/api/v1/watch` names a verb but no resource; the apiserver fails these too.
    #[error("unable to determine kind and namespace from the path: nothing follows '{verb}'")]
    MissingResourceAfterVerb {
        /// The verb segment, `watch` or `proxy`.
        verb: &'static str,
    },
}

/// Validates a raw request path (no query) and returns it percent-decoded, as the apiserver will see it.
pub fn validate_path(raw_path: &str) -> Result<Cow<'_, str>, PathError> {
    let raw = raw_path.as_bytes();
    if raw.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong {
            len: raw.len(),
            max: MAX_PATH_LEN,
        });
    }
    if raw.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded = decode(raw)?;
    check_segments(&decoded)?;
    if decoded.len() == raw.len() {
        // Nothing was escaped, so the decoded bytes are the input.
        Ok(Cow::Borrowed(raw_path))
    } else {
        Ok(Cow::Owned(decoded))
    }
}

/// Decodes every escape once, refusing the bytes and escapes the module docs list.
fn decode(raw: &[u8]) -> Result<String, PathError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut offset = 0;
    while let Some(&byte) = raw.get(offset) {
        if byte == b'%' {
            let value = escape_at(raw, offset)?;
            check_escape(raw, offset, value)?;
            out.push(value);
            offset += 3;
            continue;
        }
        check_raw_byte(byte, offset)?;
        out.push(byte);
        offset += 1;
    }
    String::from_utf8(out).map_err(|_| PathError::NotUtf8)
}

/// The byte encoded by the escape starting at `offset`.
fn escape_at(raw: &[u8], offset: usize) -> Result<u8, PathError> {
    let hex = |i: usize| raw.get(offset + i).and_then(|b| (*b as char).to_digit(16));
    match (hex(1), hex(2)) {
        // Two hex digits always fit a byte.
        (Some(high), Some(low)) => Ok((high * 16 + low) as u8),
        _ => Err(PathError::InvalidPercentEncoding { offset }),
    }
}

fn check_escape(raw: &[u8], offset: usize, value: u8) -> Result<(), PathError> {
    match value {
        b'/' | b'\\' => Err(PathError::EncodedSeparator {
            escape: raw
                .get(offset..offset + 3)
                .map(|e| String::from_utf8_lossy(e).into_owned())
                .unwrap_or_default(),
            offset,
        }),
        b'%' => Err(PathError::EncodedPercent { offset }),
        0x00..=0x1f | 0x7f => Err(PathError::EncodedControl { offset }),
        // C1 controls are U+0080..U+009F: UTF-8 C2 80..C2 9F. Raw non-ASCII is refused, so
        // they can only arrive as two escapes in a row.
        0xc2 if raw.get(offset + 3) == Some(&b'%') => match escape_at(raw, offset + 3) {
            Ok(0x80..=0x9f) => Err(PathError::EncodedControl { offset }),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

fn check_raw_byte(byte: u8, offset: usize) -> Result<(), PathError> {
    match byte {
        0x00..=0x1f | 0x7f => Err(PathError::ControlCharacter { offset }),
        0x80..=0xff => Err(PathError::NonAscii { offset }),
        b'/' => Ok(()),
        b if is_pchar(b) => Ok(()),
        b => Err(PathError::InvalidCharacter {
            character: b as char,
            offset,
        }),
    }
}

/// RFC 3986 `pchar` without `pct-encoded`: unreserved, sub-delims, `:` and `@`.
fn is_pchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

/// Refuses `//`, `.` and `..` segments; `decoded` starts with `/`, which [`validate_path`] checked.
fn check_segments(decoded: &str) -> Result<(), PathError> {
    let mut segments = decoded.split('/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        let is_last = segments.peek().is_none();
        match segment {
            // `/` alone, or a single trailing slash, which the apiserver trims.
            "" if is_last => {}
            "" => return Err(PathError::EmptySegment),
            "." | ".." => return Err(PathError::DotSegment),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

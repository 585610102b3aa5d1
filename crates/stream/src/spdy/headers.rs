//! SPDY/3 header blocks: a count, then length-prefixed names and values, deflated with the SPDY/3
//! dictionary. Each direction of a connection is ONE zlib stream (sync-flushed after every block), so
//! every block must be inflated, in order, from the first, even when its headers do not matter.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::DICTIONARY;
use crate::StreamError;

/// Largest inflated header block accepted (a compression bomb is an error, not an allocation).
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;

/// One header: a name (lowercase on the wire) and its value (several values are NUL-separated).
pub type Header = (Vec<u8>, Vec<u8>);

/// Inflates the header blocks of one direction of a connection.
pub struct HeaderInflater {
    z: Decompress,
    out: Vec<u8>,
}

impl std::fmt::Debug for HeaderInflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderInflater")
            .field("total_in", &self.z.total_in())
            .finish()
    }
}

impl Default for HeaderInflater {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderInflater {
    /// An inflater at the start of a connection.
    pub fn new() -> Self {
        Self {
            z: Decompress::new(true),
            out: Vec::new(),
        }
    }

    /// Inflates the next compressed header block of the connection and parses its headers.
    pub fn inflate(&mut self, mut block: &[u8]) -> Result<Vec<Header>, StreamError> {
        self.out.clear();
        let mut dictionary_set = false;
        loop {
            if self.out.len() > MAX_HEADER_BLOCK {
                return Err(StreamError::TooLarge {
                    kind: "inflated SPDY header block",
                    len: self.out.len() as u64,
                    max: MAX_HEADER_BLOCK as u64,
                });
            }
            self.out.reserve(4096);
            let (in0, out0) = (self.z.total_in(), self.z.total_out());
            let result = self
                .z
                .decompress_vec(block, &mut self.out, FlushDecompress::Sync);
            let consumed = (self.z.total_in() - in0) as usize;
            let produced = self.z.total_out() - out0;
            block = block.get(consumed..).unwrap_or_default();
            match result {
                Err(e) if e.needs_dictionary().is_some() && !dictionary_set => {
                    self.z
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| StreamError::Inflate(e.to_string()))?;
                    dictionary_set = true;
                }
                Err(e) => return Err(StreamError::Inflate(e.to_string())),
                Ok(Status::StreamEnd) => {
                    return Err(StreamError::Inflate("the zlib stream ended".into()))
                }
                Ok(_) if block.is_empty() && produced == 0 => break,
                Ok(_) if consumed == 0 && produced == 0 => {
                    return Err(StreamError::Inflate("inflate made no progress".into()))
                }
                Ok(_) => {}
            }
        }
        parse_block(&self.out)
    }
}

/// Parses an inflated name/value block.
pub fn parse_block(mut b: &[u8]) -> Result<Vec<Header>, StreamError> {
    let count = take_u32(&mut b)? as usize;
    // Every header takes at least 8 bytes: a count beyond that is a lie, not a reason to allocate.
    if count > b.len() / 8 {
        return Err(StreamError::Malformed("SPDY header block count"));
    }
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let name = take_bytes(&mut b)?;
        let value = take_bytes(&mut b)?;
        headers.push((name.to_ascii_lowercase(), value.to_vec()));
    }
    if !b.is_empty() {
        return Err(StreamError::Malformed("SPDY header block trailing bytes"));
    }
    Ok(headers)
}

/// The value of header `name` (compared ignoring ASCII case), as the Go side reads it: SPDY packs
/// several values of one name into one, separated by NUL, and Go's `Header.Get` (which the kubelet
/// and the apiserver use) returns the first — so `streamtype: "data\0x"` is a `data` stream there,
/// and must be one here too.
pub fn get<'h>(headers: &'h [Header], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v.split(|&b| b == 0).next().unwrap_or_default())
}

fn take_u32(b: &mut &[u8]) -> Result<u32, StreamError> {
    let Some((head, rest)) = b.split_first_chunk::<4>() else {
        return Err(StreamError::Malformed("SPDY header block (truncated)"));
    };
    *b = rest;
    Ok(u32::from_be_bytes(*head))
}

fn take_bytes<'a>(b: &mut &'a [u8]) -> Result<&'a [u8], StreamError> {
    let len = take_u32(b)? as usize;
    if len > b.len() {
        return Err(StreamError::Malformed("SPDY header block (truncated)"));
    }
    let (v, rest) = b.split_at(len);
    *b = rest;
    Ok(v)
}

/// Deflates header blocks as a SPDY sender does (one zlib stream per direction, SPDY/3 dictionary);
/// for tests, fuzzing and replay.
pub struct HeaderDeflater {
    z: Compress,
}

impl std::fmt::Debug for HeaderDeflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderDeflater").finish_non_exhaustive()
    }
}

impl HeaderDeflater {
    /// A deflater at the start of a connection.
    pub fn new() -> Result<Self, StreamError> {
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(DICTIONARY)
            .map_err(|e| StreamError::Inflate(e.to_string()))?;
        Ok(Self { z })
    }

    /// The next compressed header block carrying `headers`.
    pub fn deflate(&mut self, headers: &[(&str, &str)]) -> Result<Vec<u8>, StreamError> {
        let mut plain = Vec::new();
        plain.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (n, v) in headers {
            for s in [n.as_bytes(), v.as_bytes()] {
                plain.extend_from_slice(&(s.len() as u32).to_be_bytes());
                plain.extend_from_slice(s);
            }
        }
        let mut out = Vec::with_capacity(plain.len() + 64);
        let mut input = &plain[..];
        loop {
            out.reserve(256);
            let before = self.z.total_in();
            self.z
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| StreamError::Inflate(e.to_string()))?;
            input = &input[(self.z.total_in() - before) as usize..];
            // A sync flush is complete once the input is taken and the output did not fill up.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

//! The compact JWS codec: bytes in, header and claims out. No keys, no clocks, no I/O.
//!
//! Parsing is deliberately strict because everything here is attacker-controlled and unverified: a
//! bounded size, exactly three base64url parts, JSON objects for header and payload, a string `alg`,
//! and no `crit` extensions (RFC 7515 §4.1.11: a verifier must refuse critical extensions it does not
//! understand, and we understand none).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::AuthnError;

/// The largest bearer token accepted, in bytes (16 KiB; the apiserver's header limit is larger, but
/// real ID tokens are a few KiB and parsing cost should stay bounded).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The JOSE header fields we look at.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JoseHeader {
    /// The signature algorithm, exactly as sent.
    pub alg: String,
    /// The key id, when present.
    #[serde(default)]
    pub kid: Option<String>,
    /// Critical extensions; any value at all makes the token unacceptable.
    #[serde(default)]
    pub crit: Option<Value>,
}

/// A parsed but unverified token.
#[derive(Debug)]
pub(crate) struct UnverifiedToken<'a> {
    /// The decoded header.
    pub header: JoseHeader,
    /// The decoded payload.
    pub claims: Map<String, Value>,
    /// `base64(header) "." base64(payload)`: the bytes the signature covers.
    pub signing_input: &'a str,
    /// The base64url signature part.
    pub signature: &'a str,
}

/// Splits and decodes a compact JWS without verifying anything.
pub(crate) fn parse(token: &str) -> Result<UnverifiedToken<'_>, AuthnError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthnError::TokenTooLarge {
            len: token.len(),
            max: MAX_TOKEN_BYTES,
        });
    }
    let (signing_input, signature) = token.rsplit_once('.').ok_or(AuthnError::MalformedToken(
        "not a JWT (expected three dot-separated parts)",
    ))?;
    let (header_b64, payload_b64) =
        signing_input
            .split_once('.')
            .ok_or(AuthnError::MalformedToken(
                "not a JWT (expected three dot-separated parts)",
            ))?;
    if payload_b64.contains('.') {
        return Err(AuthnError::MalformedToken(
            "not a JWT (expected three dot-separated parts)",
        ));
    }
    let header_json = decode_part(header_b64, "header is not base64url")?;
    // Via a map first: serde would also accept a JSON array as the struct's fields in order.
    let header: JoseHeader = serde_json::from_slice::<Map<String, Value>>(&header_json)
        .and_then(|object| serde_json::from_value(Value::Object(object)))
        .map_err(|_| AuthnError::MalformedToken("header is not a JSON object with a string alg"))?;
    if header.crit.is_some() {
        return Err(AuthnError::MalformedToken(
            "header has critical extensions (crit)",
        ));
    }
    let payload = decode_part(payload_b64, "payload is not base64url")?;
    let claims: Map<String, Value> = serde_json::from_slice(&payload)
        .map_err(|_| AuthnError::MalformedToken("payload is not a JSON object"))?;
    // An empty signature is left for the verifier to refuse: `alg: none` then gets the clearer
    // "algorithm not allowed" error.
    if !is_base64url(signature) {
        return Err(AuthnError::MalformedToken("signature is not base64url"));
    }
    Ok(UnverifiedToken {
        header,
        claims,
        signing_input,
        signature,
    })
}

fn decode_part(part: &str, reason: &'static str) -> Result<Vec<u8>, AuthnError> {
    if part.is_empty() || !is_base64url(part) {
        return Err(AuthnError::MalformedToken(reason));
    }
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthnError::MalformedToken(reason))
}

fn is_base64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Makes attacker-supplied text fit for an error message: at most `max_chars` characters, control
/// characters replaced (no log or header injection through a crafted `iss`).
pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;

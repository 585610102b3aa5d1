//! RFC 8785 JSON Canonicalization Scheme (JCS): one byte string per JSON value, so that a record's leaf
//! hash depends on what it says and not on how a serializer happened to lay it out.
//!
//! - Object members are sorted by their keys' UTF-16 code units (not by UTF-8 bytes, not by locale).
//! - No whitespace anywhere.
//! - Strings are written as ECMAScript's `JSON.stringify` writes them: `"` and `\` escaped, U+0008,
//!   U+0009, U+000A, U+000C, U+000D as `\b \t \n \f \r`, other code points below U+0020 as `\u00xx`
//!   (lowercase hex), everything else (including U+007F and U+2028) as literal UTF-8.
//! - Numbers: **integers only**. Records hold no floats, so this encoder accepts integers within
//!   ±(2^53 − 1) (I-JSON's exact range, where ECMAScript prints every integer as plain digits) and
//!   refuses every other number with [`CanonicalError::Number`]. A float with an integral value in that
//!   range (`56.0`) is written as the integer (`56`), exactly as ECMAScript would. This is a strict
//!   subset of RFC 8785: every output is valid JCS, and a value outside the subset is an error, never
//!   a different encoding.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Number, Value};

/// Why a value has no canonical encoding here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// The value could not be turned into JSON, or the bytes are not JSON.
    #[error("not JSON: {0}")]
    Json(String),
    /// A number that is not an integer within ±(2^53 − 1); `path` is a JSON pointer to it.
    #[error(
        "number at {path} is not an integer within ±(2^53-1) (records hold no floats): {number}"
    )]
    Number {
        /// JSON pointer (RFC 6901) to the number.
        path: String,
        /// The number as serde_json printed it.
        number: String,
    },
    /// The bytes are JSON but not in canonical form (key order, whitespace, escapes or number spelling).
    #[error("JSON is not in RFC 8785 canonical form (first difference at byte {offset})")]
    NotCanonical {
        /// The first byte at which the input differs from its canonical form.
        offset: usize,
    },
}

/// The largest integer every JSON implementation reads exactly (I-JSON, RFC 7493 §2.2).
const MAX_SAFE: u64 = (1 << 53) - 1;

/// Canonical bytes of any serializable value.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let value = serde_json::to_value(value).map_err(|e| CanonicalError::Json(e.to_string()))?;
    from_value(&value)
}

/// Canonical bytes of a JSON value.
pub fn from_value(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = String::new();
    let mut path = Vec::new();
    write_value(&mut out, value, &mut path)?;
    Ok(out.into_bytes())
}

/// Parses JSON text and returns its canonical bytes.
pub fn canonicalize(json: &[u8]) -> Result<Vec<u8>, CanonicalError> {
    let value: Value =
        serde_json::from_slice(json).map_err(|e| CanonicalError::Json(e.to_string()))?;
    from_value(&value)
}

/// Checks that `bytes` are already canonical (a leaf read back from a store or a bundle). Duplicate
/// keys, whitespace, other key orders or escapes all fail.
pub fn check(bytes: &[u8]) -> Result<(), CanonicalError> {
    let canonical = canonicalize(bytes)?;
    if canonical == bytes {
        return Ok(());
    }
    let offset = canonical.iter().zip(bytes).position(|(a, b)| a != b);
    Err(CanonicalError::NotCanonical {
        offset: offset.unwrap_or(canonical.len().min(bytes.len())),
    })
}

fn write_value(
    out: &mut String,
    value: &Value,
    path: &mut Vec<String>,
) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n, path)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                path.push(i.to_string());
                write_value(out, item, path)?;
                path.pop();
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map, path)?,
    }
    Ok(())
}

fn write_object(
    out: &mut String,
    map: &Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<(), CanonicalError> {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    // RFC 8785 §3.2.3: compare keys as arrays of UTF-16 code units.
    members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    out.push('{');
    for (i, (key, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        path.push(key.replace('~', "~0").replace('/', "~1"));
        write_value(out, value, path)?;
        path.pop();
    }
    out.push('}');
    Ok(())
}

fn write_number(out: &mut String, n: &Number, path: &[String]) -> Result<(), CanonicalError> {
    let refuse = || CanonicalError::Number {
        path: pointer(path),
        number: n.to_string(),
    };
    if let Some(u) = n.as_u64() {
        if u > MAX_SAFE {
            return Err(refuse());
        }
        let _ = write!(out, "{u}");
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE {
            return Err(refuse());
        }
        let _ = write!(out, "{i}");
    } else {
        let f = n.as_f64().ok_or_else(refuse)?;
        // Integral and exactly representable: ECMAScript prints it as plain digits, and so do we.
        if !f.is_finite() || f.fract() != 0.0 || f.abs() > MAX_SAFE as f64 {
            return Err(refuse());
        }
        let _ = write!(out, "{}", f as i64);
    }
    Ok(())
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn pointer(path: &[String]) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.iter().fold(String::new(), |mut acc, seg| {
        acc.push('/');
        acc.push_str(seg);
        acc
    })
}

#[cfg(test)]
mod tests;

//! The query string as the apiserver reads it: Go's `url.ParseQuery`, then the `ListOptions` decoding
//! `NewRequestInfo` runs to tell list from watch and to find a `metadata.name` field selector.

use super::selector::{field_selector_exact_name, is_go_int64, is_valid_label_selector};
use super::MAX_QUERY_PARAMS;
use crate::PathError;

/// Decoded `key=value` pairs in order, as Go's `url.Values` holds them (first value wins).
pub(super) struct Query {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What the apiserver learns from `ListOptions` on a request without a name in its path.
pub(super) struct ListOptions {
    /// `?watch=` asked for a watch.
    pub(super) watch: bool,
    /// The value of a `metadata.name=` (or `==`) field selector term, if any.
    pub(super) exact_name: Option<String>,
}

impl Query {
    /// Parses a raw query like Go's `url.ParseQuery`: pairs split on `&`, a pair holding `;` or a bad
    /// escape is skipped, `+` is a space. Control characters are refused (Go's server refuses them
    /// with 400), and so are queries with more than [`MAX_QUERY_PARAMS`] pairs: recent Go releases
    /// drop *every* parameter once there are more than 10000 (`urlmaxqueryparams`), older ones
    /// keep them all, and Custos must agree with whichever Go the apiserver was built with.
    pub(super) fn parse(raw: &str) -> Result<Self, PathError> {
        if let Some(offset) = raw.bytes().position(|b| b < 0x20 || b == 0x7f) {
            return Err(PathError::QueryControlCharacter { offset });
        }
        if raw.bytes().filter(|b| *b == b'&').count() >= MAX_QUERY_PARAMS {
            return Err(PathError::TooManyQueryParameters {
                max: MAX_QUERY_PARAMS,
            });
        }
        let pairs = raw
            .split('&')
            .filter(|pair| !pair.is_empty() && !pair.contains(';'))
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                Some((unescape(key)?, unescape(value)?))
            })
            .collect();
        Ok(Self { pairs })
    }

    /// The first value of `key`, as `url.Values.Get` returns it.
    fn first(&self, key: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `key` as text; Custos refuses a value it interprets but cannot represent.
    pub(super) fn first_str(&self, key: &'static str) -> Result<Option<&str>, PathError> {
        self.first(key)
            .map(|v| std::str::from_utf8(v).map_err(|_| PathError::QueryNotUtf8 { parameter: key }))
            .transpose()
    }

    /// Mirrors the `ListOptions` decoding in `NewRequestInfo`, including its fallback: when any
    /// option fails to decode, only `watch` is read again (with a slightly different rule) and the
    /// field selector is ignored.
    pub(super) fn list_options(&self) -> Result<ListOptions, PathError> {
        let field_selector = self.first_str("fieldSelector")?;
        let label_selector = self.first_str("labelSelector")?;
        let exact_name = field_selector.map(field_selector_exact_name).transpose();
        let decoded = match exact_name {
            Ok(name)
                if self.first("timeoutSeconds").is_none_or(is_go_int64)
                    && self.first("limit").is_none_or(is_go_int64)
                    && label_selector.is_none_or(is_valid_label_selector) =>
            {
                Some(name.flatten())
            }
            _ => None,
        };
        let watch = self.first("watch");
        Ok(match decoded {
            Some(exact_name) => ListOptions {
                watch: watch.is_some_and(|v| !is_false_by_conversion(v)),
                exact_name,
            },
            None => ListOptions {
                watch: watch.is_some_and(|v| !is_false_by_fallback(v)),
                exact_name: None,
            },
        })
    }
}

/// Go's `url.QueryUnescape`: `None` when any `%` lacks two hex digits; `+` becomes a space.
fn unescape(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'%' => {
                let hex = |j: usize| bytes.get(i + j).and_then(|b| (*b as char).to_digit(16));
                // Two hex digits always fit a byte.
                out.push((hex(1)? * 16 + hex(2)?) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Some(out)
}

/// `Convert_Slice_string_To_bool`: false only for `0` and `strings.EqualFold(v, "false")`.
/// Unicode case folding makes `ſ` (U+017F, long s) equal to `s`, so `falſe` is false too.
fn is_false_by_conversion(value: &[u8]) -> bool {
    if value == b"0" {
        return true;
    }
    let mut rest = value;
    for expected in *b"false" {
        rest = match rest {
            [b, tail @ ..] if b.eq_ignore_ascii_case(&expected) => tail,
            [0xc5, 0xbf, tail @ ..] if expected == b's' => tail,
            _ => return false,
        };
    }
    rest.is_empty()
}

/// The fallback after a decoding error: `strings.ToLower(v)` is `false` or `0`. No non-ASCII rune
/// lowercases to any of `f a l s e`, so this is an ASCII comparison: `falſe` counts as true here.
fn is_false_by_fallback(value: &[u8]) -> bool {
    value == b"0" || value.eq_ignore_ascii_case(b"false")
}

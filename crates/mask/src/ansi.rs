//! ANSI escape sequences are skipped for matching: the detectors see the text without them, findings
//! map back to the original offsets, and the escapes themselves are kept (colours survive masking).
//! The raw bytes are matched as well (see `text`), so what an escape swallows is not a hiding place;
//! masking then spares the escapes' own syntax (ESC, CSI parameters, an OSC's introducer and
//! terminator) but not an OSC string's payload (a title, a hyperlink target).

const ESC: u8 = 0x1b;
/// An escape sequence longer than this ends here (bounded work on hostile input).
const MAX_ESCAPE: usize = 256;

/// The input without its escape sequences, where each remaining byte came from, and the escapes'
/// syntax (ranges of original offsets, in order) that masking must not touch.
pub(crate) struct AnsiView {
    pub text: Vec<u8>,
    pub map: Vec<usize>,
    syntax: Vec<(usize, usize)>,
}

impl AnsiView {
    /// `None` when `buf` holds no ESC byte (the common case: match on `buf` itself).
    pub fn new(buf: &[u8]) -> Option<Self> {
        if !buf.contains(&ESC) {
            return None;
        }
        let mut text = Vec::with_capacity(buf.len());
        let mut map = Vec::with_capacity(buf.len());
        let mut syntax = Vec::new();
        let mut i = 0;
        while i < buf.len() {
            if buf[i] == ESC {
                let (len, payload) = escape_len(&buf[i..]);
                match payload {
                    Some((s, e)) => {
                        syntax.push((i, i + s));
                        syntax.push((i + e, i + len));
                    }
                    None => syntax.push((i, i + len)),
                }
                i += len;
                continue;
            }
            text.push(buf[i]);
            map.push(i);
            i += 1;
        }
        syntax.retain(|&(s, e)| s < e);
        Some(Self { text, map, syntax })
    }

    /// Original range `start..end` without the escapes' syntax, as runs.
    pub fn maskable(&self, start: usize, end: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut at = start;
        let first = self.syntax.partition_point(|&(_, e)| e <= start);
        for &(s, e) in &self.syntax[first..] {
            if s >= end {
                break;
            }
            if s > at {
                out.push((at, s));
            }
            at = at.max(e);
        }
        if at < end {
            out.push((at, end));
        }
        out
    }

    /// The original offset of view offset `i`; one past the view maps to `orig_len`.
    pub fn orig(&self, i: usize, orig_len: usize) -> usize {
        self.map.get(i).copied().unwrap_or(orig_len)
    }

    /// The original offset just past view byte `i - 1`: where a view range ending at `i` ends.
    pub fn orig_end(&self, i: usize) -> usize {
        i.checked_sub(1)
            .and_then(|j| self.map.get(j))
            .map_or(0, |&o| o + 1)
    }
}

/// Length of the escape sequence at the start of `s` (`s[0]` is ESC), at least 1, and where an OSC
/// string's payload lies in it.
fn escape_len(s: &[u8]) -> (usize, Option<(usize, usize)>) {
    let limit = s.len().min(MAX_ESCAPE);
    match s.get(1) {
        None => (1, None),
        // CSI: parameter and intermediate bytes, then a final byte.
        Some(b'[') => {
            for (j, &b) in s.iter().enumerate().take(limit).skip(2) {
                if (0x40..=0x7e).contains(&b) {
                    return (j + 1, None);
                }
                if !(0x20..=0x3f).contains(&b) {
                    return (j, None);
                }
            }
            (limit, None)
        }
        // OSC: up to BEL or ESC '\'.
        Some(b']') => {
            for (j, &b) in s.iter().enumerate().take(limit).skip(2) {
                if b == 0x07 {
                    return (j + 1, Some((2, j)));
                }
                if b == ESC {
                    let end = if s.get(j + 1) == Some(&b'\\') {
                        j + 2
                    } else {
                        j
                    };
                    return (end, Some((2, j)));
                }
            }
            (limit, Some((2, limit)))
        }
        Some(_) => (2, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_csi_osc_and_maps_back() {
        let buf = b"a\x1b[31mb\x1b]0;title\x07c\x1b[0m";
        let v = AnsiView::new(buf).expect("has ESC");
        assert_eq!(v.text, b"abc");
        assert_eq!(v.map, vec![0, 6, 17]);
        // The OSC title is payload (maskable); ESC ] and BEL, and the CSI sequences, are not.
        assert_eq!(
            v.maskable(0, buf.len()),
            vec![(0, 1), (6, 7), (9, 16), (17, 18)]
        );
        assert_eq!(v.maskable(10, 12), vec![(10, 12)]);
        assert!(AnsiView::new(b"plain").is_none());
        // Truncated and malformed sequences still make progress.
        assert_eq!(AnsiView::new(b"\x1b").map(|v| v.text), Some(vec![]));
        assert_eq!(
            AnsiView::new(b"\x1b[3\nx").map(|v| v.text),
            Some(b"\nx".to_vec())
        );
    }
}

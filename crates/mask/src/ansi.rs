//! ANSI escape sequences are skipped for matching: the detectors see the text without them, findings
//! map back to the original offsets, and the escapes themselves are kept (colours survive masking).

const ESC: u8 = 0x1b;
/// An escape sequence longer than this ends here (bounded work on hostile input).
const MAX_ESCAPE: usize = 256;

/// The input without its escape sequences, and where each remaining byte came from.
pub(crate) struct AnsiView {
    pub text: Vec<u8>,
    pub map: Vec<usize>,
}

impl AnsiView {
    /// `None` when `buf` holds no ESC byte (the common case: match on `buf` itself).
    pub fn new(buf: &[u8]) -> Option<Self> {
        if !buf.contains(&ESC) {
            return None;
        }
        let mut text = Vec::with_capacity(buf.len());
        let mut map = Vec::with_capacity(buf.len());
        let mut i = 0;
        while i < buf.len() {
            if buf[i] == ESC {
                i += escape_len(&buf[i..]);
                continue;
            }
            text.push(buf[i]);
            map.push(i);
            i += 1;
        }
        Some(Self { text, map })
    }

    /// The original offset of view offset `i`; one past the view maps to `orig_len`.
    pub fn orig(&self, i: usize, orig_len: usize) -> usize {
        self.map.get(i).copied().unwrap_or(orig_len)
    }
}

/// Length of the escape sequence at the start of `s` (`s[0]` is ESC); at least 1.
fn escape_len(s: &[u8]) -> usize {
    let limit = s.len().min(MAX_ESCAPE);
    match s.get(1) {
        None => 1,
        // CSI: parameter and intermediate bytes, then a final byte.
        Some(b'[') => {
            for (j, &b) in s.iter().enumerate().take(limit).skip(2) {
                if (0x40..=0x7e).contains(&b) {
                    return j + 1;
                }
                if !(0x20..=0x3f).contains(&b) {
                    return j;
                }
            }
            limit
        }
        // OSC: up to BEL or ESC '\'.
        Some(b']') => {
            for (j, &b) in s.iter().enumerate().take(limit).skip(2) {
                if b == 0x07 {
                    return j + 1;
                }
                if b == ESC {
                    return if s.get(j + 1) == Some(&b'\\') {
                        j + 2
                    } else {
                        j
                    };
                }
            }
            limit
        }
        Some(_) => 2,
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
        assert!(AnsiView::new(b"plain").is_none());
        // Truncated and malformed sequences still make progress.
        assert_eq!(AnsiView::new(b"\x1b").map(|v| v.text), Some(vec![]));
        assert_eq!(
            AnsiView::new(b"\x1b[3\nx").map(|v| v.text),
            Some(b"\nx".to_vec())
        );
    }
}

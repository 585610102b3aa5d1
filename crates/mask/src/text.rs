//! Length-preserving text masking for pod logs and terminal output: every byte of a finding becomes
//! [`MASK_BYTE`] except line breaks, so line structure, terminal layout and stream flow control hold.

use std::collections::BTreeMap;

use crate::ansi::AnsiView;
use crate::detector::{Detector, Hit};

/// The byte that replaces masked bytes.
pub const MASK_BYTE: u8 = b'*';

/// The stream masker never holds back more than this (plus one chunk); longer matches are cut, and a
/// PEM block longer than this is masked from its BEGIN line until its END line.
pub const MAX_HOLD: usize = 4096;

/// Bytes kept unmasked at the end of the buffer while inside an open block, so an END marker split
/// across chunks is still seen.
const END_MARKER_HOLD: usize = 64;

/// How many findings each rule masked, by rule id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaskCounts(BTreeMap<String, u64>);

impl MaskCounts {
    /// The count for one rule id (0 if none).
    pub fn get(&self, rule: &str) -> u64 {
        self.0.get(rule).copied().unwrap_or(0)
    }

    /// All findings masked.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// `(rule id, count)` pairs in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }

    pub(crate) fn add(&mut self, rule: &str) {
        *self.0.entry(rule.to_owned()).or_insert(0) += 1;
    }
}

fn mask_byte(b: &mut u8) {
    if *b != b'\n' && *b != b'\r' {
        *b = MASK_BYTE;
    }
}

fn mask_span(buf: &mut [u8]) {
    buf.iter_mut().for_each(mask_byte);
}

/// Masks view range `start..end` in `buf`: directly, or through the ANSI view's offset map (so the
/// escape sequences inside the range are kept).
fn mask_range(buf: &mut [u8], view: Option<&AnsiView>, start: usize, end: usize) {
    match view {
        None => mask_span(&mut buf[start..end]),
        Some(v) => v.map[start..end]
            .iter()
            .for_each(|&i| mask_byte(&mut buf[i])),
    }
}

/// Masks every finding in `buf` in place (same length; newlines and ANSI escape sequences kept;
/// matching ignores the escapes) and counts them by rule. A PEM block with no END within its cap is
/// masked to the end of `buf`.
pub fn mask_text(detector: &Detector, buf: &mut [u8]) -> MaskCounts {
    let mut counts = MaskCounts::default();
    let view = AnsiView::new(buf);
    let findings = detector.scan(view.as_ref().map_or(&*buf, |v| &v.text));
    for f in findings {
        mask_range(buf, view.as_ref(), f.start, f.end);
        counts.add(&detector.rules()[f.rule].id);
    }
    counts
}

/// Masks a byte stream chunk by chunk. It emits exactly as many bytes as it takes (once
/// [`TextMasker::flush`] has run), holding back a bounded tail so that a secret split across chunks is
/// still found. The held tail leaves only through `push`/`flush`, masked.
#[derive(Debug)]
pub struct TextMasker<'d> {
    detector: &'d Detector,
    buf: Vec<u8>,
    hold: usize,
    /// Inside a block (PEM) whose END has not been seen: mask until it is.
    open_block: Option<usize>,
    counts: MaskCounts,
}

impl<'d> TextMasker<'d> {
    /// A masker over `detector`'s rules, holding back at most [`MAX_HOLD`] bytes.
    pub fn new(detector: &'d Detector) -> Self {
        let hold = detector.max_len().min(MAX_HOLD);
        Self {
            detector,
            buf: Vec::new(),
            hold,
            open_block: None,
            counts: MaskCounts::default(),
        }
    }

    /// Takes a chunk; appends to `out` the masked bytes that can no longer be part of an unseen match.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.buf.extend_from_slice(chunk);
        // Scan only once there is a hold's worth beyond the tail: rescanning the tail for every tiny
        // chunk would cost O(hold) per byte.
        if self.buf.len() >= 2 * self.hold.max(1) {
            self.process(false, out);
        }
    }

    /// Emits everything still held, masked. Call at end of stream (or on an idle timer).
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        self.process(true, out);
    }

    /// Findings masked so far, by rule.
    pub fn counts(&self) -> &MaskCounts {
        &self.counts
    }

    fn emit(&mut self, n: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.buf[..n]);
        self.buf.drain(..n);
    }

    fn process(&mut self, last: bool, out: &mut Vec<u8>) {
        loop {
            if let Some(rule) = self.open_block {
                match self.detector.block_end(rule, &self.buf) {
                    Some(e) => {
                        mask_span(&mut self.buf[..e]);
                        self.emit(e, out);
                        self.open_block = None;
                        continue;
                    }
                    None => {
                        let keep = if last {
                            0
                        } else {
                            END_MARKER_HOLD.min(self.buf.len())
                        };
                        let n = self.buf.len() - keep;
                        mask_span(&mut self.buf[..n]);
                        self.emit(n, out);
                        return;
                    }
                }
            }
            let cut = if last {
                self.buf.len()
            } else {
                self.buf.len().saturating_sub(self.hold)
            };
            if let Some(open_at) = self.apply(cut) {
                // Emit what precedes the unterminated block, then mask until its END.
                self.emit(open_at, out);
                continue;
            }
            self.emit(cut, out);
            return;
        }
    }

    /// Masks the hits that begin before `cut` (they are complete: the tail holds `max_len` more bytes).
    /// Returns where an unterminated block begins, if one does.
    fn apply(&mut self, cut: usize) -> Option<usize> {
        let view = AnsiView::new(&self.buf);
        let hits: Vec<Hit> = self
            .detector
            .hits(view.as_ref().map_or(&self.buf[..], |v| &v.text));
        let len = self.buf.len();
        let orig = |i: usize| view.as_ref().map_or(i, |v| v.orig(i, len));
        for h in hits.into_iter().filter(|h| orig(h.match_start) < cut) {
            self.counts.add(&self.detector.rules()[h.rule].id);
            if h.open {
                self.open_block = Some(h.rule);
                return Some(orig(h.start));
            }
            mask_range(&mut self.buf, view.as_ref(), h.start, h.end);
        }
        None
    }
}

//! Length-preserving text masking for pod logs and terminal output: every byte of a finding becomes
//! [`MASK_BYTE`] except line breaks, so line structure, terminal layout and stream flow control hold.
//!
//! Matching runs twice when the text holds ANSI escapes: on the text without them (a secret coloured
//! in pieces is still one secret) and on the raw bytes (a secret inside an escape's parameters or an
//! OSC title is still shown by some consumer, a raw capture if not the terminal).

use std::collections::BTreeMap;

use crate::ansi::AnsiView;
use crate::detector::Detector;

/// The byte that replaces masked bytes.
pub const MASK_BYTE: u8 = b'*';

/// The stream masker never holds back more than this (plus one chunk); longer matches are cut, and a
/// PEM block longer than this is masked from its BEGIN line until its END line.
pub const MAX_HOLD: usize = 4096;

/// Bytes kept unmasked at the end of the buffer while inside an open block, so an END marker split
/// across chunks is still seen; also how far back the END search looks into emitted bytes.
const END_MARKER_HOLD: usize = 64;

/// Emitted bytes kept as matching context after an ordinary round. Every match that starts in them
/// was decided in that round; what follows only needs the byte before (`\b`, a card's separator) and
/// an END marker's start.
const LOOKBEHIND: usize = 64;

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

fn mask_span(buf: &mut [u8]) {
    for b in buf {
        if *b != b'\n' && *b != b'\r' {
            *b = MASK_BYTE;
        }
    }
}

/// A match in original offsets (`match_start`, `start..end`); `view` holds its view offsets when it
/// was found in the text without escapes (mask through the view's map, keeping the escapes). A raw
/// match that a view match of the same rule overlaps is the same finding seen twice: it masks, but
/// does not count.
struct Located {
    rule: usize,
    match_start: usize,
    start: usize,
    end: usize,
    open: bool,
    view: Option<(usize, usize)>,
    counts: bool,
}

/// Every match in `buf`, found in the view without escapes (if there are any) and in the raw bytes,
/// sorted by `match_start`.
fn locate(detector: &Detector, buf: &[u8]) -> (Option<AnsiView>, Vec<Located>) {
    let view = AnsiView::new(buf);
    let mut found = Vec::new();
    if let Some(v) = &view {
        for h in detector.hits(&v.text) {
            found.push(Located {
                rule: h.rule,
                match_start: v.orig(h.match_start, buf.len()),
                start: v.orig(h.start, buf.len()),
                end: v.orig_end(h.end),
                open: h.open,
                view: Some((h.start, h.end)),
                counts: true,
            });
        }
    }
    let seen: Vec<(usize, usize, usize)> = found
        .iter()
        .map(|h| (h.rule, h.match_start, h.end))
        .collect();
    for h in detector.hits(buf) {
        let twice = seen
            .iter()
            .any(|&(r, s, e)| r == h.rule && h.match_start < e && s < h.end);
        found.push(Located {
            rule: h.rule,
            match_start: h.match_start,
            start: h.start,
            end: h.end,
            open: h.open,
            view: None,
            counts: !twice,
        });
    }
    found.sort_by_key(|h| (h.match_start, h.start));
    (view, found)
}

/// The original byte ranges `h` masks: through the view's map for a view match (the escapes between
/// stay), around the escapes' syntax for a raw match (an OSC payload is masked, a colour code is not).
fn ranges(h: &Located, view: Option<&AnsiView>) -> Vec<(usize, usize)> {
    match (h.view, view) {
        (Some((s, e)), Some(v)) => view_ranges(v, s, e),
        (None, Some(v)) => v.maskable(h.start, h.end),
        _ => vec![(h.start, h.end)],
    }
}

/// The original byte ranges of view range `s..e`, one per run between escapes.
fn view_ranges(v: &AnsiView, s: usize, e: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &i in &v.map[s..e] {
        match out.last_mut() {
            Some(last) if last.1 == i => last.1 = i + 1,
            _ => out.push((i, i + 1)),
        }
    }
    out
}

/// Masks every finding in `buf` in place (same length; newlines and ANSI escape sequences kept;
/// matching sees through the escapes) and counts them by rule. A PEM block with no END within its cap
/// is masked to the end of `buf`.
pub fn mask_text(detector: &Detector, buf: &mut [u8]) -> MaskCounts {
    let mut counts = MaskCounts::default();
    let (view, found) = locate(detector, buf);
    let mut counted: Vec<Option<usize>> = vec![None; detector.rules().len()];
    for h in &found {
        for (s, e) in ranges(h, view.as_ref()) {
            mask_span(&mut buf[s..e]);
        }
        if h.counts && counted[h.rule] != Some(h.match_start) {
            counted[h.rule] = Some(h.match_start);
            counts.add(&detector.rules()[h.rule].id);
        }
    }
    counts
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Enough bytes arrived: emit all but the hold-back.
    Chunk,
    /// Nothing arrived for a while: emit everything, masking partial candidates too.
    Idle,
    /// End of stream: emit everything.
    End,
}

/// Masks a byte stream chunk by chunk. It emits exactly as many bytes as it takes (once
/// [`TextMasker::flush`] has run), holding back a bounded tail so that a secret split across chunks is
/// still found. Held bytes leave only through `push`/`flush_idle`/`flush`, masked.
///
/// Emitted bytes stay (bounded: at most [`MAX_HOLD`]) as context for what follows, never emitted
/// again: after an idle flush emitted `password: `, a value arriving next is still masked, and a
/// candidate masked while partial goes on being masked when the rest arrives.
#[derive(Debug)]
pub struct TextMasker<'d> {
    detector: &'d Detector,
    /// Original bytes: `buf[..lb]` emitted (context only), `buf[lb..]` pending.
    buf: Vec<u8>,
    lb: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    hold: usize,
    /// Stream ranges of pending bytes to mask when emitted.
    masks: Vec<(u64, u64)>,
    /// Inside a block (PEM) whose END has not been seen, with where its BEGIN starts: mask until END.
    open_block: Option<(usize, u64)>,
    /// Matches starting before this stream offset are decided (masked or not) and not looked at again.
    decided: u64,
    /// Per rule, the stream offset of the last counted match (a match found again counts once).
    counted: Vec<Option<u64>>,
    counts: MaskCounts,
}

impl<'d> TextMasker<'d> {
    /// A masker over `detector`'s rules, holding back at most [`MAX_HOLD`] bytes.
    pub fn new(detector: &'d Detector) -> Self {
        Self {
            detector,
            buf: Vec::new(),
            lb: 0,
            base: 0,
            hold: detector.max_len().clamp(1, MAX_HOLD),
            masks: Vec::new(),
            open_block: None,
            decided: 0,
            counted: vec![None; detector.rules().len()],
            counts: MaskCounts::default(),
        }
    }

    /// Takes a chunk; appends to `out` the masked bytes that can no longer be part of an unseen match.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.buf.extend_from_slice(chunk);
        // Scan only once there is a hold's worth beyond the tail: rescanning the tail for every tiny
        // chunk would cost O(hold) per byte.
        if self.buf.len() - self.lb >= 2 * self.hold {
            self.process(Round::Chunk, out);
        }
    }

    /// Emits everything held, for an interactive stream that has gone quiet (the gateway calls it
    /// when no bytes arrived for a short while, so a shell's echo is not held back).
    ///
    /// Complete matches are masked as in [`TextMasker::flush`]; a held *partial* candidate is masked
    /// too, rather than shown, when it has evidence: a keyword of its rule (`AKIAIOSFOD`, `ghp_abc`,
    /// `password=hunt`, an unterminated `-----BEGIN RSA PRIVATE KEY-----` line), or, for rules
    /// without one (cards, SSNs, IBANs, phone numbers, e-mail), six digits or an `@` followed by a
    /// dotted name (`jane@example.co`; a typed `ssh user@host` stays visible).
    /// Only the secret part is masked: `password=` stays visible. Ordinary typing (`ls -la`,
    /// `echo hello`, a `$ ` prompt) is emitted as is. Inside an open PEM block everything stays masked
    /// until its END.
    pub fn flush_idle(&mut self, out: &mut Vec<u8>) {
        self.process(Round::Idle, out);
    }

    /// Emits everything still held, masked. Call at end of stream.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        self.process(Round::End, out);
    }

    /// Findings masked so far, by rule.
    pub fn counts(&self) -> &MaskCounts {
        &self.counts
    }

    fn at(&self, i: usize) -> u64 {
        self.base + i as u64
    }

    /// Marks buffer range `start..end` for masking, clipped to the pending bytes.
    fn mark(&mut self, start: usize, end: usize) {
        let (start, end) = (start.max(self.lb), end.min(self.buf.len()));
        if start < end {
            self.masks.push((self.at(start), self.at(end)));
        }
    }

    /// Emits pending bytes up to buffer offset `to`, masked; they become context.
    fn emit_to(&mut self, to: usize, out: &mut Vec<u8>) {
        if to <= self.lb {
            return;
        }
        let first = out.len();
        out.extend_from_slice(&self.buf[self.lb..to]);
        let (a, b) = (self.at(self.lb), self.at(to));
        for &(s, e) in &self.masks {
            let (s, e) = (s.max(a), e.min(b));
            if s < e {
                let s = first + usize::try_from(s - a).unwrap_or(0);
                let e = first + usize::try_from(e - a).unwrap_or(0);
                mask_span(&mut out[s..e]);
            }
        }
        self.masks.retain(|&(_, e)| e > b);
        self.lb = to;
    }

    /// Keeps at most `keep` emitted bytes as context.
    fn trim(&mut self, keep: usize) {
        if self.lb > keep {
            let drop = self.lb - keep;
            self.buf.drain(..drop);
            self.base += drop as u64;
            self.lb = keep;
        }
    }

    fn process(&mut self, round: Round, out: &mut Vec<u8>) {
        loop {
            if let Some((rule, begin)) = self.open_block {
                if !self.in_block(rule, begin, round, out) {
                    return;
                }
                continue;
            }
            let cut = match round {
                Round::Chunk => self.buf.len().saturating_sub(self.hold).max(self.lb),
                Round::Idle | Round::End => self.buf.len(),
            };
            if let Some(open_at) = self.apply(cut) {
                // Emit what precedes the unterminated block, then mask until its END.
                self.emit_to(open_at, out);
                continue;
            }
            // After an idle flush, keep as context only what a candidate still viable at the end
            // needs (bounded by the hold-back), so the next flush rescans tens of bytes, not KiB.
            let keep = match round {
                Round::Idle => self.mask_partial(),
                Round::Chunk => LOOKBEHIND,
                Round::End => self.hold,
            };
            self.emit_to(cut, out);
            if round == Round::Chunk {
                self.decided = self.decided.max(self.at(cut));
            }
            self.trim(keep.clamp(LOOKBEHIND, self.hold));
            return;
        }
    }

    /// Inside an open block: masks and emits up to its END (then returns true: go on scanning), or
    /// everything but a possible split END marker (false: wait for more).
    fn in_block(&mut self, rule: usize, begin: u64, round: Round, out: &mut Vec<u8>) -> bool {
        let begin = usize::try_from(begin.saturating_sub(self.base)).unwrap_or(usize::MAX);
        let from = begin
            .max(self.lb.saturating_sub(END_MARKER_HOLD))
            .min(self.buf.len());
        match self.detector.block_end(rule, &self.buf[from..]) {
            Some(e) => {
                let e = (from + e).max(self.lb);
                self.mark(self.lb, e);
                self.emit_to(e, out);
                self.open_block = None;
                self.decided = self.decided.max(self.at(e));
                true
            }
            None => {
                let pending = self.buf.len() - self.lb;
                let keep = match round {
                    Round::Chunk => END_MARKER_HOLD.min(pending),
                    Round::Idle | Round::End => 0,
                };
                let to = self.buf.len() - keep;
                self.mark(self.lb, to);
                self.emit_to(to, out);
                self.trim(END_MARKER_HOLD.max(LOOKBEHIND));
                false
            }
        }
    }

    /// Marks the matches that begin before `cut` and are not decided yet (they are complete: the
    /// tail holds `max_len` more bytes). Returns where an unterminated block begins, if one does.
    fn apply(&mut self, cut: usize) -> Option<usize> {
        let (view, found) = locate(self.detector, &self.buf);
        for h in &found {
            let start = self.at(h.match_start);
            if start < self.decided || h.match_start >= cut || (h.end <= self.lb && !h.open) {
                continue;
            }
            if h.counts && self.counted[h.rule].is_none_or(|c| start > c) {
                self.counted[h.rule] = Some(start);
                self.counts.add(&self.detector.rules()[h.rule].id);
            }
            if h.open {
                self.open_block = Some((h.rule, start));
                return Some(h.start.max(self.lb));
            }
            for (s, e) in ranges(h, view.as_ref()) {
                self.mark(s, e);
            }
        }
        None
    }

    /// Idle flush: marks a viable partial candidate at the end of the buffer (see `flush_idle`), in
    /// the text without escapes and in the raw bytes (an unterminated OSC string may hide a
    /// candidate's start from the view), sparing the escapes either way. Returns how many bytes of
    /// context the earliest viable candidate needs.
    fn mask_partial(&mut self) -> usize {
        let len = self.buf.len();
        let detector = self.detector;
        let view = AnsiView::new(&self.buf);
        let raw = detector.partial_from(&self.buf);
        let mut marks = match (raw.mask_from, &view) {
            (Some(q), Some(v)) => v.maskable(q, len),
            (Some(q), None) => vec![(q, len)],
            (None, _) => Vec::new(),
        };
        let mut viable = raw.viable_from;
        if let Some(v) = &view {
            let seen = detector.partial_from(&v.text);
            if let Some(q) = seen.mask_from {
                marks.extend(view_ranges(v, q, v.text.len()));
            }
            if let Some(p) = seen.viable_from.map(|p| v.orig(p, len)) {
                viable = Some(viable.map_or(p, |o| o.min(p)));
            }
        }
        for (s, e) in marks {
            self.mark(s, e);
        }
        viable.map_or(0, |p| len - p)
    }
}

//! The one-pass scan: the prefilters open a window of `max_len` around every candidate, each
//! concerned rule's regex runs in its merged windows, and validators confirm what it finds.

use aho_corasick::packed;
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input};

use super::{Detector, Finding};

/// A raw match before merging; `match_start` is where the whole pattern began (before any `secret`
/// group), which the stream masker needs to decide whether the match is complete.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub rule: usize,
    pub match_start: usize,
    pub start: usize,
    pub end: usize,
    /// A block rule whose end marker was not found before the end of the input.
    pub open: bool,
}

/// Case folding works block by block so a scan of a large body needs no second copy of it.
const FOLD_BLOCK: usize = 64 << 10;

impl Detector {
    /// Whether anything in `hay` is a candidate for some rule (a keyword, a shape, or the start of a
    /// keyword-less rule's match). When not, no rule can match in `hay` nor in any substring of it:
    /// callers that scan many small pieces of one text (the strings of a JSON object) may check the
    /// whole text once instead.
    pub fn has_candidate(&self, hay: &[u8]) -> bool {
        self.windows(hay).iter().any(|w| !w.is_empty())
    }

    /// Finds every secret in `hay`: sorted by start, overlapping findings merged (the earlier rule wins).
    pub fn scan(&self, hay: &[u8]) -> Vec<Finding> {
        merge(self.hits(hay))
    }

    /// Raw, validated matches sorted by `start`, not merged.
    pub(crate) fn hits(&self, hay: &[u8]) -> Vec<Hit> {
        let windows = self.windows(hay);
        let mut hits = Vec::new();
        for (r, mut ws) in windows.into_iter().enumerate() {
            if ws.is_empty() {
                continue;
            }
            ws.sort_unstable();
            let mut caps = None;
            let mut cur = ws[0];
            for &w in &ws[1..] {
                if w.0 <= cur.1 {
                    cur.1 = cur.1.max(w.1);
                } else {
                    self.search(r, hay, cur, &mut caps, &mut hits);
                    cur = w;
                }
            }
            self.search(r, hay, cur, &mut caps, &mut hits);
        }
        hits.sort_unstable_by_key(|h| (h.start, h.end));
        hits
    }

    /// Per rule, the windows its regex must search: `max_len` either side of every candidate.
    fn windows(&self, hay: &[u8]) -> Vec<Vec<(usize, usize)>> {
        let mut windows: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.compiled.len()];
        let mut open = |rules: &[usize], start: usize, end: usize| {
            for &r in rules {
                let max = self.compiled[r].max_len;
                windows[r].push((start.saturating_sub(max), (end + max).min(hay.len())));
            }
        };
        if let Some(long) = &self.long {
            self.long_keywords(long, hay, &mut open);
        }
        if let Some(short) = &self.short {
            for m in short.find_overlapping_iter(hay) {
                let k = self.short_ids[m.pattern().as_usize()];
                open(&self.keyword_rules[k], m.start(), m.end());
            }
        }
        self.shapes
            .scan(hay, |rules, start, end| open(rules, start, end));
        if let Some(re) = &self.everywhere_re {
            let mut input = Input::new(hay);
            while let Some(m) = re.search(&input) {
                open(&self.everywhere, m.start(), m.end());
                if m.start() >= hay.len() {
                    break;
                }
                input.set_start(m.start() + 1);
            }
        }
        windows
    }

    /// Long keywords: a SIMD literal search over lowercased blocks (overlapping by the longest keyword
    /// less one, so none is cut) finds where one starts; the case-insensitive automaton then says which
    /// keywords start there. Searching again from the next byte keeps keywords inside keywords.
    fn long_keywords(
        &self,
        long: &packed::Searcher,
        hay: &[u8],
        open: &mut impl FnMut(&[usize], usize, usize),
    ) {
        let mut folded = Vec::with_capacity(hay.len().min(FOLD_BLOCK + self.max_keyword));
        let mut at = 0;
        while at < hay.len() {
            let end = (at + FOLD_BLOCK).min(hay.len());
            let ext = (end + self.max_keyword.saturating_sub(1)).min(hay.len());
            folded.clear();
            folded.extend_from_slice(&hay[at..ext]);
            folded.make_ascii_lowercase();
            let mut from = 0;
            while let Some(m) = long.find_in(&folded, aho_corasick::Span::from(from..folded.len()))
            {
                let s = at + m.start();
                if s >= end {
                    break;
                }
                let near = &hay[s..(s + self.max_keyword).min(hay.len())];
                for k in self
                    .keywords
                    .find_overlapping_iter(near)
                    .filter(|k| k.start() == 0)
                {
                    open(&self.keyword_rules[k.pattern().as_usize()], s, s + k.end());
                }
                from = m.start() + 1;
            }
            at = end;
        }
    }

    /// Runs rule `r` over one window. The plain search runs first (a DFA, cheap); only a rule with a
    /// `secret` group then runs the capturing search, anchored where the match starts.
    fn search(
        &self,
        r: usize,
        hay: &[u8],
        (from, to): (usize, usize),
        caps: &mut Option<Captures>,
        hits: &mut Vec<Hit>,
    ) {
        let c = &self.compiled[r];
        let mut input = Input::new(hay).range(from..to);
        while let Some(m) = c.re.search(&input) {
            let span = match c.secret {
                None => m.span(),
                Some(g) => {
                    let caps = caps.get_or_insert_with(|| c.re.create_captures());
                    let at = Input::new(hay).range(m.start()..to).anchored(Anchored::Yes);
                    c.re.search_captures(&at, caps);
                    caps.get_group(g).unwrap_or(m.span())
                }
            };
            let mut hit = Hit {
                rule: r,
                match_start: m.start(),
                start: span.start,
                end: span.end,
                open: false,
            };
            if let Some(end_re) = &c.end {
                let limit = (m.start() + c.max_len).min(hay.len());
                let tail = Input::new(hay).range(m.end()..limit.max(m.end()));
                match end_re.find(tail) {
                    Some(e) => hit.end = e.end(),
                    None => {
                        hit.end = hay.len();
                        hit.open = true;
                    }
                }
            }
            let valid = c
                .validator
                .is_none_or(|v| v.check(&hay[hit.start..hit.end]));
            if valid {
                hits.push(hit);
            }
            // Context after the secret (a separator the regex consumes) may be the context before
            // the next one: resume where the secret ends, not where the match does.
            let resume = if c.secret.is_some() {
                span.end
            } else {
                m.end()
            };
            let next = if valid { hit.end.max(resume) } else { resume };
            if next >= to || hit.open {
                break;
            }
            input.set_start(next.max(m.start() + 1));
        }
    }

    /// For a block rule: the end of its END marker in `hay`, if present.
    pub(crate) fn block_end(&self, rule: usize, hay: &[u8]) -> Option<usize> {
        self.compiled[rule].end.as_ref()?.find(hay).map(|m| m.end())
    }
}

fn merge(hits: Vec<Hit>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::with_capacity(hits.len());
    for h in hits {
        match out.last_mut() {
            Some(last) if h.start < last.end => last.end = last.end.max(h.end),
            _ => out.push(Finding {
                rule: h.rule,
                start: h.start,
                end: h.end,
            }),
        }
    }
    out
}

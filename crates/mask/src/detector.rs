//! The compiled rule set. A scan finds candidate positions with prefilters that skip most bytes, and
//! runs each concerned rule's own regex in a window of `max_len` around them; validators confirm.
//!
//! The prefilters, fastest first: keywords (case-folded block by block, found with a SIMD multi-literal
//! search; one- and two-byte keywords with memchr), shapes (character-class strings such as
//! `999-99-9999`, matched 64 bytes at a time on class bitmasks), and, only for rules that have neither,
//! one regex pass over every byte. A lazy DFA over every byte is latency-bound (about 650 MiB/s here);
//! the first two run at several GiB/s, which is what keeps text masking above 500 MiB/s.
//!
//! Submodules: `compile` builds a detector from rules, `shape` is the character-class prefilter,
//! `scan` finds and confirms matches, and `partial` judges the end of a stream's held-back text for
//! the idle flush.

use std::sync::Mutex;

use aho_corasick::packed;
use aho_corasick::AhoCorasick;
use regex_automata::hybrid;
use regex_automata::meta::Regex;

use crate::rule::Rule;

mod compile;
mod partial;
mod scan;
mod shape;

/// A masked span: which rule found it and the byte range to mask (`start..end`).
/// It never carries the matched bytes themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// Index of the rule in [`Detector::rules`].
    pub rule: usize,
    /// First byte to mask.
    pub start: usize,
    /// One past the last byte to mask.
    pub end: usize,
}

/// A compiled set of rules. Build once ([`Detector::builtin`], [`Detector::with_extra`]) and share;
/// scanning takes `&self`.
pub struct Detector {
    rules: Vec<Rule>,
    compiled: Vec<compile::Compiled>,
    /// Every keyword, ASCII case-insensitive: which keywords start at a candidate position.
    keywords: AhoCorasick,
    /// Longest keyword, in bytes.
    max_keyword: usize,
    /// Lowercased keywords of [`compile::LONG_KEYWORD`] bytes or more, searched in case-folded
    /// blocks; `None` if there are none or the CPU has no SIMD for it (then `keywords` runs over
    /// every byte).
    long: Option<packed::Searcher>,
    /// Shorter keywords (pattern ids index `short_ids`).
    short: Option<AhoCorasick>,
    short_ids: Vec<usize>,
    /// keyword pattern id → the rules it gates.
    keyword_rules: Vec<Vec<usize>>,
    shapes: shape::ShapeSet,
    /// Rules with neither keywords nor shapes, and one regex over them all.
    everywhere: Vec<usize>,
    everywhere_re: Option<Regex>,
    /// Every rule's regex, pattern id = rule index, for idle-flush viability of partial candidates.
    partial: hybrid::dfa::DFA,
    /// Its caches, lent to one idle flush at a time: warm across streams, and as many as flushes
    /// that ran at once (at most [`partial::PARTIAL_CACHES`] kept).
    partial_caches: Mutex<Vec<hybrid::dfa::Cache>>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field(
                "rules",
                &self.rules.iter().map(|r| &r.id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Detector {
    /// The rules, indexed by [`Finding::rule`].
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The longest match any rule can produce, in bytes.
    pub fn max_len(&self) -> usize {
        self.compiled.iter().map(|c| c.max_len).max().unwrap_or(0)
    }
}

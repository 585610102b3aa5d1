//! The compiled rule set. A scan finds candidate positions with prefilters that skip most bytes, and
//! runs each concerned rule's own regex in a window of `max_len` around them; validators confirm.
//!
//! The prefilters, fastest first: keywords (case-folded block by block, found with a SIMD multi-literal
//! search; one- and two-byte keywords with memchr), shapes (character-class strings such as
//! `999-99-9999`, matched 64 bytes at a time on class bitmasks), and, only for rules that have neither,
//! one regex pass over every byte. A lazy DFA over every byte is latency-bound (about 650 MiB/s here);
//! the first two run at several GiB/s, which is what keeps text masking above 500 MiB/s.

use std::sync::{Mutex, PoisonError};

use aho_corasick::packed;
use aho_corasick::{AhoCorasick, MatchKind};
use regex_automata::hybrid;
use regex_automata::meta::Regex;
use regex_automata::util::captures::Captures;
use regex_automata::util::{start, syntax};
use regex_automata::{Anchored, Input, PatternID};

use crate::rule::{Rule, RuleError};
use crate::validate::Validator;

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

struct Compiled {
    re: Regex,
    end: Option<Regex>,
    secret: Option<usize>,
    /// The part of the regex before the `secret` group, when it compiles on its own: where the secret
    /// of a partial candidate begins (idle flush).
    prefix: Option<Regex>,
    validator: Option<Validator>,
    max_len: usize,
    /// Has a keyword of at least [`STRONG_KEYWORD`] bytes: a partial candidate needs one as evidence.
    strong: bool,
}

/// Keywords this long go to the SIMD literal search; shorter ones (`@`) to memchr.
const LONG_KEYWORD: usize = 3;
/// Case folding works block by block so a scan of a large body needs no second copy of it.
const FOLD_BLOCK: usize = 64 << 10;

/// A compiled set of rules. Build once ([`Detector::builtin`], [`Detector::with_extra`]) and share;
/// scanning takes `&self`.
pub struct Detector {
    rules: Vec<Rule>,
    compiled: Vec<Compiled>,
    /// Every keyword, ASCII case-insensitive: which keywords start at a candidate position.
    keywords: AhoCorasick,
    /// Longest keyword, in bytes.
    max_keyword: usize,
    /// Lowercased keywords of [`LONG_KEYWORD`] bytes or more, searched in case-folded blocks; `None`
    /// if there are none or the CPU has no SIMD for it (then `keywords` runs over every byte).
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
    /// that ran at once (at most [`PARTIAL_CACHES`] kept).
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

fn syntax_config() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false)
}

fn compile_many(rule: &str, patterns: &[String]) -> Result<Regex, RuleError> {
    Regex::builder()
        .syntax(syntax_config())
        .configure(Regex::config().utf8_empty(false))
        .build_many(patterns)
        .map_err(|e| RuleError::Regex {
            rule: rule.to_owned(),
            message: e.to_string(),
        })
}

fn compile(rule: &str, pattern: &str) -> Result<Regex, RuleError> {
    compile_many(rule, &[pattern.to_owned()])
}

/// The regex text before the `secret` group, compiled, if it stands on its own.
fn prefix_of(pattern: &str) -> Option<Regex> {
    let at = pattern
        .find("(?P<secret>")
        .or_else(|| pattern.find("(?<secret>"))?;
    compile("", &pattern[..at]).ok()
}

impl Detector {
    /// The built-in rules from `rules/*.yaml`.
    pub fn builtin() -> Result<Self, RuleError> {
        Self::new(Rule::builtin()?)
    }

    /// The built-in rules plus `extra` (an operator's own, e.g. from [`Rule::parse_file`]). Each
    /// extra rule's examples are checked against the rule alone, so a rule that misses its own
    /// `must_match` example or finds a `must_not_match` one is refused here, naming both; an id
    /// already taken is refused too.
    pub fn with_extra(extra: Vec<Rule>) -> Result<Self, RuleError> {
        for rule in &extra {
            let alone = Self::new(vec![rule.clone()])?;
            let ex = &rule.examples;
            let cases = ex.must_match.iter().map(|e| ("must_match", e, true));
            let cases = cases.chain(
                ex.must_not_match
                    .iter()
                    .map(|e| ("must_not_match", e, false)),
            );
            for (kind, example, expect) in cases {
                if alone.scan(example.as_bytes()).is_empty() == expect {
                    return Err(RuleError::Example {
                        rule: rule.id.clone(),
                        kind,
                        example: example.clone(),
                    });
                }
            }
        }
        let mut rules = Rule::builtin()?;
        rules.extend(extra);
        Self::new(rules)
    }

    /// Compiles `rules`; fails on a duplicate id, a bad field, regex or validator name.
    pub fn new(rules: Vec<Rule>) -> Result<Self, RuleError> {
        let mut compiled = Vec::with_capacity(rules.len());
        let mut words: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut everywhere = Vec::new();
        let mut shapes = shape::ShapeSet::default();
        for (i, rule) in rules.iter().enumerate() {
            rule.check()?;
            if rules[..i].iter().any(|r| r.id == rule.id) {
                return Err(RuleError::Duplicate(rule.id.clone()));
            }
            compiled.push(Self::compile_rule(rule)?);
            if rule.keywords.is_empty() && rule.shapes.is_empty() {
                everywhere.push(i);
            }
            for s in &rule.shapes {
                if !shapes.add(s.as_bytes(), i) {
                    return Err(RuleError::Invalid {
                        rule: rule.id.clone(),
                        message: format!(
                            "shapes use more than {} character classes in all",
                            shape::MAX_CLASSES
                        ),
                    });
                }
            }
            for kw in &rule.keywords {
                let kw = kw.to_ascii_lowercase();
                match words.iter().position(|w| *w == kw) {
                    Some(p) => keyword_rules[p].push(i),
                    None => {
                        words.push(kw);
                        keyword_rules.push(vec![i]);
                    }
                }
            }
        }
        let ac = |words: &[&String]| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(words)
                .map_err(|e| RuleError::Keywords(e.to_string()))
        };
        let all: Vec<&String> = words.iter().collect();
        let keywords = ac(&all)?;
        let long_words = words.iter().filter(|w| w.len() >= LONG_KEYWORD);
        let long = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(long_words)
            .build();
        let short_ids: Vec<usize> = (0..words.len())
            .filter(|&k| long.is_none() || words[k].len() < LONG_KEYWORD)
            .collect();
        let short_words: Vec<&String> = short_ids.iter().map(|&k| &words[k]).collect();
        let short = (!short_words.is_empty())
            .then(|| ac(&short_words))
            .transpose()?;
        let everywhere_re = (!everywhere.is_empty())
            .then(|| {
                let patterns: Vec<String> =
                    everywhere.iter().map(|&r| rules[r].regex.clone()).collect();
                compile_many("(everywhere)", &patterns)
            })
            .transpose()?;
        let partial = Self::partial_dfa(&rules)?;
        Ok(Self {
            max_keyword: words.iter().map(String::len).max().unwrap_or(0),
            rules,
            compiled,
            keywords,
            long,
            short,
            short_ids,
            keyword_rules,
            shapes,
            everywhere,
            everywhere_re,
            partial,
            partial_caches: Mutex::new(Vec::new()),
        })
    }

    fn compile_rule(rule: &Rule) -> Result<Compiled, RuleError> {
        let re = compile(&rule.id, &rule.regex)?;
        let secret = re.group_info().to_index(PatternID::ZERO, "secret");
        let end = rule
            .end
            .as_deref()
            .map(|e| compile(&rule.id, e))
            .transpose()?;
        let validator = rule
            .validator
            .as_deref()
            .map(Validator::parse)
            .transpose()?;
        Ok(Compiled {
            prefix: secret.and_then(|_| prefix_of(&rule.regex)),
            re,
            end,
            secret,
            validator,
            max_len: rule.max_len,
            strong: rule.keywords.iter().any(|k| k.len() >= STRONG_KEYWORD),
        })
    }

    /// The rules, indexed by [`Finding::rule`].
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The longest match any rule can produce, in bytes.
    pub fn max_len(&self) -> usize {
        self.compiled.iter().map(|c| c.max_len).max().unwrap_or(0)
    }

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

/// A keyword this long is evidence enough for a partial candidate (`AKIA`, `password`); shorter ones
/// (`@`) are not.
const STRONG_KEYWORD: usize = 3;
/// Evidence a partial candidate of a rule without keywords needs: this many digits in its secret
/// part. A rule with only short keywords (`@`) needs one followed by a dotted name instead
/// (`jane@example.co`, not the `user@host` or `root@10.0.0.5` of an ssh command being typed).
const PARTIAL_DIGITS: usize = 6;
/// DFA steps one idle flush may spend looking for partial candidates; past it, fail closed.
const PARTIAL_BUDGET: usize = 1 << 19;
/// How far back from the end a partial candidate may start (the stream masker's hold-back bound).
const PARTIAL_REACH: usize = crate::text::MAX_HOLD;
/// Idle-flush DFA caches a detector keeps for reuse.
const PARTIAL_CACHES: usize = 16;

/// Evidence for a partial candidate of a rule without a strong keyword, starting at `p` with its
/// secret at `q` (see [`PARTIAL_DIGITS`]).
fn weak_evidence(text: &[u8], q: usize, keywords: Option<&[(usize, usize)]>, p: usize) -> bool {
    let dotted = |after: &[u8]| {
        after
            .windows(3)
            .any(|w| w[0] == b'.' && w[1].is_ascii_alphabetic() && w[2].is_ascii_alphabetic())
    };
    match keywords {
        None => text[q..].iter().filter(|b| b.is_ascii_digit()).count() >= PARTIAL_DIGITS,
        Some(occ) => occ.iter().any(|&(s, e)| s >= p && dotted(&text[e..])),
    }
}

/// What [`Detector::partial_from`] found at the end of a text.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Partial {
    /// Mask from here to the end: a viable candidate with evidence (its secret part).
    pub mask_from: Option<usize>,
    /// The earliest start of any viable candidate, evidence or not: the context a stream must keep
    /// for what follows (`password: ` is kept, `ls -la` is not).
    pub viable_from: Option<usize>,
}

impl Partial {
    /// The search gave up: mask everything and keep everything (fail closed).
    fn everything() -> Self {
        Self {
            mask_from: Some(0),
            viable_from: Some(0),
        }
    }
}

enum Alive {
    Yes,
    No,
    /// The step budget ran out or the DFA gave up: treat as viable (fail closed).
    Unknown,
}

impl Detector {
    fn partial_dfa(rules: &[Rule]) -> Result<hybrid::dfa::DFA, RuleError> {
        let patterns: Vec<&str> = rules.iter().map(|r| r.regex.as_str()).collect();
        hybrid::dfa::DFA::builder()
            .syntax(syntax_config())
            .thompson(regex_automata::nfa::thompson::Config::new().utf8(false))
            .configure(
                hybrid::dfa::DFA::config()
                    .match_kind(regex_automata::MatchKind::All)
                    .starts_for_each_pattern(true),
            )
            .build_many(&patterns)
            .map_err(|e| RuleError::Regex {
                rule: "(partial)".to_owned(),
                message: e.to_string(),
            })
    }

    /// Partial candidates at the end of `text`: where masking must start so that none is shown (the
    /// earliest secret start over every rule), and where the earliest viable one starts. A partial
    /// candidate starts within a rule's reach of the end, its rule's DFA (anchored there) is still
    /// alive after the last byte, and, to be masked, it has evidence:
    ///
    /// - a rule with a keyword of three bytes or more needs one of its keywords in the candidate
    ///   (`AKIAIOSF`, `password=hun`; `pass` alone or `ls -la` is nothing);
    /// - a rule without keywords (cards, SSNs, IBANs, phone numbers) needs six digits in its secret
    ///   part (`4111 1111 11`; `4111 1` or a typed date is left alone);
    /// - a rule with only short keywords (e-mail's `@`) needs one followed by a dotted name
    ///   (`jane@example.co`; a typed `ssh user@host` is left alone).
    ///
    /// What is masked is the candidate's secret part: after the regex text before the `secret` group
    /// (`password=` stays visible), or all of it for a rule without one. Validators cannot judge an
    /// incomplete candidate and are not run. If the search spends its step budget, it answers the
    /// start of `text` for both (mask and keep everything held).
    pub(crate) fn partial_from(&self, text: &[u8]) -> Partial {
        let lend = || {
            self.partial_caches
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
        };
        let mut cache = lend().unwrap_or_else(|| self.partial.create_cache());
        let found = self.partial_in(text, &mut cache);
        let mut pool = self
            .partial_caches
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if pool.len() < PARTIAL_CACHES {
            pool.push(cache);
        }
        found
    }

    fn partial_in(&self, text: &[u8], cache: &mut hybrid::dfa::Cache) -> Partial {
        let len = text.len();
        let reach = |r: usize| len - self.compiled[r].max_len.min(PARTIAL_REACH).min(len);
        let Some(tail) = (0..self.rules.len()).map(reach).min() else {
            return Partial::default();
        };
        // Keyword occurrences near the end, per rule, in order.
        let mut occ: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.rules.len()];
        for k in self.keywords.find_overlapping_iter(&text[tail..]) {
            for &r in &self.keyword_rules[k.pattern().as_usize()] {
                occ[r].push((tail + k.start(), tail + k.end()));
            }
        }
        occ.iter_mut().for_each(|o| o.sort_unstable());
        // Digits from each position of the tail to the end.
        let mut digits_after = vec![0usize; len - tail + 1];
        for i in (tail..len).rev() {
            digits_after[i - tail] =
                digits_after[i - tail + 1] + usize::from(text[i].is_ascii_digit());
        }
        let mut budget = PARTIAL_BUDGET;
        let mut found = Partial::default();
        for (r, c) in self.compiled.iter().enumerate() {
            // Evidence: a keyword at or after the candidate's start, or (a rule without keywords)
            // six digits within reach.
            let has_keywords = !self.rules[r].keywords.is_empty();
            let last_kw = occ[r].last().map(|o| o.0);
            let digits = digits_after[reach(r) - tail];
            let may_mask = |p: usize| match last_kw {
                Some(k) => k >= p,
                None => !has_keywords && digits >= PARTIAL_DIGITS,
            };
            for p in reach(r)..len {
                let more_viable = found.viable_from.is_none_or(|v| p < v);
                if !more_viable && (!may_mask(p) || found.mask_from.is_some_and(|b| b <= p)) {
                    break;
                }
                match self.alive(r, text, p, cache, &mut budget) {
                    Alive::No => continue,
                    Alive::Unknown => return Partial::everything(),
                    Alive::Yes => {}
                }
                found.viable_from = Some(found.viable_from.map_or(p, |v| v.min(p)));
                if !may_mask(p) {
                    continue;
                }
                let q = match (c.secret, &c.prefix) {
                    (Some(_), Some(pre)) => {
                        let at = Input::new(text).range(p..).anchored(Anchored::Yes);
                        match pre.search(&at) {
                            Some(m) => m.end(),
                            None => continue, // still inside the part before the secret
                        }
                    }
                    _ => p,
                };
                let keywords = has_keywords.then_some(&occ[r][..]);
                if q < len && (c.strong || weak_evidence(text, q, keywords, p)) {
                    found.mask_from = Some(found.mask_from.map_or(q, |b| b.min(q)));
                }
            }
        }
        found
    }

    /// Whether rule `r`, anchored at `p`, can still match once more bytes follow `text`. A candidate
    /// already complete at the end does not count (the ordinary scan has seen it), even though the
    /// DFA, reporting matches a byte late, has a live-looking next state for it.
    fn alive(
        &self,
        r: usize,
        text: &[u8],
        p: usize,
        cache: &mut hybrid::dfa::Cache,
        budget: &mut usize,
    ) -> Alive {
        let dfa = &self.partial;
        let Ok(pid) = PatternID::new(r) else {
            return Alive::Unknown;
        };
        let config = start::Config::new()
            .anchored(Anchored::Pattern(pid))
            .look_behind(p.checked_sub(1).map(|i| text[i]));
        let Ok(mut sid) = dfa.start_state(cache, &config) else {
            return Alive::Unknown;
        };
        for &b in &text[p..] {
            if *budget == 0 {
                return Alive::Unknown;
            }
            *budget -= 1;
            match dfa.next_state(cache, sid, b) {
                Ok(next) if next.is_dead() => return Alive::No,
                Ok(next) if next.is_quit() => return Alive::Unknown,
                Ok(next) => sid = next,
                Err(_) => return Alive::Unknown,
            }
        }
        // The DFA reports a match one byte late, so a next state flagged as a match may hold nothing
        // but that report (the candidate is complete): it counts only if something can follow it.
        let mut reports: Vec<hybrid::LazyStateID> = Vec::new();
        for b in dfa
            .byte_classes()
            .representatives(0..=255)
            .filter_map(|u| u.as_u8())
        {
            let Ok(next) = dfa.next_state(cache, sid, b) else {
                return Alive::Unknown;
            };
            if next.is_dead() {
                continue;
            }
            if !next.is_match() {
                return Alive::Yes;
            }
            if reports.contains(&next) {
                continue;
            }
            reports.push(next);
            match dfa.next_eoi_state(cache, next) {
                Ok(eoi) if eoi.is_match() => return Alive::Yes,
                Ok(_) => {}
                Err(_) => return Alive::Unknown,
            }
            for c in dfa
                .byte_classes()
                .representatives(0..=255)
                .filter_map(|u| u.as_u8())
            {
                match dfa.next_state(cache, next, c) {
                    Ok(after) if after.is_dead() => {}
                    Ok(_) => return Alive::Yes,
                    Err(_) => return Alive::Unknown,
                }
            }
        }
        Alive::No
    }
}

/// Shapes: fixed-length strings over character classes, found with bitmasks 64 bytes at a time.
mod shape {
    /// What one shape byte stands for.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Class {
        Digit,
        NonZero,
        Upper,
        Lower,
        Byte(u8),
    }

    impl Class {
        fn of(b: u8) -> Self {
            match b {
                b'9' => Self::Digit,
                b'1' => Self::NonZero,
                b'A' => Self::Upper,
                b'a' => Self::Lower,
                other => Self::Byte(other),
            }
        }
    }

    /// A shape as terms `(run index, offset)`: the run of one class it needs at that offset.
    #[derive(Debug)]
    struct Shape {
        terms: Vec<(usize, usize)>,
        len: usize,
        rules: Vec<usize>,
    }

    /// At most this many distinct classes over all shapes (more are refused when building).
    pub(super) const MAX_CLASSES: usize = 16;

    /// Every rule's shapes, deduplicated; `classes` are the distinct classes they use and `runs` the
    /// distinct `(class, length)` runs, each computed once per block.
    #[derive(Debug, Default)]
    pub(super) struct ShapeSet {
        classes: Vec<Class>,
        runs: Vec<(usize, usize)>,
        shapes: Vec<(Vec<u8>, Shape)>,
    }

    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;

    /// 0x80 in each byte of `w` equal to `c`.
    fn eq(w: u64, c: u8) -> u64 {
        let x = w ^ (LO * u64::from(c));
        !(((x & !HI) + !HI) | x) & HI
    }

    /// 0x80 in each byte of `w` in `lo..lo + n` (ASCII ranges: `lo + n <= 128`).
    fn range(w: u64, lo: u8, n: u8) -> u64 {
        let y = (w | HI) - LO * u64::from(lo);
        let t = (y & !HI) + LO * u64::from(128 - n);
        y & !t & !w & HI
    }

    /// One bit per byte of `block` (bit i for byte i) where `lane` sets 0x80. Word j's flags go to
    /// bit j of each byte (two operations a word), then one 8x8 bit transpose puts them in order.
    #[inline(always)]
    fn bits(block: &[u8; 64], lane: impl Fn(u64) -> u64) -> u64 {
        let mut t = 0;
        for j in 0..8 {
            let w = u64::from_le_bytes([
                block[8 * j],
                block[8 * j + 1],
                block[8 * j + 2],
                block[8 * j + 3],
                block[8 * j + 4],
                block[8 * j + 5],
                block[8 * j + 6],
                block[8 * j + 7],
            ]);
            t |= lane(w) >> (7 - j);
        }
        transpose8(t)
    }

    /// Transposes the 8x8 bit matrix in `x` (row r = byte r): bit 8r + c moves to 8c + r.
    fn transpose8(mut x: u64) -> u64 {
        let t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
        x ^= t ^ (t << 7);
        let t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
        x ^= t ^ (t << 14);
        let t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
        x ^ t ^ (t << 28)
    }

    fn mask(block: &[u8; 64], class: Class) -> u64 {
        match class {
            Class::Digit => bits(block, |w| range(w, b'0', 10)),
            Class::NonZero => bits(block, |w| range(w, b'1', 9)),
            Class::Upper => bits(block, |w| range(w, b'A', 26)),
            Class::Lower => bits(block, |w| range(w, b'a', 26)),
            Class::Byte(c) => bits(block, |w| eq(w, c)),
        }
    }

    /// Two blocks' worth of bits (`lo` the block a shape starts in, `hi` the next), shifted only by
    /// less than 64: plain 64-bit shifts, no branches.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    struct Pair {
        lo: u64,
        hi: u64,
    }

    impl Pair {
        const ONES: Self = Self { lo: !0, hi: !0 };

        /// `self >> k` for `k < 64`.
        fn shr(self, k: usize) -> Self {
            let k = k & 63;
            Self {
                lo: (self.lo >> k) | ((self.hi << 1) << (63 - k)),
                hi: self.hi >> k,
            }
        }

        fn and(self, o: Self) -> Self {
            Self {
                lo: self.lo & o.lo,
                hi: self.hi & o.hi,
            }
        }
    }

    /// Bits where `len` (1 to 64) consecutive bits of `m` start.
    fn run(m: Pair, len: usize) -> Pair {
        let (mut acc, mut pow, mut shift, mut left) = (Pair::ONES, m, 0, len);
        let mut width = 1;
        while left > 0 {
            if left & 1 == 1 {
                acc = acc.and(pow.shr(shift));
                shift += width;
            }
            left >>= 1;
            if left > 0 {
                pow = pow.and(pow.shr(width));
                width *= 2;
            }
        }
        acc
    }

    impl ShapeSet {
        /// Adds `shape` (1 to 64 bytes, checked by the rule) for rule `rule`; false if it would need
        /// more than [`MAX_CLASSES`] classes.
        pub(super) fn add(&mut self, shape: &[u8], rule: usize) -> bool {
            if let Some((_, s)) = self.shapes.iter_mut().find(|(t, _)| t == shape) {
                s.rules.push(rule);
                return true;
            }
            let mut runs: Vec<(usize, usize, usize)> = Vec::new();
            for (off, &b) in shape.iter().enumerate() {
                let class = Class::of(b);
                let ci = match self.classes.iter().position(|&c| c == class) {
                    Some(i) => i,
                    None if self.classes.len() < MAX_CLASSES => {
                        self.classes.push(class);
                        self.classes.len() - 1
                    }
                    None => return false,
                };
                match runs.last_mut() {
                    Some(last) if last.0 == ci => last.1 += 1,
                    _ => runs.push((ci, 1, off)),
                }
            }
            let terms = runs
                .into_iter()
                .map(|(ci, n, off)| {
                    let ri = match self.runs.iter().position(|&r| r == (ci, n)) {
                        Some(i) => i,
                        None => {
                            self.runs.push((ci, n));
                            self.runs.len() - 1
                        }
                    };
                    (ri, off)
                })
                .collect::<Vec<_>>();
            // Rarest first, so most blocks are ruled out by one term and the classes that term does
            // not need are never computed: runs of three digits or more (a date's are too short),
            // punctuation, capitals, short digit runs, spaces, lowercase.
            let rank = |&(ri, _): &(usize, usize)| {
                let (ci, n) = self.runs[ri];
                let class_rank = match self.classes[ci] {
                    Class::Digit | Class::NonZero if n >= 3 => 0,
                    Class::Byte(b' ') => 4,
                    Class::Byte(_) => 1,
                    Class::Upper => 2,
                    Class::Digit | Class::NonZero => 3,
                    Class::Lower => 5,
                };
                (class_rank, usize::MAX - n)
            };
            let mut terms = terms;
            terms.sort_by_key(rank);
            let (len, rules) = (shape.len(), vec![rule]);
            self.shapes
                .push((shape.to_vec(), Shape { terms, len, rules }));
            true
        }

        /// Calls `found(rules, start, end)` for every place a shape occurs in `hay`. Work is lazy:
        /// a shape's terms run rarest class first and stop at the first that rules it out, and a
        /// block's class masks and runs are computed only when a term asks for them.
        pub(super) fn scan(&self, hay: &[u8], mut found: impl FnMut(&[usize], usize, usize)) {
            if self.shapes.is_empty() {
                return;
            }
            let blocks = hay.len().div_ceil(64);
            let mut tail = [0u8; 64];
            let full = hay.len() / 64 * 64;
            tail[..hay.len() - full].copy_from_slice(&hay[full..]);
            let mut w = Window {
                hay,
                tail,
                block: 0,
                masks: [[0; MAX_CLASSES]; 2],
                have: [0; 2],
                runs: vec![Pair::default(); self.runs.len()],
                run_stamp: vec![usize::MAX; self.runs.len()],
            };
            for b in 0..blocks {
                w.block = b;
                for (_, s) in &self.shapes {
                    let mut starts = !0u64;
                    for &(ri, off) in &s.terms {
                        starts &= w.run(self, ri).shr(off).lo;
                        if starts == 0 {
                            break;
                        }
                    }
                    while starts != 0 {
                        let at = b * 64 + starts.trailing_zeros() as usize;
                        starts &= starts - 1;
                        if at + s.len <= hay.len() {
                            found(&s.rules, at, at + s.len);
                        }
                    }
                }
                // The next block's masks become this block's.
                w.masks[0] = w.masks[1];
                w.have = [w.have[1], 0];
            }
        }
    }

    /// The block shapes start in (`block`) and the next one, with the class masks and runs computed
    /// so far (`have` bit i: class i's mask is in `masks`).
    struct Window<'h> {
        hay: &'h [u8],
        /// The last, partial block padded with NUL (no class matches NUL).
        tail: [u8; 64],
        block: usize,
        masks: [[u64; MAX_CLASSES]; 2],
        have: [u32; 2],
        runs: Vec<Pair>,
        run_stamp: Vec<usize>,
    }

    impl Window<'_> {
        fn bytes(&self, b: usize) -> Option<&[u8; 64]> {
            match self.hay.get(b * 64..b * 64 + 64) {
                Some(full) => full.try_into().ok(),
                None if b * 64 < self.hay.len() => Some(&self.tail),
                None => None,
            }
        }

        fn mask(&mut self, set: &ShapeSet, which: usize, ci: usize) -> u64 {
            if self.have[which] & (1 << ci) == 0 {
                let m = self
                    .bytes(self.block + which)
                    .map_or(0, |bytes| mask(bytes, set.classes[ci]));
                self.masks[which][ci] = m;
                self.have[which] |= 1 << ci;
            }
            self.masks[which][ci]
        }

        fn run(&mut self, set: &ShapeSet, ri: usize) -> Pair {
            if self.run_stamp[ri] != self.block {
                let (ci, n) = set.runs[ri];
                let m = Pair {
                    lo: self.mask(set, 0, ci),
                    hi: self.mask(set, 1, ci),
                };
                self.runs[ri] = run(m, n);
                self.run_stamp[ri] = self.block;
            }
            self.runs[ri]
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn lanes_match_scalar() {
            for b in 0..=255u8 {
                for lane in 0..8 {
                    let mut w = [b'x'; 8];
                    w[lane] = b;
                    let w = u64::from_le_bytes(w);
                    let bit = |m: u64| m & (0x80 << (8 * lane)) != 0;
                    assert_eq!(bit(range(w, b'0', 10)), b.is_ascii_digit(), "{b}");
                    assert_eq!(bit(range(w, b'A', 26)), b.is_ascii_uppercase(), "{b}");
                    assert_eq!(bit(range(w, b'1', 9)), (b'1'..=b'9').contains(&b), "{b}");
                    assert_eq!(bit(eq(w, b'-')), b == b'-', "{b}");
                }
            }
            let mut block = [b'.'; 64];
            block[0] = b'7';
            block[63] = b'3';
            assert_eq!(mask(&block, Class::Digit), 1 | 1 << 63);
            for i in 0..64 {
                let mut block = [b'x'; 64];
                block[i] = b'-';
                assert_eq!(mask(&block, Class::Byte(b'-')), 1 << i);
            }
            let pair = |lo| Pair { lo, hi: 0 };
            assert_eq!(run(pair(0b0111_0110), 2), pair(0b0011_0010));
            assert_eq!(run(Pair::ONES, 64), Pair { lo: !0, hi: 1 });
            assert_eq!(Pair { lo: 0, hi: 1 }.shr(1), Pair { lo: 1 << 63, hi: 0 });
            assert_eq!(Pair::ONES.shr(0), Pair::ONES);
        }

        fn starts(shapes: &[&str], hay: &[u8]) -> Vec<(usize, usize)> {
            let mut set = ShapeSet::default();
            for (i, s) in shapes.iter().enumerate() {
                set.add(s.as_bytes(), i);
            }
            let mut out = Vec::new();
            set.scan(hay, |rules, start, _| out.push((rules[0], start)));
            out.sort_unstable();
            out
        }

        #[test]
        fn finds_shapes_across_blocks_and_at_the_end() {
            let mut hay = vec![b' '; 200];
            hay[60..71].copy_from_slice(b"078-05-1120");
            hay[150..154].copy_from_slice(b"GB82");
            hay.extend_from_slice(b"x+1");
            let found = starts(&["999-99-9999", "AA99", "+1", "9999999"], &hay);
            assert_eq!(found, vec![(0, 60), (1, 150), (2, 201)]);
            assert!(starts(&["999-99-9999"], b"2026-11-27 12-34-5678").is_empty());
            assert_eq!(starts(&["999"], b"1234"), vec![(0, 0), (0, 1)]);
            assert!(starts(&["+1"], b"+0000").is_empty());
        }
    }
}

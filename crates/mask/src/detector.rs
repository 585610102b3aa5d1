//! The compiled rule set. One pass of a multi-pattern regex (every keyword, case-insensitive, plus the
//! regex of every rule that has no keyword) finds candidate positions; at each, aho-corasick says which
//! keywords start there, and each concerned rule's own regex runs in a window of `max_len` around it.
//! Validators confirm; overlapping findings merge.

use aho_corasick::{AhoCorasick, MatchKind};
use regex_automata::meta::Regex;
use regex_automata::util::captures::Captures;
use regex_automata::util::syntax;
use regex_automata::{Input, PatternID};

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
    validator: Option<Validator>,
    max_len: usize,
}

/// A compiled set of rules. Build once ([`Detector::builtin`]) and share; scanning takes `&self`.
pub struct Detector {
    rules: Vec<Rule>,
    compiled: Vec<Compiled>,
    keywords: AhoCorasick,
    /// Longest keyword, in bytes.
    max_keyword: usize,
    /// Keywords and keyword-less rules in one multi-pattern regex: the single pass over the input.
    prefilter: Regex,
    /// keyword pattern id → the rules it gates.
    keyword_rules: Vec<Vec<usize>>,
    /// Rules with no keyword: run over the whole input.
    everywhere: Vec<usize>,
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

fn compile_many(rule: &str, patterns: &[String]) -> Result<Regex, RuleError> {
    Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
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

/// A keyword as a literal, ASCII case-insensitive pattern.
fn literal(keyword: &str) -> String {
    let mut out = String::from("(?i)");
    for c in keyword.chars() {
        if r"\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Detector {
    /// The built-in rules from `rules/*.yaml`.
    pub fn builtin() -> Result<Self, RuleError> {
        Self::new(Rule::builtin()?)
    }

    /// Compiles `rules`; fails on a bad regex or validator name.
    pub fn new(rules: Vec<Rule>) -> Result<Self, RuleError> {
        let mut compiled = Vec::with_capacity(rules.len());
        let mut words: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut everywhere = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
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
            compiled.push(Compiled {
                re,
                end,
                secret,
                validator,
                max_len: rule.max_len,
            });
            if rule.keywords.is_empty() {
                everywhere.push(i);
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
        let keywords = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&words)
            .map_err(|e| RuleError::Keywords(e.to_string()))?;
        let mut patterns: Vec<String> = words.iter().map(|w| literal(w)).collect();
        patterns.extend(everywhere.iter().map(|&r| rules[r].regex.clone()));
        let prefilter = compile_many("(prefilter)", &patterns)?;
        let max_keyword = words.iter().map(String::len).max().unwrap_or(0);
        Ok(Self {
            rules,
            compiled,
            keywords,
            max_keyword,
            prefilter,
            keyword_rules,
            everywhere,
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
            let mut cur = ws[0];
            for &w in &ws[1..] {
                if w.0 <= cur.1 {
                    cur.1 = cur.1.max(w.1);
                } else {
                    self.search(r, hay, cur, &mut hits);
                    cur = w;
                }
            }
            self.search(r, hay, cur, &mut hits);
        }
        hits.sort_unstable_by_key(|h| (h.start, h.end));
        hits
    }

    /// Per rule, the windows its regex must search: one pass of the prefilter; at each candidate start
    /// (searching again from the next byte, so a candidate inside another is not lost) every keyword
    /// that starts there opens windows for its rules, and every keyword-less rule gets a window.
    fn windows(&self, hay: &[u8]) -> Vec<Vec<(usize, usize)>> {
        let mut windows: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.compiled.len()];
        let mut input = Input::new(hay);
        while let Some(m) = self.prefilter.search(&input) {
            let s = m.start();
            let near = &hay[s..(s + self.max_keyword).min(hay.len())];
            for k in self
                .keywords
                .find_overlapping_iter(near)
                .filter(|k| k.start() == 0)
            {
                for &r in &self.keyword_rules[k.pattern().as_usize()] {
                    let max = self.compiled[r].max_len;
                    windows[r].push((s.saturating_sub(max), (s + k.end() + max).min(hay.len())));
                }
            }
            for &r in &self.everywhere {
                let max = self.compiled[r].max_len;
                windows[r].push((s.saturating_sub(max), (m.end() + max).min(hay.len())));
            }
            if s >= hay.len() {
                break;
            }
            input.set_start(s + 1);
        }
        windows
    }

    fn search(&self, r: usize, hay: &[u8], (from, to): (usize, usize), hits: &mut Vec<Hit>) {
        let c = &self.compiled[r];
        let mut caps: Captures = c.re.create_captures();
        let mut input = Input::new(hay).range(from..to);
        loop {
            c.re.search_captures(&input, &mut caps);
            let Some(m) = caps.get_match() else { break };
            let span = c.secret.and_then(|g| caps.get_group(g)).unwrap_or(m.span());
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
            let next = if valid { hit.end.max(m.end()) } else { m.end() };
            if next >= to || hit.open {
                break;
            }
            input.set_start(next.max(m.start() + 1));
        }
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

impl Detector {
    /// For a block rule: the end of its END marker in `hay`, if present.
    pub(crate) fn block_end(&self, rule: usize, hay: &[u8]) -> Option<usize> {
        self.compiled[rule].end.as_ref()?.find(hay).map(|m| m.end())
    }
}

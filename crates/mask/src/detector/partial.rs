//! Partial candidates at the end of a text, for the stream masker's idle flush: where a rule could
//! still match once more bytes follow, and whether there is evidence enough to mask it already.

use std::sync::PoisonError;

use regex_automata::hybrid;
use regex_automata::util::start;
use regex_automata::{Anchored, Input, PatternID};

use super::compile::syntax_config;
use super::Detector;
use crate::rule::{Rule, RuleError};

/// A keyword this long is evidence enough for a partial candidate (`AKIA`, `password`); shorter ones
/// (`@`) are not.
pub(super) const STRONG_KEYWORD: usize = 3;
/// Evidence a partial candidate of a rule without keywords needs: this many digits in its secret
/// part. A rule with only short keywords (`@`) needs one followed by a dotted name instead
/// (`jane@example.co`, not the `user@host` or `root@10.0.0.5` of an ssh command being typed).
const PARTIAL_DIGITS: usize = 6;
/// DFA steps one idle flush may spend looking for partial candidates; past it, fail closed.
const PARTIAL_BUDGET: usize = 1 << 19;
/// How far back from the end a partial candidate may start (the stream masker's hold-back bound).
const PARTIAL_REACH: usize = crate::text::MAX_HOLD;
/// Idle-flush DFA caches a detector keeps for reuse.
pub(super) const PARTIAL_CACHES: usize = 16;

/// Evidence for a partial candidate of a rule without a strong keyword, starting at `p` with its
/// secret at `q` (see [`PARTIAL_DIGITS`]).
// Inlined into the idle flush's loop, as it was when this file was part of detector.rs: left out of
// line, that loop ran about 6% more instructions (callgrind, interactive text bench).
#[inline]
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
    pub(super) fn partial_dfa(rules: &[Rule]) -> Result<hybrid::dfa::DFA, RuleError> {
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

//! Building a [`Detector`]: each rule checked and compiled (its regex, `end` marker, `secret` group
//! and validator), its keywords into the literal searches and its shapes into the shape set; an
//! operator's extra rules are first checked against their own examples.

use std::sync::Mutex;

use aho_corasick::packed;
use aho_corasick::{AhoCorasick, MatchKind};
use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::PatternID;

use super::partial::STRONG_KEYWORD;
use super::{shape, Detector};
use crate::rule::{Rule, RuleError};
use crate::validate::Validator;

/// One rule, compiled: what the scan and the idle flush run for it.
pub(super) struct Compiled {
    pub(super) re: Regex,
    pub(super) end: Option<Regex>,
    pub(super) secret: Option<usize>,
    /// The part of the regex before the `secret` group, when it compiles on its own: where the secret
    /// of a partial candidate begins (idle flush).
    pub(super) prefix: Option<Regex>,
    pub(super) validator: Option<Validator>,
    pub(super) max_len: usize,
    /// Has a keyword of at least [`STRONG_KEYWORD`] bytes: a partial candidate needs one as evidence.
    pub(super) strong: bool,
}

/// Keywords this long go to the SIMD literal search; shorter ones (`@`) to memchr.
pub(super) const LONG_KEYWORD: usize = 3;

pub(super) fn syntax_config() -> syntax::Config {
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
}

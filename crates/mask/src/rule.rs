//! Rules as data: the YAML files under `rules/`, embedded at build time and parsed into [`Rule`]s.

use serde::Deserialize;

/// The built-in rule files, in the order their rules are numbered.
const BUILTIN: &[(&str, &str)] = &[
    (
        "credentials.yaml",
        include_str!("../rules/credentials.yaml"),
    ),
    ("personal.yaml", include_str!("../rules/personal.yaml")),
];

/// Why a rule set could not be loaded or compiled.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A rule file is not valid YAML for the rule schema.
    #[error("rule file {file}: {message}")]
    Parse {
        /// The file name.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// A rule's regex does not compile.
    #[error("rule {rule}: regex: {message}")]
    Regex {
        /// The rule id.
        rule: String,
        /// The compiler's message.
        message: String,
    },
    /// An unknown validator name.
    #[error(
        "unknown validator {0:?} (expected luhn, iban_mod97, ssn_area_group, phone, base64_user_pass, base64_jwt or entropy>=X)"
    )]
    Validator(String),
    /// The keyword prefilter could not be built.
    #[error("keyword prefilter: {0}")]
    Keywords(String),
    /// Two rules share an id (ids name findings in counts, so they must be unique).
    #[error("rule {0}: duplicate id")]
    Duplicate(String),
    /// A rule field is out of range (empty id, `max_len` 0, a malformed shape).
    #[error("rule {rule}: {message}")]
    Invalid {
        /// The rule id.
        rule: String,
        /// What is wrong.
        message: String,
    },
    /// A rule's own example disagrees with it: a `must_match` example it does not find, or a
    /// `must_not_match` example it does.
    #[error("rule {rule}: {kind} example {example:?} {}", if *.kind == "must_match" { "is not found" } else { "is found" })]
    Example {
        /// The rule id.
        rule: String,
        /// `must_match` or `must_not_match`.
        kind: &'static str,
        /// The example text.
        example: String,
    },
}

/// Examples a rule must (not) match; the tests run them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Examples {
    /// Inputs in which the rule must find something.
    #[serde(default)]
    pub must_match: Vec<String>,
    /// Inputs in which the rule must find nothing.
    #[serde(default)]
    pub must_not_match: Vec<String>,
}

/// One detector rule, as written in a rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id, used in counts of masked items (`aws-access-key-id`).
    pub id: String,
    /// What the rule finds, for operators.
    pub description: String,
    /// ASCII case-insensitive keywords; the regex runs only near one.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Shapes: character-class strings every match contains (`9` a digit, `1` a digit 1-9, `A` an
    /// uppercase and `a` a lowercase ASCII letter, any other byte itself), e.g. `999-99-9999`. For
    /// rules without a keyword (card numbers, phone numbers); the regex runs only near one. A rule
    /// with neither keywords nor shapes runs everywhere, which costs a pass over every byte.
    #[serde(default)]
    pub shapes: Vec<String>,
    /// The pattern (bytes, ASCII classes). A named group `secret` narrows what is masked.
    pub regex: String,
    /// For block rules (PEM): the end marker; the block runs from a `regex` match to this one.
    #[serde(default)]
    pub end: Option<String>,
    /// Longest match in bytes: bounds the search window around a keyword and the stream hold-back.
    pub max_len: usize,
    /// A validator name (`luhn`, `iban_mod97`, `ssn_area_group`, `phone`, `base64_user_pass`,
    /// `base64_jwt`, `entropy>=X`).
    #[serde(default)]
    pub validator: Option<String>,
    /// Examples the tests run.
    #[serde(default)]
    pub examples: Examples,
}

impl Rule {
    /// Every built-in rule, in file order.
    pub fn builtin() -> Result<Vec<Rule>, RuleError> {
        let mut rules = Vec::new();
        for (file, text) in BUILTIN {
            rules.extend(Self::parse_file(file, text)?);
        }
        Ok(rules)
    }

    /// Parses one rule file (a YAML list of rules); `file` names it in errors.
    pub fn parse_file(file: &str, text: &str) -> Result<Vec<Rule>, RuleError> {
        serde_yaml_ng::from_str(text).map_err(|e| RuleError::Parse {
            file: file.to_owned(),
            message: e.to_string(),
        })
    }

    /// Checks the fields the regex compiler does not: a non-empty id, keywords and shapes, `max_len`
    /// at least 1, shapes of 1 to [`MAX_SHAPE`] ASCII bytes without NUL.
    pub(crate) fn check(&self) -> Result<(), RuleError> {
        let invalid = |message: String| RuleError::Invalid {
            rule: self.id.clone(),
            message,
        };
        if self.id.trim().is_empty() {
            return Err(invalid("empty id".to_owned()));
        }
        if self.max_len == 0 {
            return Err(invalid("max_len must be at least 1".to_owned()));
        }
        if self.keywords.iter().any(String::is_empty) {
            return Err(invalid("empty keyword".to_owned()));
        }
        for shape in &self.shapes {
            if shape.is_empty()
                || shape.len() > MAX_SHAPE
                || !shape.bytes().all(|b| b.is_ascii() && b != 0)
            {
                return Err(invalid(format!(
                    "shape {shape:?}: 1 to {MAX_SHAPE} ASCII bytes, no NUL"
                )));
            }
        }
        Ok(())
    }
}

/// The longest shape, in bytes (the shape scan looks one 64-byte block ahead).
pub(crate) const MAX_SHAPE: usize = 64;

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
    #[error("unknown validator {0:?} (expected luhn, iban_mod97, ssn_area_group or entropy>=X)")]
    Validator(String),
    /// The keyword prefilter could not be built.
    #[error("keyword prefilter: {0}")]
    Keywords(String),
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
    /// ASCII case-insensitive keywords; the regex runs only near one. Empty: run everywhere.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The pattern (bytes, ASCII classes). A named group `secret` narrows what is masked.
    pub regex: String,
    /// For block rules (PEM): the end marker; the block runs from a `regex` match to this one.
    #[serde(default)]
    pub end: Option<String>,
    /// Longest match in bytes: bounds the search window around a keyword and the stream hold-back.
    pub max_len: usize,
    /// A validator name (`luhn`, `iban_mod97`, `ssn_area_group`, `entropy>=X`).
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
}

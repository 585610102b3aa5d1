//! The annotations Custos gives meaning to, checked when a policy set loads so that a typo can never
//! turn a review into an allow:
//!
//! | annotation | on | meaning |
//! |---|---|---|
//! | `@id("name")` | any | the policy id in decisions and audit records (unique) |
//! | `@outcome("review")` | permit | a match asks a human instead of allowing; `"allow"` is the default |
//! | `@approvers("g1, g2")` | review permit | groups whose members may approve (required) |
//! | `@hold("2m")` | review permit | how long the request waits for approval |
//! | `@grant("30m")` | review permit | how long an approval covers the same access |
//! | `@reason("...")` | any | why, shown to the caller and kept in the record |
//! | `@threshold("2")` | review permit | distinct approvals needed (1–10; default 1) |
//! | `@grant_scope("namespace")` | review permit | the grant covers the verb and resource in the namespace, any name (default `operation`: exactly the reviewed one) |
//! | `@mask("profile")` | permit | the masking profile (configured under `masking.profiles`) for what it allows |
//! | `@capture("payload")` | permit | port-forward: the bytes each way are recorded too (masked), not only counted |
//!
//! Other annotations (`@doc`, `@owner`, ...) are kept in decisions and otherwise ignored.

use cedar_policy::{Effect, Policy};

/// What a review permit asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReviewSpec {
    pub(crate) approvers: Vec<String>,
    pub(crate) hold_seconds: Option<u64>,
    pub(crate) grant_seconds: Option<u64>,
}

/// A problem with one annotation of one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnnotationError {
    /// The annotation's key, to point at it in the source.
    pub(crate) key: &'static str,
    pub(crate) message: String,
}

/// The review settings of a policy (`None` for an allowing permit or a forbid), or every problem
/// with its annotations.
pub(crate) fn review_spec(policy: &Policy) -> Result<Option<ReviewSpec>, Vec<AnnotationError>> {
    let mut errors = Vec::new();
    let mut err =
        |key: &'static str, message: String| errors.push(AnnotationError { key, message });
    if let Some(id) = policy.annotation("id") {
        if id.trim().is_empty() {
            err("id", "@id must not be empty".into());
        }
    }
    if let Some(p) = policy.annotation("mask") {
        let ok = !p.is_empty()
            && p.len() <= 63
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            err(
                "mask",
                format!("@mask({p:?}) must name a profile: lower-case letters, digits and '-'"),
            );
        } else if policy.effect() == Effect::Forbid {
            err(
                "mask",
                "@mask on a forbid: a forbid never reaches the cluster".into(),
            );
        }
    }
    if let Some(c) = policy.annotation("capture") {
        if c != "payload" {
            err(
                "capture",
                format!("@capture({c:?}) must be \"payload\" (record port-forward bytes)"),
            );
        } else if policy.effect() == Effect::Forbid {
            err(
                "capture",
                "@capture on a forbid: a forbid never reaches the cluster".into(),
            );
        }
    }
    let review = match policy.annotation("outcome") {
        None | Some("allow") => false,
        Some("review") => true,
        Some(other) => {
            err(
                "outcome",
                format!("@outcome({other:?}) is not \"allow\" or \"review\""),
            );
            false
        }
    };
    if review && policy.effect() == Effect::Forbid {
        err(
            "outcome",
            "@outcome(\"review\") on a forbid: a forbid always denies".into(),
        );
    }
    let approvers: Vec<String> = policy
        .annotation("approvers")
        .map(|a| {
            a.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut duration = |key: &'static str| {
        let value = policy.annotation(key)?;
        match parse_duration(value) {
            Ok(seconds) => Some(seconds),
            Err(message) => {
                err(key, format!("@{key}({value:?}): {message}"));
                None
            }
        }
    };
    let hold_seconds = duration("hold");
    let grant_seconds = duration("grant");
    if review && approvers.is_empty() {
        err(
            "outcome",
            "a review policy needs @approvers(\"group, ...\") naming who may approve".into(),
        );
    }
    if let Some(t) = policy.annotation("threshold") {
        if !matches!(t.trim().parse::<u32>(), Ok(1..=10)) {
            err(
                "threshold",
                format!("@threshold({t:?}) must be a number of approvers from 1 to 10"),
            );
        }
    }
    if let Some(g) = policy.annotation("grant_scope") {
        if !matches!(g, "operation" | "namespace") {
            err(
                "grant_scope",
                format!("@grant_scope({g:?}) must be \"operation\" or \"namespace\""),
            );
        }
    }
    if !review {
        for key in ["approvers", "hold", "grant", "threshold", "grant_scope"] {
            if policy.annotation(key).is_some() {
                err(
                    key,
                    format!(
                        "@{key} without @outcome(\"review\"): this policy would allow without review"
                    ),
                );
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(review.then_some(ReviewSpec {
        approvers,
        hold_seconds,
        grant_seconds,
    }))
}

/// Seconds in a duration written like `90s`, `2m`, `1h30m` or `1d`.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration (write e.g. 90s, 2m, 1h30m, 1d)".into());
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10) {
            number = Some(
                number
                    .unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d)))
                    .ok_or("duration too large")?,
            );
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("unexpected {c:?} (units are s, m, h, d)")),
        };
        let n = number.take().ok_or("a unit needs a number before it")?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or("duration too large")?;
    }
    if number.is_some() {
        return Err("a number needs a unit after it (s, m, h, d)".into());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(src: &str) -> Policy {
        Policy::parse(None, src).expect("parses")
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("2m"), Ok(120));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
    }

    #[test]
    fn a_review_permit_carries_approvers_hold_and_grant() {
        let p = policy(
            r#"@outcome("review") @approvers("sre-oncall, platform-admins") @hold("2m") @grant("30m")
               permit(principal, action, resource);"#,
        );
        assert_eq!(
            review_spec(&p),
            Ok(Some(ReviewSpec {
                approvers: vec!["sre-oncall".into(), "platform-admins".into()],
                hold_seconds: Some(120),
                grant_seconds: Some(1800),
            }))
        );
    }

    #[test]
    fn mistakes_that_would_turn_a_review_into_an_allow_are_refused() {
        let keys = |src: &str| -> Vec<&'static str> {
            review_spec(&policy(src))
                .expect_err("refused")
                .iter()
                .map(|e| e.key)
                .collect()
        };
        assert_eq!(
            keys(r#"@approvers("sre") permit(principal, action, resource);"#),
            ["approvers"]
        );
        assert_eq!(
            keys(r#"@outcome("reveiw") permit(principal, action, resource);"#),
            ["outcome"]
        );
        assert_eq!(
            keys(r#"@outcome("review") permit(principal, action, resource);"#),
            ["outcome"]
        );
        assert_eq!(
            keys(r#"@outcome("review") @approvers("x") forbid(principal, action, resource);"#),
            ["outcome"]
        );
        assert_eq!(
            keys(
                r#"@outcome("review") @approvers("x") @hold("soon") permit(principal, action, resource);"#
            ),
            ["hold"]
        );
        assert_eq!(
            keys(r#"@capture("everything") permit(principal, action, resource);"#),
            ["capture"]
        );
        assert_eq!(
            keys(r#"@capture("payload") forbid(principal, action, resource);"#),
            ["capture"]
        );
        assert_eq!(
            review_spec(&policy(
                r#"@capture("payload") permit(principal, action, resource);"#
            )),
            Ok(None)
        );
        assert!(review_spec(&policy(
            r#"@reason("r") @doc("d") forbid(principal, action, resource);"#
        ))
        .expect("ok")
        .is_none());
    }
}

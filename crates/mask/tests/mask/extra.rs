//! Operator rules on top of the built-in ones: parsed from YAML, checked against their own examples,
//! ids unique.

use custos_mask::{mask_text, Detector, Rule, RuleError};

const ACME: &str = r#"
- id: acme-api-key
  description: ACME internal API key
  keywords: [acme_]
  regex: '\bacme_[a-z0-9]{24}\b'
  max_len: 29
  examples:
    must_match: ['ACME_KEY=acme_0123456789abcdefghijklmn']
    must_not_match: ['acme_short']
- id: employee-id
  description: Employee number
  shapes: ['AA-99999']
  regex: '\bEM-[0-9]{5}\b'
  max_len: 8
  examples:
    must_match: ['owner EM-04217']
"#;

fn extra(yaml: &str) -> Vec<Rule> {
    Rule::parse_file("operator.yaml", yaml).expect("parses")
}

#[test]
fn extra_rules_are_added_to_the_builtin_ones() {
    let d = Detector::with_extra(extra(ACME)).expect("accepted");
    assert_eq!(d.rules().len(), Rule::builtin().expect("builtin").len() + 2);
    let mut buf =
        b"k=acme_0123456789abcdefghijklmn owner EM-04217 aws AKIAIOSFODNN7EXAMPLE".to_vec();
    let counts = mask_text(&d, &mut buf);
    assert_eq!(
        String::from_utf8(buf).expect("ascii"),
        "k=***************************** owner ******** aws ********************"
    );
    assert_eq!(counts.get("acme-api-key"), 1);
    assert_eq!(counts.get("employee-id"), 1);
    assert_eq!(counts.get("aws-access-key-id"), 1);
}

#[test]
fn an_id_already_taken_is_refused() {
    let dup_builtin = ACME.replace("acme-api-key", "jwt");
    match Detector::with_extra(extra(&dup_builtin)) {
        Err(RuleError::Duplicate(id)) => assert_eq!(id, "jwt"),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    let dup_extra = ACME.replace("employee-id", "acme-api-key");
    assert!(matches!(
        Detector::with_extra(extra(&dup_extra)),
        Err(RuleError::Duplicate(id)) if id == "acme-api-key"
    ));
}

#[test]
fn a_rule_that_misses_its_own_example_is_refused_naming_both() {
    let wrong = ACME.replace("acme_0123456789abcdefghijklmn", "acme_0123");
    let err = Detector::with_extra(extra(&wrong)).expect_err("refused");
    match &err {
        RuleError::Example {
            rule,
            kind,
            example,
        } => {
            assert_eq!(rule, "acme-api-key");
            assert_eq!(*kind, "must_match");
            assert_eq!(example, "ACME_KEY=acme_0123");
        }
        other => panic!("expected an example error, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("acme-api-key")
            && msg.contains("ACME_KEY=acme_0123")
            && msg.contains("not found"),
        "{msg}"
    );
}

#[test]
fn a_rule_that_finds_its_must_not_match_example_is_refused() {
    let wrong = ACME.replace("'acme_short'", "'acme_abcdefghijklmnopqrstuvwx'");
    let err = Detector::with_extra(extra(&wrong)).expect_err("refused");
    assert!(
        matches!(&err, RuleError::Example { rule, kind: "must_not_match", .. } if rule == "acme-api-key"),
        "{err:?}"
    );
    assert!(err.to_string().contains("is found"), "{err}");
}

#[test]
fn a_rule_whose_keyword_does_not_gate_its_example_is_refused() {
    // The example matches the regex, but the keyword never occurs: the prefilter would never run the
    // rule, so checking examples through the detector catches it.
    let wrong = ACME.replace("keywords: [acme_]", "keywords: [zeta_]");
    assert!(matches!(
        Detector::with_extra(extra(&wrong)),
        Err(RuleError::Example {
            kind: "must_match",
            ..
        })
    ));
}

#[test]
fn bad_fields_are_refused() {
    for (yaml, what) in [
        (ACME.replace("max_len: 29", "max_len: 0"), "max_len"),
        (ACME.replace("'AA-99999'", "''"), "shape"),
        (ACME.replace("regex: '\\bEM-", "regex: '(\\bEM-"), "regex"),
        (
            ACME.replace("  max_len: 8\n", "  max_len: 8\n  validator: nope\n"),
            "validator",
        ),
    ] {
        let err = Detector::with_extra(extra(&yaml)).expect_err(what);
        let msg = err.to_string();
        let named = msg.contains("employee-id") || msg.contains("acme-api-key");
        assert!(named || what == "validator", "{what}: {msg}");
    }
}

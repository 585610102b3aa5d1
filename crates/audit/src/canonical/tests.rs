//! RFC 8785 test data from cyberphone/json-canonicalization (the RFC author's reference repository,
//! `testdata/input` and `testdata/output`, Apache-2.0), and the RFC's own examples.

use super::*;

fn canon(input: &str) -> Result<String, CanonicalError> {
    canonicalize(input.as_bytes()).map(|b| String::from_utf8(b).expect("utf-8"))
}

#[test]
fn arrays() {
    let input = "[\n  56,\n  {\n    \"d\": true,\n    \"10\": null,\n    \"1\": [ ]\n  }\n]\n";
    assert_eq!(
        canon(input).expect("arrays"),
        r#"[56,{"1":[],"10":null,"d":true}]"#
    );
}

#[test]
fn french() {
    let input = r#"{
  "peach": "This sorting order",
  "péché": "is wrong according to French",
  "pêche": "but canonicalization MUST",
  "sin":   "ignore locale"
}"#;
    assert_eq!(
        canon(input).expect("french"),
        r#"{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ignore locale"}"#
    );
}

#[test]
fn structures() {
    // Includes 56.0, an integral float, which ECMAScript (and we) print as 56.
    let input = r#"{
  "1": {"f": {"f": "hi","F": 5} ,"\n": 56.0},
  "10": { },
  "": "empty",
  "a": { },
  "111": [ {"e": "yes","E": "no" } ],
  "A": { }
}"#;
    assert_eq!(
        canon(input).expect("structures"),
        r#"{"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{"E":"no","e":"yes"}],"A":{},"a":{}}"#
    );
}

#[test]
fn unicode_is_not_normalized() {
    let input = "{\n  \"Unnormalized Unicode\":\"A\\u030a\"\n}\n";
    assert_eq!(
        canon(input).expect("unicode"),
        "{\"Unnormalized Unicode\":\"A\u{30a}\"}"
    );
}

#[test]
fn weird_keys_sort_by_utf16() {
    // U+1F602 (a surrogate pair, 0xD83D…) sorts before U+FB33 in UTF-16 although after it in UTF-8.
    let input = r#"{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\u000a": "Newline",
  "1": "One",
  "\u0080": "Control\u007f",
  "\ud83d\ude02": "Smiley",
  "\u00f6": "Latin Small Letter O With Diaeresis",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "</script>": "Browser Challenge"
}"#;
    let want = "{\"\\n\":\"Newline\",\"\\r\":\"Carriage Return\",\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\u{80}\":\"Control\u{7f}\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😂\":\"Smiley\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
    assert_eq!(canon(input).expect("weird"), want);
}

#[test]
fn values_string_and_literals() {
    // values.json without its float array (floats are outside our subset, see below).
    let input = r#"{"string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]}"#;
    assert_eq!(
        canon(input).expect("values"),
        r#"{"literals":[null,true,false],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
    );
}

#[test]
fn values_with_floats_are_refused_with_a_path() {
    let input =
        r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]}"#;
    let err = canon(input).expect_err("floats refused");
    assert!(
        matches!(&err, CanonicalError::Number { path, .. } if path == "/numbers/0"),
        "{err}"
    );
}

#[test]
fn integers_beyond_2_pow_53_are_refused() {
    assert_eq!(
        canon("[9007199254740991,-9007199254740991]").expect("safe"),
        "[9007199254740991,-9007199254740991]"
    );
    assert!(canon("[9007199254740992]").is_err());
    assert!(canon("{\"a/b\":{\"c\":-9007199254740992}}").is_err());
    assert_eq!(canon("[-0.0, 1e2]").expect("integral floats"), "[0,100]");
}

#[test]
fn check_rejects_non_canonical_bytes() {
    check(br#"{"a":1,"b":[true]}"#).expect("canonical");
    assert_eq!(
        check(br#"{"b":1,"a":2}"#),
        Err(CanonicalError::NotCanonical { offset: 2 })
    );
    assert!(check(br#"{"a": 1}"#).is_err());
    assert!(check(br#"{"a":1,"a":1}"#).is_err(), "duplicate keys");
    assert!(check(br#"{"a":"\u0041"}"#).is_err(), "needless escape");
    assert!(check(b"{\"a\":1}\n").is_err(), "trailing newline");
}

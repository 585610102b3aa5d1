use super::*;
use custos_testkit::jwt::hostile;
use custos_testkit::TestIssuer;
use serde_json::json;

fn issuer() -> TestIssuer {
    TestIssuer::new("https://idp.test")
}

fn malformed(token: &str) -> &'static str {
    match parse(token) {
        Err(AuthnError::MalformedToken(reason)) => reason,
        other => panic!("expected MalformedToken, got {other:?}"),
    }
}

#[test]
fn valid_token_parses_into_header_and_claims() {
    let issuer = issuer();
    let token = issuer.token(&issuer.claims("alice"));
    let parsed = parse(&token).expect("parses");
    assert_eq!(parsed.header.alg, "RS256");
    assert_eq!(parsed.header.kid.as_deref(), Some("rsa-a"));
    assert_eq!(parsed.claims["sub"], "alice");
    assert!(token.starts_with(parsed.signing_input));
    assert!(token.ends_with(parsed.signature));
}

#[test]
fn oversize_token_is_rejected_before_decoding() {
    let token = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert!(matches!(
        parse(&token),
        Err(AuthnError::TokenTooLarge { len, max }) if len == MAX_TOKEN_BYTES + 1 && max == MAX_TOKEN_BYTES
    ));
}

#[test]
fn garbage_is_malformed() {
    for garbage in [
        "", "abc", "a.b", "a.b.c.d", "...", "!!.??.**", "e30.e30.", "e30..sig",
    ] {
        malformed(garbage);
    }
}

#[test]
fn header_must_be_an_object_with_a_string_alg() {
    let claims = json!({"sub": "x"});
    malformed(&hostile::raw(&json!(["RS256"]), &claims));
    malformed(&hostile::raw(&json!({"alg": 5}), &claims));
    malformed(&hostile::raw(&json!({"typ": "JWT"}), &claims));
}

#[test]
fn payload_must_be_a_json_object() {
    let reason = malformed(&hostile::raw(
        &json!({"alg": "RS256"}),
        &json!("just a string"),
    ));
    assert!(reason.contains("payload"));
}

#[test]
fn critical_header_extensions_are_refused() {
    let token = hostile::raw(
        &json!({"alg": "RS256", "crit": ["b64"], "b64": false}),
        &json!({}),
    );
    assert!(malformed(&token).contains("crit"));
}

#[test]
fn alg_none_token_parses_so_the_verifier_can_name_the_algorithm() {
    let token = hostile::alg_none(&json!({"sub": "mallory"}), "rsa-a");
    let parsed = parse(&token).expect("parses");
    assert_eq!(parsed.header.alg, "none");
    assert!(parsed.signature.is_empty());
}

#[test]
fn padded_or_standard_base64_is_refused() {
    let issuer = issuer();
    let token = issuer.token(&issuer.claims("alice"));
    let padded = format!("{token}==");
    malformed(&padded);
    let plus = token.replacen('-', "+", 1).replacen('_', "/", 1);
    if plus != token {
        malformed(&plus);
    }
}

#[test]
fn truncate_bounds_attacker_text() {
    assert_eq!(truncate("short", 10), "short");
    assert_eq!(truncate("abcdef", 3), "abc…");
    assert_eq!(truncate("a\nb\u{1b}[31m", 20), "a?b?[31m");
}

use super::*;
use serde_json::json;

const NOW: u64 = 1_700_000_000;
const ISSUER: &str = "https://idp.example.com";

fn config() -> OidcIssuerConfig {
    OidcIssuerConfig::new(ISSUER, vec!["custos".into(), "kubectl".into()])
}

fn claims(extra: Value) -> Map<String, Value> {
    let mut base = json!({
        "iss": ISSUER, "aud": "custos", "sub": "alice-id", "exp": NOW + 600, "iat": NOW, "nbf": NOW,
    });
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    match base {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

fn map(cfg: &OidcIssuerConfig, claims: &Map<String, Value>) -> Result<Identity, AuthnError> {
    to_identity(cfg, claims, "header.payload.sig", NOW)
}

#[test]
fn valid_claims_map_to_a_prefixed_identity() {
    let id = map(
        &config(),
        &claims(json!({"groups": ["dev", "ops"], "jti": "j1"})),
    )
    .expect("valid");
    assert_eq!(id.user.username, "https://idp.example.com#alice-id");
    assert_eq!(id.user.uid.as_deref(), Some("alice-id"));
    assert_eq!(id.user.groups, vec!["dev", "ops"]);
    assert_eq!(id.token_id.as_deref(), Some("j1"));
    assert_eq!(id.expires_at, Some(NOW + 600));
    assert_eq!(
        id.method,
        AuthMethod::Oidc {
            issuer: ISSUER.into()
        }
    );
    let claims = id.claims.expect("claims");
    assert_eq!(claims.aud, vec!["custos"]);
    assert_eq!(claims.sub.as_deref(), Some("alice-id"));
}

#[test]
fn token_without_jti_gets_a_fingerprint_not_the_token() {
    let id = map(&config(), &claims(json!({}))).expect("valid");
    let token_id = id.token_id.expect("token id");
    assert!(token_id.starts_with("sha256:"));
    assert!(!token_id.contains("payload"));
}

#[test]
fn expiry_is_checked_with_clock_skew() {
    let cfg = config();
    assert!(map(&cfg, &claims(json!({"exp": NOW - 30}))).is_ok());
    assert!(matches!(
        map(&cfg, &claims(json!({"exp": NOW - 31}))),
        Err(AuthnError::Expired)
    ));
}

#[test]
fn missing_exp_is_rejected() {
    let mut c = claims(json!({}));
    c.remove("exp");
    assert!(
        matches!(map(&config(), &c), Err(AuthnError::MissingClaim { claim }) if claim == "exp")
    );
}

#[test]
fn not_before_and_issued_at_in_the_future_are_rejected() {
    let cfg = config();
    assert!(map(&cfg, &claims(json!({"nbf": NOW + 30}))).is_ok());
    assert!(matches!(
        map(&cfg, &claims(json!({"nbf": NOW + 31}))),
        Err(AuthnError::NotYetValid)
    ));
    assert!(matches!(
        map(&cfg, &claims(json!({"iat": NOW + 3600}))),
        Err(AuthnError::IssuedInFuture)
    ));
}

#[test]
fn numeric_dates_must_be_non_negative_numbers() {
    let cfg = config();
    assert!(map(&cfg, &claims(json!({"exp": (NOW + 10) as f64 + 0.5}))).is_ok());
    for bad in [json!("soon"), json!(-1), json!(null), json!(-0.5)] {
        assert!(
            matches!(
                map(&cfg, &claims(json!({"exp": bad}))),
                Err(AuthnError::InvalidClaim { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn audience_must_contain_a_configured_client_id() {
    let cfg = config();
    assert!(map(&cfg, &claims(json!({"aud": ["other", "kubectl"]}))).is_ok());
    assert!(matches!(
        map(&cfg, &claims(json!({"aud": "other"}))),
        Err(AuthnError::WrongAudience)
    ));
    assert!(matches!(
        map(&cfg, &claims(json!({"aud": []}))),
        Err(AuthnError::WrongAudience)
    ));
    assert!(matches!(
        map(&cfg, &claims(json!({"aud": [1]}))),
        Err(AuthnError::InvalidClaim { .. })
    ));
    let mut c = claims(json!({}));
    c.remove("aud");
    assert!(matches!(
        map(&cfg, &c),
        Err(AuthnError::MissingClaim { .. })
    ));
}

#[test]
fn wrong_issuer_is_rejected() {
    assert!(matches!(
        map(
            &config(),
            &claims(json!({"iss": "https://evil.example.com"}))
        ),
        Err(AuthnError::UnknownIssuer { .. })
    ));
}

#[test]
fn missing_or_empty_username_claim_is_rejected() {
    let mut cfg = config();
    cfg.username_claim = "preferred_username".into();
    assert!(matches!(
        map(&cfg, &claims(json!({}))),
        Err(AuthnError::MissingClaim { claim }) if claim == "preferred_username"
    ));
    assert!(matches!(
        map(&cfg, &claims(json!({"preferred_username": ""}))),
        Err(AuthnError::InvalidClaim { .. })
    ));
    assert!(matches!(
        map(&cfg, &claims(json!({"preferred_username": 7}))),
        Err(AuthnError::InvalidClaim { .. })
    ));
}

#[test]
fn email_username_requires_email_verified_unless_allowed() {
    let mut cfg = config();
    cfg.username_claim = "email".into();
    let verified = claims(json!({"email": "a@example.com", "email_verified": true}));
    assert_eq!(
        map(&cfg, &verified).expect("verified").user.username,
        "a@example.com"
    );
    for unverified in [
        json!({"email": "a@example.com", "email_verified": false}),
        json!({"email": "a@example.com"}),
    ] {
        assert!(matches!(
            map(&cfg, &claims(unverified)),
            Err(AuthnError::EmailNotVerified)
        ));
    }
    cfg.allow_unverified_email = true;
    assert!(map(&cfg, &claims(json!({"email": "a@example.com"}))).is_ok());
}

#[test]
fn username_prefix_settings_apply() {
    let mut cfg = config();
    cfg.username_prefix = Some("-".into());
    assert_eq!(
        map(&cfg, &claims(json!({}))).expect("valid").user.username,
        "alice-id"
    );
    cfg.username_prefix = Some("oidc:".into());
    assert_eq!(
        map(&cfg, &claims(json!({}))).expect("valid").user.username,
        "oidc:alice-id"
    );
}

#[test]
fn groups_claim_may_be_a_string_or_strings_and_gets_the_prefix() {
    let mut cfg = config();
    cfg.groups_prefix = Some("oidc:".into());
    let one = map(&cfg, &claims(json!({"groups": "dev"}))).expect("string");
    assert_eq!(one.user.groups, vec!["oidc:dev"]);
    let none = map(&cfg, &claims(json!({}))).expect("absent");
    assert!(none.user.groups.is_empty());
    for bad in [json!(5), json!({"a": 1}), json!(["dev", 5]), json!(true)] {
        assert!(
            matches!(
                map(&cfg, &claims(json!({"groups": bad}))),
                Err(AuthnError::InvalidClaim { .. })
            ),
            "{bad}"
        );
    }
    cfg.groups_claim = String::new();
    assert!(map(&cfg, &claims(json!({"groups": 5})))
        .expect("ignored")
        .user
        .groups
        .is_empty());
}

#[test]
fn required_claims_must_match_exactly() {
    let mut cfg = config();
    cfg.required_claims
        .insert("hd".into(), "example.com".into());
    assert!(map(&cfg, &claims(json!({"hd": "example.com"}))).is_ok());
    for bad in [
        json!({"hd": "evil.com"}),
        json!({"hd": ["example.com"]}),
        json!({}),
    ] {
        assert!(
            matches!(map(&cfg, &claims(bad)), Err(AuthnError::RequiredClaimMismatch { claim }) if claim == "hd")
        );
    }
}

#[test]
fn system_names_cannot_be_minted_by_an_idp() {
    let mut cfg = config();
    cfg.username_prefix = Some("-".into());
    assert!(matches!(
        map(&cfg, &claims(json!({"sub": "system:admin"}))),
        Err(AuthnError::ReservedName {
            what: "username",
            ..
        })
    ));
    assert!(matches!(
        map(&cfg, &claims(json!({"groups": ["dev", "system:masters"]}))),
        Err(AuthnError::ReservedName { what: "group", .. })
    ));
    cfg.groups_prefix = Some("oidc:".into());
    assert!(map(&cfg, &claims(json!({"groups": ["system:masters"]}))).is_ok());
}

#[test]
fn uid_claim_can_be_disabled() {
    let mut cfg = config();
    cfg.uid_claim = String::new();
    assert_eq!(map(&cfg, &claims(json!({}))).expect("valid").user.uid, None);
}

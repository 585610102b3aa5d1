//! [`OidcIssuerConfig`]: one trusted issuer, with the apiserver's `--oidc-*` defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// A signature algorithm an issuer may use. `none` and the HMAC family cannot be expressed: a
/// gateway that holds only public keys must never accept a symmetric signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[serde(rename = "RS256")]
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    #[serde(rename = "RS384")]
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    #[serde(rename = "RS512")]
    Rs512,
    /// RSASSA-PSS with SHA-256.
    #[serde(rename = "PS256")]
    Ps256,
    /// RSASSA-PSS with SHA-384.
    #[serde(rename = "PS384")]
    Ps384,
    /// RSASSA-PSS with SHA-512.
    #[serde(rename = "PS512")]
    Ps512,
    /// ECDSA P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// ECDSA P-384 with SHA-384.
    #[serde(rename = "ES384")]
    Es384,
    /// Ed25519.
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    /// Every supported algorithm.
    pub const ALL: [SigningAlg; 9] = [
        SigningAlg::Rs256,
        SigningAlg::Rs384,
        SigningAlg::Rs512,
        SigningAlg::Ps256,
        SigningAlg::Ps384,
        SigningAlg::Ps512,
        SigningAlg::Es256,
        SigningAlg::Es384,
        SigningAlg::EdDsa,
    ];

    /// The JOSE name (`RS256`, `EdDSA`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Rs384 => "RS384",
            SigningAlg::Rs512 => "RS512",
            SigningAlg::Ps256 => "PS256",
            SigningAlg::Ps384 => "PS384",
            SigningAlg::Ps512 => "PS512",
            SigningAlg::Es256 => "ES256",
            SigningAlg::Es384 => "ES384",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    /// The algorithm with JOSE name `name` (case-sensitive), if supported.
    pub fn from_name(name: &str) -> Option<SigningAlg> {
        SigningAlg::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            SigningAlg::Rs256 => A::RS256,
            SigningAlg::Rs384 => A::RS384,
            SigningAlg::Rs512 => A::RS512,
            SigningAlg::Ps256 => A::PS256,
            SigningAlg::Ps384 => A::PS384,
            SigningAlg::Ps512 => A::PS512,
            SigningAlg::Es256 => A::ES256,
            SigningAlg::Es384 => A::ES384,
            SigningAlg::EdDsa => A::EdDSA,
        }
    }
}

/// One trusted OIDC issuer, configured like the apiserver's `--oidc-*` flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuerConfig {
    /// The issuer URL; must be https and equal the token's `iss` and the discovery document's `issuer`
    /// exactly (a trailing slash matters).
    pub issuer_url: String,
    /// Accepted client ids: the token's `aud` must contain at least one.
    pub audiences: Vec<String>,
    /// The claim that holds the username (default `sub`).
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Prefix for usernames. `None`: the apiserver's default (`<issuer_url>#` unless the claim is
    /// `email`); `"-"`: no prefix.
    #[serde(default)]
    pub username_prefix: Option<String>,
    /// The claim that holds the groups (default `groups`); an empty string maps no groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Prefix for every group name (default none).
    #[serde(default)]
    pub groups_prefix: Option<String>,
    /// The claim that becomes the user's uid (default `sub`); an empty string sets none.
    #[serde(default = "default_uid_claim")]
    pub uid_claim: String,
    /// Claims that must be present as strings with exactly these values.
    #[serde(default)]
    pub required_claims: BTreeMap<String, String>,
    /// PEM CA bundle for the issuer's https endpoints. Like `--oidc-ca-file`, when set it *replaces*
    /// the system roots; when unset the system roots are used.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accepted signature algorithms (default `["RS256"]`).
    #[serde(default = "default_signing_algs")]
    pub signing_algs: Vec<SigningAlg>,
    /// Leeway for `exp`, `nbf` and `iat`, in seconds (default 30, at most 300).
    #[serde(default = "default_clock_skew_secs")]
    pub clock_skew_secs: u64,
    /// The least time between two JWKS fetches triggered by unknown key ids, in seconds (default 10).
    #[serde(default = "default_jwks_min_refresh_secs")]
    pub jwks_min_refresh_secs: u64,
    /// Accept `email` as the username when `email_verified` is absent or false (default false).
    #[serde(default)]
    pub allow_unverified_email: bool,
}

fn default_username_claim() -> String {
    "sub".to_string()
}
fn default_groups_claim() -> String {
    "groups".to_string()
}
fn default_uid_claim() -> String {
    "sub".to_string()
}
fn default_signing_algs() -> Vec<SigningAlg> {
    vec![SigningAlg::Rs256]
}
fn default_clock_skew_secs() -> u64 {
    30
}
fn default_jwks_min_refresh_secs() -> u64 {
    10
}

/// The largest clock skew a configuration may allow.
const MAX_CLOCK_SKEW_SECS: u64 = 300;

impl OidcIssuerConfig {
    /// A configuration for `issuer_url` and `audiences` with every other field at its default.
    pub fn new(issuer_url: impl Into<String>, audiences: Vec<String>) -> Self {
        OidcIssuerConfig {
            issuer_url: issuer_url.into(),
            audiences,
            username_claim: default_username_claim(),
            username_prefix: None,
            groups_claim: default_groups_claim(),
            groups_prefix: None,
            uid_claim: default_uid_claim(),
            required_claims: BTreeMap::new(),
            ca_file: None,
            signing_algs: default_signing_algs(),
            clock_skew_secs: default_clock_skew_secs(),
            jwks_min_refresh_secs: default_jwks_min_refresh_secs(),
            allow_unverified_email: false,
        }
    }

    /// Checks every field; the error names the first field at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = url::Url::parse(&self.issuer_url)
            .map_err(|e| self.invalid("issuer_url", e.to_string()))?;
        if url.scheme() != "https" {
            return Err(self.invalid("issuer_url", "must be an https URL"));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(self.invalid("issuer_url", "must not have a query, fragment or user info"));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(self.invalid("audiences", "needs at least one non-empty client id"));
        }
        if self.username_claim.is_empty() {
            return Err(self.invalid("username_claim", "must not be empty"));
        }
        if self.username_prefix.as_deref() == Some("") {
            return Err(self.invalid(
                "username_prefix",
                "empty; leave it unset for the default or use \"-\" for none",
            ));
        }
        if self.signing_algs.is_empty() {
            return Err(self.invalid("signing_algs", "needs at least one algorithm"));
        }
        if self.clock_skew_secs > MAX_CLOCK_SKEW_SECS {
            return Err(self.invalid("clock_skew_secs", format!("at most {MAX_CLOCK_SKEW_SECS}")));
        }
        if self.jwks_min_refresh_secs == 0 {
            return Err(self.invalid("jwks_min_refresh_secs", "must be at least 1"));
        }
        if self.required_claims.keys().any(String::is_empty) {
            return Err(self.invalid("required_claims", "claim names must not be empty"));
        }
        Ok(())
    }

    /// The prefix put before every username, after applying the apiserver's defaults.
    pub fn effective_username_prefix(&self) -> String {
        match self.username_prefix.as_deref() {
            Some("-") => String::new(),
            Some(prefix) => prefix.to_string(),
            None if self.username_claim == "email" => String::new(),
            None => format!("{}#", self.issuer_url),
        }
    }

    pub(crate) fn min_refresh_interval(&self) -> Duration {
        Duration::from_secs(self.jwks_min_refresh_secs)
    }

    fn invalid(&self, field: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Oidc {
            issuer: self.issuer_url.clone(),
            field,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OidcIssuerConfig {
        OidcIssuerConfig::new("https://idp.example.com", vec!["custos".into()])
    }

    fn field_at_fault(cfg: &OidcIssuerConfig) -> &'static str {
        match cfg.validate() {
            Err(ConfigError::Oidc { field, .. }) => field,
            other => panic!("expected an Oidc error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_apiserver() {
        let cfg = config();
        cfg.validate().expect("valid");
        assert_eq!(cfg.username_claim, "sub");
        assert_eq!(cfg.groups_claim, "groups");
        assert_eq!(cfg.signing_algs, vec![SigningAlg::Rs256]);
        assert_eq!(cfg.effective_username_prefix(), "https://idp.example.com#");
    }

    #[test]
    fn username_prefix_dash_means_none_and_email_has_no_default_prefix() {
        let mut cfg = config();
        cfg.username_prefix = Some("-".into());
        assert_eq!(cfg.effective_username_prefix(), "");
        cfg.username_prefix = None;
        cfg.username_claim = "email".into();
        assert_eq!(cfg.effective_username_prefix(), "");
        cfg.username_prefix = Some("oidc:".into());
        assert_eq!(cfg.effective_username_prefix(), "oidc:");
    }

    #[test]
    fn invalid_fields_are_named() {
        let mut cfg = config();
        cfg.issuer_url = "http://idp.example.com".into();
        assert_eq!(field_at_fault(&cfg), "issuer_url");
        let mut cfg = config();
        cfg.audiences.clear();
        assert_eq!(field_at_fault(&cfg), "audiences");
        let mut cfg = config();
        cfg.signing_algs.clear();
        assert_eq!(field_at_fault(&cfg), "signing_algs");
        let mut cfg = config();
        cfg.clock_skew_secs = 3600;
        assert_eq!(field_at_fault(&cfg), "clock_skew_secs");
        let mut cfg = config();
        cfg.username_prefix = Some(String::new());
        assert_eq!(field_at_fault(&cfg), "username_prefix");
        let mut cfg = config();
        cfg.jwks_min_refresh_secs = 0;
        assert_eq!(field_at_fault(&cfg), "jwks_min_refresh_secs");
    }

    #[test]
    fn hmac_and_none_cannot_be_configured() {
        for alg in ["HS256", "none", "HS512", "rs256"] {
            let parsed: Result<SigningAlg, _> = serde_json::from_value(serde_json::json!(alg));
            assert!(parsed.is_err(), "{alg} must not parse");
            assert_eq!(SigningAlg::from_name(alg), None);
        }
        assert_eq!(SigningAlg::from_name("PS384"), Some(SigningAlg::Ps384));
    }

    #[test]
    fn config_deserialises_with_defaults_and_refuses_unknown_fields() {
        let cfg: OidcIssuerConfig = serde_json::from_value(serde_json::json!({
            "issuer_url": "https://idp.example.com",
            "audiences": ["custos"],
            "signing_algs": ["RS256", "ES256"],
        }))
        .expect("parses");
        assert_eq!(cfg.clock_skew_secs, 30);
        assert_eq!(cfg.signing_algs, vec![SigningAlg::Rs256, SigningAlg::Es256]);
        let unknown: Result<OidcIssuerConfig, _> = serde_json::from_value(serde_json::json!({
            "issuer_url": "https://idp.example.com", "audiences": ["x"], "usernameClaim": "email",
        }));
        assert!(unknown.is_err());
    }
}

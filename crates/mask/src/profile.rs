//! Masking profiles: what is masked for whom. Policy names a profile per request (`@mask("name")`);
//! the default masks everything. A profile only ever loosens what the *client* sees: records are
//! always masked with the strict profile.

use serde::Deserialize;

/// The base64-free marker that replaces a masked value (`stringData`, env values, tokens).
pub const MARKER: &str = "custos:masked";

/// [`MARKER`] in standard base64: replaces masked `data` values so typed clients still decode them.
pub const MARKER_BASE64: &str = "Y3VzdG9zOm1hc2tlZA==";

/// Masked or shown to the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reveal {
    /// Replaced by the marker (the default).
    #[default]
    Mask,
    /// Passed to the client unmasked (the record still holds it masked).
    Reveal,
}

/// How a Helm release Secret's `data.release` (base64 → gzip → JSON) reaches the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HelmReleases {
    /// The whole release replaced by the marker (the default): helm cannot read it.
    #[default]
    Mask,
    /// Decoded, values and rendered Secrets inside masked, re-encoded: helm can read it.
    Inside,
    /// Passed unmasked (the record still holds it masked): helm works as without Custos.
    Reveal,
}

/// A response Custos cannot parse (protobuf the apiserver sent anyway, broken JSON, an unknown
/// content type on a proxied service).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unparseable {
    /// Refused with 502 (the default): nothing passes unmasked.
    #[default]
    Refuse,
    /// Passed through unmasked; the record holds only its size.
    Pass,
}

/// What one profile masks for the client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// Secret `data` and `stringData` values.
    #[serde(default)]
    pub secrets: Reveal,
    /// Helm release Secrets (`helm.sh/release.v1`).
    #[serde(default)]
    pub helm_releases: HelmReleases,
    /// Responses Custos cannot parse.
    #[serde(default)]
    pub unparseable: Unparseable,
}

impl Profile {
    /// The default: everything masked, unparseable responses refused.
    pub fn strict() -> Self {
        Self::default()
    }

    /// Whether this profile masks exactly what the strict one does (then the client's bytes can be
    /// recorded as they are).
    pub fn is_strict(&self) -> bool {
        self.secrets == Reveal::Mask && self.helm_releases == HelmReleases::Mask
    }
}

/// Whether `body` carries a value Custos masked (the marker, plain or base64). A write carrying one
/// would overwrite a real secret with the marker: the gateway refuses it.
pub fn carries_marker(body: &[u8]) -> bool {
    const NEEDLES: [&[u8]; 2] = [MARKER.as_bytes(), b"Y3VzdG9zOm1hc2tlZA"];
    NEEDLES
        .iter()
        .any(|n| body.windows(n.len()).any(|w| w == *n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn marker_base64_decodes_to_the_marker() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(MARKER_BASE64)
            .expect("test step");
        assert_eq!(decoded, MARKER.as_bytes());
    }

    #[test]
    fn default_profile_is_strict_and_refuses_unparseable() {
        let p = Profile::default();
        assert!(p.is_strict());
        assert_eq!(p.unparseable, Unparseable::Refuse);
        let deploy: Profile = serde_yaml_ng::from_str("helmReleases: reveal").expect("test step");
        assert!(!deploy.is_strict());
        assert!(serde_yaml_ng::from_str::<Profile>("helmReleases: maybe").is_err());
        assert!(serde_yaml_ng::from_str::<Profile>("secret: reveal").is_err());
    }

    #[test]
    fn bodies_with_the_marker_are_recognised() {
        assert!(carries_marker(br#"{"data":{"p":"Y3VzdG9zOm1hc2tlZA=="}}"#));
        assert!(carries_marker(br#"{"env":[{"value":"custos:masked"}]}"#));
        assert!(!carries_marker(br#"{"data":{"p":"aHVudGVyMg=="}}"#));
    }
}

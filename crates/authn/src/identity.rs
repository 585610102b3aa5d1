//! [`Identity`]: who a request comes from, as it goes into policy decisions and audit records.

use custos_kube::UserInfo;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An authenticated caller. Safe to log and store: it never holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The user as impersonated upstream (username and groups already prefixed).
    pub user: UserInfo,
    /// How the caller authenticated.
    pub method: AuthMethod,
    /// The token's `jti`, or `sha256:<16 hex>` of the token, or `sha256:<64 hex>` of a client
    /// certificate; never the token itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// When the credential expires, in Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The token's non-secret registered claims, for OIDC tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<IdentityClaims>,
}

/// How a caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthMethod {
    /// An OIDC ID token from `issuer`.
    Oidc {
        /// The issuer URL.
        issuer: String,
    },
    /// A client certificate signed by the configured client CA.
    ClientCert,
    /// A token from the static (break-glass) token file.
    StaticToken,
}

/// The non-secret registered claims of an OIDC token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityClaims {
    /// `iss`.
    pub iss: String,
    /// `sub`, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// `aud`, always as a list.
    #[serde(default)]
    pub aud: Vec<String>,
}

/// `sha256:` and the first 8 bytes (16 hex digits) of the token's SHA-256: enough to correlate audit
/// records, too short to help anyone who does not already hold the token.
pub(crate) fn token_fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    format!("sha256:{}", hex(&digest[..8]))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_short_and_does_not_contain_the_token() {
        let fp = token_fingerprint("secret-token-value");
        assert_eq!(fp.len(), "sha256:".len() + 16);
        assert!(!fp.contains("secret"));
        assert_eq!(fp, token_fingerprint("secret-token-value"));
    }

    #[test]
    fn identity_serialises_method_as_a_tagged_object() {
        let id = Identity {
            user: UserInfo {
                username: "alice".into(),
                ..UserInfo::default()
            },
            method: AuthMethod::Oidc {
                issuer: "https://idp".into(),
            },
            token_id: Some("jti-1".into()),
            expires_at: Some(10),
            claims: None,
        };
        let json = serde_json::to_value(&id).expect("serialise");
        assert_eq!(json["method"]["type"], "oidc");
        assert_eq!(json["method"]["issuer"], "https://idp");
        assert!(json.get("claims").is_none());
        let back: Identity = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, id);
    }
}

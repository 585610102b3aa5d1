//! [`Authenticator`]: the one entry point the gateway calls; picks the credential and the checker.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{
    identity_from_client_cert, AuthnError, ClientCertConfig, ConfigError, Identity,
    IssuerReadiness, OidcAuthenticator, OidcIssuerConfig, StaticTokens,
};

/// The authentication section of the gateway's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthnConfig {
    /// Trusted OIDC issuers.
    #[serde(default)]
    pub oidc: Vec<OidcIssuerConfig>,
    /// Client certificate authentication, when enabled.
    #[serde(default)]
    pub client_cert: Option<ClientCertConfig>,
    /// The break-glass static token file, when enabled.
    #[serde(default)]
    pub static_token_file: Option<PathBuf>,
}

/// Authenticates requests by bearer token (static tokens, then OIDC) or client certificate.
#[derive(Debug, Default)]
pub struct Authenticator {
    static_tokens: Option<StaticTokens>,
    oidc: Option<OidcAuthenticator>,
    client_certs: bool,
    verified: VerifiedTokens,
}

/// How long a verified token is trusted without checking its signature again (bounded by its `exp`).
pub const VERIFIED_TOKEN_TTL_SECS: u64 = 10;
/// How many verified tokens are remembered at most.
pub const VERIFIED_TOKEN_CAPACITY: usize = 10_000;

/// Tokens whose signature and claims were checked recently, keyed by their SHA-256 (never the token).
///
/// Re-verifying an RS256 signature on every request of a busy client costs more CPU than the rest of
/// the gateway's work on that request; the apiserver caches successful token authentication for 10 s
/// for the same reason, and so do we. An entry lives at most [`VERIFIED_TOKEN_TTL_SECS`] and never past
/// the token's `exp`, so a key removed from the IdP's JWKS stops being honoured within seconds.
#[derive(Debug, Default)]
struct VerifiedTokens {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], (Identity, u64)>>,
}

impl VerifiedTokens {
    fn key(token: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    fn get(&self, key: &[u8; 32], now: u64) -> Option<Identity> {
        let map = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key)
            .filter(|(_, until)| now < *until)
            .map(|(id, _)| id.clone())
    }

    fn put(&self, key: [u8; 32], identity: &Identity, now: u64) {
        let until = identity
            .expires_at
            .map_or(now + VERIFIED_TOKEN_TTL_SECS, |exp| {
                exp.min(now + VERIFIED_TOKEN_TTL_SECS)
            });
        let mut map = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= VERIFIED_TOKEN_CAPACITY {
            map.retain(|_, (_, u)| now < *u);
            if map.len() >= VERIFIED_TOKEN_CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (identity.clone(), until));
    }
}

impl Authenticator {
    /// An authenticator that accepts nothing until methods are added with the `with_*` builders.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds every configured method: validates the OIDC issuers, loads the static token file.
    pub fn from_config(config: &AuthnConfig) -> Result<Self, ConfigError> {
        let mut authn = Authenticator::new();
        if let Some(path) = &config.static_token_file {
            authn = authn.with_static_tokens(StaticTokens::load(path)?);
        }
        if !config.oidc.is_empty() {
            authn = authn.with_oidc(OidcAuthenticator::new(config.oidc.clone())?);
        }
        if config.client_cert.is_some() {
            authn = authn.with_client_certs();
        }
        Ok(authn)
    }

    /// Accepts the given static tokens (checked before OIDC).
    pub fn with_static_tokens(mut self, tokens: StaticTokens) -> Self {
        self.static_tokens = Some(tokens);
        self
    }

    /// Accepts tokens from these OIDC issuers.
    pub fn with_oidc(mut self, oidc: OidcAuthenticator) -> Self {
        self.oidc = Some(oidc);
        self
    }

    /// Accepts client certificates (which the TLS layer has verified against the client CA).
    pub fn with_client_certs(mut self) -> Self {
        self.client_certs = true;
        self
    }

    /// The OIDC authenticator, when configured.
    pub fn oidc(&self) -> Option<&OidcAuthenticator> {
        self.oidc.as_ref()
    }

    /// Authenticates at the current time; see [`authenticate_at`](Self::authenticate_at).
    pub async fn authenticate(
        &self,
        bearer: Option<&str>,
        client_cert: Option<&[u8]>,
    ) -> Result<Identity, AuthnError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.authenticate_at(bearer, client_cert, now).await
    }

    /// Authenticates a request at `now` (Unix seconds).
    ///
    /// A bearer token wins over a client certificate, and an invalid bearer token is an error even
    /// when a valid certificate is also presented: an ambiguous request is refused, not guessed at.
    /// A client certificate is used only when client certificate authentication is enabled.
    pub async fn authenticate_at(
        &self,
        bearer: Option<&str>,
        client_cert: Option<&[u8]>,
        now: u64,
    ) -> Result<Identity, AuthnError> {
        if let Some(token) = bearer {
            return self.authenticate_bearer(token, now).await;
        }
        match client_cert {
            Some(der) if self.client_certs => identity_from_client_cert(der),
            _ => Err(AuthnError::NoCredentials),
        }
    }

    async fn authenticate_bearer(&self, token: &str, now: u64) -> Result<Identity, AuthnError> {
        if token.is_empty() {
            return Err(AuthnError::MalformedToken("empty bearer token"));
        }
        if token.len() > crate::MAX_TOKEN_BYTES {
            return Err(AuthnError::TokenTooLarge {
                len: token.len(),
                max: crate::MAX_TOKEN_BYTES,
            });
        }
        if let Some(identity) = self
            .static_tokens
            .as_ref()
            .and_then(|t| t.authenticate(token))
        {
            return Ok(identity);
        }
        let key = VerifiedTokens::key(token);
        if let Some(identity) = self.verified.get(&key, now) {
            return Ok(identity);
        }
        let identity = match &self.oidc {
            Some(oidc) => oidc.authenticate(token, now).await?,
            None => return Err(AuthnError::InvalidBearerToken),
        };
        self.verified.put(key, &identity, now);
        Ok(identity)
    }

    /// Fetches every OIDC issuer's keys now (warm-up) and reports readiness.
    pub async fn refresh(&self) -> Vec<IssuerReadiness> {
        match &self.oidc {
            Some(oidc) => oidc.refresh().await,
            None => Vec::new(),
        }
    }

    /// Whether each OIDC issuer's keys are loaded, without I/O.
    pub fn readiness(&self) -> Vec<IssuerReadiness> {
        self.oidc
            .as_ref()
            .map(|o| o.readiness())
            .unwrap_or_default()
    }

    /// Whether the authenticator can serve: every OIDC issuer has keys (true when none is configured).
    pub fn is_ready(&self) -> bool {
        self.oidc.as_ref().is_none_or(|o| o.is_ready())
    }
}

#[cfg(test)]
mod tests;

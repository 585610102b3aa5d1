//! [`OidcAuthenticator`]: validates OIDC ID tokens locally against one or more trusted issuers.
//!
//! Order matters: parse (bounded, strict) → pick the issuer by the unverified `iss` (exact match) →
//! check `alg` against that issuer's allow-list → find a key whose type fits `alg` → verify the
//! signature → only then validate and map the claims. Nothing from the payload but `iss` is looked at
//! before the signature verifies.

mod claims;
mod config;
mod http;
mod jwks;
mod keys;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

pub use config::{OidcIssuerConfig, SigningAlg};
pub use http::http_client;
pub use jwks::KeySource;

use crate::jwt::{self, truncate};
use crate::{AuthnError, ConfigError, Identity};
use jwks::JwksCache;
use keys::{KeySet, Lookup};

/// Whether one issuer's signing keys are loaded (for `/readyz`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuerReadiness {
    /// The issuer URL.
    pub issuer: String,
    /// Whether a JWKS has been loaded.
    pub keys_loaded: bool,
    /// How many usable keys are held.
    pub key_count: usize,
    /// Why the last refresh failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

struct Issuer {
    config: OidcIssuerConfig,
    cache: JwksCache,
}

/// Validates bearer tokens from the configured OIDC issuers.
pub struct OidcAuthenticator {
    issuers: Vec<Issuer>,
}

impl std::fmt::Debug for OidcAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcAuthenticator")
            .field(
                "issuers",
                &self
                    .issuers
                    .iter()
                    .map(|i| &i.config.issuer_url)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl OidcAuthenticator {
    /// Validates `configs` and builds an authenticator that fetches keys over https (discovery, then
    /// JWKS). No request is made until [`refresh`](Self::refresh) or the first token.
    pub fn new(configs: Vec<OidcIssuerConfig>) -> Result<Self, ConfigError> {
        let mut with_sources = Vec::with_capacity(configs.len());
        for config in configs {
            config.validate()?;
            let source: Arc<dyn KeySource> = Arc::new(http::HttpKeySource::new(&config)?);
            with_sources.push((config, source));
        }
        Self::with_key_sources(with_sources)
    }

    /// Builds an authenticator whose keys come from the given sources (tests inject keys this way).
    pub fn with_key_sources(
        issuers: Vec<(OidcIssuerConfig, Arc<dyn KeySource>)>,
    ) -> Result<Self, ConfigError> {
        let mut seen = BTreeSet::new();
        let mut built = Vec::with_capacity(issuers.len());
        for (config, source) in issuers {
            config.validate()?;
            if !seen.insert(config.issuer_url.clone()) {
                return Err(ConfigError::Oidc {
                    issuer: config.issuer_url,
                    field: "issuer_url",
                    reason: "configured twice".to_string(),
                });
            }
            let cache = JwksCache::new(source, config.min_refresh_interval());
            built.push(Issuer { config, cache });
        }
        Ok(OidcAuthenticator { issuers: built })
    }

    /// The configured issuers.
    pub fn issuers(&self) -> impl Iterator<Item = &OidcIssuerConfig> {
        self.issuers.iter().map(|i| &i.config)
    }

    /// Validates `token` at `now` (Unix seconds) and maps it to an identity.
    pub async fn authenticate(&self, token: &str, now: u64) -> Result<Identity, AuthnError> {
        let parsed = jwt::parse(token)?;
        let iss = match parsed.claims.get("iss") {
            Some(serde_json::Value::String(iss)) => iss.as_str(),
            Some(_) => {
                return Err(AuthnError::InvalidClaim {
                    claim: "iss".into(),
                    reason: "not a string",
                })
            }
            None => {
                return Err(AuthnError::MissingClaim {
                    claim: "iss".into(),
                })
            }
        };
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config.issuer_url == iss)
            .ok_or_else(|| AuthnError::UnknownIssuer {
                iss: truncate(iss, 100),
            })?;
        let alg = SigningAlg::from_name(&parsed.header.alg)
            .filter(|a| issuer.config.signing_algs.contains(a))
            .ok_or_else(|| AuthnError::AlgorithmNotAllowed {
                alg: truncate(&parsed.header.alg, 20),
            })?;
        if parsed.signature.is_empty() {
            return Err(AuthnError::BadSignature);
        }
        let kid = parsed.header.kid.as_deref();
        let keys = issuer.keys_for(kid, alg).await?;
        let verified = match keys.lookup(kid, alg) {
            Lookup::Found(candidates) => candidates
                .iter()
                .any(|k| k.verify(parsed.signing_input, parsed.signature, alg)),
            Lookup::Mismatch => {
                return Err(AuthnError::KeyMismatch {
                    alg: alg.as_str().into(),
                })
            }
            Lookup::Unknown => {
                return Err(AuthnError::UnknownKey {
                    issuer: issuer.config.issuer_url.clone(),
                })
            }
        };
        if !verified {
            return Err(AuthnError::BadSignature);
        }
        claims::to_identity(&issuer.config, &parsed.claims, token, now)
    }

    /// Fetches every issuer's keys now, ignoring the rate limit (warm-up at start, readiness
    /// retries), and reports the result. Failures are logged and keep the keys already held.
    pub async fn refresh(&self) -> Vec<IssuerReadiness> {
        for issuer in &self.issuers {
            if let Err(error) = issuer.cache.force_refresh().await {
                tracing::warn!(issuer = %issuer.config.issuer_url, %error, "JWKS refresh failed");
            }
        }
        self.readiness()
    }

    /// Whether each issuer's keys are loaded, without any I/O.
    pub fn readiness(&self) -> Vec<IssuerReadiness> {
        self.issuers
            .iter()
            .map(|i| {
                let keys = i.cache.current();
                IssuerReadiness {
                    issuer: i.config.issuer_url.clone(),
                    keys_loaded: keys.is_some(),
                    key_count: keys.map_or(0, |k| k.len()),
                    last_error: i.cache.last_error(),
                }
            })
            .collect()
    }

    /// Whether every issuer has keys loaded.
    pub fn is_ready(&self) -> bool {
        self.issuers.iter().all(|i| i.cache.current().is_some())
    }
}

impl Issuer {
    /// The key set to verify with: the cached one if it knows `kid`, else one refreshed (rate-limited).
    async fn keys_for(
        &self,
        kid: Option<&str>,
        alg: SigningAlg,
    ) -> Result<Arc<KeySet>, AuthnError> {
        let current = self.cache.current();
        if let Some(keys) = &current {
            if !matches!(keys.lookup(kid, alg), Lookup::Unknown) {
                return Ok(keys.clone());
            }
        }
        self.cache
            .refresh_after_miss(current.as_ref())
            .await
            .map_err(|source| AuthnError::KeysUnavailable {
                issuer: self.config.issuer_url.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests;

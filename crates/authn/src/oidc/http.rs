//! The HTTP [`KeySource`]: OIDC discovery, then the JWKS, over https with bounded responses.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use custos_https_client::{ClientError, ClientOptions};
use reqwest::header::ACCEPT;
use serde::Deserialize;

use super::jwks::KeySource;
use super::OidcIssuerConfig;
use crate::{ConfigError, FetchError};

/// The largest discovery document or JWKS accepted, in bytes.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// Fetches an issuer's JWKS via `{issuer}/.well-known/openid-configuration`.
pub(crate) struct HttpKeySource {
    issuer: String,
    client: reqwest::Client,
    /// The `jwks_uri` from the last successful discovery; cleared when a JWKS fetch fails, so the next
    /// refresh runs discovery again (the provider may have moved its keys).
    jwks_uri: Mutex<Option<String>>,
}

impl HttpKeySource {
    pub fn new(config: &OidcIssuerConfig) -> Result<Self, ConfigError> {
        Ok(HttpKeySource {
            issuer: config.issuer_url.clone(),
            client: http_client(config.ca_file.as_deref())?,
            jwks_uri: Mutex::new(None),
        })
    }

    async fn discover(&self) -> Result<String, FetchError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let body = get_bounded(&self.client, &url).await?;
        let doc: Discovery = serde_json::from_slice(&body).map_err(|source| FetchError::Json {
            what: "discovery document",
            source,
        })?;
        if doc.issuer != self.issuer {
            return Err(FetchError::IssuerMismatch {
                expected: self.issuer.clone(),
                found: crate::jwt::truncate(&doc.issuer, 200),
            });
        }
        if !doc.jwks_uri.starts_with("https://") {
            return Err(FetchError::InsecureUrl {
                url: crate::jwt::truncate(&doc.jwks_uri, 200),
            });
        }
        Ok(doc.jwks_uri)
    }

    async fn fetch(&self) -> Result<Vec<u8>, FetchError> {
        let cached = self
            .jwks_uri
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let jwks_uri = match cached {
            Some(uri) => uri,
            None => self.discover().await?,
        };
        let result = get_bounded(&self.client, &jwks_uri).await;
        *self.jwks_uri.lock().unwrap_or_else(PoisonError::into_inner) =
            result.as_ref().ok().map(|_| jwks_uri);
        result
    }
}

impl KeySource for HttpKeySource {
    fn fetch_jwks(&self) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, FetchError>> + Send + '_>> {
        Box::pin(self.fetch())
    }
}

/// GETs `url` expecting 200 and at most [`MAX_DOCUMENT_BYTES`] of body.
async fn get_bounded(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, FetchError> {
    let http = |source| FetchError::Http {
        url: url.to_string(),
        source,
    };
    let too_large = || FetchError::TooLarge {
        url: url.to_string(),
        max: MAX_DOCUMENT_BYTES,
    };
    let mut resp = client
        .get(url)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(http)?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: resp.status().as_u16(),
        });
    }
    if resp
        .content_length()
        .is_some_and(|len| len > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An https-only client from custos-https-client: ring crypto, the roots in `ca_file` if given (they
/// replace the system roots, like `--oidc-ca-file`), else the platform's; no redirects; bounded time.
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, ConfigError> {
    custos_https_client::client(ClientOptions {
        ca_file,
        timeout: REQUEST_TIMEOUT,
        connect_timeout: CONNECT_TIMEOUT,
        https_only: true,
        user_agent: concat!("custos-authn/", env!("CARGO_PKG_VERSION")),
    })
    .map_err(|e| match e {
        ClientError::Roots(e) => crate::roots::config_error(e),
        other => ConfigError::HttpClient(other.to_string()),
    })
}

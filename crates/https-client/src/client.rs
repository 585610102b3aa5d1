//! [`client`]: a reqwest client with the security choices of the [crate docs](crate).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::roots::{load_roots, RootsError};

/// How to build a [`client`]. [`ClientOptions::new`] gives the common case; set fields for the rest.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions<'a> {
    /// A PEM bundle whose certificates are the only roots trusted; `None` trusts the platform's.
    pub ca_file: Option<&'a Path>,
    /// Time allowed for one request: connecting, sending, and the whole response.
    pub timeout: Duration,
    /// Time allowed for connecting (TCP and TLS handshake); at most `timeout` has any effect.
    pub connect_timeout: Duration,
    /// Refuse `http://` URLs outright, for callers that never allow plain http (OIDC).
    pub https_only: bool,
    /// The `User-Agent` sent, e.g. `custos-notify/0.1.0`.
    pub user_agent: &'a str,
}

impl<'a> ClientOptions<'a> {
    /// Platform roots, `timeout` for each request and its connection, `http://` allowed (the caller
    /// checks which hosts may have it).
    pub fn new(user_agent: &'a str, timeout: Duration) -> ClientOptions<'a> {
        ClientOptions {
            ca_file: None,
            timeout,
            connect_timeout: timeout,
            https_only: false,
            user_agent,
        }
    }
}

/// Why a [`client`] could not be built. Each message is its cause's own, so callers can keep theirs.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA file cannot serve as roots.
    #[error(transparent)]
    Roots(#[from] RootsError),
    /// rustls refused the configuration, or the platform verifier could not start.
    #[error(transparent)]
    Tls(rustls::Error),
    /// reqwest could not build the client.
    #[error(transparent)]
    Build(reqwest::Error),
}

/// A client with ring crypto: the roots of `options.ca_file` if given (they replace the platform's),
/// else the platform's verifier; no redirects (one could lead to plain http or to another host); the
/// timeouts and user agent of `options`.
pub fn client(options: ClientOptions<'_>) -> Result<reqwest::Client, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ClientError::Tls)?;
    let tls = match options.ca_file {
        Some(path) => builder.with_root_certificates(load_roots(path)?),
        None => {
            let verifier =
                rustls_platform_verifier::Verifier::new(provider).map_err(ClientError::Tls)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
    }
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .https_only(options.https_only)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(options.timeout)
        .connect_timeout(options.connect_timeout)
        .user_agent(options.user_agent)
        .build()
        .map_err(ClientError::Build)
}

#[cfg(test)]
mod tests;

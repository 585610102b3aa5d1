//! A webhook's HTTPS client, from custos-https-client (ring crypto, the CA file's roots or the
//! platform's, no redirects, one timeout per attempt), with its errors as [`ConfigError`]s.

use std::path::Path;
use std::time::Duration;

use custos_https_client::{ClientError, ClientOptions};

use crate::ConfigError;

pub(crate) use custos_https_client::error_chain as chain;

/// A client for one webhook.
pub(crate) fn build(
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<reqwest::Client, ConfigError> {
    let user_agent = concat!("custos-notify/", env!("CARGO_PKG_VERSION"));
    custos_https_client::client(ClientOptions {
        ca_file,
        ..ClientOptions::new(user_agent, timeout)
    })
    .map_err(|e| match e {
        ClientError::Roots(e) => ConfigError::CaFile {
            path: e.path,
            reason: e.reason.to_string(),
        },
        other => ConfigError::Client(chain(&other)),
    })
}

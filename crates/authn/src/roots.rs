//! CA bundles: PEM files of trusted roots, for the OIDC client and the client-certificate verifier,
//! read by custos-https-client; its errors become [`ConfigError`]s here.

use std::path::Path;

use custos_https_client::{RootsError, RootsReason};

use crate::ConfigError;

/// Reads every certificate of a PEM bundle into a root store; an empty bundle is an error.
pub(crate) fn load_roots(path: &Path) -> Result<rustls::RootCertStore, ConfigError> {
    custos_https_client::load_roots(path).map_err(config_error)
}

/// An unreadable file is [`ConfigError::Io`]; anything else about its content is
/// [`ConfigError::Certificates`].
pub(crate) fn config_error(e: RootsError) -> ConfigError {
    match e.reason {
        RootsReason::Unreadable(source) => ConfigError::Io {
            path: e.path,
            source,
        },
        reason => ConfigError::Certificates {
            path: e.path,
            reason: reason.to_string(),
        },
    }
}

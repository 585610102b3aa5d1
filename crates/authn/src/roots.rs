//! CA bundles: PEM files of trusted roots, for the OIDC client and the client-certificate verifier.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::ConfigError;

/// Reads every certificate of a PEM bundle into a root store; an empty bundle is an error.
pub(crate) fn load_roots(path: &Path) -> Result<rustls::RootCertStore, ConfigError> {
    let pem = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| ConfigError::Certificates {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no certificate found".to_string()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| bad(format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

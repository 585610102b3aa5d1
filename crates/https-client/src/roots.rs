//! [`load_roots`]: a PEM bundle of CA certificates as a rustls root store.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// A CA file that cannot serve as roots: the file, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct RootsError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: RootsReason,
}

/// Why a CA file cannot serve as roots. The messages carry their cause's text, so the causes are
/// not repeated as sources.
#[derive(Debug, thiserror::Error)]
pub enum RootsReason {
    /// The file cannot be read.
    #[error("{0}")]
    Unreadable(std::io::Error),
    /// A PEM section is malformed.
    #[error("invalid PEM: {0}")]
    InvalidPem(rustls::pki_types::pem::Error),
    /// The file holds no `CERTIFICATE` section.
    #[error("no certificate found")]
    NoCertificate,
    /// A certificate cannot be a trust anchor (e.g. it is not DER X.509).
    #[error("unusable CA certificate: {0}")]
    Unusable(rustls::Error),
}

/// Reads every certificate of the PEM bundle at `path` into a root store. Other PEM sections (keys)
/// are skipped; a bundle without a certificate, or with one that cannot be an anchor, is an error.
pub fn load_roots(path: &Path) -> Result<rustls::RootCertStore, RootsError> {
    let bad = |reason| RootsError {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(RootsReason::Unreadable(e)))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(RootsReason::InvalidPem(e)))?;
    if certs.is_empty() {
        return Err(bad(RootsReason::NoCertificate));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| bad(RootsReason::Unusable(e)))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests;

//! The HTTPS client, built the way custos-store's `HttpSink` builds its own: ring crypto, the CA file's
//! roots when given (they replace the platform's) or the platform verifier, no redirects (a redirect
//! could lead to plain http or another host), and one timeout per attempt.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::ConfigError;

/// A client for one webhook.
pub(crate) fn build(
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<reqwest::Client, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Client(e.to_string()))?;
    let tls = match ca_file {
        Some(path) => builder.with_root_certificates(load_roots(path)?),
        None => {
            let verifier = rustls_platform_verifier::Verifier::new(provider)
                .map_err(|e| ConfigError::Client(e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
    }
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("custos-notify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConfigError::Client(chain(&e)))
}

fn load_roots(path: &Path) -> Result<rustls::RootCertStore, ConfigError> {
    let bad = |reason: String| ConfigError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no certificate found".into()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| bad(format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// An error and its causes, `a: b: c` (reqwest's own message alone says little).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

//! Client certificates: the TLS verifier that checks them against the configured CA, and the mapping
//! from a verified certificate to an [`Identity`] the way the apiserver does it (CN → username,
//! each O → a group).

use std::path::PathBuf;
use std::sync::Arc;

use custos_kube::UserInfo;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::hex;
use crate::{AuthMethod, AuthnError, ConfigError, Identity};

/// Client certificate authentication: which CA signs acceptable client certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCertConfig {
    /// PEM bundle of the CA(s) that sign client certificates (like `--client-ca-file`).
    pub ca_file: PathBuf,
}

/// A rustls client-certificate verifier for the gateway's listener: a certificate is optional (bearer
/// tokens still work), but one that is presented must chain to `config.ca_file`.
pub fn client_cert_verifier(
    config: &ClientCertConfig,
) -> Result<Arc<dyn ClientCertVerifier>, ConfigError> {
    let roots = crate::roots::load_roots(&config.ca_file)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| ConfigError::Certificates {
            path: config.ca_file.clone(),
            reason: e.to_string(),
        })
}

/// Maps a client certificate (DER) to an identity: subject CN → username, each subject O → a group.
///
/// The caller must pass only a certificate that the TLS handshake verified with
/// [`client_cert_verifier`]; this function checks the mapping, not the chain. A subject with no CN,
/// more than one CN, or a name that is not valid text is refused.
pub fn identity_from_client_cert(der: &[u8]) -> Result<Identity, AuthnError> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|_| AuthnError::InvalidClientCert("not a DER X.509 certificate"))?;
    if !rest.is_empty() {
        return Err(AuthnError::InvalidClientCert(
            "trailing bytes after the certificate",
        ));
    }
    let subject = cert.subject();
    let mut common_names = subject.iter_common_name();
    let cn = common_names
        .next()
        .ok_or(AuthnError::InvalidClientCert("subject has no common name"))?
        .as_str()
        .map_err(|_| AuthnError::InvalidClientCert("common name is not a text string"))?;
    if common_names.next().is_some() {
        return Err(AuthnError::InvalidClientCert(
            "subject has more than one common name",
        ));
    }
    if cn.is_empty() {
        return Err(AuthnError::InvalidClientCert("common name is empty"));
    }
    let groups = subject
        .iter_organization()
        .map(|o| {
            o.as_str()
                .map(str::to_string)
                .map_err(|_| AuthnError::InvalidClientCert("organization is not a text string"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let expires_at = u64::try_from(cert.validity().not_after.timestamp()).ok();
    Ok(Identity {
        user: UserInfo {
            username: cn.to_string(),
            uid: None,
            groups,
            extra: Default::default(),
        },
        method: AuthMethod::ClientCert,
        // Certificates are public, so the full fingerprint is fine and identifies it exactly.
        token_id: Some(format!("sha256:{}", hex(&Sha256::digest(der)))),
        expires_at,
        claims: None,
    })
}

#[cfg(test)]
mod tests;

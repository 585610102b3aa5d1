//! The gateway's serving certificate: loaded from files, or a CA and certificate generated on first
//! start in the data dir and reused afterwards, so a newcomer's kubeconfig keeps working across restarts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;

/// A problem with the serving certificate or its files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM file held no usable certificate or key.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Generating a certificate failed.
    #[error("generating the serving certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum ServingCert {
    /// Operator-provided PEM files.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// Generated in `dir` (a CA and a leaf for `names`) on first start, reused afterwards.
    SelfSigned {
        /// Directory holding ca.crt, ca.key, server.crt, server.key.
        dir: PathBuf,
        /// DNS names and IP addresses for the leaf certificate.
        names: Vec<String>,
    },
}

/// The files a generated serving identity lives in.
#[derive(Debug, Clone)]
pub struct GeneratedPaths {
    /// The CA certificate clients must trust (printed at start-up, used by `custos login`).
    pub ca_cert: PathBuf,
    /// The leaf certificate.
    pub server_cert: PathBuf,
    /// The leaf key.
    pub server_key: PathBuf,
}

/// Ensures a CA and a serving certificate for `names` exist in `dir`; returns their paths.
///
/// The CA is generated once and kept; the leaf is re-issued when the requested names change.
pub fn ensure_self_signed(dir: &Path, names: &[String]) -> Result<GeneratedPaths, TlsError> {
    create_private_dir(dir)?;
    let paths = GeneratedPaths {
        ca_cert: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    };
    let ca_key_path = dir.join("ca.key");
    let names_path = dir.join("server.names");
    let wanted = names.join("\n");

    let (ca_pem, ca_key_pem) = if paths.ca_cert.exists() && ca_key_path.exists() {
        (read(&paths.ca_cert)?, read(&ca_key_path)?)
    } else {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, "Custos gateway CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_after = rcgen::date_time_ymd(2036, 1, 1);
        let cert = params.self_signed(&key)?;
        write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
        write_public(&paths.ca_cert, cert.pem().as_bytes())?;
        (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
    };
    let current = std::fs::read_to_string(&names_path).unwrap_or_default();
    if paths.server_cert.exists() && paths.server_key.exists() && current == wanted {
        return Ok(paths);
    }
    let ca_key_text =
        String::from_utf8(ca_key_pem).map_err(|_| pem_err(&ca_key_path, "not UTF-8"))?;
    let ca_text = String::from_utf8(ca_pem).map_err(|_| pem_err(&paths.ca_cert, "not UTF-8"))?;
    let ca_key = KeyPair::from_pem(&ca_key_text)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_text, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, "custos");
    for n in names {
        params
            .subject_alt_names
            .push(match n.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(n.clone().try_into()?),
            });
    }
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.not_after = rcgen::date_time_ymd(2030, 1, 1);
    let cert = params.signed_by(&key, &issuer)?;
    write_private(&paths.server_key, key.serialize_pem().as_bytes())?;
    write_public(&paths.server_cert, cert.pem().as_bytes())?;
    write_public(&names_path, wanted.as_bytes())?;
    Ok(paths)
}

/// Builds the listener's rustls configuration: HTTP/2 and HTTP/1.1 by ALPN, optional client certificates.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<rustls::ServerConfig, TlsError> {
    let certs = load_certs(cert)?;
    let key = load_key(key)?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?;
    let builder = match client_verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Reads every certificate from a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = read(path)?;
    certs_from_pem(&data).map_err(|m| pem_err(path, &m))
}

/// Parses every certificate of a PEM buffer.
pub fn certs_from_pem(data: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &data[..])
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate found".into());
    }
    Ok(certs)
}

/// Reads the first private key from a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = read(path)?;
    key_from_pem(&data).map_err(|m| pem_err(path, &m))
}

/// Parses the first private key of a PEM buffer.
pub fn key_from_pem(data: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    rustls_pemfile::private_key(&mut &data[..])
        .map_err(|e| format!("bad PEM: {e}"))?
        .ok_or_else(|| "no private key found".to_string())
}

fn pem_err(path: &Path, m: &str) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        message: m.to_owned(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    write_mode(path, data, 0o600)
}

fn write_public(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    write_mode(path, data, 0o644)
}

/// Writes via a temporary file and a rename, so a crash never leaves half a key behind.
fn write_mode(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    let io = |source| TlsError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identity_is_reused_across_starts() {
        let dir = std::env::temp_dir().join(format!("custos-tls-{}", std::process::id()));
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let a = ensure_self_signed(&dir, &names).expect("generate");
        let ca1 = std::fs::read(&a.ca_cert).expect("ca");
        let leaf1 = std::fs::read(&a.server_cert).expect("leaf");
        let b = ensure_self_signed(&dir, &names).expect("reuse");
        assert_eq!(ca1, std::fs::read(&b.ca_cert).expect("ca"));
        assert_eq!(leaf1, std::fs::read(&b.server_cert).expect("leaf"));
        server_config(&b.server_cert, &b.server_key, None).expect("rustls accepts it");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("ca.key"))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "CA key must not be group/world readable");
        }
        // New names: same CA, new leaf.
        let c = ensure_self_signed(&dir, &["custos.example".to_string()]).expect("reissue");
        assert_eq!(ca1, std::fs::read(&c.ca_cert).expect("ca"));
        assert_ne!(leaf1, std::fs::read(&c.server_cert).expect("leaf"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_pem_file_without_a_certificate_is_refused() {
        assert!(certs_from_pem(b"hello").is_err());
        assert!(key_from_pem(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n").is_err());
    }
}

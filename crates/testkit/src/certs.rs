//! A throwaway certificate authority that issues server and client certificates (rcgen).

use std::io;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The OID of the X.509 `organizationName` attribute (2.5.4.10).
const ORGANIZATION_OID: [u64; 4] = [2, 5, 4, 10];

/// A certificate and its private key, as PEM and DER.
#[derive(Clone, Debug)]
pub struct CertifiedKey {
    /// The certificate, PEM encoded.
    pub cert_pem: String,
    /// The certificate, DER encoded.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 PEM encoded.
    pub key_pem: String,
    /// The private key, PKCS#8 DER encoded.
    pub key_der: Vec<u8>,
}

impl CertifiedKey {
    /// The certificate as a one-element rustls chain.
    pub fn cert_chain(&self) -> Vec<CertificateDer<'static>> {
        vec![CertificateDer::from(self.cert_der.clone())]
    }

    /// The private key in the form rustls takes.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// Writes `<name>.crt` and `<name>.key` into `dir` and returns their paths.
    pub fn write_to(&self, dir: &Path, name: &str) -> io::Result<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert_pem)?;
        std::fs::write(&key, &self.key_pem)?;
        Ok((cert, key))
    }
}

/// A self-signed CA (ECDSA P-256) that signs test certificates.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// Creates a fresh CA with a new key. Panics if rcgen fails (test-only).
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("generate CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name = name("custos test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign CA");
        TestCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate, PEM encoded.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER encoded.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Writes the CA certificate to `dir/ca.crt` and returns the path.
    pub fn write_to(&self, dir: &Path) -> io::Result<PathBuf> {
        let path = dir.join("ca.crt");
        std::fs::write(&path, &self.cert_pem)?;
        Ok(path)
    }

    /// Issues a server certificate for DNS names and IP addresses (e.g. `["127.0.0.1", "localhost"]`).
    pub fn server_cert(&self, names: &[&str]) -> CertifiedKey {
        let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("server SANs");
        params.distinguished_name = name(names.first().copied().unwrap_or("server"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.sign(params)
    }

    /// Issues a client certificate with subject CN `cn` and one O per entry of `orgs` (at most two:
    /// rcgen keeps one value per attribute type, so the second O is written under its raw OID).
    pub fn client_cert(&self, cn: &str, orgs: &[&str]) -> CertifiedKey {
        assert!(
            orgs.len() <= 2,
            "TestCa::client_cert supports at most two organisations"
        );
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        let mut dn = name(cn);
        if let Some(first) = orgs.first() {
            dn.push(DnType::OrganizationName, *first);
        }
        if let Some(second) = orgs.get(1) {
            dn.push(DnType::CustomDnType(ORGANIZATION_OID.to_vec()), *second);
        }
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> CertifiedKey {
        let key = KeyPair::generate().expect("generate leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        CertifiedKey {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_cert_is_signed_by_the_ca_and_written_as_pem() {
        let ca = TestCa::new();
        let server = ca.server_cert(&["127.0.0.1", "localhost"]);
        assert!(server.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(server.key_pem.contains("PRIVATE KEY"));
        let dir = std::env::temp_dir().join(format!("custos-testkit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let (crt, key) = server.write_to(&dir, "server").expect("write");
        assert!(crt.exists() && key.exists());
        assert!(ca.write_to(&dir).expect("write ca").exists());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn client_cert_builds_a_rustls_chain_and_key() {
        let ca = TestCa::new();
        let client = ca.client_cert("alice", &["dev", "ops"]);
        assert_eq!(client.cert_chain().len(), 1);
        assert!(matches!(client.private_key(), PrivateKeyDer::Pkcs8(_)));
    }
}

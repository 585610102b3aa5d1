use std::path::PathBuf;

use super::{load_roots, RootsError, RootsReason};

/// Writes `content` to a file in a new temporary directory.
fn file(content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, content).expect("write");
    (dir, path)
}

fn ca_pem(name: &str) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![]).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.self_signed(&key).expect("self-signed").pem()
}

/// Loads `content` from a file, expecting a refusal: the error, and its message after `<path>: `.
fn refused(content: &str) -> (RootsError, String) {
    let (_dir, path) = file(content);
    let err = load_roots(&path).expect_err("refused");
    assert_eq!(err.path, path);
    let message = err.to_string();
    let reason = message
        .strip_prefix(&format!("{}: ", path.display()))
        .unwrap_or_else(|| panic!("the message names the file: {message}"));
    (err, reason.to_owned())
}

#[test]
fn a_bundle_of_certificates_is_loaded() {
    let (_dir, path) = file(&format!("{}{}", ca_pem("one"), ca_pem("two")));
    assert_eq!(load_roots(&path).expect("loads").len(), 2);
}

#[test]
fn a_missing_file_is_unreadable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing.pem");
    let err = load_roots(&path).expect_err("refused");
    assert_eq!(err.path, path);
    let RootsReason::Unreadable(io) = &err.reason else {
        panic!("{err:?}");
    };
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(err.to_string(), format!("{}: {io}", path.display()));
}

#[test]
fn a_malformed_pem_section_is_invalid_pem() {
    let (err, reason) = refused("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
    assert!(matches!(err.reason, RootsReason::InvalidPem(_)), "{err:?}");
    assert!(reason.starts_with("invalid PEM: "), "{reason}");
}

#[test]
fn a_file_without_a_certificate_is_refused() {
    for content in [
        "",
        "not PEM at all\n",
        &rcgen::KeyPair::generate().expect("key").serialize_pem(),
    ] {
        let (err, reason) = refused(content);
        assert!(matches!(err.reason, RootsReason::NoCertificate), "{err:?}");
        assert_eq!(reason, "no certificate found");
    }
}

#[test]
fn a_certificate_that_is_not_x509_is_unusable() {
    // Valid PEM and base64, but the DER inside is three zero bytes.
    let (err, reason) = refused("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    assert!(matches!(err.reason, RootsReason::Unusable(_)), "{err:?}");
    assert!(reason.starts_with("unusable CA certificate: "), "{reason}");
}

use super::*;
use custos_testkit::TestCa;

#[test]
fn common_name_becomes_the_username_and_organisations_the_groups() {
    let ca = TestCa::new();
    let cert = ca.client_cert("alice", &["dev", "system:masters"]);
    let id = identity_from_client_cert(&cert.cert_der).expect("maps");
    assert_eq!(id.user.username, "alice");
    assert_eq!(id.user.groups, vec!["dev", "system:masters"]);
    assert_eq!(id.method, AuthMethod::ClientCert);
    assert!(id
        .token_id
        .as_deref()
        .is_some_and(|t| t.len() == "sha256:".len() + 64));
    assert!(id.expires_at.is_some());
}

#[test]
fn certificate_without_organisation_has_no_groups() {
    let ca = TestCa::new();
    let id = identity_from_client_cert(&ca.client_cert("bob", &[]).cert_der).expect("maps");
    assert!(id.user.groups.is_empty());
}

#[test]
fn garbage_or_trailing_bytes_are_refused() {
    assert!(matches!(
        identity_from_client_cert(b"not a certificate"),
        Err(AuthnError::InvalidClientCert(_))
    ));
    let ca = TestCa::new();
    let mut der = ca.client_cert("alice", &[]).cert_der;
    der.push(0);
    assert!(matches!(
        identity_from_client_cert(&der),
        Err(AuthnError::InvalidClientCert(
            "trailing bytes after the certificate"
        ))
    ));
}

#[test]
fn verifier_builds_from_a_ca_file_and_refuses_an_empty_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let path = ca.write_to(dir.path()).expect("write");
    let verifier = client_cert_verifier(&ClientCertConfig { ca_file: path }).expect("builds");
    assert!(!verifier.client_auth_mandatory());
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").expect("write");
    assert!(matches!(
        client_cert_verifier(&ClientCertConfig { ca_file: empty }),
        Err(ConfigError::Certificates { .. })
    ));
}

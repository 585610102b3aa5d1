use super::*;

const KC: &str = r#"
apiVersion: v1
kind: Config
current-context: admin
clusters:
- name: testbed
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
contexts:
- name: admin
  context: {cluster: testbed, user: admin}
users:
- name: admin
  user:
    token: abc
"#;

#[test]
fn current_context_gives_server_ca_and_token() {
    let c = UpstreamConfig::from_kubeconfig_str(KC, Path::new("/tmp/kc")).expect("valid");
    assert_eq!(c.server.to_string(), "https://127.0.0.1:6443/");
    assert!(c
        .ca_pem
        .as_deref()
        .is_some_and(|p| p.starts_with(b"-----BEGIN")));
    assert!(matches!(c.credential, UpstreamCredential::Token(ref t) if t == "abc"));
}

#[test]
fn plain_http_server_is_refused() {
    let kc = KC.replace("https://127.0.0.1:6443", "http://127.0.0.1:8080");
    let err = UpstreamConfig::from_kubeconfig_str(&kc, Path::new("/tmp/kc")).expect_err("refused");
    assert!(err.to_string().contains("must be https"), "{err}");
}

#[test]
fn missing_ca_is_refused_unless_insecure() {
    let kc = KC.replace(
        "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n",
        "",
    );
    let err = UpstreamConfig::from_kubeconfig_str(&kc, Path::new("/tmp/kc")).expect_err("refused");
    assert!(err.to_string().contains("certificate-authority"), "{err}");
}

#[test]
fn exec_plugin_user_is_refused_with_a_clear_message() {
    let kc = KC.replace(
        "    token: abc",
        "    exec: {command: foo, apiVersion: client.authentication.k8s.io/v1}",
    );
    let err = UpstreamConfig::from_kubeconfig_str(&kc, Path::new("/tmp/kc")).expect_err("refused");
    assert!(err.to_string().contains("exec plugin"), "{err}");
}

#[test]
fn unknown_context_is_named_in_the_error() {
    let kc = KC.replace("current-context: admin", "current-context: nope");
    let err = UpstreamConfig::from_kubeconfig_str(&kc, Path::new("/tmp/kc")).expect_err("refused");
    assert!(err.to_string().contains("\"nope\""), "{err}");
}

#[test]
fn garbage_is_a_parse_error_not_a_panic() {
    for junk in [
        "",
        ":",
        "[",
        "clusters: 5",
        "\u{0}\u{1}",
        "current-context: [a]",
    ] {
        assert!(
            UpstreamConfig::from_kubeconfig_str(junk, Path::new("/tmp/kc")).is_err(),
            "{junk:?}"
        );
    }
}

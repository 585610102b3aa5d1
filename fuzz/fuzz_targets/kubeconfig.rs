//! `custos_gateway::kubeconfig::UpstreamConfig::from_kubeconfig_str` on any text: never panics, an
//! accepted upstream is https with a CA (or explicitly insecure), and its `Debug` never shows the
//! token or key material.
//!
//! The parser reads files a kubeconfig names (`certificate-authority`, `client-certificate`,
//! `client-key`, `tokenFile`), relative to the kubeconfig's directory. The harness gives it a
//! directory that does not exist and skips inputs naming absolute paths or `..`, so the fuzzer can never
//! make it read `/dev/zero` or `/proc/self/...`.
#![no_main]

use std::path::{Component, Path};

use custos_gateway::kubeconfig::{UpstreamConfig, UpstreamCredential};
use libfuzzer_sys::fuzz_target;
use serde_yaml_ng::Value;

const FILE_KEYS: [&str; 4] = [
    "certificate-authority",
    "client-certificate",
    "client-key",
    "tokenFile",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if names_unsafe_file(text) {
        return;
    }
    let path = Path::new("/nonexistent-custos-fuzz/kubeconfig");
    let Ok(config) = UpstreamConfig::from_kubeconfig_str(text, path) else {
        return;
    };
    assert_eq!(config.server.scheme_str(), Some("https"));
    assert!(config.server.host().is_some(), "{:?}", config.server);
    assert!(config.ca_pem.is_some() || config.insecure);
    let shown = format!("{config:?}");
    match &config.credential {
        UpstreamCredential::Token(t) if t.len() >= 4 => {
            assert!(
                !shown.contains(t.as_str()),
                "Debug shows the token: {shown}"
            )
        }
        UpstreamCredential::ClientCert { key_pem, .. } if key_pem.len() >= 8 => {
            let key = String::from_utf8_lossy(key_pem);
            assert!(!shown.contains(&*key), "Debug shows the key")
        }
        _ => {}
    }
});

/// Whether any file reference in the YAML (however it is spelled: quoted, flow style, via an alias)
/// is absolute, climbs with `..`, or is not a plain string. Text that does not parse as YAML at all
/// is refused by the parser before it reads any file.
fn names_unsafe_file(text: &str) -> bool {
    match serde_yaml_ng::from_str::<Value>(text) {
        Ok(doc) => unsafe_in(&doc),
        Err(_) => FILE_KEYS.iter().any(|k| text.contains(k)),
    }
}

fn unsafe_in(value: &Value) -> bool {
    match value {
        Value::Mapping(m) => m.iter().any(|(k, v)| {
            let is_file_key = k.as_str().is_some_and(|k| FILE_KEYS.contains(&k));
            (is_file_key && !safe_relative(v)) || unsafe_in(k) || unsafe_in(v)
        }),
        Value::Sequence(items) => items.iter().any(unsafe_in),
        Value::Tagged(t) => unsafe_in(&t.value),
        _ => false,
    }
}

fn safe_relative(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => Path::new(s)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)),
        _ => false,
    }
}

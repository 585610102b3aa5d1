//! Writing the gateway's context into a kubeconfig, keeping everything else in the file as it was.

use std::path::Path;

use base64::Engine;
use serde_yaml_ng::{Mapping, Value};

use crate::cache::write_private;
use crate::LoginError;

/// One context for the gateway: cluster (server + CA), user (an exec plugin), context.
#[derive(Debug, Clone)]
pub struct ContextEntry {
    /// Name of the context, cluster and user entries.
    pub name: String,
    /// The gateway's URL.
    pub server: String,
    /// The gateway's CA certificate, PEM.
    pub ca_pem: Vec<u8>,
    /// The exec plugin's command (the `custos` binary).
    pub command: String,
    /// Its arguments (`token --issuer … --client-id …`).
    pub args: Vec<String>,
    /// Default namespace, if any.
    pub namespace: Option<String>,
    /// Whether the plugin may prompt the user (browser or device logins) or never (agents).
    pub interactive: bool,
}

/// Inserts or replaces `entry` in the kubeconfig at `path` (created if missing); sets it current when
/// `make_current`. The file is written with mode 0600.
pub fn upsert(path: &Path, entry: &ContextEntry, make_current: bool) -> Result<(), LoginError> {
    let file_err = |message: String| LoginError::File {
        path: path.to_owned(),
        message,
    };
    let mut doc: Value = match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => serde_yaml_ng::from_str(&text)
            .map_err(|e| file_err(format!("not a kubeconfig: {e}")))?,
        Ok(_) => Value::Mapping(Mapping::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Mapping(Mapping::new()),
        Err(e) => return Err(file_err(e.to_string())),
    };
    let root = doc
        .as_mapping_mut()
        .ok_or_else(|| file_err("not a kubeconfig: the top level is not a mapping".into()))?;
    root.entry("apiVersion".into()).or_insert("v1".into());
    root.entry("kind".into()).or_insert("Config".into());

    let ca = base64::engine::general_purpose::STANDARD.encode(&entry.ca_pem);
    let cluster = yaml(&format!(
        "server: {}\ncertificate-authority-data: {ca}\n",
        serde_json::to_string(&entry.server).unwrap_or_default()
    ))?;
    let mut exec = Mapping::new();
    exec.insert(
        "apiVersion".into(),
        "client.authentication.k8s.io/v1".into(),
    );
    exec.insert("command".into(), entry.command.clone().into());
    exec.insert(
        "args".into(),
        Value::Sequence(entry.args.iter().cloned().map(Value::from).collect()),
    );
    exec.insert(
        "interactiveMode".into(),
        if entry.interactive {
            "IfAvailable"
        } else {
            "Never"
        }
        .into(),
    );
    exec.insert("provideClusterInfo".into(), false.into());
    let mut user = Mapping::new();
    user.insert("exec".into(), Value::Mapping(exec));
    let mut context = Mapping::new();
    context.insert("cluster".into(), entry.name.clone().into());
    context.insert("user".into(), entry.name.clone().into());
    if let Some(ns) = &entry.namespace {
        context.insert("namespace".into(), ns.clone().into());
    }

    set_named(root, "clusters", "cluster", &entry.name, cluster).map_err(file_err)?;
    set_named(root, "users", "user", &entry.name, Value::Mapping(user)).map_err(file_err)?;
    set_named(
        root,
        "contexts",
        "context",
        &entry.name,
        Value::Mapping(context),
    )
    .map_err(file_err)?;
    if make_current || !root.contains_key("current-context") {
        root.insert("current-context".into(), entry.name.clone().into());
    }
    let text = serde_yaml_ng::to_string(&doc).map_err(|e| file_err(e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| file_err(e.to_string()))?;
    }
    write_private(path, text.as_bytes()).map_err(|e| file_err(e.to_string()))
}

fn yaml(text: &str) -> Result<Value, LoginError> {
    serde_yaml_ng::from_str(text).map_err(|e| LoginError::Provider(format!("internal YAML: {e}")))
}

/// Replaces (or appends) the item named `name` in the list `list`, as `{name, <field>: value}`.
fn set_named(
    root: &mut Mapping,
    list: &str,
    field: &str,
    name: &str,
    value: Value,
) -> Result<(), String> {
    let items = root
        .entry(list.into())
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if items.is_null() {
        *items = Value::Sequence(Vec::new());
    }
    let seq = items
        .as_sequence_mut()
        .ok_or_else(|| format!("not a kubeconfig: {list} is not a list"))?;
    let mut item = Mapping::new();
    item.insert("name".into(), name.into());
    item.insert(field.into(), value);
    match seq
        .iter_mut()
        .find(|i| i.get("name").and_then(Value::as_str) == Some(name))
    {
        Some(existing) => *existing = Value::Mapping(item),
        None => seq.push(Value::Mapping(item)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> ContextEntry {
        ContextEntry {
            name: "custos".into(),
            server: "https://127.0.0.1:8443".into(),
            ca_pem: b"-----BEGIN CERTIFICATE-----\n".to_vec(),
            command: "/usr/bin/custos".into(),
            args: vec!["token".into(), "--issuer".into(), "https://dex".into()],
            namespace: Some("staging".into()),
            interactive: true,
        }
    }

    #[test]
    fn login_adds_a_context_and_keeps_the_others() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: other\nclusters:\n- name: other\n  cluster: {server: https://x}\ncontexts:\n- name: other\n  context: {cluster: other, user: other}\nusers:\n- name: other\n  user: {token: t}\n",
        )
        .expect("write");
        upsert(&path, &entry(), true).expect("upsert");
        upsert(&path, &entry(), true).expect("idempotent");
        let v: Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&path).expect("read")).expect("yaml");
        assert_eq!(v["current-context"], "custos");
        assert_eq!(v["clusters"].as_sequence().map(Vec::len), Some(2));
        assert_eq!(v["users"][1]["user"]["exec"]["args"][0], "token");
        assert_eq!(v["users"][0]["user"]["token"], "t");
        assert_eq!(v["contexts"][1]["context"]["namespace"], "staging");
    }

    #[test]
    fn a_file_that_is_not_a_kubeconfig_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("config");
        std::fs::write(&path, "clusters: 5\n").expect("write");
        assert!(upsert(&path, &entry(), true).is_err());
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "clusters: 5\n"
        );
        std::fs::write(&path, "- a\n").expect("write");
        assert!(upsert(&path, &entry(), true).is_err());
    }
}

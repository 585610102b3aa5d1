//! Previews against the real testbed apiserver (`testbed/up`): the dry run and the live read go
//! through the gateway's upstream identity (which may only impersonate) as a testbed user, and every
//! test checks with the admin kubeconfig that nothing in the cluster changed.
//!
//! A full `Gateway` needs an audit store and the approval service, neither of which a preview touches;
//! these tests call [`preview_with`], which takes just the upstream and the mask settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use custos_authn::{AuthMethod, Identity};
use custos_gateway::kubeconfig::UpstreamConfig;
use custos_gateway::mask::{builtin_detector, MaskSettings};
use custos_gateway::preview::{preview_with, Preview, PreviewRequest};
use custos_gateway::Upstream;
use custos_kube::UserInfo;
use custos_mask::Hint;

/// The running testbed, from `testbed/.run/env`; fails (never skips) when it is not up.
struct Testbed {
    env: BTreeMap<String, String>,
    upstream: Upstream,
    masking: MaskSettings,
}

impl Testbed {
    fn load() -> Result<Self> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testbed/.run/env");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{} missing: run `testbed/up` first", path.display()))?;
        let mut env = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim().trim_start_matches("export ");
            if line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                env.insert(
                    k.to_owned(),
                    v.trim_matches('\'').trim_matches('"').to_owned(),
                );
            }
        }
        let var = |name: &str| {
            env.get(name)
                .cloned()
                .ok_or_else(|| anyhow!("testbed env has no {name}"))
        };
        let cfg = UpstreamConfig::from_kubeconfig(Path::new(&var("TESTBED_GATEWAY_KUBECONFIG")?))?;
        Ok(Testbed {
            upstream: Upstream::new(&cfg)?,
            masking: MaskSettings::new(builtin_detector()?),
            env,
        })
    }

    fn var(&self, name: &str) -> String {
        self.env.get(name).cloned().unwrap_or_default()
    }

    fn namespace(&self) -> String {
        self.var("TESTBED_NAMESPACE")
    }

    fn admin_kubeconfig(&self) -> PathBuf {
        PathBuf::from(self.var("TESTBED_KUBECONFIG"))
    }

    /// kubectl as the testbed admin, straight to the apiserver (not through anything of Custos).
    async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(self.admin_kubeconfig())
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("kubectl")?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).await?;
        }
        Ok(child.wait_with_output().await?)
    }

    async fn apply(&self, manifest: &Value) -> Result<()> {
        let out = self
            .kubectl(&["apply", "-f", "-"], Some(&manifest.to_string()))
            .await?;
        if !out.status.success() {
            bail!("kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// The object as the admin reads it now, `None` when it does not exist.
    async fn get(&self, resource: &str, name: &str) -> Result<Option<Value>> {
        let ns = self.namespace();
        let out = self
            .kubectl(
                &[
                    "get",
                    "-n",
                    &ns,
                    resource,
                    name,
                    "-o",
                    "json",
                    "--ignore-not-found",
                ],
                None,
            )
            .await?;
        if !out.status.success() {
            bail!("kubectl get: {}", String::from_utf8_lossy(&out.stderr));
        }
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        Ok(Some(serde_json::from_slice(&out.stdout)?))
    }

    /// Deletes the object when dropped, even after a failed assertion.
    fn cleanup(&self, resource: &str, name: &str) -> Cleanup {
        Cleanup {
            kubeconfig: self.admin_kubeconfig(),
            namespace: self.namespace(),
            object: format!("{resource}/{name}"),
        }
    }

    /// The preview of a request from `user` (in `groups`), built the way the pipeline builds it.
    async fn preview(
        &self,
        (user, groups): (&str, &[&str]),
        method: Method,
        path_and_query: &str,
        content_type: Option<&str>,
        body: Option<Value>,
    ) -> Result<Preview> {
        let (path, query) = path_and_query
            .split_once('?')
            .map_or((path_and_query, None), |(p, q)| (p, Some(q)));
        let attrs = custos_kube::classify(&method, path, query)?;
        let identity = Identity {
            user: UserInfo {
                username: user.to_owned(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                ..UserInfo::default()
            },
            method: AuthMethod::ClientCert,
            token_id: None,
            expires_at: None,
            claims: None,
        };
        let mut hint = Hint::for_resource(&attrs.api_group, &attrs.resource, &attrs.subresource);
        hint.exempt.push(user.to_owned());
        let body = body.map(|b| Bytes::from(b.to_string()));
        let req = PreviewRequest {
            method: &method,
            path_and_query,
            content_type,
            body: body.as_ref(),
            identity: &identity,
            attrs: &attrs,
            hint: &hint,
            audit_id: &uuid::Uuid::new_v4().to_string(),
        };
        Ok(preview_with(&self.upstream, &self.masking, &req).await)
    }
}

struct Cleanup {
    kubeconfig: PathBuf,
    namespace: String,
    object: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args([
                "delete",
                "-n",
                &self.namespace,
                &self.object,
                "--ignore-not-found",
                "--wait=false",
            ])
            .output();
    }
}

const ONCALL: (&str, &[&str]) = ("oncall@custos.test", &["sre-oncall"]);
const READER: (&str, &[&str]) = ("agent-reader@custos.test", &["agents", "readers"]);
const MERGE_PATCH: Option<&str> = Some("application/merge-patch+json");
const JSON: Option<&str> = Some("application/json");

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

fn config_map(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": {"colour": "blue", "size": "large"},
    })
}

#[tokio::test]
async fn a_configmap_patch_shows_the_changed_key_with_old_and_new_value() -> Result<()> {
    let tb = Testbed::load()?;
    let (ns, name) = (tb.namespace(), unique("preview-patch"));
    tb.apply(&config_map(&ns, &name)).await?;
    let _cleanup = tb.cleanup("configmap", &name);
    // The client's own dryRun=None is replaced, not honoured (it would make the write real).
    let path =
        format!("/api/v1/namespaces/{ns}/configmaps/{name}?fieldManager=preview-test&dryRun=None");
    let p = tb
        .preview(
            ONCALL,
            Method::PATCH,
            &path,
            MERGE_PATCH,
            Some(json!({"data": {"colour": "green"}})),
        )
        .await?;

    assert_eq!(p.note, None, "{p:#?}");
    let diff = p.diff.as_deref().context("a diff")?;
    assert!(diff.starts_with("--- live\n+++ after\n"), "{diff}");
    assert!(diff.contains("\n-  colour: blue\n"), "{diff}");
    assert!(diff.contains("\n+  colour: green\n"), "{diff}");
    assert!(
        !diff.contains("size: large") || diff.contains("\n   size: large\n"),
        "{diff}"
    );
    assert!(
        !diff.contains("managedFields") && !diff.contains("resourceVersion"),
        "{diff}"
    );
    assert_eq!(p.live.as_ref().context("live")?["data"]["colour"], "blue");
    assert_eq!(
        p.dry_run.as_ref().context("dry run")?["data"]["colour"],
        "green"
    );

    let now = tb.get("configmap", &name).await?.context("still there")?;
    assert_eq!(
        now["data"]["colour"], "blue",
        "the patch was applied: {now}"
    );
    Ok(())
}

#[tokio::test]
async fn a_delete_shows_the_object_removed_and_deletes_nothing() -> Result<()> {
    let tb = Testbed::load()?;
    let (ns, name) = (tb.namespace(), unique("preview-delete"));
    tb.apply(&config_map(&ns, &name)).await?;
    let _cleanup = tb.cleanup("configmap", &name);
    let path = format!("/api/v1/namespaces/{ns}/configmaps/{name}");
    // As kubectl deletes: DeleteOptions in the body, where the apiserver ignores the query's dryRun.
    let options =
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"});
    for body in [Some(options), None] {
        let p = tb
            .preview(ONCALL, Method::DELETE, &path, JSON, body.clone())
            .await?;
        assert_eq!(p.note, None, "{p:#?}");
        let diff = p.diff.as_deref().context("a diff")?;
        let lines: Vec<&str> = diff.lines().skip(3).collect();
        assert!(diff.contains(" +0,0 @@\n"), "{diff}");
        assert!(lines.iter().all(|l| l.starts_with('-')), "{diff}");
        assert!(
            lines.contains(&"-  colour: blue")
                && lines.contains(&format!("-  name: {name}").as_str()),
            "{diff}"
        );
        assert_eq!(
            p.live.as_ref().context("live")?["metadata"]["name"],
            name.as_str()
        );
        assert!(p.dry_run.is_some());
        assert!(
            tb.get("configmap", &name).await?.is_some(),
            "the preview deleted the object (body {body:?})"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_secret_patch_shows_no_secret_value() -> Result<()> {
    let tb = Testbed::load()?;
    let (ns, name) = (tb.namespace(), unique("preview-secret"));
    let old = format!("old-{}", uuid::Uuid::new_v4().simple());
    let new = format!("new-{}", uuid::Uuid::new_v4().simple());
    // Applied, so the last-applied annotation holds the value in clear too.
    tb.apply(&json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": ns},
        "stringData": {"password": old, "user": "admin"},
    }))
    .await?;
    let _cleanup = tb.cleanup("secret", &name);
    let path = format!("/api/v1/namespaces/{ns}/secrets/{name}");
    let p = tb
        .preview(
            ONCALL,
            Method::PATCH,
            &path,
            MERGE_PATCH,
            Some(json!({"stringData": {"password": new}})),
        )
        .await?;

    let shown = serde_json::to_string(&p)?;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for secret in [&old, &new] {
        assert!(!shown.contains(secret.as_str()), "{secret} shown: {shown}");
        assert!(
            !shown.contains(&b64(secret)),
            "base64 of {secret} shown: {shown}"
        );
    }
    assert!(!shown.contains(&b64("admin")), "{shown}");
    let marker = custos_mask::MARKER_BASE64;
    assert_eq!(
        p.dry_run.as_ref().context("dry run")?["data"]["password"],
        marker
    );
    assert_eq!(p.live.as_ref().context("live")?["data"]["password"], marker);
    let note = p.note.as_deref().context("a note")?;
    assert!(
        note.contains("masked values change (not shown)") && note.contains("data.password"),
        "{note}"
    );

    let now = tb.get("secret", &name).await?.context("still there")?;
    assert_eq!(now["data"]["password"], b64(&old), "the patch was applied");
    Ok(())
}

#[tokio::test]
async fn a_refused_dry_run_gives_the_apiservers_message_and_creates_nothing() -> Result<()> {
    let tb = Testbed::load()?;
    let ns = tb.namespace();
    let bad = format!(
        "Not_A_Valid_Name-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    let path = format!("/api/v1/namespaces/{ns}/configmaps?fieldManager=preview-test");
    let p = tb
        .preview(
            ONCALL,
            Method::POST,
            &path,
            JSON,
            Some(config_map(&ns, &bad)),
        )
        .await?;
    let note = p.note.as_deref().context("a note")?;
    assert!(note.starts_with("dry run refused: "), "{note}");
    assert!(note.contains("is invalid") && note.contains(&bad), "{note}");
    assert_eq!(p.diff, None);
    assert_eq!(
        p.dry_run.as_ref().context("the Status")?["reason"],
        "Invalid"
    );

    // A valid create previews as the whole object added, and is not created either.
    let name = unique("preview-create");
    let _cleanup = tb.cleanup("configmap", &name);
    let p = tb
        .preview(
            ONCALL,
            Method::POST,
            &path,
            JSON,
            Some(config_map(&ns, &name)),
        )
        .await?;
    assert_eq!(p.note, None, "{p:#?}");
    let diff = p.diff.as_deref().context("a diff")?;
    assert!(
        diff.contains("@@ -0,0 +1,") && diff.contains("\n+  colour: blue\n"),
        "{diff}"
    );
    assert_eq!(p.live, None);
    assert!(
        tb.get("configmap", &name).await?.is_none(),
        "the preview created it"
    );
    Ok(())
}

#[tokio::test]
async fn the_preview_runs_as_the_requester() -> Result<()> {
    let tb = Testbed::load()?;
    let (ns, name) = (tb.namespace(), unique("preview-rbac"));
    tb.apply(&config_map(&ns, &name)).await?;
    let _cleanup = tb.cleanup("configmap", &name);
    let path = format!("/api/v1/namespaces/{ns}/configmaps/{name}");
    // Readers may read it, not change it: the dry run is refused by the apiserver's RBAC.
    let p = tb
        .preview(
            READER,
            Method::PATCH,
            &path,
            MERGE_PATCH,
            Some(json!({"data": {"colour": "red"}})),
        )
        .await?;
    let note = p.note.as_deref().context("a note")?;
    assert!(
        note.starts_with("dry run refused: ") && note.contains("forbidden"),
        "{note}"
    );
    assert!(note.contains("agent-reader@custos.test"), "{note}");
    assert!(p.live.is_some(), "readers may read it");
    assert_eq!(p.diff, None);
    assert_eq!(
        tb.get("configmap", &name).await?.context("there")?["data"]["colour"],
        "blue"
    );
    Ok(())
}

//! Clients other than kubectl through Custos against the real testbed: helm's whole release cycle, the
//! official Python client (list, WebSocket exec and port-forward), kube-rs (list and watch), and the apiserver's own
//! audit log showing the OIDC user as the impersonated user behind the gateway's identity.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use custos_e2e::clients::{audit_ids, demo_chart, python_json, whoami, AuditLog, Helm};
use custos_e2e::{kubectl, ok, unique, Custos, Testbed};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use serde_json::Value;

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// kubectl through a kubeconfig; stdout, or an error naming the command.
fn k(kc: &Path, args: &[&str]) -> Result<String> {
    ok(kubectl("kubectl", kc, args)?).with_context(|| format!("kubectl {}", args.join(" ")))
}

/// kubectl with the testbed's admin kubeconfig, straight to the apiserver (not through Custos).
fn k_direct(tb: &Testbed, args: &[&str]) -> Result<String> {
    k(Path::new(tb.var("TESTBED_KUBECONFIG")?), args)
}

/// A Secret's value as the cluster holds it (read directly: through Custos it is masked).
fn secret_value(tb: &Testbed, ns: &str, name: &str, key: &str) -> Result<String> {
    let template = format!("go-template={{{{index .data \"{key}\" | base64decode}}}}");
    k_direct(tb, &["get", "secret", name, "-n", ns, "-o", &template])
}

#[test]
fn helm_install_upgrade_rollback_uninstall_through_custos() -> Result<()> {
    let tb = Testbed::load()?;
    // Helm reads its releases back (upgrade, rollback): only a profile that reveals Helm release
    // Secrets lets it; policy gives admins that profile.
    let fixture = custos_e2e::root().join("tests/e2e/fixtures/deploy-profile");
    let config = fixture.join("custos.yaml").display().to_string();
    let policy = fixture.join("policy.cedar").display().to_string();
    let gw = Custos::start(&tb, &["--config", &config, "--policy", &policy])?;
    let dir = tempfile::tempdir()?;
    let kc = gw.kubeconfig(dir.path(), "admin", Some(&tb.token("admin")?))?;
    let ns = unique("e2e-helm");
    k(&kc, &["create", "namespace", &ns])?;
    let result = helm_cycle(&tb, &kc, &ns);
    let _ = k_direct(&tb, &["delete", "namespace", &ns, "--wait=false"]);
    result.with_context(|| format!("gateway log:\n{}", tail(&gw.logs(), 40)))
}

fn helm_cycle(tb: &Testbed, kc: &Path, ns: &str) -> Result<()> {
    let helm = Helm::new(tb, kc)?;
    let chart = demo_chart().display().to_string();
    let rel = "demo";
    let status = |want_rev: u64, want_desc: &str| -> Result<()> {
        let s = helm.json(&["status", rel, "-n", ns])?;
        ensure!(
            s["info"]["status"] == "deployed" && s["version"] == want_rev,
            "helm status after {want_desc}: {}",
            s["info"]
        );
        ensure!(
            s["info"]["description"]
                .as_str()
                .is_some_and(|d| d.contains(want_desc)),
            "helm status description: {}",
            s["info"]["description"]
        );
        Ok(())
    };

    helm.ok(&["install", rel, &chart, "-n", ns])?;
    status(1, "Install complete")?;
    ensure!(secret_value(tb, ns, "demo-credentials", "password")? == "first-password");
    // Through Custos the same Secret reads masked, even for the deploy profile.
    let template = "go-template={{index .data \"password\" | base64decode}}";
    let masked = k(
        kc,
        &[
            "get",
            "secret",
            "demo-credentials",
            "-n",
            ns,
            "-o",
            template,
        ],
    )?;
    ensure!(masked == custos_mask::MARKER, "through Custos: {masked:?}");
    let cm = k(
        kc,
        &[
            "get",
            "configmap",
            "demo-config",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.revision}",
        ],
    )?;
    ensure!(cm == "1", "configmap revision after install: {cm}");

    helm.ok(&[
        "upgrade",
        rel,
        &chart,
        "-n",
        ns,
        "--set",
        "password=second-password",
    ])?;
    status(2, "Upgrade complete")?;
    ensure!(secret_value(tb, ns, "demo-credentials", "password")? == "second-password");

    helm.ok(&["rollback", rel, "1", "-n", ns])?;
    status(3, "Rollback to 1")?;
    ensure!(secret_value(tb, ns, "demo-credentials", "password")? == "first-password");
    let history = helm.json(&["history", rel, "-n", ns])?;
    let revs: Vec<(u64, &str)> = history
        .as_array()
        .context("history is a list")?
        .iter()
        .map(|h| {
            (
                h["revision"].as_u64().unwrap_or(0),
                h["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    ensure!(
        revs == [(1, "superseded"), (2, "superseded"), (3, "deployed")],
        "helm history: {history}"
    );
    // Helm keeps each revision as a Secret in the release's namespace.
    let stored = k(
        kc,
        &[
            "get",
            "secrets",
            "-n",
            ns,
            "-l",
            "owner=helm,name=demo",
            "-o",
            "name",
        ],
    )?;
    ensure!(stored.lines().count() == 3, "release secrets: {stored}");

    helm.ok(&["uninstall", rel, "-n", ns])?;
    let gone = helm.run(&["status", rel, "-n", ns])?;
    ensure!(
        !gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("not found"),
        "helm status after uninstall: {gone:?}"
    );
    let left = k(kc, &["get", "secrets,configmaps", "-n", ns, "-o", "name"])?;
    ensure!(
        !left.contains("demo-credentials")
            && !left.contains("demo-config")
            && !left.contains("sh.helm"),
        "left after uninstall: {left}"
    );
    ensure!(
        helm.json(&["list", "-n", ns])? == serde_json::json!([]),
        "helm list after uninstall"
    );
    Ok(())
}

#[test]
fn python_client_lists_pods_execs_and_port_forwards_over_websocket_through_custos() -> Result<()> {
    let tb = Testbed::load()?;
    let gw = Custos::start(&tb, &[])?;
    let dir = tempfile::tempdir()?;
    let pods_ns = tb.var("TESTBED_NAMESPACE")?;
    let direct: BTreeSet<String> = k_direct(&tb, &["get", "pods", "-n", pods_ns, "-o", "name"])?
        .lines()
        .map(|l| l.trim_start_matches("pod/").to_owned())
        .collect();
    let probe = |user: &str| -> Result<Value> {
        let kc = gw.kubeconfig(dir.path(), user, Some(&tb.token(user)?))?;
        let kc = kc.display().to_string();
        python_json("probe.py", &[&kc, pods_ns, "toolbox"])
            .with_context(|| format!("as {user}; gateway log:\n{}", tail(&gw.logs(), 40)))
    };

    let admin = probe("admin")?;
    ensure!(
        admin["server"] == gw.url.as_str(),
        "python client bypassed Custos: {admin}"
    );
    let listed: BTreeSet<String> = admin["pods"]
        .as_array()
        .context("pods")?
        .iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    ensure!(
        listed == direct && listed.contains("toolbox"),
        "pods {listed:?} != {direct:?}"
    );
    ensure!(admin["exec"] == "python-exec-42\n", "exec: {admin}");
    ensure!(
        admin["stdin"] == "python-through-stdin\n",
        "exec stdin: {admin}"
    );
    ensure!(
        admin["channels"]["stdout"] == "to-stdout\n"
            && admin["channels"]["stderr"] == "to-stderr\n",
        "exec channels: {admin}"
    );
    ensure!(
        admin["portforward"] == "python-port-forward\n",
        "port-forward echo: {admin}"
    );

    // A reader may list but not exec: the apiserver judges the impersonated user, and its refusal of
    // the upgrade reaches the Python client as the apiserver's own 403 Status.
    let reader = probe("agent-reader")?;
    ensure!(reader["pods"] == admin["pods"], "reader list: {reader}");
    let refusal = reader["exec_error"]["reason"].as_str().unwrap_or_default();
    ensure!(
        refusal.contains("403")
            && refusal
                .contains(r#"User \"agent-reader@custos.test\" cannot get resource \"pods/exec\""#),
        "reader exec: {reader}"
    );
    Ok(())
}

#[test]
fn kube_rs_lists_pods_and_watches_configmaps_through_custos() -> Result<()> {
    // kube-rs with rustls needs a process-wide crypto provider; ring, like the gateway.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tb = Testbed::load()?;
    let gw = Custos::start(&tb, &[])?;
    let dir = tempfile::tempdir()?;
    let kc = gw.kubeconfig(dir.path(), "admin", Some(&tb.token("admin")?))?;
    let ns = unique("e2e-kube-rs");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(kube_rs_steps(&tb, &kc, &ns));
    let _ = k_direct(&tb, &["delete", "namespace", &ns, "--wait=false"]);
    result.with_context(|| format!("gateway log:\n{}", tail(&gw.logs(), 40)))
}

async fn kube_rs_steps(tb: &Testbed, kc: &Path, ns: &str) -> Result<()> {
    let config =
        Config::from_custom_kubeconfig(Kubeconfig::read_from(kc)?, &KubeConfigOptions::default())
            .await?;
    ensure!(
        config
            .cluster_url
            .to_string()
            .starts_with("https://127.0.0.1:"),
        "cluster url {}",
        config.cluster_url
    );
    let client = Client::try_from(config)?;
    let version = client.apiserver_version().await?;
    ensure!(
        version.minor.starts_with("34"),
        "apiserver version through Custos: {version:?}"
    );

    let pods_ns = tb.var("TESTBED_NAMESPACE")?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), pods_ns);
    let names: Vec<String> = pods
        .list(&ListParams::default())
        .await?
        .iter()
        .map(|p| p.name_any())
        .collect();
    for want in ["toolbox", "app-0", "app-1"] {
        ensure!(
            names.iter().any(|n| n == want),
            "kube-rs pod list lacks {want}: {names:?}"
        );
    }

    // The namespace is created through Custos as well; the configmaps are made behind its back.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut object = Namespace::default();
    object.metadata.name = Some(ns.to_owned());
    namespaces.create(&PostParams::default(), &object).await?;

    let cms: Api<ConfigMap> = Api::namespaced(client, ns);
    let list = cms.list(&ListParams::default()).await?;
    let rv = list
        .metadata
        .resource_version
        .context("list has no resourceVersion")?;
    let mut events = cms
        .watch(&WatchParams::default().timeout(120), &rv)
        .await?
        .boxed();

    let name = "watched-by-kube-rs";
    let admin_kc = tb.var("TESTBED_KUBECONFIG")?.to_owned();
    let direct = |args: Vec<String>| {
        let admin_kc = admin_kc.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            k(Path::new(&admin_kc), &args)
        })
    };
    let create = format!("create configmap {name} -n {ns} --from-literal=seen=yes");
    direct(create.split(' ').map(str::to_owned).collect()).await??;
    let added = next_event_for(&mut events, name).await?;
    match added {
        WatchEvent::Added(cm) => ensure!(
            cm.data
                .as_ref()
                .and_then(|d| d.get("seen"))
                .map(String::as_str)
                == Some("yes"),
            "added configmap data: {:?}",
            cm.data
        ),
        other => bail!("first event for {name} was {other:?}, not Added"),
    }
    let delete = format!("delete configmap {name} -n {ns}");
    direct(delete.split(' ').map(str::to_owned).collect()).await??;
    match next_event_for(&mut events, name).await? {
        WatchEvent::Deleted(_) => Ok(()),
        other => bail!("event after delete of {name} was {other:?}, not Deleted"),
    }
}

/// The next watch event about the configmap `name` (others, such as the namespace's
/// `kube-root-ca.crt`, are skipped), within 20 s.
async fn next_event_for(
    events: &mut (impl futures_util::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
    name: &str,
) -> Result<WatchEvent<ConfigMap>> {
    let wait = async {
        while let Some(event) = events.try_next().await? {
            let about = match &event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                    o.name_any()
                }
                WatchEvent::Error(status) => bail!("watch error: {status:?}"),
                WatchEvent::Bookmark(_) => continue,
            };
            if about == name {
                return Ok(event);
            }
        }
        bail!("watch ended before an event for {name}")
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .with_context(|| format!("no watch event for {name} within 20 s"))?
}

#[test]
fn apiserver_audit_log_shows_the_oidc_user_as_impersonated_user() -> Result<()> {
    let tb = Testbed::load()?;
    let gw = Custos::start(&tb, &[])?;
    let dir = tempfile::tempdir()?;
    let kc = gw.kubeconfig(dir.path(), "agent-reader", Some(&tb.token("agent-reader")?))?;
    let ns = tb.var("TESTBED_NAMESPACE")?.to_owned();
    let name = unique("audit-probe");
    k_direct(
        &tb,
        &[
            "create",
            "configmap",
            &name,
            "-n",
            &ns,
            "--from-literal=a=1",
        ],
    )?;
    let result = audit_steps(&tb, &kc, &ns, &name);
    let _ = k_direct(&tb, &["delete", "configmap", &name, "-n", &ns]);
    result.with_context(|| format!("gateway log:\n{}", tail(&gw.logs(), 40)))
}

fn audit_steps(tb: &Testbed, kc: &Path, ns: &str, name: &str) -> Result<()> {
    // The gateway's identity: Custos::start forwards with the testbed's admin kubeconfig.
    let gateway_user =
        whoami(Path::new(tb.var("TESTBED_GATEWAY_KUBECONFIG")?))?["username"].clone();
    ensure!(gateway_user.is_string(), "gateway whoami: {gateway_user}");
    ensure!(
        k(kc, &["auth", "can-i", "get", "configmaps", "-n", ns])?.trim() == "yes",
        "agent-reader may not read configmaps"
    );

    let mut log = AuditLog::from_end(tb)?;
    let out = kubectl(
        "kubectl",
        kc,
        &["-v=8", "get", "configmap", name, "-n", ns, "-o", "name"],
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).trim() == format!("configmap/{name}"),
        "get as agent-reader: {}",
        tail(&stderr, 20)
    );
    let seen_ids = audit_ids(&stderr);
    let event = log.wait_for(
        &format!("get configmap {name}"),
        Duration::from_secs(10),
        |e| {
            e["verb"] == "get" && e["objectRef"]["name"] == name && e["stage"] == "ResponseComplete"
        },
    )?;
    ensure!(
        event["user"]["username"] == gateway_user,
        "user: {}",
        event["user"]
    );
    let imp = &event["impersonatedUser"];
    ensure!(
        imp["username"] == "agent-reader@custos.test",
        "impersonatedUser: {imp}"
    );
    let groups: Vec<&str> = imp["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    ensure!(
        groups.contains(&"agents") && groups.contains(&"readers"),
        "impersonated groups: {groups:?}"
    );
    ensure!(
        imp["uid"].as_str().is_some_and(|u| !u.is_empty()),
        "impersonated uid: {imp}"
    );
    ensure!(
        event["responseStatus"]["code"] == 200,
        "status: {}",
        event["responseStatus"]
    );
    let reason = event["annotations"]["authorization.k8s.io/reason"]
        .as_str()
        .unwrap_or_default();
    ensure!(
        reason.contains(r#"Group "readers""#),
        "authorized by: {reason}"
    );
    // The Audit-ID the client saw is the apiserver's: both logs correlate.
    let id = event["auditID"].as_str().unwrap_or_default();
    ensure!(
        seen_ids.iter().any(|s| s == id),
        "auditID {id} not among the client's {seen_ids:?}"
    );
    ensure!(
        event["userAgent"]
            .as_str()
            .is_some_and(|ua| ua.starts_with("kubectl/")),
        "userAgent: {}",
        event["userAgent"]
    );

    // A write the reader's RBAC does not allow: refused by the apiserver in the reader's name.
    let denied = kubectl("kubectl", kc, &["delete", "configmap", name, "-n", ns])?;
    let msg = String::from_utf8_lossy(&denied.stderr);
    ensure!(
        !denied.status.success()
            && msg
                .contains(r#"User "agent-reader@custos.test" cannot delete resource "configmaps""#),
        "delete as agent-reader: {msg}"
    );
    let event = log.wait_for(
        &format!("delete configmap {name}"),
        Duration::from_secs(10),
        |e| {
            e["verb"] == "delete"
                && e["objectRef"]["name"] == name
                && e["stage"] == "ResponseComplete"
        },
    )?;
    ensure!(
        event["responseStatus"]["code"] == 403
            && event["user"]["username"] == gateway_user
            && event["impersonatedUser"]["username"] == "agent-reader@custos.test",
        "denied delete event: {event}"
    );
    Ok(())
}

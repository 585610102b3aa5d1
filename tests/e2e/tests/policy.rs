//! Cedar policy in front of the real cluster: kubectl through Custos with the example policy set.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Result};
use custos_e2e::raw::http_get;
use custos_e2e::{custos_bin, kubectl, kubectl_bin, output_within, root, unique, Custos, Testbed};

fn examples() -> String {
    root().join("examples/policies").display().to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn example_policies_validate_and_their_tests_pass() -> Result<()> {
    let run = |args: &[&str]| -> Result<String> {
        let mut c = Command::new(custos_bin()?);
        c.args(args);
        custos_e2e::ok(output_within(c, Duration::from_secs(60))?)
    };
    let check = run(&["policy", "check", &examples()])?;
    ensure!(check.contains("are valid"), "check: {check}");
    let tests = run(&["policy", "test", &examples()])?;
    ensure!(
        tests
            .lines()
            .any(|l| l.ends_with(" 0 failed") && l.starts_with(char::is_numeric)),
        "test: {tests}"
    );
    Ok(())
}

#[test]
fn agents_are_held_to_policy_through_kubectl() -> Result<()> {
    let tb = Testbed::load()?;
    // Reviews are answered at once here (approvals.rs covers holding them).
    let no_hold = root()
        .join("tests/e2e/fixtures/no-hold.yaml")
        .display()
        .to_string();
    let gw = Custos::start(&tb, &["--policy", &examples(), "--config", &no_hold])?;
    let dir = tempfile::tempdir()?;
    let reader = gw.kubeconfig(dir.path(), "reader", Some(&tb.token("agent-reader")?))?;
    let operator = gw.kubeconfig(dir.path(), "operator", Some(&tb.token("agent-operator")?))?;
    let admin = gw.kubeconfig(dir.path(), "admin", Some(&tb.token("admin")?))?;
    let k = kubectl_bin(33)?.display().to_string();

    // A read-only agent reads, but its delete is denied with the policy's reason.
    let ns = tb.var("TESTBED_NAMESPACE")?;
    custos_e2e::ok(kubectl(&k, &reader, &["get", "pods", "-n", ns])?)?;
    let del = kubectl(
        &k,
        &reader,
        &["delete", "pod", "app-0", "-n", ns, "--dry-run=server"],
    )?;
    ensure!(!del.status.success(), "the reader's delete succeeded");
    ensure!(
        stderr(&del).contains("Forbidden")
            && stderr(&del).contains("read-only agents may not change anything"),
        "reader delete: {}",
        stderr(&del)
    );
    // Secrets are not readable by agents.
    let sec = kubectl(&k, &reader, &["get", "secrets", "-n", ns])?;
    ensure!(
        !sec.status.success() && stderr(&sec).contains("Forbidden"),
        "reader secrets: {}",
        stderr(&sec)
    );

    // An operator agent's exec into production needs review (kubectl 1.27 SPDY and 1.33 WebSocket).
    for minor in [27, 33] {
        let kb = kubectl_bin(minor)?.display().to_string();
        let exec = kubectl(
            &kb,
            &operator,
            &["exec", "-n", "prod-eu", "toolbox", "--", "echo", "hi"],
        )?;
        ensure!(
            !exec.status.success(),
            "exec into prod-eu was not held (1.{minor})"
        );
        ensure!(
            stderr(&exec).contains("approval required"),
            "1.{minor} exec: {}",
            stderr(&exec)
        );
    }
    // …while outside production the same exec runs.
    let out = custos_e2e::ok(kubectl(
        &k,
        &operator,
        &[
            "exec",
            "-n",
            "staging",
            "toolbox",
            "--",
            "echo",
            "staging-ok",
        ],
    )?)?;
    ensure!(out.trim() == "staging-ok", "staging exec: {out}");

    // A privileged pod is refused, even for a platform admin.
    let pod = dir.path().join("privileged.yaml");
    let name = unique("priv");
    std::fs::write(
        &pod,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: staging\nspec:\n  containers:\n  - name: c\n    image: docker.io/library/busybox:1.36\n    securityContext:\n      privileged: true\n"
        ),
    )?;
    let created = kubectl(&k, &admin, &["apply", "-f", &pod.display().to_string()])?;
    ensure!(!created.status.success(), "a privileged pod was admitted");
    ensure!(
        stderr(&created).contains("privileged containers are not allowed"),
        "privileged: {}",
        stderr(&created)
    );
    let gone = kubectl(
        &k,
        Path::new(tb.var("TESTBED_KUBECONFIG")?),
        &["get", "pod", &name, "-n", "staging"],
    )?;
    ensure!(
        !gone.status.success(),
        "the privileged pod exists in the cluster"
    );
    Ok(())
}

#[test]
fn a_broken_policy_is_refused_on_reload_and_the_old_one_keeps_serving() -> Result<()> {
    let tb = Testbed::load()?;
    let dir = tempfile::tempdir()?;
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies)?;
    for entry in std::fs::read_dir(root().join("examples/policies"))? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "cedar") {
            std::fs::copy(&p, policies.join(p.file_name().unwrap_or_default()))?;
        }
    }
    let gw = Custos::start(&tb, &["--policy", &policies.display().to_string()])?;
    let reader = gw.kubeconfig(dir.path(), "reader", Some(&tb.token("agent-reader")?))?;
    let ns = tb.var("TESTBED_NAMESPACE")?;
    custos_e2e::ok(kubectl("kubectl", &reader, &["get", "pods", "-n", ns])?)?;

    // A syntax error lands in the policy folder: the reload must be refused.
    std::fs::write(
        policies.join("99-broken.cedar"),
        "permit(principal, action, resource) when { ;\n",
    )?;
    let mut refused = false;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(250));
        let metrics = http_get(&format!("{}/metrics", gw.ops))?.body_text(1 << 20);
        if metrics.contains(r#"custos_policy_reloads_total{result="refused"} 1"#) {
            refused = true;
            break;
        }
    }
    ensure!(
        refused,
        "the broken reload was not counted as refused; log:\n{}",
        gw.logs()
    );
    ensure!(
        gw.logs().contains("99-broken.cedar:1:"),
        "the refusal should name file:line:col:\n{}",
        gw.logs()
    );
    // The previous set still decides: reads allowed, the delete still denied with its reason.
    custos_e2e::ok(kubectl("kubectl", &reader, &["get", "pods", "-n", ns])?)?;
    let del = kubectl(
        "kubectl",
        &reader,
        &["delete", "pod", "app-0", "-n", ns, "--dry-run=server"],
    )?;
    ensure!(
        stderr(&del).contains("read-only agents may not change anything"),
        "after refused reload: {}",
        stderr(&del)
    );

    // Fixing the file reloads successfully.
    std::fs::remove_file(policies.join("99-broken.cedar"))?;
    let mut ok = false;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(250));
        let metrics = http_get(&format!("{}/metrics", gw.ops))?.body_text(1 << 20);
        if metrics.contains(r#"custos_policy_reloads_total{result="ok"}"#) {
            ok = true;
            break;
        }
    }
    ensure!(ok, "the fixed policy was not reloaded");
    Ok(())
}

#[test]
fn an_invalid_policy_stops_start_up_with_file_line_and_column() -> Result<()> {
    let tb = Testbed::load()?;
    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("bad.cedar");
    std::fs::write(
        &bad,
        "permit(principal, action == k8s::Action::\"frobnicate\", resource);\n",
    )?;
    let err = match Custos::start(&tb, &["--policy", &bad.display().to_string()]) {
        Ok(_) => anyhow::bail!("custos started with an invalid policy"),
        Err(e) => format!("{e:#}"),
    };
    ensure!(
        err.contains("bad.cedar:1:"),
        "start-up error should name file:line:col: {err}"
    );
    Ok(())
}

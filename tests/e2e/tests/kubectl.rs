//! kubectl 1.27 (SPDY streams), 1.30 (WebSocket exec, SPDY port-forward) and 1.33 (WebSocket everywhere)
//! through Custos against the real testbed, authenticated with Dex tokens.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use custos_e2e::{
    in_tty, kubectl, kubectl_bin, ok, unique, Custos, PortForward, Streaming, Testbed,
};

struct Run<'a> {
    bin: String,
    kc: &'a Path,
    ns: String,
    pods_ns: String,
    admin_kc: String,
}

impl Run<'_> {
    fn k(&self, args: &[&str]) -> Result<String> {
        ok(kubectl(&self.bin, self.kc, args)?)
            .with_context(|| format!("{} {}", self.bin, args.join(" ")))
    }
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--kubeconfig").arg(self.kc);
        c
    }
}

fn matrix(minor: u32) -> Result<()> {
    let tb = Testbed::load()?;
    let gw = Custos::start(&tb, &[])?;
    let dir = tempfile::tempdir()?;
    let kc = gw.kubeconfig(dir.path(), "admin", Some(&tb.token("admin")?))?;
    let r = Run {
        bin: kubectl_bin(minor)?.display().to_string(),
        kc: &kc,
        ns: unique(&format!("e2e-k{minor}")),
        pods_ns: tb.var("TESTBED_NAMESPACE")?.to_owned(),
        admin_kc: tb.var("TESTBED_KUBECONFIG")?.to_owned(),
    };
    let result = steps(&r, dir.path());
    let _ = kubectl(&r.bin, &kc, &["delete", "namespace", &r.ns, "--wait=false"]);
    result.with_context(|| format!("kubectl 1.{minor}; gateway log:\n{}", tail(&gw.logs(), 40)))
}

fn steps(r: &Run, dir: &Path) -> Result<()> {
    let ns = r.ns.as_str();
    let pns = r.pods_ns.as_str();
    r.k(&["create", "namespace", ns])?;

    // get/list as a table, as YAML and as JSON.
    let table = r.k(&["get", "pods", "-n", pns])?;
    ensure!(
        table.starts_with("NAME") && table.contains("toolbox"),
        "table: {table}"
    );
    let yaml = r.k(&["get", "pod", "toolbox", "-n", pns, "-o", "yaml"])?;
    ensure!(
        yaml.contains("kind: Pod") && yaml.contains("name: toolbox"),
        "yaml: {yaml}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&r.k(&["get", "pods", "-n", pns, "-o", "json"])?)?;
    ensure!(
        json["kind"] == "List" && json["items"].as_array().is_some_and(|a| a.len() >= 3),
        "json list"
    );

    // get -w streams events as they happen: the watch is running before the object exists.
    let mut watch = Streaming::spawn({
        let mut c = r.cmd();
        c.args(["get", "configmaps", "-n", ns, "-w", "-o", "name"]);
        c
    })?;
    std::thread::sleep(Duration::from_millis(1500));
    r.k(&[
        "create",
        "configmap",
        "watched",
        "-n",
        ns,
        "--from-literal=a=1",
    ])?;
    watch.wait_for("configmap/watched", Duration::from_secs(20))?;
    drop(watch);

    // create, client-side apply, server-side apply.
    r.k(&[
        "create",
        "configmap",
        "created",
        "-n",
        ns,
        "--from-literal=k=v",
    ])?;
    let manifest = dir.join(format!("{ns}-cm.yaml"));
    std::fs::write(
        &manifest,
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: {ns}\ndata:\n  a: \"1\"\n"),
    )?;
    r.k(&["apply", "-f", &manifest.display().to_string()])?;
    let ssa = dir.join(format!("{ns}-ssa.yaml"));
    std::fs::write(
        &ssa,
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: {ns}\ndata:\n  b: \"2\"\n"),
    )?;
    r.k(&[
        "apply",
        "--server-side",
        "--field-manager=e2e",
        "-f",
        &ssa.display().to_string(),
    ])?;

    // patch: strategic merge, JSON merge, JSON patch; and an apply patch (server-side apply update).
    r.k(&[
        "patch",
        "configmap",
        "applied",
        "-n",
        ns,
        "-p",
        r#"{"data":{"s":"strategic"}}"#,
    ])?;
    r.k(&[
        "patch",
        "configmap",
        "applied",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"data":{"m":"merge"}}"#,
    ])?;
    r.k(&[
        "patch",
        "configmap",
        "applied",
        "-n",
        ns,
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/data/j","value":"json"}]"#,
    ])?;
    std::fs::write(
        &ssa,
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: {ns}\ndata:\n  b: \"3\"\n"),
    )?;
    r.k(&[
        "apply",
        "--server-side",
        "--field-manager=e2e",
        "-f",
        &ssa.display().to_string(),
    ])?;
    let data: serde_json::Value = serde_json::from_str(&r.k(&[
        "get",
        "configmap",
        "applied",
        "-n",
        ns,
        "-o",
        "jsonpath={.data}",
    ])?)?;
    ensure!(
        data["s"] == "strategic" && data["m"] == "merge" && data["j"] == "json",
        "patched data: {data}"
    );
    ensure!(
        r.k(&[
            "get",
            "configmap",
            "ssa",
            "-n",
            ns,
            "-o",
            "jsonpath={.data.b}"
        ])? == "3",
        "ssa update"
    );

    // delete.
    r.k(&["delete", "configmap", "created", "-n", ns])?;
    ensure!(
        kubectl(&r.bin, r.kc, &["get", "configmap", "created", "-n", ns])?
            .status
            .code()
            == Some(1),
        "deleted"
    );

    // exec without a TTY: output, stderr, stdin and the remote exit code.
    let out = r.k(&[
        "exec",
        "-n",
        pns,
        "toolbox",
        "--",
        "sh",
        "-c",
        "echo exec-$((6*7))",
    ])?;
    ensure!(out.trim() == "exec-42", "exec: {out}");
    let mut child = r
        .cmd()
        // head, not cat: kwok's exec does not pass stdin's end to the command.
        .args(["exec", "-i", "-n", pns, "toolbox", "--", "head", "-n1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(b"through-stdin\n")?;
    let out = child.wait_with_output()?;
    ensure!(
        String::from_utf8_lossy(&out.stdout).trim() == "through-stdin",
        "exec -i"
    );
    // A failing remote command fails kubectl exactly as it does without Custos (kwok reports the exit
    // status as an error message rather than a status code).
    let exit7 = ["exec", "-n", pns, "toolbox", "--", "sh", "-c", "exit 7"];
    let via = kubectl(&r.bin, r.kc, &exit7)?;
    let direct = kubectl(&r.bin, Path::new(&r.admin_kc), &exit7)?;
    ensure!(
        via.status.code() == direct.status.code() && via.status.code() != Some(0),
        "exit codes differ"
    );
    ensure!(
        String::from_utf8_lossy(&via.stderr).contains("exit status 7"),
        "exit status lost"
    );

    // exec with a TTY, typing into an interactive shell.
    let line = format!(
        "{} --kubeconfig {} exec -it -n {pns} toolbox -- sh",
        r.bin,
        r.kc.display()
    );
    let screen = in_tty(&line, &["echo typed-$((20+22))\n", "exit\n"])?;
    ensure!(screen.contains("typed-42"), "tty exec screen: {screen}");

    // attach: the container's output arrives.
    let mut attach = Streaming::spawn({
        let mut c = r.cmd();
        c.args(["attach", "-n", pns, "toolbox", "-c", "main"]);
        c
    })?;
    attach.wait_for("testbed tick", Duration::from_secs(20))?;
    drop(attach);

    // cp both ways (relative pod paths land in the exec working directory).
    let name = format!("{ns}.txt");
    let local = dir.join(&name);
    std::fs::write(&local, format!("copied through custos {ns}\n").repeat(200))?;
    r.k(&[
        "cp",
        &local.display().to_string(),
        &format!("{pns}/toolbox:{name}"),
    ])?;
    let back = dir.join(format!("back-{name}"));
    r.k(&[
        "cp",
        &format!("{pns}/toolbox:{name}"),
        &back.display().to_string(),
    ])?;
    ensure!(
        std::fs::read(&local)? == std::fs::read(&back)?,
        "cp round trip differs"
    );
    let _ = r.k(&["exec", "-n", pns, "toolbox", "--", "rm", "-f", &name]);

    // port-forward with a real TCP round trip (the pod port is an echo server).
    let pf = PortForward::start(r.cmd(), pns, "toolbox", 8080)?;
    for size in [5usize, 200_000] {
        let payload: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        ensure!(
            pf.echo(&payload)? == payload,
            "port-forward echo of {size} bytes differs"
        );
    }
    drop(pf);

    // logs -f follows.
    let mut logs = Streaming::spawn({
        let mut c = r.cmd();
        c.args(["logs", "-f", "-n", pns, "toolbox", "--tail=1"]);
        c
    })?;
    logs.wait_for("testbed tick", Duration::from_secs(15))?;
    let first = logs.seen.len();
    logs.wait_for("testbed tick", Duration::from_secs(15))?;
    ensure!(logs.seen.len() >= first, "logs -f");
    let _ = logs.wait_for("__never__", Duration::from_secs(3));
    ensure!(
        logs.seen
            .iter()
            .filter(|l| l.contains("testbed tick"))
            .count()
            >= 2,
        "logs -f did not follow: {:?}",
        logs.seen
    );
    drop(logs);

    // auth can-i, api-resources, explain (OpenAPI v3).
    ensure!(
        r.k(&["auth", "can-i", "delete", "pods", "-n", ns])?.trim() == "yes",
        "can-i"
    );
    let res = r.k(&["api-resources"])?;
    ensure!(
        res.contains("configmaps") && res.contains("deployments"),
        "api-resources"
    );
    let explain = r.k(&["explain", "pods.spec.containers"])?;
    ensure!(
        explain.contains("FIELDS") || explain.contains("FIELD"),
        "explain: {explain}"
    );
    Ok(())
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn kubectl_1_27_works_unchanged_through_custos() -> Result<()> {
    matrix(27)
}

#[test]
fn kubectl_1_30_works_unchanged_through_custos() -> Result<()> {
    matrix(30)
}

#[test]
fn kubectl_1_33_works_unchanged_through_custos() -> Result<()> {
    matrix(33)
}

//! Sessions and replay on the testbed: an agent session of real `kubectl apply`, `patch`, `scale`,
//! a denied read and `delete` through Custos is listed and shown in order with its decisions and
//! statuses; `custos replay` re-issues it against fresh namespaces and reports every step matching,
//! or — with one object changed in the sandbox beforehand — the difference, by JSON path; the
//! session's evidence bundle holds its records and verifies. Patches of every explicit `--type` and a
//! foreground delete replay with the content types and delete options their records name.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use custos_e2e::{
    custos_bin, kubectl, kubectl_bin, ok, output_within, root, unique, Custos, Testbed,
};
use serde_json::Value;

const APP: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {colour: blue, size: \"3\"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: docker.io/library/busybox:1.36, command: [sleep, \"3600\"]}]
";

/// Straight to the apiserver with the testbed's admin kubeconfig.
fn direct(tb: &Testbed, args: &[&str]) -> Result<String> {
    ok(kubectl(
        "kubectl",
        Path::new(tb.var("TESTBED_KUBECONFIG")?),
        args,
    )?)
    .with_context(|| format!("kubectl (direct) {}", args.join(" ")))
}

/// `custos ARGS`, bounded in time.
fn custos(args: &[&str]) -> Result<Output> {
    let mut c = Command::new(custos_bin()?);
    c.args(args);
    output_within(c, Duration::from_secs(120))
}

fn custos_ok(args: &[&str]) -> Result<String> {
    let out = custos(args)?;
    ensure!(
        out.status.success(),
        "custos {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// `custos evidence export --session SESSION` of what happened since `started` into `DIR/bundle`;
/// the bundle's path and its records.
fn session_bundle(
    dir: &Path,
    started: &str,
    session: &str,
    data: &str,
) -> Result<(PathBuf, Vec<Value>)> {
    let bundle = dir.join("bundle");
    custos_ok(&[
        "evidence",
        "export",
        "--from",
        started,
        "--to",
        &time_after(60)?,
        "--session",
        session,
        "--out",
        &bundle.display().to_string(),
        "--data-dir",
        data,
    ])?;
    let records: Vec<Value> = std::fs::read_to_string(bundle.join("records.jsonl"))?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    Ok((bundle, records))
}

/// Now plus `seconds`, as the RFC 3339 time the CLI takes.
fn time_after(seconds: i64) -> Result<String> {
    let out = Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("{seconds:+} seconds"),
            "+%Y-%m-%dT%H:%M:%SZ",
        ])
        .output()?;
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Opens an agent session as the testbed's admin; returns its id and token.
fn open_session(tb: &Testbed, gw: &Custos) -> Result<(String, String)> {
    let raw = custos_e2e::raw::RawClient::new(&gw.url, &gw.ca)?;
    let resp = raw.send(
        &custos_e2e::raw::RawRequest::new("POST", "/custos/v1/sessions")
            .bearer(&tb.token("admin")?)
            .header("Content-Type", "application/json")
            .body(
                br#"{"intent":"roll out the web app","ticket":"CHG-3101","ttlSeconds":600}"#
                    .to_vec(),
            ),
    )?;
    ensure!(
        resp.code == 201,
        "session: {} {}",
        resp.code,
        resp.body_text(500)
    );
    let opened: Value = serde_json::from_slice(&resp.body)?;
    Ok((
        opened["id"].as_str().context("session id")?.to_owned(),
        opened["token"]
            .as_str()
            .context("session token")?
            .to_owned(),
    ))
}

/// The recorded session: apply (a ConfigMap and a Deployment), patch, scale, a denied read, delete.
fn run_session(kc: &Path, dir: &Path, ns: &str) -> Result<()> {
    let k = kubectl_bin(33)?.display().to_string();
    let app = dir.join("app.yaml");
    std::fs::write(&app, APP)?;
    let app = app.display().to_string();
    ok(kubectl(&k, kc, &["apply", "-n", ns, "-f", &app])?).context("apply")?;
    ok(kubectl(
        &k,
        kc,
        &[
            "patch",
            "configmap",
            "app-config",
            "-n",
            ns,
            "-p",
            r#"{"data":{"colour":"green"}}"#,
        ],
    )?)
    .context("patch")?;
    ok(kubectl(
        &k,
        kc,
        &["scale", "deployment", "web", "-n", ns, "--replicas=3"],
    )?)
    .context("scale")?;
    let denied = kubectl(&k, kc, &["get", "secret", "db-credentials", "-n", ns])?;
    ensure!(
        !denied.status.success()
            && String::from_utf8_lossy(&denied.stderr).contains("not part of this change"),
        "the Secret read was not denied: {}",
        String::from_utf8_lossy(&denied.stderr)
    );
    ok(kubectl(&k, kc, &["delete", "deployment", "web", "-n", ns])?).context("delete")?;
    Ok(())
}

/// The session's API requests on the objects it changed, as (verb, resource, status, decision).
fn changes(timeline: &Value) -> Vec<(String, String, u64, String)> {
    timeline
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "request")
        .filter(|e| {
            let r = e["resource"].as_str().unwrap_or_default();
            let v = e["verb"].as_str().unwrap_or_default();
            let change =
                v != "get" && (r.starts_with("configmaps") || r.starts_with("deployments"));
            change || r == "secrets"
        })
        .map(|e| {
            (
                e["verb"].as_str().unwrap_or_default().to_owned(),
                e["resource"].as_str().unwrap_or_default().to_owned(),
                e["status"]["code"].as_u64().unwrap_or_default(),
                e["decision"]["outcome"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect()
}

fn replay(session: &str, data_dir: &Path, against: &str, map: &str, out: &Path) -> Result<Output> {
    let mut c = Command::new(custos_bin()?);
    c.args([
        "replay",
        session,
        "--against",
        against,
        "--namespace-map",
        map,
    ])
    .arg("--out")
    .arg(out)
    .arg("--data-dir")
    .arg(data_dir);
    output_within(c, Duration::from_secs(180))
}

fn report(out: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(out.join("report.json"))?;
    Ok(serde_json::from_str(&text)?)
}

#[test]
fn a_recorded_session_is_shown_in_order_and_replays_into_a_sandbox_with_a_diff() -> Result<()> {
    let tb = Testbed::load()?;
    let recorded = unique("replay-rec");
    let sandbox = unique("replay-sbx");
    let changed = unique("replay-chg");
    for ns in [&recorded, &sandbox, &changed] {
        direct(&tb, &["create", "namespace", ns])?;
    }
    let result = scenario(&tb, &recorded, &sandbox, &changed);
    for ns in [&recorded, &sandbox, &changed] {
        let _ = direct(&tb, &["delete", "namespace", ns, "--wait=false"]);
    }
    result
}

fn scenario(tb: &Testbed, recorded: &str, sandbox: &str, changed: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let policy = root().join("tests/e2e/fixtures/replay/policy.cedar");
    let mut gw = Custos::start(tb, &["--policy", &policy.display().to_string()])?;
    let started = time_after(-5)?;
    let recorded_run = (|| -> Result<String> {
        let (session, token) = open_session(tb, &gw)?;
        let kc = gw.kubeconfig(dir.path(), "agent-session", Some(&token))?;
        run_session(&kc, dir.path(), recorded)?;
        Ok(session)
    })();
    gw.stop()?;
    let session = recorded_run.with_context(|| format!("gateway log:\n{}", gw.logs()))?;
    let data = gw.data_dir.display().to_string();

    // sessions list: the session, its user, intent and counts.
    let list: Value = serde_json::from_str(&custos_ok(&[
        "sessions",
        "list",
        "--data-dir",
        &data,
        "-o",
        "json",
    ])?)?;
    let item = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["id"] == session.as_str())
        .with_context(|| format!("{session} not listed: {list}"))?;
    ensure!(
        item["kind"] == "custos" && item["user"] == "admin@custos.test",
        "{item}"
    );
    ensure!(
        item["intent"] == "roll out the web app" && item["ticket"] == "CHG-3101",
        "{item}"
    );
    ensure!(
        item["denials"] == 1 && item["requests"].as_u64() >= Some(8),
        "{item}"
    );
    let text = custos_ok(&["sessions", "list", "--data-dir", &data])?;
    ensure!(
        text.contains(&session) && text.contains("roll out the web app [CHG-3101]"),
        "{text}"
    );

    // sessions show: the changes in order, each with its decision and status.
    let shown: Value = serde_json::from_str(&custos_ok(&[
        "sessions",
        "show",
        &session,
        "--data-dir",
        &data,
        "-o",
        "json",
    ])?)?;
    let want: Vec<(String, String, u64, String)> = [
        ("create", "configmaps", 201, "allow"),
        ("create", "deployments", 201, "allow"),
        ("patch", "configmaps", 200, "allow"),
        ("patch", "deployments/scale", 200, "allow"),
        ("get", "secrets", 403, "deny"),
        ("delete", "deployments", 200, "allow"),
    ]
    .iter()
    .map(|(v, r, c, d)| ((*v).to_owned(), (*r).to_owned(), *c, (*d).to_owned()))
    .collect();
    ensure!(
        changes(&shown["timeline"]) == want,
        "timeline: {:#?}",
        changes(&shown["timeline"])
    );
    ensure!(
        shown["timeline"][0]["kind"] == "session-started",
        "{}",
        shown["timeline"][0]
    );
    let denied = shown["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["resource"] == "secrets")
        .context("the denied read")?;
    ensure!(
        denied["decision"]["policies"][0] == "no-secret-reads",
        "{denied}"
    );
    let text = custos_ok(&["sessions", "show", &session, "--data-dir", &data])?;
    for needle in [
        "intent      roll out the web app",
        "deny:no-secret-reads",
        "reason: reading Secrets",
    ] {
        ensure!(text.contains(needle), "{needle:?} not in:\n{text}");
    }

    // Replay into a fresh namespace: every step matches or is explained (the denied read).
    let against = tb.var("TESTBED_KUBECONFIG")?;
    let out = dir.path().join("replay-fresh");
    let run = replay(
        &session,
        &gw.data_dir,
        against,
        &format!("{recorded}={sandbox}"),
        &out,
    )?;
    let fresh =
        report(&out).with_context(|| format!("{}", String::from_utf8_lossy(&run.stderr)))?;
    ensure!(
        run.status.success(),
        "replay into a fresh namespace did not match:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        std::fs::read_to_string(out.join("report.md")).unwrap_or_default()
    );
    ensure!(
        fresh["summary"]["differ"] == 0
            && fresh["summary"]["errors"] == 0
            && fresh["summary"]["matched"].as_u64() >= Some(12),
        "{}",
        fresh["summary"]
    );
    let skipped: Vec<&Value> = steps(&fresh)
        .filter(|s| s["verdict"] == "not-replayable")
        .collect();
    ensure!(
        skipped.len() == 1
            && skipped[0]["resource"] == "secrets"
            && skipped[0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("denied by policy (no-secret-reads)")),
        "{skipped:?}"
    );
    let md = std::fs::read_to_string(out.join("report.md"))?;
    ensure!(
        md.contains("**PASS**") && md.contains(&format!("`{recorded}` → `{sandbox}`")),
        "{md}"
    );
    // The replay really wrote into the sandbox namespace: the ConfigMap as the session left it.
    let cm = direct(
        tb,
        &[
            "get",
            "configmap",
            "app-config",
            "-n",
            sandbox,
            "-o",
            "json",
        ],
    )?;
    let cm: Value = serde_json::from_str(&cm)?;
    ensure!(
        cm["data"]["colour"] == "green" && cm["data"]["size"] == "3",
        "{cm}"
    );

    // Replay into a namespace where the ConfigMap exists already, with another size: the
    // apply's read and create differ, and so does every later answer about it, by path.
    direct(
        tb,
        &[
            "create",
            "configmap",
            "app-config",
            "-n",
            changed,
            "--from-literal=colour=red",
            "--from-literal=size=5",
        ],
    )?;
    let out = dir.path().join("replay-changed");
    let run = replay(
        &session,
        &gw.data_dir,
        against,
        &format!("{recorded}={changed}"),
        &out,
    )?;
    ensure!(
        run.status.code() == Some(1),
        "replay against a changed object should fail: {:?}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let diverged = report(&out)?;
    let create = steps(&diverged)
        .find(|s| s["verb"] == "create" && s["resource"] == "configmaps")
        .context("the ConfigMap create")?;
    ensure!(
        create["verdict"] == "differ"
            && create["recordedStatus"] == 201
            && create["replayedStatus"] == 409,
        "{create}"
    );
    let patched = steps(&diverged)
        .find(|s| s["verb"] == "patch" && s["resource"] == "configmaps")
        .context("the ConfigMap patch")?;
    let size = patched["differences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["path"] == "data.size")
        .with_context(|| format!("no data.size difference: {patched}"))?;
    ensure!(size["recorded"] == "3" && size["replayed"] == "5", "{size}");
    let md = std::fs::read_to_string(out.join("report.md"))?;
    ensure!(
        md.contains("**FAIL**") && md.contains("| `data.size` | `\"3\"` | `\"5\"` |"),
        "{md}"
    );

    // The session's evidence: its records in a bundle that verifies.
    let (bundle, records) = session_bundle(dir.path(), &started, &session, &data)?;
    for kind in ["session-started", "request", "response"] {
        ensure!(
            records.iter().any(|r| r["custos"]["recordKind"] == kind),
            "no {kind} record in the session's bundle"
        );
    }
    ensure!(
        records
            .iter()
            .any(|r| r["custos"]["decision"]["outcome"] == "deny"),
        "the denied read is not in the bundle"
    );
    let verified = custos_ok(&["evidence", "verify", &bundle.display().to_string()])?;
    ensure!(verified.contains("evidence bundle verified"), "{verified}");
    let audited = custos_ok(&["audit", "verify", "--data-dir", &data])?;
    ensure!(audited.contains("audit log verified"), "{audited}");
    Ok(())
}

fn steps(report: &Value) -> impl Iterator<Item = &Value> {
    report["steps"].as_array().into_iter().flatten()
}

/// Creates a pod named `toolbox` in `ns` (kwok runs it; exec is served locally) and waits for it.
fn toolbox(tb: &Testbed, ns: &str) -> Result<()> {
    direct(
        tb,
        &[
            "run",
            "toolbox",
            "-n",
            ns,
            "--image=busybox:1.36",
            "--command",
            "--",
            "sleep",
            "infinity",
        ],
    )?;
    direct(
        tb,
        &[
            "wait",
            "-n",
            ns,
            "--for=condition=Ready",
            "pod/toolbox",
            "--timeout=90s",
        ],
    )?;
    Ok(())
}

fn flip_byte(path: &Path, at: usize) -> Result<()> {
    let mut bytes = std::fs::read(path)?;
    ensure!(bytes.len() > at, "{} is too short", path.display());
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes)?;
    Ok(())
}

#[test]
fn an_exec_in_a_session_plays_back_replays_and_its_recording_is_evidence() -> Result<()> {
    let tb = Testbed::load()?;
    let recorded = unique("replay-exec");
    let sandbox = unique("replay-exsb");
    for ns in [&recorded, &sandbox] {
        direct(&tb, &["create", "namespace", ns])?;
    }
    let result = (|| -> Result<()> {
        for ns in [&recorded, &sandbox] {
            toolbox(&tb, ns)?;
        }
        exec_scenario(&tb, &recorded, &sandbox)
    })();
    for ns in [&recorded, &sandbox] {
        let _ = direct(&tb, &["delete", "namespace", ns, "--wait=false"]);
    }
    result
}

fn exec_scenario(tb: &Testbed, recorded: &str, sandbox: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let policy = root().join("tests/e2e/fixtures/replay/policy.cedar");
    let mut gw = Custos::start(tb, &["--policy", &policy.display().to_string()])?;
    let started = time_after(-5)?;
    let marker = unique("replayed-output");
    let run = (|| -> Result<String> {
        let (session, token) = open_session(tb, &gw)?;
        let kc = gw.kubeconfig(dir.path(), "agent-session", Some(&token))?;
        let k = kubectl_bin(33)?.display().to_string();
        // Output on both channels and a failing exit code: all recorded, all compared on replay.
        let script = format!("echo {marker}; echo to-stderr >&2; exit 3");
        let out = kubectl(
            &k,
            &kc,
            &["exec", "-n", recorded, "toolbox", "--", "sh", "-c", &script],
        )?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            !out.status.success() && stdout.contains(&marker),
            "exec: {:?} {stdout} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(session)
    })();
    gw.stop()?;
    let session = run.with_context(|| format!("gateway log:\n{}", gw.logs()))?;
    let data = gw.data_dir.display().to_string();

    // The timeline shows the exec with its recording; play gives back its output.
    let shown: Value = serde_json::from_str(&custos_ok(&[
        "sessions",
        "show",
        &session,
        "--data-dir",
        &data,
        "-o",
        "json",
    ])?)?;
    let exec = shown["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["resource"] == "pods/exec" && !e["recordings"].is_null())
        .with_context(|| format!("no recorded exec in {shown}"))?;
    let name = exec["recordings"][0]["recording"]
        .as_str()
        .context("name")?
        .to_owned();
    ensure!(
        exec["recordings"][0]["chunks"].as_u64() >= Some(1)
            && exec["recordings"][0]["exitCode"] == 3,
        "{exec}"
    );
    let played = custos_ok(&[
        "sessions",
        "play",
        &session,
        "--speed",
        "1000",
        "--data-dir",
        &data,
    ])?;
    ensure!(
        played.contains(&marker) && played.contains("to-stderr"),
        "play printed {played:?}"
    );

    // Replayed in the sandbox's toolbox: the same output, the same exit code.
    let out = dir.path().join("replay");
    let run = replay(
        &session,
        &gw.data_dir,
        tb.var("TESTBED_KUBECONFIG")?,
        &format!("{recorded}={sandbox}"),
        &out,
    )?;
    let rep = report(&out)?;
    ensure!(
        run.status.success(),
        "exec replay: {}\n{}",
        String::from_utf8_lossy(&run.stderr),
        std::fs::read_to_string(out.join("report.md")).unwrap_or_default()
    );
    ensure!(
        steps(&rep).any(|s| s["resource"] == "pods/exec" && s["verdict"] == "match"),
        "no matching exec step: {rep}"
    );

    // Evidence: the recording is in the bundle, listed in MANIFEST, and checked against its chunks.
    let (bundle, _) = session_bundle(dir.path(), &started, &session, &data)?;
    let bundle_s = bundle.display().to_string();
    let copy = bundle.join("recordings").join(&name);
    ensure!(copy.is_file(), "{} not in the bundle", copy.display());
    let manifest = std::fs::read_to_string(bundle.join("MANIFEST"))?;
    ensure!(
        manifest.contains(&format!("  recordings/{name}\n")),
        "{manifest}"
    );
    let verified = custos_ok(&["evidence", "verify", &bundle_s])?;
    ensure!(
        verified.contains("recordings  1, each matching"),
        "{verified}"
    );
    let audited = custos_ok(&["audit", "verify", "--data-dir", &data])?;
    ensure!(audited.contains("recordings   1 checked"), "{audited}");

    // An edited recording fails, naming it: in the bundle (even with MANIFEST rewritten to match),
    // and in the data dir.
    flip_byte(&copy, 40)?;
    let failed = custos(&["evidence", "verify", &bundle_s])?;
    let err = String::from_utf8_lossy(&failed.stderr).into_owned();
    ensure!(!failed.status.success() && err.contains(&name), "{err}");
    let sum = Command::new("sha256sum").arg(&copy).output()?;
    let hex = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let rewritten: String = manifest
        .lines()
        .map(|l| {
            if l.ends_with(&format!("recordings/{name}")) {
                format!("{hex}  recordings/{name}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(bundle.join("MANIFEST"), rewritten)?;
    let failed = custos(&["evidence", "verify", &bundle_s])?;
    let err = String::from_utf8_lossy(&failed.stderr).into_owned();
    ensure!(
        !failed.status.success() && err.contains(&name) && err.contains("edited"),
        "{err}"
    );
    flip_byte(&gw.data_dir.join("recordings").join(&name), 40)?;
    let failed = custos(&["audit", "verify", "--data-dir", &data])?;
    let err = String::from_utf8_lossy(&failed.stderr).into_owned();
    ensure!(!failed.status.success() && err.contains(&name), "{err}");
    Ok(())
}

/// A session that patches with each explicit `--type` and deletes with options (and one raw patch
/// whose Content-Type has a long parameter) replays step for step: each patch goes with the content
/// type its record names — no probing, no guess — and the delete with its recorded `DeleteOptions`.
#[test]
fn patches_and_a_delete_with_options_replay_with_their_recorded_types() -> Result<()> {
    let tb = Testbed::load()?;
    let recorded = unique("replay-ct");
    let sandbox = unique("replay-ctsb");
    for ns in [&recorded, &sandbox] {
        direct(&tb, &["create", "namespace", ns])?;
    }
    let result = typed_scenario(&tb, &recorded, &sandbox);
    for ns in [&recorded, &sandbox] {
        let _ = direct(&tb, &["delete", "namespace", ns, "--wait=false"]);
    }
    result
}

/// The typed session: apply, a merge patch that replaces a list (strategic would merge it), a JSON
/// patch, a raw merge patch with a 4 KiB Content-Type parameter, and a foreground delete.
fn run_typed_session(gw: &Custos, token: &str, kc: &Path, dir: &Path, ns: &str) -> Result<()> {
    let k = kubectl_bin(33)?.display().to_string();
    let app = dir.join("app.yaml");
    std::fs::write(&app, APP)?;
    let app = app.display().to_string();
    ok(kubectl(&k, kc, &["apply", "-n", ns, "-f", &app])?).context("apply")?;
    let containers = r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"docker.io/library/busybox:1.37"}]}}}}"#;
    ok(kubectl(
        &k,
        kc,
        &[
            "patch",
            "deployment",
            "web",
            "-n",
            ns,
            "--type=merge",
            "-p",
            containers,
        ],
    )?)
    .context("merge patch")?;
    ok(kubectl(
        &k,
        kc,
        &[
            "patch",
            "configmap",
            "app-config",
            "-n",
            ns,
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/data/colour","value":"green"}]"#,
        ],
    )?)
    .context("json patch")?;
    let raw = custos_e2e::raw::RawClient::new(&gw.url, &gw.ca)?;
    let long = format!(
        "application/merge-patch+json; charset=utf-8; x={}",
        "y".repeat(4000)
    );
    let resp = raw.send(
        &custos_e2e::raw::RawRequest::new(
            "PATCH",
            format!("/api/v1/namespaces/{ns}/configmaps/app-config"),
        )
        .bearer(token)
        .header("Content-Type", long)
        .body(br#"{"data":{"size":"4"}}"#.to_vec()),
    )?;
    ensure!(
        resp.code == 200,
        "raw patch: {} {}",
        resp.code,
        resp.body_text(500)
    );
    ok(kubectl(
        &k,
        kc,
        &[
            "delete",
            "deployment",
            "web",
            "-n",
            ns,
            "--cascade=foreground",
            "--wait=false",
        ],
    )?)
    .context("delete")?;
    Ok(())
}

fn typed_scenario(tb: &Testbed, recorded: &str, sandbox: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let policy = root().join("tests/e2e/fixtures/replay/policy.cedar");
    let mut gw = Custos::start(tb, &["--policy", &policy.display().to_string()])?;
    let started = time_after(-5)?;
    let run = (|| -> Result<String> {
        let (session, token) = open_session(tb, &gw)?;
        let kc = gw.kubeconfig(dir.path(), "agent-session", Some(&token))?;
        run_typed_session(&gw, &token, &kc, dir.path(), recorded)?;
        Ok(session)
    })();
    gw.stop()?;
    let session = run.with_context(|| format!("gateway log:\n{}", gw.logs()))?;
    let data = gw.data_dir.display().to_string();

    // The records: each patch names its media type (parameters dropped), the delete its options.
    let (_, records) = session_bundle(dir.path(), &started, &session, &data)?;
    let requests: Vec<&Value> = records
        .iter()
        .filter(|r| r["custos"]["recordKind"] == "request")
        .filter(|r| matches!(r["verb"].as_str(), Some("patch" | "delete")))
        .collect();
    let types: Vec<(&str, &str, &str)> = requests
        .iter()
        .map(|r| {
            (
                r["verb"].as_str().unwrap_or_default(),
                r["objectRef"]["resource"].as_str().unwrap_or_default(),
                r["annotations"]["custos.dev/content-type"]
                    .as_str()
                    .unwrap_or("-"),
            )
        })
        .collect();
    ensure!(
        types
            == [
                ("patch", "deployments", "application/merge-patch+json"),
                ("patch", "configmaps", "application/json-patch+json"),
                ("patch", "configmaps", "application/merge-patch+json"),
                ("delete", "deployments", "application/json"),
            ],
        "{types:?}"
    );
    let delete = requests.last().context("the delete")?;
    ensure!(
        delete["requestObject"]["propagationPolicy"] == "Foreground",
        "the delete's options are not recorded: {delete}"
    );

    // Replay: every step matches, each typed step sent as recorded, nothing probed.
    let out = dir.path().join("replay");
    let run = replay(
        &session,
        &gw.data_dir,
        tb.var("TESTBED_KUBECONFIG")?,
        &format!("{recorded}={sandbox}"),
        &out,
    )?;
    let rep = report(&out).with_context(|| format!("{}", String::from_utf8_lossy(&run.stderr)))?;
    ensure!(
        run.status.success() && rep["summary"]["differ"] == 0 && rep["summary"]["errors"] == 0,
        "typed replay did not match:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        std::fs::read_to_string(out.join("report.md")).unwrap_or_default()
    );
    let sent: Vec<(&str, &str, &str, &str)> = steps(&rep)
        .filter(|s| matches!(s["verb"].as_str(), Some("patch" | "delete")))
        .map(|s| {
            (
                s["verb"].as_str().unwrap_or_default(),
                s["verdict"].as_str().unwrap_or_default(),
                s["contentType"].as_str().unwrap_or("-"),
                s["contentTypeFrom"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    ensure!(
        sent == [
            ("patch", "match", "application/merge-patch+json", "recorded"),
            ("patch", "match", "application/json-patch+json", "recorded"),
            ("patch", "match", "application/merge-patch+json", "recorded"),
            ("delete", "match", "application/json", "recorded"),
        ],
        "{sent:?}\n{rep}"
    );
    let guessed: Vec<&Value> = steps(&rep)
        .filter(|s| {
            (s["contentTypeFrom"] != "recorded" && !s["contentTypeFrom"].is_null())
                || s["notes"].to_string().contains("patch type not recorded")
        })
        .collect();
    ensure!(guessed.is_empty(), "probed or inferred: {guessed:?}");
    // The merge patch matched because it replaced the container list as in the recording (a
    // strategic merge keeps the command, a difference); the patches wrote into the sandbox.
    let replayed = direct(
        tb,
        &[
            "get",
            "configmap",
            "app-config",
            "-n",
            sandbox,
            "-o",
            "json",
        ],
    )?;
    let cm: Value = serde_json::from_str(&replayed)?;
    ensure!(
        cm["data"]["colour"] == "green" && cm["data"]["size"] == "4",
        "{cm}"
    );
    Ok(())
}

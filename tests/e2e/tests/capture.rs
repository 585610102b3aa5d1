//! Port-forward payload capture end to end: under a permit with `@capture("payload")`, kubectl 1.27
//! (SPDY) and 1.33 (SPDY tunnelled in WebSocket) forward a TCP connection to the testbed's echo pod port.
//! The bytes pass unchanged both ways (the echo comes back byte for byte, planted AWS key included), and
//! the gateway's recording of the connection holds both directions, length for length, with the key
//! masked; `custos audit verify` checks the file against its `stream-chunk` records, and fails once a
//! byte of it is edited.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use custos_audit::record::{Record, RecordKind};
use custos_e2e::{aws_key, custos_bin, kubectl_bin, log_records, Custos, PortForward, Testbed};
use custos_recording::{Code, Recording};

/// `custos audit verify --data-dir DIR`: its success and output.
fn audit_verify(data_dir: &Path) -> Result<(bool, String)> {
    let out = Command::new(custos_bin()?)
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .env_remove("CUSTOS_RECORDINGS")
        .env_remove("CUSTOS_STORE")
        .output()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Ok((out.status.success(), text))
}

fn captured_port_forward(minor: u32) -> Result<()> {
    let tb = Testbed::load()?;
    let policy = custos_e2e::root().join("tests/e2e/fixtures/capture/policy.cedar");
    let mut gw = Custos::start(&tb, &["--policy", &policy.display().to_string()])?;
    let dir = tempfile::tempdir()?;
    let kc = gw.kubeconfig(dir.path(), "admin", Some(&tb.token("admin")?))?;
    let ns = tb.var("TESTBED_NAMESPACE")?.to_owned();
    let key = aws_key(u64::from(minor));
    let payload = format!("hello pod\nconfig: aws_access_key_id={key}\nbye\n");
    let echoed = PortForward::start(
        {
            let mut c = Command::new(kubectl_bin(minor)?);
            c.arg("--kubeconfig").arg(&kc);
            c
        },
        &ns,
        "toolbox",
        8080,
    )
    .and_then(|pf| {
        let got = pf.echo(payload.as_bytes())?;
        // kubectl closes the connection's streams; the gateway records the close.
        std::thread::sleep(Duration::from_millis(500));
        Ok(got)
    });
    let echoed = echoed.with_context(|| {
        format!(
            "kubectl 1.{minor} port-forward; gateway log:\n{}",
            gw.logs()
        )
    })?;
    ensure!(
        echoed == payload.as_bytes(),
        "the live bytes were changed: {:?}",
        String::from_utf8_lossy(&echoed)
    );
    gw.stop()?;

    let records: Vec<Record> = log_records(&gw.data_dir)?;
    let closed: Vec<&Record> = records
        .iter()
        .filter(|r| r.custos.record_kind == RecordKind::StreamClosed)
        .collect();
    ensure!(closed.len() == 1, "stream-closed records: {closed:?}");
    let name = closed[0].custos.streams[0].recording.clone();
    let path: PathBuf = gw.data_dir.join("recordings").join(&name);
    let rec = Recording::read(&path)?;
    let kind = rec.header.custos.as_ref().map(|f| f.kind.as_str());
    ensure!(
        kind == Some("portforward"),
        "header: {:?}",
        rec.header.custos
    );
    let (mut to_pod, mut from_pod) = (Vec::new(), Vec::new());
    for e in &rec.events {
        let (_, bytes) = e.forwarded_bytes().context("a port-forward event")?;
        if e.code == Code::ToPod {
            to_pod.extend(bytes);
        } else {
            from_pod.extend(bytes);
        }
    }
    for (what, got) in [("to the pod", &to_pod), ("from the pod", &from_pod)] {
        let text = String::from_utf8_lossy(got);
        ensure!(
            got.len() == payload.len(),
            "{what}: {} bytes recorded of {}",
            got.len(),
            payload.len()
        );
        ensure!(
            text.contains("hello pod") && text.contains("bye"),
            "{what}: {text:?}"
        );
        ensure!(
            !text.contains(&key),
            "{what}: the planted key was recorded: {text:?}"
        );
    }
    let raw = std::fs::read(&path)?;
    ensure!(
        !raw.windows(key.len()).any(|w| w == key.as_bytes()),
        "the planted key is in the file"
    );

    let (ok, out) = audit_verify(&gw.data_dir)?;
    ensure!(ok, "audit verify failed on an untouched log:\n{out}");
    // One byte of the recording edited: the auditor's check fails.
    let mut edited = raw.clone();
    let at = edited.len() - 10;
    edited[at] = if edited[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&path, &edited)?;
    let (ok, out) = audit_verify(&gw.data_dir)?;
    ensure!(!ok, "audit verify passed an edited recording:\n{out}");
    ensure!(
        out.contains(&name),
        "the failure names the recording:\n{out}"
    );
    Ok(())
}

#[test]
fn spdy_port_forward_payloads_are_captured_masked_when_policy_asks() -> Result<()> {
    captured_port_forward(27)
}

#[test]
fn websocket_port_forward_payloads_are_captured_masked_when_policy_asks() -> Result<()> {
    captured_port_forward(33)
}

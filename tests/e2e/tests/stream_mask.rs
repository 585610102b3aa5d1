//! Terminal output of `kubectl exec` through Custos is masked before it reaches the client: a planted
//! PEM private key and an AWS access key never arrive, the lines around them do, the output keeps its
//! length, over SPDY (kubectl 1.27) and WebSocket (kubectl 1.33); an interactive shell stays responsive
//! (held bytes are flushed when the stream goes idle) and what it prints is masked too. A WebSocket
//! subprotocol Custos cannot unpack is refused with the reason.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};
use custos_e2e::{kubectl, kubectl_bin, unique, Custos, Testbed, Tty};

/// 25 lines of base64 as in an RSA private key (random, so nothing else could print them).
fn pem_body() -> Vec<String> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = u64::from(std::process::id()).wrapping_add(0x9e37_79b9_7f4a_7c15);
    (0..25)
        .map(|_| {
            (0..64)
                .map(|_| {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1442695040888963407);
                    alphabet[(x >> 58) as usize % 64] as char
                })
                .collect()
        })
        .collect()
}

struct Planted {
    text: String,
    body: Vec<String>,
    aws: String,
}

/// Filler lines (kept), a PEM private key across the first 32 KiB boundary (where the apiserver's
/// copy loop tends to cut frames), more filler, the AWS key across the second, and a last line.
fn planted(filler: usize) -> Planted {
    let body = pem_body();
    let aws = custos_e2e::aws_key(0);
    let mut text = String::new();
    let mut n = 0;
    let mut fill = |text: &mut String, until: usize| {
        while text.len() < until {
            text.push_str(&format!("filler line {n:05} of an ordinary file\n"));
            n += 1;
        }
    };
    fill(&mut text, filler.saturating_sub(800));
    text.push_str("line before the key\n-----BEGIN RSA PRIVATE KEY-----\n");
    for l in &body {
        text.push_str(l);
        text.push('\n');
    }
    text.push_str("-----END RSA PRIVATE KEY-----\nline after the key\n");
    fill(&mut text, 2 * filler - 20);
    text.push_str(&format!("aws_access_key_id = {aws}\n"));
    fill(&mut text, 3 * filler);
    text.push_str("the last line\n");
    Planted { text, body, aws }
}

/// Writes `text` into the exec working directory (readable by the unprivileged exec user).
fn plant(tb: &Testbed, name: &str, text: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = Path::new(tb.var("TESTBED_EXEC_WORKDIR")?).join(name);
    std::fs::write(&path, text)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    Ok(path)
}

fn check_masked(out: &str, p: &Planted) -> Result<()> {
    for line in &p.body {
        ensure!(
            !out.contains(line.as_str()),
            "a line of the private key leaked"
        );
    }
    ensure!(!out.contains(&p.aws), "the AWS key leaked");
    for kept in [
        "line before the key\n",
        "line after the key\n",
        "filler line 00000 of an ordinary file\n",
        "the last line\n",
    ] {
        ensure!(out.contains(kept), "{kept:?} missing");
    }
    ensure!(
        out.contains("aws_access_key_id = "),
        "the AWS key's label is missing"
    );
    Ok(())
}

struct Session {
    tb: Testbed,
    gw: Custos,
    _dir: tempfile::TempDir,
    kc: PathBuf,
    ns: String,
}

fn session() -> Result<Session> {
    let tb = Testbed::load()?;
    let gw = Custos::start(&tb, &[])?;
    let dir = tempfile::tempdir()?;
    let kc = gw.kubeconfig(dir.path(), "admin", Some(&tb.token("admin")?))?;
    let ns = tb.var("TESTBED_NAMESPACE")?.to_owned();
    Ok(Session {
        tb,
        gw,
        _dir: dir,
        kc,
        ns,
    })
}

fn cat_is_masked(minor: u32) -> Result<()> {
    let s = session()?;
    let p = planted(32 * 1024);
    let name = format!("{}.txt", unique("planted"));
    let path = plant(&s.tb, &name, &p.text)?;
    let bin = kubectl_bin(minor)?.display().to_string();
    let out = kubectl(
        &bin,
        &s.kc,
        &["exec", "-n", &s.ns, "toolbox", "--", "cat", &name],
    );
    let _ = std::fs::remove_file(&path);
    let out = out?;
    let logs = || format!("gateway log:\n{}", tail(&s.gw.logs(), 30));
    ensure!(
        out.status.success(),
        "kubectl 1.{minor} exec failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs()
    );
    let stdout = String::from_utf8(out.stdout).context("stdout is text")?;
    ensure!(
        stdout.len() == p.text.len(),
        "kubectl 1.{minor}: {} bytes out for a file of {}\n{}",
        stdout.len(),
        p.text.len(),
        logs()
    );
    check_masked(&stdout, &p).with_context(|| format!("kubectl 1.{minor}"))?;
    ensure!(
        !String::from_utf8_lossy(&out.stderr).contains(&p.aws),
        "stderr leaked"
    );
    Ok(())
}

#[test]
fn exec_output_is_masked_and_keeps_its_length_over_spdy_with_kubectl_1_27() -> Result<()> {
    cat_is_masked(27)
}

#[test]
fn exec_output_is_masked_and_keeps_its_length_over_websocket_with_kubectl_1_33() -> Result<()> {
    cat_is_masked(33)
}

fn interactive(minor: u32) -> Result<()> {
    let s = session()?;
    let p = planted(2048);
    let name = format!("{}.txt", unique("planted-tty"));
    let path = plant(&s.tb, &name, &p.text)?;
    let result = (|| -> Result<()> {
        let bin = kubectl_bin(minor)?.display().to_string();
        let line = format!(
            "{bin} --kubeconfig {} exec -i -t -n {} toolbox -- sh",
            s.kc.display(),
            s.ns
        );
        let mut tty = Tty::spawn(&line)?;
        let prompt = tty.wait_for("testbed$ ", 0, Duration::from_secs(30))?;
        // The typed line shows `hello-$((6*7))`; only the shell's output shows `hello-42`. A few bytes
        // stay in the masker's hold-back until the stream goes idle, so this is the idle flush.
        let typed = tty.type_line("echo hello-$((6*7))\n")?;
        let after = tty.wait_for("hello-42", prompt, Duration::from_secs(5))?;
        let took = typed.elapsed();
        ensure!(
            took < Duration::from_secs(3),
            "interactive output took {took:?}"
        );
        // The key is printed whole by the shell but never typed whole.
        let (head, rest) = p.aws.split_at(4);
        tty.type_line(&format!(
            "printf '{head}%s\\n' {rest}; echo printed-$((1+1))\n"
        ))?;
        let after = tty.wait_for("printed-2", after, Duration::from_secs(5))?;
        tty.type_line(&format!("cat {name}; echo catted-$((2+1))\n"))?;
        tty.wait_for("catted-3", after, Duration::from_secs(10))?;
        let screen = tty.seen.replace('\r', "");
        ensure!(
            !screen.contains(&p.aws),
            "the printed AWS key leaked:\n{screen}"
        );
        ensure!(
            screen.contains("********************"),
            "no masked key on the screen:\n{screen}"
        );
        check_masked(&screen, &p)?;
        let _ = tty.type_line("exit\n");
        Ok(())
    })();
    let _ = std::fs::remove_file(&path);
    result.with_context(|| {
        format!(
            "kubectl 1.{minor} -it; gateway log:\n{}",
            tail(&s.gw.logs(), 30)
        )
    })
}

#[test]
fn interactive_exec_is_responsive_and_masked_over_spdy_with_kubectl_1_27() -> Result<()> {
    interactive(27)
}

#[test]
fn interactive_exec_is_responsive_and_masked_over_websocket_with_kubectl_1_33() -> Result<()> {
    interactive(33)
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The apiserver accepts `base64.channel.k8s.io`, whose text frames Custos does not unpack: the upgrade
/// is refused with the reason (and the subprotocols to use instead), never relayed unmasked.
#[test]
fn a_base64_websocket_exec_is_refused_with_the_reason() -> Result<()> {
    use custos_e2e::raw::{RawClient, RawRequest};
    let s = session()?;
    let token = s.tb.token("admin")?;
    let client = RawClient::new(&s.gw.url, &s.gw.ca)?;
    let req = RawRequest::get(format!(
        "/api/v1/namespaces/{}/pods/toolbox/exec?command=echo&command=hi&stdout=true",
        s.ns
    ))
    .bearer(&token)
    .header("Connection", "Upgrade")
    .header("Upgrade", "websocket")
    .header("Sec-WebSocket-Version", "13")
    .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    .header("Sec-WebSocket-Protocol", "base64.channel.k8s.io");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(client.send(&req));
    });
    let resp = rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| anyhow!("no answer within 30 s (relayed instead of refused?)"))??;
    ensure!(
        resp.code == 502,
        "answered {}: {}",
        resp.code,
        resp.body_text(300)
    );
    let status = resp.status()?;
    ensure!(
        status.message.contains("base64.channel.k8s.io")
            && status.message.contains("v5.channel.k8s.io"),
        "message: {}",
        status.message
    );
    Ok(())
}

//! `custos login` and `custos token` against the real Dex: a person's browser login (authorization code
//! with PKCE on a loopback redirect), then kubectl using the exec plugin, then a silent refresh.

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use custos_e2e::{custos_bin, root, Custos, Streaming, Testbed};

/// What the testbed's SSO proxy would tell Dex about a user: (email, comma-separated groups).
fn sso_identity(user: &str) -> Result<(String, String)> {
    let users = std::fs::read_to_string(root().join("testbed/users"))?;
    for line in users.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 3 && f[0] == user {
            return Ok((f[2].to_owned(), f[1].to_owned()));
        }
    }
    bail!("user {user} not in testbed/users")
}

/// Plays the browser: follows Dex's redirects, with the headers of the SSO proxy in front of Dex, until
/// Dex redirects to the login's loopback listener, which curl then calls.
fn browser(tb: &Testbed, url: &str, user: &str) -> Result<()> {
    let (email, groups) = sso_identity(user)?;
    let out = Command::new("curl")
        .args([
            "-sS",
            "-L",
            "--max-redirs",
            "10",
            "--max-time",
            "30",
            "--cacert",
        ])
        .arg(tb.var("TESTBED_CA")?)
        .args(["-H", &format!("X-Remote-User: {user}")])
        .args(["-H", &format!("X-Remote-User-Email: {email}")])
        .args(["-H", &format!("X-Remote-Group: {groups}")])
        .arg(url)
        .output()?;
    let body = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "browser: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        body.contains("Logged in to Custos"),
        "the login page ended on: {body}"
    );
    Ok(())
}

#[test]
fn login_then_kubectl_uses_the_exec_plugin_and_refreshes_silently() -> Result<()> {
    let tb = Testbed::load()?;
    let gw = Custos::start(&tb, &[])?;
    let dir = tempfile::tempdir()?;
    let kc = dir.path().join("config");
    let cache_home = dir.path().join("cache");
    let mut login = Streaming::spawn({
        let mut c = Command::new(custos_bin()?);
        c.arg("login")
            .args(["--server", &gw.url])
            .arg("--ca")
            .arg(&gw.ca)
            .arg("--kubeconfig")
            .arg(&kc)
            .args([
                "--issuer",
                tb.var("TESTBED_OIDC_ISSUER")?,
                "--client-id",
                tb.var("TESTBED_OIDC_CLIENT_ID")?,
            ])
            .args(["--oidc-ca-file", tb.var("TESTBED_CA")?])
            .args([
                "--auth-param",
                &format!("connector_id={}", tb.var("TESTBED_OIDC_CONNECTOR_ID")?),
            ])
            .args(["--namespace", tb.var("TESTBED_NAMESPACE")?])
            .env("XDG_CACHE_HOME", &cache_home);
        c
    })?;
    let line = login.wait_for("/auth?", Duration::from_secs(20))?;
    let url = line.trim().to_owned();
    browser(&tb, &url, "oncall")?;
    login.wait_for("logged in as oncall@custos.test", Duration::from_secs(20))?;

    // kubectl now runs `custos token` itself: no prompt, the cached token, the person's identity.
    let env_kubectl = |args: &[&str]| -> Result<std::process::Output> {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(&kc)
            .args(args)
            .env("XDG_CACHE_HOME", &cache_home);
        custos_e2e::output_within(c, Duration::from_secs(60))
    };
    let who = custos_e2e::ok(env_kubectl(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ])?)?;
    ensure!(
        who == "oncall@custos.test",
        "whoami through the exec plugin: {who}"
    );
    let pods = custos_e2e::ok(env_kubectl(&["get", "pods", "-o", "name"])?)?;
    ensure!(pods.contains("pod/toolbox"), "context namespace: {pods}");

    // Expire the cached ID token: the plugin must use the refresh token, not ask the person again.
    let cache_dir = cache_home.join("custos/tokens");
    let file = std::fs::read_dir(&cache_dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .context("no token cache file")?;
    let mut cached: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    let old_token = cached["id_token"].clone();
    ensure!(
        cached["refresh_token"].is_string(),
        "Dex issued no refresh token"
    );
    cached["expires_at"] = 0.into();
    std::fs::write(&file, serde_json::to_vec(&cached)?)?;
    let who = custos_e2e::ok(env_kubectl(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ])?)?;
    ensure!(who == "oncall@custos.test", "after refresh: {who}");
    let refreshed: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    ensure!(
        refreshed["id_token"] != old_token,
        "the ID token was not refreshed"
    );

    // The kubeconfig holds the plugin invocation, never a token.
    let text = std::fs::read_to_string(&kc)?;
    ensure!(
        !text.contains(old_token.as_str().unwrap_or("-")),
        "token written into the kubeconfig"
    );
    ensure!(text.contains("- token"), "exec plugin args: {text}");
    Ok(())
}

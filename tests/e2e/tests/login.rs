//! `custos login` and `custos token` against the real Dex: a person's browser login (authorization code
//! with PKCE on a loopback redirect), then kubectl using the exec plugin, then a silent refresh, then a
//! refused refresh that the plugin reports at once instead of waiting for a browser under kubectl.
//!
//! Each test logs in as its own person: Dex keeps one refresh token per person and client, so a
//! second login of the same person would void the first one's refresh token (two tests logging in as
//! the same person at once made the first test's refresh fail, and the plugin then waited minutes for
//! a browser login; it now refuses at once when kubectl runs it without a terminal).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use custos_e2e::{custos_bin, Custos, Streaming, Testbed};

/// Plays a person at a browser: follows the login URL to Dex's password form (the `local` connector,
/// which, unlike the SSO connector, issues refresh tokens), submits the testbed password, and follows
/// Dex's redirects back to the login's loopback listener.
fn browser(tb: &Testbed, url: &str, email: &str) -> Result<()> {
    let jar = tempfile::NamedTempFile::new()?;
    let curl = || {
        let mut c = Command::new("curl");
        c.args(["-sS", "-L", "--max-redirs", "10", "--max-time", "30", "-c"])
            .arg(jar.path())
            .arg("-b")
            .arg(jar.path())
            .arg("--cacert")
            .arg(tb.var("TESTBED_CA").unwrap_or_default());
        c
    };
    let form = curl()
        .args(["-o", "/dev/null", "-w", "%{url_effective}"])
        .arg(url)
        .output()?;
    ensure!(
        form.status.success(),
        "browser: {}",
        String::from_utf8_lossy(&form.stderr)
    );
    let form_url = String::from_utf8(form.stdout)?;
    ensure!(
        form_url.contains("/auth/local"),
        "expected Dex's password form from {url}, got {form_url}"
    );
    let out = curl()
        .args(["--data-urlencode", &format!("login={email}")])
        .args([
            "--data-urlencode",
            &format!("password={}", tb.var("TESTBED_OIDC_STATIC_PASSWORD")?),
        ])
        .arg(&form_url)
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

/// `custos login` against Dex's password connector, writing `kc` and caching under `cache_home`.
fn spawn_login(
    tb: &Testbed,
    gw: &Custos,
    kc: &Path,
    cache_home: &Path,
    extra: &[&str],
) -> Result<Streaming> {
    let mut c = Command::new(custos_bin()?);
    c.arg("login")
        .args(["--server", &gw.url])
        .arg("--ca")
        .arg(&gw.ca)
        .arg("--kubeconfig")
        .arg(kc)
        .args([
            "--issuer",
            tb.var("TESTBED_OIDC_ISSUER")?,
            "--client-id",
            tb.var("TESTBED_OIDC_CLIENT_ID")?,
        ])
        .args(["--oidc-ca-file", tb.var("TESTBED_CA")?])
        .args(["--auth-param", "connector_id=local"])
        .args(extra)
        .env("XDG_CACHE_HOME", cache_home);
    Streaming::spawn(c)
}

#[test]
fn login_then_kubectl_uses_the_exec_plugin_and_refreshes_silently() -> Result<()> {
    let tb = Testbed::load()?;
    let gw = Custos::start(&tb, &[])?;
    let dir = tempfile::tempdir()?;
    let kc = dir.path().join("config");
    let cache_home = dir.path().join("cache");
    let mut login = spawn_login(
        &tb,
        &gw,
        &kc,
        &cache_home,
        &["--namespace", tb.var("TESTBED_NAMESPACE")?],
    )?;
    let line = login.wait_for("/auth?", Duration::from_secs(20))?;
    let url = line.trim().to_owned();
    browser(&tb, &url, "oncall@custos.test")?;
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
    // The password connector carries no groups, so the apiserver's RBAC refuses the list: its answer
    // comes back unchanged and names the person, in the context's namespace.
    let pods = env_kubectl(&["get", "pods", "-o", "name"])?;
    let stderr = String::from_utf8_lossy(&pods.stderr);
    ensure!(
        stderr.contains(r#"User "oncall@custos.test" cannot list resource "pods""#)
            && stderr.contains(tb.var("TESTBED_NAMESPACE")?),
        "expected the apiserver's Forbidden for the person: {stderr}"
    );

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

    // A refresh the provider refuses (here: a refresh token it never issued; in life: a newer login
    // of the same person and client, which makes Dex drop the older refresh token) cannot be answered
    // by a browser login under kubectl without a terminal: the plugin says what to do, at once.
    let mut cached: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    cached["expires_at"] = 0.into();
    cached["refresh_token"] = "not-a-refresh-token-dex-issued".into();
    std::fs::write(&file, serde_json::to_vec(&cached)?)?;
    let refused = env_kubectl(&["auth", "whoami"])?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        !refused.status.success()
            && stderr.contains("could not be refreshed")
            && stderr.contains("run `custos login` again"),
        "a refused refresh under kubectl: {stderr}"
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

#[test]
fn login_with_an_intent_opens_an_agent_session_that_kubectl_uses_until_it_ends() -> Result<()> {
    let tb = Testbed::load()?;
    let gw = Custos::start(&tb, &[])?;
    let dir = tempfile::tempdir()?;
    let kc = dir.path().join("config");
    let cache_home = dir.path().join("cache");
    let mut login = spawn_login(
        &tb,
        &gw,
        &kc,
        &cache_home,
        &[
            "--intent",
            "check the payments rollout",
            "--ticket",
            "CHG-77",
            "--ttl",
            "10m",
        ],
    )?;
    let line = login.wait_for("/auth?", Duration::from_secs(20))?;
    browser(&tb, line.trim(), "agent-operator@custos.test")?;
    let opened = login.wait_for("custos: session ss-", Duration::from_secs(20))?;
    ensure!(
        opened.contains("check the payments rollout") && opened.contains("CHG-77"),
        "{opened}"
    );

    // The context's credential is the session token, from a private file; kubectl uses it.
    let file = cache_home.join("custos/tokens/sessions/custos.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file)?.permissions());
    ensure!(mode & 0o077 == 0, "session file mode {mode:o}");
    let text = std::fs::read_to_string(&kc)?;
    ensure!(text.contains("session-token"), "kubeconfig exec: {text}");
    let run = |args: &[&str]| -> Result<std::process::Output> {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(&kc)
            .args(args)
            .env("XDG_CACHE_HOME", &cache_home);
        custos_e2e::output_within(c, Duration::from_secs(60))
    };
    let who = custos_e2e::ok(run(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ])?)?;
    ensure!(
        who == "agent-operator@custos.test",
        "whoami in the session: {who}"
    );

    // An ended session is refused with what to do, before anything reaches the gateway.
    let mut s: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    s["expires"] = "2020-01-01T00:00:00.000000Z".into();
    std::fs::write(&file, serde_json::to_vec(&s)?)?;
    let ended = run(&["auth", "whoami"])?;
    ensure!(!ended.status.success(), "an ended session still worked");
    ensure!(
        String::from_utf8_lossy(&ended.stderr).contains("custos login --intent"),
        "ended session: {}",
        String::from_utf8_lossy(&ended.stderr)
    );
    Ok(())
}

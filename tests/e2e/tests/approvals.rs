//! Just-in-time approval through real kubectl against the testbed: an agent's delete in production is
//! held until an on-call engineer approves it with `custos reviews approve` (or denies it); the rules
//! (no self-approval, approvers only, justification mandatory, expiry) hold; a grant lets the retry
//! pass until it is revoked or expires; the evidence bundle shows the whole trail and verifies; and with
//! PostgreSQL an approval on one replica releases a request held on another.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use custos_e2e::{custos_bin, kubectl, kubectl_bin, ok, root, unique, Custos, Testbed};
use serde_json::Value;

fn fixture(name: &str) -> String {
    root()
        .join("tests/e2e/fixtures/approvals")
        .join(name)
        .display()
        .to_string()
}

fn start(tb: &Testbed, extra: &[&str]) -> Result<Custos> {
    let mut args = vec![
        "--config".to_owned(),
        fixture("custos.yaml"),
        "--policy".to_owned(),
        fixture("policy.cedar"),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Custos::start(tb, &args)
}

/// Straight to the apiserver with the testbed's admin kubeconfig.
fn direct(tb: &Testbed, args: &[&str]) -> Result<String> {
    ok(kubectl(
        "kubectl",
        Path::new(tb.var("TESTBED_KUBECONFIG")?),
        args,
    )?)
    .with_context(|| format!("kubectl (direct) {}", args.join(" ")))
}

/// People and agents, each with a kubeconfig for the gateway.
struct Cast {
    agent: PathBuf,
    oncall: PathBuf,
    auditor: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cast {
    fn new(tb: &Testbed, gw: &Custos) -> Result<Cast> {
        let dir = tempfile::tempdir()?;
        Ok(Cast {
            agent: gw.kubeconfig(dir.path(), "agent", Some(&tb.token("agent-operator")?))?,
            oncall: gw.kubeconfig(dir.path(), "oncall", Some(&tb.token("oncall")?))?,
            auditor: gw.kubeconfig(dir.path(), "auditor", Some(&tb.token("auditor")?))?,
            _dir: dir,
        })
    }
}

/// `custos reviews ARGS --kubeconfig KC`.
fn reviews(kc: &Path, args: &[&str]) -> Result<Output> {
    let mut c = Command::new(custos_bin()?);
    c.arg("reviews").args(args).arg("--kubeconfig").arg(kc);
    custos_e2e::output_within(c, Duration::from_secs(30))
}

fn reviews_json(kc: &Path, args: &[&str]) -> Result<Value> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = reviews(kc, &all)?;
    ensure!(
        out.status.success(),
        "custos reviews {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Waits until a pending review of `name` shows up for `kc`; returns its id.
fn pending_review_of(kc: &Path, name: &str) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = reviews_json(kc, &["list"])?;
        if let Some(r) = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["operation"]["name"] == name)
        {
            return Ok(r["id"].as_str().unwrap_or_default().to_owned());
        }
        if Instant::now() > deadline {
            bail!("no pending review for {name}: {list}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Runs kubectl in the background (a held request).
fn spawn_kubectl(kc: &Path, args: &[&str]) -> Result<Child> {
    Ok(Command::new(kubectl_bin(33)?)
        .arg("--kubeconfig")
        .arg(kc)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?)
}

fn wait_child(mut child: Child, limit: Duration) -> Result<Output> {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(child.wait_with_output()?);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("the held kubectl did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn create_deployment(tb: &Testbed, name: &str) -> Result<()> {
    direct(
        tb,
        &[
            "create",
            "deployment",
            name,
            "-n",
            "prod-eu",
            "--image=docker.io/library/busybox:1.36",
        ],
    )?;
    Ok(())
}

fn exists(tb: &Testbed, kind: &str, name: &str) -> Result<bool> {
    let out = kubectl(
        "kubectl",
        Path::new(tb.var("TESTBED_KUBECONFIG")?),
        &[
            "get",
            kind,
            name,
            "-n",
            "prod-eu",
            "--ignore-not-found",
            "-o",
            "name",
        ],
    )?;
    Ok(!String::from_utf8_lossy(&out.stdout).trim().is_empty())
}

#[test]
fn a_held_delete_is_released_by_an_on_call_approval_and_the_rules_hold() -> Result<()> {
    let tb = Testbed::load()?;
    let mut gw = start(&tb, &[])?;
    let cast = Cast::new(&tb, &gw)?;
    let name = unique("held");
    create_deployment(&tb, &name)?;
    let started = custos_audit_time();
    let result = (|| -> Result<()> {
        let held = spawn_kubectl(
            &cast.agent,
            &["delete", "deployment", &name, "-n", "prod-eu"],
        )?;
        let id = pending_review_of(&cast.oncall, &name)?;

        // The review shows exactly what is asked.
        let shown = reviews_json(&cast.oncall, &["show", &id])?;
        ensure!(shown["operation"]["verb"] == "delete", "{shown}");
        ensure!(
            shown["requester"]["username"] == "agent-operator@custos.test",
            "{shown}"
        );
        ensure!(
            shown["approvers"] == serde_json::json!(["sre-oncall"]),
            "{shown}"
        );

        // The requester cannot approve, a non-approver cannot, a decision needs a reason.
        let own = reviews(&cast.agent, &["approve", &id, "--reason", "it is fine"])?;
        ensure!(
            !own.status.success() && stderr(&own).contains("cannot decide"),
            "self: {}",
            stderr(&own)
        );
        let aud = reviews(&cast.auditor, &["approve", &id, "--reason", "looks fine"])?;
        ensure!(
            !aud.status.success() && stderr(&aud).contains("not an approver"),
            "auditor: {}",
            stderr(&aud)
        );
        let blank = reviews(&cast.oncall, &["approve", &id, "--reason", " "])?;
        ensure!(
            !blank.status.success() && stderr(&blank).contains("justification"),
            "blank: {}",
            stderr(&blank)
        );
        ensure!(exists(&tb, "deployment", &name)?, "deleted before approval");

        // The on-call engineer approves: the agent's kubectl prints the normal result.
        let yes = reviews(
            &cast.oncall,
            &[
                "approve",
                &id,
                "--reason",
                "INC-4711: remove the stale canary",
            ],
        )?;
        ensure!(yes.status.success(), "approve: {}", stderr(&yes));
        let out = wait_child(held, Duration::from_secs(60))?;
        ensure!(out.status.success(), "held kubectl: {}", stderr(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            stdout.contains(&format!("deployment.apps \"{name}\" deleted")),
            "kubectl printed: {stdout}"
        );
        ensure!(
            !exists(&tb, "deployment", &name)?,
            "the deployment is still there"
        );
        let after = reviews_json(&cast.oncall, &["show", &id])?;
        ensure!(after["state"] == "approved", "{after}");
        ensure!(
            after["votes"][0]["justification"] == "INC-4711: remove the stale canary",
            "{after}"
        );
        let again = reviews(&cast.oncall, &["deny", &id, "--reason", "too late"])?;
        ensure!(
            !again.status.success() && stderr(&again).contains("not pending"),
            "{}",
            stderr(&again)
        );
        Ok(())
    })();
    let _ = direct(
        &tb,
        &[
            "delete",
            "deployment",
            &name,
            "-n",
            "prod-eu",
            "--ignore-not-found",
        ],
    );
    gw.stop()?;
    result.with_context(|| format!("gateway log:\n{}", gw.logs()))?;

    // The evidence bundle for the agent shows the request, the decision, the approval with its
    // justification and the response; `custos evidence verify` accepts it.
    let bundle = tempfile::tempdir()?;
    let out_dir = bundle.path().join("b");
    let mut export = Command::new(custos_bin()?);
    export
        .args([
            "evidence",
            "export",
            "--from",
            &started,
            "--to",
            &custos_audit_time_after(60),
        ])
        .args(["--user", "agent-operator@custos.test"])
        .arg("--out")
        .arg(&out_dir)
        .arg("--data-dir")
        .arg(&gw.data_dir);
    let exported = custos_e2e::output_within(export, Duration::from_secs(60))?;
    ensure!(exported.status.success(), "export: {}", stderr(&exported));
    let records: Vec<Value> = std::fs::read_to_string(out_dir.join("records.jsonl"))?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let of_name: Vec<&Value> = records
        .iter()
        .filter(|r| r["objectRef"]["name"] == name.as_str())
        .collect();
    let kinds: Vec<&str> = of_name
        .iter()
        .filter_map(|r| r["custos"]["recordKind"].as_str())
        .collect();
    for want in ["request", "approval-requested", "response"] {
        ensure!(
            kinds.contains(&want),
            "{want} missing from the agent's bundle: {kinds:?}"
        );
    }
    let request = of_name
        .iter()
        .find(|r| r["custos"]["recordKind"] == "request")
        .context("request")?;
    ensure!(
        request["custos"]["decision"]["outcome"] == "review",
        "{request}"
    );
    let response = of_name
        .iter()
        .find(|r| r["custos"]["recordKind"] == "response")
        .context("response")?;
    ensure!(response["responseStatus"]["code"] == 200, "{response}");
    ensure!(
        response["custos"]["approval"]["justification"]
            .as_str()
            .is_some_and(|j| j.contains("INC-4711")),
        "the response record carries the approval: {response}"
    );
    let verify = {
        let mut c = Command::new(custos_bin()?);
        c.args(["evidence", "verify"]).arg(&out_dir);
        custos_e2e::output_within(c, Duration::from_secs(60))?
    };
    ensure!(
        verify.status.success()
            && String::from_utf8_lossy(&verify.stdout).contains("evidence bundle verified"),
        "verify: {} {}",
        String::from_utf8_lossy(&verify.stdout),
        stderr(&verify)
    );
    // The approver's decision is in the log with who and why.
    let mut all = Command::new(custos_bin()?);
    all.args([
        "evidence",
        "export",
        "--from",
        &started,
        "--to",
        &custos_audit_time_after(60),
    ])
    .args(["--user", "oncall@custos.test"])
    .arg("--out")
    .arg(bundle.path().join("oncall"))
    .arg("--data-dir")
    .arg(&gw.data_dir);
    let exported = custos_e2e::output_within(all, Duration::from_secs(60))?;
    ensure!(exported.status.success(), "export: {}", stderr(&exported));
    let text = std::fs::read_to_string(bundle.path().join("oncall/records.jsonl"))?;
    ensure!(
        text.lines().any(|l| l.contains("\"approval-granted\"")
            && l.contains("INC-4711")
            && l.contains(&name)),
        "no approval-granted record by oncall: {text}"
    );
    Ok(())
}

#[test]
fn a_denied_delete_returns_403_with_the_approvers_justification() -> Result<()> {
    let tb = Testbed::load()?;
    let mut gw = start(&tb, &[])?;
    let cast = Cast::new(&tb, &gw)?;
    let name = unique("denied");
    create_deployment(&tb, &name)?;
    let result = (|| -> Result<()> {
        let held = spawn_kubectl(
            &cast.agent,
            &["delete", "deployment", &name, "-n", "prod-eu"],
        )?;
        let id = pending_review_of(&cast.oncall, &name)?;
        let no = reviews(
            &cast.oncall,
            &["deny", &id, "--reason", "change freeze until Monday"],
        )?;
        ensure!(no.status.success(), "deny: {}", stderr(&no));
        let out = wait_child(held, Duration::from_secs(60))?;
        ensure!(!out.status.success(), "the denied delete succeeded");
        ensure!(
            stderr(&out).contains("Forbidden")
                && stderr(&out).contains("change freeze until Monday"),
            "kubectl: {}",
            stderr(&out)
        );
        ensure!(
            exists(&tb, "deployment", &name)?,
            "the denied delete happened"
        );
        Ok(())
    })();
    let _ = direct(
        &tb,
        &[
            "delete",
            "deployment",
            &name,
            "-n",
            "prod-eu",
            "--ignore-not-found",
        ],
    );
    gw.stop()?;
    result.with_context(|| format!("gateway log:\n{}", gw.logs()))
}

fn review_id_in(text: &str) -> Option<String> {
    let i = text.find("rv-")?;
    let id: String = text[i..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (id.len() == 15).then_some(id)
}

#[test]
fn a_grant_lets_the_retry_pass_until_it_is_revoked_or_expires_and_expired_reviews_cannot_be_approved(
) -> Result<()> {
    let tb = Testbed::load()?;
    let mut gw = start(&tb, &[])?;
    let cast = Cast::new(&tb, &gw)?;
    let cm = unique("granted");
    direct(
        &tb,
        &[
            "create",
            "configmap",
            &cm,
            "-n",
            "prod-eu",
            "--from-literal=k=v0",
        ],
    )?;
    let k = kubectl_bin(33)?.display().to_string();
    let patch = |v: &str| -> Result<Output> {
        kubectl(
            &k,
            &cast.agent,
            &[
                "patch",
                "configmap",
                &cm,
                "-n",
                "prod-eu",
                "--type",
                "merge",
                "-p",
                &format!("{{\"data\":{{\"k\":\"{v}\"}}}}"),
            ],
        )
    };
    let value = || {
        direct(
            &tb,
            &[
                "get",
                "configmap",
                &cm,
                "-n",
                "prod-eu",
                "-o",
                "jsonpath={.data.k}",
            ],
        )
    };
    let result = (|| -> Result<()> {
        // No hold: refused at once, with the review id and what to do.
        let first = patch("v1")?;
        ensure!(!first.status.success(), "patched without review");
        let id = review_id_in(&stderr(&first))
            .with_context(|| format!("no review id in: {}", stderr(&first)))?;
        ensure!(
            stderr(&first).contains("custos reviews show"),
            "{}",
            stderr(&first)
        );
        ensure!(value()? == "v0", "changed before approval");

        // Approved: the grant lets the retry pass.
        ok(reviews(
            &cast.oncall,
            &["approve", &id, "--reason", "INC-1 config fix"],
        )?)?;
        let retry = patch("v1")?;
        ensure!(
            retry.status.success(),
            "retry under the grant: {}",
            stderr(&retry)
        );
        ensure!(value()? == "v1", "value after the retry");
        let grants = reviews_json(&cast.oncall, &["grants"])?;
        let grant = grants["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["reviewId"] == id.as_str())
            .context("the approval's grant")?;
        let grant_id = grant["id"].as_str().unwrap_or_default().to_owned();

        // Revoked: the next change needs a new review at once.
        ok(reviews(
            &cast.oncall,
            &["revoke", &grant_id, "--reason", "fix done"],
        )?)?;
        let after_revoke = patch("v2")?;
        ensure!(
            !after_revoke.status.success(),
            "the revoked grant still worked"
        );
        let id2 = review_id_in(&stderr(&after_revoke)).context("a new review")?;
        ensure!(id2 != id, "a new review is opened");

        // Approved again, then the grant runs out (20 s).
        ok(reviews(
            &cast.oncall,
            &["approve", &id2, "--reason", "INC-2 second fix"],
        )?)?;
        ensure!(
            patch("v2")?.status.success(),
            "retry under the second grant"
        );
        std::thread::sleep(Duration::from_secs(21));
        let expired = patch("v3")?;
        ensure!(!expired.status.success(), "the grant outlived its 20 s");
        ensure!(value()? == "v2", "value after expiry");

        // A review nobody decided expires (6 s here) and can no longer be approved.
        let id3 = review_id_in(&stderr(&expired)).context("a third review")?;
        std::thread::sleep(Duration::from_secs(7));
        let late = reviews(&cast.oncall, &["approve", &id3, "--reason", "too late"])?;
        ensure!(
            !late.status.success() && stderr(&late).contains("expired"),
            "late approval: {}",
            stderr(&late)
        );
        ensure!(
            patch("v3")?.status.code() != Some(0),
            "an expired review let the change through"
        );
        Ok(())
    })();
    let _ = direct(
        &tb,
        &[
            "delete",
            "configmap",
            &cm,
            "-n",
            "prod-eu",
            "--ignore-not-found",
        ],
    );
    gw.stop()?;
    result.with_context(|| format!("gateway log:\n{}", gw.logs()))
}

#[test]
fn with_postgresql_an_approval_on_one_replica_releases_a_request_held_on_another() -> Result<()> {
    let url = std::env::var("CUSTOS_TEST_POSTGRES_URL")
        .context("CUSTOS_TEST_POSTGRES_URL is not set: run crates/store-postgres/scripts/test-db (scripts/test does)")?;
    let tb = Testbed::load()?;
    let schema = unique("appr").replace('-', "_");
    let mut a = start(&tb, &["--store", &url, "--postgres-schema", &schema])?;
    let mut b = start(&tb, &["--store", &url, "--postgres-schema", &schema])?;
    let name = unique("replica");
    create_deployment(&tb, &name)?;
    let result = (|| -> Result<()> {
        let on_a = Cast::new(&tb, &a)?;
        let on_b = Cast::new(&tb, &b)?;
        let held = spawn_kubectl(
            &on_a.agent,
            &["delete", "deployment", &name, "-n", "prod-eu"],
        )?;
        let id = pending_review_of(&on_b.oncall, &name)?;
        ok(reviews(
            &on_b.oncall,
            &["approve", &id, "--reason", "approved on replica B"],
        )?)?;
        let out = wait_child(held, Duration::from_secs(30))?;
        ensure!(out.status.success(), "held on A: {}", stderr(&out));
        ensure!(!exists(&tb, "deployment", &name)?, "still there");
        Ok(())
    })();
    let _ = direct(
        &tb,
        &[
            "delete",
            "deployment",
            &name,
            "-n",
            "prod-eu",
            "--ignore-not-found",
        ],
    );
    a.stop()?;
    b.stop()?;
    result.with_context(|| format!("replica A log:\n{}\nreplica B log:\n{}", a.logs(), b.logs()))
}

/// Now, as the RFC 3339 time the CLI takes.
fn custos_audit_time() -> String {
    time_after(0)
}

fn custos_audit_time_after(seconds: u64) -> String {
    time_after(seconds)
}

fn time_after(seconds: u64) -> String {
    let out = Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("+{seconds} seconds"),
            "+%Y-%m-%dT%H:%M:%SZ",
        ])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Deliveries a receiver got: (header section, body).
type Deliveries = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A webhook receiver: accepts HTTP/1.1 POSTs on 127.0.0.1 and keeps each (headers, body).
struct Receiver {
    url: String,
    got: Deliveries,
}

impl Receiver {
    fn start() -> Result<Receiver> {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let got: Deliveries = Default::default();
        let sink = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                if let Ok(mut g) = sink.lock() {
                    g.push((head, body));
                }
                let mut s = reader.into_inner();
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Ok(Receiver { url, got })
    }
}

#[test]
fn an_agent_session_carries_its_intent_into_the_review_the_webhook_and_the_evidence() -> Result<()>
{
    let tb = Testbed::load()?;
    let hook = Receiver::start()?;
    let dir = tempfile::tempdir()?;
    let secret = dir.path().join("hook.secret");
    std::fs::write(&secret, "e2e-webhook-secret-0123456789-abcdefghij")?;
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let config = dir.path().join("custos.yaml");
    std::fs::write(
        &config,
        format!(
            "approvals:\n  pendingTtlSeconds: 60\n  webhooks:\n  - url: {}\n    format: generic\n    secretFile: {}\n",
            hook.url,
            secret.display()
        ),
    )?;
    let mut gw = Custos::start(
        &tb,
        &[
            "--config",
            &config.display().to_string(),
            "--policy",
            &fixture("policy.cedar"),
        ],
    )?;
    let cm = unique("session");
    direct(
        &tb,
        &[
            "create",
            "configmap",
            &cm,
            "-n",
            "prod-eu",
            "--from-literal=colour=blue",
        ],
    )?;
    let started = custos_audit_time();
    let result = (|| -> Result<String> {
        // The agent opens a session with its OIDC token: intent and ticket bound to it.
        let raw = custos_e2e::raw::RawClient::new(&gw.url, &gw.ca)?;
        let agent_token = tb.token("agent-operator")?;
        let resp = raw.send(
            &custos_e2e::raw::RawRequest::new("POST", "/custos/v1/sessions")
                .bearer(&agent_token)
                .header("Content-Type", "application/json")
                .body(br#"{"intent":"recolour the production banner","ticket":"CHG-2207","ttlSeconds":600}"#.to_vec()),
        )?;
        ensure!(
            resp.code == 201,
            "session: {} {}",
            resp.code,
            resp.body_text(500)
        );
        let opened: Value = serde_json::from_slice(&resp.body)?;
        let session_id = opened["id"].as_str().context("session id")?.to_owned();
        let session_token = opened["token"]
            .as_str()
            .context("session token")?
            .to_owned();
        ensure!(session_token.starts_with("cst_"), "{opened}");
        // A session cannot open another one; a hostile body is refused.
        let nested = raw.send(
            &custos_e2e::raw::RawRequest::new("POST", "/custos/v1/sessions")
                .bearer(&session_token)
                .body(br#"{"intent":"x"}"#.to_vec()),
        )?;
        ensure!(nested.code == 400, "nested session: {}", nested.code);
        let hostile = raw.send(
            &custos_e2e::raw::RawRequest::new("POST", "/custos/v1/sessions")
                .bearer(&agent_token)
                .body(br#"{"intent":"","admin":true}"#.to_vec()),
        )?;
        ensure!(
            hostile.code == 400,
            "hostile session body: {}",
            hostile.code
        );

        // The session's token works as a kubeconfig credential.
        let agent = gw.kubeconfig(dir.path(), "agent-session", Some(&session_token))?;
        let oncall = gw.kubeconfig(dir.path(), "oncall", Some(&tb.token("oncall")?))?;
        let k = kubectl_bin(33)?.display().to_string();
        let refused = kubectl(
            &k,
            &agent,
            &[
                "patch",
                "configmap",
                &cm,
                "-n",
                "prod-eu",
                "--type",
                "merge",
                "-p",
                r#"{"data":{"colour":"green"}}"#,
            ],
        )?;
        ensure!(!refused.status.success(), "patched without review");
        let id = review_id_in(&stderr(&refused)).context("review id")?;
        let shown = reviews_json(&oncall, &["show", &id])?;
        ensure!(shown["session"]["id"] == session_id.as_str(), "{shown}");
        ensure!(
            shown["session"]["intent"] == "recolour the production banner",
            "{shown}"
        );
        ensure!(shown["session"]["ticket"] == "CHG-2207", "{shown}");
        // The preview shows what the change would do, from the apiserver's own dry run.
        let diff = shown["diff"].as_str().unwrap_or_default();
        ensure!(
            diff.contains("-  colour: blue") && diff.contains("+  colour: green"),
            "diff: {diff}"
        );
        let text = ok(reviews(&oncall, &["show", &id])?)?;
        ensure!(
            text.contains("recolour the production banner") && text.contains("colour: green"),
            "{text}"
        );
        ok(reviews(
            &oncall,
            &[
                "approve",
                &id,
                "--reason",
                "CHG-2207 approved by the change board",
            ],
        )?)?;
        let retry = kubectl(
            &k,
            &agent,
            &[
                "patch",
                "configmap",
                &cm,
                "-n",
                "prod-eu",
                "--type",
                "merge",
                "-p",
                r#"{"data":{"colour":"green"}}"#,
            ],
        )?;
        ensure!(
            retry.status.success(),
            "retry in the session: {}",
            stderr(&retry)
        );

        // The webhook heard about it, signed.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = hook.got.lock().map(|g| g.clone()).unwrap_or_default();
            let requested = got.iter().find(|(_, b)| {
                let v: Value = serde_json::from_slice(b).unwrap_or_default();
                v["kind"] == "review.requested" && v["reviewId"] == id.as_str()
            });
            if let Some((head, body)) = requested {
                let lower = head.to_ascii_lowercase();
                ensure!(lower.contains("x-custos-signature: v1="), "{head}");
                let ts = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("x-custos-timestamp:")
                            .map(|v| v.trim().to_owned())
                    })
                    .context("timestamp header")?;
                let sig = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("x-custos-signature:")
                            .map(|v| v.trim().to_owned())
                    })
                    .context("signature header")?;
                ensure!(
                    custos_notify::verify_signature(
                        b"e2e-webhook-secret-0123456789-abcdefghij",
                        &ts,
                        body,
                        &sig
                    ),
                    "the webhook signature does not verify"
                );
                let v: Value = serde_json::from_slice(body)?;
                ensure!(
                    v["summary"]
                        .as_str()
                        .is_some_and(|s| s.contains("recolour the production banner")),
                    "{v}"
                );
                break;
            }
            if Instant::now() > deadline {
                bail!("no review.requested webhook for {id}: {got:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(session_id)
    })();
    let _ = direct(
        &tb,
        &[
            "delete",
            "configmap",
            &cm,
            "-n",
            "prod-eu",
            "--ignore-not-found",
        ],
    );
    gw.stop()?;
    let session_id = result.with_context(|| format!("gateway log:\n{}", gw.logs()))?;

    // The session's evidence: its requests, the review, the approval with its justification, the
    // grant and the response, all carrying the session; the bundle verifies.
    let out_dir = dir.path().join("bundle");
    let mut export = Command::new(custos_bin()?);
    export
        .args([
            "evidence",
            "export",
            "--from",
            &started,
            "--to",
            &custos_audit_time_after(60),
        ])
        .args(["--session", &session_id])
        .arg("--out")
        .arg(&out_dir)
        .arg("--data-dir")
        .arg(&gw.data_dir);
    let exported = custos_e2e::output_within(export, Duration::from_secs(60))?;
    ensure!(exported.status.success(), "export: {}", stderr(&exported));
    let records: Vec<Value> = std::fs::read_to_string(out_dir.join("records.jsonl"))?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let kinds: Vec<&str> = records
        .iter()
        .filter_map(|r| r["custos"]["recordKind"].as_str())
        .collect();
    for want in [
        "session-started",
        "request",
        "approval-requested",
        "approval-granted",
        "grant-created",
        "response",
    ] {
        ensure!(
            kinds.contains(&want),
            "{want} missing from the session's bundle: {kinds:?}"
        );
    }
    ensure!(
        records
            .iter()
            .any(|r| r["custos"]["recordKind"] == "approval-granted"
                && r["custos"]["approval"]["justification"]
                    .as_str()
                    .is_some_and(|j| j.contains("CHG-2207 approved by the change board"))),
        "no approval with its justification in the session's bundle"
    );
    ensure!(
        records
            .iter()
            .all(|r| r["custos"]["session"]["id"] == session_id.as_str()),
        "a record without the session in the session's bundle"
    );
    let mut verify = Command::new(custos_bin()?);
    verify.args(["evidence", "verify"]).arg(&out_dir);
    let verified = custos_e2e::output_within(verify, Duration::from_secs(60))?;
    ensure!(
        verified.status.success(),
        "verify: {} {}",
        String::from_utf8_lossy(&verified.stdout),
        stderr(&verified)
    );
    Ok(())
}

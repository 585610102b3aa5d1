//! Masking through real kubectl and helm against the testbed: planted secrets (a Secret, a Pod's env
//! password, an AWS key in a ConfigMap, a card number in a log line, Helm release values) never appear
//! in what kubectl prints, and never in anything Custos stores (a raw byte search of the data dir, and
//! of a PostgreSQL dump).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use base64::Engine;
use custos_e2e::clients::{demo_chart, Helm};
use custos_e2e::{kubectl, kubectl_bin, ok, unique, Custos, Streaming, Testbed};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Straight to the apiserver with the testbed's admin kubeconfig (setup, not through Custos).
fn direct(tb: &Testbed, args: &[&str]) -> Result<String> {
    ok(kubectl(
        "kubectl",
        Path::new(tb.var("TESTBED_KUBECONFIG")?),
        args,
    )?)
    .with_context(|| format!("kubectl (direct) {}", args.join(" ")))
}

/// A random string of `n` characters from `alphabet`.
fn random(alphabet: &[u8], n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("randomness");
    bytes
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

/// A Luhn-valid 16-digit Visa-like number, unique to this run.
fn card_number() -> String {
    let body = format!("4{}", random(b"0123456789", 14));
    let sum: u32 = body
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = c.to_digit(10).unwrap_or(0);
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// The values planted in the cluster for one run, and every form they could leak in.
struct Planted {
    secret_password: String,
    env_password: String,
    aws_key: String,
    card: String,
    written_password: String,
    /// A kubeconfig's `client-key-data`: a PEM private key in base64.
    client_key_data: String,
}

impl Planted {
    fn new() -> Self {
        let alnum = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        Planted {
            secret_password: format!("sp-{}", random(alnum, 24)),
            env_password: format!("ep-{}", random(alnum, 24)),
            aws_key: format!("AKIA{}", random(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
            card: card_number(),
            written_password: format!("wp-{}", random(alnum, 24)),
            client_key_data: b64(&format!(
                "-----BEGIN RSA PRIVATE KEY-----\n{}\n{}\n-----END RSA PRIVATE KEY-----\n",
                random(alnum, 64),
                random(alnum, 64)
            )),
        }
    }

    /// Every planted value in plain text and in base64 (as a Secret's data holds it).
    fn needles(&self) -> Vec<String> {
        let plain = [
            &self.secret_password,
            &self.env_password,
            &self.aws_key,
            &self.card,
            &self.written_password,
        ];
        let mut all: Vec<String> = plain.iter().map(|s| (*s).clone()).collect();
        all.extend(plain.iter().map(|s| b64(s)));
        // The key's base64 past its well-known header, so a partly masked key is caught too.
        all.push(self.client_key_data[40..].to_owned());
        // The card as the log line spells it, in groups of four.
        let c = &self.card;
        all.push(format!(
            "{} {} {} {}",
            &c[0..4],
            &c[4..8],
            &c[8..12],
            &c[12..16]
        ));
        all
    }

    fn assert_absent(&self, what: &str, text: &[u8]) -> Result<()> {
        for n in self.needles() {
            if text.windows(n.len()).any(|w| w == n.as_bytes()) {
                bail!(
                    "planted value {n:?} leaked in {what}:\n{}",
                    String::from_utf8_lossy(text)
                );
            }
        }
        Ok(())
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(files(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

/// Appends a CRI-format line to the log file kwok serves for every pod.
fn log_line(tb: &Testbed, message: &str) -> Result<()> {
    use std::io::Write;
    let path = Path::new(tb.var("TESTBED_EXEC_WORKDIR")?)
        .parent()
        .context("testbed run dir")?
        .join("pod-logs/app.log");
    let ts = humantime_now();
    let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
    f.write_all(format!("{ts} stdout F {message}\n").as_bytes())?;
    Ok(())
}

fn humantime_now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%6NZ"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Creates the planted objects straight in the cluster; returns (secret, configmap, pod) names.
fn plant(tb: &Testbed, ns: &str, p: &Planted) -> Result<(String, String, String)> {
    let secret = unique("mask-secret");
    let cm = unique("mask-cm");
    let pod = unique("mask-pod");
    direct(
        tb,
        &[
            "create",
            "secret",
            "generic",
            &secret,
            "-n",
            ns,
            &format!("--from-literal=password={}", p.secret_password),
            "--from-literal=user=app",
        ],
    )?;
    direct(
        tb,
        &[
            "create",
            "configmap",
            &cm,
            "-n",
            ns,
            &format!(
                "--from-literal=credentials=[default]\naws_access_key_id = {}\nregion = eu-west-1",
                p.aws_key
            ),
            "--from-literal=greeting=hello",
            &format!(
                "--from-literal=kubeconfig=apiVersion: v1\nkind: Config\nusers:\n- name: agent\n  user:\n    client-key-data: {}\n",
                p.client_key_data
            ),
        ],
    )?;
    direct(
        tb,
        &[
            "run",
            &pod,
            "-n",
            ns,
            "--image=docker.io/library/busybox:1.36",
            "--restart=Never",
            &format!("--env=DB_PASSWORD={}", p.env_password),
            "--env=LOG_LEVEL=debug",
            "--command",
            "--",
            "sleep",
            "3600",
        ],
    )?;
    Ok((secret, cm, pod))
}

#[test]
fn planted_secrets_never_reach_kubectl_output_nor_the_data_dir() -> Result<()> {
    let tb = Testbed::load()?;
    let ns = tb.var("TESTBED_NAMESPACE")?.to_owned();
    let p = Planted::new();
    let (secret, cm, pod) = plant(&tb, &ns, &p)?;
    let mut gw = Custos::start(&tb, &[])?;
    let dir = tempfile::tempdir()?;
    let kc = gw.kubeconfig(dir.path(), "admin", Some(&tb.token("admin")?))?;
    let result = (|| -> Result<()> {
        for minor in [27, 33] {
            let k = kubectl_bin(minor)?.display().to_string();
            let run = |args: &[&str]| -> Result<Vec<u8>> {
                let out = kubectl(&k, &kc, args)?;
                ensure!(
                    out.status.success(),
                    "kubectl 1.{minor} {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
                Ok([out.stdout, out.stderr].concat())
            };
            let n = ns.as_str();
            let reads: Vec<Vec<&str>> = vec![
                vec!["get", "secret", &secret, "-n", n, "-o", "yaml"],
                vec!["get", "secret", &secret, "-n", n, "-o", "json"],
                vec!["get", "secret", &secret, "-n", n],
                vec!["get", "secrets", "-n", n, "-o", "json"],
                vec!["get", "secrets", "-n", n, "-o", "wide"],
                vec!["describe", "secret", &secret, "-n", n],
                vec!["get", "configmap", &cm, "-n", n, "-o", "yaml"],
                vec!["get", "configmaps", "-n", n, "-o", "json"],
                vec!["get", "pod", &pod, "-n", n, "-o", "yaml"],
                vec!["get", "pods", "-n", n, "-o", "json"],
            ];
            for args in &reads {
                let out = run(args)?;
                p.assert_absent(&format!("kubectl 1.{minor} {}", args.join(" ")), &out)?;
            }
            // Typed clients still decode the masked value: it is the marker, in base64.
            let value = run(&[
                "get",
                "secret",
                &secret,
                "-n",
                n,
                "-o",
                "go-template={{index .data \"password\" | base64decode}}",
            ])?;
            ensure!(
                value == custos_mask::MARKER.as_bytes(),
                "decoded: {}",
                String::from_utf8_lossy(&value)
            );
            // Non-secret values pass unchanged.
            let greeting = run(&[
                "get",
                "configmap",
                &cm,
                "-n",
                n,
                "-o",
                "jsonpath={.data.greeting}",
            ])?;
            ensure!(
                greeting == b"hello",
                "greeting: {}",
                String::from_utf8_lossy(&greeting)
            );
            let region = run(&[
                "get",
                "configmap",
                &cm,
                "-n",
                n,
                "-o",
                "jsonpath={.data.credentials}",
            ])?;
            ensure!(
                String::from_utf8_lossy(&region).contains("region = eu-west-1"),
                "credentials: {}",
                String::from_utf8_lossy(&region)
            );
        }

        // A watch: the event for a change made meanwhile arrives masked.
        let k = kubectl_bin(33)?;
        let mut cmd = Command::new(&k);
        cmd.arg("--kubeconfig")
            .arg(&kc)
            .args(["get", "secret", &secret, "-n", &ns, "-w", "-o", "json"]);
        let mut watch = Streaming::spawn(cmd)?;
        watch.wait_for(&format!("\"name\": \"{secret}\""), Duration::from_secs(20))?;
        direct(
            &tb,
            &[
                "label",
                "secret",
                &secret,
                "-n",
                &ns,
                "custos-watch=changed",
            ],
        )?;
        watch.wait_for("custos-watch", Duration::from_secs(20))?;
        std::thread::sleep(Duration::from_millis(300));
        p.assert_absent("kubectl get -w -o json", watch.seen.join("\n").as_bytes())?;
        ensure!(
            watch
                .seen
                .iter()
                .any(|l| l.contains(custos_mask::MARKER_BASE64)),
            "the watch showed no masked value: {}",
            watch.seen.join("\n")
        );
        drop(watch);

        // A log line with a card number: masked in `kubectl logs`, the rest of the line intact.
        let marker = unique("paid");
        let spaced = {
            let c = &p.card;
            format!("{} {} {} {}", &c[0..4], &c[4..8], &c[8..12], &c[12..16])
        };
        log_line(&tb, &format!("{marker} card {spaced} ok"))?;
        log_line(&tb, &format!("{marker} card {} ok", p.card))?;
        let kc33 = k.display().to_string();
        let mut tries = 0;
        let logs = loop {
            let out = kubectl(&kc33, &kc, &["logs", "app-0", "-n", &ns, "--tail=40"])?;
            ensure!(
                out.status.success(),
                "logs: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if text.matches(&marker).count() >= 2 || tries > 20 {
                break text;
            }
            tries += 1;
            std::thread::sleep(Duration::from_millis(500));
        };
        ensure!(
            logs.matches(&marker).count() >= 2,
            "log lines not served: {logs}"
        );
        p.assert_absent("kubectl logs", logs.as_bytes())?;
        let line = logs
            .lines()
            .find(|l| l.contains(&marker))
            .unwrap_or_default();
        ensure!(
            line.ends_with(" ok") && line.contains("card ****"),
            "masked log line: {line:?}"
        );
        // `logs -f`: a line written while following arrives masked.
        let mut cmd = Command::new(&k);
        cmd.arg("--kubeconfig")
            .arg(&kc)
            .args(["logs", "-f", "app-0", "-n", &ns, "--tail=1"]);
        let mut follow = Streaming::spawn(cmd)?;
        let later = unique("later");
        std::thread::sleep(Duration::from_millis(500));
        log_line(&tb, &format!("{later} card {} ok", p.card))?;
        let got = follow.wait_for(&later, Duration::from_secs(20))?;
        p.assert_absent("kubectl logs -f", got.as_bytes())?;
        drop(follow);

        // A Secret written through Custos: the request reaches the cluster intact, the record masked.
        let written = unique("mask-written");
        let out = kubectl(
            &kc33,
            &kc,
            &[
                "create",
                "secret",
                "generic",
                &written,
                "-n",
                &ns,
                &format!("--from-literal=password={}", p.written_password),
            ],
        )?;
        ensure!(
            out.status.success(),
            "create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stored = direct(
            &tb,
            &[
                "get",
                "secret",
                &written,
                "-n",
                &ns,
                "-o",
                "go-template={{.data.password | base64decode}}",
            ],
        )?;
        ensure!(stored == p.written_password, "the cluster got {stored:?}");
        direct(&tb, &["delete", "secret", &written, "-n", &ns])?;
        Ok(())
    })();
    gw.stop()?;
    let _ = direct(
        &tb,
        &["delete", "secret", &secret, "configmap", &cm, "-n", &ns],
    );
    let _ = direct(&tb, &["delete", "pod", &pod, "-n", &ns, "--wait=false"]);
    result.with_context(|| format!("gateway log:\n{}", gw.logs()))?;

    // Nothing Custos stored holds a planted value, in any file of its data dir.
    let mut searched = 0;
    for f in files(&gw.data_dir)? {
        let bytes = std::fs::read(&f)?;
        searched += bytes.len();
        p.assert_absent(&format!("data dir file {}", f.display()), &bytes)?;
    }
    ensure!(
        searched > 10_000,
        "the data dir holds only {searched} bytes"
    );
    // ... and the records do hold the masked objects and counts (the search above is not vacuous).
    let all: Vec<u8> = files(&gw.data_dir)?
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .flatten()
        .collect();
    ensure!(
        all.windows(custos_mask::MARKER_BASE64.len())
            .any(|w| w == custos_mask::MARKER_BASE64.as_bytes()),
        "no masked Secret data in the records"
    );
    Ok(())
}

#[test]
fn a_write_carrying_a_masked_value_is_refused_and_changes_nothing() -> Result<()> {
    let tb = Testbed::load()?;
    let ns = tb.var("TESTBED_NAMESPACE")?.to_owned();
    let p = Planted::new();
    let (secret, cm, pod) = plant(&tb, &ns, &p)?;
    let gw = Custos::start(&tb, &[])?;
    let dir = tempfile::tempdir()?;
    let kc = gw.kubeconfig(dir.path(), "admin", Some(&tb.token("admin")?))?;
    let result = (|| -> Result<()> {
        // The masked YAML applied back would overwrite the real password with the marker.
        let k = kubectl_bin(33)?.display().to_string();
        let yaml = ok(kubectl(
            &k,
            &kc,
            &["get", "secret", &secret, "-n", &ns, "-o", "yaml"],
        )?)?;
        let file = dir.path().join("secret.yaml");
        std::fs::write(&file, yaml)?;
        let file = file.display().to_string();
        let out = kubectl(&k, &kc, &["replace", "-f", &file])?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success(),
            "replace with masked values succeeded"
        );
        ensure!(err.contains("masked"), "refusal: {err}");
        let stored = direct(
            &tb,
            &[
                "get",
                "secret",
                &secret,
                "-n",
                &ns,
                "-o",
                "go-template={{.data.password | base64decode}}",
            ],
        )?;
        ensure!(
            stored == p.secret_password,
            "the secret changed to {stored:?}"
        );
        Ok(())
    })();
    let _ = direct(
        &tb,
        &["delete", "secret", &secret, "configmap", &cm, "-n", &ns],
    );
    let _ = direct(&tb, &["delete", "pod", &pod, "-n", &ns, "--wait=false"]);
    result.with_context(|| format!("gateway log:\n{}", gw.logs()))
}

#[test]
fn helm_release_secrets_are_masked_for_everyone_but_the_deploy_profile_and_never_stored(
) -> Result<()> {
    let tb = Testbed::load()?;
    let ns = unique("e2e-mask-helm");
    let direct_kc = Path::new(tb.var("TESTBED_KUBECONFIG")?).to_owned();
    direct(&tb, &["create", "namespace", &ns])?;
    let planted = format!("hp-{}", random(b"abcdefghijkmnopqrstuvwxyz23456789", 24));
    let result = (|| -> Result<()> {
        // Installed straight into the cluster: the release Secret holds the planted value.
        let helm = Helm::new(&tb, &direct_kc)?;
        let chart = demo_chart().display().to_string();
        helm.ok(&[
            "install",
            "demo",
            &chart,
            "-n",
            &ns,
            "--set",
            &format!("password={planted}"),
        ])?;
        let release_secret = "sh.helm.release.v1.demo.v1";
        let real = direct(
            &tb,
            &[
                "get",
                "secret",
                release_secret,
                "-n",
                &ns,
                "-o",
                "jsonpath={.data.release}",
            ],
        )?;
        ensure!(real.len() > 100, "release: {real}");
        let real_prefix = real[..64].to_owned();

        // Through Custos with no policy (everything masked): the release is the marker; helm cannot
        // read it.
        let mut gw = Custos::start(&tb, &[])?;
        let dir = tempfile::tempdir()?;
        let kc = gw.kubeconfig(dir.path(), "admin", Some(&tb.token("admin")?))?;
        let k = kubectl_bin(33)?.display().to_string();
        let got = ok(kubectl(
            &k,
            &kc,
            &[
                "get",
                "secret",
                release_secret,
                "-n",
                &ns,
                "-o",
                "jsonpath={.data.release}",
            ],
        )?)?;
        ensure!(
            got == custos_mask::MARKER_BASE64,
            "release through Custos: {got:.80}"
        );
        let masked_helm = Helm::new(&tb, &kc)?;
        let values = masked_helm.run(&["get", "values", "demo", "-n", &ns])?;
        ensure!(!values.status.success(), "helm read a masked release");
        gw.stop()?;

        // The deploy profile (policy @mask("deploy")) reveals releases to helm, which reads its values.
        let fixture = custos_e2e::root().join("tests/e2e/fixtures/deploy-profile");
        let config = fixture.join("custos.yaml").display().to_string();
        let policy = fixture.join("policy.cedar").display().to_string();
        let mut deploy = Custos::start(&tb, &["--config", &config, "--policy", &policy])?;
        let kc = deploy.kubeconfig(dir.path(), "deployer", Some(&tb.token("admin")?))?;
        let deploy_helm = Helm::new(&tb, &kc)?;
        let values = deploy_helm.ok(&["get", "values", "demo", "-n", &ns])?;
        ensure!(
            values.contains(&planted),
            "helm values through the deploy profile: {values}"
        );
        deploy.stop()?;

        // Neither gateway stored the release or the value.
        for d in [&gw.data_dir, &deploy.data_dir] {
            for f in files(d)? {
                let bytes = std::fs::read(&f)?;
                for needle in [planted.as_str(), real_prefix.as_str()] {
                    ensure!(
                        !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                        "{needle:.20}… stored in {}",
                        f.display()
                    );
                }
            }
        }
        Ok(())
    })();
    let _ = direct(&tb, &["delete", "namespace", &ns, "--wait=false"]);
    result
}

#[test]
fn with_postgresql_no_planted_value_reaches_the_database() -> Result<()> {
    let url = std::env::var("CUSTOS_TEST_POSTGRES_URL")
        .context("CUSTOS_TEST_POSTGRES_URL is not set: run crates/store-postgres/scripts/test-db (scripts/test does)")?;
    let tb = Testbed::load()?;
    let ns = tb.var("TESTBED_NAMESPACE")?.to_owned();
    let p = Planted::new();
    let (secret, cm, pod) = plant(&tb, &ns, &p)?;
    let schema = unique("mask").replace('-', "_");
    let mut gw = Custos::start(&tb, &["--store", &url, "--postgres-schema", &schema])?;
    let dir = tempfile::tempdir()?;
    let kc = gw.kubeconfig(dir.path(), "admin", Some(&tb.token("admin")?))?;
    let result = (|| -> Result<()> {
        let k = kubectl_bin(33)?.display().to_string();
        for args in [
            vec!["get", "secret", secret.as_str(), "-n", &ns, "-o", "json"],
            vec!["get", "configmap", cm.as_str(), "-n", &ns, "-o", "json"],
            vec!["get", "pod", pod.as_str(), "-n", &ns, "-o", "json"],
        ] {
            let out = ok(kubectl(&k, &kc, &args)?)?;
            p.assert_absent(&args.join(" "), out.as_bytes())?;
        }
        let written = unique("mask-pg");
        ok(kubectl(
            &k,
            &kc,
            &[
                "create",
                "secret",
                "generic",
                &written,
                "-n",
                &ns,
                &format!("--from-literal=password={}", p.written_password),
            ],
        )?)?;
        direct(&tb, &["delete", "secret", &written, "-n", &ns])?;
        Ok(())
    })();
    gw.stop()?;
    let _ = direct(
        &tb,
        &["delete", "secret", &secret, "configmap", &cm, "-n", &ns],
    );
    let _ = direct(&tb, &["delete", "pod", &pod, "-n", &ns, "--wait=false"]);
    result.with_context(|| format!("gateway log:\n{}", gw.logs()))?;

    let dump = Command::new(pg_dump()?)
        .args(["--data-only", "--schema", &schema, "--dbname", &url])
        .output()?;
    ensure!(
        dump.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    ensure!(
        dump.stdout.len() > 10_000,
        "dump holds only {} bytes",
        dump.stdout.len()
    );
    p.assert_absent("the PostgreSQL dump", &dump.stdout)?;
    Ok(())
}

/// `pg_dump` on PATH, else PostgreSQL 15's.
fn pg_dump() -> Result<std::path::PathBuf> {
    for candidate in ["pg_dump", "/usr/lib/postgresql/15/bin/pg_dump"] {
        if Command::new(candidate).arg("--version").output().is_ok() {
            return Ok(candidate.into());
        }
    }
    bail!("pg_dump not found")
}

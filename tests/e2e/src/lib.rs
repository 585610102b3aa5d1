//! Harness for the end-to-end suite: the running testbed (see `testbed/README.md`), a `custos serve`
//! process pointed at it, kubeconfigs for the testbed's Dex users, and real kubectl/helm invocations.
//!
//! Nothing here fakes a part: the apiserver, Dex, kubectl and helm are the real programs. The suite
//! needs `testbed/up` to have run; without it every test fails with that instruction (never skips).
#![deny(missing_docs)]

pub mod clients;
pub mod raw;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The running testbed, as described by `testbed/.run/env`.
#[derive(Debug, Clone)]
pub struct Testbed {
    /// Every variable of the env file.
    pub env: BTreeMap<String, String>,
}

impl Testbed {
    /// Reads `testbed/.run/env`; fails with an instruction when the testbed is not up.
    pub fn load() -> Result<Self> {
        let path = root().join("testbed/.run/env");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} missing: run `testbed/up` first (scripts/test does)",
                path.display()
            )
        })?;
        let mut env = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim().trim_start_matches("export ");
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim().trim_matches('"').trim_matches('\'');
                env.insert(k.trim().to_owned(), v.to_owned());
            }
        }
        Ok(Testbed { env })
    }

    /// One variable of the env file.
    pub fn var(&self, name: &str) -> Result<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("testbed env has no {name}"))
    }

    /// A fresh Dex ID token for a testbed user, obtained by a real grant (`testbed/token`).
    pub fn token(&self, user: &str) -> Result<String> {
        let out = Command::new(root().join("testbed/token"))
            .arg(user)
            .output()?;
        if !out.status.success() {
            bail!(
                "testbed/token {user}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    /// Runs kubectl (a versioned binary such as `kubectl.1.27`, or `kubectl`) with the admin kubeconfig.
    pub fn admin_kubectl(&self, args: &[&str]) -> Result<Output> {
        Ok(Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.var("TESTBED_KUBECONFIG")?)
            .args(args)
            .output()?)
    }
}

/// A `custos serve` process; killed when dropped.
pub struct Custos {
    child: Child,
    /// The URL it serves, e.g. `https://127.0.0.1:40123`.
    pub url: String,
    /// The CA certificate clients must trust.
    pub ca: PathBuf,
    /// The ops listener's address (`/healthz`, `/readyz`, `/metrics`).
    pub ops: String,
    /// Its data dir.
    pub data_dir: PathBuf,
    _owned_dir: Option<tempfile::TempDir>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// The path of the `custos` binary built by `cargo build --bin custos`.
pub fn custos_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("CUSTOS_BIN") {
        return Ok(PathBuf::from(p));
    }
    // Test binaries live in <target>/<profile>/deps/; the custos binary in <target>/<profile>/.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot locate the target dir from {}", exe.display()))?;
    let bin = profile_dir.join("custos");
    if !bin.exists() {
        bail!(
            "{} missing: run `cargo build --bin custos` first (scripts/test does)",
            bin.display()
        );
    }
    Ok(bin)
}

impl Custos {
    /// Starts the gateway against the testbed with OIDC from Dex, plus `extra` flags.
    pub fn start(tb: &Testbed, extra: &[&str]) -> Result<Custos> {
        Self::start_with_upstream(tb, Path::new(tb.var("TESTBED_GATEWAY_KUBECONFIG")?), extra)
    }

    /// Like [`Custos::start`], with another upstream kubeconfig.
    pub fn start_with_upstream(tb: &Testbed, upstream: &Path, extra: &[&str]) -> Result<Custos> {
        let dir = tempfile::tempdir()?;
        let mut gw = Self::start_in(tb, upstream, dir.path(), extra)?;
        gw._owned_dir = Some(dir);
        Ok(gw)
    }

    /// Starts the gateway on an existing data dir (to restart on the same audit log).
    pub fn start_in(
        tb: &Testbed,
        upstream: &Path,
        data_dir: &Path,
        extra: &[&str],
    ) -> Result<Custos> {
        let mut child = Command::new(custos_bin()?)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--upstream-kubeconfig")
            .arg(upstream)
            .args(["--oidc-issuer-url", tb.var("TESTBED_OIDC_ISSUER")?])
            .args(["--oidc-client-id", tb.var("TESTBED_OIDC_CLIENT_ID")?])
            .args(["--oidc-ca-file", tb.var("TESTBED_CA")?])
            .args([
                "--oidc-username-claim",
                "email",
                "--oidc-groups-claim",
                "groups",
            ])
            .args(extra)
            .env_remove("KUBECONFIG")
            .env("CUSTOS_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut url = None;
        let mut ops = None;
        let mut ca = None;
        while url.is_none() || ca.is_none() {
            let line = match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    bail!(
                        "custos did not report ready: {}",
                        log.lock().map(|s| s.clone()).unwrap_or_default()
                    );
                }
            };
            // Lines: "serving https://ADDR", "ca-certificate PATH", "ops http://ADDR".
            if let Some(u) = line.strip_prefix("serving ") {
                url = Some(u.trim().to_owned());
            } else if let Some(p) = line.strip_prefix("ca-certificate ") {
                ca = Some(PathBuf::from(p.trim()));
            } else if let Some(o) = line.strip_prefix("ops ") {
                ops = Some(o.trim().to_owned());
            }
        }
        Ok(Custos {
            child,
            url: url.unwrap_or_default(),
            ca: ca.unwrap_or_default(),
            ops: ops.unwrap_or_default(),
            data_dir: data_dir.to_owned(),
            _owned_dir: None,
            stderr: log,
        })
    }

    /// Everything the gateway logged so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Writes a kubeconfig that reaches the gateway with `token` (or no credential when `None`).
    pub fn kubeconfig(&self, dir: &Path, name: &str, token: Option<&str>) -> Result<PathBuf> {
        let user = match token {
            Some(t) => format!("    token: {t}\n"),
            None => "    {}\n".to_owned(),
        };
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: custos\nclusters:\n- name: custos\n  cluster:\n    server: {}\n    certificate-authority: {}\ncontexts:\n- name: custos\n  context:\n    cluster: custos\n    user: {name}\n    namespace: default\nusers:\n- name: {name}\n  user:\n{user}",
            self.url,
            self.ca.display()
        );
        let path = dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

impl Custos {
    /// Stops the gateway as an operator would (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) -> Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        while std::time::Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("custos did not exit within 40 s of SIGTERM")
    }

    /// Kills the gateway with SIGKILL (a crash) and waits for it.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Custos {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a kubectl binary (e.g. `kubectl.1.27`) with a kubeconfig; fails after 90 s rather than hang.
pub fn kubectl(bin: &str, kubeconfig: &Path, args: &[&str]) -> Result<Output> {
    let mut cmd = Command::new(bin);
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    output_within(cmd, Duration::from_secs(90))
}

/// Runs `cmd` to completion with stdin closed, killing it (and failing) after `limit`.
pub fn output_within(mut cmd: Command, limit: Duration) -> Result<Output> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Ok(out?),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            bail!("{cmd:?} did not finish within {limit:?}")
        }
    }
}

/// Stdout of a successful command, or an error with its stderr.
pub fn ok(out: Output) -> Result<String> {
    if !out.status.success() {
        bail!(
            "command failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The path of a versioned kubectl (`minor` = 27 … 33) as the kubectl package installs it.
pub fn kubectl_bin(minor: u32) -> Result<PathBuf> {
    let name = format!("kubectl.1.{minor}");
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/usr/lib/google-cloud-sdk/bin"));
    for d in dirs {
        let p = d.join(&name);
        if p.exists() {
            return Ok(p);
        }
    }
    let out = Command::new("dpkg").args(["-L", "kubectl"]).output()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.ends_with(&format!("/{name}")))
        .map(PathBuf::from)
        .ok_or_else(|| {
            anyhow!("{name} not installed (the kubectl package ships kubectl.1.27 … kubectl.1.33)")
        })
}

/// A running command whose stdout and stderr lines arrive on a channel; killed when dropped.
pub struct Streaming {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line seen so far.
    pub seen: Vec<String>,
}

impl Streaming {
    /// Spawns `cmd` with piped output.
    pub fn spawn(mut cmd: Command) -> Result<Streaming> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (tx, lines) = mpsc::channel();
        for pipe in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Ok(Streaming {
            child,
            lines,
            seen: Vec::new(),
        })
    }

    /// Waits for a line containing `needle`; returns it.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = std::time::Instant::now() + timeout;
        if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
            return Ok(l.clone());
        }
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Ok(line);
                    }
                }
                Err(_) => bail!(
                    "no line containing {needle:?} within {timeout:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

/// A running `kubectl port-forward` to a pod port (on the testbed every pod port is the echo server),
/// listening on a free local port.
pub struct PortForward {
    /// kubectl's output so far (and the process, killed when this is dropped).
    pub kubectl: Streaming,
    /// The local port kubectl listens on.
    pub port: u16,
}

impl PortForward {
    /// Runs `kubectl` (a command with its binary and `--kubeconfig` set) as
    /// `port-forward -n NS --address 127.0.0.1 pod/POD :REMOTE` and waits until it forwards.
    pub fn start(mut kubectl: Command, ns: &str, pod: &str, remote: u16) -> Result<PortForward> {
        kubectl.args([
            "port-forward",
            "-n",
            ns,
            "--address",
            "127.0.0.1",
            &format!("pod/{pod}"),
            &format!(":{remote}"),
        ]);
        let mut kubectl = Streaming::spawn(kubectl)?;
        let line = kubectl.wait_for("Forwarding from 127.0.0.1:", Duration::from_secs(20))?;
        let port = line
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .context("no local port in kubectl's line")?
            .parse()?;
        Ok(PortForward { kubectl, port })
    }

    /// One connection: writes `payload` and reads as many bytes back (the echo).
    pub fn echo(&self, payload: &[u8]) -> Result<Vec<u8>> {
        use std::io::{Read as _, Write as _};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        c.set_read_timeout(Some(Duration::from_secs(15)))?;
        c.write_all(payload)?;
        let mut got = vec![0u8; payload.len()];
        c.read_exact(&mut got)?;
        Ok(got)
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a shell command line under a pseudo-terminal (`script`), feeding `input` to it slowly, as a
/// person typing would; returns everything the terminal showed.
pub fn in_tty(command_line: &str, input: &[&str]) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new("script")
        .args(["-qefc", command_line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
    let input: Vec<String> = input.iter().map(|s| (*s).to_owned()).collect();
    let feeder = std::thread::spawn(move || {
        for chunk in input {
            std::thread::sleep(Duration::from_millis(800));
            let _ = stdin.write_all(chunk.as_bytes());
            let _ = stdin.flush();
        }
        std::thread::sleep(Duration::from_millis(500));
    });
    let out = child.wait_with_output()?;
    let _ = feeder.join();
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// A name unique to this test run, for namespaces and objects.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{:x}", std::process::id(), nanos & 0xffffff)
}

/// An AWS access key id, different on every run and `salt`: `AKIA` and 16 characters of `[A-Z2-7]`
/// (a secret to plant, so that finding it anywhere means it leaked from this run).
pub fn aws_key(salt: u64) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut x = u64::from(std::process::id())
        ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7);
    let mut key = String::from("AKIA");
    for _ in 0..16 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        key.push(alphabet[(x >> 59) as usize % 32] as char);
    }
    key
}

/// Every record of a stopped gateway's SQLite log in `data_dir` (as `Record`s, or as JSON values to
/// see exactly what was stored), after checking the log against its signing key (every record
/// sequenced, chain and checkpoints intact).
pub fn log_records<T: serde::de::DeserializeOwned>(data_dir: &Path) -> Result<Vec<T>> {
    use custos_store::LogStore as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let key = custos_audit::keys::load(&data_dir.join("audit.key"))?;
        let store = custos_store_sqlite::SqliteStore::open_in(data_dir).await?;
        let report = custos_store::verify_store(&store, &key.verifier()).await?;
        anyhow::ensure!(
            report.queued == 0,
            "{} records never sequenced",
            report.queued
        );
        let entries = store
            .search(&custos_store::SearchQuery {
                limit: custos_store::MAX_SEARCH_LIMIT,
                ..custos_store::SearchQuery::default()
            })
            .await?;
        store.close().await;
        entries
            .iter()
            .map(|e| Ok(serde_json::from_slice(&e.record)?))
            .collect()
    })
}

/// kubectl under a pseudo-terminal (`script`), typed into as a person would; output read as it comes.
pub struct Tty {
    child: Child,
    stdin: std::process::ChildStdin,
    output: mpsc::Receiver<Vec<u8>>,
    /// Everything the terminal showed so far.
    pub seen: String,
}

impl Tty {
    /// Runs `command_line` under `script`, with piped input and output.
    pub fn spawn(command_line: &str) -> Result<Tty> {
        let mut child = Command::new("script")
            .args(["-qefc", command_line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let (tx, output) = mpsc::channel();
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                use std::io::Read;
                let mut pipe = pipe;
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Tty {
            child,
            stdin,
            output,
            seen: String::new(),
        })
    }

    /// Types `line` (include the newline); returns when it was sent.
    pub fn type_line(&mut self, line: &str) -> Result<Instant> {
        use std::io::Write;
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.flush()?;
        Ok(Instant::now())
    }

    /// Waits until the screen shows `needle` after `from` bytes of it; returns the position after it.
    pub fn wait_for(&mut self, needle: &str, from: usize, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.seen.get(from..).and_then(|s| s.find(needle)) {
                return Ok(from + i + needle.len());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => {
                    return Err(anyhow!(
                        "{needle:?} not on the screen within {timeout:?}; screen:\n{}",
                        self.seen
                    ))
                }
            }
        }
    }

    /// Waits (bounded) for kubectl to exit, collecting the rest of the screen.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            while let Ok(bytes) = self.output.try_recv() {
                self.seen.push_str(&String::from_utf8_lossy(&bytes));
            }
            if self.child.try_wait()?.is_some() {
                while let Ok(bytes) = self.output.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push_str(&String::from_utf8_lossy(&bytes));
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "kubectl still running after {timeout:?}; screen:\n{}",
            self.seen
        )
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Client programs other than kubectl, as the suite drives them through Custos: helm with a private
//! home, the official Python client in a cached virtualenv, and the apiserver's audit log to see what
//! reached the apiserver in whose name.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::{ok, output_within, root, Testbed};

/// The testbed's helm with its own cache, config and data homes, so tests neither share repository
/// state with each other nor touch the user's.
pub struct Helm {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

impl Helm {
    /// Helm (`TESTBED_HELM`) talking to the cluster that `kubeconfig` reaches.
    pub fn new(tb: &Testbed, kubeconfig: &Path) -> Result<Helm> {
        Ok(Helm {
            bin: PathBuf::from(tb.var("TESTBED_HELM")?),
            kubeconfig: kubeconfig.to_owned(),
            home: tempfile::tempdir()?,
        })
    }

    /// Runs `helm ARGS --kubeconfig ...`; fails after 120 s rather than hang.
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env_remove("KUBECONFIG")
            .env("HELM_CACHE_HOME", self.home.path().join("cache"))
            .env("HELM_CONFIG_HOME", self.home.path().join("config"))
            .env("HELM_DATA_HOME", self.home.path().join("data"));
        output_within(cmd, Duration::from_secs(120))
    }

    /// Stdout of a successful `helm ARGS`, or an error naming the command and its stderr.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        ok(self.run(args)?).with_context(|| format!("helm {}", args.join(" ")))
    }

    /// Stdout of a successful `helm ARGS -o json`, parsed.
    pub fn json(&self, args: &[&str]) -> Result<Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let text = self.ok(&all)?;
        serde_json::from_str(&text).with_context(|| format!("helm {}: {text}", args.join(" ")))
    }
}

/// The Python scripts of the suite (`tests/e2e/python`).
pub fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// One install at a time within this process; across processes a new virtualenv appears by rename.
static VENV_LOCK: Mutex<()> = Mutex::new(());

/// The interpreter of a virtualenv holding `python/requirements.txt` (the `kubernetes` client), under
/// `$CUSTOS_CACHE/venv` (default `~/.cache/custos/venv`). Creates or updates it from PyPI when its stamp
/// differs from the requirements; otherwise only reads the stamp, so a warm run costs nothing.
pub fn python_with_client() -> Result<PathBuf> {
    let requirements = python_dir().join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)?;
    let venv = cache_dir()?.join("venv");
    let python = venv.join("bin/python");
    let stamp = venv.join(".custos-requirements");
    let _guard = VENV_LOCK
        .lock()
        .map_err(|_| anyhow!("venv lock poisoned"))?;
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(python);
    }
    if python.exists() {
        pip_install(&python, &requirements)?;
        std::fs::write(&stamp, &wanted)?;
        return Ok(python);
    }
    // Built beside its final place and renamed into it, so no process ever sees half a virtualenv.
    let parent = venv.parent().ok_or_else(|| anyhow!("venv has no parent"))?;
    std::fs::create_dir_all(parent)?;
    let staging = tempfile::Builder::new()
        .prefix("venv-staging-")
        .tempdir_in(parent)?;
    let mut cmd = Command::new(std::env::var("CUSTOS_PYTHON").unwrap_or_else(|_| "python3".into()));
    cmd.args(["-m", "venv"]).arg(staging.path());
    ok(output_within(cmd, Duration::from_secs(120))?).context("python3 -m venv")?;
    pip_install(&staging.path().join("bin/python"), &requirements)?;
    std::fs::write(staging.path().join(".custos-requirements"), &wanted)?;
    let staged = staging.keep();
    if std::fs::rename(&staged, &venv).is_err() {
        // Another process won the race; its virtualenv is as good as ours.
        let _ = std::fs::remove_dir_all(&staged);
    }
    if !python.exists() {
        bail!("{} missing after install", python.display());
    }
    Ok(python)
}

fn pip_install(python: &Path, requirements: &Path) -> Result<()> {
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-r",
    ])
    .arg(requirements);
    ok(output_within(cmd, Duration::from_secs(600))?)
        .with_context(|| format!("pip install -r {}", requirements.display()))?;
    Ok(())
}

fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CUSTOS_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    let home =
        std::env::var_os("HOME").ok_or_else(|| anyhow!("neither CUSTOS_CACHE nor HOME set"))?;
    Ok(PathBuf::from(home).join(".cache/custos"))
}

/// Runs `tests/e2e/python/SCRIPT ARGS` with the client's virtualenv; returns the JSON it prints.
pub fn python_json(script: &str, args: &[&str]) -> Result<Value> {
    let mut cmd = Command::new(python_with_client()?);
    cmd.arg(python_dir().join(script)).args(args);
    let out =
        ok(output_within(cmd, Duration::from_secs(120))?).with_context(|| script.to_owned())?;
    serde_json::from_str(&out).with_context(|| format!("{script} printed: {out}"))
}

/// The apiserver's audit log (`TESTBED_AUDIT_LOG`, one JSON event per line), read from the point where
/// this value was made: only events of requests made afterwards are searched.
pub struct AuditLog {
    path: PathBuf,
    offset: u64,
}

impl AuditLog {
    /// Starts reading at the log's current end.
    pub fn from_end(tb: &Testbed) -> Result<AuditLog> {
        let path = PathBuf::from(tb.var("TESTBED_AUDIT_LOG")?);
        let offset = std::fs::metadata(&path)
            .with_context(|| path.display().to_string())?
            .len();
        Ok(AuditLog { path, offset })
    }

    /// Waits up to `timeout` (the apiserver writes its log asynchronously) for an event matching
    /// `wanted`; returns it, or fails saying what was looked for.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            for event in self.read_new()? {
                if wanted(&event) {
                    return Ok(event);
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "no audit event {what} within {timeout:?} in {}",
                    self.path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Complete lines written since the last read, parsed; a line still being written waits for the
    /// next read.
    fn read_new(&mut self) -> Result<Vec<Value>> {
        let mut file = std::fs::File::open(&self.path)?;
        if file.metadata()?.len() < self.offset {
            // Rotated: the new file holds only events newer than our offset.
            self.offset = 0;
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.offset += complete as u64;
        Ok(bytes[..complete]
            .split(|b| *b == b'\n')
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect())
    }
}

/// The user a kubeconfig authenticates as, by the apiserver's own answer (`kubectl auth whoami`).
pub fn whoami(kubeconfig: &Path) -> Result<Value> {
    let out = crate::kubectl("kubectl", kubeconfig, &["auth", "whoami", "-o", "json"])?;
    let text = ok(out).context("kubectl auth whoami")?;
    let review: Value = serde_json::from_str(&text)?;
    Ok(review["status"]["userInfo"].clone())
}

/// The `Audit-Id` response headers in the stderr of a `kubectl -v=8` run.
pub fn audit_ids(verbose_stderr: &str) -> Vec<String> {
    verbose_stderr
        .lines()
        .filter_map(|l| l.split_once("Audit-Id:"))
        .map(|(_, id)| id.trim().to_owned())
        .collect()
}

/// The chart the testbed ships for helm round trips (`testbed/charts/custos-demo`).
pub fn demo_chart() -> PathBuf {
    root().join("testbed/charts/custos-demo")
}

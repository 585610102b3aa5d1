//! Session recording end to end: `kubectl exec -it … sh` with kubectl 1.27 (SPDY) and 1.33
//! (WebSocket), typed into under a pseudo-terminal and resized while it runs, is recorded in
//! `<dataDir>/recordings/<audit-id>.cast` — typed input, output, resizes, exit — masked (a planted key
//! printed in the terminal appears in neither the terminal nor the file; a key typed is masked in the
//! input), playable (`custos_recording::play` gives back the output), and bound to the audit log by
//! its `stream-chunk` records (`custos_recording::verify` passes, and fails once the file is edited).
//! A non-interactive `kubectl exec -- cat` is recorded with its output, stderr and exit status; each
//! port-forward connection gets an opened and a closed record with its port and bytes each way. When
//! the recording cannot be written (its directory is a small tmpfs, filled while the session runs: a
//! full disk) the running session is closed and kubectl prints why.
//!
//! Failure injection: the tests run as root here, where `chmod 0500` stops nothing — and an open
//! recording keeps its file descriptor anyway, so a directory made unwritable only stops new
//! recordings. A running one fails when its writes fail: a full file system (tmpfs mounted on the
//! recordings directory, then filled) or, where mounting is not allowed, an immutable file
//! (`chattr +i`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use custos_audit::record::{Record, RecordKind};
use custos_e2e::{aws_key, kubectl, kubectl_bin, unique, Custos, PortForward, Testbed, Tty};
use custos_recording::{Code, Recording};

/// A gateway on a data dir of our own (so the recordings directory can be prepared first).
struct Session {
    tb: Testbed,
    gw: Custos,
    dir: tempfile::TempDir,
    kc: PathBuf,
    ns: String,
    _mount: Option<Tmpfs>,
}

impl Session {
    fn start(tmpfs: Option<&str>) -> Result<Session> {
        let tb = Testbed::load()?;
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let mount = match tmpfs {
            Some(size) => Tmpfs::mount(&data.join("recordings"), size)?,
            None => None,
        };
        let gw = Custos::start_in(
            &tb,
            Path::new(tb.var("TESTBED_GATEWAY_KUBECONFIG")?),
            &data,
            &[],
        )?;
        let kc = gw.kubeconfig(dir.path(), "admin", Some(&tb.token("admin")?))?;
        let ns = tb.var("TESTBED_NAMESPACE")?.to_owned();
        Ok(Session {
            tb,
            gw,
            dir,
            kc,
            ns,
            _mount: mount,
        })
    }

    fn recordings(&self) -> PathBuf {
        self.gw.data_dir.join("recordings")
    }

    fn logs(&self) -> String {
        tail(&self.gw.logs(), 40)
    }

    /// Stops the gateway and returns the audit log's records (the signed log verified first).
    fn stop_and_read(&mut self) -> Result<Vec<Record>> {
        self.gw.stop()?;
        records(&self.gw.data_dir)
    }
}

/// A tmpfs mounted on a directory for a test; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` on `dir`; `None` where mounting is not allowed.
    fn mount(dir: &Path, size: &str) -> Result<Option<Tmpfs>> {
        std::fs::create_dir_all(dir)?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir)
            .output()?;
        Ok(out.status.success().then(|| Tmpfs(dir.to_owned())))
    }

    /// Fills it: one file takes every free block.
    fn fill(&self) -> Result<()> {
        let mut f = std::fs::File::create(self.0.join("filler"))?;
        let block = vec![0u8; 64 * 1024];
        loop {
            match f.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn records(data_dir: &Path) -> Result<Vec<Record>> {
    custos_e2e::log_records(data_dir)
}

/// The records of kind `kind`.
fn of_kind<'a>(records: &'a [Record], kind: &RecordKind) -> Vec<&'a Record> {
    records
        .iter()
        .filter(|r| &r.custos.record_kind == kind)
        .collect()
}

/// The one exec recording in the log: its `stream-opened` record and the file's name.
fn the_recording(records: &[Record]) -> Result<(&Record, String)> {
    let opened = of_kind(records, &RecordKind::StreamOpened);
    ensure!(opened.len() == 1, "stream-opened records: {}", opened.len());
    let name = opened[0]
        .custos
        .streams
        .first()
        .map(|s| s.recording.clone())
        .ok_or_else(|| anyhow!("stream-opened names no recording: {:?}", opened[0]))?;
    Ok((opened[0], name))
}

/// Every record of the stream with `audit_id`, by kind.
fn kinds_of(records: &[Record], audit_id: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.audit_id.as_deref() == Some(audit_id))
        .map(|r| r.custos.record_kind.to_string())
        .collect()
}

/// Checks the file against its chunk records, and that an edited copy fails.
fn check_verifies(records: &[Record], path: &Path, name: &str) -> Result<()> {
    let chunks = custos_recording::chunks_of(records, name);
    ensure!(!chunks.is_empty(), "no stream-chunk records for {name}");
    custos_recording::verify(path, &chunks)
        .with_context(|| format!("{name} against its {} chunk records", chunks.len()))?;
    // An auditor's copy, edited: one output character changed.
    let edited = path.with_file_name(name);
    let copy_dir = tempfile::tempdir()?;
    let copy = copy_dir.path().join(name);
    let mut bytes = std::fs::read(&edited)?;
    let at = bytes
        .iter()
        .rposition(|b| b.is_ascii_digit())
        .ok_or_else(|| anyhow!("no digit to edit"))?;
    bytes[at] = if bytes[at] == b'9' {
        b'8'
    } else {
        bytes[at] + 1
    };
    std::fs::write(&copy, &bytes)?;
    match custos_recording::verify(&copy, &chunks) {
        Err(custos_recording::VerifyError::Mismatch { .. }) => {}
        other => bail!("an edited recording verified as {other:?}"),
    }
    // Truncated and extended copies fail too.
    std::fs::write(&copy, &bytes[..bytes.len() - 3])?;
    ensure!(
        custos_recording::verify(&copy, &chunks).is_err(),
        "a truncated recording verified"
    );
    let mut longer = std::fs::read(path)?;
    longer.extend_from_slice(b"[999.0,\"o\",\"added\"]\n");
    std::fs::write(&copy, &longer)?;
    ensure!(
        custos_recording::verify(&copy, &chunks).is_err(),
        "an extended recording verified"
    );
    Ok(())
}

/// `script` runs this: the terminal starts at 100×30; once `mark` exists it becomes 120×40 (kubectl
/// sees SIGWINCH and sends the new size on the resize channel); kubectl replaces the shell.
fn tty_command(bin: &str, s: &Session, mark: &Path) -> String {
    format!(
        "stty rows 30 cols 100; (while [ ! -e {mark} ]; do sleep 0.1; done; stty rows 40 cols 120 </dev/tty) & exec {bin} --kubeconfig {kc} exec -i -t -n {ns} toolbox -- sh",
        mark = mark.display(),
        kc = s.kc.display(),
        ns = s.ns,
    )
}

fn interactive(minor: u32) -> Result<()> {
    let mut s = Session::start(None)?;
    let printed = aws_key(1);
    let typed = aws_key(2);
    let mark = s.dir.path().join("resize-now");
    let bin = kubectl_bin(minor)?.display().to_string();
    let screen = (|| -> Result<String> {
        let mut tty = Tty::spawn(&tty_command(&bin, &s, &mark))?;
        let at = tty.wait_for("testbed$ ", 0, Duration::from_secs(30))?;
        tty.type_line("echo hello-$((6*7))\n")?;
        let at = tty.wait_for("hello-42", at, Duration::from_secs(10))?;
        // Printed whole by the shell, never typed whole: masked on the screen and in the recording.
        let (head, rest) = printed.split_at(4);
        tty.type_line(&format!(
            "printf '{head}%s\\n' {rest}; echo printed-$((1+1))\n"
        ))?;
        let at = tty.wait_for("printed-2", at, Duration::from_secs(10))?;
        // Typed whole: the input recorded is masked (the shell's echo of it is masked as output).
        tty.type_line(&format!(": {typed}; echo typed-$((2+1))\n"))?;
        let at = tty.wait_for("typed-3", at, Duration::from_secs(10))?;
        std::fs::write(&mark, b"")?;
        std::thread::sleep(Duration::from_millis(800));
        tty.type_line("stty size; echo sized-$((3+1))\n")?;
        let at = tty.wait_for("sized-4", at, Duration::from_secs(10))?;
        ensure!(
            tty.seen[..at].contains("40 120"),
            "the remote terminal was not resized:\n{}",
            tty.seen
        );
        // Give the last chunk a moment, then leave.
        tty.type_line("exit\n")?;
        tty.wait_exit(Duration::from_secs(20))?;
        Ok(tty.seen.replace('\r', ""))
    })()
    .with_context(|| format!("kubectl 1.{minor} -it; gateway log:\n{}", s.logs()))?;
    ensure!(
        !screen.contains(&printed),
        "the printed key reached the terminal:\n{screen}"
    );
    ensure!(
        !screen.contains(&typed),
        "the typed key's echo reached the terminal:\n{screen}"
    );

    let records = s.stop_and_read()?;
    let (opened, name) = the_recording(&records)?;
    let audit_id = opened.audit_id.clone().unwrap_or_default();
    let path = s.recordings().join(&name);
    let raw = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    ensure!(
        !raw.contains(&printed),
        "the printed key is in the recording"
    );
    ensure!(!raw.contains(&typed), "the typed key is in the recording");
    let rec = Recording::read(&path)?;
    let facts = rec
        .header
        .custos
        .clone()
        .ok_or_else(|| anyhow!("no custos header"))?;
    ensure!(facts.pod.as_deref() == Some("toolbox"), "{facts:?}");
    ensure!(
        facts.namespace.as_deref() == Some(s.ns.as_str()),
        "{facts:?}"
    );
    ensure!(facts.command == ["sh"], "{facts:?}");
    ensure!(facts.tty && facts.stdin, "{facts:?}");
    ensure!(facts.identity.username == "admin@custos.test", "{facts:?}");
    ensure!(facts.audit_id == audit_id, "{facts:?}");
    let protocol = if minor < 30 { "SPDY/3.1" } else { "websocket" };
    ensure!(facts.protocol.eq_ignore_ascii_case(protocol), "{facts:?}");

    let input: String = rec.data_of(&Code::Input).concat();
    for typed_line in ["echo hello-$((6*7))", "stty size", "exit"] {
        ensure!(
            input.contains(typed_line),
            "{typed_line:?} not in the recorded input: {input:?}"
        );
    }
    ensure!(
        input.contains(": ********************; echo typed-"),
        "typed key not masked in the input: {input:?}"
    );
    let output = rec.output().replace('\r', "");
    for shown in [
        "hello-42",
        "printed-2",
        "typed-3",
        "40 120",
        "sized-4",
        "********************",
    ] {
        ensure!(
            output.contains(shown),
            "{shown:?} not in the recorded output:\n{output}"
        );
    }
    let sizes = rec.data_of(&Code::Resize);
    ensure!(
        sizes.contains(&"100x30") && sizes.contains(&"120x40"),
        "resizes recorded: {sizes:?}"
    );
    // Played back, the recording gives the terminal's output.
    let mut played = Vec::new();
    custos_recording::play(&path, f64::INFINITY, &mut played)?;
    let played = String::from_utf8_lossy(&played).replace('\r', "");
    ensure!(
        played == output,
        "playback differs from the recorded output"
    );
    for line in ["hello-42", "printed-2", "sized-4"] {
        let on_screen = screen
            .lines()
            .find(|l| l.contains(line) && !l.contains("echo"));
        let in_play = played
            .lines()
            .find(|l| l.contains(line) && !l.contains("echo"));
        ensure!(
            on_screen.is_some() && on_screen == in_play,
            "{line:?}: screen {on_screen:?}, playback {in_play:?}"
        );
    }
    let kinds = kinds_of(&records, &audit_id);
    for k in ["request", "stream-opened", "stream-chunk", "stream-closed"] {
        ensure!(kinds.iter().any(|x| x == k), "no {k} record: {kinds:?}");
    }
    check_verifies(&records, &path, &name)
}

#[test]
fn an_interactive_spdy_session_with_kubectl_1_27_is_recorded_masked_and_verifiable() -> Result<()> {
    interactive(27)
}

#[test]
fn an_interactive_websocket_session_with_kubectl_1_33_is_recorded_masked_and_verifiable(
) -> Result<()> {
    interactive(33)
}

fn plant(tb: &Testbed, name: &str, text: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = Path::new(tb.var("TESTBED_EXEC_WORKDIR")?).join(name);
    std::fs::write(&path, text)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    Ok(path)
}

fn non_interactive(minor: u32) -> Result<()> {
    let mut s = Session::start(None)?;
    let key = aws_key(3);
    let text: String = (0..6000)
        .map(|i| format!("line {i:05} of the planted file\n"))
        .chain([format!("aws_access_key_id = {key}\n"), "the end\n".into()])
        .collect();
    let name = format!("{}.txt", unique("rec-cat"));
    let planted = plant(&s.tb, &name, &text)?;
    let bin = kubectl_bin(minor)?.display().to_string();
    let run = |args: &[&str]| kubectl(&bin, &s.kc, args);
    let ok = run(&["exec", "-n", &s.ns, "toolbox", "--", "cat", &name]);
    let _ = std::fs::remove_file(&planted);
    let ok = ok?;
    ensure!(
        ok.status.success(),
        "kubectl 1.{minor} exec cat: {}\n{}",
        String::from_utf8_lossy(&ok.stderr),
        s.logs()
    );
    let stdout = String::from_utf8(ok.stdout)?;
    ensure!(
        !stdout.contains(&key) && stdout.len() == text.len(),
        "cat output not masked as expected"
    );
    let records = s.stop_and_read()?;
    let (opened, rec_name) = the_recording(&records)?;
    let audit_id = opened.audit_id.clone().unwrap_or_default();
    let path = s.recordings().join(&rec_name);
    let rec = Recording::read(&path)?;
    let facts = rec
        .header
        .custos
        .clone()
        .ok_or_else(|| anyhow!("no custos header"))?;
    ensure!(
        facts.command == ["cat", name.as_str()] && !facts.tty,
        "{facts:?}"
    );
    ensure!(
        rec.output() == stdout,
        "the recorded output is not what kubectl printed"
    );
    ensure!(
        !std::fs::read_to_string(&path)?.contains(&key),
        "the key is in the recording"
    );
    let exit = rec.data_of(&Code::Exit);
    ensure!(
        exit.len() == 1 && exit[0].contains("Success"),
        "exit events: {exit:?}"
    );
    let closed = of_kind(&records, &RecordKind::StreamClosed);
    ensure!(closed.len() == 1, "stream-closed records: {}", closed.len());
    ensure!(
        closed[0]
            .annotations
            .get("custos.dev/exit-code")
            .map(String::as_str)
            == Some("0"),
        "closed: {:?}",
        closed[0]
    );
    let stdout_ref = closed[0]
        .custos
        .streams
        .iter()
        .find(|r| r.channel.as_deref() == Some("stdout"))
        .ok_or_else(|| anyhow!("no stdout total: {:?}", closed[0].custos.streams))?;
    ensure!(
        stdout_ref.bytes == text.len() as u64,
        "stdout bytes {}",
        stdout_ref.bytes
    );
    // Chunk 0 is the header; then chunks are cut once they reach 64 KiB (so ~200 KB of output makes
    // at least two more), the last at the end.
    let mut chunks = custos_recording::chunks_of(&records, &rec_name);
    chunks.sort_by_key(|c| c.seq);
    let sizes: Vec<u64> = chunks.iter().map(|c| c.bytes).collect();
    ensure!(
        chunks.len() >= 3
            && sizes[1..sizes.len() - 1]
                .iter()
                .all(|&b| b >= custos_recording::CHUNK_BYTES),
        "a ~200 KB recording in chunks of {sizes:?}"
    );
    ensure!(
        kinds_of(&records, &audit_id)
            .iter()
            .filter(|k| *k == "stream-chunk")
            .count()
            == chunks.len()
    );
    check_verifies(&records, &path, &rec_name)
}

#[test]
fn a_non_interactive_cat_over_spdy_is_recorded_with_its_output_and_exit_status() -> Result<()> {
    non_interactive(27)
}

#[test]
fn a_non_interactive_cat_over_websocket_is_recorded_with_its_output_and_exit_status() -> Result<()>
{
    non_interactive(33)
}

/// A failing command: stderr recorded as `e`, the exit status (kwok's `exit status 3`) as `x` and in
/// the stream-closed record.
#[test]
fn a_failing_command_is_recorded_with_its_stderr_and_exit_code() -> Result<()> {
    let mut s = Session::start(None)?;
    let bin = kubectl_bin(33)?.display().to_string();
    let out = kubectl(
        &bin,
        &s.kc,
        &[
            "exec",
            "-n",
            &s.ns,
            "toolbox",
            "--",
            "sh",
            "-c",
            "echo out-line; echo err-line >&2; exit 3",
        ],
    )?;
    ensure!(!out.status.success(), "exit 3 reported as success");
    let records = s.stop_and_read()?;
    let (_, name) = the_recording(&records)?;
    let rec = Recording::read(&s.recordings().join(&name))?;
    ensure!(
        rec.data_of(&Code::Output).concat() == "out-line\n",
        "{:?}",
        rec.events
    );
    ensure!(
        rec.data_of(&Code::Stderr).concat() == "err-line\n",
        "{:?}",
        rec.events
    );
    let exit = rec.data_of(&Code::Exit);
    ensure!(
        exit.len() == 1 && exit[0].contains("exit status 3"),
        "exit events: {exit:?}"
    );
    let closed = of_kind(&records, &RecordKind::StreamClosed);
    ensure!(
        closed.len() == 1
            && closed[0]
                .annotations
                .get("custos.dev/exit-code")
                .map(String::as_str)
                == Some("3"),
        "closed: {closed:?}"
    );
    Ok(())
}

fn write_failure(minor: u32) -> Result<()> {
    let mut s = Session::start(Some("256k"))?;
    let bin = kubectl_bin(minor)?.display().to_string();
    let mark = s.dir.path().join("resize-helper-done");
    let mut tty = Tty::spawn(&tty_command(&bin, &s, &mark))?;
    let result = (|| -> Result<String> {
        let at = tty.wait_for("testbed$ ", 0, Duration::from_secs(30))?;
        tty.type_line("echo before-$((1+1))\n")?;
        tty.wait_for("before-2", at, Duration::from_secs(10))?;
        // The disk fills up while the session runs.
        let how = match &s._mount {
            Some(t) => {
                t.fill()?;
                "a full tmpfs"
            }
            None => {
                let files: Vec<PathBuf> = std::fs::read_dir(s.recordings())?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .collect();
                let out = Command::new("chattr").arg("+i").args(&files).output()?;
                ensure!(
                    out.status.success(),
                    "neither tmpfs nor chattr available: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                "an immutable file"
            }
        };
        // More output than the recording's last page can take.
        tty.type_line("seq 1 20000; echo after-$((2+1))\n")?;
        tty.wait_exit(Duration::from_secs(30))
            .with_context(|| format!("after {how}"))?;
        Ok(tty.seen.clone())
    })();
    if s._mount.is_none() {
        let _ = Command::new("chattr")
            .arg("-R")
            .arg("-i")
            .arg(s.recordings())
            .status();
    }
    let screen =
        result.with_context(|| format!("kubectl 1.{minor}; gateway log:\n{}", s.logs()))?;
    ensure!(
        screen.contains("stream closed by Custos")
            && screen.contains("recording could not be written"),
        "kubectl 1.{minor} did not say why the session closed:\n{screen}\ngateway log:\n{}",
        s.logs()
    );
    ensure!(
        !screen.contains("after-3"),
        "the session went on after the recording failed:\n{screen}"
    );
    drop(tty);
    let records = s.stop_and_read()?;
    let closed = of_kind(&records, &RecordKind::StreamClosed);
    ensure!(closed.len() == 1, "stream-closed records: {closed:?}");
    let error = closed[0].custos.error.clone().unwrap_or_default();
    ensure!(
        error.contains("recording could not be written"),
        "stream-closed error: {error:?}"
    );
    Ok(())
}

#[test]
fn a_full_disk_closes_a_running_spdy_session_with_the_reason() -> Result<()> {
    write_failure(27)
}

#[test]
fn a_full_disk_closes_a_running_websocket_session_with_the_reason() -> Result<()> {
    write_failure(33)
}

fn port_forward(minor: u32) -> Result<()> {
    let mut s = Session::start(None)?;
    let bin = kubectl_bin(minor)?;
    let sizes = [5usize, 200_000];
    let result = (|| -> Result<()> {
        let mut kubectl = Command::new(&bin);
        kubectl.arg("--kubeconfig").arg(&s.kc);
        let pf = PortForward::start(kubectl, &s.ns, "toolbox", 8080)?;
        for size in sizes {
            let payload: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            ensure!(
                pf.echo(&payload)? == payload,
                "port-forward echo of {size} bytes differs"
            );
        }
        std::thread::sleep(Duration::from_millis(500));
        Ok(())
    })();
    result
        .with_context(|| format!("kubectl 1.{minor} port-forward; gateway log:\n{}", s.logs()))?;
    let records = s.stop_and_read()?;
    let opened = of_kind(&records, &RecordKind::PortForwardOpened);
    let closed = of_kind(&records, &RecordKind::PortForwardClosed);
    let facts: Vec<_> = closed
        .iter()
        .filter_map(|r| r.custos.port_forward.clone())
        .collect();
    ensure!(
        opened.len() == sizes.len() && closed.len() == sizes.len(),
        "{} opened, {} closed records: {facts:?}",
        opened.len(),
        closed.len()
    );
    for size in sizes {
        ensure!(
            facts
                .iter()
                .any(|f| f.port == 8080 && f.bytes_in == size as u64 && f.bytes_out == size as u64),
            "no connection of {size} bytes each way: {facts:?}"
        );
    }
    Ok(())
}

#[test]
fn port_forward_connections_over_spdy_are_recorded_with_port_and_bytes() -> Result<()> {
    port_forward(27)
}

#[test]
fn port_forward_connections_over_websocket_are_recorded_with_port_and_bytes() -> Result<()> {
    port_forward(33)
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `recordings.dir` outside the data dir (a volume several replicas would share): the gateway writes
/// the exec's recording there and nowhere else, and `custos audit verify --recordings DIR` verifies it
/// against the log — but not when pointed at the default place, nor once the file is edited.
#[test]
fn a_configured_recordings_dir_outside_the_data_dir_is_written_and_verified_there() -> Result<()> {
    let tb = Testbed::load()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let shared = dir.path().join("volume").join("recordings");
    let config = dir.path().join("custos.yaml");
    std::fs::write(
        &config,
        format!(
            "recordings:\n  dir: {}\n",
            serde_json::to_string(&shared.display().to_string())?
        ),
    )?;
    let config_arg = config.display().to_string();
    let mut gw = Custos::start_in(
        &tb,
        Path::new(tb.var("TESTBED_GATEWAY_KUBECONFIG")?),
        &data,
        &["--config", &config_arg],
    )?;
    let kc = gw.kubeconfig(dir.path(), "admin", Some(&tb.token("admin")?))?;
    let ns = tb.var("TESTBED_NAMESPACE")?;
    let out = kubectl(
        &kubectl_bin(33)?.display().to_string(),
        &kc,
        &[
            "exec",
            "-n",
            ns,
            "toolbox",
            "--",
            "sh",
            "-c",
            "echo shared-$((40+2))",
        ],
    )?;
    ensure!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("shared-42"),
        "kubectl exec: {}\ngateway log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail(&gw.logs(), 40)
    );
    gw.stop()?;
    let records = records(&gw.data_dir)?;
    let (_, name) = the_recording(&records)?;
    let path = shared.join(&name);
    ensure!(
        Recording::read(&path)?.output().contains("shared-42"),
        "{} lacks the output",
        path.display()
    );
    ensure!(
        !gw.data_dir.join("recordings").exists(),
        "something was written to <dataDir>/recordings"
    );

    let verify = |recordings: Option<&Path>| -> Result<std::process::Output> {
        let mut cmd = Command::new(custos_e2e::custos_bin()?);
        cmd.args(["audit", "verify", "--data-dir"])
            .arg(&gw.data_dir)
            .env_remove("CUSTOS_RECORDINGS")
            .env_remove("CUSTOS_STORE");
        if let Some(r) = recordings {
            cmd.arg("--recordings").arg(r);
        }
        Ok(cmd.output()?)
    };
    let ok = verify(Some(&shared))?;
    let printed = String::from_utf8_lossy(&ok.stdout);
    ensure!(
        ok.status.success() && printed.contains("recordings   1 checked"),
        "audit verify --recordings: {printed}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let default = verify(None)?;
    ensure!(
        !default.status.success() && String::from_utf8_lossy(&default.stderr).contains("missing"),
        "audit verify without --recordings: {}",
        String::from_utf8_lossy(&default.stderr)
    );
    let mut bytes = std::fs::read(&path)?;
    let at = bytes
        .windows(9)
        .position(|w| w == b"shared-42")
        .ok_or_else(|| anyhow!("no output to edit"))?;
    bytes[at + 7] = b'7';
    std::fs::write(&path, &bytes)?;
    let edited = verify(Some(&shared))?;
    ensure!(
        !edited.status.success()
            && String::from_utf8_lossy(&edited.stderr).contains("does not match"),
        "an edited recording: {}",
        String::from_utf8_lossy(&edited.stderr)
    );
    Ok(())
}

/// The gateway is killed (SIGKILL) while an interactive session runs, right after output it had
/// written to the recording but not yet sealed (a chunk is sealed when 64 KiB or 2 s old). After a
/// restart, `custos audit verify` accepts the log: the sealed part of the recording matches its chunk
/// records, and the unsealed tail is reported as a warning naming the cause — not a tamper alarm.
#[test]
fn a_gateway_killed_mid_session_leaves_a_verifiable_recording_with_its_unsealed_tail_reported(
) -> Result<()> {
    let mut s = Session::start(None)?;
    let mark = s.dir.path().join("resize-helper-done");
    let bin = kubectl_bin(33)?.display().to_string();
    let mut tty = Tty::spawn(&tty_command(&bin, &s, &mark))?;
    let typed = (|| -> Result<()> {
        let at = tty.wait_for("testbed$ ", 0, Duration::from_secs(30))?;
        tty.type_line("echo before-the-crash-$((20+1))\n")?;
        tty.wait_for("before-the-crash-21", at, Duration::from_secs(10))?;
        Ok(())
    })();
    s.gw.crash();
    drop(tty);
    // Ends the resize helper tty_command starts in the background.
    std::fs::write(&mark, b"")?;
    typed.with_context(|| format!("gateway log:\n{}", s.logs()))?;
    // A restart on the same log sequences what was queued; a clean stop signs the head.
    let upstream = PathBuf::from(s.tb.var("TESTBED_GATEWAY_KUBECONFIG")?);
    let mut again = Custos::start_in(&s.tb, &upstream, &s.gw.data_dir, &[])?;
    again.stop()?;
    let records = records(&s.gw.data_dir)?;
    let (_, name) = the_recording(&records)?;
    ensure!(
        of_kind(&records, &RecordKind::StreamClosed).is_empty(),
        "a stream-closed record after a crash?"
    );
    let out = Command::new(custos_e2e::custos_bin()?)
        .args(["audit", "verify", "--data-dir"])
        .arg(&s.gw.data_dir)
        .env_remove("CUSTOS_RECORDINGS")
        .env_remove("CUSTOS_STORE")
        .output()?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    ensure!(
        out.status.success() && stdout.contains("recordings   1 checked"),
        "audit verify after a crash:\n{stdout}\n{stderr}"
    );
    ensure!(
        stderr.contains(&name)
            && stderr.contains("not covered by a chunk record")
            && stderr.contains("no stream-closed record"),
        "no warning about the unsealed tail:\n{stderr}"
    );
    // The recording still holds what was shown before the crash.
    let rec = Recording::read(&s.gw.data_dir.join("recordings").join(&name))?;
    ensure!(
        rec.output().contains("before-the-crash-21"),
        "the output before the crash is not in the recording"
    );
    Ok(())
}

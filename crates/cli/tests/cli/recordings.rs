//! Recordings outside the data dir (`recordings.dir`, `--recordings DIR`) end to end: the built binary
//! against an SQLite log written here whose stream records refer to a recording kept in another
//! directory, as gateway replicas sharing one volume would leave it. `audit verify`, `evidence export`
//! and `sessions play` find it there; the default `<data dir>/recordings` does not have it; an edited
//! copy fails. `custos serve` refuses to start on a recordings directory it cannot create.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use custos_audit::bundle::sha256_file;
use custos_audit::record::{ObjectReference, SessionRef, StreamRef, UserInfo};
use custos_audit::{Record, RecordKind};

use crate::{at, custos, signing_key, Run, FROM, TO};

const AUDIT_ID: &str = "5391e9f0-3c7f-4dfb-8865-a1a2e3f32c4d";
const SESSION: &str = "ss-shared-recordings";

/// A recording as the gateway writes it: header, then events (output, exit status).
const CAST: &str = concat!(
    "{\"version\":2,\"width\":80,\"height\":24,\"timestamp\":1749945600}\n",
    "[0.100000,\"o\",\"hello from a shared volume\\r\\n\"]\n",
    "[0.200000,\"o\",\"second line\\r\\n\"]\n",
    "[0.300000,\"x\",\"{\\\"status\\\":\\\"Success\\\"}\"]\n",
);

fn name() -> String {
    format!("{AUDIT_ID}.cast")
}

fn record(kind: RecordKind, seconds: u64) -> Record {
    let mut r = Record::new(kind, at(seconds));
    r.audit_id = Some(AUDIT_ID.into());
    r.request_received_timestamp = Some(at(seconds));
    r.user = Some(UserInfo {
        username: "alice".into(),
        ..UserInfo::default()
    });
    r.custos.session = Some(SessionRef {
        id: SESSION.into(),
        intent: Some("look at the toolbox".into()),
        ticket: None,
    });
    r
}

/// The exec request, its stream's opened, chunk (two, covering the file) and closed records.
fn records(scratch: &Path) -> Vec<Record> {
    let mut request = record(RecordKind::Request, 1);
    request.verb = Some("create".into());
    request.request_uri =
        Some("/api/v1/namespaces/default/pods/toolbox/exec?command=sh&stdout=true".into());
    request.object_ref = Some(ObjectReference {
        resource: Some("pods".into()),
        subresource: Some("exec".into()),
        namespace: Some("default".into()),
        name: Some("toolbox".into()),
        ..ObjectReference::default()
    });
    let mut opened = record(RecordKind::StreamOpened, 2);
    opened.custos.streams.push(StreamRef {
        recording: name(),
        ..StreamRef::default()
    });
    let split = CAST.find('\n').expect("header line") + 1;
    let (first, second) = CAST.as_bytes().split_at(split);
    let mut out = vec![request, opened];
    for (seq, (offset, bytes)) in [(0u64, first), (split as u64, second)]
        .into_iter()
        .enumerate()
    {
        let path = scratch.join("chunk");
        fs::write(&path, bytes).expect("write chunk");
        let mut chunk = record(RecordKind::StreamChunk, 3 + seq as u64);
        chunk.custos.streams.push(StreamRef {
            recording: name(),
            seq: Some(seq as u64),
            offset: Some(offset),
            bytes: bytes.len() as u64,
            sha256: Some(sha256_file(&path).expect("hash").to_hex()),
            ..StreamRef::default()
        });
        out.push(chunk);
    }
    let mut closed = record(RecordKind::StreamClosed, 5);
    closed.custos.streams.push(StreamRef {
        recording: name(),
        ..StreamRef::default()
    });
    closed
        .annotations
        .insert("custos.dev/exit-code".into(), "0".into());
    out.push(closed);
    out
}

/// A data dir with a signed SQLite log of one recorded exec, and the recording in `shared/` — not in
/// `data/recordings/`.
struct Fixture {
    root: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir().expect("tempdir");
        let f = Fixture { root };
        fs::create_dir(f.data_dir()).expect("data dir");
        fs::create_dir(f.shared()).expect("shared dir");
        fs::write(f.shared().join(name()), CAST).expect("recording");
        let key = signing_key(&f.data_dir());
        crate::append(&f.data_dir(), &records(f.root.path()), Some(&key));
        f
    }

    fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn shared(&self) -> PathBuf {
        self.root.path().join("shared")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn custos(&self, args: &[&str]) -> Command {
        custos(&self.data_dir(), args)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn audit_verify_checks_recordings_in_the_directory_given() {
    let f = Fixture::new();
    let shared = f.shared();

    let run = Run::of(&mut f.custos(&["audit", "verify", "--recordings", s(&shared)])).ok();
    assert!(
        run.stdout.contains("recordings   1 checked") && run.stdout.contains(s(&shared)),
        "{}",
        run.stdout
    );
    // The same from the variable `custos serve` reads.
    Run::of(
        f.custos(&["audit", "verify"])
            .env("CUSTOS_RECORDINGS", &shared),
    )
    .ok();

    // Without it, the default <data dir>/recordings is looked at, where the recording is not.
    Run::of(&mut f.custos(&["audit", "verify"]))
        .fails_with("referenced by the log's stream records but missing")
        .fails_with(s(&f.data_dir().join("recordings")));

    // One character of the shared copy changed: found, and named.
    let path = shared.join(name());
    let edited = CAST.replace("hello", "HELLO");
    fs::write(&path, edited).expect("edit");
    Run::of(&mut f.custos(&["audit", "verify", "--recordings", s(&shared)]))
        .fails_with(&format!("recording {} does not match", name()));
    // Cut short, and extended.
    fs::write(&path, &CAST[..CAST.len() - 5]).expect("truncate");
    Run::of(&mut f.custos(&["audit", "verify", "--recordings", s(&shared)]))
        .fails_with("audit verify FAILED");
    fs::write(&path, format!("{CAST}[9.0,\"o\",\"added\"]\n")).expect("extend");
    Run::of(&mut f.custos(&["audit", "verify", "--recordings", s(&shared)]))
        .fails_with("audit verify FAILED");
    fs::write(&path, CAST).expect("restore");
    Run::of(&mut f.custos(&["audit", "verify", "--recordings", s(&shared)])).ok();
}

#[test]
fn evidence_export_copies_recordings_from_the_directory_given() {
    let f = Fixture::new();
    let shared = f.shared();
    let bundle = f.path("bundle");
    let export = ["evidence", "export", "--from", FROM, "--to", TO, "--out"];

    let missing = f.path("bundle-default");
    let mut args = export.to_vec();
    args.push(s(&missing));
    Run::of(&mut f.custos(&args)).fails_with("cannot be copied from");

    let mut args = export.to_vec();
    args.extend([s(&bundle), "--recordings", s(&shared)]);
    Run::of(&mut f.custos(&args)).ok();
    let copied = bundle.join("recordings").join(name());
    assert_eq!(fs::read_to_string(&copied).expect("copied"), CAST);
    let verified = Run::of(&mut f.custos(&["evidence", "verify", s(&bundle)])).ok();
    assert!(
        verified.stdout.contains("recordings"),
        "{}",
        verified.stdout
    );
}

#[test]
fn sessions_play_reads_the_directory_given() {
    let f = Fixture::new();
    let played = Run::of(&mut f.custos(&[
        "sessions",
        "play",
        SESSION,
        "--speed",
        "1000",
        "--recordings",
        s(&f.shared()),
    ]))
    .ok();
    assert!(
        played.stdout.contains("hello from a shared volume") && played.stdout.contains("second"),
        "{}",
        played.stdout
    );
    Run::of(&mut f.custos(&["sessions", "play", SESSION])).fails_with("playing");
}

/// A kubeconfig for an apiserver that is never contacted: start-up stops before any request.
fn kubeconfig(dir: &Path) -> PathBuf {
    let ca =
        custos_gateway::tls::ensure_self_signed(&dir.join("upstream-ca"), &["localhost".into()])
            .expect("a CA")
            .ca_cert;
    let path = dir.join("upstream.kubeconfig");
    fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
             clusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:1\n    \
             certificate-authority: {}\n\
             contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n\
             users:\n- name: u\n  user:\n    token: never-used\n",
            s(&ca)
        ),
    )
    .expect("kubeconfig");
    path
}

#[test]
fn serve_refuses_a_recordings_dir_it_cannot_use() {
    let f = Fixture::new();
    let upstream = kubeconfig(f.root.path());
    let file = f.path("a-file");
    fs::write(&file, b"not a directory").expect("file");
    let serve = |recordings: &Path, config: Option<&Path>| {
        let mut cmd = f.custos(&["serve", "--listen", "127.0.0.1:0", "--ops-listen", ""]);
        cmd.arg("--upstream-kubeconfig").arg(&upstream);
        match config {
            Some(c) => cmd.arg("--config").arg(c),
            None => cmd.arg("--recordings").arg(recordings),
        };
        Run::of(&mut cmd)
    };
    // Refused by validation, with the field.
    serve(&file, None).fails_with("invalid value for recordings.dir");
    let config = f.path("custos.yaml");
    fs::write(&config, format!("recordings:\n  dir: {:?}\n", s(&file))).expect("config");
    serve(&file, Some(&config)).fails_with("invalid value for recordings.dir");
    // Cannot be created (its parent is a file): the gateway does not start.
    serve(&file.join("recordings"), None).fails_with(&format!(
        "recordings.dir {}",
        file.join("recordings").display()
    ));
}

#[test]
fn serve_creates_the_configured_recordings_dir_private_and_starts() {
    use std::io::{BufRead as _, BufReader};
    use std::os::unix::fs::PermissionsExt as _;

    let f = Fixture::new();
    let upstream = kubeconfig(f.root.path());
    let dir = f.path("volume").join("recordings");
    let config = f.path("custos.yaml");
    fs::write(&config, format!("recordings:\n  dir: {:?}\n", s(&dir))).expect("config");
    let mut child = f
        .custos(&["serve", "--listen", "127.0.0.1:0", "--ops-listen", ""])
        .arg("--upstream-kubeconfig")
        .arg(&upstream)
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start custos serve");
    let stdout = child.stdout.take().expect("stdout");
    let serving = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("serving https://"));
    child.kill().expect("stop custos serve");
    child.wait().expect("wait for custos serve");
    assert!(serving, "custos serve did not start");
    let mode = fs::metadata(&dir).expect("created").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", dir.display());
    // The start-up write check leaves nothing behind; nothing went to <data dir>/recordings.
    assert_eq!(fs::read_dir(&dir).expect("read").count(), 0);
    assert!(!f.data_dir().join("recordings").exists());
}

#[test]
fn an_edited_kind_index_does_not_excuse_an_extended_recording() {
    let f = Fixture::new();
    let shared = f.shared();
    fs::write(
        shared.join(name()),
        format!("{CAST}[9.0,\"o\",\"added\"]\n"),
    )
    .expect("extend");
    // Relabelled in the store's search index only (the record's bytes, which the Merkle tree covers,
    // still say stream-closed): the stream must not pass for one that was never closed, whose
    // unsealed tail would only be a warning.
    let db = rusqlite::Connection::open(f.data_dir().join("audit.db")).expect("db");
    let changed = db
        .execute(
            "UPDATE audit_entries SET kind = 'request' WHERE kind = 'stream-closed'",
            [],
        )
        .expect("update");
    assert_eq!(changed, 1);
    drop(db);
    Run::of(&mut f.custos(&["audit", "verify", "--recordings", s(&shared)]))
        .fails_with("audit verify FAILED");
}

#[test]
fn a_chunk_record_only_queued_does_not_vouch_for_appended_bytes() {
    let f = Fixture::new();
    let shared = f.shared();
    let added = "[9.0,\"o\",\"added\"]\n";
    fs::write(shared.join(name()), format!("{CAST}{added}")).expect("extend");
    // A forged stream-chunk record for exactly those bytes, put in the store as a queued row (not in
    // the verified tree): it must not count.
    let scratch = f.path("added");
    fs::write(&scratch, added).expect("write");
    let mut chunk = record(RecordKind::StreamChunk, 6);
    chunk.custos.streams.push(StreamRef {
        recording: name(),
        seq: Some(2),
        offset: Some(CAST.len() as u64),
        bytes: added.len() as u64,
        sha256: Some(sha256_file(&scratch).expect("hash").to_hex()),
        ..StreamRef::default()
    });
    let db = rusqlite::Connection::open(f.data_dir().join("audit.db")).expect("db");
    db.execute(
        "INSERT INTO audit_entries (leaf_index, record, leaf_hash, kind, audit_id) \
         VALUES (NULL, ?1, ?2, 'stream-chunk', ?3)",
        rusqlite::params![
            serde_json::to_vec(&chunk).expect("json"),
            vec![0u8; 32],
            AUDIT_ID
        ],
    )
    .expect("insert");
    drop(db);
    Run::of(&mut f.custos(&["audit", "verify", "--recordings", s(&shared)]))
        .fails_with(&format!("recording {} does not match", name()));
}

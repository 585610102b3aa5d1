//! `custos audit …` and `custos evidence …` end to end: the built binary against an SQLite log written
//! here with the store's own appender and sequencer, then tampered with by hand.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use custos_audit::bundle::{sha256_file, Manifest};
use custos_audit::merkle::Hash;
use custos_audit::note::SignerKey;
use custos_audit::record::{
    DecisionRecord, ObjectReference, Outcome, ResponseStatus, SessionRef, UserInfo,
};
use custos_audit::{Checkpoint, Record, RecordKind};

use crate::{at, custos, signing_key, Run, FROM, TO};

const USERS: [&str; 2] = ["alice", "bob"];
const VERBS: [&str; 4] = ["get", "list", "delete", "create"];

fn user_of(i: u64) -> &'static str {
    USERS[(i % 2) as usize]
}
fn session_of(i: u64) -> String {
    format!("s-{}", i % 3)
}
fn verb_of(i: u64) -> &'static str {
    VERBS[(i % 4) as usize]
}

/// Record `i`, received `i` seconds after [`T0`](crate::T0).
fn record(i: u64) -> Record {
    let mut r = Record::new(RecordKind::Request, at(i));
    r.audit_id = Some(format!("a-{i}"));
    r.request_received_timestamp = Some(at(i));
    r.verb = Some(verb_of(i).to_owned());
    r.request_uri = Some(format!("/api/v1/namespaces/ns-{}/pods/p-{i}", i % 2));
    r.user = Some(UserInfo {
        username: user_of(i).to_owned(),
        ..UserInfo::default()
    });
    r.object_ref = Some(ObjectReference {
        resource: Some(["pods", "secrets"][(i % 2) as usize].to_owned()),
        namespace: Some(format!("ns-{}", i % 2)),
        name: Some(format!("p-{i}")),
        ..ObjectReference::default()
    });
    r.response_status = Some(ResponseStatus {
        code: Some(if i % 5 == 4 { 403 } else { 200 }),
        ..ResponseStatus::default()
    });
    r.custos.session = Some(SessionRef {
        id: session_of(i),
        intent: Some("rotate the database credentials".into()),
        ticket: Some("OPS-1".into()),
    });
    r.custos.decision = Some(DecisionRecord {
        outcome: if i % 5 == 4 {
            Outcome::Deny
        } else {
            Outcome::Allow
        },
        policy_ids: vec!["p0".into()],
        reason: None,
        annotations: BTreeMap::new(),
    });
    r
}

/// A data dir with an SQLite log of 12 records and checkpoints at 6 and 12, signed with the key in
/// `audit.key` (what the gateway would have written).
struct Fixture {
    dir: tempfile::TempDir,
    key: SignerKey,
    /// The checkpoint of the first 6 records (an auditor kept it).
    first: String,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = signing_key(dir.path());
        let fixture = Fixture {
            dir,
            key,
            first: String::new(),
        };
        let first = fixture.append(0..6, true).expect("first checkpoint");
        fixture.append(6..12, true).expect("second checkpoint");
        Fixture { first, ..fixture }
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Appends records `range`; with `sign`, integrates and signs them, returning the checkpoint.
    fn append(&self, range: std::ops::Range<u64>, sign: bool) -> Option<String> {
        let records: Vec<Record> = range.map(record).collect();
        crate::append(self.data_dir(), &records, sign.then_some(&self.key))
    }

    fn sign_all(&self) {
        self.append(0..0, true);
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data_dir().join("audit.db")).expect("open db")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.data_dir().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, text).expect("write");
        path
    }

    fn custos(&self, args: &[&str]) -> Run {
        Run::of(&mut custos(self.data_dir(), args))
    }
}

/// Reading `audit tail` and `audit search` output.
impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    fn audit_ids(&self) -> Vec<String> {
        self.lines()
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
                v["auditID"].as_str().expect("auditID").to_owned()
            })
            .collect()
    }
}

fn ids(range: impl IntoIterator<Item = u64>) -> Vec<String> {
    range.into_iter().map(|i| format!("a-{i}")).collect()
}

#[test]
fn tail_search_and_key() {
    let f = Fixture::new();
    let tail = f.custos(&["audit", "tail", "-n", "3"]).ok();
    assert_eq!(tail.audit_ids(), ids(9..12));
    // The JSON lines are the canonical leaves themselves.
    assert_eq!(
        tail.lines()[0].as_bytes(),
        record(9).canonical_bytes().expect("bytes")
    );

    let text = f
        .custos(&["audit", "tail", "-n", "2", "--format", "text"])
        .ok();
    assert_eq!(
        text.lines(),
        vec![
            "#10 2025-06-15T00:00:10.000000Z request alice delete pods/ns-0/p-10 200 allow",
            "#11 2025-06-15T00:00:11.000000Z request bob create secrets/ns-1/p-11 200 allow",
        ]
    );

    let all = f.custos(&["audit", "tail", "-n", "100"]).ok();
    assert_eq!(all.audit_ids(), ids(0..12));

    let alice = f.custos(&["audit", "search", "--user", "alice"]).ok();
    assert_eq!(
        alice.audit_ids(),
        ids((0..12).filter(|i| user_of(*i) == "alice"))
    );

    let narrow = f
        .custos(&["audit", "search", "--session", "s-1", "--verb", "list"])
        .ok();
    assert_eq!(
        narrow.audit_ids(),
        ids((0..12).filter(|i| session_of(*i) == "s-1" && verb_of(*i) == "list"))
    );

    let resource = f
        .custos(&[
            "audit",
            "search",
            "--resource",
            "secrets",
            "--namespace",
            "ns-1",
        ])
        .ok();
    assert_eq!(resource.audit_ids(), ids((0..12).filter(|i| i % 2 == 1)));

    let window = f
        .custos(&[
            "audit",
            "search",
            "--since",
            "2025-06-15T00:00:05Z",
            "--until",
            "2025-06-15T00:00:08Z",
        ])
        .ok();
    assert_eq!(window.audit_ids(), ids(5..8));

    // Offsets are honoured: 02:00:09+02:00 is 00:00:09Z.
    let offset = f
        .custos(&["audit", "search", "--since", "2025-06-15T02:00:09+02:00"])
        .ok();
    assert_eq!(offset.audit_ids(), ids(9..12));

    let limited = f.custos(&["audit", "search", "--limit", "2"]).ok();
    assert_eq!(limited.audit_ids(), ids(0..2));

    let by_id = f.custos(&["audit", "search", "--audit-id", "a-4"]).ok();
    assert_eq!(by_id.audit_ids(), ids(4..5));

    let bad_time = f.custos(&["audit", "search", "--since", "yesterday"]);
    assert_ne!(bad_time.code, Some(0));
    assert!(bad_time.stderr.contains("RFC 3339"), "{}", bad_time.stderr);

    let key = f.custos(&["audit", "key"]).ok();
    assert_eq!(key.stdout, format!("{}\n", f.key.verifier()));
    assert!(!key.stdout.contains("PRIVATE"));

    // A mistyped data dir is an error, and no empty log is created there.
    let elsewhere = f.path("elsewhere");
    let missing = f.custos(&[
        "audit",
        "tail",
        "--data-dir",
        elsewhere.to_str().expect("utf-8"),
    ]);
    let missing = missing.fails_with("no audit log at");
    assert!(missing.stdout.is_empty());
    assert!(!elsewhere.exists());
    f.custos(&[
        "audit",
        "key",
        "--data-dir",
        elsewhere.to_str().expect("utf-8"),
    ])
    .fails_with("no signing key");
}

#[test]
fn tail_follows_new_records() {
    let f = Fixture::new();
    let mut child = custos(f.data_dir(), &["audit", "tail", "-n", "1", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let id = |line: String| -> String {
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        v["auditID"].as_str().expect("id").to_owned()
    };
    let wait = Duration::from_secs(20);
    assert_eq!(
        id(rx.recv_timeout(wait).expect("the newest record")),
        "a-11"
    );
    // Queued records are shown as soon as they are durable, before they are sequenced.
    f.append(12..14, false);
    assert_eq!(id(rx.recv_timeout(wait).expect("a new record")), "a-12");
    assert_eq!(id(rx.recv_timeout(wait).expect("a new record")), "a-13");
    child.kill().expect("kill");
    child.wait().expect("wait");
}

#[test]
fn audit_verify_passes_and_follows_pins() {
    let f = Fixture::new();
    let report = f.custos(&["audit", "verify"]).ok();
    for needle in [
        "audit log verified",
        "12 in the log, 0 queued",
        "2 verified",
        "size 12",
        "0 records after the latest checkpoint",
    ] {
        assert!(
            report.stdout.contains(needle),
            "{needle}: {}",
            report.stdout
        );
    }

    let vkey = f.key.verifier().to_string();
    let key_file = f.write("custos.vkey", &format!("{vkey}\n"));
    let old = f.write("kept-6", &f.first);
    f.custos(&[
        "audit",
        "verify",
        "--key",
        &vkey,
        "--pin",
        old.to_str().expect("utf-8"),
    ])
    .ok();
    f.custos(&[
        "audit",
        "verify",
        "--key",
        key_file.to_str().expect("utf-8"),
    ])
    .ok();

    // A kept checkpoint beyond the log: it was truncated, or an older copy restored.
    let tree =
        Checkpoint::from_text(&f.first[..f.first.find("\n\n").expect("note") + 1]).expect("text");
    let ahead = Checkpoint::new("custos", 20, tree.root)
        .sign(&f.key)
        .expect("sign");
    let ahead = f.write("kept-20", &ahead);
    f.custos(&["audit", "verify", "--pin", ahead.to_str().expect("utf-8")])
        .fails_with("signs 20 leaves but the log has only 12");

    // A kept checkpoint of the same size with another root: the log forked.
    let fork = Checkpoint::new("custos", 6, Hash([7; 32]))
        .sign(&f.key)
        .expect("sign");
    let fork = f.write("kept-fork", &fork);
    f.custos(&["audit", "verify", "--pin", fork.to_str().expect("utf-8")])
        .fails_with("both sign size 6 with different roots");

    // Another key: no stored checkpoint verifies.
    let other = SignerKey::from_seed("custos", [3; 32]).expect("key");
    f.custos(&["audit", "verify", "--key", &other.verifier().to_string()])
        .fails_with("checkpoint #0 (size 6)");
}

#[test]
fn audit_verify_names_a_changed_record() {
    let f = Fixture::new();
    let forged = record(100).canonical_bytes().expect("bytes");
    f.db()
        .execute(
            "UPDATE audit_entries SET record = ?1 WHERE leaf_index = 3",
            [forged],
        )
        .expect("tamper");
    f.custos(&["audit", "verify"])
        .fails_with("leaf 3: its bytes hash to");
}

#[test]
fn audit_verify_names_a_changed_record_and_hash() {
    let f = Fixture::new();
    let forged = record(100).canonical_bytes().expect("bytes");
    let hash = custos_audit::merkle::leaf_hash(&forged).0.to_vec();
    f.db()
        .execute(
            "UPDATE audit_entries SET record = ?1, leaf_hash = ?2 WHERE leaf_index = 8",
            rusqlite::params![forged, hash],
        )
        .expect("tamper");
    f.custos(&["audit", "verify"])
        .fails_with("leaves 6..12 do not match checkpoint #1 of size 12");
}

#[test]
fn audit_verify_names_a_deleted_record() {
    let f = Fixture::new();
    f.db()
        .execute("DELETE FROM audit_entries WHERE leaf_index = 7", [])
        .expect("tamper");
    f.custos(&["audit", "verify"])
        .fails_with("leaf 7 is missing from the store");
}

#[test]
fn audit_verify_names_swapped_records() {
    let f = Fixture::new();
    f.db()
        .execute_batch(
            "UPDATE audit_entries SET leaf_index = -1 WHERE leaf_index = 8;
             UPDATE audit_entries SET leaf_index = 8 WHERE leaf_index = 10;
             UPDATE audit_entries SET leaf_index = 10 WHERE leaf_index = -1;",
        )
        .expect("tamper");
    f.custos(&["audit", "verify"])
        .fails_with("leaves 6..12 do not match checkpoint #1 of size 12");
}

/// Copies a bundle so each tamper starts from the original.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = fs::read(path).expect("read");
    bytes[at] ^= 0x01;
    fs::write(path, bytes).expect("write");
}

/// Recomputes MANIFEST, as a forger would.
fn reseal(dir: &Path) {
    fn walk(root: &Path, rel: &str, manifest: &mut Manifest) {
        for entry in fs::read_dir(root.join(rel)).expect("read_dir") {
            let entry = entry.expect("entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if entry.file_type().expect("type").is_dir() {
                walk(root, &path, manifest);
            } else if path != "MANIFEST" {
                let hash = sha256_file(&entry.path()).expect("hash");
                manifest.files.insert(path, hash);
            }
        }
    }
    let mut manifest = Manifest::default();
    walk(dir, "", &mut manifest);
    fs::write(dir.join("MANIFEST"), manifest.to_text()).expect("write");
}

fn edit_lines(path: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let mut lines: Vec<String> = fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect();
    edit(&mut lines);
    fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .expect("write");
}

#[test]
fn evidence_export_and_verify() {
    let f = Fixture::new();
    let bundle = f.path("bundle");
    let b = bundle.to_str().expect("utf-8");
    let vkey = f.key.verifier().to_string();
    let export = f
        .custos(&[
            "evidence",
            "export",
            "--from",
            FROM,
            "--to",
            TO,
            "--out",
            b,
            "--consistency-from",
            "6",
        ])
        .ok();
    assert!(
        export.stdout.contains("12 (leaves 0..=11), contiguous yes"),
        "{}",
        export.stdout
    );
    assert_eq!(
        fs::read_to_string(bundle.join("records.jsonl"))
            .expect("records")
            .lines()
            .count(),
        12
    );

    // Trusting the bundle's own key works, with a loud note; the auditor's key, without one.
    let own = f.custos(&["evidence", "verify", b]).ok();
    assert!(
        own.stdout.contains("evidence bundle verified"),
        "{}",
        own.stdout
    );
    assert!(own.stdout.contains("12 (leaves 0..=11)"), "{}", own.stdout);
    assert!(own.stderr.contains("NOTE"), "{}", own.stderr);
    let trusted = f.custos(&["evidence", "verify", b, "--key", &vkey]).ok();
    assert!(!trusted.stderr.contains("NOTE"), "{}", trusted.stderr);
    let key_file = f.write("custos.vkey", &format!("{vkey}\n"));
    f.custos(&[
        "evidence",
        "verify",
        b,
        "--key",
        key_file.to_str().expect("utf-8"),
    ])
    .ok();

    // Pinning the checkpoint kept at 6 leaves: proven a prefix.
    let kept = f.write("kept-6", &f.first);
    let pinned = f
        .custos(&[
            "evidence",
            "verify",
            b,
            "--key",
            &vkey,
            "--pin",
            kept.to_str().expect("utf-8"),
        ])
        .ok();
    assert!(
        pinned
            .stdout
            .contains("your checkpoint of size 6 is a prefix"),
        "{}",
        pinned.stdout
    );
    let fork = Checkpoint::new("custos", 6, Hash([7; 32]))
        .sign(&f.key)
        .expect("sign");
    let fork = f.write("kept-fork", &fork);
    f.custos(&[
        "evidence",
        "verify",
        b,
        "--pin",
        fork.to_str().expect("utf-8"),
    ])
    .fails_with("pinned checkpoint (size 6) is not a prefix");
    let impostor = SignerKey::from_seed("custos", [3; 32]).expect("key");
    let foreign = Checkpoint::from_text(&f.first[..f.first.find("\n\n").expect("note") + 1])
        .expect("text")
        .sign(&impostor)
        .expect("sign");
    let foreign = f.write("kept-foreign", &foreign);
    f.custos(&[
        "evidence",
        "verify",
        b,
        "--pin",
        foreign.to_str().expect("utf-8"),
    ])
    .fails_with("pinned checkpoint:");

    // Another key than the one the auditor trusts.
    f.custos(&[
        "evidence",
        "verify",
        b,
        "--key",
        &impostor.verifier().to_string(),
    ])
    .fails_with("but the trusted key is");

    // The bundle directory is never overwritten.
    f.custos(&["evidence", "export", "--from", FROM, "--to", TO, "--out", b])
        .fails_with("is not empty");
}

#[test]
fn evidence_verify_names_the_damaged_file() {
    let f = Fixture::new();
    let bundle = f.path("bundle");
    f.custos(&[
        "evidence",
        "export",
        "--from",
        FROM,
        "--to",
        TO,
        "--out",
        bundle.to_str().expect("utf-8"),
    ])
    .ok();
    let vkey = f.key.verifier().to_string();
    let mut n = 0;
    let mut tampered = |tamper: &dyn Fn(&Path), needle: &str| {
        n += 1;
        let copy = f.path(&format!("copy-{n}"));
        copy_dir(&bundle, &copy);
        tamper(&copy);
        f.custos(&[
            "evidence",
            "verify",
            copy.to_str().expect("utf-8"),
            "--key",
            &vkey,
        ])
        .fails_with(needle);
    };

    // Damage in transit: MANIFEST names the file.
    tampered(
        &|d| flip_byte(&d.join("records.jsonl"), 40),
        "records.jsonl: SHA-256",
    );
    tampered(
        &|d| flip_byte(&d.join("proofs/3.tlog-proof"), 30),
        "proofs/3.tlog-proof: SHA-256",
    );
    tampered(
        &|d| flip_byte(&d.join("checkpoint"), 2),
        "checkpoint: SHA-256",
    );

    // Forgery with a recomputed MANIFEST: the proofs and the signature name the place.
    tampered(
        &|d| {
            edit_lines(&d.join("records.jsonl"), |l| {
                l[2] = l[2].replacen("alice", "malry", 1);
            });
            reseal(d);
        },
        "records.jsonl line 3: not the leaf at index 2",
    );
    tampered(
        &|d| {
            edit_lines(&d.join("records.jsonl"), |l| l.swap(4, 5));
            reseal(d);
        },
        "records.jsonl line 5: not the leaf at index 4",
    );
    tampered(
        &|d| {
            edit_lines(&d.join("records.jsonl"), |l| {
                l.remove(4);
            });
            fs::remove_file(d.join("proofs/4.tlog-proof")).expect("rm");
            fs::write(
                d.join("BUNDLE"),
                "custos.dev/evidence-bundle@v1\nrecords 11\ncontiguous yes\n",
            )
            .expect("write");
            reseal(d);
        },
        "leaves 4..5 are missing from a contiguous export",
    );
    tampered(
        &|d| {
            let proof = d.join("proofs/3.tlog-proof");
            edit_lines(&proof, |l| {
                l[2] = Hash([1; 32]).to_base64();
            });
            reseal(d);
        },
        "records.jsonl line 4: not the leaf at index 3",
    );
    tampered(
        &|d| {
            edit_lines(&d.join("checkpoint"), |l| l[1] = "13".into());
            reseal(d);
        },
        "checkpoint: checkpoint signature",
    );
}

#[test]
fn evidence_export_of_one_session_has_gaps() {
    let f = Fixture::new();
    let bundle = f.path("session");
    let b = bundle.to_str().expect("utf-8");
    let export = f
        .custos(&[
            "evidence",
            "export",
            "--from",
            FROM,
            "--to",
            TO,
            "--session",
            "s-1",
            "--out",
            b,
        ])
        .ok();
    assert!(export.stdout.contains("contiguous no"), "{}", export.stdout);
    let report = f
        .custos(&[
            "evidence",
            "verify",
            b,
            "--key",
            &f.key.verifier().to_string(),
        ])
        .ok();
    // Session s-1 is records 1, 4, 7, 10.
    assert!(
        report.stdout.contains("4 (leaves 1..=10)"),
        "{}",
        report.stdout
    );
    assert!(
        report.stdout.contains("2..4, 5..7, 8..10"),
        "{}",
        report.stdout
    );
    let records = fs::read_to_string(bundle.join("records.jsonl")).expect("records");
    let lines: Vec<&str> = records.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| l.contains("\"s-1\"")));
}

#[test]
fn evidence_export_waits_for_a_signed_checkpoint() {
    let f = Fixture::new();
    f.append(12..15, false);
    let report = f.custos(&["audit", "verify"]).ok();
    assert!(report.stdout.contains("3 queued"), "{}", report.stdout);
    let bundle = f.path("bundle");
    let b = bundle.to_str().expect("utf-8");
    f.custos(&[
        "evidence", "export", "--from", FROM, "--to", TO, "--out", b, "--wait", "0",
    ])
    .fails_with("not all covered by a signed checkpoint");
    assert!(!bundle.exists());
    // A window the checkpoint does cover exports at once.
    f.custos(&[
        "evidence",
        "export",
        "--from",
        FROM,
        "--to",
        "2025-06-15T00:00:12Z",
        "--out",
        b,
        "--wait",
        "0",
    ])
    .ok();
    fs::remove_dir_all(&bundle).expect("rm");
    f.sign_all();
    let export = f
        .custos(&["evidence", "export", "--from", FROM, "--to", TO, "--out", b])
        .ok();
    assert!(
        export.stdout.contains("15 (leaves 0..=14)"),
        "{}",
        export.stdout
    );
    f.custos(&["evidence", "verify", b]).ok();
    // Nothing but the bundle was left beside it.
    let names: Vec<String> = fs::read_dir(f.data_dir())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

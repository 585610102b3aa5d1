//! Tests of recordings in bundles: names from records are confined to the recordings directory,
//! export copies and lists them, verify fails on an edited, missing or extra recording.

use std::fs;
use std::path::Path;

use custos_audit::bundle::{self, Manifest};
use custos_audit::record::{Record, RecordKind, StreamRef};
use custos_audit::MicroTime;

use super::{add_to_bundle, safe_name, verify_bundle, DIR};

const CONTENT: &[u8] = b"{\"version\":2}\n[0.5,\"o\",\"hello\"]\n";

fn sha(dir: &Path, bytes: &[u8]) -> String {
    let p = dir.join("chunk.tmp");
    fs::write(&p, bytes).expect("write");
    let h = bundle::sha256_file(&p).expect("hash").to_hex();
    fs::remove_file(&p).expect("remove");
    h
}

fn chunk_record(name: &str, seq: u64, offset: u64, bytes: &[u8], scratch: &Path) -> Record {
    let mut r = Record::new(
        RecordKind::StreamChunk,
        MicroTime::from_unix_micros(1_750_000_000_000_000).expect("time"),
    );
    r.audit_id = Some("a4".into());
    r.custos.streams.push(StreamRef {
        recording: name.into(),
        seq: Some(seq),
        offset: Some(offset),
        bytes: bytes.len() as u64,
        sha256: Some(sha(scratch, bytes)),
        ..StreamRef::default()
    });
    r
}

/// A data dir with one recording and a "bundle" whose records refer to it in two chunks and close it.
fn setup(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let source = root.join("recordings");
    fs::create_dir(&source).expect("dir");
    fs::write(source.join("a4.cast"), CONTENT).expect("write");
    let bundle_dir = root.join("bundle");
    fs::create_dir(&bundle_dir).expect("dir");
    let (first, second) = CONTENT.split_at(14);
    let mut closed = chunk_record("a4.cast", 0, 0, CONTENT, root);
    closed.custos.record_kind = RecordKind::StreamClosed;
    closed.custos.streams[0].seq = None;
    closed.custos.streams[0].offset = None;
    let records = [
        chunk_record("a4.cast", 0, 0, first, root),
        chunk_record("a4.cast", 1, 14, second, root),
        closed,
    ];
    let lines: String = records
        .iter()
        .map(|r| format!("{}\n", serde_json::to_string(r).expect("json")))
        .collect();
    fs::write(bundle_dir.join(bundle::RECORDS), lines).expect("write");
    let mut manifest = Manifest::default();
    manifest.files.insert(
        bundle::RECORDS.into(),
        bundle::sha256_file(&bundle_dir.join(bundle::RECORDS)).expect("hash"),
    );
    fs::write(bundle_dir.join(bundle::MANIFEST), manifest.to_text()).expect("write");
    (source, bundle_dir)
}

#[test]
fn recording_names_from_records_are_plain_file_names() {
    for ok in ["5391e9f0-3c7f-4dfb-8865-a1a2e3f32c4d.cast", "a_b+c.cast"] {
        assert_eq!(safe_name(ok).expect(ok), ok);
    }
    for bad in [
        "",
        "../audit.db",
        "a/b.cast",
        ".hidden",
        "/etc/passwd",
        "a\0b",
        "a b",
        "..",
        "é",
    ] {
        assert!(safe_name(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn export_copies_recordings_into_the_bundle_and_lists_them() {
    let root = tempfile::tempdir().expect("tempdir");
    let (source, bundle_dir) = setup(root.path());
    let copied = add_to_bundle(&bundle_dir, &source).expect("add");
    assert_eq!(copied, vec!["a4.cast"]);
    assert_eq!(
        fs::read(bundle_dir.join(DIR).join("a4.cast")).expect("read"),
        CONTENT
    );
    let manifest =
        Manifest::parse(&fs::read_to_string(bundle_dir.join(bundle::MANIFEST)).expect("read"))
            .expect("manifest");
    let listed = manifest.files.get("recordings/a4.cast").expect("listed");
    assert_eq!(
        *listed,
        bundle::sha256_file(&source.join("a4.cast")).expect("hash")
    );
    assert_eq!(verify_bundle(&bundle_dir).expect("verifies").recordings, 1);
}

#[test]
fn an_edited_missing_or_extra_recording_fails_verification_by_name() {
    let root = tempfile::tempdir().expect("tempdir");
    let (source, bundle_dir) = setup(root.path());
    add_to_bundle(&bundle_dir, &source).expect("add");
    let copy = bundle_dir.join(DIR).join("a4.cast");

    let mut edited = CONTENT.to_vec();
    edited[20] ^= 0x20;
    fs::write(&copy, &edited).expect("write");
    let err = format!("{:#}", verify_bundle(&bundle_dir).expect_err("edited"));
    assert!(err.contains("a4.cast") && err.contains("edited"), "{err}");

    fs::write(&copy, [CONTENT, b"more"].concat()).expect("write");
    assert!(verify_bundle(&bundle_dir).is_err(), "appended bytes");

    fs::remove_file(&copy).expect("remove");
    let err = format!("{:#}", verify_bundle(&bundle_dir).expect_err("missing"));
    assert!(err.contains("a4.cast") && err.contains("missing"), "{err}");

    fs::write(&copy, CONTENT).expect("write");
    fs::write(bundle_dir.join(DIR).join("planted.cast"), b"x").expect("write");
    let err = format!("{:#}", verify_bundle(&bundle_dir).expect_err("extra"));
    assert!(err.contains("planted.cast"), "{err}");
}

#[test]
fn a_record_naming_a_path_outside_the_recordings_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let (source, bundle_dir) = setup(root.path());
    let hostile = chunk_record("../audit.key", 0, 0, b"x", root.path());
    let mut lines = fs::read_to_string(bundle_dir.join(bundle::RECORDS)).expect("read");
    lines.push_str(&format!(
        "{}\n",
        serde_json::to_string(&hostile).expect("json")
    ));
    fs::write(bundle_dir.join(bundle::RECORDS), lines).expect("write");
    let err = format!(
        "{:#}",
        add_to_bundle(&bundle_dir, &source).expect_err("refused")
    );
    assert!(err.contains("not a plain file name"), "{err}");
}

#[test]
fn a_recording_plays_back_its_output() {
    let root = tempfile::tempdir().expect("tempdir");
    let path = root.path().join("a4.cast");
    fs::write(
        &path,
        "{\"version\":2,\"width\":80,\"height\":24}\n[0.1,\"o\",\"hello \"]\n[0.2,\"i\",\"typed\"]\n[0.3,\"o\",\"world\\r\\n\"]\n",
    )
    .expect("write");
    let mut out = Vec::new();
    super::play(&path, 1e9, &mut out).expect("plays");
    assert_eq!(String::from_utf8_lossy(&out), "hello world\r\n");
    assert!(super::play(&path, 0.0, &mut Vec::new()).is_err(), "speed 0");
}

#[test]
fn an_uncovered_tail_is_a_warning_only_for_a_failed_or_unclosed_recording() {
    let root = tempfile::tempdir().expect("tempdir");
    let (source, bundle_dir) = setup(root.path());
    add_to_bundle(&bundle_dir, &source).expect("add");
    let copy = bundle_dir.join(DIR).join("a4.cast");
    // Bytes the gateway wrote but never covered by a chunk record.
    fs::write(&copy, [CONTENT, b"[0.9,\"o\",\"par"].concat()).expect("write");
    let referenced = |closed: Option<Option<&str>>| {
        let mut referenced = super::Referenced {
            excuse_unclosed: true,
            ..super::Referenced::default()
        };
        for line in fs::read_to_string(bundle_dir.join(bundle::RECORDS))
            .expect("read")
            .lines()
        {
            let record: Record = serde_json::from_str(line).expect("record");
            if record.custos.record_kind == RecordKind::StreamChunk {
                referenced.add(&record);
            }
        }
        if let Some(error) = closed {
            let mut r = Record::new(
                RecordKind::StreamClosed,
                MicroTime::from_unix_micros(1_750_000_000_000_000).expect("time"),
            );
            r.custos.error = error.map(str::to_owned);
            r.custos.streams.push(StreamRef {
                recording: "a4.cast".into(),
                bytes: 40,
                ..StreamRef::default()
            });
            referenced.add(&r);
        }
        referenced
    };
    let dir = bundle_dir.join(DIR);

    // Closed normally: every byte must be covered.
    let err = format!(
        "{:#}",
        referenced(Some(None))
            .verify_in(&dir)
            .expect_err("uncovered")
    );
    assert!(err.contains("a4.cast"), "{err}");

    // The stream-closed record says the recording failed: the tail is reported, the rest verified.
    let checked = referenced(Some(Some(
        "the session recording could not be written: No space left",
    )))
    .verify_in(&dir)
    .expect("verifies");
    assert_eq!(checked.recordings, 1);
    assert!(
        checked.warnings[0].contains("last 13 bytes are not covered")
            && checked.warnings[0].contains("No space left"),
        "{:?}",
        checked.warnings
    );

    // Never closed (the gateway stopped mid-stream): the same, saying so — in the live log; in a
    // bundle (no excuse: its export copies only the sealed part) it fails.
    let checked = referenced(None).verify_in(&dir).expect("verifies");
    assert!(
        checked.warnings[0].contains("last 13 bytes are not covered")
            && checked.warnings[0].contains("no stream-closed record"),
        "{:?}",
        checked.warnings
    );
    let in_bundle = super::Referenced {
        excuse_unclosed: false,
        ..referenced(None)
    };
    assert!(in_bundle.verify_in(&dir).is_err());

    // An edit inside the covered part still fails, failed, closed or not.
    let mut edited = CONTENT.to_vec();
    edited[3] ^= 0x20;
    fs::write(&copy, [edited.as_slice(), b"tail"].concat()).expect("write");
    for closed in [None, Some(None), Some(Some("failed"))] {
        assert!(referenced(closed).verify_in(&dir).is_err());
    }
}

#[test]
fn an_unclosed_recording_goes_into_a_bundle_up_to_its_last_sealed_byte() {
    let root = tempfile::tempdir().expect("tempdir");
    let (source, bundle_dir) = setup(root.path());
    // The bundle's records without their stream-closed record: a stream still running at export.
    let records = bundle_dir.join(bundle::RECORDS);
    let kept: String = fs::read_to_string(&records)
        .expect("read")
        .lines()
        .filter(|l| !l.contains("stream-closed"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&records, kept).expect("write");
    let mut manifest = Manifest::default();
    manifest.files.insert(
        bundle::RECORDS.into(),
        bundle::sha256_file(&records).expect("hash"),
    );
    fs::write(bundle_dir.join(bundle::MANIFEST), manifest.to_text()).expect("write");
    // Written after the last sealed chunk.
    fs::write(
        source.join("a4.cast"),
        [CONTENT, b"[0.9,\"o\",\"unsealed\"]\n"].concat(),
    )
    .expect("write");
    add_to_bundle(&bundle_dir, &source).expect("add");
    let copy = fs::read(bundle_dir.join(DIR).join("a4.cast")).expect("copy");
    assert_eq!(copy, CONTENT, "only the sealed part is exported");
    verify_bundle(&bundle_dir).expect("the bundle verifies strictly");
}

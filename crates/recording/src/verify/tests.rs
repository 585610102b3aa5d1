use std::time::Duration;

use custos_audit::record::StreamRef;

use super::*;
use crate::cast::{Code, Event};
use crate::writer::Recordings;

/// A recording of a few chunks, its bytes and its chunk records.
fn recorded() -> (tempfile::TempDir, std::path::PathBuf, Vec<StreamRef>) {
    let tmp = tempfile::tempdir().expect("tmp");
    let rec = Recordings::open(tmp.path()).expect("open");
    let mut w = rec
        .create("v", &crate::writer::tests::header("v"))
        .expect("create");
    let mut refs = vec![w.cut().expect("header").sync().expect("sync")];
    for i in 0..4u64 {
        let e = Event::new(
            Duration::from_secs(i),
            Code::Output,
            format!("line {i}\r\n"),
        );
        w.event(&e).expect("write");
        refs.push(w.cut().expect("chunk").sync().expect("sync"));
    }
    (tmp, w.path().to_owned(), refs)
}

#[test]
fn an_untouched_recording_verifies_in_any_record_order() {
    let (_tmp, path, mut refs) = recorded();
    verify(&path, &refs).expect("verifies");
    refs.reverse();
    verify(&path, &refs).expect("records sorted by seq");
}

#[test]
fn an_edited_byte_fails() {
    let (_tmp, path, refs) = recorded();
    let mut bytes = std::fs::read(&path).expect("read");
    let at = bytes.len() - 5;
    bytes[at] ^= 0x20;
    std::fs::write(&path, &bytes).expect("write");
    assert!(matches!(
        verify(&path, &refs),
        Err(VerifyError::Mismatch { seq: 4, .. })
    ));
}

#[test]
fn a_truncated_file_fails() {
    let (_tmp, path, refs) = recorded();
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() - 1]).expect("write");
    assert!(matches!(
        verify(&path, &refs),
        Err(VerifyError::Truncated { seq: 4, .. })
    ));
}

#[test]
fn appended_bytes_fail() {
    let (_tmp, path, refs) = recorded();
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.extend_from_slice(b"[9.0,\"o\",\"rm -rf /\"]\n");
    std::fs::write(&path, &bytes).expect("write");
    assert!(matches!(
        verify(&path, &refs),
        Err(VerifyError::Unrecorded { .. })
    ));
}

#[test]
fn reordered_passages_fail() {
    let (_tmp, path, refs) = recorded();
    let text = std::fs::read_to_string(&path).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(1, 2);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    assert!(matches!(
        verify(&path, &refs),
        Err(VerifyError::Mismatch { seq: 1, .. })
    ));
}

#[test]
fn missing_repeated_or_foreign_chunk_records_fail() {
    let (_tmp, path, refs) = recorded();
    assert!(matches!(verify(&path, &[]), Err(VerifyError::NoChunks(_))));
    let mut missing = refs.clone();
    missing.remove(2);
    assert!(matches!(
        verify(&path, &missing),
        Err(VerifyError::Sequence {
            expected: 2,
            found: 3
        })
    ));
    let mut last_missing = refs.clone();
    last_missing.pop();
    assert!(matches!(
        verify(&path, &last_missing),
        Err(VerifyError::Unrecorded { .. })
    ));
    let mut overlap = refs.clone();
    overlap[2].offset = overlap[2].offset.map(|o| o - 1);
    assert!(matches!(
        verify(&path, &overlap),
        Err(VerifyError::NotContiguous { seq: 2, .. })
    ));
    let mut foreign = refs.clone();
    foreign[1].recording = "other.cast".into();
    assert!(matches!(
        verify(&path, &foreign),
        Err(VerifyError::OtherRecording { seq: 1, .. })
    ));
    let mut bare = refs;
    bare[0].sha256 = None;
    assert!(matches!(
        verify(&path, &bare),
        Err(VerifyError::Incomplete(_))
    ));
}

#[test]
fn an_unclosed_recording_verifies_its_sealed_prefix_and_counts_the_unsealed_tail() {
    let (_tmp, path, refs) = recorded();
    assert_eq!(verify_sealed(&path, &refs).expect("sealed"), 0);
    // The gateway stopped after writing an event it never sealed: strict verify fails, the sealed
    // check passes and says how many bytes nothing vouches for.
    let tail = b"[9.000000,\"o\",\"unsealed\"]\n";
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    std::io::Write::write_all(&mut f, tail).expect("append");
    assert!(matches!(
        verify(&path, &refs),
        Err(VerifyError::Unrecorded { .. })
    ));
    assert_eq!(
        verify_sealed(&path, &refs).expect("sealed prefix"),
        tail.len() as u64
    );
    // An edit inside the sealed prefix still fails.
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[3] ^= 1;
    std::fs::write(&path, &bytes).expect("write");
    assert!(matches!(
        verify_sealed(&path, &refs),
        Err(VerifyError::Mismatch { .. })
    ));
}

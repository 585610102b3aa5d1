use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::*;
use crate::cast::{Code, Facts, Identity};

pub(crate) fn header(audit_id: &str) -> Header {
    Header::new(Facts {
        audit_id: audit_id.into(),
        kind: "exec".into(),
        namespace: Some("ns".into()),
        pod: Some("p".into()),
        container: None,
        command: vec!["sh".into()],
        identity: Identity {
            username: "u".into(),
            groups: vec![],
        },
        acting_as: None,
        session: None,
        tty: true,
        stdin: true,
        protocol: "SPDY/3.1".into(),
        subprotocols: vec![],
        started: custos_audit::record::MicroTime::from_unix_micros(0).expect("epoch"),
        gateway: None,
    })
}

fn out(ms: u64, data: &str) -> Event {
    Event::new(Duration::from_millis(ms), Code::Output, data)
}

#[test]
fn the_directory_is_private_and_files_are_0600_and_never_overwritten() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rec = Recordings::open_in(tmp.path()).expect("open");
    assert_eq!(rec.dir(), tmp.path().join("recordings"));
    let mode = std::fs::metadata(rec.dir())
        .expect("dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let a = rec.create("abc-1", &header("abc-1")).expect("create");
    let b = rec
        .create("abc-1", &header("abc-1"))
        .expect("a reused audit id gets another name");
    assert_eq!((a.name(), b.name()), ("abc-1.cast", "abc-1-2.cast"));
    let mode = std::fs::metadata(a.path())
        .expect("file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(rec.path_of("abc-1.cast"), Some(a.path().to_owned()));
    assert_eq!(rec.path_of("../x.cast"), None);
    assert!(matches!(
        rec.create("../etc", &header("x")),
        Err(WriteError::BadName(_))
    ));
}

#[test]
fn chunks_are_consecutive_and_cover_the_file_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rec = Recordings::open(tmp.path()).expect("open");
    let mut w = rec.create("id", &header("id")).expect("create");
    let mut refs = vec![w.cut().expect("header chunk").sync().expect("sync")];
    assert_eq!(
        w.cut().map(|c| c.stream_ref().clone()),
        None,
        "nothing unsealed"
    );
    for i in 0..50u64 {
        w.event(&out(i * 10, &"x".repeat(4000))).expect("write");
        if w.due(Duration::from_millis(i * 10)) {
            refs.push(w.cut().expect("due chunk").sync().expect("sync"));
        }
    }
    refs.extend(w.cut().map(|c| c.sync().expect("sync")));
    let len = std::fs::metadata(w.path()).expect("file").len();
    assert_eq!(len, w.len());
    let mut pos = 0;
    for (i, r) in refs.iter().enumerate() {
        assert_eq!(
            (r.seq, r.offset, r.channel.as_deref()),
            (Some(i as u64), Some(pos), None)
        );
        assert_eq!(r.recording, "id.cast");
        pos += r.bytes;
    }
    assert_eq!(pos, len);
    assert!(refs.len() >= 4, "{} chunks for ~200 KB", refs.len());
    assert!(refs[1..refs.len() - 1]
        .iter()
        .all(|r| r.bytes >= CHUNK_BYTES));
    crate::verify(w.path(), &refs).expect("verifies");
    assert_eq!(w.whole().bytes, len);
    assert_eq!(w.chunks(), refs.len() as u64);
}

#[test]
fn a_chunk_is_due_two_seconds_after_its_first_byte() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rec = Recordings::open(tmp.path()).expect("open");
    let mut w = rec.create("t", &header("t")).expect("create");
    w.cut().expect("header");
    assert!(
        !w.due(Duration::from_secs(100)),
        "an empty chunk is never due"
    );
    w.event(&out(5_000, "a")).expect("write");
    assert!(!w.due(Duration::from_millis(6_999)));
    w.event(&out(6_500, "b")).expect("write");
    assert!(w.due(Duration::from_millis(7_000)));
    w.cut().expect("cut");
    assert!(!w.due(Duration::from_secs(60)));
}

#[test]
fn a_failed_write_stops_the_writer() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rec = Recordings::open(tmp.path()).expect("open");
    let mut w = rec.create("f", &header("f")).expect("create");
    // A read-only handle in place of the file: the next write fails as a full disk would.
    w.file = Arc::new(File::open(w.path()).expect("reopen"));
    assert!(matches!(w.event(&out(1, "x")), Err(WriteError::Io { .. })));
    assert!(w.failed());
    assert!(matches!(w.event(&out(2, "y")), Err(WriteError::Failed(_))));
}

#[test]
fn creating_fails_when_the_directory_is_not_a_directory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rec = Recordings::open(tmp.path().join("r")).expect("open");
    std::fs::remove_dir(rec.dir()).expect("rmdir");
    std::fs::write(rec.dir(), b"not a dir").expect("file");
    let e = rec.create("x", &header("x")).expect_err("fails");
    assert!(e.to_string().contains("creating the recording"), "{e}");
}

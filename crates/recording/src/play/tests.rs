use std::time::Duration;

use super::*;
use crate::cast::{Code, Event};
use crate::writer::Recordings;

fn recording(events: &[(u64, Code, &str)]) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let rec = Recordings::open(tmp.path()).expect("open");
    let mut w = rec
        .create("p", &crate::writer::tests::header("p"))
        .expect("create");
    for (ms, code, data) in events {
        w.event(&Event::new(Duration::from_millis(*ms), code.clone(), *data))
            .expect("write");
    }
    (tmp, w.path().to_owned())
}

fn played(path: &Path, speed: f64) -> (String, Vec<Duration>, PlayStats) {
    let mut out = Vec::new();
    let mut pauses = Vec::new();
    let options = PlayOptions {
        speed,
        max_idle: Duration::from_secs(2),
    };
    let stats = play_with(path, &options, &mut out, &mut |d| pauses.push(d)).expect("plays");
    (String::from_utf8(out).expect("utf-8"), pauses, stats)
}

#[test]
fn output_and_stderr_are_played_with_their_timing_and_long_pauses_are_capped() {
    let (_tmp, path) = recording(&[
        (0, Code::Resize, "100x30"),
        (100, Code::Output, "$ "),
        (600, Code::Input, "l"),
        (700, Code::Output, "ls\r\n"),
        (1_200, Code::Stderr, "ls: denied\r\n"),
        (61_200, Code::Output, "$ "),
        (61_300, Code::Exit, "{\"status\":\"Success\"}"),
    ]);
    let (text, pauses, stats) = played(&path, 1.0);
    assert_eq!(text, "$ ls\r\nls: denied\r\n$ ");
    assert_eq!(
        pauses,
        [
            Duration::from_millis(100),
            Duration::from_millis(600),
            Duration::from_millis(500),
            Duration::from_secs(2)
        ]
    );
    assert_eq!((stats.events, stats.outputs), (7, 4));
    assert_eq!(stats.waited, Duration::from_millis(3_200));
}

#[test]
fn speed_divides_every_pause() {
    let (_tmp, path) = recording(&[(1_000, Code::Output, "a"), (1_500, Code::Output, "b")]);
    let (text, pauses, _) = played(&path, 4.0);
    assert_eq!(text, "ab");
    assert_eq!(
        pauses,
        [Duration::from_millis(250), Duration::from_millis(125)]
    );
    let (_, pauses, _) = played(&path, f64::INFINITY);
    assert!(pauses.is_empty());
}

#[test]
fn a_bad_speed_or_file_is_an_error() {
    let (_tmp, path) = recording(&[]);
    let mut out = Vec::new();
    for speed in [0.0, -1.0, f64::NAN] {
        assert!(matches!(
            play(&path, speed, &mut out),
            Err(PlayError::Speed(_))
        ));
    }
    std::fs::write(&path, b"[1,\"o\",\"no header\"]\n").expect("write");
    assert!(matches!(
        play(&path, 1.0, &mut out),
        Err(PlayError::Format { .. })
    ));
    assert!(matches!(
        play(&path.with_extension("missing"), 1.0, &mut out),
        Err(PlayError::Io { .. })
    ));
}

#[test]
fn port_forward_bytes_are_shown_per_connection_with_control_characters_defused() {
    let to_pod = Event::forwarded(Duration::ZERO, true, 0, b"GET / HTTP/1.1\r\n\x1b[2J");
    let from_pod = Event::forwarded(Duration::from_millis(5), false, 0, &[0xff, b'o', b'k']);
    assert_eq!(to_pod.forwarded_bytes().expect("bytes").0, 0);
    let (_tmp, path) = recording(&[
        (0, to_pod.code.clone(), &to_pod.data),
        (5, from_pod.code.clone(), &from_pod.data),
        (6, Code::ToPod, "not-a-connection !!"),
    ]);
    let (shown, _, stats) = played(&path, f64::INFINITY);
    assert_eq!(
        shown,
        "\r\n[connection 0 -> pod, 20 bytes]\r\nGET / HTTP/1.1.\r\n.[2J\
         \r\n[connection 0 <- pod, 3 bytes]\r\n.ok"
    );
    assert!(!shown.contains('\x1b'), "no escape reaches the terminal");
    assert_eq!((stats.events, stats.outputs), (3, 2));
}

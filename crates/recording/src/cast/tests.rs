use std::time::Duration;

use super::*;

fn facts() -> Facts {
    Facts {
        audit_id: "a-1".into(),
        kind: "exec".into(),
        namespace: Some("ns".into()),
        pod: Some("toolbox".into()),
        container: None,
        command: vec!["sh".into(), "-c".into(), "echo hi".into()],
        identity: Identity {
            username: "alice@example.com".into(),
            groups: vec!["sre".into()],
        },
        acting_as: None,
        session: Some(SessionInfo {
            id: "s-1".into(),
            intent: Some("fix the pod".into()),
            ticket: None,
        }),
        tty: true,
        stdin: true,
        protocol: "websocket".into(),
        subprotocols: vec!["v5.channel.k8s.io".into()],
        started: MicroTime::from_unix_micros(1_718_000_000_123_456).expect("time"),
        gateway: Some("gw/1".into()),
    }
}

#[test]
fn the_header_is_asciicast_v2_with_a_custos_member_and_reads_back() {
    let h = Header::new(facts());
    let line = h.line();
    assert_eq!(line.last(), Some(&b'\n'));
    let text = std::str::from_utf8(&line).expect("utf-8");
    assert!(text.starts_with(r#"{"version":2,"width":80,"height":24,"timestamp":1718000000,"env":{},"custos":{"auditID":"a-1","kind":"exec""#), "{text}");
    assert!(
        text.contains(r#""started":"2024-06-10T06:13:20.123456Z""#),
        "{text}"
    );
    assert!(
        text.contains(r#""session":{"id":"s-1","intent":"fix the pod"}"#),
        "{text}"
    );
    assert_eq!(Header::parse(text.trim_end()).expect("parse"), h);
}

#[test]
fn a_header_of_another_version_or_shape_is_refused() {
    assert!(Header::parse(r#"{"version":1,"width":80,"height":24}"#).is_err());
    assert!(Header::parse("[1]").is_err());
    // A recording Custos did not write still reads (no custos member).
    let h = Header::parse(r#"{"version":2,"width":100,"height":30}"#).expect("plain v2");
    assert_eq!((h.width, h.height, h.custos), (100, 30, None));
}

#[test]
fn events_are_one_line_with_six_decimals_and_escaped_data() {
    let mut out = Vec::new();
    Event::new(
        Duration::from_micros(1_500_001),
        Code::Output,
        "a\"b\u{1b}[0m\r\n",
    )
    .encode(&mut out);
    Event::new(Duration::ZERO, Code::Stderr, "").encode(&mut out);
    Event::new(
        Duration::from_secs(62),
        Code::Exit,
        r#"{"status":"Success"}"#,
    )
    .encode(&mut out);
    let text = String::from_utf8(out).expect("utf-8");
    assert_eq!(
        text,
        "[1.500001,\"o\",\"a\\\"b\\u001b[0m\\r\\n\"]\n[0.000000,\"e\",\"\"]\n[62.000000,\"x\",\"{\\\"status\\\":\\\"Success\\\"}\"]\n"
    );
    let back: Vec<Event> = text
        .lines()
        .enumerate()
        .map(|(i, l)| Event::parse(l, i + 2).expect("parse"))
        .collect();
    assert_eq!(back[0].time, Duration::from_micros(1_500_001));
    assert_eq!(back[0].data, "a\"b\u{1b}[0m\r\n");
    assert_eq!(back[2].code, Code::Exit);
}

#[test]
fn codes_round_trip_and_unknown_ones_are_kept() {
    for c in ["o", "i", "r", "m", "e", "x", "z"] {
        assert_eq!(Code::parse(c).as_str(), c);
    }
    assert_eq!(Code::parse("z"), Code::Other("z".into()));
    assert!(Code::Output.is_output() && Code::Stderr.is_output());
    assert!(!Code::Input.is_output() && !Code::Exit.is_output());
}

#[test]
fn malformed_event_lines_say_which_line() {
    for bad in [
        r#"[1.0,"o"]"#,
        r#"[-1.0,"o","x"]"#,
        r#"["1","o","x"]"#,
        r#"[1.0,"","x"]"#,
        "nope",
    ] {
        match Event::parse(bad, 7) {
            Err(FormatError::Event { line: 7, .. }) => {}
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn a_recording_reads_whole_and_gives_its_output() {
    let mut text = Header::new(facts()).line();
    for (t, c, d) in [
        (1, Code::Resize, "100x30"),
        (2, Code::Output, "$ "),
        (3, Code::Input, "l"),
        (4, Code::Stderr, "oops\r\n"),
        (5, Code::Output, "done"),
    ] {
        Event::new(Duration::from_secs(t), c, d).encode(&mut text);
    }
    text.extend_from_slice(b"\n");
    let r = Recording::from_reader(&text[..])
        .map_err(|_| "parse")
        .expect("reads");
    assert_eq!(r.events.len(), 5);
    assert_eq!(r.output(), "$ oops\r\ndone");
    assert_eq!(r.data_of(&Code::Resize), ["100x30"]);
}

use custos_mask::Detector;
use custos_stream::Channel;

use super::*;

fn detector() -> &'static Detector {
    static D: std::sync::OnceLock<Detector> = std::sync::OnceLock::new();
    D.get_or_init(|| Detector::builtin().expect("builtin rules compile"))
}

fn run(t: &mut Transcriber, input: &[(Channel, &[u8])]) -> Vec<Piece> {
    let mut out = Vec::new();
    for (ch, bytes) in input {
        t.data(*ch, bytes, &mut out);
    }
    out
}

#[test]
fn stdout_and_stderr_become_o_and_e_events() {
    let mut t = Transcriber::new(detector());
    let out = run(
        &mut t,
        &[
            (Channel::Stdout, b"hello\r\n"),
            (Channel::Stderr, b"oops\n"),
            (Channel::Unknown, b"?"),
        ],
    );
    assert_eq!(
        out,
        [
            (Code::Output, "hello\r\n".to_owned()),
            (Code::Stderr, "oops\n".to_owned()),
            (Code::Output, "?".to_owned())
        ]
    );
    assert_eq!(t.totals().stdout, 8);
    assert_eq!(t.totals().stderr, 5);
}

#[test]
fn a_character_split_across_payloads_is_kept_whole_and_invalid_bytes_are_replaced() {
    let mut t = Transcriber::new(detector());
    let euro = "€".as_bytes();
    let mut out = run(
        &mut t,
        &[(Channel::Stdout, &euro[..1]), (Channel::Stdout, &euro[1..])],
    );
    t.data(Channel::Stdout, b"a\xffb", &mut out);
    t.data(Channel::Stdout, &euro[..2], &mut out);
    t.finish(&mut out);
    let text: Vec<&str> = out.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(text, ["€", "a\u{fffd}b", "\u{fffd}"]);
}

#[test]
fn typed_input_is_masked_and_held_back_until_idle() {
    let mut t = Transcriber::new(detector());
    let key = "AKIAIOSFODNN7EXAMPLE";
    let mut out = Vec::new();
    // Typed key by key, as a terminal sends it.
    for b in format!("export KEY={key}").bytes() {
        t.data(Channel::Stdin, &[b], &mut out);
    }
    assert!(t.holds(), "the tail is held back");
    t.idle(&mut out);
    t.data(Channel::Stdin, b"\r", &mut out);
    t.finish(&mut out);
    assert!(!t.holds());
    let typed: String = out
        .iter()
        .filter(|(c, _)| *c == Code::Input)
        .map(|(_, s)| s.as_str())
        .collect();
    assert!(!typed.contains(key), "{typed}");
    assert_eq!(typed.len(), "export KEY=".len() + key.len() + 1, "{typed}");
    assert!(typed.starts_with("export KEY="), "{typed}");
    assert_eq!(t.totals().stdin, typed.len() as u64);
}

#[test]
fn resize_messages_become_r_events_even_when_split_or_batched() {
    let mut t = Transcriber::new(detector());
    let out = run(
        &mut t,
        &[
            (Channel::Resize, br#"{"Width":120,"He"#),
            (
                Channel::Resize,
                b"ight\":40}\n{\"Width\":80,\"Height\":24}\n",
            ),
            (Channel::Resize, b"not json\n"),
            (Channel::Resize, br#"{"Width":100,"Height":30}"#),
        ],
    );
    let sizes: Vec<&str> = out.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(sizes, ["120x40", "80x24", "100x30"]);
    assert!(out.iter().all(|(c, _)| *c == Code::Resize));
}

#[test]
fn the_exit_status_is_one_x_event_once_complete_and_masked() {
    let mut t = Transcriber::new(detector());
    let status = r#"{"metadata":{},"status":"Failure","message":"command terminated: AKIAIOSFODNN7EXAMPLE","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
    let (a, b) = status.as_bytes().split_at(40);
    let mut out = run(&mut t, &[(Channel::Error, a)]);
    assert!(out.is_empty(), "not complete yet");
    t.data(Channel::Error, b, &mut out);
    t.finish(&mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, Code::Exit);
    assert!(!out[0].1.contains("AKIAIOSFODNN7EXAMPLE"), "{}", out[0].1);
    assert_eq!(out[0].1.len(), status.len());
    let exit = t.exit_status().expect("parsed");
    assert_eq!(exit["reason"], "NonZeroExitCode");
}

#[test]
fn an_incomplete_status_is_written_at_the_end() {
    let mut t = Transcriber::new(detector());
    let mut out = run(&mut t, &[(Channel::Error, b"{\"status\":")]);
    t.end(Channel::Error, &mut out);
    assert_eq!(out, [(Code::Exit, "{\"status\":".to_owned())]);
    assert!(t.exit_status().is_none());
}

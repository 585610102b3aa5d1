use super::*;
use crate::spdy::headers::HeaderDeflater;
use crate::testutil::{data, detector, rst, syn_reply, syn_stream, ws, Collect, Owned};

const AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

/// A terminal session's output with a planted PEM private key and an AWS key among ordinary lines.
fn planted() -> (Vec<u8>, String) {
    let mut body = String::new();
    let mut x: u32 = 12345;
    for _ in 0..25 {
        for _ in 0..64 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            body.push(alphabet[(x >> 16) as usize % 64] as char);
        }
        body.push('\n');
    }
    let text = format!(
        "total 8\nline before the key\n-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\nline after the key\naws_access_key_id = {AWS_KEY}\nthe end\n"
    );
    (text.into_bytes(), body)
}

fn assert_masked(out: &[u8], planted: &[u8], body: &str) {
    let text = String::from_utf8_lossy(out);
    assert_eq!(out.len(), planted.len(), "length preserved");
    for line in body.lines().take(3) {
        assert!(!text.contains(line), "key body leaked: {text}");
    }
    assert!(!text.contains(AWS_KEY), "AWS key leaked");
    for kept in [
        "total 8\n",
        "line before the key\n",
        "line after the key\n",
        "the end\n",
    ] {
        assert!(text.contains(kept), "{kept:?} missing from {text}");
    }
}

/// The client side of a SPDY exec (error, stdout, stderr streams) as an observer sees it.
fn spdy_streams() -> Streams {
    let streams = Streams::new();
    let mut z = HeaderDeflater::new().expect("deflater");
    let mut wire = Vec::new();
    for (id, t) in [(1, "error"), (3, "stdout"), (5, "stderr")] {
        wire.extend(syn_stream(&mut z, id, t));
    }
    UpstreamObserver::spdy(streams.clone())
        .on_chunk(&wire)
        .expect("client side");
    streams
}

/// The apiserver's side: replies, `planted` on stdout in 100-byte frames, stderr, then the status.
fn spdy_server(planted: &[u8]) -> Vec<u8> {
    let mut z = HeaderDeflater::new().expect("deflater");
    let mut wire = Vec::new();
    for id in [1, 3, 5] {
        wire.extend(syn_reply(&mut z, id));
    }
    let pieces: Vec<&[u8]> = planted.chunks(100).collect();
    for (i, p) in pieces.iter().enumerate() {
        wire.extend(data(3, i + 1 == pieces.len(), p));
    }
    wire.extend(data(5, false, b""));
    wire.extend(data(5, true, b"warning: none\n"));
    wire.extend(data(1, true, b"{}"));
    wire
}

fn parse_spdy(out: &[u8]) -> Vec<Owned> {
    let mut r = SpdyReader::new(Sender::Server, spdy_streams());
    let mut c = Collect::default();
    r.feed(out, &mut |e| c.push(e)).expect("output parses");
    assert!(r.at_boundary(), "output ends on a frame boundary");
    c.0
}

fn run(tap: &mut MaskingTap, chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for c in chunks {
        tap.on_chunk(c, &mut out).expect("tap");
    }
    out.to_vec()
}

#[test]
fn spdy_stdout_is_masked_across_frames_and_keeps_its_length() {
    let (planted, body) = planted();
    let wire = spdy_server(&planted);
    let mut tap = MaskingTap::spdy(detector(), spdy_streams());
    let out = run(&mut tap, &[&wire]);
    assert!(!tap.holds());
    assert!(tap.findings() >= 2, "findings: {}", tap.findings());
    let events = parse_spdy(&out);
    let c = Collect(events.clone());
    assert_masked(&c.bytes_of(3), &planted, &body);
    assert_eq!(c.bytes_of(5), b"warning: none\n");
    assert_eq!(c.bytes_of(1), b"{}");
    // stdout ends with FIN, and everything of stdout comes before the exit status.
    let last_stdout = events
        .iter()
        .rposition(|e| matches!(e, Owned::Data(3, ..)))
        .expect("stdout");
    assert!(matches!(events[last_stdout], Owned::Data(3, _, _, true)));
    let status = events
        .iter()
        .position(|e| matches!(e, Owned::Data(1, ..)))
        .expect("status");
    assert!(last_stdout < status);
    // An empty DATA frame without FIN is not passed on.
    assert!(!events.contains(&Owned::Data(5, Channel::Stderr, Vec::new(), false)));
}

#[test]
fn spdy_masking_does_not_depend_on_chunk_boundaries() {
    let (planted, body) = planted();
    let wire = spdy_server(&planted);
    let whole = Collect(parse_spdy(&run(
        &mut MaskingTap::spdy(detector(), spdy_streams()),
        &[&wire],
    )));
    for cut in 0..=wire.len() {
        let (a, b) = wire.split_at(cut);
        let mut tap = MaskingTap::spdy(detector(), spdy_streams());
        let c = Collect(parse_spdy(&run(&mut tap, &[a, b])));
        assert_eq!(c.bytes_of(3), whole.bytes_of(3), "cut at {cut}");
        assert_eq!(c.bytes_of(1), b"{}");
    }
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    let c = Collect(parse_spdy(&run(
        &mut MaskingTap::spdy(detector(), spdy_streams()),
        &bytes,
    )));
    assert_masked(&c.bytes_of(3), &planted, &body);
}

#[test]
fn idle_flush_lets_held_output_out() {
    let mut tap = MaskingTap::spdy(detector(), spdy_streams());
    let out = run(&mut tap, &[&data(3, false, b"$ echo hello\nhello\n")]);
    assert!(out.is_empty(), "held back while more may come");
    assert!(tap.holds());
    let mut out = BytesMut::new();
    tap.on_idle(&mut out);
    assert!(!tap.holds());
    assert_eq!(out.to_vec(), data(3, false, b"$ echo hello\nhello\n"));
    // The channel goes on after an idle flush.
    let out = run(&mut tap, &[&data(3, true, b"exit\n")]);
    assert_eq!(out, data(3, true, b"exit\n"));
}

#[test]
fn a_secret_arriving_whole_is_masked_even_when_flushed_on_idle() {
    let mut tap = MaskingTap::spdy(detector(), spdy_streams());
    let line = format!("{AWS_KEY}\n");
    run(&mut tap, &[&data(3, false, line.as_bytes())]);
    let mut out = BytesMut::new();
    tap.on_idle(&mut out);
    let c = Collect(parse_spdy(&out));
    assert_eq!(c.bytes_of(3), b"********************\n");
}

#[test]
fn a_reset_stream_gets_its_held_output_first() {
    let mut tap = MaskingTap::spdy(detector(), spdy_streams());
    let out = run(&mut tap, &[&data(3, false, b"partial"), &rst(3)]);
    assert_eq!(out, [data(3, false, b"partial"), rst(3)].concat());
    assert!(!tap.holds());
}

#[test]
fn unknown_spdy_streams_are_masked_too() {
    let mut tap = MaskingTap::spdy(detector(), spdy_streams());
    let line = format!("key {AWS_KEY}\n");
    let out = run(&mut tap, &[&data(99, true, line.as_bytes())]);
    assert_eq!(out, data(99, true, b"key ********************\n"));
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let mut tap = MaskingTap::spdy(detector(), spdy_streams());
    let mut out = BytesMut::new();
    assert!(tap
        .on_chunk(&[0x80, 9, 0, 1, 0, 0, 0, 0], &mut out)
        .is_err());
    let mut tap = MaskingTap::websocket(detector());
    assert!(tap.on_chunk(&[0x83, 0], &mut out).is_err());
}

fn ws_server(planted: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    for p in planted.chunks(100) {
        wire.extend(ws(true, ws_frame::BINARY, &[&[1], p].concat()));
    }
    wire.extend(ws(true, ws_frame::PING, b""));
    wire.extend(ws(true, ws_frame::BINARY, b"\x02warning: none\n"));
    wire.extend(ws(true, ws_frame::BINARY, &[CLOSE_SIGNAL, 1]));
    wire.extend(ws(true, ws_frame::BINARY, b"\x03{}"));
    wire.extend(ws(true, ws_frame::CLOSE, &1000u16.to_be_bytes()));
    wire
}

fn parse_ws(out: &[u8]) -> Vec<Owned> {
    let mut r = WsReader::new(Role::Server);
    let mut c = Collect::default();
    r.feed(out, &mut |e| c.push(e)).expect("output parses");
    assert!(r.at_boundary());
    c.0
}

#[test]
fn websocket_stdout_is_masked_across_messages_and_keeps_its_length() {
    let (planted, body) = planted();
    let wire = ws_server(&planted);
    let events = parse_ws(&run(&mut MaskingTap::websocket(detector()), &[&wire]));
    let c = Collect(events.clone());
    assert_masked(&c.bytes_of(1), &planted, &body);
    assert_eq!(c.bytes_of(2), b"warning: none\n");
    assert_eq!(c.bytes_of(3), b"{}");
    let close = events
        .iter()
        .position(|e| *e == Owned::Close(1, Channel::Stdout))
        .expect("close signal");
    let last_stdout = events
        .iter()
        .rposition(|e| matches!(e, Owned::Data(1, ..)))
        .expect("stdout");
    assert!(last_stdout < close);
    assert!(matches!(
        events.last(),
        Some(Owned::Control(ControlKind::GoAway, _))
    ));
    for cut in 0..=wire.len() {
        let (a, b) = wire.split_at(cut);
        let c = Collect(parse_ws(&run(
            &mut MaskingTap::websocket(detector()),
            &[a, b],
        )));
        assert_masked(&c.bytes_of(1), &planted, &body);
        assert_eq!(c.bytes_of(3), b"{}", "cut at {cut}");
    }
}

#[test]
fn websocket_farewell_says_why_on_the_error_channel_and_closes() {
    let mut tap = MaskingTap::websocket(detector());
    let mut out = BytesMut::new();
    tap.on_chunk(&ws(true, ws_frame::BINARY, b"\x01held"), &mut out)
        .expect("tap");
    assert!(tap.on_chunk(&[0xc2, 0], &mut out).is_err());
    let reason = "x".repeat(300);
    tap.farewell(&reason, &mut out);
    let events = parse_ws(&out);
    let c = Collect(events.clone());
    assert_eq!(c.bytes_of(1), b"held");
    let status: serde_json::Value = serde_json::from_slice(&c.bytes_of(3)).expect("status json");
    assert_eq!(status["status"], "Failure");
    assert!(status["message"]
        .as_str()
        .is_some_and(|m| m.contains("stream closed by Custos")));
    match events.last() {
        Some(Owned::Control(ControlKind::GoAway, raw)) => {
            assert!(raw.len() <= 127);
            assert_eq!(
                &raw[2..4],
                &1000u16.to_be_bytes(),
                "a normal closure: clients read the Status"
            );
        }
        other => panic!("no close frame: {other:?}"),
    }
}

#[test]
fn the_upgrade_answer_selects_the_wire() {
    assert_eq!(wire(Some("SPDY/3.1"), None), Wire::Spdy);
    assert_eq!(
        wire(Some("websocket"), Some("v5.channel.k8s.io")),
        Wire::WebSocket
    );
    assert_eq!(
        wire(Some("WebSocket"), Some("v4.channel.k8s.io")),
        Wire::WebSocket
    );
    for (u, p) in [
        (Some("websocket"), Some("base64.channel.k8s.io")),
        (Some("websocket"), Some("v4.base64.channel.k8s.io")),
        (Some("websocket"), None),
        (Some("websocket"), Some("SPDY/3.1+portforward.k8s.io")),
        (Some("h2c"), None),
        (None, None),
    ] {
        assert!(matches!(wire(u, p), Wire::Unmaskable(_)), "{u:?} {p:?}");
    }
    match wire(Some("websocket"), Some("base64.channel.k8s.io")) {
        Wire::Unmaskable(why) => assert!(why.contains("v5.channel.k8s.io"), "{why}"),
        w => panic!("{w:?}"),
    }
}

#[test]
fn held_channels_are_bounded() {
    let mut tap = MaskingTap::spdy(detector(), spdy_streams());
    let mut out = BytesMut::new();
    let mut result = Ok(());
    for id in 0..=crate::spdy::MAX_STREAMS as u32 {
        result = tap.on_chunk(&data(2 * id + 101, false, b"x"), &mut out);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(
        result,
        Err(StreamError::TooManyStreams(crate::spdy::MAX_STREAMS))
    );
}

#[test]
fn a_secret_cut_by_an_idle_flush_stays_masked() {
    let mut tap = MaskingTap::spdy(detector(), spdy_streams());
    let mut out = BytesMut::from(&run(&mut tap, &[&data(3, false, b"$ echo AKIAIOSFOD")])[..]);
    tap.on_idle(&mut out);
    out.extend_from_slice(&run(&mut tap, &[&data(3, true, b"NN7EXAMPLE\n$ ")]));
    let c = Collect(parse_spdy(&out));
    let text = String::from_utf8_lossy(&c.bytes_of(3)).into_owned();
    assert_eq!(text.len(), "$ echo AKIAIOSFODNN7EXAMPLE\n$ ".len());
    assert!(text.starts_with("$ echo "), "{text}");
    assert!(
        !text.contains("AKIAIOSFOD") && !text.contains("NN7EXAMPLE"),
        "{text}"
    );
}

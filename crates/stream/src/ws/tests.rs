use super::frame::{self, FrameDecoder, MAX_FRAME};
use super::*;
use crate::testutil::{ws, ws_masked, Collect, Owned};

fn read_all(reader: &mut WsReader, chunks: &[&[u8]]) -> Result<Vec<Owned>, StreamError> {
    let mut c = Collect::default();
    for chunk in chunks {
        reader.feed(chunk, &mut |e| c.push(e))?;
    }
    Ok(c.0)
}

/// What a v5 server sends for `cat`: stdout (one fragmented message), stderr, close signal, status.
fn server_side() -> Vec<u8> {
    let mut wire = ws(true, frame::BINARY, b"\x01hello ");
    wire.extend(ws(false, frame::BINARY, b"\x01wor"));
    wire.extend(ws(false, frame::CONTINUATION, b"ld"));
    wire.extend(ws(true, frame::PING, b"p"));
    wire.extend(ws(true, frame::CONTINUATION, b"\n"));
    wire.extend(ws(true, frame::BINARY, b"\x02oops\n"));
    wire.extend(ws(true, frame::BINARY, &[CLOSE_SIGNAL, 1]));
    wire.extend(ws(
        true,
        frame::BINARY,
        &[b"\x03".as_slice(), br#"{"status":"Success"}"#].concat(),
    ));
    wire.extend(ws(true, frame::CLOSE, &1000u16.to_be_bytes()));
    wire
}

#[test]
fn channel_messages_become_events() {
    let events = read_all(&mut WsReader::new(Role::Server), &[&server_side()]).expect("parses");
    let mut c = Collect(events.clone());
    assert_eq!(c.bytes_of(1), b"hello world\n");
    assert_eq!(c.bytes_of(2), b"oops\n");
    assert!(events.contains(&Owned::Close(1, Channel::Stdout)));
    assert!(events.contains(&Owned::Control(
        ControlKind::Ping,
        ws(true, frame::PING, b"p")
    )));
    assert!(matches!(
        events.last(),
        Some(Owned::Control(ControlKind::GoAway, _))
    ));
    c.0.retain(|e| matches!(e, Owned::Data(3, ..)));
    assert_eq!(c.0.len(), 1);
}

#[test]
fn frames_split_at_every_byte_boundary_give_the_same_events() {
    let wire = server_side();
    let whole = read_all(&mut WsReader::new(Role::Server), &[&wire]).expect("parses");
    let norm = |e: Vec<Owned>| {
        let mut c = Collect::default();
        for o in e {
            match o {
                Owned::Data(s, ch, b, fin) => c
                    .push(crate::Event::Data {
                        stream: s,
                        channel: ch,
                        bytes: &b,
                        fin,
                    })
                    .expect("push"),
                other => c.0.push(other),
            }
        }
        c.0
    };
    for cut in 0..=wire.len() {
        let (a, b) = wire.split_at(cut);
        let mut r = WsReader::new(Role::Server);
        let got = read_all(&mut r, &[a, b]).expect("parses");
        assert_eq!(norm(got), norm(whole.clone()), "cut at {cut}");
        assert!(r.at_boundary());
    }
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    let got = read_all(&mut WsReader::new(Role::Server), &bytes).expect("parses");
    assert_eq!(norm(got), norm(whole));
}

#[test]
fn client_frames_are_unmasked() {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut wire = ws_masked(true, frame::BINARY, b"\x00echo hi\n", key);
    wire.extend(ws_masked(true, frame::BINARY, b"\x04{\"Width\":80}", key));
    wire.extend(ws_masked(true, frame::PONG, b"p", key));
    for cut in 0..=wire.len() {
        let (a, b) = wire.split_at(cut);
        let mut c = Collect(read_all(&mut WsReader::new(Role::Client), &[a, b]).expect("parses"));
        assert_eq!(c.bytes_of(0), b"echo hi\n", "cut at {cut}");
        assert_eq!(c.bytes_of(4), b"{\"Width\":80}", "cut at {cut}");
        c.0.retain(|e| matches!(e, Owned::Control(..)));
        assert_eq!(
            c.0,
            [Owned::Control(
                ControlKind::Pong,
                ws_masked(true, frame::PONG, b"p", key)
            )]
        );
    }
}

#[test]
fn a_fragmented_message_from_the_client_is_refused() {
    // The apiserver reads each frame's first byte as its channel: `[4]` then `[0]rm -rf` would be a
    // resize to a reader of messages, and stdin to the apiserver.
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut wire = ws_masked(false, frame::BINARY, b"\x04", key);
    wire.extend(ws_masked(
        true,
        frame::CONTINUATION,
        b"\x00rm -rf /data\n",
        key,
    ));
    let err = read_all(&mut WsReader::new(Role::Client), &[&wire]).expect_err("refused");
    assert!(err.to_string().contains("fragmented"), "{err}");
    // From the server, a fragmented message is followed (client libraries read messages).
    let mut wire = ws(false, frame::BINARY, b"\x01hel");
    wire.extend(ws(true, frame::CONTINUATION, b"lo"));
    let c = Collect(read_all(&mut WsReader::new(Role::Server), &[&wire]).expect("parses"));
    assert_eq!(c.bytes_of(1), b"hello");
}

#[test]
fn masking_must_match_the_sender() {
    let masked = ws_masked(true, frame::BINARY, b"\x01x", [1, 2, 3, 4]);
    let plain = ws(true, frame::BINARY, b"\x01x");
    assert_eq!(
        read_all(&mut WsReader::new(Role::Server), &[&masked]),
        Err(StreamError::WsMasking("server"))
    );
    assert_eq!(
        read_all(&mut WsReader::new(Role::Client), &[&plain]),
        Err(StreamError::WsMasking("client"))
    );
}

#[test]
fn a_fragmented_message_may_bring_its_channel_byte_later() {
    let mut wire = ws(false, frame::BINARY, b"");
    wire.extend(ws(true, frame::CONTINUATION, b"\x02late"));
    let c = Collect(read_all(&mut WsReader::new(Role::Server), &[&wire]).expect("parses"));
    assert_eq!(c.bytes_of(2), b"late");
}

#[test]
fn an_empty_binary_message_is_passed_as_control() {
    let wire = ws(true, frame::BINARY, b"");
    assert_eq!(
        read_all(&mut WsReader::new(Role::Server), &[&wire]).expect("parses"),
        [Owned::Control(ControlKind::Empty, wire)]
    );
}

#[test]
fn malformed_frames_are_errors_not_panics() {
    let mut long = vec![0x82, 127];
    long.extend_from_slice(&(MAX_FRAME + 1).to_be_bytes());
    let mut huge = vec![0x82, 127];
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    let mut text = vec![0x81, 127];
    text.extend_from_slice(&(frame::MAX_TEXT as u64 + 1).to_be_bytes());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0xc2, 0], "reserved bit"),
        (vec![0x83, 0], "unknown opcode"),
        (vec![0x09, 0], "fragmented ping"),
        (vec![0x89, 126, 0, 126], "ping too long"),
        (long, "frame too long"),
        (huge, "64-bit length"),
        (text, "text too long"),
        (vec![0x01, 1, b'a'], "fragmented text"),
        (vec![0x80, 1, 1], "continuation outside a message"),
        (
            [
                ws(false, frame::BINARY, b"\x01a"),
                ws(true, frame::BINARY, b"\x01b"),
            ]
            .concat(),
            "binary inside a fragmented message",
        ),
        (
            [
                ws(false, frame::BINARY, b"\x01a"),
                ws(true, frame::TEXT, b"b"),
            ]
            .concat(),
            "text inside a fragmented message",
        ),
        (
            ws(true, frame::BINARY, &[CLOSE_SIGNAL, 1, 2]),
            "close signal too long",
        ),
        (
            ws(true, frame::BINARY, &[CLOSE_SIGNAL]),
            "close signal without channel",
        ),
    ];
    for (wire, what) in cases {
        let r = read_all(&mut WsReader::new(Role::Server), &[&wire]);
        assert!(r.is_err(), "{what}: {r:?}");
    }
}

#[test]
fn an_oversized_length_is_refused_from_the_header() {
    let mut d = FrameDecoder::new(Role::Server);
    let mut header = vec![0x82, 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    let err = d.decode(&header, &mut |_| Ok(())).expect_err("refused");
    assert!(matches!(err, StreamError::TooLarge { .. }), "{err:?}");
}

#[test]
fn channel_subprotocols_are_recognised() {
    for p in ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"] {
        assert!(is_channel_protocol(p), "{p}");
    }
    for p in [
        "base64.channel.k8s.io",
        "v4.base64.channel.k8s.io",
        "SPDY/3.1+portforward.k8s.io",
        "",
    ] {
        assert!(!is_channel_protocol(p), "{p}");
    }
}

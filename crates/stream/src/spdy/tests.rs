use super::frame::{self, FrameDecoder, Part, MAX_CONTROL};
use super::headers::{HeaderDeflater, HeaderInflater, MAX_HEADER_BLOCK};
use super::*;
use crate::testutil::{control, data, rst, syn_reply, syn_stream, Collect, Owned};

/// The client side of an exec: five SYN_STREAMs (one zlib stream), stdin data, resize data.
fn client_side() -> Vec<u8> {
    let mut z = HeaderDeflater::new().expect("deflater");
    let mut wire = Vec::new();
    for (id, t) in [
        (1, "error"),
        (3, "stdin"),
        (5, "stdout"),
        (7, "stderr"),
        (9, "resize"),
    ] {
        wire.extend(syn_stream(&mut z, id, t));
    }
    wire.extend(data(3, false, b"ls -l\n"));
    wire.extend(data(9, false, br#"{"Width":80,"Height":24}"#));
    wire.extend(data(3, true, b""));
    wire
}

fn read_all(reader: &mut SpdyReader, chunks: &[&[u8]]) -> Result<Vec<Owned>, StreamError> {
    let mut c = Collect::default();
    for chunk in chunks {
        reader.feed(chunk, &mut |e| c.push(e))?;
    }
    Ok(c.0)
}

#[test]
fn header_blocks_of_several_syn_streams_inflate_with_one_zlib_stream() {
    let wire = client_side();
    let mut r = SpdyReader::new(Sender::Client, Streams::new());
    let events = read_all(&mut r, &[&wire]).expect("parses");
    let opened: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Owned::Open(id, ch, _) => Some((*id, *ch)),
            _ => None,
        })
        .collect();
    assert_eq!(
        opened,
        [
            (1, Channel::Error),
            (3, Channel::Stdin),
            (5, Channel::Stdout),
            (7, Channel::Stderr),
            (9, Channel::Resize)
        ]
    );
    assert!(events.contains(&Owned::Data(3, Channel::Stdin, b"ls -l\n".to_vec(), false)));
    assert!(events.contains(&Owned::Data(3, Channel::Stdin, Vec::new(), true)));
    assert_eq!(r.streams().channel(5), Channel::Stdout);
}

#[test]
fn frames_split_at_every_byte_boundary_give_the_same_events() {
    let wire = client_side();
    let whole = read_all(
        &mut SpdyReader::new(Sender::Client, Streams::new()),
        &[&wire],
    )
    .expect("parses");
    for cut in 0..=wire.len() {
        let (a, b) = wire.split_at(cut);
        let mut r = SpdyReader::new(Sender::Client, Streams::new());
        assert_eq!(
            read_all(&mut r, &[a, b]).expect("parses"),
            whole,
            "cut at {cut}"
        );
        assert!(r.at_boundary());
    }
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    let mut r = SpdyReader::new(Sender::Client, Streams::new());
    assert_eq!(read_all(&mut r, &bytes).expect("parses"), whole);
}

#[test]
fn the_server_direction_learns_channels_from_the_client_direction() {
    let streams = Streams::new();
    let mut client = SpdyReader::new(Sender::Client, streams.clone());
    read_all(&mut client, &[&client_side()]).expect("client side");
    let mut z = HeaderDeflater::new().expect("deflater");
    let mut wire = syn_reply(&mut z, 5);
    wire.extend(syn_reply(&mut z, 7));
    wire.extend(data(5, false, b"out"));
    wire.extend(data(7, true, b"err"));
    wire.extend(data(11, false, b"never opened"));
    let mut server = SpdyReader::new(Sender::Server, streams);
    let events = read_all(&mut server, &[&wire]).expect("server side");
    assert_eq!(
        &events[2..],
        [
            Owned::Data(5, Channel::Stdout, b"out".to_vec(), false),
            Owned::Data(7, Channel::Stderr, b"err".to_vec(), true),
            Owned::Data(11, Channel::Unknown, b"never opened".to_vec(), false),
        ]
    );
}

#[test]
fn streams_are_forgotten_when_reset_or_closed_by_both_ends() {
    let streams = Streams::new();
    let mut client = SpdyReader::new(Sender::Client, streams.clone());
    read_all(&mut client, &[&client_side()]).expect("client side");
    assert_eq!(streams.len(), 5);
    let mut server = SpdyReader::new(Sender::Server, streams.clone());
    read_all(&mut server, &[&data(3, true, b""), &rst(5)]).expect("server side");
    assert_eq!(streams.channel(3), Channel::Unknown);
    assert_eq!(streams.channel(5), Channel::Unknown);
    assert_eq!(streams.len(), 3);
}

#[test]
fn a_header_block_from_another_zlib_stream_fails_closed() {
    let mut z = HeaderDeflater::new().expect("deflater");
    let mut wire = syn_stream(&mut z, 1, "stdout");
    // A second block compressed by a fresh context (as if a block had been skipped) must not parse.
    let mut fresh = HeaderDeflater::new().expect("deflater");
    wire.extend(syn_stream(&mut fresh, 3, "stderr"));
    let err = read_all(
        &mut SpdyReader::new(Sender::Client, Streams::new()),
        &[&wire],
    )
    .expect_err("refused");
    assert!(
        matches!(err, StreamError::Inflate(_) | StreamError::Malformed(_)),
        "{err:?}"
    );
}

#[test]
fn garbage_header_blocks_are_errors() {
    let mut payload = 1u32.to_be_bytes().to_vec();
    payload.extend_from_slice(&[0; 6]);
    payload.extend_from_slice(b"not zlib at all");
    let err = read_all(
        &mut SpdyReader::new(Sender::Client, Streams::new()),
        &[&control(frame::SYN_STREAM, 0, &payload)],
    )
    .expect_err("refused");
    assert!(matches!(err, StreamError::Inflate(_)), "{err:?}");
}

#[test]
fn an_inflated_header_block_is_bounded() {
    let big = "a".repeat(MAX_HEADER_BLOCK + 1);
    let mut z = HeaderDeflater::new().expect("deflater");
    let block = z.deflate(&[("streamtype", &big)]).expect("deflate");
    assert!(block.len() < MAX_CONTROL);
    let mut inflater = HeaderInflater::new();
    assert!(matches!(
        inflater.inflate(&block),
        Err(StreamError::TooLarge { .. })
    ));
}

#[test]
fn a_header_count_beyond_the_block_is_malformed() {
    let mut block = u32::MAX.to_be_bytes().to_vec();
    block.extend_from_slice(&[0; 8]);
    assert_eq!(
        headers::parse_block(&block),
        Err(StreamError::Malformed("SPDY header block count"))
    );
    assert!(headers::parse_block(&[0, 0, 0, 1, 0, 0, 0, 9, b'x']).is_err());
    assert!(headers::parse_block(&[0, 0]).is_err());
}

#[test]
fn malformed_frames_are_errors_not_panics() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0x80, 2, 0, 1, 0, 0, 0, 0], "version 2"),
        (vec![0, 0, 0, 0, 0, 0, 0, 1, 0], "data on stream 0"),
        (
            control(frame::SYN_STREAM, 0, &[0, 0, 0, 1]),
            "short SYN_STREAM",
        ),
        (
            control(frame::SYN_STREAM, 0, &[0; 10]),
            "SYN_STREAM on stream 0",
        ),
        (
            control(frame::RST_STREAM, 0, &[0, 0, 0, 1, 0]),
            "RST length",
        ),
        (control(frame::SYN_REPLY, 0, &[0, 0]), "short SYN_REPLY"),
    ];
    for (wire, what) in cases {
        let r = read_all(
            &mut SpdyReader::new(Sender::Client, Streams::new()),
            &[&wire],
        );
        assert!(r.is_err(), "{what}: {r:?}");
    }
}

#[test]
fn oversized_control_frames_are_refused_from_their_header() {
    // Only the 8-byte header is given: the refusal must not wait for (or allocate) the payload.
    let mut d = FrameDecoder::new();
    let header = frame::control_header(frame::SETTINGS, 0, MAX_CONTROL + 1);
    let err = d.decode(&header, &mut |_| Ok(())).expect_err("refused");
    assert!(matches!(err, StreamError::TooLarge { .. }), "{err:?}");
}

#[test]
fn a_large_data_frame_streams_in_pieces() {
    let mut d = FrameDecoder::new();
    let mut header = vec![0, 0, 0, 5, frame::FLAG_FIN];
    header.extend_from_slice(&(frame::MAX_PAYLOAD as u32).to_be_bytes()[1..]);
    let mut seen = 0usize;
    let mut fins = 0;
    let mut f = |p: Part<'_>| {
        if let Part::Data { bytes, fin, .. } = p {
            seen += bytes.len();
            fins += usize::from(fin);
        }
        Ok(())
    };
    d.decode(&header, &mut f).expect("header");
    let piece = vec![7u8; 64 * 1024];
    for _ in 0..frame::MAX_PAYLOAD / piece.len() {
        d.decode(&piece, &mut f).expect("piece");
    }
    d.decode(&piece[..frame::MAX_PAYLOAD % piece.len()], &mut f)
        .expect("last");
    assert_eq!((seen, fins), (frame::MAX_PAYLOAD, 1));
    assert!(d.at_boundary());
}

#[test]
fn port_forward_streams_carry_their_port() {
    assert_eq!(
        Channel::from_stream_type(Some(b"data"), Some(b"8080")),
        Channel::PortData(8080)
    );
    assert_eq!(
        Channel::from_stream_type(Some(b"error"), Some(b"8080")),
        Channel::PortError(8080)
    );
    assert_eq!(
        Channel::from_stream_type(Some(b"error"), None),
        Channel::Error
    );
    assert_eq!(Channel::from_stream_type(None, None), Channel::Unknown);
}

#[test]
fn a_header_value_is_read_up_to_its_first_nul_as_go_reads_it() {
    let headers = vec![
        (b"streamtype".to_vec(), b"data\0stdout".to_vec()),
        (b"port".to_vec(), b"8080\0".to_vec()),
    ];
    let get = |name| super::headers::get(&headers, name);
    assert_eq!(get("streamType"), Some(&b"data"[..]));
    assert_eq!(
        Channel::from_stream_type(get("streamtype"), get("port")),
        Channel::PortData(8080),
        "the kubelet sees a data stream on port 8080; so must Custos"
    );
}

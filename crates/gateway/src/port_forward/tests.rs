//! Port-forward connections through the real relay: one opened and one closed record each, with the
//! port and the bytes each way, over SPDY and over SPDY tunnelled in WebSocket.

use std::time::Duration;

use bytes::BytesMut;
use custos_stream::spdy::frame::{control_header, write_data, SYN_REPLY, SYN_STREAM};
use custos_stream::spdy::headers::HeaderDeflater;
use custos_stream::ws::frame::{unmask, write_frame, BINARY};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use custos_store::LogStore as _;

use super::*;
use crate::relay::relay;
use crate::stream_record::tests::{recorder, records, request};

fn syn_stream(z: &mut HeaderDeflater, id: u32, headers: &[(&str, &str)]) -> Vec<u8> {
    let block = z.deflate(headers).expect("deflate");
    let mut payload = id.to_be_bytes().to_vec();
    payload.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    payload.extend_from_slice(&block);
    let mut f = control_header(SYN_STREAM, 0, payload.len()).to_vec();
    f.extend_from_slice(&payload);
    f
}

fn syn_reply(z: &mut HeaderDeflater, id: u32) -> Vec<u8> {
    let block = z.deflate(&[]).expect("deflate");
    let mut payload = id.to_be_bytes().to_vec();
    payload.extend_from_slice(&block);
    let mut f = control_header(SYN_REPLY, 0, payload.len()).to_vec();
    f.extend_from_slice(&payload);
    f
}

fn data(id: u32, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    write_data(id, payload, fin, &mut out);
    out.to_vec()
}

/// A client RST_STREAM for `id` (status 5, CANCEL).
fn rst(id: u32) -> Vec<u8> {
    let mut f = control_header(custos_stream::spdy::frame::RST_STREAM, 0, 8).to_vec();
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&5u32.to_be_bytes());
    f
}

/// SPDY bytes inside one WebSocket binary message (masked when the client sends it).
fn tunnelled(bytes: &[u8], client: bool) -> Vec<u8> {
    let mut plain = BytesMut::new();
    write_frame(true, BINARY, &[bytes], &mut plain);
    if !client {
        return plain.to_vec();
    }
    let header = plain.len() - bytes.len();
    let key = [9, 8, 7, 6];
    let mut out = plain[..header].to_vec();
    out[1] |= 0x80;
    out.extend_from_slice(&key);
    let mut body = bytes.to_vec();
    unmask(&mut body, key, 0);
    out.extend_from_slice(&body);
    out
}

type Relay =
    tokio::task::JoinHandle<(std::io::Result<RelayTotals>, PortForwardTap, PortForwardTap)>;

/// Relays through the taps between two in-memory pipes: the client's end, the server's end, the relay.
fn run(
    mut up: PortForwardTap,
    mut down: PortForwardTap,
) -> (tokio::io::DuplexStream, tokio::io::DuplexStream, Relay) {
    let (client_side, client) = tokio::io::duplex(1 << 20);
    let (upstream_side, server) = tokio::io::duplex(1 << 20);
    let task = tokio::spawn(async move {
        let r = relay(
            client_side,
            upstream_side,
            &mut up,
            &mut down,
            Duration::from_millis(25),
        )
        .await;
        (r, up, down)
    });
    (client, server, task)
}

async fn two_connections(wire: PortForwardWire) {
    let tmp = tempfile::tempdir().expect("tmp");
    let (recorder, store) = recorder(tmp.path()).await;
    let req = request("pf-1", "portforward");
    let (pf, up, down) = PortForwards::start(&recorder, &req, &wire, None);
    let (mut client, mut server, task) = run(up, down);
    let tunnel = wire == PortForwardWire::Tunnel;
    let wrap = |b: Vec<u8>, client: bool| if tunnel { tunnelled(&b, client) } else { b };
    let (mut cz, mut sz) = (
        HeaderDeflater::new().expect("z"),
        HeaderDeflater::new().expect("z"),
    );
    let mut sent = Vec::new();
    for (data_id, error_id, request_id) in [(3u32, 1u32, "0"), (7, 5, "1")] {
        sent.extend(syn_stream(
            &mut cz,
            error_id,
            &[
                ("streamtype", "error"),
                ("port", "8080"),
                ("requestid", request_id),
            ],
        ));
        sent.extend(syn_stream(
            &mut cz,
            data_id,
            &[
                ("streamtype", "data"),
                ("port", "8080"),
                ("requestid", request_id),
            ],
        ));
    }
    sent.extend(data(3, true, &[1u8; 10]));
    sent.extend(data(7, true, &[2u8; 3000]));
    client.write_all(&wrap(sent, true)).await.expect("client");
    let mut replies = Vec::new();
    for id in [1, 3, 5, 7] {
        replies.extend(syn_reply(&mut sz, id));
    }
    replies.extend(data(3, true, &[1u8; 10]));
    replies.extend(data(7, false, &[2u8; 3000]));
    replies.extend(data(7, true, &[2u8; 1000]));
    server
        .write_all(&wrap(replies, false))
        .await
        .expect("server");
    let mut buf = vec![0u8; 1 << 16];
    let _ = tokio::time::timeout(Duration::from_millis(300), client.read(&mut buf)).await;
    drop((client, server));
    let (outcome, up, down) = task.await.expect("join");
    pf.finish(&outcome).await;
    drop((pf, up, down));
    assert!(
        recorder.flush(Duration::from_secs(5)).await,
        "records written"
    );
    let records = records(&store).await;
    let of = |kind: RecordKind| -> Vec<PortForward> {
        records
            .iter()
            .filter(|r| r.custos.record_kind == kind)
            .filter_map(|r| r.custos.port_forward.clone())
            .collect()
    };
    assert_eq!(of(RecordKind::PortForwardOpened).len(), 2, "{records:?}");
    let mut closed = of(RecordKind::PortForwardClosed);
    closed.sort_by_key(|p| p.bytes_in);
    assert_eq!(
        closed,
        [
            PortForward {
                port: 8080,
                bytes_in: 10,
                bytes_out: 10
            },
            PortForward {
                port: 8080,
                bytes_in: 3000,
                bytes_out: 4000
            },
        ]
    );
    assert!(records
        .iter()
        .all(|r| r.audit_id.as_deref() == Some("pf-1")));
}

#[tokio::test]
async fn spdy_port_forward_connections_are_recorded_with_port_and_bytes() {
    two_connections(PortForwardWire::Spdy).await;
}

#[tokio::test]
async fn tunnelled_port_forward_connections_are_recorded_with_port_and_bytes() {
    two_connections(PortForwardWire::Tunnel).await;
}

#[test]
fn the_wire_is_read_from_the_answer_headers() {
    assert_eq!(
        PortForwardWire::of(Some("SPDY/3.1"), None, ""),
        PortForwardWire::Spdy
    );
    assert_eq!(
        PortForwardWire::of(Some("websocket"), Some("SPDY/3.1+portforward.k8s.io"), ""),
        PortForwardWire::Tunnel
    );
    assert_eq!(
        PortForwardWire::of(
            Some("websocket"),
            Some("v4.channel.k8s.io"),
            "ports=8080&ports=9090"
        ),
        PortForwardWire::Legacy(vec![8080, 9090])
    );
    assert_eq!(
        PortForwardWire::of(Some("h2c"), None, "ports=81"),
        PortForwardWire::Opaque(81)
    );
}

/// A SPDY port-forward with payload capture, relayed: the client's and the server's ends.
struct Captured {
    tmp: tempfile::TempDir,
    recorder: Recorder,
    store: Arc<custos_store_sqlite::SqliteStore>,
    pf: Arc<PortForwards>,
    client: tokio::io::DuplexStream,
    server: tokio::io::DuplexStream,
    task: Relay,
}

async fn captured(audit_id: &str) -> Captured {
    captured_on(audit_id, &PortForwardWire::Spdy).await
}

/// A port-forward with payload capture on `wire`, relayed.
async fn captured_on(audit_id: &str, wire: &PortForwardWire) -> Captured {
    let tmp = tempfile::tempdir().expect("tmp");
    let (recorder, store) = recorder(tmp.path()).await;
    let req = request(audit_id, "portforward");
    let parts = http::Request::builder()
        .uri("/api/v1/namespaces/ns/pods/toolbox/portforward?ports=8080")
        .header("upgrade", "SPDY/3.1")
        .body(())
        .expect("request")
        .into_parts()
        .0;
    let detector = crate::stream_record::tests::detector();
    let capture = Capture::open(&recorder, detector, &parts, &req)
        .await
        .expect("capture opens");
    let (pf, up, down) = PortForwards::start(&recorder, &req, wire, Some(capture));
    let (client, server, task) = run(up, down);
    Captured {
        tmp,
        recorder,
        store,
        pf,
        client,
        server,
        task,
    }
}

/// Opens connection 3 (port 8080) from the client, the server replying.
async fn open_connection(c: &mut Captured) -> (HeaderDeflater, HeaderDeflater) {
    open_typed(c, "data").await
}

/// Like [`open_connection`], with stream 3's `streamtype` header given.
async fn open_typed(c: &mut Captured, stream_type: &str) -> (HeaderDeflater, HeaderDeflater) {
    let (mut cz, mut sz) = (
        HeaderDeflater::new().expect("z"),
        HeaderDeflater::new().expect("z"),
    );
    let mut sent = syn_stream(
        &mut cz,
        1,
        &[
            ("streamtype", "error"),
            ("port", "8080"),
            ("requestid", "0"),
        ],
    );
    sent.extend(syn_stream(
        &mut cz,
        3,
        &[
            ("streamtype", stream_type),
            ("port", "8080"),
            ("requestid", "0"),
        ],
    ));
    c.client.write_all(&sent).await.expect("client");
    let mut replies = syn_reply(&mut sz, 1);
    replies.extend(syn_reply(&mut sz, 3));
    c.server.write_all(&replies).await.expect("server");
    (cz, sz)
}

#[tokio::test]
async fn captured_payloads_are_recorded_masked_per_connection_and_verify_against_the_log() {
    let mut c = captured("pf-cap").await;
    open_connection(&mut c).await;
    let asked = b"GET /config HTTP/1.1\r\nAuthorization: token=ghp_0123456789abcdefghijABCDEFGHIJ012345\r\n\r\n";
    let answer = b"HTTP/1.1 200 OK\r\n\r\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n";
    c.client
        .write_all(&data(3, true, asked))
        .await
        .expect("client");
    c.server
        .write_all(&data(3, true, answer))
        .await
        .expect("server");
    // The live bytes pass unchanged: the pod's answer reaches the client as sent.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while !got.windows(20).any(|w| w == b"AKIAIOSFODNN7EXAMPLE") {
        let n = tokio::time::timeout(Duration::from_secs(5), c.client.read(&mut buf))
            .await
            .expect("answer arrives")
            .expect("read");
        assert!(n > 0, "stream ended early");
        got.extend_from_slice(&buf[..n]);
    }
    let e = end(c).await;
    assert_eq!(e.connections, [3], "the connection is the data stream");
    let (to_pod, from_pod) = (e.to_pod, e.from_pod);
    assert_eq!(to_pod.len(), asked.len(), "length-preserving");
    assert_eq!(from_pod.len(), answer.len(), "length-preserving");
    let text = String::from_utf8_lossy(&to_pod) + String::from_utf8_lossy(&from_pod);
    assert!(text.contains("GET /config HTTP/1.1") && text.contains("HTTP/1.1 200 OK"));
    assert!(!text.contains("ghp_0123456789"), "{text}");
    assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
    let raw = String::from_utf8_lossy(&e.raw);
    assert!(!raw.contains("AKIAIOSFODNN7EXAMPLE") && !raw.contains("ghp_0123456789"));
    let closed = e
        .records
        .iter()
        .find(|r| r.custos.record_kind == RecordKind::StreamClosed)
        .expect("stream-closed record");
    let channel_bytes = |c: &str| {
        closed
            .custos
            .streams
            .iter()
            .find(|s| s.channel.as_deref() == Some(c))
            .map(|s| s.bytes)
    };
    assert_eq!(channel_bytes("to-pod"), Some(asked.len() as u64));
    assert_eq!(channel_bytes("from-pod"), Some(answer.len() as u64));
}

#[test]
fn payload_capture_follows_any_deciding_permit_that_asks() {
    let decision = |annotations: &[(&str, &str)]| DecisionRecord {
        outcome: custos_audit::record::Outcome::Allow,
        policy_ids: vec!["a".into(), "b".into()],
        reason: None,
        annotations: annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    assert!(!captures_payload(None));
    assert!(!captures_payload(Some(&decision(&[("a/reason", "x")]))));
    assert!(captures_payload(Some(&decision(&[
        ("a/reason", "x"),
        ("b/capture", "payload")
    ]))));
    assert!(!captures_payload(Some(&decision(&[("b/capture", "nope")]))));
    assert!(!captures_payload(Some(&decision(&[(
        "b/no-capture",
        "payload"
    )]))));
}

#[tokio::test]
async fn a_capture_that_cannot_be_recorded_closes_the_port_forward() {
    let mut c = captured("pf-fail").await;
    open_connection(&mut c).await;
    // The audit log goes away: the next chunk record cannot be appended.
    c.store.close().await;
    let big = vec![b'x'; 60_000];
    for _ in 0..3 {
        if c.server.write_all(&data(3, false, &big)).await.is_err() {
            break;
        }
    }
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(500), c.client.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.len() < 3 * big.len(),
        "{} bytes forwarded past the failure",
        got.len()
    );
    let (outcome, _, _) = c.task.await.expect("join");
    let err = outcome.expect_err("the stream was closed");
    assert!(
        err.to_string().contains("audit log") || err.to_string().contains("recording"),
        "{err}"
    );
    c.pf.finish(&Err(err)).await;
    drop(c.tmp);
}

/// What a finished captured port-forward left.
struct Ended {
    records: Vec<Record>,
    outcome: std::io::Result<RelayTotals>,
    /// The recording's bytes each way (its `fi` / `fo` events, decoded).
    to_pod: Vec<u8>,
    from_pod: Vec<u8>,
    /// The connections its events name.
    connections: Vec<u32>,
    /// The recording file.
    raw: Vec<u8>,
}

/// Lets the relay run a moment, ends it, finishes the port-forward, and checks the recording against
/// its chunk records (strictly: every recorded byte sealed).
async fn end(c: Captured) -> Ended {
    let Captured {
        tmp,
        recorder,
        store,
        pf,
        mut client,
        server,
        task,
    } = c;
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(300), client.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
    }
    drop((client, server));
    let (outcome, up, down) = task.await.expect("join");
    pf.finish(&outcome).await;
    drop((pf, up, down));
    assert!(
        recorder.flush(Duration::from_secs(5)).await,
        "records written"
    );
    let records = records(&store).await;
    let closed = records
        .iter()
        .find(|r| r.custos.record_kind == RecordKind::StreamClosed)
        .expect("stream-closed record");
    let name = closed.custos.streams[0].recording.clone();
    let path = tmp.path().join("recordings").join(&name);
    custos_recording::verify(&path, &custos_recording::chunks_of(&records, &name))
        .expect("every recorded byte is sealed and verifies");
    let rec = custos_recording::Recording::read(&path).expect("reads");
    let (mut to_pod, mut from_pod, mut connections) = (Vec::new(), Vec::new(), Vec::new());
    for e in &rec.events {
        let (conn, bytes) = e.forwarded_bytes().expect("a port-forward event");
        if !connections.contains(&conn) {
            connections.push(conn);
        }
        if e.code == custos_recording::Code::ToPod {
            to_pod.extend(bytes);
        } else {
            from_pod.extend(bytes);
        }
    }
    Ended {
        records,
        outcome,
        to_pod,
        from_pod,
        connections,
        raw: std::fs::read(&path).expect("file"),
    }
}

#[tokio::test]
async fn a_stream_type_with_a_nul_is_followed_as_the_kubelet_reads_it() {
    let mut c = captured("pf-nul").await;
    open_typed(&mut c, "data\0stdout").await;
    c.client
        .write_all(&data(3, true, b"TO-POD"))
        .await
        .expect("client");
    c.server
        .write_all(&data(3, true, b"FROM-POD"))
        .await
        .expect("server");
    let Ended {
        records,
        to_pod,
        from_pod,
        ..
    } = end(c).await;
    assert_eq!(
        (to_pod.as_slice(), from_pod.as_slice()),
        (&b"TO-POD"[..], &b"FROM-POD"[..])
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| r.custos.record_kind == RecordKind::PortForwardOpened)
            .count(),
        1
    );
}

#[tokio::test]
async fn bytes_the_pod_sends_after_the_client_reset_the_stream_are_captured() {
    let mut c = captured("pf-rst").await;
    open_connection(&mut c).await;
    c.client
        .write_all(&data(3, false, b"GET /dump"))
        .await
        .expect("client");
    c.client.write_all(&rst(3)).await.expect("reset");
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.server
        .write_all(&data(
            3,
            false,
            b"LATE-FROM-POD aws_access_key_id=AKIAIOSFODNN7EXAMPLE",
        ))
        .await
        .expect("server");
    let Ended {
        to_pod, from_pod, ..
    } = end(c).await;
    assert_eq!(to_pod, b"GET /dump");
    let text = String::from_utf8_lossy(&from_pod);
    assert!(text.starts_with("LATE-FROM-POD"), "{text}");
    assert!(
        !text.contains("AKIAIOSFODNN7EXAMPLE"),
        "late bytes are masked too: {text}"
    );
}

#[tokio::test]
async fn a_stream_neither_data_nor_error_closes_a_captured_port_forward() {
    let mut c = captured("pf-odd").await;
    open_typed(&mut c, "stdout").await;
    c.client
        .write_all(&data(3, false, b"UNRECORDABLE"))
        .await
        .expect("client");
    let Ended {
        records,
        outcome,
        to_pod,
        ..
    } = end(c).await;
    assert!(outcome.is_err(), "the stream was closed");
    assert!(to_pod.is_empty());
    let closed = records
        .iter()
        .find(|r| r.custos.record_kind == RecordKind::StreamClosed)
        .expect("closed");
    assert!(
        closed
            .custos
            .error
            .as_deref()
            .is_some_and(|e| e.contains("neither data nor error")),
        "{:?}",
        closed.custos.error
    );
}

#[tokio::test]
async fn a_frame_custos_cannot_parse_closes_the_stream_and_what_was_recorded_is_sealed() {
    let mut c = captured("pf-bad").await;
    open_connection(&mut c).await;
    c.client
        .write_all(&data(3, false, b"forwarded before the bad frame"))
        .await
        .expect("client");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A RST_STREAM four bytes long: malformed.
    let mut bad = control_header(custos_stream::spdy::frame::RST_STREAM, 0, 4).to_vec();
    bad.extend_from_slice(&3u32.to_be_bytes());
    c.client.write_all(&bad).await.expect("bad frame");
    // `end` verifies the recording strictly: nothing recorded is left unsealed.
    let Ended {
        outcome, to_pod, ..
    } = end(c).await;
    assert!(outcome.is_err(), "the stream was closed");
    assert_eq!(to_pod, b"forwarded before the bad frame");
}

/// A legacy WebSocket port-forward message on `channel` (masked when the client sends it).
fn legacy(channel: u8, payload: &[u8], client: bool) -> Vec<u8> {
    legacy_as(BINARY, channel, payload, client)
}

/// Like [`legacy`], in a frame of `opcode` (text messages are data to the kubelet too).
fn legacy_as(opcode: u8, channel: u8, payload: &[u8], client: bool) -> Vec<u8> {
    let mut message = vec![channel];
    message.extend_from_slice(payload);
    if !client {
        let mut plain = BytesMut::new();
        write_frame(true, opcode, &[&message], &mut plain);
        return plain.to_vec();
    }
    let mut plain = BytesMut::new();
    write_frame(true, opcode, &[&message], &mut plain);
    let header = plain.len() - message.len();
    let key = [5, 6, 7, 8];
    let mut out = plain[..header].to_vec();
    out[1] |= 0x80;
    out.extend_from_slice(&key);
    unmask(&mut message, key, 0);
    out.extend_from_slice(&message);
    out
}

#[tokio::test]
async fn captured_payloads_over_the_legacy_websocket_protocol_skip_the_port_prefix() {
    let mut c = captured_on("pf-legacy", &PortForwardWire::Legacy(vec![8080])).await;
    // The server starts each channel with the port (little-endian), then data follows.
    let port = 8080u16.to_le_bytes();
    c.server
        .write_all(&legacy(0, &port, false))
        .await
        .expect("data channel port");
    c.server
        .write_all(&legacy(1, &port, false))
        .await
        .expect("error channel port");
    c.client
        .write_all(&legacy(
            0,
            b"PING token=ghp_0123456789abcdefghijABCDEFGHIJ012345",
            true,
        ))
        .await
        .expect("client");
    c.server
        .write_all(&legacy(0, b"PONG", false))
        .await
        .expect("server");
    let Ended {
        records,
        to_pod,
        from_pod,
        ..
    } = end(c).await;
    let sent = String::from_utf8_lossy(&to_pod);
    assert!(
        sent.starts_with("PING token=") && !sent.contains("ghp_0123"),
        "{sent}"
    );
    assert_eq!(
        to_pod.len(),
        "PING token=ghp_0123456789abcdefghijABCDEFGHIJ012345".len()
    );
    assert_eq!(from_pod, b"PONG", "the port prefix is not payload");
    let closed: Vec<PortForward> = records
        .iter()
        .filter(|r| r.custos.record_kind == RecordKind::PortForwardClosed)
        .filter_map(|r| r.custos.port_forward.clone())
        .collect();
    assert_eq!(
        closed,
        [PortForward {
            port: 8080,
            bytes_in: 51,
            bytes_out: 4
        }]
    );
}

#[tokio::test]
async fn a_text_message_from_the_client_is_captured_as_data_on_the_legacy_protocol() {
    let mut c = captured_on("pf-text", &PortForwardWire::Legacy(vec![8080])).await;
    let port = 8080u16.to_le_bytes();
    c.server
        .write_all(&legacy(0, &port, false))
        .await
        .expect("data channel port");
    c.client
        .write_all(&legacy_as(
            custos_stream::ws::frame::TEXT,
            0,
            b"TEXT aws_access_key_id=AKIAIOSFODNN7EXAMPLE",
            true,
        ))
        .await
        .expect("client text");
    let Ended { to_pod, .. } = end(c).await;
    let sent = String::from_utf8_lossy(&to_pod);
    assert!(sent.starts_with("TEXT aws_access_key_id="), "{sent}");
    assert!(!sent.contains("AKIAIOSFODNN7EXAMPLE"), "{sent}");
}

#[tokio::test]
async fn a_secret_split_across_two_late_frames_is_still_masked() {
    let mut c = captured("pf-late-split").await;
    open_connection(&mut c).await;
    c.client.write_all(&rst(3)).await.expect("reset");
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.server
        .write_all(&data(3, false, b"late aws_access_key_id=AKIAIOSFOD"))
        .await
        .expect("first half");
    c.server
        .write_all(&data(3, false, b"NN7EXAMPLE tail"))
        .await
        .expect("second half");
    let Ended { from_pod, .. } = end(c).await;
    let text = String::from_utf8_lossy(&from_pod);
    assert!(
        text.starts_with("late aws_access_key_id=") && text.ends_with(" tail"),
        "{text}"
    );
    assert!(!text.contains("AKIAIOSFOD"), "{text}");
}

#[tokio::test]
async fn error_streams_are_forgotten_when_reset() {
    let c = captured("pf-side").await;
    let Captured { mut client, pf, .. } = c;
    let mut z = HeaderDeflater::new().expect("z");
    let open = syn_stream(&mut z, 1, &[("streamtype", "error"), ("port", "8080")]);
    client.write_all(&open).await.expect("client");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        pf.lock().side.contains(&1),
        "the error stream is known while open"
    );
    client.write_all(&rst(1)).await.expect("reset");
    for id in (3..200u32).step_by(2) {
        let mut frames = syn_stream(&mut z, id, &[("streamtype", "error"), ("port", "8080")]);
        frames.extend(rst(id));
        client.write_all(&frames).await.expect("client");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        pf.lock().side.is_empty(),
        "{} error streams kept",
        pf.lock().side.len()
    );
}

#[tokio::test]
async fn a_syn_reply_with_fin_ends_the_servers_side_of_a_connection() {
    let mut c = captured("pf-reply-fin").await;
    let (mut cz, mut sz) = (
        HeaderDeflater::new().expect("z"),
        HeaderDeflater::new().expect("z"),
    );
    let open = syn_stream(
        &mut cz,
        3,
        &[("streamtype", "data"), ("port", "8080"), ("requestid", "0")],
    );
    c.client.write_all(&open).await.expect("client");
    let mut reply = syn_reply(&mut sz, 3);
    reply[4] |= custos_stream::spdy::frame::FLAG_FIN;
    c.server.write_all(&reply).await.expect("server");
    c.client
        .write_all(&data(3, true, b"bye"))
        .await
        .expect("client fin");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        c.pf.lock().conns.is_empty(),
        "both sides ended: the connection is closed, not kept until the stream ends"
    );
    let Ended {
        to_pod, records, ..
    } = end(c).await;
    assert_eq!(to_pod, b"bye");
    assert_eq!(
        records
            .iter()
            .filter(|r| r.custos.record_kind == RecordKind::PortForwardClosed)
            .count(),
        1
    );
}

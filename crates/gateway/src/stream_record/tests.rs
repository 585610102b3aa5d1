//! Recorded exec streams through the real relay, over in-memory pipes, with records appended to a
//! real SQLite log: what the recording holds, that it verifies against its chunk records, and that a
//! recording failure closes the stream with the client told why (WebSocket and SPDY).

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use custos_audit::record::{ObjectReference, Record, RecordKind, UserInfo};
use custos_recording::{Code, Recording, Recordings};
use custos_store::{Appender, AppenderConfig, LogStore, SearchQuery};
use custos_store_sqlite::SqliteStore;
use custos_stream::spdy::frame::{control_header, write_data, SYN_REPLY, SYN_STREAM};
use custos_stream::spdy::headers::HeaderDeflater;
use custos_stream::ws::frame::{unmask, write_frame, BINARY, TEXT};
use custos_stream::{MaskingTap, UpstreamObserver};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::relay::{relay, PassThrough, RelayTotals};

const IDLE: Duration = Duration::from_millis(25);

pub(crate) fn detector() -> &'static Detector {
    crate::mask::builtin_detector().expect("detector")
}

/// A recorder over a SQLite log and a recordings directory in `dir`.
pub(crate) async fn recorder(dir: &std::path::Path) -> (Recorder, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open_in(dir).await.expect("store"));
    let appender = Appender::spawn(store.clone(), AppenderConfig::default());
    let recordings = Recordings::open_in(dir).expect("recordings");
    (
        Recorder::new(appender, "test").with_recordings(recordings),
        store,
    )
}

/// Every record in the log (queued or sequenced).
pub(crate) async fn records(store: &SqliteStore) -> Vec<Record> {
    let entries = store
        .search(&SearchQuery {
            limit: custos_store::MAX_SEARCH_LIMIT,
            ..SearchQuery::default()
        })
        .await
        .expect("search");
    entries
        .iter()
        .map(|e| serde_json::from_slice(&e.record).expect("record"))
        .collect()
}

/// The request record of an exec of `sh` in `ns/toolbox` by alice.
pub(crate) fn request(audit_id: &str, subresource: &str) -> Record {
    let mut r = Record::new(RecordKind::Request, now());
    r.audit_id = Some(audit_id.into());
    r.user = Some(UserInfo {
        username: "alice@example.com".into(),
        groups: vec!["sre".into()],
        ..UserInfo::default()
    });
    r.object_ref = Some(ObjectReference {
        resource: Some("pods".into()),
        namespace: Some("ns".into()),
        name: Some("toolbox".into()),
        subresource: Some(subresource.into()),
        ..ObjectReference::default()
    });
    r
}

fn parts(upgrade: &str) -> http::request::Parts {
    http::Request::builder()
        .uri("/api/v1/namespaces/ns/pods/toolbox/exec?command=sh&command=-c&command=echo+a%2Fb&container=main&stdin=true&stdout=true&tty=true")
        .header("upgrade", upgrade)
        .header("sec-websocket-protocol", "v5.channel.k8s.io")
        .body(())
        .expect("request")
        .into_parts()
        .0
}

/// A client WebSocket frame (masked, as RFC 6455 requires).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut plain = BytesMut::new();
    write_frame(true, opcode, &[payload], &mut plain);
    let header = plain.len() - payload.len();
    let key = [1, 2, 3, 4];
    let mut out = plain[..header].to_vec();
    out[1] |= 0x80;
    out.extend_from_slice(&key);
    let mut body = payload.to_vec();
    unmask(&mut body, key, 0);
    out.extend_from_slice(&body);
    out
}

/// A server WebSocket binary message on `channel`.
fn server_message(channel: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    write_frame(true, BINARY, &[&[channel], payload], &mut out);
    out.to_vec()
}

/// A relay of a recorded stream between two in-memory pipes: `(client, server, task)`.
type Running = (
    DuplexStream,
    DuplexStream,
    tokio::task::JoinHandle<std::io::Result<RelayTotals>>,
);

fn run(rec: &Arc<StreamRecording>, websocket: bool) -> Running {
    let (client_side, client) = tokio::io::duplex(1 << 20);
    let (upstream_side, server) = tokio::io::duplex(1 << 20);
    let (observe, mask): (Box<dyn Tap>, Box<dyn Tap>) = if websocket {
        (
            Box::new(PassThrough),
            Box::new(MaskingTap::websocket(detector())),
        )
    } else {
        let streams = Streams::new();
        (
            Box::new(UpstreamObserver::spdy(streams.clone())),
            Box::new(MaskingTap::spdy(detector(), streams)),
        )
    };
    let (mut up, mut down) = rec.taps(websocket, observe, mask);
    let task =
        tokio::spawn(
            async move { relay(client_side, upstream_side, &mut up, &mut down, IDLE).await },
        );
    (client, server, task)
}

/// Reads what arrives within `wait` (the relay is quiet afterwards).
async fn drain(r: &mut DuplexStream, wait: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(Ok(n)) = tokio::time::timeout(wait, r.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[tokio::test]
async fn a_websocket_exec_is_recorded_masked_and_verifies_against_its_chunk_records() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (recorder, store) = recorder(tmp.path()).await;
    let req = request("ws-1", "exec");
    let rec = StreamRecording::open(&recorder, detector(), &parts("websocket"), &req, "exec")
        .await
        .expect("opened");
    let (mut client, mut server, task) = run(&rec, true);
    let key = "AKIAIOSFODNN7EXAMPLE";
    client
        .write_all(&client_frame(BINARY, b"\x04{\"Width\":100,\"Height\":30}"))
        .await
        .expect("resize");
    client
        .write_all(&client_frame(
            BINARY,
            format!("\x00export K={key}\n").as_bytes(),
        ))
        .await
        .expect("stdin");
    // The Python client sends stdin as text messages.
    client
        .write_all(&client_frame(TEXT, b"\x00ls\n"))
        .await
        .expect("text stdin");
    let typed = drain(&mut server, Duration::from_millis(200)).await;
    assert!(!typed.is_empty(), "stdin reached the apiserver");
    server
        .write_all(&server_message(1, format!("key {key}\n").as_bytes()))
        .await
        .expect("stdout");
    server
        .write_all(&server_message(2, b"warning\n"))
        .await
        .expect("stderr");
    server
        .write_all(&server_message(3, br#"{"metadata":{},"status":"Success"}"#))
        .await
        .expect("status");
    let shown = drain(&mut client, Duration::from_millis(300)).await;
    assert!(
        !String::from_utf8_lossy(&shown).contains(key),
        "masked for the client"
    );
    drop((client, server));
    let outcome = task.await.expect("join");
    rec.finish(&outcome, Some("v5.channel.k8s.io")).await;

    let records = records(&store).await;
    let kinds: Vec<String> = records
        .iter()
        .map(|r| r.custos.record_kind.to_string())
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("stream-opened"));
    assert_eq!(kinds.last().map(String::as_str), Some("stream-closed"));
    let name = "ws-1.cast";
    let path = tmp.path().join("recordings").join(name);
    let chunks = custos_recording::chunks_of(&records, name);
    assert!(chunks.len() >= 2, "header and events: {chunks:?}");
    custos_recording::verify(&path, &chunks).expect("verifies");
    let raw = std::fs::read_to_string(&path).expect("read");
    assert!(
        !raw.contains(key),
        "neither typed nor printed key is stored:\n{raw}"
    );

    let r = Recording::read(&path).expect("recording");
    let facts = r.header.custos.clone().expect("custos header");
    assert_eq!(facts.command, ["sh", "-c", "echo a/b"]);
    assert_eq!(facts.container.as_deref(), Some("main"));
    assert_eq!(facts.identity.username, "alice@example.com");
    assert!(facts.tty && facts.stdin);
    assert_eq!(facts.protocol, "websocket");
    assert_eq!(r.data_of(&Code::Resize), ["100x30"]);
    let input = r.data_of(&Code::Input).concat();
    assert_eq!(input, "export K=********************\nls\n");
    assert_eq!(r.output(), "key ********************\nwarning\n");
    assert_eq!(r.data_of(&Code::Stderr), ["warning\n"]);
    assert_eq!(
        r.data_of(&Code::Exit),
        [r#"{"metadata":{},"status":"Success"}"#]
    );

    let closed = records.last().expect("closed");
    assert_eq!(
        closed
            .annotations
            .get("custos.dev/exit-code")
            .map(String::as_str),
        Some("0")
    );
    let whole = &closed.custos.streams[0];
    assert_eq!(whole.bytes, raw.len() as u64);
    let stdin = closed
        .custos
        .streams
        .iter()
        .find(|s| s.channel.as_deref() == Some("stdin"))
        .expect("stdin total");
    assert_eq!(stdin.bytes, (input.len()) as u64);
}

#[tokio::test]
async fn a_client_frame_that_cannot_be_parsed_closes_the_stream_and_the_recording_is_still_sealed()
{
    let tmp = tempfile::tempdir().expect("tmp");
    let (recorder, store) = recorder(tmp.path()).await;
    let req = request("ws-bad", "exec");
    let rec = StreamRecording::open(&recorder, detector(), &parts("websocket"), &req, "exec")
        .await
        .expect("opened");
    let (mut client, mut server, task) = run(&rec, true);
    client
        .write_all(&client_frame(BINARY, b"\x00echo forwarded\n"))
        .await
        .expect("stdin");
    let typed = drain(&mut server, Duration::from_millis(200)).await;
    assert!(!typed.is_empty(), "stdin reached the apiserver");
    // Opcode 3 is reserved: the recording's reader cannot parse the stream any further.
    client
        .write_all(&client_frame(3, b"\x00never forwarded\n"))
        .await
        .expect("bad frame");
    let _ = drain(&mut server, Duration::from_millis(200)).await;
    drop((client, server));
    let outcome = task.await.expect("join");
    assert!(outcome.is_err(), "the stream was closed");
    rec.finish(&outcome, Some("v5.channel.k8s.io")).await;
    let records = records(&store).await;
    let name = "ws-bad.cast";
    let path = tmp.path().join("recordings").join(name);
    // Every recorded byte is sealed: the strict check passes, no unsealed tail to excuse.
    custos_recording::verify(&path, &custos_recording::chunks_of(&records, name))
        .expect("the recording is sealed to its end");
    let r = Recording::read(&path).expect("recording");
    assert_eq!(r.data_of(&Code::Input).concat(), "echo forwarded\n");
    let closed = records.last().expect("closed");
    assert!(closed
        .custos
        .error
        .as_deref()
        .is_some_and(|e| e.contains("cannot be parsed")));
}

#[tokio::test]
async fn output_the_client_gets_in_a_masking_farewell_is_recorded() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (recorder, store) = recorder(tmp.path()).await;
    let req = request("ws-farewell", "exec");
    let rec = StreamRecording::open(&recorder, detector(), &parts("websocket"), &req, "exec")
        .await
        .expect("opened");
    let (mut client, mut server, task) = run(&rec, true);
    // Output, then (in the same write) a frame the masking tap refuses (RSV1 set).
    let mut wire = server_message(1, b"OUTPUT-BEFORE-THE-BAD-FRAME\n");
    let mut bad = server_message(1, b"x");
    bad[0] |= 0x40;
    wire.extend(bad);
    server.write_all(&wire).await.expect("server");
    let shown = drain(&mut client, Duration::from_millis(300)).await;
    assert!(String::from_utf8_lossy(&shown).contains("OUTPUT-BEFORE-THE-BAD-FRAME"));
    drop((client, server));
    let outcome = task.await.expect("join");
    rec.finish(&outcome, Some("v5.channel.k8s.io")).await;
    let records = records(&store).await;
    let name = "ws-farewell.cast";
    let path = tmp.path().join("recordings").join(name);
    custos_recording::verify(&path, &custos_recording::chunks_of(&records, name)).expect("sealed");
    let r = Recording::read(&path).expect("recording");
    assert!(
        r.output().contains("OUTPUT-BEFORE-THE-BAD-FRAME"),
        "what the client saw is in the recording: {:?}",
        r.output()
    );
}

#[test]
fn an_exec_error_stream_that_names_a_port_still_carries_the_exit_status() {
    let mut transcript = Transcriber::new(detector());
    let mut pieces = Vec::new();
    let (mut error_stream, mut replied) = (None, false);
    let status = br#"{"metadata":{},"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
    on_event(
        Wire::Open {
            stream: 1,
            channel: Channel::PortError(1),
            fin: false,
            raw: &[],
        },
        true,
        &mut transcript,
        &mut pieces,
        &mut error_stream,
        &mut replied,
    );
    on_event(
        Wire::Data {
            stream: 1,
            channel: Channel::PortError(1),
            bytes: status,
            fin: true,
        },
        false,
        &mut transcript,
        &mut pieces,
        &mut error_stream,
        &mut replied,
    );
    assert_eq!(error_stream, Some(1));
    assert!(
        transcript.exit_status().is_some(),
        "the exit status is kept"
    );
    assert_eq!(transcript.exit_status().and_then(exit_code), Some(3));
}

#[tokio::test]
async fn exec_is_refused_when_the_recording_cannot_be_created() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (recorder, _store) = recorder(tmp.path()).await;
    let dir = tmp.path().join("recordings");
    std::fs::remove_dir(&dir).expect("rmdir");
    std::fs::write(&dir, b"not a directory").expect("file");
    let err = StreamRecording::open(
        &recorder,
        detector(),
        &parts("SPDY/3.1"),
        &request("x", "exec"),
        "exec",
    )
    .await
    .err()
    .expect("refused");
    assert!(matches!(err, GatewayError::AuditUnavailable(_)), "{err}");
    assert!(err.to_string().contains("session recording"), "{err}");
    // Without a recordings directory at all, too.
    let store = Arc::new(
        SqliteStore::open_in(&tmp.path().join("other"))
            .await
            .expect("store"),
    );
    let bare = Recorder::new(Appender::spawn(store, AppenderConfig::default()), "test");
    let err = StreamRecording::open(
        &bare,
        detector(),
        &parts("SPDY/3.1"),
        &request("y", "exec"),
        "exec",
    )
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("no recordings directory"), "{err}");
}

#[tokio::test]
async fn a_websocket_client_is_told_why_when_the_recording_fails() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (recorder, store) = recorder(tmp.path()).await;
    let rec = StreamRecording::open(
        &recorder,
        detector(),
        &parts("websocket"),
        &request("ws-f", "exec"),
        "exec",
    )
    .await
    .expect("opened");
    let (mut client, mut server, task) = run(&rec, true);
    // The audit log goes away: the next chunk record cannot be appended.
    store.close().await;
    let big = "x".repeat(60_000) + "\n";
    for _ in 0..3 {
        server
            .write_all(&server_message(1, big.as_bytes()))
            .await
            .expect("stdout");
    }
    let got = drain(&mut client, Duration::from_millis(500)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("stream closed by Custos"), "no farewell");
    assert!(text.contains("the audit log did not take"), "no reason");
    assert!(
        got.len() < 3 * big.len(),
        "{} bytes forwarded past the failure",
        got.len()
    );
    let err = task.await.expect("join").expect_err("closed");
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
}

/// A client SYN_STREAM for `id` of `stream_type`.
fn syn_stream(z: &mut HeaderDeflater, id: u32, stream_type: &str) -> Vec<u8> {
    let block = z.deflate(&[("streamtype", stream_type)]).expect("deflate");
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

#[tokio::test]
async fn a_spdy_exec_is_recorded_and_a_failure_is_reported_on_the_error_stream() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (recorder, store) = recorder(tmp.path()).await;
    let rec = StreamRecording::open(
        &recorder,
        detector(),
        &parts("SPDY/3.1"),
        &request("spdy-1", "exec"),
        "exec",
    )
    .await
    .expect("opened");
    let (mut client, mut server, task) = run(&rec, false);
    let (mut cz, mut sz) = (
        HeaderDeflater::new().expect("z"),
        HeaderDeflater::new().expect("z"),
    );
    let mut opening = Vec::new();
    for (id, t) in [(1, "error"), (3, "stdin"), (5, "stdout"), (7, "resize")] {
        opening.extend(syn_stream(&mut cz, id, t));
    }
    opening.extend(data(7, false, b"{\"Width\":90,\"Height\":20}\n"));
    opening.extend(data(3, false, b"id\n"));
    client.write_all(&opening).await.expect("client");
    drain(&mut server, Duration::from_millis(200)).await;
    let mut replies = Vec::new();
    for id in [1, 3, 5, 7] {
        replies.extend(syn_reply(&mut sz, id));
    }
    replies.extend(data(5, false, b"uid=0(root)\n"));
    server.write_all(&replies).await.expect("server");
    drain(&mut client, Duration::from_millis(200)).await;
    // Let the recording settle what it has (the time rule), then take the log away.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = std::fs::read_to_string(tmp.path().join("recordings/spdy-1.cast")).expect("read");
    assert!(
        before.contains(r#""i","id\n""#) && before.contains("uid=0(root)"),
        "{before}"
    );
    assert!(before.contains(r#""r","90x20""#), "{before}");
    store.close().await;
    let big = vec![b'y'; 70_000];
    server
        .write_all(&data(5, false, &big))
        .await
        .expect("stdout");
    server
        .write_all(&data(5, false, &big))
        .await
        .expect("stdout");
    let got = drain(&mut client, Duration::from_millis(500)).await;
    // The farewell: a DATA frame on the error stream (1), FIN, with a Failure Status.
    let status = br#""status":"Failure""#;
    let at = got
        .windows(status.len())
        .position(|w| w == status)
        .expect("a Status reached the client");
    let header_at = got[..at]
        .windows(4)
        .rposition(|w| w == 1u32.to_be_bytes())
        .expect("on the error stream");
    assert_eq!(got[header_at + 4], 0x01, "with FIN");
    assert!(String::from_utf8_lossy(&got).contains("stream closed by Custos"));
    task.await.expect("join").expect_err("closed");
}

#[test]
fn the_exit_code_is_read_from_every_form_of_status() {
    use super::facts::exit_code;
    let status = |v: serde_json::Value| exit_code(&v);
    assert_eq!(status(serde_json::json!({"status": "Success"})), Some(0));
    assert_eq!(
        status(
            serde_json::json!({"status": "Failure", "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "42"}]}})
        ),
        Some(42)
    );
    assert_eq!(
        status(serde_json::json!({"status": "Failure", "message": "cmd wait: sh: exit status 3"})),
        Some(3)
    );
    assert_eq!(
        status(serde_json::json!({"status": "Failure", "message": "oops"})),
        None
    );
}

#[test]
fn query_pairs_go_parses_as_drop_semicolons_and_bad_escapes() {
    // Go's url.ParseQuery (the apiserver's, the kubelet's) drops these pairs whole.
    assert_eq!(
        super::query_pairs("ports=1;,9999&ports=8080&ports=%zz7&command=ls"),
        [
            ("ports".to_owned(), "8080".to_owned()),
            ("command".to_owned(), "ls".to_owned()),
        ]
    );
    assert_eq!(
        crate::port_forward::PortForwardWire::of(
            Some("websocket"),
            Some("v4.channel.k8s.io"),
            "ports=1;,9999&ports=8080&ports=+80,%2081"
        ),
        crate::port_forward::PortForwardWire::Legacy(vec![8080])
    );
}

#[test]
fn query_values_are_decoded_as_kubectl_encodes_them() {
    assert_eq!(
        super::query_pairs("command=sh&command=-c&command=echo+a%2Fb%26c&tty=true&x"),
        [
            ("command".to_owned(), "sh".to_owned()),
            ("command".to_owned(), "-c".to_owned()),
            ("command".to_owned(), "echo a/b&c".to_owned()),
            ("tty".to_owned(), "true".to_owned()),
            ("x".to_owned(), String::new()),
        ]
    );
}

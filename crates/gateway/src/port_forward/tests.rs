//! Port-forward connections through the real relay: one opened and one closed record each, with the
//! port and the bytes each way, over SPDY and over SPDY tunnelled in WebSocket.

use std::time::Duration;

use bytes::BytesMut;
use custos_stream::spdy::frame::{control_header, write_data, SYN_REPLY, SYN_STREAM};
use custos_stream::spdy::headers::HeaderDeflater;
use custos_stream::ws::frame::{unmask, write_frame, BINARY};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

async fn two_connections(wire: PortForwardWire) {
    let tmp = tempfile::tempdir().expect("tmp");
    let (recorder, store) = recorder(tmp.path()).await;
    let req = request("pf-1", "portforward");
    let (pf, mut up, mut down) = PortForwards::start(&recorder, &req, &wire);
    let (client_side, mut client) = tokio::io::duplex(1 << 20);
    let (upstream_side, mut server) = tokio::io::duplex(1 << 20);
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

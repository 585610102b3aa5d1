//! Port-forward relay throughput, three ways in one run: plain pass-through (the baseline), followed
//! for its connection records (what every port-forward costs), and with `@capture("payload")` (the
//! bytes each way masked and written to a recording bound to a real SQLite audit log).
//!
//! `cargo run --release -p custos-gateway --example relay_throughput [MiB]` (default 64). Prints MB/s
//! per mode (best of 3) and each mode's ratio to the baseline. One direction (client → pod) carries
//! the payload: HTTP-like text with an AWS key every 50 lines, written in 64 KiB chunks.

use std::path::Path;
use std::time::{Duration, Instant};

use custos_audit::record::{ObjectReference, Record, RecordKind};
use custos_gateway::port_forward::{Capture, PortForwardWire, PortForwards};
use custos_gateway::recorder::{now, Recorder};
use custos_gateway::relay::{relay, PassThrough, Tap};
use custos_recording::Recordings;
use custos_store::{Appender, AppenderConfig};
use custos_store_sqlite::SqliteStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// HTTP-like text, `mib` MiB, with a planted key every 50 lines.
fn payload(mib: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(mib << 20);
    let mut i = 0u64;
    while out.len() < mib << 20 {
        let line = if i.is_multiple_of(50) {
            format!(
                "X-Debug: aws_access_key_id=AKIAIOSFODNN7EXAMPL{}\r\n",
                i % 10
            )
        } else {
            format!(
                "GET /api/v1/items/{i}?page={} HTTP/1.1\r\nHost: svc.local\r\n",
                i % 97
            )
        };
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.truncate(mib << 20);
    out
}

/// Relays `data` client → upstream through the taps; the time until the upstream side has read it all.
async fn run(data: &[u8], mut up: Box<dyn Tap>, mut down: Box<dyn Tap>) -> Duration {
    let (client_side, mut client) = tokio::io::duplex(1 << 20);
    let (upstream_side, mut server) = tokio::io::duplex(1 << 20);
    let relayed = tokio::spawn(async move {
        let r = relay(
            client_side,
            upstream_side,
            up.as_mut(),
            down.as_mut(),
            Duration::from_millis(25),
        )
        .await;
        drop((up, down));
        r
    });
    let total = data.len();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0;
        while got < total {
            let n = server.read(&mut buf).await.expect("read");
            assert!(n > 0, "relay ended early");
            got += n;
        }
        server
    });
    let start = Instant::now();
    for chunk in data.chunks(64 << 10) {
        client.write_all(chunk).await.expect("write");
    }
    let server = reader.await.expect("reader");
    let took = start.elapsed();
    drop((client, server));
    let _ = relayed.await;
    took
}

fn request() -> Record {
    let mut r = Record::new(RecordKind::Request, now());
    r.audit_id = Some(format!("bench-{}", std::process::id()));
    r.object_ref = Some(ObjectReference {
        resource: Some("pods".into()),
        namespace: Some("bench".into()),
        name: Some("toolbox".into()),
        subresource: Some("portforward".into()),
        ..ObjectReference::default()
    });
    r
}

async fn recorder(dir: &Path) -> Recorder {
    let store = std::sync::Arc::new(SqliteStore::open_in(dir).await.expect("store"));
    let appender = Appender::spawn(store, AppenderConfig::default());
    Recorder::new(appender, "bench").with_recordings(Recordings::open_in(dir).expect("recordings"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(64);
    let data = payload(mib);
    let detector = custos_gateway::mask::builtin_detector().expect("detector");
    let parts = http::Request::builder()
        .uri("/api/v1/namespaces/bench/pods/toolbox/portforward?ports=8080")
        .body(())
        .expect("request")
        .into_parts()
        .0;
    let mut best = [Duration::MAX; 3];
    for _ in 0..3 {
        best[0] = best[0].min(run(&data, Box::new(PassThrough), Box::new(PassThrough)).await);

        let tmp = tempfile::tempdir().expect("tmp");
        let rec = recorder(tmp.path()).await;
        let (pf, up, down) =
            PortForwards::start(&rec, &request(), &PortForwardWire::Opaque(8080), None);
        best[1] = best[1].min(run(&data, Box::new(up), Box::new(down)).await);
        pf.finish(&Ok(Default::default())).await;

        let tmp = tempfile::tempdir().expect("tmp");
        let rec = recorder(tmp.path()).await;
        let req = request();
        let capture = Capture::open(&rec, detector, &parts, &req)
            .await
            .expect("capture");
        let (pf, up, down) =
            PortForwards::start(&rec, &req, &PortForwardWire::Opaque(8080), Some(capture));
        best[2] = best[2].min(run(&data, Box::new(up), Box::new(down)).await);
        pf.finish(&Ok(Default::default())).await;
        drop(pf);
        assert!(rec.flush(Duration::from_secs(30)).await, "records written");
    }
    let mbs = |d: Duration| (mib as f64 * 1.048_576) / d.as_secs_f64();
    println!("port-forward relay, {mib} MiB client → pod, best of 3:");
    for (name, d) in [
        ("pass-through (baseline)", best[0]),
        ("followed (connection records)", best[1]),
        ("captured (@capture(\"payload\"))", best[2]),
    ] {
        println!(
            "  {name:<34} {:>8.1} MB/s   {:>5.2}x baseline",
            mbs(d),
            mbs(d) / mbs(best[0])
        );
    }
}

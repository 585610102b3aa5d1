//! Text masking throughput on 8 MiB of log text with a few secrets, beside a plain copy of the same
//! bytes in the same run; and the cost of an interactive session, where the gateway flushes after
//! every keystroke echo (`flush_idle`). `cargo bench -p custos-mask --bench text`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use custos_mask::{mask_text, Detector, TextMasker};

const SIZE: usize = 8 << 20;

/// Realistic log lines (klog, JSON, access logs) with a secret roughly every 2,000 lines.
fn corpus() -> Vec<u8> {
    let lines = [
        "I1127 09:59:20.123456       1 controller.go:116] Reconciling deployment payments/api-7d9f8c6b5 generation=42 resourceVersion=884213",
        "{\"level\":\"info\",\"ts\":\"2026-11-27T09:59:20.123Z\",\"msg\":\"request served\",\"method\":\"GET\",\"path\":\"/api/v1/orders/18823\",\"status\":200,\"latency_ms\":12}",
        "10.1.2.3 - - [27/Nov/2026:09:59:20 +0000] \"GET /healthz HTTP/1.1\" 200 2 \"-\" \"kube-probe/1.33\"",
        "2026-11-27T09:59:20.123Z WARN pool: connection to db-0:5432 slow (87ms), retrying with backoff",
        "time=\"2026-11-27T09:59:20Z\" level=debug msg=\"pulled image\" image=registry.k8s.io/pause@sha256:7031c1b283388d2c2e09b57badb803c05ebed362dc88d84b480cc47f72a21097",
        "E1127 09:59:20.654321       1 reflector.go:147] watch of *v1.Pod ended with: too old resource version: 884100 (884213)",
    ];
    let secrets = [
        "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "charging card 4111 1111 1111 1111 for order 18823",
        "Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
        "DATABASE_URL=postgres://app:s3cr3t-Pa55w0rd@db-0:5432/app",
        "notify jane.doe@example.com",
    ];
    let mut out = Vec::with_capacity(SIZE + 256);
    let mut i = 0usize;
    while out.len() < SIZE {
        let line = if i % 2000 == 1999 {
            secrets[(i / 2000) % secrets.len()]
        } else {
            lines[i % lines.len()]
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        i += 1;
    }
    out.truncate(SIZE);
    out
}

fn bench(c: &mut Criterion) {
    let det = Detector::builtin().expect("detector");
    let input = corpus();
    let mut g = c.benchmark_group("text");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("memcpy", |b| {
        let mut buf = vec![0u8; input.len()];
        b.iter(|| {
            buf.copy_from_slice(black_box(&input));
            black_box(&buf);
        })
    });
    g.bench_function("mask_text", |b| {
        let mut buf = vec![0u8; input.len()];
        b.iter(|| {
            buf.copy_from_slice(&input);
            black_box(mask_text(&det, black_box(&mut buf)))
        })
    });
    g.bench_function("text_masker_64k_chunks", |b| {
        let mut out = Vec::with_capacity(input.len());
        b.iter(|| {
            out.clear();
            let mut m = TextMasker::new(&det);
            for chunk in input.chunks(64 << 10) {
                m.push(chunk, &mut out);
            }
            m.flush(&mut out);
            black_box(&out);
        })
    });
    g.finish();

    // A shell session typed one byte at a time, each echo followed by an idle flush: 4 KiB of context
    // is rescanned and partial candidates checked per byte. Throughput here is keystrokes' bytes.
    let session = shell_session();
    let mut g = c.benchmark_group("interactive");
    g.throughput(Throughput::Bytes(session.len() as u64));
    g.sample_size(10);
    g.bench_function("keystroke_then_idle_flush", |b| {
        let mut out = Vec::with_capacity(session.len());
        b.iter(|| {
            out.clear();
            let mut m = TextMasker::new(&det);
            for byte in session.chunks(1) {
                m.push(byte, &mut out);
                m.flush_idle(&mut out);
            }
            m.flush(&mut out);
            black_box(&out);
        })
    });
    g.finish();
}

/// About 8 KiB of a typed shell session: prompts, commands, short outputs, one exported token.
fn shell_session() -> Vec<u8> {
    let lines = [
        "\x1b[32mroot@api-7d9f8c6b5-x2x9z\x1b[0m:/app# ls -la\r\n",
        "total 48\r\ndrwxr-xr-x 1 root root 4096 Nov 27 09:59 .\r\n",
        "\x1b[32mroot@api-7d9f8c6b5-x2x9z\x1b[0m:/app# cat /etc/hostname\r\napi-7d9f8c6b5-x2x9z\r\n",
        "\x1b[32mroot@api-7d9f8c6b5-x2x9z\x1b[0m:/app# export GITHUB_TOKEN=ghp_bbIhqLZxmqGCv7HqA74ANFrMEQEFjUyFtOZD\r\n",
        "\x1b[32mroot@api-7d9f8c6b5-x2x9z\x1b[0m:/app# curl -s localhost:8080/healthz\r\nok\r\n",
    ];
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < 8 << 10 {
        out.extend_from_slice(lines[i % lines.len()].as_bytes());
        i += 1;
    }
    out
}

criterion_group!(benches, bench);
criterion_main!(benches);

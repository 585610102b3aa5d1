//! Kubernetes JSON masking throughput: a 10,000-object list (Pods, ConfigMaps, Secrets mixed, as a
//! cluster-wide list would be) streamed through [`JsonMasker`] in 64 KiB chunks, beside a plain copy
//! of the same bytes and a parse-only pass in the same run. `cargo bench -p custos-mask --bench json`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use custos_mask::{Detector, Hint, JsonMasker, Profile};

#[path = "../examples/support/list.rs"]
mod list;

fn bench(c: &mut Criterion) {
    let det = Detector::builtin().expect("detector");
    let input = list::list_bytes(10_000);
    let mut g = c.benchmark_group("json-list-10k");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("pass-through copy", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(input.len());
            for c in input.chunks(64 * 1024) {
                out.extend_from_slice(c);
            }
            black_box(out.len())
        })
    });
    g.bench_function("parse only (serde_json::Value)", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(&input).is_ok()))
    });
    g.bench_function("masked (JsonMasker, strict)", |b| {
        b.iter(|| {
            let mut m = JsonMasker::new(&det, Profile::strict(), Hint::default(), 1 << 26);
            let mut out = Vec::with_capacity(input.len());
            for c in input.chunks(64 * 1024) {
                m.push(c, &mut out).expect("mask");
            }
            m.finish(&mut out).expect("finish");
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

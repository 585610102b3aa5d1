//! Append (canonical encoding + leaf hashing + frontier), proof generation and verification, and
//! whole-log verification, in records per second. `cargo bench -p custos-audit`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use custos_audit::merkle::{inclusion_proof, leaf_hash, MemoryLog};
use custos_audit::record::{DecisionRecord, ObjectReference, Outcome, SessionRef, Stage, UserInfo};
use custos_audit::{verify_log, Checkpoint, Frontier, MicroTime, Record, RecordKind, SignerKey};

fn record(i: u64) -> Record {
    let mut r = Record::new(
        RecordKind::Request,
        MicroTime::from_unix_micros(1_700_000_000_000_000 + i).expect("t"),
    );
    r.audit_id = Some(format!("0b9c6f3e-5d4a-4b8e-9f1a-{i:012}"));
    r.stage = Some(Stage::RequestReceived);
    r.verb = Some("get".into());
    r.request_uri = Some(format!("/api/v1/namespaces/payments/pods/api-{i}"));
    r.user = Some(UserInfo {
        username: "oidc:agent-7".into(),
        groups: vec!["oidc:agents".into()],
        ..Default::default()
    });
    r.source_ips = vec!["10.1.2.3".into()];
    r.user_agent = Some("kubectl/v1.33.0 (linux/amd64) kubernetes/abcdef".into());
    r.object_ref = Some(ObjectReference {
        resource: Some("pods".into()),
        namespace: Some("payments".into()),
        name: Some(format!("api-{i}")),
        api_version: Some("v1".into()),
        ..Default::default()
    });
    r.custos.session = Some(SessionRef {
        id: "s-42".into(),
        intent: Some("investigate 5xx".into()),
        ticket: Some("INC-1".into()),
    });
    r.custos.decision = Some(DecisionRecord {
        outcome: Outcome::Allow,
        policy_ids: vec!["agents-read".into()],
        reason: None,
        annotations: Default::default(),
    });
    r
}

fn append(c: &mut Criterion) {
    let records: Vec<Record> = (0..1000).map(record).collect();
    let bytes: Vec<Vec<u8>> = records
        .iter()
        .map(|r| r.canonical_bytes().expect("c"))
        .collect();
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("canonical+hash+frontier", |b| {
        b.iter(|| {
            let mut f = Frontier::new();
            for r in &records {
                f.push(leaf_hash(&r.canonical_bytes().expect("c")));
            }
            black_box(f.root())
        })
    });
    g.bench_function("hash+frontier", |b| {
        b.iter(|| {
            let mut f = Frontier::new();
            for leaf in &bytes {
                f.push(leaf_hash(leaf));
            }
            black_box(f.root())
        })
    });
    g.finish();
}

fn proofs(c: &mut Criterion) {
    const N: u64 = 1 << 20;
    let mut log = MemoryLog::new();
    for i in 0..N {
        log.append_hash(leaf_hash(&i.to_be_bytes()));
    }
    let root = log.root();
    let mut g = c.benchmark_group("inclusion proof (2^20 leaves)");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("generate", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(inclusion_proof(&log, i, N).expect("proof"))
        })
    });
    let p = inclusion_proof(&log, 123_456, N).expect("proof");
    let leaf = leaf_hash(&123_456u64.to_be_bytes());
    g.bench_function("verify", |b| {
        b.iter(|| p.verify(black_box(&leaf), &root).expect("ok"))
    });
    g.finish();
}

fn whole_log(c: &mut Criterion) {
    const N: u64 = 20_000;
    let key = SignerKey::from_seed("custos.bench/log", [1; 32]).expect("key");
    let leaves: Vec<Vec<u8>> = (0..N)
        .map(|i| record(i).canonical_bytes().expect("c"))
        .collect();
    let mut log = MemoryLog::new();
    let mut checkpoints = Vec::new();
    for (i, l) in leaves.iter().enumerate() {
        log.append(l);
        if (i + 1) % 1000 == 0 {
            checkpoints.push(
                Checkpoint::new("custos.bench/log", log.size(), log.root())
                    .sign(&key)
                    .expect("sign"),
            );
        }
    }
    let mut g = c.benchmark_group("verify_log");
    g.throughput(Throughput::Elements(N));
    g.bench_function("20k records, 20 checkpoints", |b| {
        b.iter(|| verify_log(&leaves, &checkpoints, &key.verifier()).expect("verifies"))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = append, proofs, whole_log
}
criterion_main!(benches);

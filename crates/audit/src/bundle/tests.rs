use super::*;
use crate::merkle::MemoryLog;
use crate::note::SignerKey;
use crate::record::{MicroTime, Record, RecordKind};

#[test]
fn write_then_verify_round_trip() {
    let key = SignerKey::from_seed("custos.test/log", [5; 32]).expect("key");
    let mut log = MemoryLog::new();
    let mut records = Vec::new();
    for i in 0..20u64 {
        let mut r = Record::new(
            RecordKind::Request,
            MicroTime::from_unix_micros(i).expect("t"),
        );
        r.verb = Some("get".into());
        let bytes = r.canonical_bytes().expect("c");
        log.append(&bytes);
        records.push((i, bytes));
    }
    let old = Checkpoint::new(
        "custos.test/log",
        7,
        crate::merkle::root(&log, 7).expect("r"),
    )
    .sign(&key)
    .expect("s");
    let signed = Checkpoint::new("custos.test/log", 20, log.root())
        .sign(&key)
        .expect("sign");
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("bundle");
    let spec = BundleSpec {
        checkpoint: &signed,
        key: &key.verifier(),
        contiguous: true,
        consistency_from: &[7],
    };
    let summary = write(&out, &log, records[3..9].iter().cloned(), &spec).expect("write");
    assert_eq!((summary.records, summary.range), (6, Some((3, 8))));
    let trust = BundleTrust {
        key: Some(key.verifier()),
        pin: Some(old),
    };
    let report = verify_bundle(&out, &trust).expect("verifies");
    assert_eq!(report.records, 6);
    assert_eq!(report.key_source, KeySource::Trusted);
    assert_eq!(report.pin.map(|p| p.size), Some(7));
    assert!(matches!(
        write(&out, &log, records.clone(), &spec),
        Err(BundleError::NotEmpty(_))
    ));
}

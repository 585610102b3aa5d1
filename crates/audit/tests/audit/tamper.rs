//! The acceptance scenarios: change one record, delete one, swap two, truncate, restore an older copy,
//! swap the signing key. Each must fail, and the message must say where.

use std::fs;
use std::path::Path;

use custos_audit::bundle::{self, BundleError, BundleSpec, BundleTrust, Manifest};
use custos_audit::merkle::{root, MemoryLog};
use custos_audit::record::{MicroTime, Record, RecordKind};
use custos_audit::verify::{verify_log, LogVerifier, VerifyError};
use custos_audit::{Checkpoint, SignerKey};

const ORIGIN: &str = "custos.test/log";

struct Log {
    key: SignerKey,
    leaves: Vec<Vec<u8>>,
    tree: MemoryLog,
}

fn record(i: u64) -> Vec<u8> {
    let mut r = Record::new(
        RecordKind::Request,
        MicroTime::from_unix_micros(1_700_000_000_000_000 + i).expect("t"),
    );
    r.audit_id = Some(format!("audit-{i}"));
    r.verb = Some(if i.is_multiple_of(3) { "delete" } else { "get" }.into());
    r.request_uri = Some(format!("/api/v1/namespaces/default/pods/p{i}"));
    r.canonical_bytes().expect("canonical")
}

fn log(n: u64) -> Log {
    let key = SignerKey::from_seed(ORIGIN, [11; 32]).expect("key");
    let leaves: Vec<Vec<u8>> = (0..n).map(record).collect();
    let mut tree = MemoryLog::new();
    for l in &leaves {
        tree.append(l);
    }
    Log { key, leaves, tree }
}

impl Log {
    fn checkpoint(&self, size: u64) -> String {
        let root = root(&self.tree, size).expect("root");
        Checkpoint::new(ORIGIN, size, root)
            .sign(&self.key)
            .expect("sign")
    }

    fn checkpoints(&self, sizes: &[u64]) -> Vec<String> {
        sizes.iter().map(|s| self.checkpoint(*s)).collect()
    }
}

fn expect_err(leaves: &[Vec<u8>], cps: &[String], key: &SignerKey) -> VerifyError {
    let err = verify_log(leaves, cps, &key.verifier()).expect_err("tampering must be detected");
    eprintln!("{err}");
    err
}

#[test]
fn intact_log_verifies() {
    let l = log(40);
    let report = verify_log(
        &l.leaves,
        &l.checkpoints(&[10, 25, 40, 0, 25]),
        &l.key.verifier(),
    )
    .expect("intact");
    assert_eq!(
        (report.leaves, report.checkpoints, report.unsigned_tail),
        (40, 4, 0)
    );
}

#[test]
fn changed_record_is_located_between_checkpoints() {
    let l = log(40);
    let mut leaves = l.leaves.clone();
    leaves[17] = String::from_utf8(leaves[17].clone())
        .expect("utf-8")
        .replace("get", "GET")
        .into_bytes();
    let err = expect_err(&leaves, &l.checkpoints(&[10, 25, 40]), &l.key);
    assert!(
        matches!(
            err,
            VerifyError::RootMismatch {
                size: 25,
                from: 10,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("leaves 10..25"), "{err}");
}

#[test]
fn changed_record_is_named_exactly_with_stored_leaf_hashes() {
    let l = log(40);
    let mut v =
        LogVerifier::new(&l.key.verifier(), None, &l.checkpoints(&[40])).expect("checkpoints");
    for (i, leaf) in l.leaves.iter().enumerate() {
        let stored = custos_audit::merkle::leaf_hash(leaf);
        let bytes = if i == 17 { record(1017) } else { leaf.clone() };
        if let Err(e) = v.push_leaf_with_hash(&bytes, &stored) {
            assert!(matches!(e, VerifyError::LeafHash { index: 17, .. }), "{e}");
            assert!(e.to_string().starts_with("leaf 17:"), "{e}");
            return;
        }
    }
    panic!("changed leaf not detected");
}

#[test]
fn deleted_record_is_detected() {
    let l = log(40);
    let mut leaves = l.leaves.clone();
    leaves.remove(17);
    let err = expect_err(&leaves, &l.checkpoints(&[10, 25, 40]), &l.key);
    assert!(
        matches!(
            err,
            VerifyError::RootMismatch {
                size: 25,
                from: 10,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn swapped_records_are_detected() {
    let l = log(40);
    let mut leaves = l.leaves.clone();
    leaves.swap(12, 30);
    let err = expect_err(&leaves, &l.checkpoints(&[10, 25, 40]), &l.key);
    assert!(
        matches!(
            err,
            VerifyError::RootMismatch {
                size: 25,
                from: 10,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn truncated_log_is_detected() {
    let l = log(40);
    let err = expect_err(&l.leaves[..30], &l.checkpoints(&[10, 25, 40]), &l.key);
    assert!(
        matches!(
            err,
            VerifyError::Truncated {
                size: 40,
                leaves: 30,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("leaves 30..40 are missing"),
        "{err}"
    );
}

#[test]
fn restored_older_copy_fails_against_the_external_checkpoint() {
    // The database copy is self-consistent (25 leaves, checkpoints up to 25); the copy of the newest
    // checkpoint kept outside the operator's reach (size 40) exposes it.
    let l = log(40);
    let mut cps = l.checkpoints(&[10, 25]);
    verify_log(&l.leaves[..25], &cps, &l.key.verifier()).expect("the old copy alone looks fine");
    cps.push(l.checkpoint(40));
    let err = expect_err(&l.leaves[..25], &cps, &l.key);
    assert!(
        matches!(
            err,
            VerifyError::Truncated {
                size: 40,
                leaves: 25,
                position: 2
            }
        ),
        "{err}"
    );
}

#[test]
fn swapped_signing_key_is_detected() {
    let l = log(40);
    let forger = SignerKey::from_seed(ORIGIN, [66; 32]).expect("forger");
    let mut leaves = l.leaves.clone();
    leaves[5] = record(500);
    let mut forged = MemoryLog::new();
    for leaf in &leaves {
        forged.append(leaf);
    }
    let cp = Checkpoint::new(ORIGIN, 40, forged.root())
        .sign(&forger)
        .expect("sign");
    let err = expect_err(&leaves, &[l.checkpoint(10), cp], &l.key);
    assert!(
        matches!(
            err,
            VerifyError::Checkpoint {
                position: 1,
                size: Some(40),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("no signature by a trusted key"),
        "{err}"
    );
}

#[test]
fn modified_checkpoint_and_fork_are_detected() {
    let l = log(40);
    let edited = l.checkpoint(25).replacen("\n25\n", "\n26\n", 1);
    let err = expect_err(&l.leaves, &[l.checkpoint(10), edited], &l.key);
    assert!(err.to_string().contains("invalid signature"), "{err}");
    // A validly signed but different tree of the same size: the key signed two histories.
    let mut other = log(25);
    other.tree.append(b"extra");
    let fork = Checkpoint::new(ORIGIN, 26, other.tree.root())
        .sign(&l.key)
        .expect("sign");
    let err = expect_err(&l.leaves, &[l.checkpoint(26), fork], &l.key);
    assert!(matches!(err, VerifyError::Fork { size: 26, .. }), "{err}");
}

// --- bundles ---------------------------------------------------------------------------------------

fn export(l: &Log, dir: &Path, from: u64, to: u64, size: u64, consistency_from: &[u64]) {
    let records: Vec<(u64, Vec<u8>)> = (from..to)
        .map(|i| (i, l.leaves[i as usize].clone()))
        .collect();
    let checkpoint = l.checkpoint(size);
    let spec = BundleSpec {
        checkpoint: &checkpoint,
        key: &l.key.verifier(),
        contiguous: true,
        consistency_from,
    };
    bundle::write(dir, &l.tree, records, &spec).expect("export");
}

/// What an attacker with write access does after editing: recompute MANIFEST.
fn reseal(dir: &Path) {
    let mut m = Manifest::default();
    let mut stack = vec![String::new()];
    while let Some(prefix) = stack.pop() {
        for e in fs::read_dir(dir.join(&prefix)).expect("dir") {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if e.file_type().expect("type").is_dir() {
                stack.push(rel);
            } else if rel != "MANIFEST" {
                m.files.insert(
                    rel.clone(),
                    bundle::sha256_file(&dir.join(&rel)).expect("hash"),
                );
            }
        }
    }
    fs::write(dir.join("MANIFEST"), m.to_text()).expect("manifest");
}

fn lines(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("records.jsonl"))
        .expect("records")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn set_lines(dir: &Path, lines: &[String]) {
    fs::write(
        dir.join("records.jsonl"),
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .expect("w");
}

fn trusted(l: &Log) -> BundleTrust {
    BundleTrust {
        key: Some(l.key.verifier()),
        pin: None,
    }
}

fn bundle_err(dir: &Path, trust: &BundleTrust) -> BundleError {
    let err = bundle::verify_bundle(dir, trust).expect_err("tampering must be detected");
    eprintln!("{err}");
    err
}

#[test]
fn bundle_tamper_scenarios() {
    let l = log(40);
    let tmp = tempfile::tempdir().expect("tmp");
    let fresh = |name: &str| {
        let dir = tmp.path().join(name);
        export(&l, &dir, 5, 20, 40, &[25]);
        dir
    };
    let ok = fresh("ok");
    let report = bundle::verify_bundle(&ok, &trusted(&l)).expect("intact bundle");
    assert_eq!((report.records, report.range), (15, Some((5, 19))));

    // Changed record, MANIFEST not updated: the transport check names the file.
    let d = fresh("changed-raw");
    let mut ls = lines(&d);
    ls[3] = ls[3].replace("get", "GET");
    set_lines(&d, &ls);
    assert!(
        matches!(bundle_err(&d, &trusted(&l)), BundleError::ManifestMismatch { ref path, .. } if path == "records.jsonl")
    );

    // Changed record, MANIFEST resealed: the proof names the line and leaf.
    reseal(&d);
    let err = bundle_err(&d, &trusted(&l));
    assert!(
        matches!(
            err,
            BundleError::NotIncluded {
                line: 4,
                index: 8,
                ..
            }
        ),
        "{err}"
    );

    // Deleted record and its proof, descriptor and MANIFEST fixed up: the gap is named.
    let d = fresh("deleted");
    let mut ls = lines(&d);
    ls.remove(6);
    set_lines(&d, &ls);
    fs::remove_file(d.join("proofs/11.tlog-proof")).expect("rm");
    fs::write(
        d.join("BUNDLE"),
        "custos.dev/evidence-bundle@v1\nrecords 14\ncontiguous yes\n",
    )
    .expect("w");
    reseal(&d);
    let err = bundle_err(&d, &trusted(&l));
    assert!(
        matches!(
            err,
            BundleError::Gap {
                line: 7,
                index: 12,
                previous: 10
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("leaves 11..12 are missing"),
        "{err}"
    );

    // Deleted record only: records and proofs no longer pair up.
    let d = fresh("deleted-line");
    let mut ls = lines(&d);
    ls.remove(6);
    set_lines(&d, &ls);
    reseal(&d);
    let err = bundle_err(&d, &trusted(&l));
    assert!(
        matches!(
            err,
            BundleError::NotIncluded {
                line: 7,
                index: 11,
                ..
            }
        ),
        "{err}"
    );

    // Swapped records.
    let d = fresh("swapped");
    let mut ls = lines(&d);
    ls.swap(2, 9);
    set_lines(&d, &ls);
    reseal(&d);
    let err = bundle_err(&d, &trusted(&l));
    assert!(
        matches!(
            err,
            BundleError::NotIncluded {
                line: 3,
                index: 7,
                ..
            }
        ),
        "{err}"
    );

    // Truncated file.
    let d = fresh("truncated");
    let text = fs::read(d.join("records.jsonl")).expect("r");
    fs::write(d.join("records.jsonl"), &text[..text.len() / 2]).expect("w");
    reseal(&d);
    let err = bundle_err(&d, &trusted(&l));
    assert!(
        matches!(
            err,
            BundleError::NotCanonical { .. } | BundleError::Count { .. }
        ),
        "{err}"
    );

    // An extra file slipped in.
    let d = fresh("extra");
    fs::write(d.join("proofs/README"), "hi").expect("w");
    assert!(
        matches!(bundle_err(&d, &trusted(&l)), BundleError::Unlisted(ref p) if p == "proofs/README")
    );
}

#[test]
fn bundle_older_than_pin_and_pins() {
    let l = log(40);
    let tmp = tempfile::tempdir().expect("tmp");
    // The auditor kept the checkpoint of size 25, then later of size 40.
    let pin25 = l.checkpoint(25);
    let pin40 = l.checkpoint(40);
    let d = tmp.path().join("b");
    export(&l, &d, 5, 20, 40, &[25]);
    let with_pin = |pin: &str| BundleTrust {
        key: Some(l.key.verifier()),
        pin: Some(pin.to_owned()),
    };
    assert_eq!(
        bundle::verify_bundle(&d, &with_pin(&pin25))
            .expect("pin 25")
            .pin
            .map(|c| c.size),
        Some(25)
    );
    bundle::verify_bundle(&d, &with_pin(&pin40)).expect("pin equal size");
    let err = bundle_err(&d, &with_pin(&l.checkpoint(30)));
    assert!(
        matches!(err, BundleError::NoConsistencyProof { pin: 30 }),
        "{err}"
    );

    // Exported from a restored older database (checkpoint 25) while the auditor holds 40.
    let old = tmp.path().join("old");
    export(&l, &old, 5, 20, 25, &[]);
    let err = bundle_err(&old, &with_pin(&pin40));
    assert!(
        matches!(
            err,
            BundleError::OlderThanPin {
                bundle: 25,
                pin: 40
            }
        ),
        "{err}"
    );

    // A rewritten history, validly signed (the key was stolen): the pin's root is not a prefix.
    let mut leaves = l.leaves.clone();
    leaves[3] = record(300);
    let mut forged = MemoryLog::new();
    for leaf in &leaves {
        forged.append(leaf);
    }
    let rewritten = Log {
        key: l.key.clone(),
        leaves,
        tree: forged,
    };
    let f = tmp.path().join("forged");
    export(&rewritten, &f, 5, 20, 40, &[25]);
    let err = bundle_err(&f, &with_pin(&pin25));
    assert!(
        matches!(
            err,
            BundleError::PinInconsistent {
                pin: 25,
                bundle: 40,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bundle_with_swapped_key() {
    let l = log(40);
    let forger = Log {
        key: SignerKey::from_seed(ORIGIN, [99; 32]).expect("k"),
        leaves: l.leaves.clone(),
        tree: l.tree.clone(),
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path().join("b");
    export(&forger, &d, 0, 10, 40, &[]);
    let err = bundle_err(&d, &trusted(&l));
    assert!(matches!(err, BundleError::KeyMismatch { .. }), "{err}");
    // Without a trusted key the bundle is self-consistent; a pin signed by the real key exposes it.
    let report = bundle::verify_bundle(&d, &BundleTrust::default()).expect("self-consistent");
    assert_eq!(report.key_source, bundle::KeySource::Bundle);
    let err = bundle_err(
        &d,
        &BundleTrust {
            key: None,
            pin: Some(l.checkpoint(25)),
        },
    );
    assert!(matches!(err, BundleError::Pin(_)), "{err}");
}

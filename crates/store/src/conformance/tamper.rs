//! Every tamper the acceptance criteria name, each on a fresh log of 40 leaves with checkpoints at 16
//! and 40, must be caught by a full verification and say where.

use std::sync::Arc;

use custos_audit::note::SignerKey;
use custos_audit::{Checkpoint, VerifyError};

use super::story::append_concurrently;
use super::{sample_record, test_key, Backend, Tamper, TestLog};
use crate::proofs::frontier_at;
use crate::{
    encode_frontier, verify_store, verify_store_with, Sequencer, SequencerConfig, StoreError,
    StoreReport, StoreVerifyError,
};

/// A fresh log: 16 leaves signed, then 24 more signed. Returns the log and the size-40 note.
async fn build(backend: &dyn Backend) -> (TestLog, String) {
    let log = backend.open().await;
    let seq = Sequencer::new(
        Arc::clone(&log.store),
        test_key(),
        SequencerConfig::default(),
    );
    append_concurrently(&log.store, 0..16, 2).await;
    seq.integrate_all().await.expect("integrate");
    seq.sign().await.expect("sign").expect("16");
    append_concurrently(&log.store, 16..40, 3).await;
    seq.integrate_all().await.expect("integrate");
    let latest = seq.sign().await.expect("sign").expect("40");
    verify(&log).await.expect("untouched log verifies");
    (log, latest.note)
}

async fn verify(log: &TestLog) -> Result<StoreReport, StoreVerifyError> {
    verify_store(log.store.as_ref(), &test_key().verifier()).await
}

async fn tampered(backend: &dyn Backend, tamper: Tamper) -> StoreVerifyError {
    let (log, _) = build(backend).await;
    backend.tamper(&log, tamper.clone()).await;
    let err = verify(&log)
        .await
        .expect_err(&format!("{tamper:?} must not verify"));
    log.store.close().await;
    err
}

/// Runs every tamper scenario.
pub async fn tampering(backend: &dyn Backend) {
    let other = sample_record(1000);

    // One record's bytes changed: named exactly, by its stored leaf hash.
    let err = tampered(
        backend,
        Tamper::SetRecord {
            index: 5,
            record: other.clone(),
        },
    )
    .await;
    assert!(
        matches!(
            err,
            StoreVerifyError::Log(VerifyError::LeafHash { index: 5, .. })
        ),
        "{err}"
    );

    // Bytes and leaf hash changed together: the first signed root over it fails.
    let err = tampered(
        backend,
        Tamper::SetRecordAndHash {
            index: 5,
            record: other,
        },
    )
    .await;
    assert!(
        matches!(
            err,
            StoreVerifyError::Log(VerifyError::RootMismatch {
                size: 16,
                from: 0,
                ..
            })
        ),
        "{err}"
    );

    let err = tampered(backend, Tamper::Delete { index: 7 }).await;
    assert!(
        matches!(err, StoreVerifyError::MissingLeaf { index: 7, .. }),
        "{err}"
    );

    // Two leaves after the first checkpoint swapped: it still holds, the second does not.
    let err = tampered(backend, Tamper::Swap { a: 20, b: 30 }).await;
    assert!(
        matches!(
            err,
            StoreVerifyError::Log(VerifyError::RootMismatch {
                size: 40,
                from: 16,
                ..
            })
        ),
        "{err}"
    );

    let err = tampered(
        backend,
        Tamper::SetNode {
            level: 2,
            index: 1,
            hash: [9; 32],
        },
    )
    .await;
    assert!(
        matches!(
            err,
            StoreVerifyError::Node {
                level: 2,
                index: 1,
                ..
            }
        ),
        "{err}"
    );

    truncation(backend).await;
    foreign_keys(backend).await;
    refuses_to_sign_rewritten_history(backend).await;
}

/// Truncation, and an older copy restored (truncated and its later checkpoints dropped): the restored
/// copy verifies on its own, but not against the checkpoint kept outside.
async fn truncation(backend: &dyn Backend) {
    let (log, _) = build(backend).await;
    backend.tamper(&log, truncate_to(&log, 30).await).await;
    let err = verify(&log).await.expect_err("truncated");
    assert!(
        matches!(
            err,
            StoreVerifyError::Log(VerifyError::Truncated {
                size: 40,
                leaves: 30,
                ..
            })
        ),
        "{err}"
    );
    log.store.close().await;

    let (log, kept_outside) = build(backend).await;
    backend.tamper(&log, truncate_to(&log, 30).await).await;
    backend
        .tamper(&log, Tamper::DropCheckpointsAbove { size: 30 })
        .await;
    let alone = verify(&log)
        .await
        .expect("an older copy is self-consistent");
    assert_eq!(alone.log.leaves, 30);
    let err = verify_store_with(log.store.as_ref(), &test_key().verifier(), &[kept_outside])
        .await
        .expect_err("the external checkpoint exposes the restore");
    assert!(
        matches!(
            err,
            StoreVerifyError::Log(VerifyError::Truncated { size: 40, .. })
        ),
        "{err}"
    );
    log.store.close().await;
}

/// The tamper that cuts `log` to `size` leaves consistently (its frontier read first).
async fn truncate_to(log: &TestLog, size: u64) -> Tamper {
    let frontier = frontier_at(log.store.as_ref(), size)
        .await
        .expect("frontier");
    Tamper::Truncate {
        size,
        frontier: encode_frontier(&frontier),
    }
}

/// A checkpoint signed by another key is refused; so is verifying with another key.
async fn foreign_keys(backend: &dyn Backend) {
    let (log, _) = build(backend).await;
    let impostor = SignerKey::from_seed("custos.test/log", [8; 32]).expect("key");
    let tree = log.store.tree().await.expect("tree");
    let forged = Checkpoint::new("custos.test/log", tree.size, tree.root())
        .sign(&impostor)
        .expect("sign");
    let err = verify_store(log.store.as_ref(), &impostor.verifier())
        .await
        .expect_err("another key");
    assert!(
        matches!(err, StoreVerifyError::Log(VerifyError::Checkpoint { .. })),
        "{err}"
    );
    log.store
        .put_checkpoint(tree.size, &forged)
        .await
        .expect("stored");
    let err = verify(&log).await.expect_err("forged checkpoint");
    assert!(
        matches!(
            err,
            StoreVerifyError::Log(VerifyError::Checkpoint { position: 2, .. })
        ),
        "{err}"
    );
    log.store.close().await;
}

/// A node under the latest checkpoint rewritten: the sequencer will not sign the next head.
async fn refuses_to_sign_rewritten_history(backend: &dyn Backend) {
    let (log, _) = build(backend).await;
    backend
        .tamper(
            &log,
            Tamper::SetNode {
                level: 3,
                index: 4,
                hash: [1; 32],
            },
        )
        .await;
    append_concurrently(&log.store, 40..45, 1).await;
    let seq = Sequencer::new(
        Arc::clone(&log.store),
        test_key(),
        SequencerConfig::default(),
    );
    seq.integrate_all().await.expect("integrate");
    let err = seq.sign().await.expect_err("must refuse");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert_eq!(
        log.store
            .latest_checkpoint()
            .await
            .expect("latest")
            .map(|c| c.size),
        Some(40)
    );
    log.store.close().await;
}

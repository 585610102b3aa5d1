//! Properties: proofs verify for any sizes; any flipped bit in a leaf, a proof or a checkpoint fails.

use custos_audit::merkle::{consistency_proof, inclusion_proof, leaf_hash, root, MemoryLog};
use custos_audit::{Checkpoint, SignerKey, TlogProof};
use proptest::prelude::*;

fn tree(n: u64) -> MemoryLog {
    let mut log = MemoryLog::new();
    for i in 0..n {
        log.append(format!("{{\"leaf\":{i}}}").as_bytes());
    }
    log
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn inclusion_and_consistency_verify_for_random_sizes(n in 1u64..600, a in any::<u64>(), b in any::<u64>()) {
        let log = tree(n);
        let size = 1 + a % n;
        let index = b % size;
        let p = inclusion_proof(&log, index, size).expect("inclusion");
        let head = root(&log, size).expect("root");
        prop_assert!(p.verify(&log_leaf(&log, index), &head).is_ok());
        let old = 1 + b % size;
        let c = consistency_proof(&log, old, size).expect("consistency");
        prop_assert!(c.verify(&root(&log, old).expect("old"), &head).is_ok());
    }

    #[test]
    fn flipped_bit_in_leaf_or_proof_fails(n in 2u64..200, i in any::<u64>(), flip in any::<(usize, u8)>()) {
        let log = tree(n);
        let index = i % n;
        let leaf = format!("{{\"leaf\":{index}}}").into_bytes();
        let p = inclusion_proof(&log, index, n).expect("inclusion");
        let head = log.root();
        let mut bad_leaf = leaf.clone();
        let at = flip.0 % bad_leaf.len();
        bad_leaf[at] ^= 1 << (flip.1 % 8);
        prop_assert!(p.verify(&leaf_hash(&bad_leaf), &head).is_err());
        if !p.hashes.is_empty() {
            let mut bad = p.clone();
            let h = flip.0 % bad.hashes.len();
            bad.hashes[h].0[flip.0 % 32] ^= 1 << (flip.1 % 8);
            prop_assert!(bad.verify(&leaf_hash(&leaf), &head).is_err());
        }
        let c = consistency_proof(&log, 1 + index % (n - 1), n).expect("consistency");
        if !c.hashes.is_empty() {
            let mut bad = c.clone();
            let h = flip.0 % bad.hashes.len();
            bad.hashes[h].0[flip.0 % 32] ^= 1 << (flip.1 % 8);
            prop_assert!(bad.verify(&root(&log, c.old).expect("old"), &head).is_err());
        }
    }

    #[test]
    fn flipped_bit_anywhere_in_a_tlog_proof_file_fails(n in 1u64..100, i in any::<u64>(), at in any::<usize>(), bit in 0u8..8) {
        let key = SignerKey::from_seed("custos.test/log", [1; 32]).expect("key");
        let log = tree(n);
        let index = i % n;
        let signed = Checkpoint::new("custos.test/log", n, log.root()).sign(&key).expect("sign");
        let text = TlogProof::new(&inclusion_proof(&log, index, n).expect("proof"), &signed).to_text();
        let leaf = log_leaf(&log, index);
        let ok = |bytes: &[u8]| -> bool {
            let Ok(text) = std::str::from_utf8(bytes) else { return false };
            let Ok(proof) = TlogProof::parse(text) else { return false };
            proof.verify(&leaf, &key.verifier(), Some("custos.test/log")).is_ok()
        };
        prop_assert!(ok(text.as_bytes()));
        let mut bytes = text.into_bytes();
        let at = at % bytes.len();
        bytes[at] ^= 1 << bit;
        prop_assert!(!ok(&bytes), "flip at byte {at} bit {bit} still verifies");
    }
}

fn log_leaf(log: &MemoryLog, index: u64) -> custos_audit::Hash {
    use custos_audit::HashSource as _;
    log.node_hash(0, index).expect("leaf")
}

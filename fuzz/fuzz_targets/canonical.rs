//! The audit log's readers, which an examiner runs on files from elsewhere: never panic, and each
//! format has one text per value (what parses writes back byte for byte), so a hash or signature over
//! the text covers exactly what was read.
//!
//! The first byte picks the format (ASCII digits pick modes, so seeds stay text):
//! - `0`: a record's canonical bytes (`Record::from_canonical`, `canonical::check`, JCS);
//! - `1`: a checkpoint, as note text and as a signed note (`Checkpoint::from_text`, `note::parse`,
//!   `Checkpoint::open` with a fixed key); valid texts are also signed and reopened;
//! - `2`: a tlog-proof, parsed, then verified with its checkpoint re-signed by the fixed key, so
//!   inclusion proofs with any index, size and hashes reach the Merkle code;
//! - `3`: a consistency file, likewise against a kept checkpoint built from the input;
//! - `4`: a verifier key (`name+id+key`);
//! - `5`: the bundle's `MANIFEST` and `BUNDLE` descriptor.
#![no_main]

use std::sync::OnceLock;

use custos_audit::bundle::{Descriptor, Manifest};
use custos_audit::merkle::leaf_hash;
use custos_audit::{
    canonical, note, Checkpoint, ConsistencyFile, Hash, Record, SignerKey, TlogProof, VerifierKey,
};
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "custos.example/log";

fn signer() -> &'static SignerKey {
    static KEY: OnceLock<SignerKey> = OnceLock::new();
    KEY.get_or_init(|| SignerKey::from_seed(ORIGIN, [7; 32]).expect("fixed key"))
}

fn verifier() -> &'static VerifierKey {
    static KEY: OnceLock<VerifierKey> = OnceLock::new();
    KEY.get_or_init(|| signer().verifier())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 6 {
        0 => record(rest),
        1 => checkpoint(&String::from_utf8_lossy(rest)),
        2 => tlog_proof(&String::from_utf8_lossy(rest)),
        3 => consistency(&String::from_utf8_lossy(rest)),
        4 => verifier_key(&String::from_utf8_lossy(rest)),
        _ => bundle_files(&String::from_utf8_lossy(rest)),
    }
});

fn record(bytes: &[u8]) {
    if let Ok(canonical) = canonical::canonicalize(bytes) {
        assert_eq!(
            canonical::check(&canonical),
            Ok(()),
            "JCS output is not canonical"
        );
        assert_eq!(canonical::canonicalize(&canonical).as_ref(), Ok(&canonical));
        if canonical::check(bytes).is_ok() {
            assert_eq!(canonical, bytes);
        }
    }
    let Ok(record) = Record::from_canonical(bytes) else {
        return;
    };
    // Unknown fields are dropped on reading, so compare values, not bytes.
    let written = record.canonical_bytes().expect("a read record writes");
    let reread = Record::from_canonical(&written).expect("written bytes read back");
    assert_eq!(reread, record);
    assert_eq!(record.leaf_hash().expect("hash"), leaf_hash(&written));
}

fn checkpoint(text: &str) {
    if let Ok(cp) = Checkpoint::from_text(text) {
        assert_eq!(
            cp.to_text().as_deref(),
            Ok(text),
            "checkpoint text does not round-trip"
        );
        match cp.sign(signer()) {
            Ok(signed) => {
                assert_eq!(Checkpoint::open(&signed, verifier()).as_ref(), Ok(&cp));
                assert!(note::parse(&signed).is_ok());
            }
            // `from_text` reads note text that `note::open` has already checked; signing refuses
            // control characters itself.
            Err(_) => assert!(
                text.chars().any(|c| c < ' ' && c != '\n'),
                "{text:?} does not sign"
            ),
        }
    }
    if let Ok(parsed) = note::parse(text) {
        assert!(parsed.text.ends_with('\n'));
        assert!(!parsed.signatures.is_empty() && parsed.signatures.len() <= note::MAX_SIGNATURES);
    }
    if let Ok(opened) = note::open(text, std::slice::from_ref(verifier())) {
        // Only the fixed key can have signed it; the fuzzer cannot forge Ed25519.
        assert!(opened.verified.iter().all(|s| s.name == ORIGIN));
    }
    let _ = Checkpoint::open(text, verifier());
}

fn tlog_proof(text: &str) {
    let Ok(proof) = TlogProof::parse(text) else {
        return;
    };
    assert_eq!(proof.to_text(), text, "tlog-proof text does not round-trip");
    let leaf = leaf_hash(b"leaf");
    let _ = proof.verify(&leaf, verifier(), Some(ORIGIN));
    let cp = Checkpoint::from_text(&proof.checkpoint);
    if let Ok((cp, signed)) = cp.and_then(|cp| cp.sign(signer()).map(|s| (cp, s))) {
        let resigned = TlogProof {
            checkpoint: signed,
            ..proof.clone()
        };
        if let Ok(opened) = resigned.verify(&leaf, verifier(), None) {
            assert_eq!(opened, cp);
            assert!(proof.index < cp.size, "inclusion verified outside the tree");
        }
        // The proof's first hash as the leaf: a path that starts at a real node.
        if let Some(first) = proof.hashes.first() {
            let _ = resigned.verify(first, verifier(), None);
        }
    }
}

fn consistency(text: &str) {
    let Ok(file) = ConsistencyFile::parse(text) else {
        return;
    };
    assert_eq!(
        file.to_text(),
        text,
        "consistency file text does not round-trip"
    );
    let newer = Checkpoint::from_text(&file.checkpoint);
    let Ok((newer, signed)) = newer.and_then(|cp| cp.sign(signer()).map(|s| (cp, s))) else {
        return;
    };
    let resigned = ConsistencyFile {
        checkpoint: signed,
        ..file.clone()
    };
    // The kept root: the first hash (a proof from a power of two starts at the old root) or a fixed one.
    let root = file.hashes.first().copied().unwrap_or(Hash([1; 32]));
    let kept = Checkpoint::new(newer.origin.clone(), file.old, root);
    if let Ok(opened) = resigned.verify(&kept, verifier()) {
        assert_eq!(opened, newer);
        assert!(
            file.old <= newer.size,
            "consistency verified for a shrinking log"
        );
    }
    let _ = file.verify(&kept, verifier());
}

fn verifier_key(text: &str) {
    let Ok(key) = VerifierKey::parse(text) else {
        return;
    };
    assert_eq!(
        key.to_string(),
        text,
        "verifier key text does not round-trip"
    );
    assert!(note::is_valid_name(key.name()));
    let _ = key.verify(b"message", &[0; 64]);
}

fn bundle_files(text: &str) {
    if let Ok(manifest) = Manifest::parse(text) {
        for path in manifest.files.keys() {
            assert!(
                !path.starts_with('/')
                    && !path
                        .split('/')
                        .any(|p| p.is_empty() || p == "." || p == "..")
            );
        }
        assert_eq!(
            Manifest::parse(&manifest.to_text()).ok().as_ref(),
            Some(&manifest)
        );
    }
    if let Ok(descriptor) = Descriptor::parse(text) {
        assert_eq!(
            Descriptor::parse(&descriptor.to_text()).ok(),
            Some(descriptor)
        );
    }
}

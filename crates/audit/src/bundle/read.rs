//! Verifying a bundle: MANIFEST, key, checkpoint signature, each record against its proof, contiguity,
//! and consistency with a checkpoint the examiner kept. The first failure is returned, saying where.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead as _, BufReader};
use std::path::Path;

use super::{
    io_err, sha256_file, BundleError, Descriptor, Manifest, CHECKPOINT, CONSISTENCY_DIR,
    CONSISTENCY_SUFFIX, DESCRIPTOR, MANIFEST, PROOFS_DIR, PROOF_SUFFIX, RECORDS, VERIFIER_KEY,
};
use crate::canonical;
use crate::checkpoint::Checkpoint;
use crate::merkle::{leaf_hash, InclusionProof};
use crate::note::VerifierKey;
use crate::proof::{ConsistencyFile, ProofCheckError, TlogProof};

/// What the examiner brings: the key they trust, and a checkpoint they kept from earlier.
#[derive(Debug, Clone, Default)]
pub struct BundleTrust {
    /// The log's verifier key as the examiner got it out of band. Without it the bundle's own
    /// `verifier-key` is used, which proves integrity but not who signed.
    pub key: Option<VerifierKey>,
    /// A signed checkpoint kept from earlier; the bundle must extend it.
    pub pin: Option<String>,
}

/// Where the key that verified the bundle came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// The examiner's trusted key (the bundle's `verifier-key` matched it).
    Trusted,
    /// The bundle's own `verifier-key`: integrity holds, but compare the key with one you trust.
    Bundle,
}

/// What a verified bundle shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    /// The checkpoint all records are proven against.
    pub checkpoint: Checkpoint,
    /// The key that verified it.
    pub key: VerifierKey,
    /// Where that key came from.
    pub key_source: KeySource,
    /// Records verified.
    pub records: u64,
    /// Lowest and highest leaf index.
    pub range: Option<(u64, u64)>,
    /// Leaf ranges between the first and last record that are not in the bundle (a filtered export).
    pub gaps: Vec<(u64, u64)>,
    /// Whether the bundle declares itself contiguous (then `gaps` is empty).
    pub contiguous: bool,
    /// The pinned checkpoint the bundle was proven consistent with.
    pub pin: Option<Checkpoint>,
}

/// Verifies the bundle in `dir`.
pub fn verify_bundle(dir: &Path, trust: &BundleTrust) -> Result<BundleReport, BundleError> {
    check_manifest(dir)?;
    let bundle_key = VerifierKey::parse(read_text(dir, VERIFIER_KEY)?.trim_end_matches('\n'))?;
    let (key, key_source) = match &trust.key {
        Some(trusted) if *trusted != bundle_key => {
            return Err(BundleError::KeyMismatch {
                bundle: bundle_key.to_string(),
                trusted: trusted.to_string(),
            })
        }
        Some(trusted) => (trusted.clone(), KeySource::Trusted),
        None => (bundle_key, KeySource::Bundle),
    };
    let signed = read_text(dir, CHECKPOINT)?;
    let checkpoint = Checkpoint::open(&signed, &key).map_err(BundleError::Checkpoint)?;
    let descriptor = Descriptor::parse(&read_text(dir, DESCRIPTOR)?)?;

    let proofs = proof_files(dir)?;
    let (records, range, gaps) =
        check_records(dir, &proofs, &signed, &checkpoint, descriptor.contiguous)?;
    if records != descriptor.records {
        return Err(BundleError::Descriptor(
            "record count differs from records.jsonl",
        ));
    }
    let pin = match &trust.pin {
        Some(pin) => Some(check_pin(dir, pin, &signed, &checkpoint, &key)?),
        None => None,
    };
    Ok(BundleReport {
        checkpoint,
        key,
        key_source,
        records,
        range,
        gaps,
        contiguous: descriptor.contiguous,
        pin,
    })
}

fn read_text(dir: &Path, name: &str) -> Result<String, BundleError> {
    fs::read_to_string(dir.join(name)).map_err(io_err(dir.join(name)))
}

/// Every file is listed, every listed file exists and has its hash.
fn check_manifest(dir: &Path) -> Result<(), BundleError> {
    let manifest = Manifest::parse(&read_text(dir, MANIFEST)?)?;
    let mut present = Vec::new();
    list_files(dir, "", &mut present)?;
    for path in &present {
        if path != MANIFEST && !manifest.files.contains_key(path) {
            return Err(BundleError::Unlisted(path.clone()));
        }
    }
    for (path, listed) in &manifest.files {
        if !present.contains(path) {
            return Err(BundleError::Missing(path.clone()));
        }
        let actual = sha256_file(&dir.join(path))?;
        if actual != *listed {
            return Err(BundleError::ManifestMismatch {
                path: path.clone(),
                listed: *listed,
                actual,
            });
        }
    }
    Ok(())
}

fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), BundleError> {
    let here = if prefix.is_empty() {
        dir.to_owned()
    } else {
        dir.join(prefix)
    };
    for entry in fs::read_dir(&here).map_err(io_err(&here))? {
        let entry = entry.map_err(io_err(&here))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type().map_err(io_err(entry.path()))?;
        if kind.is_dir() {
            list_files(dir, &rel, out)?;
        } else {
            // Symlinks and other oddities are listed too, so MANIFEST must account for them.
            out.push(rel);
        }
    }
    Ok(())
}

/// `proofs/<index>.tlog-proof`, by index.
fn proof_files(dir: &Path) -> Result<BTreeMap<u64, String>, BundleError> {
    let mut proofs = BTreeMap::new();
    let path = dir.join(PROOFS_DIR);
    if !path.exists() {
        return Ok(proofs);
    }
    for entry in fs::read_dir(&path).map_err(io_err(&path))? {
        let name = entry
            .map_err(io_err(&path))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        let rel = format!("{PROOFS_DIR}/{name}");
        let index = name
            .strip_suffix(PROOF_SUFFIX)
            .filter(|n| n == &"0" || (!n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| BundleError::ProofName(rel.clone()))?;
        proofs.insert(index, rel);
    }
    Ok(proofs)
}

type RecordsOutcome = (u64, Option<(u64, u64)>, Vec<(u64, u64)>);

fn check_records(
    dir: &Path,
    proofs: &BTreeMap<u64, String>,
    signed: &str,
    checkpoint: &Checkpoint,
    contiguous: bool,
) -> Result<RecordsOutcome, BundleError> {
    let path = dir.join(RECORDS);
    let reader = BufReader::new(File::open(&path).map_err(io_err(&path))?);
    let mut proof_iter = proofs.iter();
    let (mut line_no, mut range, mut gaps) = (0u64, None::<(u64, u64)>, Vec::new());
    for line in reader.split(b'\n') {
        let bytes = line.map_err(io_err(&path))?;
        line_no += 1;
        let Some((&index, rel)) = proof_iter.next() else {
            return Err(BundleError::Count {
                records: count_lines(&path)?,
                proofs: proofs.len() as u64,
            });
        };
        let proof =
            TlogProof::parse(&read_text(dir, rel)?).map_err(|source| BundleError::ProofFormat {
                path: rel.clone(),
                source,
            })?;
        if proof.index != index {
            return Err(BundleError::ProofIndex {
                path: rel.clone(),
                inside: proof.index,
            });
        }
        if proof.checkpoint != signed {
            return Err(BundleError::ProofCheckpoint(rel.clone()));
        }
        canonical::check(&bytes).map_err(|source| BundleError::NotCanonical {
            line: line_no,
            index,
            source,
        })?;
        let inclusion = InclusionProof {
            index,
            size: checkpoint.size,
            hashes: proof.hashes,
        };
        inclusion
            .verify(&leaf_hash(&bytes), &checkpoint.root)
            .map_err(|source| BundleError::NotIncluded {
                line: line_no,
                index,
                size: checkpoint.size,
                source,
            })?;
        if let Some((_, previous)) = range {
            if index != previous + 1 {
                if contiguous {
                    return Err(BundleError::Gap {
                        line: line_no,
                        index,
                        previous,
                    });
                }
                gaps.push((previous + 1, index));
            }
        }
        range = Some((range.map_or(index, |r| r.0), index));
    }
    if line_no != proofs.len() as u64 {
        return Err(BundleError::Count {
            records: line_no,
            proofs: proofs.len() as u64,
        });
    }
    Ok((line_no, range, gaps))
}

fn count_lines(path: &Path) -> Result<u64, BundleError> {
    let reader = BufReader::new(File::open(path).map_err(io_err(path))?);
    Ok(reader.split(b'\n').count() as u64)
}

/// The pin must verify under the key, be of the same log, and be a prefix of the bundle's checkpoint.
fn check_pin(
    dir: &Path,
    pin: &str,
    signed: &str,
    checkpoint: &Checkpoint,
    key: &VerifierKey,
) -> Result<Checkpoint, BundleError> {
    let kept = Checkpoint::open(pin, key).map_err(BundleError::Pin)?;
    let (pin_size, bundle_size) = (kept.size, checkpoint.size);
    let inconsistent = |source| BundleError::PinInconsistent {
        pin: pin_size,
        bundle: bundle_size,
        source,
    };
    if kept.origin != checkpoint.origin {
        return Err(inconsistent(ProofCheckError::Origin {
            expected: kept.origin.clone(),
            found: checkpoint.origin.clone(),
        }));
    }
    if pin_size > bundle_size {
        return Err(BundleError::OlderThanPin {
            bundle: bundle_size,
            pin: pin_size,
        });
    }
    if pin_size == bundle_size || pin_size == 0 {
        let proof = crate::merkle::ConsistencyProof {
            old: pin_size,
            new: bundle_size,
            hashes: Vec::new(),
        };
        proof
            .verify(&kept.root, &checkpoint.root)
            .map_err(|e| inconsistent(e.into()))?;
        return Ok(kept);
    }
    let rel = format!("{CONSISTENCY_DIR}/{pin_size}{CONSISTENCY_SUFFIX}");
    if !dir.join(&rel).exists() {
        return Err(BundleError::NoConsistencyProof { pin: pin_size });
    }
    let file = ConsistencyFile::parse(&read_text(dir, &rel)?).map_err(|source| {
        BundleError::ProofFormat {
            path: rel.clone(),
            source,
        }
    })?;
    if file.checkpoint != signed {
        return Err(BundleError::ConsistencyCheckpoint(rel));
    }
    file.verify(&kept, key).map_err(inconsistent)?;
    Ok(kept)
}

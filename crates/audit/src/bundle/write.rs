//! Writing a bundle from records, the log's hashes and a signed checkpoint. Every proof is checked
//! before it is written: a bundle that would not verify is never produced.

use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::Path;

use super::{
    io_err, sha256_file, BundleError, Descriptor, Manifest, CHECKPOINT, CONSISTENCY_DIR,
    CONSISTENCY_SUFFIX, DESCRIPTOR, MANIFEST, PROOFS_DIR, PROOF_SUFFIX, RECORDS, VERIFIER_KEY,
};
use crate::canonical;
use crate::checkpoint::Checkpoint;
use crate::merkle::{consistency_proof, inclusion_proof, leaf_hash, root, HashSource};
use crate::note::VerifierKey;
use crate::proof::{ConsistencyFile, TlogProof};

/// What to put in a bundle besides the records.
#[derive(Debug, Clone, Copy)]
pub struct BundleSpec<'a> {
    /// The signed checkpoint every proof is made for (normally the latest).
    pub checkpoint: &'a str,
    /// The log's verifier key.
    pub key: &'a VerifierKey,
    /// True when the records are every leaf from the first to the last (no filter applied).
    pub contiguous: bool,
    /// Older tree sizes to include consistency proofs from (checkpoints auditors may have kept).
    pub consistency_from: &'a [u64],
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSummary {
    /// The checkpoint the proofs are for.
    pub checkpoint: Checkpoint,
    /// Records written.
    pub records: u64,
    /// Lowest and highest leaf index written.
    pub range: Option<(u64, u64)>,
    /// Files listed in MANIFEST.
    pub files: usize,
}

/// Writes a bundle into `dir` (created, or existing and empty): `records` are `(leaf index, canonical
/// bytes)` in ascending index order; proofs come from `source` at the checkpoint's size.
pub fn write<S, I, B>(
    dir: &Path,
    source: &S,
    records: I,
    spec: &BundleSpec<'_>,
) -> Result<BundleSummary, BundleError>
where
    S: HashSource + ?Sized,
    I: IntoIterator<Item = (u64, B)>,
    B: AsRef<[u8]>,
{
    let checkpoint =
        Checkpoint::open(spec.checkpoint, spec.key).map_err(BundleError::Checkpoint)?;
    let size = checkpoint.size;
    let actual = root(source, size).map_err(|e| BundleError::Source(e.to_string()))?;
    if actual != checkpoint.root {
        return Err(BundleError::CheckpointRoot {
            size,
            signed: checkpoint.root,
            actual,
        });
    }
    prepare_dir(dir)?;
    let mut written = Vec::new();

    fs::create_dir(dir.join(PROOFS_DIR)).map_err(io_err(dir.join(PROOFS_DIR)))?;
    let records_path = dir.join(RECORDS);
    let mut out = BufWriter::new(File::create(&records_path).map_err(io_err(&records_path))?);
    let (mut count, mut range) = (0u64, None::<(u64, u64)>);
    for (index, bytes) in records {
        let bytes = bytes.as_ref();
        let line = count + 1;
        if index >= size || range.is_some_and(|(_, last)| index <= last) {
            return Err(BundleError::Order {
                index,
                previous: range.map_or(0, |r| r.1),
                size,
            });
        }
        canonical::check(bytes).map_err(|source| BundleError::NotCanonical {
            line,
            index,
            source,
        })?;
        let proof =
            inclusion_proof(source, index, size).map_err(|e| BundleError::Source(e.to_string()))?;
        proof
            .verify(&leaf_hash(bytes), &checkpoint.root)
            .map_err(|source| BundleError::NotIncluded {
                line,
                index,
                size,
                source,
            })?;
        out.write_all(bytes)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(io_err(&records_path))?;
        let name = format!("{PROOFS_DIR}/{index}{PROOF_SUFFIX}");
        write_file(
            dir,
            &name,
            TlogProof::new(&proof, spec.checkpoint).to_text().as_bytes(),
            &mut written,
        )?;
        range = Some((range.map_or(index, |r| r.0), index));
        count += 1;
    }
    out.into_inner()
        .map_err(|e| io_err(&records_path)(e.into_error()))?
        .sync_all()
        .map_err(io_err(&records_path))?;
    written.push(RECORDS.to_owned());

    for &old in spec.consistency_from {
        if old == 0 || old >= size {
            if old == size {
                continue;
            }
            return Err(BundleError::ConsistencySize { old, size });
        }
        let proof =
            consistency_proof(source, old, size).map_err(|e| BundleError::Source(e.to_string()))?;
        let dir_path = dir.join(CONSISTENCY_DIR);
        if !dir_path.exists() {
            fs::create_dir(&dir_path).map_err(io_err(&dir_path))?;
        }
        let name = format!("{CONSISTENCY_DIR}/{old}{CONSISTENCY_SUFFIX}");
        write_file(
            dir,
            &name,
            ConsistencyFile::new(&proof, spec.checkpoint)
                .to_text()
                .as_bytes(),
            &mut written,
        )?;
    }

    write_file(dir, CHECKPOINT, spec.checkpoint.as_bytes(), &mut written)?;
    write_file(
        dir,
        VERIFIER_KEY,
        format!("{}\n", spec.key).as_bytes(),
        &mut written,
    )?;
    let descriptor = Descriptor {
        records: count,
        contiguous: spec.contiguous,
    };
    write_file(
        dir,
        DESCRIPTOR,
        descriptor.to_text().as_bytes(),
        &mut written,
    )?;

    let mut manifest = Manifest::default();
    for name in &written {
        manifest
            .files
            .insert(name.clone(), sha256_file(&dir.join(name))?);
    }
    let files = manifest.files.len();
    let mut ignored = Vec::new();
    write_file(dir, MANIFEST, manifest.to_text().as_bytes(), &mut ignored)?;
    Ok(BundleSummary {
        checkpoint,
        records: count,
        range,
        files,
    })
}

fn prepare_dir(dir: &Path) -> Result<(), BundleError> {
    if dir.exists() {
        let mut entries = fs::read_dir(dir).map_err(io_err(dir))?;
        if entries.next().is_some() {
            return Err(BundleError::NotEmpty(dir.to_owned()));
        }
        Ok(())
    } else {
        fs::create_dir_all(dir).map_err(io_err(dir))
    }
}

fn write_file(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    written: &mut Vec<String>,
) -> Result<(), BundleError> {
    let path = dir.join(name);
    let mut file = File::create(&path).map_err(io_err(&path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&path))?;
    written.push(name.to_owned());
    Ok(())
}

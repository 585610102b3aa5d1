//! `MANIFEST`: one `sha256sum` line per file, so `sha256sum -c MANIFEST` checks a bundle with stock
//! tools.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read as _};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{io_err, BundleError};
use crate::merkle::Hash;

/// Relative path → SHA-256, sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The entries.
    pub files: BTreeMap<String, Hash>,
}

impl Manifest {
    /// `<hex>  <path>\n` per file, in path order.
    pub fn to_text(&self) -> String {
        self.files
            .iter()
            .map(|(path, hash)| format!("{}  {path}\n", hash.to_hex()))
            .collect()
    }

    /// Parses MANIFEST text; paths must be relative, `/`-separated and without `.` or `..` parts.
    pub fn parse(text: &str) -> Result<Manifest, BundleError> {
        let mut files = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let bad = || BundleError::ManifestLine { line: i + 1 };
            let (hex, path) = line.split_once("  ").ok_or_else(bad)?;
            let hash = Hash::from_hex(hex).map_err(|_| bad())?;
            let safe = !path.is_empty()
                && !path.starts_with('/')
                && path
                    .split('/')
                    .all(|part| !part.is_empty() && part != "." && part != "..");
            if !safe || files.insert(path.to_owned(), hash).is_some() {
                return Err(bad());
            }
        }
        Ok(Manifest { files })
    }
}

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<Hash, BundleError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Hash(hasher.finalize().into()))
}

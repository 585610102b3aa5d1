//! Reading policy files (and policy test files) from disk: the only I/O in this crate.
//!
//! A path is a single `.cedar` file or a folder searched recursively for `*.cedar`, skipping names
//! that start with `.` (Kubernetes ConfigMap mounts keep their data in `..data` folders beside the
//! files). Files are read in path order, so policy ids and messages are the same on every load.

use std::fs;
use std::path::{Path, PathBuf};

use crate::compile::Source;
use crate::error::{Diagnostic, PolicyError};
use crate::set::PolicySet;
use crate::suite::Suite;

/// The largest policy or test file read.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// The most files read from one folder tree.
pub const MAX_FILES: usize = 10_000;
/// How deep folders are searched.
const MAX_DEPTH: usize = 8;

/// A policy set loaded from disk.
#[derive(Debug)]
pub struct LoadedPolicies {
    /// The validated set.
    pub set: PolicySet,
    /// The files it was read from, in load order.
    pub files: Vec<PathBuf>,
    /// Validator warnings (the set loaded anyway).
    pub warnings: Vec<Diagnostic>,
}

/// Loads and validates the policies at `path` (a `.cedar` file or a folder of them). Any problem
/// refuses the whole set, with `file:line:column` for each.
pub fn load(path: &Path) -> Result<LoadedPolicies, PolicyError> {
    let files = if is_dir(path)? {
        let files = find_files(path, ".cedar")?;
        if files.is_empty() {
            return Err(PolicyError::NoPolicies {
                path: path.to_owned(),
            });
        }
        files
    } else {
        vec![path.to_owned()]
    };
    let sources = files
        .iter()
        .map(|f| {
            Ok(Source {
                name: f.display().to_string(),
                text: read(f)?,
            })
        })
        .collect::<Result<Vec<_>, PolicyError>>()?;
    let compiled = PolicySet::compile(&sources)?;
    Ok(LoadedPolicies {
        set: compiled.set,
        files,
        warnings: compiled.warnings,
    })
}

/// Files under `dir` whose names end with `suffix`, recursively, in path order.
pub fn find_files(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>, PolicyError> {
    let mut found = Vec::new();
    walk(dir, suffix, 0, &mut found)?;
    found.sort();
    Ok(found)
}

/// Reads a policy test file, with the bodies its cases name in `bodyFile` (relative to it).
pub fn load_suite(path: &Path) -> Result<Suite, PolicyError> {
    let name = path.display().to_string();
    let mut suite = Suite::from_yaml(&read(path)?).map_err(|message| PolicyError::TestFile {
        file: name.clone(),
        message,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    for case in &mut suite.cases {
        if let Some(file) = case.body_file.take() {
            let bytes = fs::read(base.join(&file)).map_err(|e| PolicyError::TestFile {
                file: name.clone(),
                message: format!("case {:?}: bodyFile {file}: {e}", case.name),
            })?;
            case.body_raw = Some(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Ok(suite)
}

fn is_dir(path: &Path) -> Result<bool, PolicyError> {
    fs::metadata(path)
        .map(|m| m.is_dir())
        .map_err(|source| PolicyError::Io {
            path: path.to_owned(),
            source,
        })
}

fn read(path: &Path) -> Result<String, PolicyError> {
    let io = |source| PolicyError::Io {
        path: path.to_owned(),
        source,
    };
    let size = fs::metadata(path).map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(PolicyError::TooLarge {
            path: path.to_owned(),
            what: format!("{size} bytes, more than {MAX_FILE_BYTES}"),
        });
    }
    fs::read_to_string(path).map_err(io)
}

fn walk(
    dir: &Path,
    suffix: &str,
    depth: usize,
    found: &mut Vec<PathBuf>,
) -> Result<(), PolicyError> {
    let io = |source| PolicyError::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // Follows symlinks, as ConfigMap mounts need.
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() && depth < MAX_DEPTH {
            walk(&path, suffix, depth + 1, found)?;
        } else if meta.is_file() && name.ends_with(suffix) {
            found.push(path);
        }
        if found.len() > MAX_FILES {
            return Err(PolicyError::TooLarge {
                path: dir.to_owned(),
                what: format!("more than {MAX_FILES} files"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

//! The log's signing key on disk: one line, Go's `PRIVATE+KEY+<name>+<id>+<base64>` form (so
//! `golang.org/x/mod/sumdb/note.NewSigner` reads the same file), created on first start with mode 0600,
//! refused when anyone but its owner can read it (like ssh does).
//!
//! The only module that touches the file system besides [`bundle`](crate::bundle).

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::note::{KeyError, SignerKey};

/// Why the key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing the file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The file's content is not a signer key.
    #[error("key file {path}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
    /// Group or others may read or write the file.
    #[error("key file {path} has mode {mode:04o}; only its owner may access it (chmod 600)")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key in the file has another name than the log's origin.
    #[error("key file {path} holds a key named {found:?}, the log is {expected:?}")]
    NameMismatch {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        expected: String,
        /// The name in the file.
        found: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads the signing key from `path`, refusing a file others can access.
pub fn load(path: &Path) -> Result<SignerKey, KeyFileError> {
    check_mode(path)?;
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    SignerKey::parse(text.trim_end_matches(['\n', '\r'])).map_err(|source| KeyFileError::Key {
        path: path.to_owned(),
        source,
    })
}

/// Loads the key at `path`, or, if there is no file, generates a key named `name` and writes it
/// (mode 0600, never over an existing file). Returns the key and whether it was created now.
pub fn load_or_generate(path: &Path, name: &str) -> Result<(SignerKey, bool), KeyFileError> {
    match fs::symlink_metadata(path) {
        Ok(_) => {
            let key = load(path)?;
            if key.name() != name {
                return Err(KeyFileError::NameMismatch {
                    path: path.to_owned(),
                    expected: name.to_owned(),
                    found: key.name().to_owned(),
                });
            }
            Ok((key, false))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = SignerKey::generate(name).map_err(|source| KeyFileError::Key {
                path: path.to_owned(),
                source,
            })?;
            match write_new(path, &key) {
                Ok(()) => Ok((key, true)),
                // Another process won the race: use its key.
                Err(KeyFileError::Io { source, .. })
                    if source.kind() == io::ErrorKind::AlreadyExists =>
                {
                    load(path).map(|k| (k, false))
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Writes `key` to a new file at `path` with mode 0600: written to a temporary file beside it, synced,
/// then linked into place, so `path` never holds half a key and an existing file is never replaced.
pub fn write_new(path: &Path, key: &SignerKey) -> Result<(), KeyFileError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(io_err(&tmp))?;
        file.write_all(format!("{}\n", key.to_private_string()).as_bytes())
            .map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        fs::hard_link(&tmp, path).map_err(io_err(path))
    })();
    let _ = fs::remove_file(&tmp);
    result?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(unix)]
fn check_mode(path: &Path) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(path)
        .map_err(io_err(path))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path) -> Result<(), KeyFileError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_with_mode_0600_then_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.key");
        let (key, created) = load_or_generate(&path, "custos.example/log").expect("generate");
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (again, created) = load_or_generate(&path, "custos.example/log").expect("load");
        assert!(!created);
        assert_eq!(again.verifier(), key.verifier());
        assert!(matches!(
            load_or_generate(&path, "other/log"),
            Err(KeyFileError::NameMismatch { .. })
        ));
        assert_eq!(
            fs::read_dir(dir.path()).expect("dir").count(),
            1,
            "no temporary file left"
        );
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_key_others_can_read() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.key");
        load_or_generate(&path, "n").expect("generate");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            load(&path),
            Err(KeyFileError::TooOpen { mode: 0o644, .. })
        ));
    }

    #[test]
    fn refuses_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.key");
        let key = SignerKey::from_seed("n", [1; 32]).expect("key");
        write_new(&path, &key).expect("write");
        assert!(write_new(&path, &key).is_err(), "never overwrites");
        assert_eq!(load(&path).expect("load").verifier(), key.verifier());
        fs::remove_file(&path).expect("rm");
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(&path)
            .expect("open")
            .write_all(b"not a key\n")
            .expect("write");
        assert!(matches!(load(&path), Err(KeyFileError::Key { .. })));
    }
}

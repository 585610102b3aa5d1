//! [`StaticTokens`]: the break-glass token file, in the apiserver's `--token-auth-file` CSV format.
//!
//! Each line is `token,user,uid[,"group1,group2"]`; blank lines and lines starting with `#` are
//! skipped. Decisions, all fail-closed:
//! - only SHA-256 digests of the tokens are kept in memory, and a presented token is compared with
//!   every digest in constant time (no early exit), so timing reveals nothing about which entry matched;
//! - tokens shorter than 32 bytes, empty users and duplicate tokens refuse the whole file;
//! - on Unix, a file that others may read, or that its group may write, is refused
//!   ([`ConfigError::InsecurePermissions`]): a leaked break-glass token is a cluster-admin credential.

use std::path::Path;

use custos_kube::UserInfo;
use sha2::{Digest, Sha256};

use crate::identity::token_fingerprint;
use crate::{AuthMethod, ConfigError, Identity};

/// The shortest static token accepted, in bytes (e.g. `openssl rand -hex 32` gives 64).
pub(crate) const MIN_TOKEN_BYTES: usize = 32;

struct Entry {
    digest: [u8; 32],
    user: UserInfo,
}

/// The static tokens loaded from a token file. Holds digests only, never the tokens.
pub struct StaticTokens {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokens")
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl StaticTokens {
    /// Loads and parses `path`, refusing a file with unsafe permissions.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        check_permissions(path)?;
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the CSV `text`; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut entries: Vec<Entry> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let bad = |reason: &str| ConfigError::StaticTokenFile {
                path: path.to_path_buf(),
                line: index + 1,
                reason: reason.to_string(),
            };
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fields = split_csv_line(trimmed).map_err(bad)?;
            let [token, user, uid, rest @ ..] = fields.as_slice() else {
                return Err(bad("expected token,user,uid[,\"group1,group2\"]"));
            };
            if token.len() < MIN_TOKEN_BYTES {
                return Err(bad("token is shorter than 32 bytes"));
            }
            if user.is_empty() {
                return Err(bad("user is empty"));
            }
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if entries.iter().any(|e| e.digest == digest) {
                return Err(bad("duplicate token"));
            }
            let groups = rest
                .first()
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let user = UserInfo {
                username: user.clone(),
                uid: (!uid.is_empty()).then(|| uid.clone()),
                groups,
                extra: Default::default(),
            };
            entries.push(Entry { digest, user });
        }
        Ok(StaticTokens { entries })
    }

    /// How many tokens are configured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The identity of `token`, if it is one of the static tokens.
    pub fn authenticate(&self, token: &str) -> Option<Identity> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Visit every entry whatever matches, so the time taken does not depend on the position.
        let mut found = None;
        for entry in &self.entries {
            if constant_time_eq(&entry.digest, &digest) {
                found = Some(entry);
            }
        }
        found.map(|entry| Identity {
            user: entry.user.clone(),
            method: AuthMethod::StaticToken,
            token_id: Some(token_fingerprint(token)),
            expires_at: None,
            claims: None,
        })
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Splits one CSV record: fields separated by `,`, optionally double-quoted with `""` as an escaped
/// quote; unquoted fields are trimmed. Multi-line quoted fields are not supported.
fn split_csv_line(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field"),
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("text after a closing quote"),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim().to_string());
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err("quote inside an unquoted field"),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field.trim().to_string());
        }
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    // metadata() follows symlinks: Kubernetes Secret volumes link to the real file, whose mode counts.
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o027 != 0 {
        return Err(ConfigError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), ConfigError> {
    Ok(())
}

#[cfg(test)]
mod tests;

//! The token cache: one private file per (issuer, client, flow), so kubectl's repeated calls to
//! `custos token` reuse a valid ID token and refresh it without asking the user again.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::LoginError;

/// Tokens from the identity provider.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenSet {
    /// The ID token presented to Custos as a bearer token.
    pub id_token: String,
    /// The refresh token, when the provider issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ID token's `exp` (seconds since the epoch), read without verification (Custos verifies).
    pub expires_at: Option<u64>,
}

impl TokenSet {
    /// Builds a token set, reading `exp` from the ID token's payload.
    pub fn new(id_token: String, refresh_token: Option<String>) -> Self {
        let expires_at = unverified_exp(&id_token);
        TokenSet {
            id_token,
            refresh_token,
            expires_at,
        }
    }

    /// Whether the ID token is still good for at least `margin` seconds at `now`.
    pub fn is_fresh(&self, now: u64, margin: u64) -> bool {
        self.expires_at
            .is_some_and(|exp| exp > now.saturating_add(margin))
    }
}

/// The `exp` claim of a JWT, without checking its signature.
pub fn unverified_exp(jwt: &str) -> Option<u64> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("exp")?.as_u64()
}

/// Where cached tokens for one login live.
#[derive(Debug, Clone)]
pub struct TokenCache {
    path: PathBuf,
}

impl TokenCache {
    /// The cache file for `key` (issuer, client id, flow…) under `dir`.
    pub fn new(dir: &Path, key: &[&str]) -> Self {
        let mut h = Sha256::new();
        for part in key {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let digest = h.finalize();
        let name: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        TokenCache {
            path: dir.join(format!("{name}.json")),
        }
    }

    /// The default cache directory: `$XDG_CACHE_HOME/custos/tokens` or `~/.cache/custos/tokens`.
    pub fn default_dir() -> Option<PathBuf> {
        std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("custos").join("tokens"))
    }

    /// The cache file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cached tokens; a missing or unreadable cache is simply empty.
    pub fn load(&self) -> Option<TokenSet> {
        let data = std::fs::read(&self.path).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Stores tokens in a file only the user can read, replacing it atomically.
    pub fn store(&self, tokens: &TokenSet) -> Result<(), LoginError> {
        let err = |e: std::io::Error| LoginError::File {
            path: self.path.clone(),
            message: e.to_string(),
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(err)?;
            }
        }
        let data = serde_json::to_vec(tokens).map_err(|e| LoginError::File {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        write_private(&self.path, &data).map_err(err)
    }

    /// Removes the cached tokens.
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes `data` to `path` with mode 0600 via a temporary file and a rename.
pub(crate) fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt_with_exp(exp: u64) -> String {
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            enc(r#"{"alg":"RS256"}"#),
            enc(&format!(r#"{{"exp":{exp}}}"#))
        )
    }

    #[test]
    fn tokens_round_trip_through_a_private_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = TokenCache::new(dir.path(), &["https://idp", "custos", "auth-code"]);
        assert!(cache.load().is_none());
        let t = TokenSet::new(jwt_with_exp(2_000_000_000), Some("r".into()));
        cache.store(&t).expect("store");
        assert_eq!(cache.load(), Some(t));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(cache.path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
    }

    #[test]
    fn freshness_uses_the_id_tokens_exp_with_a_margin() {
        let t = TokenSet::new(jwt_with_exp(1000), None);
        assert!(t.is_fresh(900, 60));
        assert!(!t.is_fresh(950, 60));
        assert!(!TokenSet::new("garbage".into(), None).is_fresh(0, 0));
    }

    #[test]
    fn different_logins_use_different_files() {
        let a = TokenCache::new(Path::new("/c"), &["i", "a"]);
        let b = TokenCache::new(Path::new("/c"), &["i", "b"]);
        let c = TokenCache::new(Path::new("/c"), &["ia", ""]);
        assert_ne!(a.path(), b.path());
        assert_ne!(a.path(), c.path());
    }
}

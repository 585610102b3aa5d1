//! [`WebhookConfig`]: one entry of `approvals.webhooks[]` in the operator's config, and the checks
//! that run once, before start-up, so a mistake stops the gateway instead of the first notification.
//!
//! ```yaml
//! approvals:
//!   webhooks:
//!     - url: https://hooks.slack.com/services/T000/B000/XXXX
//!       format: slack
//!       secretFile: /etc/custos/webhooks/slack.secret
//!       events: [review.requested, review.expired]
//!     - url: https://tickets.example.com/hooks/custos
//!       format: generic
//!       secretFile: /etc/custos/webhooks/tickets.secret
//!       caFile: /etc/custos/webhooks/tickets-ca.pem
//!       timeoutSeconds: 10
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::EventKind;

/// The shortest HMAC secret accepted, in bytes after trimming (`openssl rand -hex 32` gives 64).
pub const MIN_SECRET_BYTES: usize = 32;

/// The longest `timeoutSeconds` accepted: a slower endpoint would hold its queue for minutes.
pub const MAX_TIMEOUT_SECONDS: u64 = 60;

/// How a webhook's body is shaped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `{"kind","reviewId","summary","at","review"}`, for ticketing systems and custom receivers.
    #[default]
    Generic,
    /// A Slack incoming-webhook message (`text` and Block Kit `blocks`); Mattermost and others accept it.
    Slack,
}

/// One outgoing webhook, as written under `approvals.webhooks[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookConfig {
    /// The endpoint: `https://…`; plain `http://` only on `localhost`, `127.0.0.0/8` or `::1`.
    pub url: String,
    /// The body format; `generic` when omitted.
    #[serde(default)]
    pub format: Format,
    /// The file holding the HMAC key (whitespace trimmed, at least [`MIN_SECRET_BYTES`]); it must
    /// not be readable by others nor writable by its group (`chmod 600`). Read once, at start-up.
    pub secret_file: PathBuf,
    /// A PEM bundle of CAs trusted for the endpoint, replacing the platform's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Only these event kinds are sent; every kind when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventKind>>,
    /// Time allowed for one attempt (connect, send, answer), 1 to [`MAX_TIMEOUT_SECONDS`].
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

fn default_timeout_seconds() -> u64 {
    5
}

/// Why a [`WebhookConfig`] is unusable; each message starts with the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The URL is not https, nor http on a loopback host, or carries credentials.
    #[error("url: {0}")]
    Url(String),
    /// The secret file cannot be read, or its content is too short.
    #[error("secretFile {}: {reason}", path.display())]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The secret file may be read by other users or written by its group.
    #[error(
        "secretFile {}: mode {mode:03o} lets other users read it or its group change it; \
         chmod 600 (or 640)", path.display()
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The CA file cannot be read or holds no usable certificate.
    #[error("caFile {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The events filter is empty.
    #[error("events: {0}")]
    Events(String),
    /// The timeout is 0 or too long.
    #[error("timeoutSeconds: {0} is not between 1 and {MAX_TIMEOUT_SECONDS}")]
    Timeout(u64),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// An HMAC key, kept out of `Debug` output.
#[derive(Clone)]
pub(crate) struct Secret(Vec<u8>);

impl Secret {
    /// The key bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A webhook's HMAC key and the file it comes from: re-read when the file changes (another inode,
/// length, modification time, mode or change time — a rewritten file, a Kubernetes Secret volume's
/// new revision, a fixed mode), so
/// a key is rotated without a restart. A new content that fails the checks (too short, readable by
/// others, unreadable) is not taken: the last good key stays, and the problem is logged.
pub(crate) struct KeyFile {
    path: PathBuf,
    current: std::sync::Mutex<(Option<Stamp>, Secret)>,
}

/// What tells a changed file: its content (inode, length, modification time) or its status (mode,
/// change time: a `chmod 600` that fixes a rotated key others could read counts).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
    mode: u32,
    changed: i64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let (inode, mode, changed) = {
        use std::os::unix::fs::MetadataExt;
        (
            meta.ino(),
            meta.mode(),
            meta.ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.ctime_nsec()),
        )
    };
    #[cfg(not(unix))]
    let (inode, mode, changed) = (0, 0, 0);
    Some(Stamp {
        inode,
        len: meta.len(),
        modified: meta.modified().ok(),
        mode,
        changed,
    })
}

impl KeyFile {
    /// Reads and checks the key in `path`.
    pub(crate) fn open(path: &Path) -> Result<KeyFile, ConfigError> {
        let before = stamp(path);
        let secret = load_secret(path)?;
        Ok(KeyFile {
            path: path.to_owned(),
            current: std::sync::Mutex::new((before, secret)),
        })
    }

    /// The key to sign with now: the file's, re-read if it changed since the last read.
    pub(crate) fn current(&self) -> Secret {
        let mut guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let now = stamp(&self.path);
        if now.is_some() && now != guard.0 {
            match load_secret(&self.path) {
                Ok(secret) => {
                    tracing::info!(file = %self.path.display(), "webhook key re-read (the file changed)");
                    *guard = (now, secret);
                }
                Err(e) => {
                    tracing::error!(error = %e, "the webhook key file changed but cannot be used; signing with the previous key");
                    guard.0 = now;
                }
            }
        }
        guard.1.clone()
    }
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A checked config: what a delivery task needs.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) url: Url,
    /// `scheme://host[:port]` only: a Slack webhook's path is itself a secret, so reports and logs
    /// never show it.
    pub(crate) endpoint: String,
    pub(crate) secret: KeyFile,
    pub(crate) client: reqwest::Client,
}

impl WebhookConfig {
    /// A webhook to `url` in `format`, signed with the key in `secret_file`; every event, 5 s timeout.
    pub fn new(
        url: impl Into<String>,
        format: Format,
        secret_file: impl Into<PathBuf>,
    ) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            format,
            secret_file: secret_file.into(),
            ca_file: None,
            events: None,
            timeout_seconds: default_timeout_seconds(),
        }
    }

    /// Runs every check [`Notifier::new`](crate::Notifier::new) runs (reads the secret and CA files,
    /// builds the client), for validating a config file without starting anything.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.load().map(drop)
    }

    /// Whether events of `kind` go to this webhook.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events
            .as_ref()
            .is_none_or(|kinds| kinds.contains(&kind))
    }

    /// The time allowed for one attempt.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    /// Checks everything and reads the files, in the order the fields are written.
    pub(crate) fn load(&self) -> Result<Loaded, ConfigError> {
        let url = check_url(&self.url)?;
        let secret = KeyFile::open(&self.secret_file)?;
        if self.events.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigError::Events(
                "an empty list would send nothing; omit `events` to send every kind".into(),
            ));
        }
        if !(1..=MAX_TIMEOUT_SECONDS).contains(&self.timeout_seconds) {
            return Err(ConfigError::Timeout(self.timeout_seconds));
        }
        let client = crate::client::build(self.ca_file.as_deref(), self.timeout())?;
        Ok(Loaded {
            endpoint: url.origin().ascii_serialization(),
            url,
            secret,
            client,
        })
    }
}

/// Checks that `url` may receive notifications: `https://`, or `http://` on `localhost`,
/// `127.0.0.0/8` or `::1`; no user name or password in it.
pub fn check_url(url: &str) -> Result<Url, ConfigError> {
    let bad = |reason: String| ConfigError::Url(reason);
    let parsed = Url::parse(url).map_err(|e| bad(format!("{url:?} is not a URL ({e})")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("must not carry a user name or password".into()));
    }
    let host = parsed.host_str().unwrap_or_default();
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok(parsed),
        "http" if custos_https_client::is_loopback_host(host) => Ok(parsed),
        "http" => Err(bad(format!(
            "{host:?}: plain http is allowed only for localhost, 127.0.0.1 or ::1; use https"
        ))),
        scheme => Err(bad(format!("scheme {scheme:?} is not allowed; use https"))),
    }
}

/// The trimmed content of `path`, after refusing a file others could read.
fn load_secret(path: &Path) -> Result<Secret, ConfigError> {
    check_permissions(path)?;
    let bad = |reason: String| ConfigError::SecretFile {
        path: path.to_owned(),
        reason,
    };
    let content = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let key = content.trim_ascii();
    if key.len() < MIN_SECRET_BYTES {
        return Err(bad(format!(
            "holds {} bytes, fewer than {MIN_SECRET_BYTES}; generate one with `openssl rand -hex 32`",
            key.len()
        )));
    }
    Ok(Secret(key.to_vec()))
}

/// The rule custos-authn applies to its token file: nothing for others, no writing for the group.
#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    // metadata() follows symlinks: Kubernetes Secret volumes link to the real file, whose mode counts.
    let meta = std::fs::metadata(path).map_err(|e| ConfigError::SecretFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o027 != 0 {
        return Err(ConfigError::InsecurePermissions {
            path: path.to_owned(),
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

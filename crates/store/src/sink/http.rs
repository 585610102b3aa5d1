//! [`HttpSink`]: POSTs every new signed checkpoint to an endpoint someone else runs (a witness, a
//! write-once bucket's upload proxy, a SIEM), so a copy exists beyond the gateway operator's reach.
//!
//! The body is the exact signed note (`text/plain; charset=utf-8`), so the receiver can verify it with
//! the log's verifier key and nothing else. https only; plain http is accepted for loopback hosts
//! (`localhost`, `127.0.0.0/8`, `::1`) alone, for a local forwarding agent. Each publish makes at most
//! [`HttpSinkConfig::attempts`] tries, each bounded by [`HttpSinkConfig::timeout`], with doubling
//! backoff between them; then it gives up with an error, which the sequencer logs and reports in its
//! status without stopping the log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use custos_https_client::{error_chain, ClientError, ClientOptions};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{StatusCode, Url};

use super::CheckpointSink;
use crate::{StoreError, StoredCheckpoint};

/// How much of an error response's body goes into the error message.
const ERROR_BODY_BYTES: usize = 256;

/// Where and how an [`HttpSink`] posts checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSinkConfig {
    /// The endpoint: `https://…`, or `http://` on a loopback host.
    pub url: String,
    /// A file holding a bearer token sent as `Authorization: Bearer …`; read again for every
    /// checkpoint, so a rotated token is picked up.
    pub token_file: Option<PathBuf>,
    /// A PEM bundle of CAs trusted for the endpoint, replacing the platform's roots.
    pub ca_file: Option<PathBuf>,
    /// Time allowed for one attempt (connect, send, response).
    pub timeout: Duration,
    /// Tries per checkpoint, at least 1.
    pub attempts: u32,
    /// Wait before the second try; doubled before each further one.
    pub backoff: Duration,
}

impl HttpSinkConfig {
    /// The defaults for `url`: no token, platform roots, 5 s per attempt, 3 attempts, 500 ms backoff
    /// (a dead endpoint costs the sequencer at most about 17 s per checkpoint).
    pub fn new(url: impl Into<String>) -> HttpSinkConfig {
        HttpSinkConfig {
            url: url.into(),
            token_file: None,
            ca_file: None,
            timeout: Duration::from_secs(5),
            attempts: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// Why an [`HttpSink`] could not be built; each variant is about one setting.
#[derive(Debug, thiserror::Error)]
pub enum HttpSinkConfigError {
    /// The URL is not an https URL, nor http on a loopback host.
    #[error("{0}")]
    Url(String),
    /// The token file cannot be read or is empty.
    #[error("token file {path}: {reason}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The CA file cannot be read or holds no usable certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// POSTs each signed checkpoint to an HTTP endpoint. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct HttpSink {
    url: Url,
    /// The URL without query, for messages.
    shown: String,
    token_file: Option<PathBuf>,
    attempts: u32,
    backoff: Duration,
    client: reqwest::Client,
}

impl HttpSink {
    /// Checks that `url` may receive checkpoints: `https://`, or `http://` on `localhost`,
    /// `127.0.0.0/8` or `::1`; no user name or password in it (use a token file).
    pub fn check_url(url: &str) -> Result<Url, String> {
        let parsed = Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("must not carry credentials; use a token file".into());
        }
        let host = parsed.host_str().unwrap_or_default();
        match parsed.scheme() {
            "https" if !host.is_empty() => Ok(parsed),
            "http" if custos_https_client::is_loopback_host(host) => Ok(parsed),
            "http" => Err(format!(
                "{url:?}: plain http is allowed only for localhost, 127.0.0.1 or ::1; use https"
            )),
            _ => Err(format!("{url:?} must be an https URL")),
        }
    }

    /// A sink for `config`. Reads the CA file and checks the token file now, so a mistake stops
    /// start-up rather than the first copy.
    pub fn new(config: &HttpSinkConfig) -> Result<HttpSink, HttpSinkConfigError> {
        let url = Self::check_url(&config.url).map_err(HttpSinkConfigError::Url)?;
        if let Some(path) = &config.token_file {
            let token =
                std::fs::read_to_string(path).map_err(|e| HttpSinkConfigError::TokenFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            bearer(&token).map_err(|reason| HttpSinkConfigError::TokenFile {
                path: path.clone(),
                reason,
            })?;
        }
        let client = client(config.ca_file.as_deref(), config.timeout)?;
        let mut shown = url.clone();
        shown.set_query(None);
        shown.set_fragment(None);
        Ok(HttpSink {
            url,
            shown: shown.to_string(),
            token_file: config.token_file.clone(),
            attempts: config.attempts.max(1),
            backoff: config.backoff,
            client,
        })
    }

    /// The endpoint, without its query.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// One POST; `Err((retry, error))`.
    async fn post(
        &self,
        note: &str,
        token: Option<&HeaderValue>,
    ) -> Result<(), (bool, PublishError)> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(note.to_owned());
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, token.clone());
        }
        let mut resp = request
            .send()
            .await
            .map_err(|e| (true, PublishError::Request(error_chain(&e.without_url()))))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        // A little of the body says why; never more, and never waiting long for it.
        let mut body = Vec::new();
        while body.len() < ERROR_BODY_BYTES {
            match resp.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(ERROR_BODY_BYTES);
        let text: String = String::from_utf8_lossy(&body)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let retry = status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT;
        Err((
            retry,
            PublishError::Status {
                status,
                body: text.trim().to_owned(),
            },
        ))
    }

    async fn token(&self) -> Result<Option<HeaderValue>, PublishError> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let token = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| PublishError::Token {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        bearer(&token)
            .map(Some)
            .map_err(|reason| PublishError::Token {
                path: path.clone(),
                reason,
            })
    }
}

#[async_trait]
impl CheckpointSink for HttpSink {
    async fn publish(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        let failed = |attempt: u32, e: PublishError| {
            StoreError::unavailable(
                format!(
                    "copying checkpoint {} to {} (attempt {attempt} of {})",
                    checkpoint.size, self.shown, self.attempts
                ),
                e,
            )
        };
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            let result = match self.token().await {
                Ok(token) => self.post(&checkpoint.note, token.as_ref()).await,
                Err(e) => Err((false, e)),
            };
            match result {
                Ok(()) => return Ok(()),
                Err((retry, e)) if !retry || attempt >= self.attempts => {
                    return Err(failed(attempt, e))
                }
                Err((_, e)) => {
                    tracing::debug!(error = %e, attempt, url = %self.shown, "checkpoint copy failed; retrying");
                }
            }
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
            attempt += 1;
        }
    }
}

/// Why one publish attempt failed.
#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error("bearer token file {path}: {reason}")]
    Token { path: PathBuf, reason: String },
    #[error("{0}")]
    Request(String),
    #[error("endpoint answered {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status { status: StatusCode, body: String },
}

/// `Bearer <token>` from a token file's content, marked sensitive so it is never logged.
fn bearer(content: &str) -> Result<HeaderValue, String> {
    let token = content.trim();
    if token.is_empty() {
        return Err("is empty".into());
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "holds characters not allowed in an HTTP header".to_string())?;
    value.set_sensitive(true);
    Ok(value)
}

/// A client from custos-https-client (ring crypto, the CA file's roots or the platform's, no
/// redirects, `timeout` for each attempt), with its errors as [`HttpSinkConfigError`]s.
fn client(
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<reqwest::Client, HttpSinkConfigError> {
    let user_agent = concat!("custos-store/", env!("CARGO_PKG_VERSION"));
    custos_https_client::client(ClientOptions {
        ca_file,
        ..ClientOptions::new(user_agent, timeout)
    })
    .map_err(|e| match e {
        ClientError::Roots(e) => HttpSinkConfigError::CaFile {
            path: e.path,
            reason: e.reason.to_string(),
        },
        other => HttpSinkConfigError::Client(error_chain(&other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        for ok in [
            "https://witness.example/add-checkpoint",
            "https://10.0.0.1:8443/x?log=custos",
            "http://127.0.0.1:9000/checkpoint",
            "http://127.1.2.3/",
            "http://localhost:9000",
            "http://LOCALHOST/",
            "http://[::1]:9000/",
        ] {
            HttpSink::check_url(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "http://witness.example/",
            "http://10.0.0.1/",
            "http://localhost.evil.example/",
            "http://127.0.0.1.nip.io/",
            "ftp://witness.example/",
            "file:///tmp/x",
            "https://user:pw@witness.example/",
            "witness.example",
            "",
        ] {
            assert!(HttpSink::check_url(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().expect("dir");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "  \n").expect("write");
        let mut c = HttpSinkConfig::new("https://witness.example/");
        c.token_file = Some(empty);
        assert!(matches!(
            HttpSink::new(&c),
            Err(HttpSinkConfigError::TokenFile { .. })
        ));
        c.token_file = None;
        c.ca_file = Some(dir.path().join("missing.pem"));
        assert!(matches!(
            HttpSink::new(&c),
            Err(HttpSinkConfigError::CaFile { .. })
        ));
        c.ca_file = None;
        c.url = "http://witness.example/".into();
        assert!(matches!(
            HttpSink::new(&c),
            Err(HttpSinkConfigError::Url(_))
        ));
    }

    #[test]
    fn the_shown_url_has_no_query() {
        let sink = HttpSink::new(&HttpSinkConfig::new(
            "https://witness.example/add?sig=secret",
        ))
        .expect("sink");
        assert_eq!(sink.url(), "https://witness.example/add");
    }
}

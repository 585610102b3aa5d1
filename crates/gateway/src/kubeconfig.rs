//! Reading the upstream's address and the gateway's own credential from a kubeconfig file.
//!
//! Only what a proxy needs: the current context's cluster (server, CA, TLS server name) and user
//! (client certificate and key, or a bearer token). Exec plugins and auth providers are refused with a
//! clear error rather than half-supported: the gateway's credential must not depend on an interactive flow.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

/// A kubeconfig that could not be used as the gateway's upstream.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// The file could not be read.
    #[error("cannot read kubeconfig {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a kubeconfig.
    #[error("kubeconfig {path} is not valid YAML: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A reference or field is missing or unusable.
    #[error("kubeconfig {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
struct File {
    #[serde(rename = "current-context", default)]
    current_context: String,
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    users: Vec<NamedUser>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "context")]
    value: T,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: User,
}

#[derive(Deserialize)]
struct Cluster {
    server: String,
    #[serde(rename = "certificate-authority")]
    ca_file: Option<PathBuf>,
    #[serde(rename = "certificate-authority-data")]
    ca_data: Option<String>,
    #[serde(rename = "insecure-skip-tls-verify", default)]
    insecure: bool,
    #[serde(rename = "tls-server-name")]
    tls_server_name: Option<String>,
}

#[derive(Deserialize, Default)]
struct User {
    #[serde(rename = "client-certificate")]
    cert_file: Option<PathBuf>,
    #[serde(rename = "client-certificate-data")]
    cert_data: Option<String>,
    #[serde(rename = "client-key")]
    key_file: Option<PathBuf>,
    #[serde(rename = "client-key-data")]
    key_data: Option<String>,
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<PathBuf>,
    exec: Option<serde_yaml_ng::Value>,
    #[serde(rename = "auth-provider")]
    auth_provider: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
struct Context {
    cluster: String,
    #[serde(default)]
    user: String,
}

/// The gateway's credential towards the apiserver.
#[derive(Clone)]
pub enum UpstreamCredential {
    /// A client certificate chain and key, PEM.
    ClientCert {
        /// Certificate chain, PEM.
        cert_pem: Vec<u8>,
        /// Private key, PEM.
        key_pem: Vec<u8>,
    },
    /// A bearer token.
    Token(String),
    /// No credential (the apiserver must then allow anonymous impersonation, which it never should).
    None,
}

impl std::fmt::Debug for UpstreamCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material or tokens.
        match self {
            UpstreamCredential::ClientCert { .. } => f.write_str("ClientCert(..)"),
            UpstreamCredential::Token(_) => f.write_str("Token(..)"),
            UpstreamCredential::None => f.write_str("None"),
        }
    }
}

/// What the gateway needs from a kubeconfig to reach the apiserver.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The apiserver's base URL, e.g. `https://127.0.0.1:6443`.
    pub server: http::Uri,
    /// CA certificates (PEM) to verify the apiserver; `None` means the system roots are not used either:
    /// a kubeconfig without a CA is refused unless `insecure` is set.
    pub ca_pem: Option<Vec<u8>>,
    /// Skip server verification (kubeconfig's `insecure-skip-tls-verify`); logged loudly.
    pub insecure: bool,
    /// Name to verify the server certificate against, if not the host of `server`.
    pub tls_server_name: Option<String>,
    /// The gateway's own credential.
    pub credential: UpstreamCredential,
}

impl UpstreamConfig {
    /// Reads the current context of the kubeconfig at `path`.
    pub fn from_kubeconfig(path: &Path) -> Result<Self, KubeconfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| KubeconfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_kubeconfig_str(&text, path)
    }

    /// Parses kubeconfig text; relative file references resolve against `path`'s directory.
    pub fn from_kubeconfig_str(text: &str, path: &Path) -> Result<Self, KubeconfigError> {
        let invalid = |message: String| KubeconfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let file: File = serde_yaml_ng::from_str(text).map_err(|e| KubeconfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let ctx_name = if file.current_context.is_empty() {
            file.contexts
                .first()
                .map(|c| c.name.clone())
                .ok_or_else(|| invalid("no current-context and no contexts".into()))?
        } else {
            file.current_context.clone()
        };
        let ctx = file
            .contexts
            .iter()
            .find(|c| c.name == ctx_name)
            .ok_or_else(|| invalid(format!("context {ctx_name:?} not found")))?;
        let cluster = file
            .clusters
            .iter()
            .find(|c| c.name == ctx.value.cluster)
            .map(|c| &c.value)
            .ok_or_else(|| invalid(format!("cluster {:?} not found", ctx.value.cluster)))?;
        let user = file
            .users
            .iter()
            .find(|u| u.name == ctx.value.user)
            .map(|u| &u.user);

        let server: http::Uri = cluster
            .server
            .parse()
            .map_err(|e| invalid(format!("server {:?} is not a URL: {e}", cluster.server)))?;
        if server.scheme_str() != Some("https") {
            return Err(invalid(format!(
                "server {:?} must be https: the gateway never sends identities in clear",
                cluster.server
            )));
        }
        let ca_pem = match (&cluster.ca_data, &cluster.ca_file) {
            (Some(data), _) => Some(
                decode_b64(data)
                    .map_err(|e| invalid(format!("certificate-authority-data: {e}")))?,
            ),
            (None, Some(file)) => Some(
                read_rel(base, file).map_err(|e| invalid(format!("certificate-authority: {e}")))?,
            ),
            (None, None) => None,
        };
        if ca_pem.is_none() && !cluster.insecure {
            return Err(invalid("the cluster has no certificate-authority(-data); refusing to trust the system roots for an apiserver".into()));
        }
        let credential = match user {
            None => UpstreamCredential::None,
            Some(u) => credential(u, base).map_err(invalid)?,
        };
        Ok(UpstreamConfig {
            server,
            ca_pem,
            insecure: cluster.insecure,
            tls_server_name: cluster.tls_server_name.clone(),
            credential,
        })
    }
}

fn credential(u: &User, base: &Path) -> Result<UpstreamCredential, String> {
    if u.exec.is_some() || u.auth_provider.is_some() {
        return Err("the upstream user uses an exec plugin or auth provider; give the gateway a client certificate or a token".into());
    }
    let cert = match (&u.cert_data, &u.cert_file) {
        (Some(d), _) => Some(decode_b64(d).map_err(|e| format!("client-certificate-data: {e}"))?),
        (None, Some(f)) => Some(read_rel(base, f).map_err(|e| format!("client-certificate: {e}"))?),
        _ => None,
    };
    let key = match (&u.key_data, &u.key_file) {
        (Some(d), _) => Some(decode_b64(d).map_err(|e| format!("client-key-data: {e}"))?),
        (None, Some(f)) => Some(read_rel(base, f).map_err(|e| format!("client-key: {e}"))?),
        _ => None,
    };
    match (cert, key) {
        (Some(cert_pem), Some(key_pem)) => {
            return Ok(UpstreamCredential::ClientCert { cert_pem, key_pem })
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err("client certificate and key must be given together".into())
        }
        (None, None) => {}
    }
    if let Some(t) = &u.token {
        return Ok(UpstreamCredential::Token(t.trim().to_owned()));
    }
    if let Some(f) = &u.token_file {
        let t = read_rel(base, f).map_err(|e| format!("tokenFile: {e}"))?;
        let t = String::from_utf8(t).map_err(|_| "tokenFile is not UTF-8".to_string())?;
        return Ok(UpstreamCredential::Token(t.trim().to_owned()));
    }
    Ok(UpstreamCredential::None)
}

fn decode_b64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("not base64: {e}"))
}

fn read_rel(base: &Path, file: &Path) -> Result<Vec<u8>, String> {
    let p = if file.is_absolute() {
        file.to_owned()
    } else {
        base.join(file)
    };
    std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
}

#[cfg(test)]
mod tests;

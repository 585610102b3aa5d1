//! The client side of logging in to Custos: what `custos login` and `custos token` do on a user's or
//! an agent's machine.
//!
//! Owns the OIDC flows against the identity provider ([`flows`]: authorization code with PKCE on a
//! loopback redirect, device code, client credentials, refresh), the on-disk token cache ([`cache`]),
//! the `ExecCredential` that kubectl reads from an exec plugin ([`exec_credential`]), and writing a
//! kubeconfig context for the gateway ([`kubeconfig`]). It never prints a token except as the
//! `ExecCredential` on stdout, and the cache files are private to the user (0600).
#![deny(missing_docs)]

pub mod cache;
pub mod exec_credential;
pub mod flows;
pub mod kubeconfig;

/// Something went wrong while logging in.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The identity provider could not be reached or answered with an error.
    #[error("identity provider: {0}")]
    Provider(String),
    /// The provider does not offer what the chosen flow needs.
    #[error("{0}")]
    Unsupported(String),
    /// The user did not complete the login in time, or denied it.
    #[error("login not completed: {0}")]
    NotCompleted(String),
    /// A local file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Setting up the HTTP client failed.
    #[error("{0}")]
    Config(#[from] custos_authn::ConfigError),
}

fn random_urlsafe(bytes: usize) -> Result<String, LoginError> {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| LoginError::Provider(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

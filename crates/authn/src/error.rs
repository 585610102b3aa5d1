//! The errors of authentication (per request), of configuration (at start-up), and of key fetching.

use std::path::PathBuf;

/// Why a request could not be authenticated. Messages are safe for a 401 `Status`: they never contain
/// the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthnError {
    /// The request carried neither a bearer token nor a client certificate.
    #[error("no credentials: send a bearer token or a client certificate")]
    NoCredentials,
    /// The bearer token is larger than [`crate::MAX_TOKEN_BYTES`].
    #[error("bearer token is too large ({len} bytes, at most {max})")]
    TokenTooLarge {
        /// The token's length in bytes.
        len: usize,
        /// The largest accepted length.
        max: usize,
    },
    /// The bearer token is not a well-formed compact JWS.
    #[error("bearer token is malformed: {0}")]
    MalformedToken(&'static str),
    /// The token's `alg` is not in the issuer's allow-list (`none` and HMAC never are).
    #[error("token signing algorithm {alg:?} is not allowed")]
    AlgorithmNotAllowed {
        /// The header's `alg`, truncated.
        alg: String,
    },
    /// The token's (unverified) `iss` matches no configured issuer.
    #[error("token issuer {iss:?} is not trusted")]
    UnknownIssuer {
        /// The token's `iss`, truncated.
        iss: String,
    },
    /// No key of the issuer has the token's `kid`, even after a JWKS refresh.
    #[error("no signing key of issuer {issuer} matches the token")]
    UnknownKey {
        /// The issuer URL.
        issuer: String,
    },
    /// The key named by `kid` cannot verify the token's algorithm (e.g. an EC key for RS256).
    #[error("token algorithm {alg} does not match its signing key")]
    KeyMismatch {
        /// The header's `alg`.
        alg: String,
    },
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` is in the past (beyond the allowed clock skew).
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the allowed clock skew).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future (beyond the allowed clock skew).
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// `aud` contains none of the configured client ids.
    #[error("token audience does not include an accepted client id")]
    WrongAudience,
    /// A claim the configuration needs is absent.
    #[error("token has no {claim:?} claim")]
    MissingClaim {
        /// The claim's name.
        claim: String,
    },
    /// A claim has the wrong type or an unusable value.
    #[error("token claim {claim:?} is invalid: {reason}")]
    InvalidClaim {
        /// The claim's name.
        claim: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A claim listed in `required_claims` is absent or has another value.
    #[error("token claim {claim:?} does not have the required value")]
    RequiredClaimMismatch {
        /// The claim's name.
        claim: String,
    },
    /// The username comes from `email` but `email_verified` is not `true`.
    #[error("token email is not verified")]
    EmailNotVerified,
    /// The mapped username or a group starts with `system:`, which only the cluster may assign.
    #[error("{what} {name:?} is reserved (system: prefix)")]
    ReservedName {
        /// `"username"` or `"group"`.
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// The bearer token is neither a static token nor a JWT this gateway accepts.
    #[error("invalid bearer token")]
    InvalidBearerToken,
    /// The client certificate could not be mapped to a user.
    #[error("client certificate is not usable: {0}")]
    InvalidClientCert(&'static str),
    /// The issuer's signing keys could not be fetched and none are cached (a server-side failure).
    #[error("signing keys of issuer {issuer} are unavailable: {source}")]
    KeysUnavailable {
        /// The issuer URL.
        issuer: String,
        /// Why fetching failed.
        #[source]
        source: FetchError,
    },
}

impl AuthnError {
    /// Whether the client is at fault (401); `false` means the gateway could not check (503).
    pub fn is_client_fault(&self) -> bool {
        !matches!(self, AuthnError::KeysUnavailable { .. })
    }
}

/// Why fetching an issuer's discovery document or JWKS failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The HTTP request failed (connect, TLS, timeout).
    #[error("request to {url} failed: {source}")]
    Http {
        /// The URL requested.
        url: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a non-200 status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The response body exceeded the size limit.
    #[error("{url} sent more than {max} bytes")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The limit in bytes.
        max: usize,
    },
    /// The response body is not the expected JSON.
    #[error("{what} is not valid JSON: {source}")]
    Json {
        /// Which document (`discovery document` or `JWKS`).
        what: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The discovery document names another issuer than the configured one.
    #[error("discovery document names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch {
        /// The configured issuer URL.
        expected: String,
        /// The `issuer` the document names.
        found: String,
    },
    /// A URL the provider published is not https.
    #[error("jwks_uri {url:?} is not an https URL")]
    InsecureUrl {
        /// The offending URL.
        url: String,
    },
    /// No keys are loaded yet and the last attempt was too recent to try again.
    #[error("no keys loaded yet (last attempt: {last_error})")]
    NotLoaded {
        /// Why the last attempt failed.
        last_error: String,
    },
    /// The JWKS holds no key this gateway can use for signatures.
    #[error("JWKS has no usable signing key ({skipped} skipped)")]
    NoUsableKeys {
        /// How many keys were skipped as unusable.
        skipped: usize,
    },
}

/// Why the authentication configuration is unusable; each names the field or file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field of an OIDC issuer's configuration is invalid.
    #[error("oidc issuer {issuer:?}: {field}: {reason}")]
    Oidc {
        /// The issuer URL as configured.
        issuer: String,
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A CA file holds no usable certificate.
    #[error("{}: {reason}", path.display())]
    Certificates {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A line of the static token file is invalid.
    #[error("{}:{line}: {reason}", path.display())]
    StaticTokenFile {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A secret file is readable or writable by users other than its owner (and group, for reading).
    #[error(
        "{}: mode {mode:03o} lets other users read or change it; chmod 600 the file \
         (or set defaultMode: 0400 on the Secret volume)",
        path.display()
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The HTTP client for discovery could not be built.
    #[error("building the OIDC HTTP client: {0}")]
    HttpClient(String),
}

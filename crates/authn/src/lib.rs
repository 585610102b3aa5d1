//! Authentication for Custos: turns the credentials a client presents into an [`Identity`].
//!
//! Owns the [`Authenticator`] that the gateway calls first on every request, and the three ways in:
//! OIDC bearer tokens validated locally like the apiserver's `--oidc-*` authenticator
//! ([`OidcAuthenticator`]: discovery, a rate-limited JWKS cache, signature and claim checks), client
//! certificates verified by the TLS layer against a configured CA ([`client_cert`]), and a break-glass
//! static token file ([`StaticTokens`]). Every failure is a typed [`AuthnError`] whose message is safe
//! to put in a 401 `Status`; anything unknown, malformed or unverifiable is refused (fail closed).
//!
//! It must never log, store, echo or return a bearer token: an [`Identity`] carries the token's `jti`
//! or a short SHA-256 fingerprint instead, and only non-secret claims (`iss`, `sub`, `aud`).
#![deny(missing_docs)]

mod authenticator;
pub mod client_cert;
mod error;
mod identity;
mod jwt;
pub mod oidc;
mod roots;
mod static_tokens;

pub use authenticator::{Authenticator, AuthnConfig};
pub use client_cert::{client_cert_verifier, identity_from_client_cert, ClientCertConfig};
pub use error::{AuthnError, ConfigError, FetchError};
pub use identity::{AuthMethod, Identity, IdentityClaims};
pub use jwt::MAX_TOKEN_BYTES;
pub use oidc::{IssuerReadiness, KeySource, OidcAuthenticator, OidcIssuerConfig, SigningAlg};
pub use static_tokens::StaticTokens;

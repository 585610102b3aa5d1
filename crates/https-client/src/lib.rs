//! Custos https-client owns the one way Custos talks HTTPS to services it does not run: OIDC
//! discovery and JWKS (custos-authn, and the CLI and custos-login through it), review webhooks
//! (custos-notify) and checkpoint copies (custos-store's `HttpSink`). Its main items are [`client`]
//! with [`ClientOptions`], the PEM CA-bundle loader [`load_roots`] (also the trust anchors of authn's
//! client-certificate verifier), [`error_chain`], which says an error with its causes, and
//! [`is_loopback_host`], the one place plain http is allowed to go.
//!
//! The security choices, made once here so no caller can drift from them:
//!
//! - **ring only.** The rustls provider is always ring, never whatever provider a dependency installed
//!   process-wide.
//! - **A CA file replaces the platform's roots.** When a caller names one, only its certificates are
//!   trusted (like the apiserver's `--oidc-ca-file`); otherwise the platform verifier
//!   (rustls-platform-verifier) decides, with the operating system's roots and verification.
//! - **No redirects.** A redirect could lead to plain http or to another host, taking a token, a
//!   signed body or a JWKS request with it; a 3xx is the caller's answer, not a hop.
//! - **Bounded time.** Every request has a total timeout and every connection a connect timeout, so a
//!   slow or silent endpoint cannot hold a caller.
//!
//! It must never trust a certificate the roots do not vouch for: there is no option to skip
//! verification.
#![deny(missing_docs)]

mod chain;
mod client;
mod destination;
mod roots;

pub use chain::error_chain;
pub use client::{client, ClientError, ClientOptions};
pub use destination::is_loopback_host;
pub use roots::{load_roots, RootsError, RootsReason};

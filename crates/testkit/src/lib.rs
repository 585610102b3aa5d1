//! Dev-only helpers for Custos tests: a throwaway certificate authority ([`certs::TestCa`]), a JWT issuer
//! with fixed keys and hostile-token builders ([`jwt::TestIssuer`]), and a tiny fake OIDC discovery/JWKS
//! server ([`oidc_server::FakeOidc`]).
//!
//! Everything here is for fast unit and integration tests only: keys are public knowledge, errors panic,
//! and the fake OIDC server is no substitute for the real IdP (Dex) that acceptance tests run against. It
//! must never be a dependency of anything but `[dev-dependencies]`.
#![deny(missing_docs)]

pub mod certs;
pub mod jwt;
pub mod oidc_server;

pub use certs::{CertifiedKey, TestCa};
pub use jwt::{TestIssuer, TestKey};
pub use oidc_server::FakeOidc;

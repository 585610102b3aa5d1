//! Kubernetes protocol facts Custos needs, as pure functions of data (no I/O).
//!
//! Owns: [`RequestAttributes`] (what the apiserver's RequestInfo resolver derives from a path), path
//! validation, [`UserInfo`] and the impersonation headers that carry it upstream, and [`Status`], the
//! error body every Kubernetes client prints. It must never perform I/O or read clocks.
#![deny(missing_docs)]

pub mod impersonation;
pub mod path;
pub mod request;
pub mod status;
pub mod user;

pub use path::{validate_path, PathError};
pub use request::{classify, RequestAttributes};
pub use status::{Status, StatusReason};
pub use user::UserInfo;

//! Everything that can stop a request inside the gateway, typed; `rescue` turns it into a `Status`.

use custos_kube::impersonation::ImpersonationError;
use custos_kube::PathError;

use crate::sanitize::SanitizeError;

/// Why the gateway did not (fully) serve a request.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The caller could not be authenticated.
    #[error("Unauthorized: {0}")]
    Unauthenticated(#[from] custos_authn::AuthnError),
    /// The path is malformed or ambiguous.
    #[error("{0}")]
    Path(#[from] PathError),
    /// A header was refused.
    #[error("{0}")]
    Sanitize(#[from] SanitizeError),
    /// The identity cannot be expressed as impersonation headers.
    #[error("{0}")]
    Impersonation(#[from] ImpersonationError),
    /// The request body exceeded the configured limit.
    #[error("the request body is larger than the gateway allows ({limit} bytes)")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request body could not be read from the client.
    #[error("the request body could not be read: {0}")]
    BodyRead(String),
    /// Policy denied the request.
    #[error("{0}")]
    Denied(String),
    /// Policy requires a human's approval first.
    #[error("{0}")]
    ReviewRequired(String),
    /// The `Impersonate-*` headers are malformed.
    #[error("{0}")]
    ImpersonationHeaders(#[from] custos_policy::ImpersonationHeaderError),
    /// The apiserver could not be reached or broke the connection.
    #[error("the Kubernetes API server is unavailable through Custos: {0}")]
    UpstreamUnavailable(String),
    /// The audit log could not take the request's record: nothing is forwarded unrecorded.
    #[error("the audit log is unavailable, so Custos refuses to forward the request: {0}")]
    AuditUnavailable(#[from] custos_store::StoreError),
    /// The response could not be masked (a form Custos cannot parse): it is not passed on.
    #[error("{0}")]
    Unmaskable(String),
    /// A write carries a value Custos masked; it would overwrite the real value with the marker.
    #[error("the request carries a value Custos masked ({marker}) — it would replace the real value with the marker; send the real value, or leave the field out of the patch")]
    CarriesMaskedValue {
        /// The marker found.
        marker: &'static str,
    },
    /// The approval store could not open, read or hold a review: nothing is forwarded.
    #[error("approvals are unavailable, so Custos refuses a request that needs one: {0}")]
    ApprovalsUnavailable(String),
    /// A request could not be built (a bug, not the client's fault).
    #[error("internal error: {0}")]
    Internal(String),
}

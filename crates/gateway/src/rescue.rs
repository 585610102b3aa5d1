//! The one place where errors become responses: a Kubernetes `Status` that kubectl prints like the
//! apiserver's own, after deciding whose fault it was (client, upstream, or the gateway) for the logs.

use bytes::Bytes;
use http::{header, Response, StatusCode};

use custos_kube::Status;

use crate::error::GatewayError;
use crate::sanitize::SanitizeError;
use crate::{full, Body};

/// Who caused a failure, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The client sent something unacceptable.
    Client,
    /// The apiserver failed.
    Upstream,
    /// The gateway itself failed.
    Internal,
}

/// The `Status` a client sees for `err`, and whose fault it was.
pub fn status_for(err: &GatewayError) -> (Status, Fault) {
    match err {
        // The IdP's keys could not be loaded: not the caller's fault, and retrying may help.
        GatewayError::Unauthenticated(e) if !e.is_client_fault() => (
            Status::service_unavailable(format!("authentication is unavailable: {e}")),
            Fault::Upstream,
        ),
        GatewayError::Unauthenticated(e) => (
            Status::unauthorized(format!("Unauthorized: {e}")),
            Fault::Client,
        ),
        GatewayError::Path(e) => (Status::bad_request(e.to_string()), Fault::Client),
        GatewayError::Sanitize(e @ SanitizeError::MalformedAuthorization) => {
            (Status::unauthorized(e.to_string()), Fault::Client)
        }
        GatewayError::Sanitize(e @ SanitizeError::Impersonation(_)) => {
            (Status::forbidden(e.to_string()), Fault::Client)
        }
        GatewayError::Sanitize(e) => (Status::bad_request(e.to_string()), Fault::Client),
        GatewayError::Impersonation(e) => (Status::forbidden(e.to_string()), Fault::Client),
        GatewayError::BodyTooLarge { .. } => (
            Status::failure(
                custos_kube::StatusReason::RequestEntityTooLarge,
                err.to_string(),
            ),
            Fault::Client,
        ),
        GatewayError::UpstreamUnavailable(_) => (
            Status::service_unavailable(err.to_string()),
            Fault::Upstream,
        ),
        GatewayError::BodyRead(_) => (Status::bad_request(err.to_string()), Fault::Client),
        GatewayError::Denied(m) => (Status::forbidden(m.clone()), Fault::Client),
        GatewayError::ReviewRequired(m) => (Status::forbidden(m.clone()), Fault::Client),
        GatewayError::ImpersonationHeaders(e) => {
            (Status::bad_request(e.to_string()), Fault::Client)
        }
        GatewayError::AuditUnavailable(_) => (
            Status::service_unavailable(err.to_string()),
            Fault::Internal,
        ),
        GatewayError::ApprovalsUnavailable(_) => (
            Status::service_unavailable(err.to_string()),
            Fault::Internal,
        ),
        GatewayError::Unmaskable(m) => (
            Status {
                code: 502,
                ..Status::internal(format!("Custos refused the API server's response: {m}"))
            },
            Fault::Upstream,
        ),
        GatewayError::CarriesMaskedValue { .. } => (
            Status::failure(custos_kube::StatusReason::Invalid, err.to_string()),
            Fault::Client,
        ),
        GatewayError::Internal(_) => (Status::internal(err.to_string()), Fault::Internal),
    }
}

/// Writes `err` as a `Status` response, logging it once with its fault.
pub fn rescue(err: &GatewayError, audit_id: &str) -> Response<Body> {
    let (status, fault) = status_for(err);
    match fault {
        Fault::Client => {
            tracing::info!(audit_id, code = status.code, error = %err, "request refused")
        }
        Fault::Upstream => {
            tracing::warn!(audit_id, code = status.code, error = %err, "upstream failure")
        }
        Fault::Internal => {
            tracing::error!(audit_id, code = status.code, error = %err, "internal failure")
        }
    }
    status_response(&status, audit_id)
}

/// A response carrying `status` as its JSON body.
pub fn status_response(status: &Status, audit_id: &str) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::from(status.to_json())));
    *resp.status_mut() =
        StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache, private"),
    );
    if let Ok(v) = header::HeaderValue::from_str(audit_id) {
        h.insert("audit-id", v);
    }
    if status.code == 401 {
        h.insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"custos\""),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_gets_the_status_code_kubectl_expects() {
        let cases: Vec<(GatewayError, u16)> = vec![
            (custos_authn::AuthnError::NoCredentials.into(), 401),
            (SanitizeError::MalformedAuthorization.into(), 401),
            (
                SanitizeError::Impersonation("impersonate-user".into()).into(),
                403,
            ),
            (
                SanitizeError::HeadersTooLarge { size: 2, limit: 1 }.into(),
                400,
            ),
            (SanitizeError::UpgradeNeedsHttp1.into(), 400),
            (custos_kube::PathError::DotSegment.into(), 400),
            (GatewayError::BodyTooLarge { limit: 1 }, 413),
            (GatewayError::UpstreamUnavailable("refused".into()), 503),
            (GatewayError::Internal("bug".into()), 500),
        ];
        for (err, code) in cases {
            let resp = rescue(&err, "id");
            assert_eq!(resp.status().as_u16(), code, "{err}");
            assert_eq!(resp.headers()["content-type"], "application/json");
        }
    }
}

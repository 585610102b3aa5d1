//! `meta.k8s.io/v1` `Status` bodies: the only shape of error Custos returns to Kubernetes clients.

use serde::{Deserialize, Serialize};

/// The machine-readable reason of a failure, as the apiserver spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusReason {
    /// 400: the request itself is malformed.
    BadRequest,
    /// 401: no or invalid credentials.
    Unauthorized,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 404: nothing at that path.
    NotFound,
    /// 405: the method is not supported here.
    MethodNotAllowed,
    /// 413: the body is larger than allowed.
    RequestEntityTooLarge,
    /// 422: the body is well-formed but refused (e.g. it carries a value Custos masked).
    Invalid,
    /// 429: too many requests.
    TooManyRequests,
    /// 500: an internal error.
    InternalError,
    /// 503: a dependency (store, upstream) is unavailable.
    ServiceUnavailable,
    /// 504: the upstream did not answer in time.
    Timeout,
}

impl StatusReason {
    /// The HTTP status code that goes with this reason.
    pub fn code(self) -> u16 {
        match self {
            StatusReason::BadRequest => 400,
            StatusReason::Unauthorized => 401,
            StatusReason::Forbidden => 403,
            StatusReason::NotFound => 404,
            StatusReason::MethodNotAllowed => 405,
            StatusReason::RequestEntityTooLarge => 413,
            StatusReason::Invalid => 422,
            StatusReason::TooManyRequests => 429,
            StatusReason::InternalError => 500,
            StatusReason::ServiceUnavailable => 503,
            StatusReason::Timeout => 504,
        }
    }
}

/// A `Status` object as the apiserver writes it (`kind: Status`, `status: Failure`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Always `Status`.
    pub kind: String,
    /// Always `v1`.
    pub api_version: String,
    /// Always empty metadata (`{}`), as the apiserver writes it.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `Failure` for every status Custos writes.
    pub status: String,
    /// A human-readable explanation; kubectl prints it after `Error from server (Reason):`.
    pub message: String,
    /// The machine-readable reason.
    pub reason: StatusReason,
    /// The HTTP status code, repeated in the body as the apiserver does.
    pub code: u16,
}

impl Status {
    /// A failure `Status` with the given reason and message.
    pub fn failure(reason: StatusReason, message: impl Into<String>) -> Self {
        Status {
            kind: "Status".into(),
            api_version: "v1".into(),
            metadata: serde_json::Map::new(),
            status: "Failure".into(),
            message: message.into(),
            reason,
            code: reason.code(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::failure(StatusReason::BadRequest, message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::failure(StatusReason::Unauthorized, message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::failure(StatusReason::Forbidden, message)
    }

    /// 503 Service Unavailable.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::failure(StatusReason::ServiceUnavailable, message)
    }

    /// 500 Internal Error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::failure(StatusReason::InternalError, message)
    }

    /// The JSON body, as bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a struct of strings and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_else(|_| b"{\"kind\":\"Status\"}".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_status_serialises_like_the_apiserver() {
        let body = Status::forbidden("no").to_json();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "Forbidden");
        assert_eq!(v["code"], 403);
        assert_eq!(v["message"], "no");
    }
}

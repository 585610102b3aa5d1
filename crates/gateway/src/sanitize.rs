//! Header hygiene: what a client sent that must never reach the apiserver as sent.
//!
//! The client's `Authorization` is consumed by authentication and replaced by the gateway's own
//! credential; client `Impersonate-*` headers are refused (policy may allow them later); hop-by-hop
//! headers are dropped, except the `Connection: Upgrade` pair that an upgrade needs; `X-Forwarded-For`
//! is rewritten to the real peer so the apiserver's audit log shows a source the client cannot forge.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use custos_kube::impersonation::is_impersonation_header;

/// Headers that describe one hop and never travel further (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// Headers the gateway sets itself and therefore never copies from the client.
const GATEWAY_OWNED: [&str; 4] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
];

/// Why a request's headers were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SanitizeError {
    /// The client tried to impersonate someone.
    #[error("impersonation headers ({0}) are not allowed through Custos; the gateway sets the identity itself")]
    Impersonation(String),
    /// An upgrade arrived over HTTP/2, which cannot carry it.
    #[error("protocol upgrades (exec, attach, port-forward) need HTTP/1.1")]
    UpgradeNeedsHttp1,
    /// The request's headers are larger than the gateway allows.
    #[error("request headers are too large ({size} bytes; the limit is {limit})")]
    HeadersTooLarge {
        /// Their size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The Authorization header (or WebSocket bearer subprotocol) is present but not a bearer token.
    #[error("Unauthorized: the Authorization header must be a bearer token")]
    MalformedAuthorization,
}

/// The declared `Content-Length`, if present and a number (hyper has already refused malformed ones).
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

/// Total size of the header section as the client sent it (names, values and separators).
pub fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum()
}

/// True when the request asks for a protocol upgrade (WebSocket or SPDY).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

/// Refuses client impersonation; returns the names found.
pub fn refuse_impersonation(headers: &HeaderMap) -> Result<(), SanitizeError> {
    let mut names: Vec<&str> = headers
        .keys()
        .filter(|n| is_impersonation_header(n))
        .map(|n| n.as_str())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    names.sort_unstable();
    names.dedup();
    Err(SanitizeError::Impersonation(names.join(", ")))
}

/// Strips everything the apiserver must not see from the client's headers, in place.
///
/// `upgrade` keeps `Connection: Upgrade` and `Upgrade`, which the upgrade handshake needs end to end.
pub fn strip_for_upstream(
    headers: &mut HeaderMap,
    upgrade: bool,
    peer_ip: Option<std::net::IpAddr>,
) {
    // Headers named by Connection are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| !(upgrade && n == header::UPGRADE))
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in HOP_BY_HOP.iter().chain(GATEWAY_OWNED.iter()) {
        headers.remove(*n);
    }
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::HOST);
    let stale: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_impersonation_header(n))
        .cloned()
        .collect();
    for n in stale {
        headers.remove(n);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
    if let Some(ip) = peer_ip {
        if let Ok(v) = HeaderValue::from_str(&ip.to_string()) {
            headers.insert("x-forwarded-for", v);
        }
    }
}

/// Strips hop-by-hop headers from an upstream response before it goes back to the client.
pub fn strip_response(headers: &mut HeaderMap, upgrade: bool) {
    for n in HOP_BY_HOP {
        if upgrade && n == "connection" {
            continue;
        }
        headers.remove(n);
    }
    if !upgrade {
        headers.remove(header::UPGRADE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn client_impersonation_is_refused_naming_the_headers() {
        let err = refuse_impersonation(&h(&[
            ("Impersonate-User", "admin"),
            ("impersonate-group", "system:masters"),
        ]))
        .expect_err("refused");
        assert_eq!(
            err,
            SanitizeError::Impersonation("impersonate-group, impersonate-user".into())
        );
        assert!(refuse_impersonation(&h(&[("accept", "application/json")])).is_ok());
    }

    #[test]
    fn authorization_hop_by_hop_and_forwarding_headers_are_stripped() {
        let mut m = h(&[
            ("authorization", "Bearer secret"),
            ("connection", "keep-alive, x-custom"),
            ("x-custom", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-forwarded-for", "10.0.0.1"),
            ("accept", "application/json"),
            ("audit-id", "abc"),
        ]);
        strip_for_upstream(&mut m, false, "127.0.0.9".parse().ok());
        assert!(m.get("authorization").is_none());
        assert!(m.get("x-custom").is_none());
        assert!(m.get("keep-alive").is_none());
        assert!(m.get("transfer-encoding").is_none());
        assert!(m.get("connection").is_none());
        assert_eq!(m["x-forwarded-for"], "127.0.0.9");
        assert_eq!(m["accept"], "application/json");
        assert_eq!(m["audit-id"], "abc");
    }

    #[test]
    fn upgrade_keeps_connection_and_upgrade_headers() {
        let mut m = h(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v4.channel.k8s.io"),
        ]);
        assert!(is_upgrade(&m));
        strip_for_upstream(&mut m, true, None);
        assert_eq!(m["connection"], "Upgrade");
        assert_eq!(m["upgrade"], "SPDY/3.1");
        assert_eq!(m["x-stream-protocol-version"], "v4.channel.k8s.io");
    }

    #[test]
    fn upgrade_header_without_connection_upgrade_is_not_an_upgrade() {
        let mut m = h(&[("upgrade", "websocket")]);
        assert!(!is_upgrade(&m));
        strip_for_upstream(&mut m, false, None);
        assert!(m.get("upgrade").is_none());
    }
}

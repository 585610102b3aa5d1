//! Finding the caller's bearer token: the `Authorization` header, or — for WebSocket clients that cannot
//! set headers — the `base64url.bearer.authorization.k8s.io.<token>` subprotocol the apiserver accepts.
//! Whatever carried the token is removed before the request goes upstream.

use base64::Engine;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};

use crate::sanitize::SanitizeError;

const WS_TOKEN_PREFIX: &str = "base64url.bearer.authorization.k8s.io.";

/// The bearer token the client presented, if any. Credentials that are present but malformed are an
/// error, so they are refused rather than ignored.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<String>, SanitizeError> {
    let malformed = || SanitizeError::MalformedAuthorization;
    if let Some(v) = headers.get(AUTHORIZATION) {
        let s = v.to_str().map_err(|_| malformed())?;
        let (scheme, token) = s.split_once(' ').ok_or_else(malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(malformed());
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(malformed());
        }
        return Ok(Some(token.to_owned()));
    }
    for proto in websocket_protocols(headers) {
        if let Some(enc) = proto.strip_prefix(WS_TOKEN_PREFIX) {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(enc.trim_end_matches('='))
                .map_err(|_| malformed())?;
            let token = String::from_utf8(raw).map_err(|_| malformed())?;
            return Ok(Some(token));
        }
    }
    Ok(None)
}

/// Removes the token-carrying WebSocket subprotocol, keeping the others in order.
pub fn strip_websocket_token(headers: &mut HeaderMap) {
    let kept: Vec<String> = websocket_protocols(headers)
        .filter(|p| !p.starts_with(WS_TOKEN_PREFIX))
        .map(str::to_owned)
        .collect();
    if !headers.contains_key(SEC_WEBSOCKET_PROTOCOL) {
        return;
    }
    headers.remove(SEC_WEBSOCKET_PROTOCOL);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&kept.join(", ")) {
            headers.insert(SEC_WEBSOCKET_PROTOCOL, v);
        }
    }
}

fn websocket_protocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_is_found_case_insensitively() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer abc.def"));
        assert_eq!(bearer_token(&h), Ok(Some("abc.def".into())));
    }

    #[test]
    fn basic_auth_and_empty_bearer_are_refused_not_ignored() {
        for v in ["Basic dXNlcjpwYXNz", "Bearer ", "Bearer", "abc"] {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, HeaderValue::from_static(v));
            assert_eq!(
                bearer_token(&h),
                Err(SanitizeError::MalformedAuthorization),
                "{v}"
            );
        }
    }

    #[test]
    fn websocket_subprotocol_token_is_found_and_stripped() {
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("tok");
        let mut h = HeaderMap::new();
        let v = format!("v5.channel.k8s.io, {WS_TOKEN_PREFIX}{enc}, v4.channel.k8s.io");
        h.insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(&v).expect("valid"),
        );
        assert_eq!(bearer_token(&h), Ok(Some("tok".into())));
        strip_websocket_token(&mut h);
        assert_eq!(
            h[SEC_WEBSOCKET_PROTOCOL],
            "v5.channel.k8s.io, v4.channel.k8s.io"
        );
    }

    #[test]
    fn no_credentials_is_none() {
        assert_eq!(bearer_token(&HeaderMap::new()), Ok(None));
    }
}

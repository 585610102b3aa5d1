//! The `Impersonate-*` headers that carry an identity to the apiserver, and recognising them on input.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::UserInfo;

/// Header carrying the impersonated username.
pub const IMPERSONATE_USER: &str = "impersonate-user";
/// Header carrying one impersonated group (repeated).
pub const IMPERSONATE_GROUP: &str = "impersonate-group";
/// Header carrying the impersonated uid.
pub const IMPERSONATE_UID: &str = "impersonate-uid";
/// Prefix of the headers carrying extra attributes.
pub const IMPERSONATE_EXTRA_PREFIX: &str = "impersonate-extra-";

/// Characters left unescaped in an extra key: the apiserver percent-decodes the header name suffix.
const EXTRA_KEY_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// An identity value that cannot travel in an HTTP header.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field} cannot be sent as an impersonation header: it contains characters not allowed in HTTP headers")]
pub struct ImpersonationError {
    /// Which part of the identity was refused.
    pub field: String,
}

/// True when the header name is one of the impersonation headers (any case).
pub fn is_impersonation_header(name: &HeaderName) -> bool {
    // HeaderName is always lowercase.
    name.as_str().starts_with("impersonate-")
}

/// Writes the impersonation headers for `user` into `headers`, replacing any that were there.
pub fn set_impersonation_headers(
    headers: &mut HeaderMap,
    user: &UserInfo,
) -> Result<(), ImpersonationError> {
    let stale: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_impersonation_header(n))
        .cloned()
        .collect();
    for name in stale {
        headers.remove(&name);
    }
    headers.insert(IMPERSONATE_USER, value("username", &user.username)?);
    if let Some(uid) = &user.uid {
        headers.insert(IMPERSONATE_UID, value("uid", uid)?);
    }
    for group in &user.groups {
        headers.append(IMPERSONATE_GROUP, value("group", group)?);
    }
    for (key, values) in &user.extra {
        let encoded = utf8_percent_encode(&key.to_ascii_lowercase(), EXTRA_KEY_ESCAPE).to_string();
        let name =
            HeaderName::from_bytes(format!("{IMPERSONATE_EXTRA_PREFIX}{encoded}").as_bytes())
                .map_err(|_| ImpersonationError {
                    field: format!("extra key {key:?}"),
                })?;
        for v in values {
            headers.append(name.clone(), value("extra value", v)?);
        }
    }
    Ok(())
}

fn value(field: &str, s: &str) -> Result<HeaderValue, ImpersonationError> {
    // Only visible ASCII and spaces: what every HTTP stack passes through unchanged.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        HeaderValue::from_str(s).map_err(|_| ImpersonationError {
            field: field.into(),
        })
    } else {
        Err(ImpersonationError {
            field: field.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn alice() -> UserInfo {
        UserInfo {
            username: "oidc:alice".into(),
            uid: Some("CgVhbGljZQ".into()),
            groups: vec!["oidc:agents".into(), "oidc:readers".into()],
            extra: BTreeMap::from([("custos.dev/session".to_string(), vec!["s-1".to_string()])]),
        }
    }

    #[test]
    fn identity_becomes_user_uid_group_and_extra_headers() {
        let mut h = HeaderMap::new();
        set_impersonation_headers(&mut h, &alice()).expect("valid");
        assert_eq!(h[IMPERSONATE_USER], "oidc:alice");
        assert_eq!(h[IMPERSONATE_UID], "CgVhbGljZQ");
        let groups: Vec<_> = h.get_all(IMPERSONATE_GROUP).iter().collect();
        assert_eq!(groups, vec!["oidc:agents", "oidc:readers"]);
        assert_eq!(h["impersonate-extra-custos.dev%2Fsession"], "s-1");
    }

    #[test]
    fn headers_from_the_client_are_replaced_not_merged() {
        let mut h = HeaderMap::new();
        h.insert(IMPERSONATE_USER, HeaderValue::from_static("system:admin"));
        h.append(
            IMPERSONATE_GROUP,
            HeaderValue::from_static("system:masters"),
        );
        h.insert("impersonate-extra-scopes", HeaderValue::from_static("x"));
        set_impersonation_headers(&mut h, &alice()).expect("valid");
        assert_eq!(h[IMPERSONATE_USER], "oidc:alice");
        assert!(h
            .get_all(IMPERSONATE_GROUP)
            .iter()
            .all(|g| g != "system:masters"));
        assert!(h.get("impersonate-extra-scopes").is_none());
    }

    #[test]
    fn control_characters_in_a_username_are_refused() {
        let mut u = alice();
        u.username = "alice\r\nImpersonate-Group: system:masters".into();
        let err = set_impersonation_headers(&mut HeaderMap::new(), &u).expect_err("refused");
        assert_eq!(err.field, "username");
    }
}

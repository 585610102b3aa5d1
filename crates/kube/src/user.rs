//! The authenticated user as the apiserver's `user.Info` sees it.

use std::collections::BTreeMap;

/// Who a request acts as upstream: username, uid, groups and extra attributes (`user.Info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserInfo {
    /// The username, already prefixed as configured (e.g. `oidc:alice`).
    pub username: String,
    /// A stable unique id, when the authentication method has one (the OIDC `sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Group names, already prefixed as configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Extra attributes; keys are lowercase, as the apiserver expects them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

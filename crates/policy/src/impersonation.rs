//! Client impersonation: a client's `Impersonate-*` headers read as the apiserver reads them, one
//! `impersonate` decision per impersonated user, group, uid and extra value, and the identity the
//! request then acts as.

use std::collections::BTreeMap;
use std::time::SystemTime;

use custos_kube::impersonation::{
    IMPERSONATE_EXTRA_PREFIX, IMPERSONATE_GROUP, IMPERSONATE_UID, IMPERSONATE_USER,
};
use custos_kube::UserInfo;
use http::HeaderMap;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

use crate::decide::decide;
use crate::decision::{Decision, Outcome};
use crate::entities::AUTHENTICATED_GROUP;
use crate::request::{service_account, ImpersonationTarget, Request, Target};
use crate::set::PolicySet;

/// The identity a client asks to act as, from its `Impersonate-*` headers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpersonationRequest {
    /// `Impersonate-User`.
    pub user: String,
    /// `Impersonate-Uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Every `Impersonate-Group`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Every `Impersonate-Extra-<key>`, keys lowercase and percent-decoded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// `Impersonate-*` headers the apiserver would refuse; Custos refuses them too (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImpersonationHeaderError {
    /// A header value is not visible ASCII/UTF-8.
    #[error("{0} header is not valid text")]
    NotText(String),
    /// More than one `Impersonate-User` or `Impersonate-Uid`.
    #[error("more than one {0} header")]
    Repeated(&'static str),
    /// Groups, a uid or extras without `Impersonate-User`.
    #[error("impersonating groups, a uid or extra values requires Impersonate-User")]
    NoUser,
    /// An extra key that does not percent-decode to UTF-8.
    #[error("Impersonate-Extra key {0:?} is not valid percent-encoded UTF-8")]
    ExtraKey(String),
}

/// Reads a client's impersonation headers; `None` when it sent none.
pub fn impersonation_request(
    headers: &HeaderMap,
) -> Result<Option<ImpersonationRequest>, ImpersonationHeaderError> {
    let text = |name: &str, v: &http::HeaderValue| {
        v.to_str()
            .map(str::to_owned)
            .map_err(|_| ImpersonationHeaderError::NotText(name.to_owned()))
    };
    let single = |name: &'static str| -> Result<Option<String>, ImpersonationHeaderError> {
        let mut values = headers.get_all(name).iter();
        let first = values.next().map(|v| text(name, v)).transpose()?;
        if values.next().is_some() {
            return Err(ImpersonationHeaderError::Repeated(name));
        }
        Ok(first)
    };
    let user = single(IMPERSONATE_USER)?;
    let uid = single(IMPERSONATE_UID)?;
    let groups = headers
        .get_all(IMPERSONATE_GROUP)
        .iter()
        .map(|v| text(IMPERSONATE_GROUP, v))
        .collect::<Result<Vec<_>, _>>()?;
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        let Some(key) = name.as_str().strip_prefix(IMPERSONATE_EXTRA_PREFIX) else {
            continue;
        };
        let key = percent_decode_str(key)
            .decode_utf8()
            .map_err(|_| ImpersonationHeaderError::ExtraKey(key.to_owned()))?
            .to_lowercase();
        extra
            .entry(key)
            .or_default()
            .push(text(name.as_str(), value)?);
    }
    match user {
        Some(user) => Ok(Some(ImpersonationRequest {
            user,
            uid,
            groups,
            extra,
        })),
        None if uid.is_none() && groups.is_empty() && extra.is_empty() => Ok(None),
        None => Err(ImpersonationHeaderError::NoUser),
    }
}

impl ImpersonationRequest {
    /// Everything to decide on, user first: the user, each group, the uid, each extra value.
    pub fn targets(&self) -> Vec<ImpersonationTarget> {
        let mut targets = vec![ImpersonationTarget::user(&self.user)];
        targets.extend(
            self.groups
                .iter()
                .map(|g| ImpersonationTarget::Group { name: g.clone() }),
        );
        targets.extend(
            self.uid
                .iter()
                .map(|u| ImpersonationTarget::Uid { uid: u.clone() }),
        );
        for (key, values) in &self.extra {
            targets.extend(values.iter().map(|v| ImpersonationTarget::Extra {
                key: key.clone(),
                value: v.clone(),
            }));
        }
        targets
    }

    /// The identity the request acts as once impersonation is allowed, as the apiserver builds
    /// it: a service account with no groups gets its service-account groups, and every user but
    /// `system:anonymous` is in `system:authenticated`.
    pub fn user_info(&self) -> UserInfo {
        let mut groups = self.groups.clone();
        if groups.is_empty() {
            if let Some((namespace, _)) = service_account(&self.user) {
                groups.push("system:serviceaccounts".into());
                groups.push(format!("system:serviceaccounts:{namespace}"));
            }
        }
        if self.user != "system:anonymous" && !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            groups.push(AUTHENTICATED_GROUP.into());
        }
        UserInfo {
            username: self.user.clone(),
            uid: self.uid.clone(),
            groups,
            extra: self.extra.clone(),
        }
    }
}

/// Decides whether the caller of `request` may impersonate everything `impersonation` names: one
/// `impersonate` decision per target (with `request`'s caller and context). The first deny is the
/// answer; else the first review; else an allow carrying every deciding policy.
pub fn decide_impersonation(
    policies: &PolicySet,
    request: &Request<'_>,
    impersonation: &ImpersonationRequest,
    now: SystemTime,
) -> Decision {
    let decisions: Vec<Decision> = impersonation
        .targets()
        .iter()
        .map(|target| {
            let asked = Request {
                target: Target::Impersonate(target),
                body: None,
                ..*request
            };
            decide(policies, &asked, now)
        })
        .collect();
    for outcome in [Outcome::Deny, Outcome::Review] {
        if let Some(d) = decisions.iter().find(|d| d.outcome == outcome) {
            return d.clone();
        }
    }
    let mut all = decisions.into_iter();
    let Some(mut merged) = all.next() else {
        return Decision::default_deny("no impersonation target".into());
    };
    for d in all {
        for id in d.policy_ids {
            if !merged.policy_ids.contains(&id) {
                merged.policy_ids.push(id);
            }
        }
        merged.annotations.extend(d.annotations);
        for r in d.reasons {
            if !merged.reasons.contains(&r) {
                merged.reasons.push(r);
            }
        }
        merged.errors.extend(d.errors);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn no_headers_is_no_impersonation() {
        assert_eq!(impersonation_request(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn user_groups_uid_and_extras_become_targets() {
        let r = impersonation_request(&headers(&[
            (
                "impersonate-user",
                "system:serviceaccount:kube-system:deployer",
            ),
            ("impersonate-group", "ops"),
            ("impersonate-group", "dev"),
            ("impersonate-uid", "u-1"),
            ("impersonate-extra-custos.dev%2Fsession", "s-1"),
        ]))
        .expect("valid")
        .expect("some");
        assert_eq!(
            r.targets(),
            vec![
                ImpersonationTarget::ServiceAccount {
                    namespace: "kube-system".into(),
                    name: "deployer".into()
                },
                ImpersonationTarget::Group { name: "ops".into() },
                ImpersonationTarget::Group { name: "dev".into() },
                ImpersonationTarget::Uid { uid: "u-1".into() },
                ImpersonationTarget::Extra {
                    key: "custos.dev/session".into(),
                    value: "s-1".into()
                },
            ]
        );
        let info = r.user_info();
        assert_eq!(info.groups, ["ops", "dev", "system:authenticated"]);
    }

    #[test]
    fn a_service_account_without_groups_gets_its_groups() {
        let r = ImpersonationRequest {
            user: "system:serviceaccount:ns:sa".into(),
            ..Default::default()
        };
        assert_eq!(
            r.user_info().groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns",
                "system:authenticated"
            ]
        );
    }

    #[test]
    fn groups_without_a_user_and_repeated_users_are_refused() {
        assert_eq!(
            impersonation_request(&headers(&[("impersonate-group", "system:masters")])),
            Err(ImpersonationHeaderError::NoUser)
        );
        assert_eq!(
            impersonation_request(&headers(&[
                ("impersonate-user", "a"),
                ("impersonate-user", "b")
            ])),
            Err(ImpersonationHeaderError::Repeated(IMPERSONATE_USER))
        );
    }
}

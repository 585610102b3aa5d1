//! Policy tests: YAML files of cases, each a request and the outcome it must get, so a bank keeps
//! its policy tests in git beside its policies and runs them with `custos policy test`.
//!
//! ```yaml
//! agentGroups: [agents]            # who counts as an agent (default: [agents])
//! time: "2025-01-06T10:00:00Z"     # default time of every case (default: the Unix epoch)
//! cases:
//!   - name: a reader agent may list pods
//!     user: agent-reader
//!     groups: [agents, readers]
//!     verb: list                   # a Kubernetes verb, or `method: GET`
//!     path: /api/v1/namespaces/default/pods
//!     expect: allow                # allow | review | deny
//!     policies: [agents-read]      # optional: exactly these deciding policies
//! ```
//! A case may also give `agent`, `uid`, `authMethod`, `session: {intent, ticket, id}`,
//! `sourceIP`, `time`, a body (`body:` as YAML, `bodyRaw:` as text, or `bodyFile:`), `reason:` (a
//! text the decision's reasons must contain), or `impersonate: {user|group|uid|extra}` instead of a
//! verb and path.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use custos_kube::{classify, RequestAttributes, UserInfo};
use http::Method;
use serde::{Deserialize, Serialize};

use crate::body::BodyFacts;
use crate::decide::decide;
use crate::decision::{Decision, Outcome};
use crate::request::{is_agent, ImpersonationTarget, Request, Session};
use crate::set::PolicySet;

/// One test file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Suite {
    /// Groups whose members are agents, for cases that do not say `agent:`.
    #[serde(default = "default_agent_groups")]
    pub agent_groups: Vec<String>,
    /// The time of cases that do not give one.
    #[serde(default)]
    pub time: Option<TimeSpec>,
    /// The cases.
    pub cases: Vec<Case>,
}

fn default_agent_groups() -> Vec<String> {
    vec!["agents".to_owned()]
}

/// One case: a request and what policy must answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Case {
    /// What the case checks, in words.
    pub name: String,
    /// The username.
    pub user: String,
    /// The user's groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The user's uid.
    #[serde(default)]
    pub uid: Option<String>,
    /// Whether the caller is an agent (default: a member of the suite's `agentGroups`).
    #[serde(default)]
    pub agent: Option<bool>,
    /// `oidc`, `client_cert` or `static_token`.
    #[serde(default)]
    pub auth_method: String,
    /// A Kubernetes verb (`get`, `list`, `watch`, `create`, `delete`, ...).
    #[serde(default)]
    pub verb: Option<String>,
    /// An HTTP method, instead of a verb.
    #[serde(default)]
    pub method: Option<String>,
    /// The request path, with a query if needed (`/api/v1/pods?watch=true`).
    #[serde(default)]
    pub path: Option<String>,
    /// An impersonation request instead of an API request.
    #[serde(default)]
    pub impersonate: Option<ImpersonateSpec>,
    /// A JSON body, written as YAML.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// A body as raw text (to test bodies that are not JSON).
    #[serde(default)]
    pub body_raw: Option<String>,
    /// A file holding the body, relative to the test file (read by [`crate::load::load_suite`]).
    #[serde(default)]
    pub body_file: Option<String>,
    /// The agent session.
    #[serde(default)]
    pub session: Option<Session>,
    /// The caller's address.
    #[serde(default, rename = "sourceIP")]
    pub source_ip: Option<IpAddr>,
    /// When the request is made.
    #[serde(default)]
    pub time: Option<TimeSpec>,
    /// The outcome policy must give.
    pub expect: Outcome,
    /// The deciding policy ids policy must report, in any order.
    #[serde(default)]
    pub policies: Option<Vec<String>>,
    /// A text the decision's reasons must contain.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What an impersonation case impersonates (one of them).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpersonateSpec {
    /// A username (a service account when it has that form).
    #[serde(default)]
    pub user: Option<String>,
    /// A group.
    #[serde(default)]
    pub group: Option<String>,
    /// A uid.
    #[serde(default)]
    pub uid: Option<String>,
    /// An extra value, `key=value`.
    #[serde(default)]
    pub extra: Option<String>,
}

/// A time: Unix seconds, or RFC 3339 in UTC (`2025-01-06T10:00:00Z`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TimeSpec {
    /// Seconds since the epoch.
    Unix(u64),
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    Text(String),
}

impl TimeSpec {
    /// The time it names.
    pub fn to_system_time(&self) -> Result<SystemTime, String> {
        match self {
            Self::Unix(s) => Ok(UNIX_EPOCH + Duration::from_secs(*s)),
            Self::Text(t) => parse_rfc3339_utc(t).map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        }
    }
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// True when policy answered as expected.
    pub passed: bool,
    /// What was expected.
    pub expected: Outcome,
    /// What policy decided (absent when the case itself is malformed).
    pub decision: Option<Decision>,
    /// Why the case failed.
    pub failure: Option<String>,
}

impl Suite {
    /// Parses a test file.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
    }

    /// Runs every case against `policies`.
    pub fn run(&self, policies: &PolicySet) -> Vec<CaseResult> {
        self.cases
            .iter()
            .map(|case| {
                let result = self.decide(case, policies);
                let (decision, failure) = match result {
                    Ok(decision) => {
                        let failure = check(case, &decision);
                        (Some(decision), failure)
                    }
                    Err(e) => (None, Some(e)),
                };
                CaseResult {
                    name: case.name.clone(),
                    passed: failure.is_none(),
                    expected: case.expect,
                    decision,
                    failure,
                }
            })
            .collect()
    }

    fn decide(&self, case: &Case, policies: &PolicySet) -> Result<Decision, String> {
        let user = UserInfo {
            username: case.user.clone(),
            uid: case.uid.clone(),
            groups: case.groups.clone(),
            extra: Default::default(),
        };
        let now = case
            .time
            .as_ref()
            .or(self.time.as_ref())
            .map(TimeSpec::to_system_time)
            .transpose()?
            .unwrap_or(UNIX_EPOCH);
        let agent = case
            .agent
            .unwrap_or_else(|| is_agent(&user, &self.agent_groups));
        let body = match (&case.body, &case.body_raw) {
            (Some(json), _) => Some(BodyFacts::extract(json.to_string().as_bytes())),
            (None, Some(raw)) => Some(BodyFacts::extract(raw.as_bytes())),
            (None, None) => None,
        };
        let target;
        let attrs;
        let request = match (&case.impersonate, &case.path) {
            (Some(spec), None) => {
                target = impersonation_target(spec)?;
                Request::impersonate(&user, &target)
            }
            (None, Some(path)) => {
                let verb = case
                    .verb
                    .as_deref()
                    .or(case.method.as_deref())
                    .ok_or("a case needs a verb or a method")?;
                attrs = attributes(verb, path)?;
                Request::api(&user, &attrs)
            }
            _ => return Err("a case needs either a path or impersonate:, not both".into()),
        };
        let request = request
            .agent(agent)
            .auth_method(&case.auth_method)
            .session(case.session.as_ref())
            .source_ip(case.source_ip)
            .body(body.as_ref());
        Ok(decide(policies, &request, now))
    }
}

fn check(case: &Case, decision: &Decision) -> Option<String> {
    let mut problems = Vec::new();
    if decision.outcome != case.expect {
        problems.push(format!(
            "expected {}, got {} ({})",
            case.expect,
            decision.outcome,
            decision.message()
        ));
    }
    if let Some(expected) = &case.policies {
        let mut want = expected.clone();
        let mut got = decision.policy_ids.clone();
        want.sort();
        got.sort();
        if want != got {
            problems.push(format!(
                "expected deciding policies [{}], got [{}]",
                want.join(", "),
                got.join(", ")
            ));
        }
    }
    if let Some(reason) = &case.reason {
        if !decision.reasons.iter().any(|r| r.contains(reason.as_str())) {
            problems.push(format!(
                "expected a reason containing {reason:?}, got {:?}",
                decision.reasons
            ));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn impersonation_target(spec: &ImpersonateSpec) -> Result<ImpersonationTarget, String> {
    match (&spec.user, &spec.group, &spec.uid, &spec.extra) {
        (Some(u), None, None, None) => Ok(ImpersonationTarget::user(u)),
        (None, Some(g), None, None) => Ok(ImpersonationTarget::Group { name: g.clone() }),
        (None, None, Some(u), None) => Ok(ImpersonationTarget::Uid { uid: u.clone() }),
        (None, None, None, Some(e)) => {
            let (key, value) = e.split_once('=').ok_or("impersonate extra is key=value")?;
            Ok(ImpersonationTarget::Extra {
                key: key.to_owned(),
                value: value.to_owned(),
            })
        }
        _ => Err("impersonate: give exactly one of user, group, uid, extra".into()),
    }
}

/// Classifies `verb PATH` as the apiserver would. `verb` is a Kubernetes verb (mapped to the
/// method that produces it) or an uppercase HTTP method; a verb the path does not produce (`get`
/// on a collection is `list`) is an error that says so.
pub fn attributes(verb: &str, path_and_query: &str) -> Result<RequestAttributes, String> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (path_and_query, None),
    };
    if verb.bytes().all(|b| b.is_ascii_uppercase()) {
        let method = Method::from_bytes(verb.as_bytes()).map_err(|e| e.to_string())?;
        return classify(&method, path, query.as_deref()).map_err(|e| e.to_string());
    }
    let (method, query) = match verb {
        "get" | "list" | "proxy" => (Method::GET, query),
        "watch" => (
            Method::GET,
            Some(match query {
                Some(q) if q.contains("watch=") => q,
                Some(q) => format!("{q}&watch=true"),
                None => "watch=true".to_owned(),
            }),
        ),
        "create" | "post" => (Method::POST, query),
        "update" | "put" => (Method::PUT, query),
        "patch" => (Method::PATCH, query),
        "delete" | "deletecollection" => (Method::DELETE, query),
        "head" => (Method::HEAD, query),
        "options" => (Method::OPTIONS, query),
        other => return Err(format!("unknown verb {other:?}")),
    };
    let attrs = classify(&method, path, query.as_deref()).map_err(|e| e.to_string())?;
    if attrs.verb != verb {
        return Err(format!(
            "{verb} {path_and_query} is a {:?} request to the apiserver (a get without a name is a \
             list, a delete without one a deletecollection); use that verb",
            attrs.verb
        ));
    }
    Ok(attrs)
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_rfc3339_utc(text: &str) -> Result<u64, String> {
    let bad = || format!("time {text:?} is not YYYY-MM-DDTHH:MM:SSZ or Unix seconds");
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return Err(bad());
    }
    if b[16] != b':' || b[19] != b'Z' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        text.get(r)
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    // Howard Hinnant's days_from_civil.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + s).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339_utc("2025-01-06T10:00:00Z"), Ok(1_736_157_600));
        assert_eq!(parse_rfc3339_utc("2000-03-01T00:00:00Z"), Ok(951_868_800));
        assert!(parse_rfc3339_utc("2025-01-06 10:00:00").is_err());
        assert!(parse_rfc3339_utc("2025-13-06T10:00:00Z").is_err());
    }

    #[test]
    fn verbs_map_to_the_request_the_apiserver_classifies() {
        let a = attributes("watch", "/api/v1/namespaces/a/pods").expect("watch");
        assert_eq!((a.verb.as_str(), a.namespace.as_str()), ("watch", "a"));
        let a =
            attributes("create", "/api/v1/namespaces/a/pods/web/exec?command=sh").expect("exec");
        assert_eq!(
            (a.verb.as_str(), a.subresource.as_str()),
            ("create", "exec")
        );
        let a = attributes("GET", "/api/v1/namespaces/a/pods").expect("method");
        assert_eq!(a.verb, "list");
        let e = attributes("get", "/api/v1/namespaces/a/pods").expect_err("get on a collection");
        assert!(e.contains("\"list\""), "{e}");
        assert!(attributes("frobnicate", "/api").is_err());
    }

    #[test]
    fn unknown_fields_in_a_case_are_refused() {
        let e = Suite::from_yaml(
            "cases:\n- name: x\n  user: u\n  verb: get\n  path: /version\n  expect: allow\n  expcet: deny\n",
        )
        .expect_err("typo");
        assert!(e.contains("expcet"), "{e}");
    }
}

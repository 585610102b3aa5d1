use std::time::{Duration, UNIX_EPOCH};

use custos_kube::{classify, RequestAttributes, UserInfo};
use http::Method;
use proptest::prelude::*;

use super::*;
use crate::body::BodyFacts;
use crate::request::{ImpersonationTarget, Session};

/// Monday 2025-01-06 10:00:00 UTC.
const MONDAY_10AM: u64 = 1_736_157_600;

fn set(text: &str) -> PolicySet {
    PolicySet::from_text("test.cedar", text).unwrap_or_else(|e| panic!("{e}"))
}

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        username: name.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        ..UserInfo::default()
    }
}

fn attrs(method: &str, path: &str) -> RequestAttributes {
    let (path, query) = path
        .split_once('?')
        .map_or((path, None), |(p, q)| (p, Some(q)));
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    classify(&method, path, query).expect("classifies")
}

/// A request as the gateway would put it, with optional body.
struct Ask<'a> {
    user: UserInfo,
    method: &'a str,
    path: &'a str,
    agent: bool,
    body: Option<&'a str>,
    session: Option<Session>,
    ip: Option<&'a str>,
    auth: &'a str,
    at: u64,
}

fn ask<'a>(user_: UserInfo, method: &'a str, path: &'a str) -> Ask<'a> {
    Ask {
        user: user_,
        method,
        path,
        agent: false,
        body: None,
        session: None,
        ip: None,
        auth: "oidc",
        at: MONDAY_10AM,
    }
}

impl Ask<'_> {
    fn decide(&self, set: &PolicySet) -> Decision {
        let a = attrs(self.method, self.path);
        let facts = self.body.map(|b| BodyFacts::extract(b.as_bytes()));
        let req = Request::api(&self.user, &a)
            .agent(self.agent)
            .auth_method(self.auth)
            .session(self.session.as_ref())
            .source_ip(self.ip.map(|i| i.parse().expect("ip")))
            .body(facts.as_ref());
        let now = UNIX_EPOCH + Duration::from_secs(self.at);
        let d = decide(set, &req, now);
        assert_eq!(d, unindexed(set, &req, now), "index and whole set disagree");
        d
    }
}

/// The decision from evaluating the whole set at once, without the index.
fn unindexed(policies: &PolicySet, request: &Request<'_>, now: SystemTime) -> Decision {
    let Ok(built) = build(request, now) else {
        return decide(policies, request, now);
    };
    // The whole set, as written, needs the action hierarchy.
    let actions = crate::schema::compiled().actions.iter().cloned();
    let entities = built
        .entities
        .clone()
        .add_entities(actions, None)
        .expect("action entities");
    let response = Authorizer::new().is_authorized(&built.request, &policies.all, &entities);
    let mut m = Matches::default();
    let satisfied = response
        .diagnostics()
        .reason()
        .filter_map(|id| policies.info(id));
    match response.decision() {
        CedarDecision::Deny => m.forbids.extend(satisfied),
        CedarDecision::Allow => m.permits.extend(satisfied),
    }
    for AuthorizationError::PolicyEvaluationError(e) in response.diagnostics().errors() {
        m.errors.push(e.to_string());
        if let Some(p) = policies
            .info(e.policy_id())
            .filter(|p| p.effect == Effect::Forbid)
        {
            m.failed_forbids.push(p);
        }
    }
    combine(m, request)
}

const OUTCOMES: &str = r#"
@id("readers") @reason("readers read")
permit (principal in k8s::Group::"readers", action in k8s::Action::"readOnly", resource is k8s::Resource);

@id("no-secrets") @reason("secrets are off limits")
forbid (principal in k8s::Group::"readers", action, resource is k8s::Resource)
when { resource.resource == "secrets" };

@id("review-delete") @outcome("review") @approvers("sre, leads") @hold("2m") @grant("30m")
@reason("deletes need a second pair of eyes")
permit (principal in k8s::Group::"ops", action == k8s::Action::"delete", resource);

@id("review-delete-2") @outcome("review") @approvers("leads, security") @hold("5m") @grant("10m")
permit (principal in k8s::Group::"ops", action == k8s::Action::"delete", resource is k8s::Resource)
when { resource has namespace && resource.namespace == "prod" };

@id("leads-delete")
permit (principal in k8s::Group::"leads", action == k8s::Action::"delete", resource);
"#;

#[test]
fn outcomes_table() {
    let s = set(OUTCOMES);
    // (case, groups, method, path, outcome, deciding policies)
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        &'a str,
        &'a str,
        Outcome,
        &'a [&'a str],
    );
    let cases: &[Case<'_>] = &[
        (
            "a reader lists pods",
            &["readers"],
            "GET",
            "/api/v1/namespaces/a/pods",
            Outcome::Allow,
            &["readers"],
        ),
        (
            "a forbid beats a permit",
            &["readers"],
            "GET",
            "/api/v1/namespaces/a/secrets/s",
            Outcome::Deny,
            &["no-secrets"],
        ),
        (
            "nothing matches: default deny",
            &["readers"],
            "DELETE",
            "/api/v1/namespaces/a/pods/p",
            Outcome::Deny,
            &[],
        ),
        (
            "no groups: default deny",
            &[],
            "GET",
            "/api/v1/namespaces/a/pods",
            Outcome::Deny,
            &[],
        ),
        (
            "only review permits: review",
            &["ops"],
            "DELETE",
            "/api/v1/namespaces/a/pods/p",
            Outcome::Review,
            &["review-delete"],
        ),
        (
            "two review permits merge",
            &["ops"],
            "DELETE",
            "/api/v1/namespaces/prod/pods/p",
            Outcome::Review,
            &["review-delete", "review-delete-2"],
        ),
        (
            "a plain permit beats review",
            &["ops", "leads"],
            "DELETE",
            "/api/v1/namespaces/prod/pods/p",
            Outcome::Allow,
            &["leads-delete"],
        ),
    ];
    for (name, groups, method, path, outcome, ids) in cases {
        let d = ask(user("u", groups), method, path).decide(&s);
        assert_eq!(d.outcome, *outcome, "{name}: {d:?}");
        assert_eq!(d.policy_ids, *ids, "{name}");
    }
}

#[test]
fn decisions_carry_reasons_annotations_and_review_terms() {
    let s = set(OUTCOMES);
    let d = ask(
        user("u", &["readers"]),
        "GET",
        "/api/v1/namespaces/a/secrets/s",
    )
    .decide(&s);
    assert_eq!(d.reasons, ["secrets are off limits"]);
    assert_eq!(
        d.annotations["no-secrets"]["reason"],
        "secrets are off limits"
    );
    assert_eq!(d.message(), "secrets are off limits");

    let d = ask(user("u", &[]), "DELETE", "/api/v1/namespaces/a/pods/p").decide(&s);
    assert_eq!(
        d.reasons,
        ["no policy permits delete on pods \"p\" in namespace a"]
    );

    let d = ask(
        user("u", &["ops"]),
        "DELETE",
        "/api/v1/namespaces/prod/pods/p",
    )
    .decide(&s);
    let review = d.review.clone().expect("review terms");
    assert_eq!(review.approvers, ["sre", "leads", "security"]);
    assert_eq!(review.hold_seconds, Some(300), "the longest hold");
    assert_eq!(review.grant_seconds, Some(600), "the shortest grant");
    assert_eq!(
        d.reasons,
        [
            "deletes need a second pair of eyes",
            "policy review-delete-2 requires approval"
        ]
    );
    assert!(d.message().starts_with("approval required: "));
    let json = serde_json::to_value(&d).expect("serialises");
    assert_eq!(json["outcome"], "review");
    assert_eq!(json["review"]["hold_seconds"], 300);
}

const SUBRESOURCES: &str = r#"
@id("services") permit (principal, action, resource is k8s::Resource)
when { resource.resource == "services" };

@id("pods-read") permit (principal, action in k8s::Action::"readOnly", resource is k8s::Resource)
when { resource.resource == "pods" };

@id("anything-but-secrets") permit (principal in k8s::Group::"wide", action in k8s::Action::"readOnly", resource is k8s::Resource)
unless { resource.resource == "secrets" };

@id("pods-log") permit (principal, action == k8s::Action::"get", resource is k8s::Resource)
when { resource.resource == "pods" && resource has subresource && resource.subresource == "log" };

@id("ns-admin") permit (principal in k8s::Group::"ns-admins", action, resource is k8s::Resource)
when { resource has namespace && resource.namespace == "team" };

@id("no-pods-in-locked") forbid (principal, action, resource is k8s::Resource)
when { resource.resource == "pods" && resource has namespace && resource.namespace == "locked" };
"#;

#[test]
fn a_permit_that_names_a_resource_does_not_cover_its_subresources() {
    let s = set(SUBRESOURCES);
    let u = || user("u", &[]);
    let wide = || user("w", &["wide"]);
    let cases: &[(&str, UserInfo, &str, &str, Outcome)] = &[
        (
            "services",
            u(),
            "GET",
            "/api/v1/namespaces/a/services/web",
            Outcome::Allow,
        ),
        (
            "services/proxy by GET",
            u(),
            "GET",
            "/api/v1/namespaces/a/services/web/proxy/admin",
            Outcome::Deny,
        ),
        (
            "services/proxy by POST",
            u(),
            "POST",
            "/api/v1/namespaces/a/services/web/proxy/",
            Outcome::Deny,
        ),
        (
            "services/status",
            u(),
            "PUT",
            "/api/v1/namespaces/a/services/web/status",
            Outcome::Deny,
        ),
        (
            "pods",
            u(),
            "GET",
            "/api/v1/namespaces/a/pods/web",
            Outcome::Allow,
        ),
        (
            "pods/exec over SPDY (create)",
            u(),
            "POST",
            "/api/v1/namespaces/a/pods/web/exec?command=sh",
            Outcome::Deny,
        ),
        (
            "pods/exec over WebSocket (get)",
            u(),
            "GET",
            "/api/v1/namespaces/a/pods/web/exec?command=sh",
            Outcome::Deny,
        ),
        (
            "pods/attach over WebSocket (get)",
            u(),
            "GET",
            "/api/v1/namespaces/a/pods/web/attach",
            Outcome::Deny,
        ),
        (
            "pods/portforward (get)",
            u(),
            "GET",
            "/api/v1/namespaces/a/pods/web/portforward",
            Outcome::Deny,
        ),
        (
            "pods/log, granted by its own policy",
            u(),
            "GET",
            "/api/v1/namespaces/a/pods/web/log",
            Outcome::Allow,
        ),
        (
            "an exclusion still names a resource",
            wide(),
            "GET",
            "/api/v1/namespaces/a/pods/web/exec",
            Outcome::Deny,
        ),
        (
            "an exclusion allows plain reads",
            wide(),
            "GET",
            "/api/v1/namespaces/a/configmaps/c",
            Outcome::Allow,
        ),
        (
            "a permit naming no resource covers subresources",
            user("n", &["ns-admins"]),
            "POST",
            "/api/v1/namespaces/team/pods/web/exec",
            Outcome::Allow,
        ),
        (
            "forbids are never narrowed",
            user("n", &["ns-admins"]),
            "POST",
            "/api/v1/namespaces/locked/pods/web/exec",
            Outcome::Deny,
        ),
    ];
    for (name, who, method, path, outcome) in cases {
        let d = ask(who.clone(), method, path).decide(&s);
        assert_eq!(d.outcome, *outcome, "{name}: {d:?}");
    }
    assert!(!s.policy("services").expect("services").covers_subresources);
    assert!(s.policy("pods-log").expect("pods-log").covers_subresources);
    assert!(s.policy("ns-admin").expect("ns-admin").covers_subresources);
}

#[test]
fn principals_groups_and_service_accounts() {
    let s = set(r#"
@id("authenticated") permit (principal in k8s::Group::"system:authenticated", action == k8s::Action::"get", resource is k8s::NonResourceURL);
@id("alice") permit (principal == k8s::User::"alice", action == k8s::Action::"list", resource);
@id("sa-ns") permit (principal in k8s::Group::"system:serviceaccounts:ci", action == k8s::Action::"list", resource);
@id("sa-by-attr") permit (principal is k8s::ServiceAccount, action == k8s::Action::"watch", resource)
  when { principal.namespace == "ci" && principal.name == "deployer" };
"#);
    let sa = || user("system:serviceaccount:ci:deployer", &[]);
    let cases: &[(&str, UserInfo, &str, &str, Outcome)] = &[
        (
            "every caller is authenticated",
            user("bob", &[]),
            "GET",
            "/version",
            Outcome::Allow,
        ),
        (
            "a named user",
            user("alice", &[]),
            "GET",
            "/api/v1/pods",
            Outcome::Allow,
        ),
        (
            "another user",
            user("bob", &[]),
            "GET",
            "/api/v1/pods",
            Outcome::Deny,
        ),
        (
            "service account groups are implicit",
            sa(),
            "GET",
            "/api/v1/pods",
            Outcome::Allow,
        ),
        (
            "service account attributes",
            sa(),
            "GET",
            "/api/v1/pods?watch=true",
            Outcome::Allow,
        ),
        (
            "a user named like a service account group is not one",
            user("system:serviceaccount:ci", &[]),
            "GET",
            "/api/v1/pods",
            Outcome::Deny,
        ),
    ];
    for (name, who, method, path, outcome) in cases {
        let d = ask(who.clone(), method, path).decide(&s);
        assert_eq!(d.outcome, *outcome, "{name}: {d:?}");
    }
}

#[test]
fn context_agent_session_ip_time_and_body() {
    let s = set(r#"
@id("agents-with-ticket") permit (principal, action == k8s::Action::"create", resource is k8s::Resource)
  when { context.agent && context has session && context.session has ticket && resource.resource == "configmaps" };
@id("humans") permit (principal, action == k8s::Action::"create", resource is k8s::Resource)
  when { !context.agent && resource.resource == "configmaps" };
@id("office") forbid (principal, action, resource)
  unless { context has sourceIP && context.sourceIP.isInRange(ip("10.0.0.0/8")) };
@id("hours") forbid (principal, action, resource)
  when { context.time.weekday > 5 || context.time.hour < 7 || context.time.hour >= 19 };
@id("no-privileged") forbid (principal, action, resource) when { context.body.privileged };
@id("unknown-body") forbid (principal, action, resource) when { context.body.present && !context.body.known };
"#);
    let base = || {
        let mut a = ask(user("u", &[]), "POST", "/api/v1/namespaces/a/configmaps");
        a.ip = Some("10.1.2.3");
        a.body = Some(r#"{"kind":"ConfigMap"}"#);
        a
    };
    let with_ticket = Session {
        id: Some("s-1".into()),
        intent: "rotate config".into(),
        ticket: Some("CHG-1".into()),
    };
    let no_ticket = Session {
        ticket: None,
        ..with_ticket.clone()
    };
    let mut cases: Vec<(&str, Ask<'_>, Outcome, &[&str])> = vec![
        (
            "a human in office hours",
            base(),
            Outcome::Allow,
            &["humans"],
        ),
        (
            "an agent without a session",
            Ask {
                agent: true,
                ..base()
            },
            Outcome::Deny,
            &[],
        ),
        (
            "an agent without a ticket",
            Ask {
                agent: true,
                session: Some(no_ticket),
                ..base()
            },
            Outcome::Deny,
            &[],
        ),
        (
            "an agent with a ticket",
            Ask {
                agent: true,
                session: Some(with_ticket),
                ..base()
            },
            Outcome::Allow,
            &["agents-with-ticket"],
        ),
        (
            "from outside",
            Ask {
                ip: Some("192.0.2.1"),
                ..base()
            },
            Outcome::Deny,
            &["office"],
        ),
        (
            "no address at all",
            Ask { ip: None, ..base() },
            Outcome::Deny,
            &["office"],
        ),
        (
            "Monday 06:59",
            Ask {
                at: MONDAY_10AM - 3 * 3600 - 60,
                ..base()
            },
            Outcome::Deny,
            &["hours"],
        ),
        (
            "Saturday",
            Ask {
                at: MONDAY_10AM + 5 * 86_400,
                ..base()
            },
            Outcome::Deny,
            &["hours"],
        ),
        (
            "an unreadable body",
            Ask {
                body: Some("kind: ConfigMap"),
                ..base()
            },
            Outcome::Deny,
            &["unknown-body"],
        ),
    ];
    cases.push((
        "a privileged pod",
        Ask {
            path: "/api/v1/namespaces/a/pods",
            body: Some(
                r#"{"spec":{"containers":[{"image":"x","securityContext":{"privileged":true}}]}}"#,
            ),
            ..base()
        },
        Outcome::Deny,
        &["no-privileged"],
    ));
    for (name, a, outcome, ids) in cases {
        let d = a.decide(&s);
        assert_eq!(d.outcome, outcome, "{name}: {d:?}");
        assert_eq!(d.policy_ids, ids, "{name}");
    }
}

#[test]
fn a_forbid_that_fails_to_evaluate_denies() {
    let s = set(r#"
@id("all") permit (principal, action, resource);
@id("overflows") forbid (principal, action, resource) when { context.time.unix * 10000000000 > 0 };
@id("overflowing-permit") permit (principal, action, resource) when { context.time.unix * 10000000000 > 0 };
"#);
    let d = ask(user("u", &[]), "GET", "/api/v1/pods").decide(&s);
    assert_eq!(d.outcome, Outcome::Deny);
    assert_eq!(d.policy_ids, ["overflows"]);
    assert_eq!(d.errors.len(), 2, "{:?}", d.errors);
    assert!(d.reasons[0].contains("could not be evaluated"));
    // At the epoch nothing overflows: the forbid is simply false.
    let mut early = ask(user("u", &[]), "GET", "/api/v1/pods");
    early.at = 0;
    assert_eq!(early.decide(&s).outcome, Outcome::Allow);
}

#[test]
fn requests_outside_the_schema_are_denied_with_the_reason() {
    let s = set("@id(\"all\") permit (principal, action, resource);");
    let u = user("u", &[]);
    for (method, path) in [
        ("OPTIONS", "/api/v1/namespaces/a/pods"),
        ("TRACE", "/healthz"),
        ("CONNECT", "/version"),
    ] {
        let a = attrs(method, path);
        let d = decide(&s, &Request::api(&u, &a), UNIX_EPOCH);
        assert_eq!(d.outcome, Outcome::Deny, "{method} {path}");
        assert!(
            d.reasons[0].starts_with("no policy permits"),
            "{:?}",
            d.reasons
        );
    }
    assert_eq!(
        ask(u.clone(), "GET", "/healthz").decide(&s).outcome,
        Outcome::Allow
    );
}

#[test]
fn impersonation_is_decided_per_target() {
    let s = set(r#"
@id("sudo-readers") permit (principal in k8s::Group::"admins", action == k8s::Action::"impersonate", resource is k8s::User)
  when { resource.name like "*@custos.test" };
@id("sudo-groups") permit (principal in k8s::Group::"admins", action == k8s::Action::"impersonate", resource == k8s::Group::"readers");
@id("sa") permit (principal in k8s::Group::"admins", action == k8s::Action::"impersonate", resource is k8s::ServiceAccount)
  when { resource.namespace == "ci" };
@id("own-group") permit (principal in k8s::Group::"admins", action == k8s::Action::"impersonate", resource is k8s::Group)
  when { principal in resource && resource.name == "admins" };
"#);
    let admin = user("root", &["admins"]);
    let target = |t: ImpersonationTarget| decide(&s, &Request::impersonate(&admin, &t), UNIX_EPOCH);
    assert_eq!(
        target(ImpersonationTarget::user("bob@custos.test")).outcome,
        Outcome::Allow
    );
    assert_eq!(
        target(ImpersonationTarget::user("bob@elsewhere")).outcome,
        Outcome::Deny
    );
    assert_eq!(
        target(ImpersonationTarget::Group {
            name: "readers".into()
        })
        .outcome,
        Outcome::Allow
    );
    assert_eq!(
        target(ImpersonationTarget::Group {
            name: "system:masters".into()
        })
        .outcome,
        Outcome::Deny
    );
    assert_eq!(
        target(ImpersonationTarget::user("system:serviceaccount:ci:x")).outcome,
        Outcome::Allow
    );
    assert_eq!(
        target(ImpersonationTarget::Uid { uid: "1".into() }).outcome,
        Outcome::Deny
    );
    // The caller's own group as the target: it stays the caller's parent.
    let own = target(ImpersonationTarget::Group {
        name: "admins".into(),
    });
    assert_eq!(own.outcome, Outcome::Allow);
    assert_eq!(own.policy_ids, ["own-group"]);
    // The caller as the target: its own entity, groups and all.
    assert_eq!(
        target(ImpersonationTarget::user("root")).outcome,
        Outcome::Deny
    );

    let asked = crate::ImpersonationRequest {
        user: "bob@custos.test".into(),
        groups: vec!["readers".into(), "system:masters".into()],
        ..Default::default()
    };
    let a = attrs("GET", "/api/v1/pods");
    let d = crate::decide_impersonation(&s, &Request::api(&admin, &a), &asked, UNIX_EPOCH);
    assert_eq!(d.outcome, Outcome::Deny, "one refused target refuses all");
    assert!(d.reasons[0].contains("system:masters"), "{:?}", d.reasons);
    let asked = crate::ImpersonationRequest {
        groups: vec!["readers".into()],
        ..asked
    };
    let d = crate::decide_impersonation(&s, &Request::api(&admin, &a), &asked, UNIX_EPOCH);
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.policy_ids, ["sudo-readers", "sudo-groups"]);
}

#[test]
fn explain_shows_what_was_decided_on() {
    let s = set(OUTCOMES);
    let u = user("u", &["ops"]);
    let a = attrs("DELETE", "/api/v1/namespaces/prod/pods/p");
    let e = explain(&s, &Request::api(&u, &a).agent(true), UNIX_EPOCH);
    assert_eq!(e.decision.outcome, Outcome::Review);
    assert_eq!(e.principal, r#"k8s::User::"u""#);
    assert_eq!(e.action, r#"k8s::Action::"delete""#);
    assert_eq!(
        e.resource,
        r#"k8s::Resource::"/api/v1/namespaces/prod/pods/p""#
    );
    assert_eq!(e.groups, ["ops", "system:authenticated"]);
    assert!(e.context.agent);
    assert_eq!(e.deciding.len(), 2);
    assert_eq!(e.deciding[0].location.line, 9);
}

fn policies_for_props() -> &'static PolicySet {
    static SET: std::sync::OnceLock<PolicySet> = std::sync::OnceLock::new();
    SET.get_or_init(|| set(&format!(
        "{OUTCOMES}\n{}\n{}",
        SUBRESOURCES.replace("@id(\"", "@id(\"s-"),
        r#"@id("body") forbid (principal, action, resource) when { context.body.hostNetwork || (context.body has replicas && context.body.replicas == 0) };
@id("sa") permit (principal in k8s::Group::"system:serviceaccounts", action in k8s::Action::"write", resource);
@id("cond-action") permit (principal in k8s::Group::"leads", action, resource)
  unless { action in k8s::Action::"write" || action in [k8s::Action::"readOnly", k8s::Action::"proxy"] };
@id("cond-action-2") forbid (principal in k8s::Group::"wide", action, resource)
  when { action == k8s::Action::"watch" || action in [k8s::Action::"write"] };"#
    )))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the path, method, identity and body, decide answers (and the index agrees with
    /// the whole set).
    #[test]
    fn decide_never_panics(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
        segments in prop::collection::vec(
            prop_oneof![
                Just("api".to_owned()), Just("apis".to_owned()), Just("v1".to_owned()),
                Just("namespaces".to_owned()), Just("pods".to_owned()), Just("exec".to_owned()),
                Just("proxy".to_owned()), Just("watch".to_owned()), Just("prod".to_owned()),
                "[a-z0-9.:-]{1,12}",
            ],
            0..8,
        ),
        query in prop::option::of("(watch=true|limit=x|fieldSelector=metadata.name%3Dx|[a-z=&]{0,12})"),
        username in "(system:serviceaccount:[a-z]{1,4}:[a-z]{1,4}|[a-z@.:]{0,12})",
        groups in prop::collection::vec(
            prop::sample::select(vec!["readers", "ops", "leads", "wide", "ns-admins", "system:masters", ""]),
            0..4,
        ),
        agent in any::<bool>(),
        body in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
        at in any::<u64>(),
    ) {
        let s = policies_for_props();
        let path = format!("/{}", segments.join("/"));
        let Ok(a) = classify(&Method::from_bytes(method.as_bytes()).expect("method"), &path, query.as_deref()) else {
            return Ok(());
        };
        let u = UserInfo {
            username,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..UserInfo::default()
        };
        let facts = body.map(|b| BodyFacts::extract(&b));
        let req = Request::api(&u, &a).agent(agent).body(facts.as_ref());
        let now = UNIX_EPOCH + Duration::from_secs(at % (1 << 40));
        let d = decide(s, &req, now);
        prop_assert_eq!(&d, &unindexed(s, &req, now));
        prop_assert!(!d.reasons.is_empty());
    }
}

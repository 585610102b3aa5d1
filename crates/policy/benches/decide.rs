//! Time of one decision against sets of 10, 100 and 1,000 policies.
//!
//! Two shapes of set: `scoped`, where team policies name their group in their scope (as real sets
//! do, and as the index exploits), and `unscoped`, the worst case, where they name it only in their
//! condition, so every policy of the verb is evaluated. Each request
//! is a `create` of a Deployment with a body (so the context has body facts) by a user in five
//! groups. After criterion's runs, p50/p99/max over 20,000 timed single decisions are printed, for
//! that write and for a read (a `get` without a body, which no write guardrail applies to).
//!
//! `cargo bench -p custos-policy --bench decide -- --quick`

use std::hint::black_box;
use std::time::{Duration, Instant, UNIX_EPOCH};

use criterion::{criterion_group, BenchmarkId, Criterion};
use custos_kube::{classify, RequestAttributes, UserInfo};
use custos_policy::{decide, BodyFacts, Outcome, PolicySet, Request};

const SIZES: [usize; 3] = [10, 100, 1000];

/// `n` policies: guardrail forbids (a tenth, at most 20: guardrails do not grow with teams) that
/// name no principal, and teams of ten policies each. In `scoped` sets a team's policies name the
/// team's group in their scope, otherwise only in their condition.
fn policies(n: usize, scoped: bool) -> String {
    let guardrails = (n / 10).min(20);
    let mut s = String::new();
    for i in 0..guardrails {
        let p = match i % 4 {
            0 => "context.body.privileged || context.body.hostPath || context.body.hostNetwork".to_owned(),
            1 => "!([\"docker.io\", \"ghcr.io\", \"registry.k8s.io\"].containsAll(context.body.registries))".to_owned(),
            2 => format!(
                "context.body has replicas && context.body.replicas == 0 && \
                 resource has namespace && resource.namespace like \"prod-{i}*\""
            ),
            _ => format!("resource has namespace && resource.namespace == \"locked-{i}\""),
        };
        s.push_str(&format!(
            "forbid (principal, action in [k8s::Action::\"create\", k8s::Action::\"update\", k8s::Action::\"patch\"], \
             resource is k8s::Resource) when {{ {p} }};\n"
        ));
    }
    for i in guardrails..n {
        let t = (i - guardrails) / 10;
        let team = format!("team-{t}");
        let (scope, cond) = if scoped {
            (
                format!("principal in k8s::Group::\"{team}\""),
                String::new(),
            )
        } else {
            (
                "principal".to_owned(),
                format!("principal in k8s::Group::\"{team}\" && "),
            )
        };
        let p = match i % 10 {
            0..=3 => format!(
                "permit ({scope}, action in k8s::Action::\"readOnly\", resource is k8s::Resource) \
                 when {{ {cond}resource has namespace && resource.namespace == \"ns-{t}{}\" }} \
                 unless {{ resource.apiGroup == \"\" && resource.resource == \"secrets\" }};",
                i % 10
            ),
            4..=6 => format!(
                "permit ({scope}, action in k8s::Action::\"write\", resource is k8s::Resource) \
                 when {{ {cond}resource has namespace && resource.namespace like \"ns-{t}*\" && \
                 [\"deployments\", \"statefulsets\", \"configmaps\"].contains(resource.resource) }};"
            ),
            7 => format!(
                "@outcome(\"review\") @approvers(\"sre\") @hold(\"5m\")\n\
                 permit ({scope}, action in [k8s::Action::\"delete\", k8s::Action::\"create\"], resource is k8s::Resource) \
                 when {{ {cond}context.agent && resource has namespace && resource.namespace like \"prod-{t}*\" }};"
            ),
            8 => format!(
                "permit ({scope}, action == k8s::Action::\"get\", resource is k8s::Resource) \
                 when {{ {cond}resource.resource == \"pods\" && resource has subresource && resource.subresource == \"log\" }};"
            ),
            _ => format!(
                "permit (principal == k8s::User::\"user-{i}\", action, resource is k8s::Resource) \
                 when {{ resource has namespace && resource.namespace == \"ns-{t}\" }};"
            ),
        };
        s.push_str(&p);
        s.push('\n');
    }
    s
}

struct Fixture {
    user: UserInfo,
    attrs: RequestAttributes,
    read: RequestAttributes,
    body: BodyFacts,
}

fn fixture() -> Fixture {
    let user = UserInfo {
        username: "alice@custos.test".into(),
        uid: Some("u-1".into()),
        groups: ["team-0", "agents", "readers", "staff", "vpn"]
            .map(String::from)
            .to_vec(),
        ..UserInfo::default()
    };
    let attrs = classify(
        &http::Method::POST,
        "/apis/apps/v1/namespaces/ns-05/deployments",
        None,
    )
    .expect("classifies");
    let read = classify(
        &http::Method::GET,
        "/api/v1/namespaces/ns-01/configmaps/settings",
        None,
    )
    .expect("classifies");
    let body = BodyFacts::extract(
        br#"{"kind":"Deployment","spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"a","image":"ghcr.io/acme/a:1"}]}}}}"#,
    );
    Fixture {
        user,
        attrs,
        read,
        body,
    }
}

/// The write: a `create` with a body, which every guardrail forbid must look at.
fn request<'a>(f: &'a Fixture) -> Request<'a> {
    Request::api(&f.user, &f.attrs)
        .agent(true)
        .auth_method("oidc")
        .source_ip(Some([10, 0, 0, 1].into()))
        .body(Some(&f.body))
}

/// The read: a `get` without a body.
fn read<'a>(f: &'a Fixture) -> Request<'a> {
    Request::api(&f.user, &f.read)
        .agent(true)
        .auth_method("oidc")
        .source_ip(Some([10, 0, 0, 1].into()))
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let now = UNIX_EPOCH + Duration::from_secs(1_736_157_600);
    for scoped in [true, false] {
        let mut group = c.benchmark_group(if scoped {
            "decide/scoped"
        } else {
            "decide/unscoped"
        });
        for n in SIZES {
            let set = PolicySet::from_text("bench.cedar", &policies(n, scoped)).expect("valid");
            assert_eq!(decide(&set, &request(&f), now).outcome, Outcome::Allow);
            group.bench_with_input(BenchmarkId::from_parameter(n), &set, |b, set| {
                b.iter(|| decide(black_box(set), black_box(&request(&f)), now))
            });
        }
        group.finish();
    }
}

/// p50, p99 and max of single decisions (criterion reports means and medians only).
fn percentiles() {
    let f = fixture();
    let now = UNIX_EPOCH + Duration::from_secs(1_736_157_600);
    println!("\nsingle-decision latency, 20000 samples each:");
    for scoped in [true, false] {
        for n in SIZES {
            let set = PolicySet::from_text("bench.cedar", &policies(n, scoped)).expect("valid");
            assert_eq!(decide(&set, &read(&f), now).outcome, Outcome::Allow);
            for (what, req) in [("write", request(&f)), ("read", read(&f))] {
                let samples = sample(&set, &req, now);
                let at =
                    |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
                println!(
                    "  {:<9} {what:<5} {n:>5} policies: p50 {:>8.1?}  p99 {:>8.1?}  max {:>8.1?}",
                    if scoped { "scoped" } else { "unscoped" },
                    at(0.50),
                    at(0.99),
                    samples[samples.len() - 1]
                );
            }
        }
    }
}

/// 20,000 timed decisions of `req`, sorted, after 1,000 to warm up.
fn sample(set: &PolicySet, req: &Request<'_>, now: std::time::SystemTime) -> Vec<Duration> {
    for _ in 0..1000 {
        black_box(decide(set, req, now));
    }
    let mut samples: Vec<Duration> = (0..20_000)
        .map(|_| {
            let t = Instant::now();
            black_box(decide(black_box(set), black_box(req), now));
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    percentiles();
}

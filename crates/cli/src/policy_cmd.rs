//! `custos policy check | explain | test | schema`: validate a policy set, explain one decision, run
//! policy tests. Thin: loading, deciding and running tests live in `custos-policy`.

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{bail, Context as _};
use clap::Subcommand;
use custos_kube::UserInfo;
use custos_policy::suite::{attributes, TimeSpec};
use custos_policy::{
    explain, BodyFacts, Explanation, ImpersonationTarget, LoadedPolicies, PolicyError, Request,
    Session,
};

/// Policy commands.
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate policies (a .cedar file or a folder) against the schema in strict mode.
    Check {
        /// Policy file or folder.
        path: PathBuf,
    },
    /// Decide one request and show the deciding policies with their annotations.
    ///
    /// VERB is a Kubernetes verb (get, list, watch, create, update, patch, delete, ...) or an
    /// uppercase HTTP method; PATH is the request path with its query
    /// (/api/v1/namespaces/prod-a/pods/web/exec?command=sh). For impersonation, VERB is
    /// `impersonate` and PATH is user:NAME, group:NAME, uid:UID or extra:KEY=VALUE.
    Explain {
        /// The request and its context.
        #[command(flatten)]
        request: Box<ExplainArgs>,
    },
    /// Run the policy tests (*.test.yaml, recursively) in DIR against the policies in DIR.
    Test {
        /// Folder with the tests (and, unless --policies is given, the policies).
        dir: PathBuf,
        /// Policy file or folder, when not DIR.
        #[arg(long)]
        policies: Option<PathBuf>,
        /// Print passing cases too.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Print the Cedar schema policies are validated against.
    Schema,
}

/// What `custos policy explain` decides.
#[derive(clap::Args)]
pub struct ExplainArgs {
    /// Policy file or folder.
    #[arg(long, env = "CUSTOS_POLICIES")]
    policies: PathBuf,
    /// Username (as authenticated, prefixes included).
    #[arg(long)]
    user: String,
    /// A group of the user (repeat for several).
    #[arg(long = "group", short = 'g')]
    groups: Vec<String>,
    /// The user's uid.
    #[arg(long)]
    uid: Option<String>,
    /// Treat the caller as an agent.
    #[arg(long)]
    agent: bool,
    /// Members of this group are agents (repeatable).
    #[arg(long = "agent-group", default_value = "agents")]
    agent_groups: Vec<String>,
    /// How the caller authenticated: oidc, client_cert or static_token.
    #[arg(long, default_value = "oidc")]
    auth_method: String,
    /// The session's intent (makes context.session present).
    #[arg(long)]
    intent: Option<String>,
    /// The session's ticket.
    #[arg(long)]
    ticket: Option<String>,
    /// The caller's IP address.
    #[arg(long)]
    source_ip: Option<IpAddr>,
    /// When: Unix seconds or YYYY-MM-DDTHH:MM:SSZ (default: now).
    #[arg(long)]
    time: Option<String>,
    /// Request body file (JSON); `-` reads standard input.
    #[arg(long)]
    body: Option<PathBuf>,
    /// Print the explanation as JSON.
    #[arg(long)]
    json: bool,
    /// The Kubernetes verb or HTTP method.
    verb: String,
    /// The request path (with query).
    path: String,
}

/// Runs a policy command; the exit code says whether policies (or tests) are good.
pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { path } => check(&path),
        PolicyCommand::Explain { request } => explain_one(*request),
        PolicyCommand::Test {
            dir,
            policies,
            verbose,
        } => test(&dir, policies.as_deref().unwrap_or(&dir), verbose),
        PolicyCommand::Schema => {
            print!("{}", custos_policy::SCHEMA_SOURCE);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `custos policy explain`: decides one request and prints why.
fn explain_one(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let ExplainArgs {
        policies,
        user,
        groups,
        uid,
        agent,
        agent_groups,
        auth_method,
        intent,
        ticket,
        source_ip,
        time,
        body,
        json,
        verb,
        path,
    } = args;
    let Some(loaded) = load_or_report(&policies)? else {
        return Ok(ExitCode::FAILURE);
    };
    let user = UserInfo {
        username: user,
        uid,
        groups,
        extra: Default::default(),
    };
    let agent = agent || custos_policy::is_agent(&user, &agent_groups);
    let session = intent.map(|intent| Session {
        id: None,
        intent,
        ticket,
    });
    let now = match time {
        Some(t) => parse_time(&t)?,
        None => SystemTime::now(),
    };
    let body = body.map(|b| read_body(&b)).transpose()?;
    let facts = body.as_deref().map(BodyFacts::extract);
    let target;
    let attrs;
    let request = if verb == "impersonate" {
        target = impersonation_target(&path)?;
        Request::impersonate(&user, &target)
    } else {
        attrs = attributes(&verb, &path).map_err(anyhow::Error::msg)?;
        Request::api(&user, &attrs)
    };
    let request = request
        .agent(agent)
        .auth_method(&auth_method)
        .session(session.as_ref())
        .source_ip(source_ip)
        .body(facts.as_ref());
    let explanation = explain(&loaded.set, &request, now);
    if json {
        println!("{}", serde_json::to_string_pretty(&explanation)?);
    } else {
        print_explanation(&explanation);
    }
    Ok(ExitCode::SUCCESS)
}

fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let Some(loaded) = load_or_report(path)? else {
        return Ok(ExitCode::FAILURE);
    };
    for w in &loaded.warnings {
        eprintln!("{w} (warning)");
    }
    println!(
        "{}: {} policies in {} files are valid",
        path.display(),
        loaded.set.len(),
        loaded.files.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Loads policies; an invalid set is reported on stderr (one `file:line:col: message` a line) and
/// gives `None`; unreadable files are errors.
fn load_or_report(path: &Path) -> anyhow::Result<Option<LoadedPolicies>> {
    match custos_policy::load(path) {
        Ok(loaded) => Ok(Some(loaded)),
        Err(PolicyError::Invalid(diagnostics)) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            eprintln!(
                "{}: {} problem{}; the policy set is refused",
                path.display(),
                diagnostics.len(),
                if diagnostics.len() == 1 { "" } else { "s" }
            );
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn test(dir: &Path, policies: &Path, verbose: bool) -> anyhow::Result<ExitCode> {
    let Some(loaded) = load_or_report(policies)? else {
        return Ok(ExitCode::FAILURE);
    };
    let files = custos_policy::load::find_files(dir, ".test.yaml")?;
    if files.is_empty() {
        bail!("{}: no *.test.yaml files", dir.display());
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        let suite = custos_policy::load::load_suite(file)?;
        let (mut p, mut f) = (0usize, 0usize);
        for result in suite.run(&loaded.set) {
            if let Some(failure) = &result.failure {
                f += 1;
                println!("FAIL  {}: {failure}", result.name);
            } else {
                p += 1;
                if verbose {
                    println!("ok    {} ({})", result.name, result.expected);
                }
            }
        }
        println!("{}: {p} passed, {f} failed", file.display());
        passed += p;
        failed += f;
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_explanation(e: &Explanation<'_>) {
    let d = &e.decision;
    println!("decision:  {}", d.outcome);
    println!("reason:    {}", d.message());
    println!("principal: {} in [{}]", e.principal, e.groups.join(", "));
    println!("action:    {}", e.action);
    println!("resource:  {}", e.resource);
    let mut facts = vec![format!("agent={}", e.context.agent)];
    if !e.context.auth_method.is_empty() {
        facts.push(format!("authMethod={}", e.context.auth_method));
    }
    if let Some(s) = &e.context.session {
        facts.push(format!("session.intent={:?}", s.intent));
        if let Some(t) = &s.ticket {
            facts.push(format!("session.ticket={t}"));
        }
    }
    if let Some(ip) = &e.context.source_ip {
        facts.push(format!("sourceIP={ip}"));
    }
    let b = &e.context.body;
    if b.present {
        facts.push(format!("body.known={}", b.known()));
        for (name, set) in [
            ("privileged", b.privileged),
            ("hostPath", b.host_path),
            ("hostNetwork", b.host_network),
            ("hostPID", b.host_pid),
            ("hostIPC", b.host_ipc),
        ] {
            if set {
                facts.push(format!("body.{name}=true"));
            }
        }
        if !b.registries.is_empty() {
            let r: Vec<&str> = b.registries.iter().map(String::as_str).collect();
            facts.push(format!("body.registries=[{}]", r.join(", ")));
        }
        if let Some(n) = b.replicas {
            facts.push(format!("body.replicas={n}"));
        }
        for why in &b.unknown {
            facts.push(format!("unknown: {why}"));
        }
    }
    println!("context:   {}", facts.join(" "));
    if let Some(r) = &d.review {
        let hold = r.hold_seconds.map_or("-".into(), |s| format!("{s}s"));
        let grant = r.grant_seconds.map_or("-".into(), |s| format!("{s}s"));
        println!(
            "review:    approvers [{}], hold {hold}, grant {grant}",
            r.approvers.join(", ")
        );
    }
    for err in &d.errors {
        println!("error:     {err}");
    }
    if e.deciding.is_empty() {
        println!("deciding policies: none (default deny)");
        return;
    }
    println!("deciding policies:");
    for p in &e.deciding {
        let kind = match (p.effect, p.review) {
            (custos_policy::Effect::Forbid, _) => "forbid",
            (_, true) => "permit, review",
            _ => "permit",
        };
        println!("  {}  ({kind}; {})", p.id, p.location);
        for (k, v) in &p.annotations {
            if k != "id" {
                println!("    @{k}({v:?})");
            }
        }
        if !p.covers_subresources {
            println!("    (names a resource without mentioning subresource: not for subresources)");
        }
    }
}

fn parse_time(text: &str) -> anyhow::Result<SystemTime> {
    let spec = match text.parse::<u64>() {
        Ok(secs) => TimeSpec::Unix(secs),
        Err(_) => TimeSpec::Text(text.to_owned()),
    };
    spec.to_system_time().map_err(anyhow::Error::msg)
}

fn read_body(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(bytes)
}

fn impersonation_target(spec: &str) -> anyhow::Result<ImpersonationTarget> {
    let Some((kind, value)) = spec.split_once(':') else {
        bail!("impersonate target is user:NAME, group:NAME, uid:UID or extra:KEY=VALUE");
    };
    Ok(match kind {
        "user" => ImpersonationTarget::user(value),
        "group" => ImpersonationTarget::Group { name: value.into() },
        "uid" => ImpersonationTarget::Uid { uid: value.into() },
        "extra" => {
            let Some((key, value)) = value.split_once('=') else {
                bail!("extra:KEY=VALUE");
            };
            ImpersonationTarget::Extra {
                key: key.into(),
                value: value.into(),
            }
        }
        other => bail!("unknown impersonation target kind {other:?}"),
    })
}

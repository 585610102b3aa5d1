//! `custos reviews …`: a client of the gateway's approval API (`/custos/v1/`). It reaches the gateway
//! through a kubeconfig context (the one `custos login` wrote, or any pointing at Custos): the
//! server, its CA, and the credential — a token, or an exec plugin such as `custos token`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::Value;

/// `custos reviews …`
#[derive(Debug, Subcommand)]
pub enum ReviewsCommand {
    /// Reviews you asked for or may decide on (pending ones by default)
    List {
        /// Every state, not only pending
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// One review: operation, requester, intent, body, preview diff, votes
    Show {
        /// Review id (rv-…)
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Approve a review (you must be an approver, and not the requester)
    Approve {
        /// Review id (rv-…)
        id: String,
        /// Why (mandatory, recorded in the audit log)
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Deny a review; the held request gets 403 with your reason
    Deny {
        /// Review id (rv-…)
        id: String,
        /// Why (mandatory, shown to the requester and recorded)
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Grants in force (yours, or those of reviews you may decide)
    Grants {
        /// Expired and revoked grants too
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Revoke a grant at once
    Revoke {
        /// Grant id (gr-…)
        id: String,
        /// Why (mandatory, recorded)
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// How to reach the gateway.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Kubeconfig naming the gateway [default: $KUBECONFIG, ~/.kube/config]
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Context to use [default: the current one]
    #[arg(long)]
    context: Option<String>,
    /// Print the API's JSON instead of text
    #[arg(long, short = 'o', value_parser = ["json", "text"], default_value = "text")]
    output: String,
}

/// Runs a `reviews` subcommand; the exit code is 1 with the gateway's message on refusal.
pub async fn run(cmd: ReviewsCommand) -> Result<std::process::ExitCode> {
    let (api, method, path, body) = match &cmd {
        ReviewsCommand::List { all, api } => (
            api,
            "GET",
            if *all {
                "/custos/v1/reviews".to_owned()
            } else {
                "/custos/v1/reviews?state=pending".to_owned()
            },
            None,
        ),
        ReviewsCommand::Show { id, api } => {
            (api, "GET", format!("/custos/v1/reviews/{}", seg(id)?), None)
        }
        ReviewsCommand::Approve { id, reason, api } => (
            api,
            "POST",
            format!("/custos/v1/reviews/{}/approve", seg(id)?),
            Some(serde_json::json!({ "reason": reason })),
        ),
        ReviewsCommand::Deny { id, reason, api } => (
            api,
            "POST",
            format!("/custos/v1/reviews/{}/deny", seg(id)?),
            Some(serde_json::json!({ "reason": reason })),
        ),
        ReviewsCommand::Grants { all, api } => (
            api,
            "GET",
            format!("/custos/v1/grants?active={}", !*all),
            None,
        ),
        ReviewsCommand::Revoke { id, reason, api } => (
            api,
            "POST",
            format!("/custos/v1/grants/{}/revoke", seg(id)?),
            Some(serde_json::json!({ "reason": reason })),
        ),
    };
    let target = Target::from_kubeconfig(api)?;
    let (code, value) = target.call(method, &path, body).await?;
    if !(200..300).contains(&code) {
        let msg = value
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        eprintln!("custos: {msg} ({code})");
        return Ok(std::process::ExitCode::FAILURE);
    }
    let mut out = std::io::stdout().lock();
    if api.output == "json" {
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    match &cmd {
        ReviewsCommand::List { .. } => {
            let items = value["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                writeln!(out, "no reviews")?;
            }
            for r in items {
                writeln!(out, "{}", review_line(&r))?;
            }
        }
        ReviewsCommand::Grants { .. } => {
            let items = value["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                writeln!(out, "no grants")?;
            }
            for g in items {
                writeln!(out, "{}", grant_line(&g))?;
            }
        }
        ReviewsCommand::Revoke { .. } => writeln!(out, "revoked {}", grant_line(&value))?,
        ReviewsCommand::Show { .. } => write!(out, "{}", review_text(&value))?,
        ReviewsCommand::Approve { .. } | ReviewsCommand::Deny { .. } => {
            writeln!(out, "{}", review_line(&value))?
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// An id as one path segment: refused if it could change the path.
fn seg(id: &str) -> Result<&str> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!("{id:?} is not a review or grant id");
    }
    Ok(id)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn operation(op: &Value) -> String {
    let mut res = s(op, "resource").to_owned();
    if !s(op, "apiGroup").is_empty() {
        res = format!("{res}.{}", s(op, "apiGroup"));
    }
    if !s(op, "name").is_empty() {
        res = format!("{res}/{}", s(op, "name"));
    }
    if !s(op, "subresource").is_empty() {
        res = format!("{res}/{}", s(op, "subresource"));
    }
    let mut line = format!("{} {res}", s(op, "verb"));
    if !s(op, "namespace").is_empty() {
        line.push_str(&format!(" -n {}", s(op, "namespace")));
    }
    line
}

fn review_line(r: &Value) -> String {
    format!(
        "{}  {:<8}  {}  by {}  expires {}",
        s(r, "id"),
        s(r, "state"),
        operation(&r["operation"]),
        s(&r["requester"], "username"),
        s(r, "expires")
    )
}

fn grant_line(g: &Value) -> String {
    let state = if g.get("revoked").is_some_and(|v| !v.is_null()) {
        "revoked"
    } else {
        "active"
    };
    format!(
        "{}  {:<7}  {}  for {}  until {}  (review {})",
        s(g, "id"),
        state,
        operation(&g["scope"]),
        s(g, "username"),
        s(g, "expires"),
        s(g, "reviewId")
    )
}

fn review_text(r: &Value) -> String {
    let mut t = String::new();
    t.push_str(&format!("review     {}\n", s(r, "id")));
    t.push_str(&format!("state      {}\n", s(r, "state")));
    t.push_str(&format!("operation  {}\n", operation(&r["operation"])));
    t.push_str(&format!("path       {}\n", s(&r["operation"], "path")));
    t.push_str(&format!("requester  {}\n", s(&r["requester"], "username")));
    if let Some(sess) = r.get("session").filter(|v| !v.is_null()) {
        t.push_str(&format!(
            "session    {}  intent: {}  ticket: {}\n",
            s(sess, "id"),
            s(sess, "intent"),
            s(sess, "ticket")
        ));
    }
    t.push_str(&format!("reason     {}\n", s(r, "reason")));
    let approvers: Vec<&str> = r["approvers"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    t.push_str(&format!(
        "approvers  {} (threshold {})\n",
        approvers.join(", "),
        r["threshold"]
    ));
    t.push_str(&format!(
        "created    {}\nexpires    {}\n",
        s(r, "created"),
        s(r, "expires")
    ));
    for v in r["votes"].as_array().cloned().unwrap_or_default() {
        t.push_str(&format!(
            "vote       {} {} at {}: {}\n",
            s(&v["by"], "username"),
            s(&v, "verdict"),
            s(&v, "at"),
            s(&v, "justification")
        ));
    }
    if let Some(g) = r.get("grantId").and_then(Value::as_str) {
        t.push_str(&format!("grant      {g}\n"));
    }
    if let Some(b) = r.get("body").filter(|v| !v.is_null()) {
        t.push_str("body (masked):\n");
        t.push_str(&indent(&serde_yaml_ng::to_string(b).unwrap_or_default()));
    }
    if let Some(d) = r.get("diff").and_then(Value::as_str) {
        t.push_str("preview (dry run against the live object, masked):\n");
        t.push_str(&indent(d));
    }
    t
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// The gateway as a kubeconfig context describes it.
struct Target {
    server: String,
    ca: Option<tempfile::NamedTempFile>,
    ca_file: Option<PathBuf>,
    token: String,
}

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(rename = "current-context", default)]
    current_context: String,
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    contexts: Vec<Named<Ctx>>,
    #[serde(default)]
    users: Vec<Named<User>>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "context", alias = "user")]
    item: T,
}

#[derive(Deserialize)]
struct Cluster {
    server: String,
    #[serde(rename = "certificate-authority")]
    ca_file: Option<PathBuf>,
    #[serde(rename = "certificate-authority-data")]
    ca_data: Option<String>,
}

#[derive(Deserialize)]
struct Ctx {
    cluster: String,
    user: String,
}

#[derive(Deserialize)]
struct User {
    token: Option<String>,
    exec: Option<Exec>,
}

#[derive(Deserialize)]
struct Exec {
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<EnvVar>,
}

#[derive(Deserialize)]
struct EnvVar {
    name: String,
    value: String,
}

impl Target {
    fn from_kubeconfig(api: &ApiArgs) -> Result<Target> {
        let path = match &api.kubeconfig {
            Some(p) => std::env::split_paths(p)
                .next()
                .ok_or_else(|| anyhow!("empty KUBECONFIG"))?,
            None => PathBuf::from(std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME not set"))?)
                .join(".kube/config"),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading kubeconfig {}", path.display()))?;
        let kc: Kubeconfig = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("kubeconfig {}", path.display()))?;
        let name = api.context.clone().unwrap_or(kc.current_context.clone());
        let ctx = kc
            .contexts
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| anyhow!("kubeconfig {}: no context {name:?}", path.display()))?;
        let cluster = kc
            .clusters
            .iter()
            .find(|c| c.name == ctx.item.cluster)
            .ok_or_else(|| anyhow!("kubeconfig: no cluster {:?}", ctx.item.cluster))?;
        let user = kc
            .users
            .iter()
            .find(|u| u.name == ctx.item.user)
            .ok_or_else(|| anyhow!("kubeconfig: no user {:?}", ctx.item.user))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let ca_file = cluster.item.ca_file.as_ref().map(|f| base.join(f));
        let ca = match &cluster.item.ca_data {
            Some(data) => {
                use base64::Engine;
                let pem = base64::engine::general_purpose::STANDARD
                    .decode(data.trim())
                    .context("certificate-authority-data is not base64")?;
                let mut f = tempfile::NamedTempFile::new()?;
                f.write_all(&pem)?;
                Some(f)
            }
            None => None,
        };
        let token = match (&user.item.token, &user.item.exec) {
            (Some(t), _) => t.clone(),
            (None, Some(exec)) => exec_token(exec)?,
            (None, None) => bail!(
                "kubeconfig user {:?} has no token or exec credential (run `custos login`)",
                user.name
            ),
        };
        Ok(Target {
            server: cluster.item.server.trim_end_matches('/').to_owned(),
            ca,
            ca_file,
            token,
        })
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let ca: Option<&Path> = self
            .ca
            .as_ref()
            .map(|f| f.path())
            .or(self.ca_file.as_deref());
        let client = custos_authn::oidc::http_client(ca).context("building the HTTPS client")?;
        let url = format!("{}{path}", self.server);
        let mut req = match method {
            "POST" => client.post(&url),
            _ => client.get(&url),
        }
        .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&b)?);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("reaching Custos at {}", self.server))?;
        let code = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        let value = serde_json::from_slice(&bytes).unwrap_or_else(
            |_| serde_json::json!({ "message": String::from_utf8_lossy(&bytes).into_owned() }),
        );
        Ok((code, value))
    }
}

/// Runs a kubeconfig exec plugin and returns the token of its ExecCredential.
fn exec_token(exec: &Exec) -> Result<String> {
    let out = std::process::Command::new(&exec.command)
        .args(&exec.args)
        .envs(exec.env.iter().map(|e| (&e.name, &e.value)))
        .env(
            "KUBERNETES_EXEC_INFO",
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#,
        )
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running the kubeconfig exec plugin {}", exec.command))?;
    if !out.status.success() {
        bail!("the kubeconfig exec plugin {} failed", exec.command);
    }
    let v: Value =
        serde_json::from_slice(&out.stdout).context("the exec plugin's ExecCredential")?;
    v["status"]["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the exec plugin returned no status.token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_change_the_path_are_refused() {
        assert!(seg("rv-abc123").is_ok());
        for bad in ["", "../x", "a/b", "a?b", "a%2F", &"x".repeat(65)] {
            assert!(seg(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn operations_print_like_kubectl_arguments() {
        let op = serde_json::json!({"verb":"delete","apiGroup":"apps","resource":"deployments","name":"payments","namespace":"prod-eu"});
        assert_eq!(
            operation(&op),
            "delete deployments.apps/payments -n prod-eu"
        );
    }
}

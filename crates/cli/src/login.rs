//! `custos login` (write a kubeconfig context whose user is `custos token`, then log in once) and
//! `custos token` (the exec credential plugin kubectl runs).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use custos_login::cache::{TokenCache, TokenSet};
use custos_login::exec_credential::exec_credential;
use custos_login::flows::{Grant, Provider};
use custos_login::kubeconfig::{upsert, ContextEntry};

/// How to reach the identity provider; shared by `login` and `token`.
#[derive(Debug, Clone, clap::Args)]
pub struct OidcArgs {
    /// OIDC issuer URL
    #[arg(long, env = "CUSTOS_LOGIN_ISSUER")]
    pub issuer: String,
    /// OIDC client id
    #[arg(long, env = "CUSTOS_LOGIN_CLIENT_ID")]
    pub client_id: String,
    /// File holding the client secret (confidential clients, agents); never put the secret itself in a kubeconfig
    #[arg(long)]
    pub client_secret_file: Option<PathBuf>,
    /// auth-code (browser), device-code (no browser) or client-credentials (agents)
    #[arg(long, default_value = "auth-code", value_parser = ["auth-code", "device-code", "client-credentials"])]
    pub grant: String,
    /// CA bundle for the issuer (replaces the system roots)
    #[arg(long)]
    pub oidc_ca_file: Option<PathBuf>,
    /// Extra authorization request parameter KEY=VALUE (e.g. connector_id=ldap for Dex), repeatable
    #[arg(long = "auth-param")]
    pub auth_params: Vec<String>,
}

impl OidcArgs {
    fn grant(&self) -> Grant {
        Grant::parse(&self.grant).unwrap_or(Grant::AuthCode)
    }

    /// The arguments that make `custos token` repeat this configuration.
    fn token_args(&self) -> Vec<String> {
        let mut a = vec![
            "token".to_string(),
            "--issuer".into(),
            self.issuer.clone(),
            "--client-id".into(),
            self.client_id.clone(),
            "--grant".into(),
            self.grant.clone(),
        ];
        if let Some(f) = &self.client_secret_file {
            a.extend([
                "--client-secret-file".into(),
                absolute(f).display().to_string(),
            ]);
        }
        if let Some(f) = &self.oidc_ca_file {
            a.extend(["--oidc-ca-file".into(), absolute(f).display().to_string()]);
        }
        for p in &self.auth_params {
            a.extend(["--auth-param".into(), p.clone()]);
        }
        a
    }

    async fn provider(&self) -> Result<Provider> {
        let secret = match &self.client_secret_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("--client-secret-file {}", f.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        let mut p = Provider::discover(
            &self.issuer,
            &self.client_id,
            secret,
            self.oidc_ca_file.as_deref(),
        )
        .await?;
        for kv in &self.auth_params {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--auth-param {kv:?} is not KEY=VALUE"))?;
            p.auth_params.push((k.to_owned(), v.to_owned()));
        }
        Ok(p)
    }

    fn cache(&self) -> Result<TokenCache> {
        let dir = TokenCache::default_dir()
            .context("cannot find a cache directory (set HOME or XDG_CACHE_HOME)")?;
        Ok(TokenCache::new(
            &dir,
            &[&self.issuer, &self.client_id, &self.grant],
        ))
    }
}

/// `custos login`
#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// The gateway's URL (what `custos serve` printed)
    #[arg(long)]
    pub server: String,
    /// The gateway's CA certificate (what `custos serve` printed)
    #[arg(long)]
    pub ca: PathBuf,
    /// Kubeconfig to write (default: first entry of $KUBECONFIG, else ~/.kube/config)
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Name of the context, cluster and user entries
    #[arg(long, default_value = "custos")]
    pub context: String,
    /// Default namespace of the context
    #[arg(long)]
    pub namespace: Option<String>,
    /// Only write the kubeconfig; log in on first use instead
    #[arg(long)]
    pub no_login: bool,
    /// Open an agent session with this declared intent (one sentence): the context then uses a
    /// short-lived Custos session token, and every request, review and record carries the intent
    #[arg(long)]
    pub intent: Option<String>,
    /// The ticket the session's work is for (with --intent)
    #[arg(long, requires = "intent")]
    pub ticket: Option<String>,
    /// How long the session lasts, e.g. 30m, 1h (with --intent; default 1h)
    #[arg(long, requires = "intent")]
    pub ttl: Option<String>,
    #[command(flatten)]
    pub oidc: OidcArgs,
}

/// `custos session-token`
#[derive(Debug, Clone, clap::Args)]
pub struct SessionTokenArgs {
    /// The session file `custos login --intent` wrote
    #[arg(long)]
    pub file: PathBuf,
}

/// What `custos login --intent` keeps (mode 0600): the session token and when it ends.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SessionFile {
    id: String,
    token: String,
    expires: String,
    intent: String,
    #[serde(default)]
    ticket: Option<String>,
}

/// Writes the context and logs in once, so the next kubectl call just works.
pub async fn login(args: LoginArgs) -> Result<()> {
    let ca_pem = std::fs::read(&args.ca).with_context(|| format!("--ca {}", args.ca.display()))?;
    if !String::from_utf8_lossy(&ca_pem).contains("BEGIN CERTIFICATE") {
        bail!("--ca {}: not a PEM certificate", args.ca.display());
    }
    if !args.server.starts_with("https://") {
        bail!("--server {:?} must be an https URL", args.server);
    }
    let path = match &args.kubeconfig {
        Some(p) => p.clone(),
        None => default_kubeconfig()?,
    };
    let command = std::env::current_exe().context("cannot find the custos binary's path")?;
    if args.intent.is_some() && args.no_login {
        bail!("--intent opens a session now: it cannot be combined with --no-login");
    }
    let session_file = match &args.intent {
        Some(_) => Some(session_path(&args.context)?),
        None => None,
    };
    let exec_args = match &session_file {
        Some(f) => vec![
            "session-token".to_owned(),
            "--file".to_owned(),
            f.display().to_string(),
        ],
        None => args.oidc.token_args(),
    };
    let entry = ContextEntry {
        name: args.context.clone(),
        server: args.server.clone(),
        ca_pem,
        command: command.display().to_string(),
        args: exec_args,
        namespace: args.namespace.clone(),
        interactive: args.oidc.grant() != Grant::ClientCredentials && session_file.is_none(),
    };
    if let (Some(intent), Some(file)) = (&args.intent, &session_file) {
        // The session is opened before the context points at it.
        let tokens = fresh_tokens(&args.oidc).await?;
        let ttl = match &args.ttl {
            Some(t) => {
                custos_policy::parse_duration(t).map_err(|e| anyhow::anyhow!("--ttl {t:?}: {e}"))?
            }
            None => 3600,
        };
        let opened = open_session(&args, &tokens.id_token, intent, ttl).await?;
        write_private(file, &serde_json::to_vec_pretty(&opened)?)?;
        upsert(&path, &entry, true)?;
        eprintln!(
            "custos: session {} until {} (intent: {}{}); context {:?} in {}",
            opened.id,
            opened.expires,
            opened.intent,
            opened
                .ticket
                .as_deref()
                .map(|t| format!(", ticket {t}"))
                .unwrap_or_default(),
            args.context,
            path.display()
        );
        return Ok(());
    }
    upsert(&path, &entry, true)?;
    eprintln!(
        "custos: wrote context {:?} to {}",
        args.context,
        path.display()
    );
    if !args.no_login {
        let tokens = fresh_tokens(&args.oidc).await?;
        eprintln!(
            "custos: logged in{}",
            subject(&tokens.id_token)
                .map(|s| format!(" as {s}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Asks the gateway for a session token bound to the logged-in identity and `intent`.
async fn open_session(
    args: &LoginArgs,
    id_token: &str,
    intent: &str,
    ttl: u64,
) -> Result<SessionFile> {
    let client = custos_authn::oidc::http_client(Some(&args.ca)).context("HTTPS client")?;
    let url = format!("{}/custos/v1/sessions", args.server.trim_end_matches('/'));
    let body = serde_json::json!({ "intent": intent, "ticket": args.ticket, "ttlSeconds": ttl });
    let resp = client
        .post(&url)
        .bearer_auth(id_token)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body)?)
        .send()
        .await
        .with_context(|| format!("opening a session at {url}"))?;
    let code = resp.status().as_u16();
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await?).unwrap_or_default();
    if code != 201 {
        bail!(
            "the gateway refused the session ({code}): {}",
            v.get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("no message")
        );
    }
    serde_json::from_value(v).context("the gateway's session answer")
}

fn session_path(context: &str) -> Result<PathBuf> {
    let dir = TokenCache::default_dir()
        .context("cannot find a cache directory (set HOME or XDG_CACHE_HOME)")?;
    let safe: String = context
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(dir.join("sessions").join(format!("{safe}.json")))
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// `custos session-token`: prints the session's `ExecCredential`, or says the session ended.
pub fn session_token(args: SessionTokenArgs) -> Result<()> {
    let text = std::fs::read(&args.file)
        .with_context(|| format!("reading the session file {}", args.file.display()))?;
    let s: SessionFile = serde_json::from_slice(&text).context("the session file")?;
    let expires = custos_audit::record::MicroTime::parse(&s.expires)
        .map_err(|e| anyhow::anyhow!("the session file's expiry: {e}"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let exp = expires.unix_micros() / 1_000_000;
    if now >= exp {
        bail!(
            "session {} ended at {} — open a new one with `custos login --intent \"…\"`",
            s.id,
            s.expires
        );
    }
    println!("{}", exec_credential(&s.token, Some(exp)));
    Ok(())
}

/// `custos token`: prints an `ExecCredential` for kubectl.
pub async fn token(args: OidcArgs) -> Result<()> {
    let tokens = fresh_tokens(&args).await?;
    println!("{}", exec_credential(&tokens.id_token, tokens.expires_at));
    Ok(())
}

/// A cached ID token valid for at least a minute, else a refreshed one, else a new login.
async fn fresh_tokens(args: &OidcArgs) -> Result<TokenSet> {
    let cache = args.cache()?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let cached = cache.load();
    if let Some(t) = &cached {
        if t.is_fresh(now, 60) {
            return Ok(t.clone());
        }
    }
    let provider = args.provider().await?;
    let mut why = "there is no cached login".to_owned();
    if let Some(refresh) = cached.as_ref().and_then(|t| t.refresh_token.clone()) {
        match provider.refresh(&refresh).await {
            Ok(mut t) => {
                if t.refresh_token.is_none() {
                    t.refresh_token = Some(refresh);
                }
                cache.store(&t)?;
                return Ok(t);
            }
            Err(e) => why = format!("the cached login could not be refreshed ({e})"),
        }
    } else if cached.is_some() {
        why = "the cached login has expired and holds no refresh token".to_owned();
    }
    // A person's login needs a person. When kubectl runs this plugin without a terminal (an agent, a
    // pipeline) nobody will open the browser or type the device code: say so now instead of waiting
    // minutes for a login that cannot come.
    let exec_info = std::env::var(custos_login::exec_credential::EXEC_INFO_ENV).ok();
    if args.grant() != Grant::ClientCredentials
        && custos_login::exec_credential::kubectl_interactive(exec_info.as_deref()) == Some(false)
    {
        bail!(
            "{why}, and kubectl runs this plugin without a terminal, so no new login can be asked \
             for here: run `custos login` again (with the same arguments) in a terminal"
        );
    }
    eprintln!("custos: {why}; logging in again");
    let mut show = |s: &str| eprintln!("{s}");
    let tokens = provider.login(args.grant(), &mut show).await?;
    cache.store(&tokens)?;
    Ok(tokens)
}

fn default_kubeconfig() -> Result<PathBuf> {
    if let Some(k) = std::env::var_os("KUBECONFIG").filter(|k| !k.is_empty()) {
        if let Some(first) = std::env::split_paths(&k).next() {
            return Ok(first);
        }
    }
    let home =
        std::env::var_os("HOME").context("neither --kubeconfig, KUBECONFIG nor HOME is set")?;
    Ok(PathBuf::from(home).join(".kube").join("config"))
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned())
}

/// `email` or `sub` of an ID token, for the "logged in as" line (unverified; only shown to the user).
fn subject(jwt: &str) -> Option<String> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("email")
        .or_else(|| v.get("sub"))?
        .as_str()
        .map(str::to_owned)
}

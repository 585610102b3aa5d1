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
    #[command(flatten)]
    pub oidc: OidcArgs,
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
    let entry = ContextEntry {
        name: args.context.clone(),
        server: args.server.clone(),
        ca_pem,
        command: command.display().to_string(),
        args: args.oidc.token_args(),
        namespace: args.namespace.clone(),
        interactive: args.oidc.grant() != Grant::ClientCredentials,
    };
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
    if let Some(refresh) = cached.as_ref().and_then(|t| t.refresh_token.clone()) {
        match provider.refresh(&refresh).await {
            Ok(mut t) => {
                if t.refresh_token.is_none() {
                    t.refresh_token = Some(refresh);
                }
                cache.store(&t)?;
                return Ok(t);
            }
            Err(e) => eprintln!("custos: refresh failed ({e}); logging in again"),
        }
    }
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

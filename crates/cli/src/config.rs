//! The gateway's configuration: one typed struct, layered file < environment < flags, validated once.
//! Every error names the field it is about.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A configuration that cannot be used; the message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid (unknown field, wrong type, bad YAML).
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is invalid.
    #[error("invalid value for {field}: {message}")]
    Invalid {
        /// The field, as spelled in the file (flags and env vars map onto the same names).
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The whole configuration of `custos serve`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Address of the gateway's TLS listener.
    pub listen: String,
    /// Address of the plain-HTTP operations listener (`/healthz`, `/readyz`, `/metrics`); empty disables it.
    pub ops_listen: String,
    /// Where Custos keeps its state (generated certificates, later the audit log).
    pub data_dir: PathBuf,
    /// The apiserver to forward to.
    pub upstream: UpstreamSection,
    /// The serving certificate.
    pub tls: TlsSection,
    /// How callers authenticate.
    pub authentication: AuthnSection,
    /// Request limits.
    pub limits: LimitsSection,
    /// Where the audit log lives: empty for SQLite in the data dir, or a `postgres://` URL.
    pub store: String,
    /// The audit log's settings.
    pub audit: AuditSection,
    /// Cedar policy.
    pub policy: PolicySection,
    /// What is masked, with which detectors, for whom.
    pub masking: MaskingSection,
    /// Reviews and grants.
    pub approvals: ApprovalsSection,
    /// Where exec/attach session recordings are written.
    pub recordings: RecordingsSection,
}

/// `recordings:`
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RecordingsSection {
    /// The recordings directory (created 0700); default `<dataDir>/recordings`. Replicas sharing one
    /// PostgreSQL log can share one directory (a mounted volume), so one place holds every recording
    /// the log refers to. Relative paths are relative to the working directory, like `dataDir`.
    pub dir: Option<PathBuf>,
}

/// `approvals:`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ApprovalsSection {
    /// How long a review stays open for a decision, seconds (at least the policy's @hold).
    pub pending_ttl_seconds: u64,
    /// How long an approval covers the same operation when the policy sets no @grant, seconds.
    pub default_grant_seconds: u64,
    /// The longest a request is held waiting for a decision (caps @hold), seconds; 0 answers at once.
    pub max_hold_seconds: u64,
    /// The longest agent session (`custos login --intent --ttl`), seconds.
    pub max_session_seconds: u64,
    /// Where approvers hear about reviews: signed webhooks (generic JSON or Slack).
    pub webhooks: Vec<custos_notify::WebhookConfig>,
}

impl Default for ApprovalsSection {
    fn default() -> Self {
        ApprovalsSection {
            pending_ttl_seconds: 3600,
            default_grant_seconds: 300,
            max_hold_seconds: 600,
            max_session_seconds: 12 * 3600,
            webhooks: Vec::new(),
        }
    }
}

/// `masking:`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MaskingSection {
    /// Named profiles a policy selects with `@mask("name")`; everyone else gets everything masked.
    pub profiles: std::collections::BTreeMap<String, custos_mask::Profile>,
    /// A YAML file of extra detector rules (same schema as the built-in ones, examples checked).
    pub rules_file: Option<PathBuf>,
    /// Largest single object (or list frame) in a JSON response, bytes; larger responses are refused.
    pub max_object_bytes: usize,
    /// Largest masked response body kept in a record, bytes; larger ones are recorded by size.
    pub record_body_bytes: usize,
    /// Idle time after which held-back terminal/log bytes are flushed (masked), milliseconds.
    pub idle_flush_millis: u64,
}

impl Default for MaskingSection {
    fn default() -> Self {
        MaskingSection {
            profiles: Default::default(),
            rules_file: None,
            max_object_bytes: custos_mask::DEFAULT_MAX_OBJECT,
            record_body_bytes: 1024 * 1024,
            idle_flush_millis: 25,
        }
    }
}

/// `policy:`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PolicySection {
    /// A `.cedar` file or a folder of them; empty: no policy (the apiserver's RBAC alone decides).
    pub path: Option<PathBuf>,
    /// Groups whose members are agents (`context.agent` in policy).
    pub agent_groups: Vec<String>,
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection {
            path: None,
            agent_groups: vec!["agents".into()],
        }
    }
}

/// `audit:`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AuditSection {
    /// The log's name (the checkpoint origin and the signing key's name).
    pub log_name: String,
    /// Signing key file (created on first start); default `<dataDir>/audit.key`.
    pub key_file: Option<PathBuf>,
    /// A file outside the operator's reach where every signed checkpoint is also written.
    pub checkpoint_copy: Option<PathBuf>,
    /// An endpoint outside the operator's reach that every signed checkpoint is also POSTed to
    /// (`text/plain`, the signed note); https, or http on a loopback host.
    #[serde(rename = "checkpointURL")]
    pub checkpoint_url: Option<String>,
    /// A file holding the bearer token sent to `checkpointURL` (read for every checkpoint).
    pub checkpoint_token_file: Option<PathBuf>,
    /// CA bundle trusted for `checkpointURL` instead of the system roots.
    #[serde(rename = "checkpointCAFile")]
    pub checkpoint_ca_file: Option<PathBuf>,
    /// PostgreSQL schema holding the log (default: the server's search path); several logs can share a
    /// database this way.
    pub postgres_schema: Option<String>,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            log_name: "custos".into(),
            key_file: None,
            checkpoint_copy: None,
            checkpoint_url: None,
            checkpoint_token_file: None,
            checkpoint_ca_file: None,
            postgres_schema: None,
        }
    }
}

/// `upstream:`
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UpstreamSection {
    /// Kubeconfig whose current context is the apiserver and the gateway's credential; default
    /// `$KUBECONFIG`, then `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
}

/// `tls:`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TlsSection {
    /// Serving certificate chain (PEM); with `keyFile`. Default: generated in `<dataDir>/tls`.
    pub cert_file: Option<PathBuf>,
    /// Serving key (PEM).
    pub key_file: Option<PathBuf>,
    /// Names and IPs of a generated serving certificate.
    pub names: Vec<String>,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            cert_file: None,
            key_file: None,
            names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        }
    }
}

/// `authentication:`
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AuthnSection {
    /// OIDC issuers whose ID tokens are accepted.
    pub oidc: Vec<OidcSection>,
    /// CA whose client certificates are accepted (CN → user, O → groups).
    pub client_ca_file: Option<PathBuf>,
    /// Break-glass static tokens, CSV like the apiserver's `--token-auth-file`.
    pub token_file: Option<PathBuf>,
}

/// One entry of `authentication.oidc:`, with the apiserver's `--oidc-*` meanings.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OidcSection {
    /// Issuer URL; must be https and equal the tokens' `iss`.
    #[serde(rename = "issuerURL")]
    pub issuer_url: String,
    /// Accepted audiences (client ids).
    #[serde(rename = "clientIDs")]
    pub client_ids: Vec<String>,
    /// Claim that holds the username (default `sub`).
    pub username_claim: Option<String>,
    /// Prefix added to usernames (`-` for none).
    pub username_prefix: Option<String>,
    /// Claim that holds the groups (default `groups`).
    pub groups_claim: Option<String>,
    /// Prefix added to group names.
    pub groups_prefix: Option<String>,
    /// Claims that must be present with these values.
    pub required_claims: BTreeMap<String, String>,
    /// CA bundle for the issuer's discovery and JWKS endpoints.
    pub ca_file: Option<PathBuf>,
    /// Accepted signing algorithms (default RS256).
    pub signing_algs: Vec<String>,
}

/// `limits:`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Largest request body forwarded, bytes.
    pub max_body_bytes: usize,
    /// Largest request header section, bytes.
    pub max_header_bytes: usize,
    /// How long shutdown waits for in-flight requests before closing what is left, seconds.
    pub shutdown_grace_seconds: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let d = custos_gateway::Limits::default();
        LimitsSection {
            max_body_bytes: d.max_body_bytes,
            max_header_bytes: d.max_header_bytes,
            shutdown_grace_seconds: d.shutdown_grace.as_secs(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8443".into(),
            ops_listen: "127.0.0.1:8444".into(),
            data_dir: PathBuf::from("custos-data"),
            upstream: UpstreamSection::default(),
            tls: TlsSection::default(),
            authentication: AuthnSection::default(),
            limits: LimitsSection::default(),
            store: String::new(),
            audit: AuditSection::default(),
            policy: PolicySection::default(),
            masking: MaskingSection::default(),
            approvals: ApprovalsSection::default(),
            recordings: RecordingsSection::default(),
        }
    }
}

/// Values given as flags or `CUSTOS_*` environment variables; each overrides the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Address of the TLS listener [file: listen]
    #[arg(long, env = "CUSTOS_LISTEN")]
    pub listen: Option<String>,
    /// Address of the ops listener, "" to disable [file: opsListen]
    #[arg(long, env = "CUSTOS_OPS_LISTEN")]
    pub ops_listen: Option<String>,
    /// State directory [file: dataDir]
    #[arg(long, env = "CUSTOS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Recordings directory, default <DATA_DIR>/recordings [file: recordings.dir]
    #[arg(long, env = "CUSTOS_RECORDINGS", value_name = "DIR")]
    pub recordings: Option<PathBuf>,
    /// Kubeconfig of the upstream apiserver [file: upstream.kubeconfig]
    #[arg(long, env = "CUSTOS_UPSTREAM_KUBECONFIG")]
    pub upstream_kubeconfig: Option<PathBuf>,
    /// Serving certificate [file: tls.certFile]
    #[arg(long, env = "CUSTOS_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// Serving key [file: tls.keyFile]
    #[arg(long, env = "CUSTOS_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// OIDC issuer URL (sets the first issuer) [file: authentication.oidc[0].issuerURL]
    #[arg(long, env = "CUSTOS_OIDC_ISSUER_URL")]
    pub oidc_issuer_url: Option<String>,
    /// OIDC client id / audience, repeatable [file: authentication.oidc[0].clientIDs]
    #[arg(long, env = "CUSTOS_OIDC_CLIENT_ID", value_delimiter = ',')]
    pub oidc_client_id: Vec<String>,
    /// Username claim [file: authentication.oidc[0].usernameClaim]
    #[arg(long, env = "CUSTOS_OIDC_USERNAME_CLAIM")]
    pub oidc_username_claim: Option<String>,
    /// Username prefix [file: authentication.oidc[0].usernamePrefix]
    #[arg(long, env = "CUSTOS_OIDC_USERNAME_PREFIX")]
    pub oidc_username_prefix: Option<String>,
    /// Groups claim [file: authentication.oidc[0].groupsClaim]
    #[arg(long, env = "CUSTOS_OIDC_GROUPS_CLAIM")]
    pub oidc_groups_claim: Option<String>,
    /// Groups prefix [file: authentication.oidc[0].groupsPrefix]
    #[arg(long, env = "CUSTOS_OIDC_GROUPS_PREFIX")]
    pub oidc_groups_prefix: Option<String>,
    /// CA for the issuer's endpoints [file: authentication.oidc[0].caFile]
    #[arg(long, env = "CUSTOS_OIDC_CA_FILE")]
    pub oidc_ca_file: Option<PathBuf>,
    /// OIDC signing algorithms accepted, comma-separated [file: authentication.oidc[0].signingAlgs]
    #[arg(long, env = "CUSTOS_OIDC_SIGNING_ALGS", value_delimiter = ',')]
    pub oidc_signing_algs: Vec<String>,
    /// Required claim KEY=VALUE, repeatable [file: authentication.oidc[0].requiredClaims]
    #[arg(long, env = "CUSTOS_OIDC_REQUIRED_CLAIM", value_delimiter = ',')]
    pub oidc_required_claim: Vec<String>,
    /// Name or IP of the generated serving certificate, repeatable [file: tls.names]
    #[arg(long, env = "CUSTOS_TLS_NAME", value_delimiter = ',')]
    pub tls_name: Vec<String>,
    /// Largest request body forwarded, bytes [file: limits.maxBodyBytes]
    #[arg(long, env = "CUSTOS_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest request header section, bytes [file: limits.maxHeaderBytes]
    #[arg(long, env = "CUSTOS_MAX_HEADER_BYTES")]
    pub max_header_bytes: Option<usize>,
    /// Seconds shutdown waits for in-flight requests [file: limits.shutdownGraceSeconds]
    #[arg(long, env = "CUSTOS_SHUTDOWN_GRACE_SECONDS")]
    pub shutdown_grace_seconds: Option<u64>,
    /// Audit log store: "" for SQLite in the data dir, or a postgres:// URL [file: store]
    #[arg(long, env = "CUSTOS_STORE")]
    pub store: Option<String>,
    /// Cedar policy file or folder [file: policy.path]
    #[arg(long, env = "CUSTOS_POLICY")]
    pub policy: Option<PathBuf>,
    /// Group whose members are agents, repeatable [file: policy.agentGroups]
    #[arg(long, env = "CUSTOS_AGENT_GROUP", value_delimiter = ',')]
    pub agent_group: Vec<String>,
    /// PostgreSQL schema of the audit log [file: audit.postgresSchema]
    #[arg(long, env = "CUSTOS_POSTGRES_SCHEMA")]
    pub postgres_schema: Option<String>,
    /// Audit log signing key file [file: audit.keyFile]
    #[arg(long, env = "CUSTOS_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<PathBuf>,
    /// Also write every signed checkpoint to this file [file: audit.checkpointCopy]
    #[arg(long, env = "CUSTOS_CHECKPOINT_COPY")]
    pub checkpoint_copy: Option<PathBuf>,
    /// Also POST every signed checkpoint to this https URL (http only on localhost) [file: audit.checkpointURL]
    #[arg(long, env = "CUSTOS_CHECKPOINT_URL")]
    pub checkpoint_url: Option<String>,
    /// Bearer token file for the checkpoint URL [file: audit.checkpointTokenFile]
    #[arg(long, env = "CUSTOS_CHECKPOINT_TOKEN_FILE")]
    pub checkpoint_token_file: Option<PathBuf>,
    /// CA bundle for the checkpoint URL [file: audit.checkpointCAFile]
    #[arg(long, env = "CUSTOS_CHECKPOINT_CA_FILE")]
    pub checkpoint_ca_file: Option<PathBuf>,
    /// CA of accepted client certificates [file: authentication.clientCAFile]
    #[arg(long, env = "CUSTOS_CLIENT_CA_FILE")]
    pub client_ca_file: Option<PathBuf>,
    /// Static token file [file: authentication.tokenFile]
    #[arg(long, env = "CUSTOS_TOKEN_AUTH_FILE")]
    pub token_auth_file: Option<PathBuf>,
}

impl Config {
    /// Loads the file (if any), applies overrides, and validates the result.
    pub fn load(file: Option<&Path>, o: &Overrides) -> Result<Config, ConfigError> {
        let mut c = match file {
            Some(p) => Self::from_file(p)?,
            None => Config::default(),
        };
        c.apply(o);
        c.validate()?;
        Ok(c)
    }

    /// Parses a config file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses config YAML; an empty document is the defaults.
    pub fn from_yaml(text: &str) -> Result<Config, String> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
    }

    fn apply(&mut self, o: &Overrides) {
        set(&mut self.listen, &o.listen);
        set(&mut self.ops_listen, &o.ops_listen);
        set(&mut self.data_dir, &o.data_dir);
        opt(&mut self.recordings.dir, &o.recordings);
        if o.upstream_kubeconfig.is_some() {
            self.upstream.kubeconfig.clone_from(&o.upstream_kubeconfig);
        }
        if o.tls_cert_file.is_some() {
            self.tls.cert_file.clone_from(&o.tls_cert_file);
        }
        if o.tls_key_file.is_some() {
            self.tls.key_file.clone_from(&o.tls_key_file);
        }
        set(&mut self.store, &o.store);
        opt(&mut self.policy.path, &o.policy);
        if !o.agent_group.is_empty() {
            self.policy.agent_groups.clone_from(&o.agent_group);
        }
        opt(&mut self.audit.checkpoint_copy, &o.checkpoint_copy);
        opt(&mut self.audit.checkpoint_url, &o.checkpoint_url);
        opt(
            &mut self.audit.checkpoint_token_file,
            &o.checkpoint_token_file,
        );
        opt(&mut self.audit.checkpoint_ca_file, &o.checkpoint_ca_file);
        opt(&mut self.audit.postgres_schema, &o.postgres_schema);
        opt(&mut self.audit.key_file, &o.audit_key_file);
        if !o.tls_name.is_empty() {
            self.tls.names.clone_from(&o.tls_name);
        }
        set(&mut self.limits.max_body_bytes, &o.max_body_bytes);
        set(&mut self.limits.max_header_bytes, &o.max_header_bytes);
        set(
            &mut self.limits.shutdown_grace_seconds,
            &o.shutdown_grace_seconds,
        );
        if o.client_ca_file.is_some() {
            self.authentication
                .client_ca_file
                .clone_from(&o.client_ca_file);
        }
        if o.token_auth_file.is_some() {
            self.authentication
                .token_file
                .clone_from(&o.token_auth_file);
        }
        let any_oidc = o.oidc_issuer_url.is_some()
            || !o.oidc_client_id.is_empty()
            || o.oidc_username_claim.is_some()
            || o.oidc_username_prefix.is_some()
            || o.oidc_groups_claim.is_some()
            || o.oidc_groups_prefix.is_some()
            || o.oidc_ca_file.is_some()
            || !o.oidc_signing_algs.is_empty()
            || !o.oidc_required_claim.is_empty();
        if any_oidc {
            if self.authentication.oidc.is_empty() {
                self.authentication.oidc.push(OidcSection::default());
            }
            let first = &mut self.authentication.oidc[0];
            set(&mut first.issuer_url, &o.oidc_issuer_url);
            if !o.oidc_client_id.is_empty() {
                first.client_ids.clone_from(&o.oidc_client_id);
            }
            opt(&mut first.username_claim, &o.oidc_username_claim);
            opt(&mut first.username_prefix, &o.oidc_username_prefix);
            opt(&mut first.groups_claim, &o.oidc_groups_claim);
            opt(&mut first.groups_prefix, &o.oidc_groups_prefix);
            opt(&mut first.ca_file, &o.oidc_ca_file);
            if !o.oidc_signing_algs.is_empty() {
                first.signing_algs.clone_from(&o.oidc_signing_algs);
            }
            for kv in &o.oidc_required_claim {
                // Validated below: a flag without '=' becomes a claim with an empty key.
                let (k, v) = kv.split_once('=').unwrap_or(("", kv));
                first.required_claims.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    /// Checks every value; the first problem is returned with its field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen.parse::<SocketAddr>().map_err(|e| {
            invalid(
                "listen",
                format!("{:?} is not host:port ({e})", self.listen),
            )
        })?;
        if !self.ops_listen.is_empty() {
            self.ops_listen.parse::<SocketAddr>().map_err(|e| {
                invalid(
                    "opsListen",
                    format!("{:?} is not host:port ({e})", self.ops_listen),
                )
            })?;
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("dataDir", "must not be empty"));
        }
        if let Some(dir) = &self.recordings.dir {
            if dir.as_os_str().is_empty() {
                return Err(invalid(
                    "recordings.dir",
                    "must not be empty (leave it out for <dataDir>/recordings)",
                ));
            }
            // Caught here, with the field's name, rather than as "File exists" when it is created.
            if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
                return Err(invalid(
                    "recordings.dir",
                    format!("{} exists and is not a directory", dir.display()),
                ));
            }
        }
        match (&self.tls.cert_file, &self.tls.key_file) {
            (Some(_), None) => {
                return Err(invalid("tls.keyFile", "required when tls.certFile is set"))
            }
            (None, Some(_)) => {
                return Err(invalid("tls.certFile", "required when tls.keyFile is set"))
            }
            _ => {}
        }
        if self.tls.cert_file.is_none() && self.tls.names.is_empty() {
            return Err(invalid(
                "tls.names",
                "at least one name is needed for a generated certificate",
            ));
        }
        for (i, o) in self.authentication.oidc.iter().enumerate() {
            let f = |name: &str| format!("authentication.oidc[{i}].{name}");
            if !o.issuer_url.starts_with("https://") {
                return Err(invalid(
                    &f("issuerURL"),
                    format!("{:?} must be an https URL", o.issuer_url),
                ));
            }
            if o.client_ids.is_empty() || o.client_ids.iter().any(|c| c.is_empty()) {
                return Err(invalid(
                    &f("clientIDs"),
                    "at least one non-empty client id (audience) is required",
                ));
            }
            if o.required_claims.keys().any(String::is_empty) {
                return Err(invalid(
                    &f("requiredClaims"),
                    "each required claim is KEY=VALUE with a non-empty key",
                ));
            }
            for alg in &o.signing_algs {
                if alg.eq_ignore_ascii_case("none") || alg.to_ascii_uppercase().starts_with("HS") {
                    return Err(invalid(
                        &f("signingAlgs"),
                        format!("{alg} is never accepted"),
                    ));
                }
            }
        }
        if !self.store.is_empty()
            && !self.store.starts_with("postgres://")
            && !self.store.starts_with("postgresql://")
        {
            return Err(invalid(
                "store",
                "must be empty (SQLite in the data dir) or a postgres:// URL",
            ));
        }
        if !custos_audit::note::is_valid_name(&self.audit.log_name) {
            return Err(invalid(
                "audit.logName",
                "must be a non-empty name without spaces, control characters or '+'",
            ));
        }
        match &self.audit.checkpoint_url {
            Some(url) => {
                custos_store::HttpSink::check_url(url)
                    .map_err(|e| invalid("audit.checkpointURL", e))?;
            }
            None if self.audit.checkpoint_token_file.is_some() => {
                return Err(invalid(
                    "audit.checkpointTokenFile",
                    "set without audit.checkpointURL",
                ))
            }
            None if self.audit.checkpoint_ca_file.is_some() => {
                return Err(invalid(
                    "audit.checkpointCAFile",
                    "set without audit.checkpointURL",
                ))
            }
            None => {}
        }
        if self.limits.max_body_bytes == 0 {
            return Err(invalid("limits.maxBodyBytes", "must be greater than 0"));
        }
        if self.limits.max_header_bytes < 1024 {
            return Err(invalid("limits.maxHeaderBytes", "must be at least 1024"));
        }
        for name in self.masking.profiles.keys() {
            let ok = !name.is_empty()
                && name.len() <= 63
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(invalid(
                    "masking.profiles",
                    format!("profile name {name:?} must be lower-case letters, digits and '-' (at most 63)"),
                ));
            }
            if name == "default" {
                return Err(invalid(
                    "masking.profiles",
                    "\"default\" is the built-in strict profile and cannot be redefined",
                ));
            }
        }
        if self.approvals.pending_ttl_seconds == 0 || self.approvals.pending_ttl_seconds > 7 * 86400
        {
            return Err(invalid(
                "approvals.pendingTtlSeconds",
                "must be between 1 and 604800 (7 days)",
            ));
        }
        if self.approvals.default_grant_seconds == 0 || self.approvals.default_grant_seconds > 86400
        {
            return Err(invalid(
                "approvals.defaultGrantSeconds",
                "must be between 1 and 86400 (1 day)",
            ));
        }
        if self.approvals.max_session_seconds == 0 || self.approvals.max_session_seconds > 7 * 86400
        {
            return Err(invalid(
                "approvals.maxSessionSeconds",
                "must be between 1 and 604800 (7 days)",
            ));
        }
        for (i, w) in self.approvals.webhooks.iter().enumerate() {
            w.check()
                .map_err(|e| invalid(&format!("approvals.webhooks[{i}]"), e.to_string()))?;
        }
        if self.approvals.max_hold_seconds > 3600 {
            return Err(invalid(
                "approvals.maxHoldSeconds",
                "must be at most 3600 (a held request keeps its connection open)",
            ));
        }
        if self.masking.max_object_bytes < 64 * 1024 {
            return Err(invalid("masking.maxObjectBytes", "must be at least 65536"));
        }
        if !(1..=1000).contains(&self.masking.idle_flush_millis) {
            return Err(invalid(
                "masking.idleFlushMillis",
                "must be between 1 and 1000",
            ));
        }
        Ok(())
    }

    /// The recordings directory: `recordings.dir`, else `<dataDir>/recordings`.
    pub fn recordings_dir(&self) -> PathBuf {
        self.recordings
            .dir
            .clone()
            .unwrap_or_else(|| custos_gateway::recording::dir_in(&self.data_dir))
    }

    /// The upstream kubeconfig path: configured, else `$KUBECONFIG` (first entry), else `~/.kube/config`.
    pub fn upstream_kubeconfig(&self) -> Result<PathBuf, ConfigError> {
        if let Some(p) = &self.upstream.kubeconfig {
            return Ok(p.clone());
        }
        if let Some(k) = std::env::var_os("KUBECONFIG").filter(|k| !k.is_empty()) {
            if let Some(first) = std::env::split_paths(&k).next() {
                return Ok(first);
            }
        }
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".kube").join("config"))
            .ok_or_else(|| {
                invalid(
                    "upstream.kubeconfig",
                    "not set, and neither KUBECONFIG nor HOME is",
                )
            })
    }
}

fn set<T: Clone>(dst: &mut T, src: &Option<T>) {
    if let Some(v) = src {
        dst.clone_from(v);
    }
}

fn opt<T: Clone>(dst: &mut Option<T>, src: &Option<T>) {
    if src.is_some() {
        dst.clone_from(src);
    }
}

#[cfg(test)]
mod tests;

//! `custos serve`: turns a validated [`Config`] into running listeners.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use custos_authn::{Authenticator, AuthnConfig, ClientCertConfig, OidcIssuerConfig, SigningAlg};
use custos_gateway::decide::PolicyGate;
use custos_gateway::kubeconfig::UpstreamConfig;
use custos_gateway::recorder::Recorder;
use custos_gateway::{ops, tls, Gateway, Limits, Upstream};
use custos_store::{
    Appender, AppenderConfig, CheckpointSink, FileSink, HttpSink, HttpSinkConfig,
    HttpSinkConfigError, LogStore, MultiSink, Sequencer, SequencerConfig,
};
use custos_store_postgres::{PostgresOptions, PostgresStore};
use custos_store_sqlite::SqliteStore;

use crate::config::{Config, OidcSection};

/// Runs the gateway until SIGINT or SIGTERM.
pub async fn run(cfg: Config) -> Result<()> {
    let kubeconfig = cfg.upstream_kubeconfig()?;
    let upstream_cfg =
        UpstreamConfig::from_kubeconfig(&kubeconfig).context(
        "upstream.kubeconfig (the cluster Custos forwards to: set --upstream-kubeconfig or KUBECONFIG)",
    )?;
    let upstream = Upstream::new(&upstream_cfg).context("upstream")?;

    let (cert, key, ca) = match (&cfg.tls.cert_file, &cfg.tls.key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), None),
        _ => {
            let p = tls::ensure_self_signed(&cfg.data_dir.join("tls"), &cfg.tls.names)
                .context("tls")?;
            (p.server_cert, p.server_key, Some(p.ca_cert))
        }
    };

    let authn_cfg = authn_config(&cfg)?;
    let verifier = match &authn_cfg.client_cert {
        Some(c) => {
            Some(custos_authn::client_cert_verifier(c).context("authentication.clientCAFile")?)
        }
        None => None,
    };
    let authenticator = Arc::new(Authenticator::from_config(&authn_cfg).context("authentication")?);
    if authn_cfg.oidc.is_empty()
        && authn_cfg.client_cert.is_none()
        && authn_cfg.static_token_file.is_none()
    {
        tracing::warn!(
            "no authentication configured (authentication.oidc, clientCAFile, tokenFile): every request will be refused with 401"
        );
    }
    let server_tls = Arc::new(tls::server_config(&cert, &key, verifier).context("tls")?);

    // The audit log: opened, keyed and sequencing before the first request can arrive.
    let store: Arc<dyn LogStore> = if cfg.store.is_empty() {
        Arc::new(
            SqliteStore::open_in(&cfg.data_dir)
                .await
                .context("store (SQLite)")?,
        )
    } else {
        Arc::new(
            PostgresStore::connect(
                &cfg.store,
                PostgresOptions {
                    schema: cfg.audit.postgres_schema.clone(),
                    ..PostgresOptions::default()
                },
            )
            .await
            .context("store (PostgreSQL)")?,
        )
    };
    let key_path = cfg
        .audit
        .key_file
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("audit.key"));
    let (key, created) = custos_audit::keys::load_or_generate(&key_path, &cfg.audit.log_name)
        .with_context(|| format!("audit.keyFile {}", key_path.display()))?;
    if created {
        tracing::info!(path = %key_path.display(), "generated the audit log's signing key");
    }
    let sink = checkpoint_sink(&cfg)?;
    let sequencer = Sequencer::new(
        store.clone(),
        key,
        SequencerConfig {
            sink,
            ..SequencerConfig::default()
        },
    )
    .spawn();
    let appender = Appender::spawn(store.clone(), AppenderConfig::default());
    let gateway_id = format!("{}/{}", hostname(), std::process::id());

    // Policy: an invalid set stops start-up with file:line:column.
    let policy = match &cfg.policy.path {
        Some(path) => Some(
            PolicyGate::load(path, cfg.policy.agent_groups.clone())
                .map_err(|e| anyhow::anyhow!("policy.path: {e}"))?,
        ),
        None => {
            tracing::warn!("no policy configured (policy.path): every authenticated request is forwarded and only the apiserver's RBAC applies");
            None
        }
    };

    let masking = masking_settings(&cfg.masking)?;
    // Reviews, grants and sessions: beside the audit log (SQLite in the data dir, or the same
    // PostgreSQL database and schema, where replicas share them).
    let approval_store: Arc<dyn custos_approval::ApprovalStore> = if cfg.store.is_empty() {
        Arc::new(
            custos_approval::SqliteApprovals::open_in(&cfg.data_dir)
                .await
                .context("approvals (SQLite)")?,
        )
    } else {
        Arc::new(
            custos_approval::PgApprovals::connect(&cfg.store, cfg.audit.postgres_schema.as_deref())
                .await
                .context("approvals (PostgreSQL)")?,
        )
    };
    // Exec/attach recordings beside the log, or in `recordings.dir` (fail closed: a gateway that
    // cannot write there does not start).
    let recordings = open_recordings(&cfg.recordings_dir())?;
    let recorder = Recorder::new(appender, gateway_id).with_recordings(recordings);
    let notify: Option<Arc<dyn custos_gateway::approve::Notify>> = if cfg
        .approvals
        .webhooks
        .is_empty()
    {
        None
    } else {
        Some(Arc::new(
            custos_gateway::approve::WebhookNotify::new(&cfg.approvals.webhooks, recorder.clone())
                .context("approvals.webhooks")?,
        ))
    };
    let approvals = custos_gateway::approve::Approvals {
        store: approval_store,
        settings: custos_gateway::approve::ApprovalSettings {
            pending_ttl: Duration::from_secs(cfg.approvals.pending_ttl_seconds),
            default_grant: Duration::from_secs(cfg.approvals.default_grant_seconds),
            max_hold: Duration::from_secs(cfg.approvals.max_hold_seconds),
            max_session: Duration::from_secs(cfg.approvals.max_session_seconds),
            public_url: String::new(),
        },
        notify,
    };
    let gateway = Arc::new(Gateway {
        policy,
        recorder,
        authenticator: authenticator.clone(),
        upstream,
        limits: Limits {
            max_body_bytes: cfg.limits.max_body_bytes,
            max_header_bytes: cfg.limits.max_header_bytes,
            shutdown_grace: Duration::from_secs(cfg.limits.shutdown_grace_seconds),
            ..Limits::default()
        },
        metrics: Default::default(),
        masking,
        approvals,
    });
    // Pending reviews past their time expire (recorded once, by whichever replica gets there first).
    {
        let gw = gateway.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                if let Err(e) = gw.approvals.sweep(&gw.recorder).await {
                    tracing::warn!(error = %e, "expiring reviews failed; retrying");
                }
            }
        });
    }

    let listener = TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("listen: cannot bind {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let ops_listener = if cfg.ops_listen.is_empty() {
        None
    } else {
        Some(
            TcpListener::bind(&cfg.ops_listen)
                .await
                .with_context(|| format!("opsListen: cannot bind {}", cfg.ops_listen))?,
        )
    };

    // Load the issuers' keys before announcing readiness to serve; a failure is retried by the cache
    // on the first token and reported by /readyz, so start-up does not hang on an IdP outage.
    for r in authenticator.refresh().await {
        match r.last_error {
            Some(e) => tracing::warn!(issuer = %r.issuer, error = %e, "OIDC keys not loaded yet"),
            None => tracing::info!(issuer = %r.issuer, keys = r.key_count, "OIDC keys loaded"),
        }
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut ops_task = None;
    if let Some(l) = ops_listener {
        let ops_addr = l.local_addr()?;
        println!("ops http://{ops_addr}");
        let mut rx = stop_rx.clone();
        ops_task = Some(tokio::spawn(ops::serve_ops(
            l,
            gateway.clone(),
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        )));
    }
    let shutdown = shutdown_signal().context("installing signal handlers")?;
    // The lines tests and scripts read: where we serve, and which CA to trust.
    println!("serving https://{addr}");
    match &ca {
        Some(ca) => println!(
            "ca-certificate {}",
            std::fs::canonicalize(ca).unwrap_or(ca.clone()).display()
        ),
        None => println!("ca-certificate {}", cert.display()),
    }
    tracing::info!(%addr, upstream = %gateway.upstream.server, "custos is serving");

    if gateway.policy.is_some() {
        tokio::spawn(watch_policy(gateway.clone(), stop_rx.clone()));
    }

    let recorder = gateway.recorder.clone();
    let mut rx = stop_rx.clone();
    let serve = custos_gateway::serve(listener, server_tls, gateway, async move {
        let _ = rx.wait_for(|s| *s).await;
    });
    tokio::pin!(serve);
    tokio::select! {
        () = &mut serve => {}
        () = shutdown => {
            tracing::info!("signal received, shutting down");
            let _ = stop_tx.send(true);
            serve.await;
        }
    }
    if let Some(t) = ops_task {
        let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
    }
    // Response records of the last requests are appended in the background: let them land.
    if !recorder.flush(Duration::from_secs(10)).await {
        tracing::error!("some response records were still being written at shutdown");
    }
    drop(recorder);
    // Every record acknowledged is durable already; sign what the log holds now, then close.
    if let Err(e) = sequencer.shutdown().await {
        tracing::error!(error = %e, "final checkpoint could not be signed");
    }
    store.close().await;
    Ok(())
}

/// Opens (creating it, 0700) the recordings directory and proves it writable with a file created and
/// removed there: a read-only or foreign shared volume stops start-up here, not every exec later.
fn open_recordings(dir: &std::path::Path) -> Result<custos_gateway::recording::Recordings> {
    let field = || format!("recordings.dir {}", dir.display());
    let recordings = custos_gateway::recording::Recordings::open(dir).with_context(field)?;
    // A hidden name: never taken for a recording (their names are plain), gone when dropped.
    tempfile::Builder::new()
        .prefix(".custos-write-check-")
        .tempfile_in(dir)
        .map(drop)
        .with_context(|| format!("{}: cannot write there", field()))?;
    tracing::info!(dir = %dir.display(), "exec/attach sessions are recorded here");
    Ok(recordings)
}

/// Where copies of signed checkpoints go besides the store: the file, the endpoint, or both (the
/// file first, so a slow endpoint never delays it).
fn checkpoint_sink(cfg: &Config) -> Result<Option<Arc<dyn CheckpointSink>>> {
    let mut sinks: Vec<Arc<dyn CheckpointSink>> = Vec::new();
    if let Some(path) = &cfg.audit.checkpoint_copy {
        sinks.push(Arc::new(FileSink::new(path)));
    }
    if let Some(url) = &cfg.audit.checkpoint_url {
        let sink = HttpSink::new(&HttpSinkConfig {
            token_file: cfg.audit.checkpoint_token_file.clone(),
            ca_file: cfg.audit.checkpoint_ca_file.clone(),
            ..HttpSinkConfig::new(url.clone())
        })
        .map_err(|e| {
            let field = match &e {
                HttpSinkConfigError::TokenFile { .. } => "audit.checkpointTokenFile",
                HttpSinkConfigError::CaFile { .. } => "audit.checkpointCAFile",
                HttpSinkConfigError::Url(_) | HttpSinkConfigError::Client(_) => {
                    "audit.checkpointURL"
                }
            };
            anyhow::anyhow!("{field}: {e}")
        })?;
        tracing::info!(
            url = sink.url(),
            "signed checkpoints are also posted to this endpoint"
        );
        sinks.push(Arc::new(sink));
    }
    Ok(match sinks.len() {
        0 => None,
        1 => sinks.pop(),
        _ => Some(Arc::new(MultiSink::new(sinks))),
    })
}

fn authn_config(cfg: &Config) -> Result<AuthnConfig> {
    let mut oidc = Vec::new();
    for (i, o) in cfg.authentication.oidc.iter().enumerate() {
        oidc.push(oidc_config(o).with_context(|| format!("authentication.oidc[{i}]"))?);
    }
    Ok(AuthnConfig {
        oidc,
        client_cert: cfg
            .authentication
            .client_ca_file
            .clone()
            .map(|ca_file| ClientCertConfig { ca_file }),
        static_token_file: cfg.authentication.token_file.clone(),
    })
}

fn oidc_config(o: &OidcSection) -> Result<OidcIssuerConfig> {
    let mut c = OidcIssuerConfig::new(o.issuer_url.clone(), o.client_ids.clone());
    if let Some(v) = &o.username_claim {
        c.username_claim.clone_from(v);
    }
    c.username_prefix.clone_from(&o.username_prefix);
    if let Some(v) = &o.groups_claim {
        c.groups_claim.clone_from(v);
    }
    c.groups_prefix.clone_from(&o.groups_prefix);
    c.required_claims.clone_from(&o.required_claims);
    c.ca_file.clone_from(&o.ca_file);
    if !o.signing_algs.is_empty() {
        c.signing_algs = o
            .signing_algs
            .iter()
            .map(|a| {
                SigningAlg::from_name(a)
                    .ok_or_else(|| anyhow::anyhow!("signingAlgs: unknown algorithm {a}"))
            })
            .collect::<Result<_>>()?;
    }
    c.validate()?;
    Ok(c)
}

/// Installs the SIGTERM and SIGINT handlers now (before the gateway announces itself, so a signal that
/// arrives right after "serving" still shuts down gracefully) and resolves when one arrives.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "custos".into())
}

/// Reloads the policy on SIGHUP and when its files change (checked every 2 s); an invalid new set is
/// refused with its errors in the log and the metric, and the last good set stays in force.
async fn watch_policy(gw: Arc<Gateway>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(gate) = gw.policy.as_ref() else {
        return;
    };
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut seen = fingerprint(gate.path());
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        #[cfg(unix)]
        let hup_fut = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup_fut = std::future::pending::<()>();
        let reason = tokio::select! {
            () = hup_fut => "SIGHUP",
            _ = tick.tick() => {
                let now = fingerprint(gate.path());
                if now == seen { continue; }
                seen = now;
                "file change"
            }
            _ = stop.changed() => return,
        };
        match gate.reload() {
            Ok(n) => {
                gw.metrics.policy_reload(true);
                tracing::info!(policies = n, reason, "policy reloaded");
            }
            Err(e) => {
                gw.metrics.policy_reload(false);
                tracing::error!(reason, error = %e, "policy reload REFUSED; the previous policy stays in force");
            }
        }
    }
}

/// Names, sizes and modification times of the policy files: cheap change detection.
fn fingerprint(
    path: &std::path::Path,
) -> Vec<(std::path::PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut out = Vec::new();
    let entries: Vec<std::path::PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    } else {
        vec![path.to_owned()]
    };
    for p in entries {
        if let Ok(m) = std::fs::metadata(&p) {
            out.push((p, m.len(), m.modified().ok()));
        }
    }
    out.sort();
    out
}

/// The masking settings: built-in detectors plus the operator's rules (their examples checked), the
/// named profiles and bounds.
fn masking_settings(
    section: &crate::config::MaskingSection,
) -> anyhow::Result<custos_gateway::mask::MaskSettings> {
    let detector = match &section.rules_file {
        None => custos_gateway::mask::builtin_detector().context("masking: built-in rules")?,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("masking.rulesFile: cannot read {}", path.display()))?;
            let extra = custos_mask::Rule::parse_file(&path.display().to_string(), &text)
                .context("masking.rulesFile")?;
            let d = custos_mask::Detector::with_extra(extra).context("masking.rulesFile")?;
            // One detector per process, shared by every request and stream for its lifetime.
            &*Box::leak(Box::new(d))
        }
    };
    let mut m = custos_gateway::mask::MaskSettings::new(detector);
    m.profiles = section.profiles.clone();
    m.max_object_bytes = section.max_object_bytes;
    m.record_body_bytes = section.record_body_bytes;
    m.idle_flush = Duration::from_millis(section.idle_flush_millis);
    Ok(m)
}

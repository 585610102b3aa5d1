//! `custos audit tail | search | verify | key` and `custos evidence export | verify`: read, check and
//! export the tamper-evident audit log. Thin: storage, verification and bundles live in
//! `custos-store` and `custos-audit`; this module opens the store the gateway writes, turns flags into
//! queries, and prints.
//!
//! Nothing here writes to the log or prints the signing key: `audit key` prints only the verifier key,
//! and `evidence export` waits for the gateway's sequencer to sign rather than signing itself, so the
//! log keeps exactly one signer.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use custos_audit::bundle::{self, BundleError, BundleSpec, BundleTrust, KeySource};
use custos_audit::note::VerifierKey;
use custos_audit::{Checkpoint, MicroTime};
use custos_store::proofs::BlockingSource;
use custos_store::{verify_store_with, Entry, EntryId, Leaf, LogStore, SearchQuery};
use custos_store::{StoreReport, MAX_SEARCH_LIMIT};
use custos_store_postgres::{PostgresOptions, PostgresStore};
use custos_store_sqlite::SqliteStore;
use serde_json::Value;
use tokio::runtime::Handle;
use tokio::time::Instant;

use crate::recordings::RecordingsArgs;

/// The log's default name: the checkpoint origin and the signing key's name.
pub const DEFAULT_LOG_NAME: &str = "custos";

/// The signing key's file name inside the data dir.
pub const KEY_FILE: &str = "audit.key";

/// Where the log's signing key lives by default: `<data dir>/audit.key` (mode 0600, Go's
/// `PRIVATE+KEY+…` form; `custos_audit::keys::load_or_generate` creates it on the gateway's first start).
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// Leaves read per store call when exporting.
const READ_CHUNK: u64 = 1024;
/// Entry ids `tail --follow` keeps looking for after it saw a later one (several writers commit out
/// of id order), and for how long.
const MAX_HOLES: usize = 4096;
const HOLE_GRACE: Duration = Duration::from_secs(10);

/// Which audit log to open (the same flags and variables as `custos serve`).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// State directory: the SQLite log is <DIR>/audit.db, the signing key <DIR>/audit.key
    #[arg(long, env = "CUSTOS_DATA_DIR", default_value = "custos-data")]
    pub data_dir: PathBuf,
    /// Audit store: a postgres:// URL; unset or empty for SQLite in the data dir
    // The URL may hold a password: --help must not show the variable's value.
    #[arg(long, env = "CUSTOS_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// The log's signing key file (default <DATA_DIR>/audit.key); only its public half is used
    #[arg(long, env = "CUSTOS_AUDIT_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

impl StoreArgs {
    fn key_file(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| key_path(&self.data_dir))
    }

    fn postgres_url(&self) -> Option<&str> {
        self.store.as_deref().filter(|s| !s.is_empty())
    }
}

/// How records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One record per line, exactly its canonical JSON (the Merkle leaf)
    Json,
    /// One line per record: leaf, time, kind, user, verb, resource/namespace/name, code, decision
    Text,
}

/// `custos audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the newest records (oldest of them first), and with --follow the ones that arrive.
    Tail {
        /// How many records
        #[arg(short = 'n', long = "lines", default_value_t = 20)]
        lines: usize,
        /// Keep printing new records until interrupted
        #[arg(short, long)]
        follow: bool,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Find records (queued or in the log) by user, session, verb, resource and time, oldest first.
    Search {
        #[command(flatten)]
        filter: FilterArgs,
        /// Records with this auditID (a request and its response share one)
        #[arg(long)]
        audit_id: Option<String>,
        /// Records of this kind (request, response, decision, …)
        #[arg(long)]
        kind: Option<String>,
        /// Print at most this many
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Recompute the Merkle tree from every stored record and check every signed checkpoint and
    /// their consistency; exits 1 and says where on the first failure.
    Verify {
        /// The log's verifier key (name+id+base64) or a file holding it [default: derived from the
        /// signing key file]
        #[arg(long)]
        key: Option<String>,
        /// A signed checkpoint kept outside the store (repeatable): the log must extend it, which
        /// exposes a truncated log or a restored older copy of the database
        #[arg(long = "pin", value_name = "CHECKPOINT_FILE")]
        pins: Vec<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        recordings: RecordingsArgs,
    },
    /// Print the log's verifier key (never the private key), for auditors and `--key`.
    Key {
        /// Create the signing key if there is none yet (as the gateway's first start would)
        #[arg(long)]
        create: bool,
        /// The log's name, for --create
        #[arg(long, default_value = DEFAULT_LOG_NAME)]
        log_name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Record filters shared by `audit search` (and, in part, `evidence export`).
#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Records by this user (user.username, exactly as recorded, prefixes included)
    #[arg(long)]
    pub user: Option<String>,
    /// Records of this agent session (custos.session.id)
    #[arg(long)]
    pub session: Option<String>,
    /// Records with this Kubernetes verb (get, list, create, delete, …)
    #[arg(long)]
    pub verb: Option<String>,
    /// Records about this resource (objectRef.resource: pods, secrets, …)
    #[arg(long)]
    pub resource: Option<String>,
    /// Records in this namespace
    #[arg(long)]
    pub namespace: Option<String>,
    /// Received at or after this time (RFC 3339, e.g. 2025-06-15T09:00:00Z)
    #[arg(long, value_parser = parse_time)]
    pub since: Option<MicroTime>,
    /// Received before this time (RFC 3339)
    #[arg(long, value_parser = parse_time)]
    pub until: Option<MicroTime>,
}

/// `custos evidence …`
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Write an evidence bundle: the records of a time window (optionally one session's or user's),
    /// an inclusion proof for each, the signed checkpoint, the verifier key and a MANIFEST.
    Export {
        /// Records received at or after this time (RFC 3339)
        #[arg(long, value_parser = parse_time)]
        from: MicroTime,
        /// Records received before this time (RFC 3339)
        #[arg(long, value_parser = parse_time)]
        to: MicroTime,
        /// Only this agent session's records (the bundle then has gaps between them)
        #[arg(long)]
        session: Option<String>,
        /// Only this user's records (the bundle then has gaps between them)
        #[arg(long)]
        user: Option<String>,
        /// Directory to write (must not exist, or be empty)
        #[arg(long)]
        out: PathBuf,
        /// Also prove that the checkpoint of this many leaves (one an auditor kept) is a prefix of
        /// the exported one (repeatable)
        #[arg(long = "consistency-from", value_name = "SIZE")]
        consistency_from: Vec<u64>,
        /// The log's verifier key (name+id+base64) or a file holding it [default: derived from the
        /// signing key file]
        #[arg(long)]
        key: Option<String>,
        /// Seconds to wait for the gateway's sequencer to sign the newest selected records
        #[arg(long, default_value_t = 5)]
        wait: u64,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        recordings: RecordingsArgs,
    },
    /// Verify an evidence bundle offline: MANIFEST, the checkpoint's signature, every record's
    /// inclusion proof, and consistency with a checkpoint you kept; exits 1 and says where on failure.
    Verify {
        /// The bundle directory
        dir: PathBuf,
        /// The log's verifier key as you obtained it from the operator (name+id+base64), or a file
        /// holding it [default: the bundle's own verifier-key, which proves integrity, not origin]
        #[arg(long)]
        key: Option<String>,
        /// A signed checkpoint you kept from an earlier audit: the bundle must extend it
        #[arg(long, value_name = "CHECKPOINT_FILE")]
        pin: Option<PathBuf>,
    },
}

/// Runs an `audit` subcommand. Verification failures print where and return exit code 1; errors
/// (no store, unreadable key) are returned.
pub async fn run_audit(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let result = match cmd {
        AuditCommand::Tail {
            lines,
            follow,
            format,
            store,
        } => {
            let log = open_store(&store).await?;
            let result = tail(log.as_ref(), lines, follow, format).await;
            log.close().await;
            result.map(|()| ExitCode::SUCCESS)
        }
        AuditCommand::Search {
            filter,
            audit_id,
            kind,
            limit,
            format,
            store,
        } => {
            let query = SearchQuery {
                audit_id,
                kind,
                ..filter.query()
            };
            let log = open_store(&store).await?;
            let result = search(log.as_ref(), query, limit, format).await;
            log.close().await;
            result.map(|()| ExitCode::SUCCESS)
        }
        AuditCommand::Verify {
            key,
            pins,
            store,
            recordings,
        } => {
            let recordings = recordings.dir(&store.data_dir);
            verify(&store, &recordings, key.as_deref(), &pins).await
        }
        AuditCommand::Key {
            create,
            log_name,
            store,
        } => print_key(&store, create, &log_name).await,
    };
    quiet_broken_pipe(result)
}

/// Runs an `evidence` subcommand. A bundle that does not verify prints where and returns exit code 1.
pub async fn run_evidence(cmd: EvidenceCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        EvidenceCommand::Export {
            from,
            to,
            session,
            user,
            out,
            consistency_from,
            key,
            wait,
            store,
            recordings,
        } => {
            let export = Export {
                from,
                to,
                session,
                user,
                out,
                consistency_from,
                wait: Duration::from_secs(wait),
                recordings: recordings.dir(&store.data_dir),
            };
            export.run(&store, key.as_deref()).await
        }
        EvidenceCommand::Verify { dir, key, pin } => verify_evidence(dir, key, pin).await,
    }
}

impl FilterArgs {
    fn query(&self) -> SearchQuery {
        SearchQuery {
            user: self.user.clone(),
            session: self.session.clone(),
            verb: self.verb.clone(),
            resource: self.resource.clone(),
            namespace: self.namespace.clone(),
            since: self.since,
            until: self.until,
            ..SearchQuery::default()
        }
    }
}

// ---- opening the store and the key ----

/// Opens the audit store the flags name (an absent SQLite log is an error, not a new empty one).
pub(crate) async fn open_store(args: &StoreArgs) -> anyhow::Result<Arc<dyn LogStore>> {
    if let Some(url) = args.postgres_url() {
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            bail!("--store / CUSTOS_STORE: expected a postgres:// URL, or nothing for SQLite in the data dir");
        }
        // The URL may carry a password: never echo it.
        let store = PostgresStore::connect(url, PostgresOptions::default())
            .await
            .context("opening the audit store (PostgreSQL)")?;
        return Ok(Arc::new(store));
    }
    let path = args.data_dir.join(custos_store_sqlite::DEFAULT_FILE);
    // Opening would create an empty log: a mistyped --data-dir must not look like an empty audit trail.
    let p = path.clone();
    if !blocking(move || Ok(p.exists())).await? {
        bail!(
            "no audit log at {}: the gateway creates it on first start (is --data-dir / CUSTOS_DATA_DIR right?)",
            path.display()
        );
    }
    let store = SqliteStore::open(&path)
        .await
        .with_context(|| format!("opening the audit store {}", path.display()))?;
    Ok(Arc::new(store))
}

/// The key verification trusts, and where it came from (for the report).
async fn verifier_key(
    args: &StoreArgs,
    key: Option<&str>,
) -> anyhow::Result<(VerifierKey, String)> {
    if let Some(arg) = key {
        return Ok((parse_verifier_key(arg).await?, "--key".to_owned()));
    }
    let path = args.key_file();
    let p = path.clone();
    let signer = blocking(move || Ok(custos_audit::keys::load(&p)?))
        .await
        .context(
            "reading the log's key (pass the verifier key with --key, or --key-file / --data-dir)",
        )?;
    Ok((signer.verifier(), path.display().to_string()))
}

/// A verifier key given on the command line, or the first line of the file it names.
async fn parse_verifier_key(arg: &str) -> anyhow::Result<VerifierKey> {
    let direct = VerifierKey::parse(arg.trim());
    if let Ok(key) = direct {
        return Ok(key);
    }
    let path = PathBuf::from(arg);
    if !path.exists() {
        let err = direct.err().map(|e| e.to_string()).unwrap_or_default();
        bail!("--key {arg:?}: not a verifier key (name+id+base64: {err}) and not a file");
    }
    let text = tokio::fs::read_to_string(&path)
        .await
        .with_context(|| format!("--key {}", path.display()))?;
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    VerifierKey::parse(line.unwrap_or_default())
        .with_context(|| format!("--key {}: not a verifier key", path.display()))
}

async fn print_key(args: &StoreArgs, create: bool, log_name: &str) -> anyhow::Result<ExitCode> {
    let path = args.key_file();
    let name = log_name.to_owned();
    let p = path.clone();
    let (key, created) = blocking(move || {
        if create {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                create_private_dir(dir)?;
            }
            return Ok(custos_audit::keys::load_or_generate(&p, &name)?);
        }
        match custos_audit::keys::load(&p) {
            Err(custos_audit::keys::KeyFileError::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                bail!(
                    "no signing key at {}: the gateway creates it on first start (or run `custos audit key --create`)",
                    p.display()
                )
            }
            other => Ok((other?, false)),
        }
    })
    .await?;
    if created {
        eprintln!("created the log's signing key {}", path.display());
    }
    write_out(format!("{}\n", key.verifier()).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

// ---- tail and search ----

async fn tail(
    store: &dyn LogStore,
    lines: usize,
    follow: bool,
    format: Format,
) -> anyhow::Result<()> {
    let mut newest = Vec::new();
    let mut query = SearchQuery {
        newest_first: true,
        limit: lines.min(MAX_SEARCH_LIMIT),
        ..SearchQuery::default()
    };
    while newest.len() < lines {
        query.limit = (lines - newest.len()).min(MAX_SEARCH_LIMIT);
        let page = store.search(&query).await?;
        let full = page.len() == query.limit;
        query.after = page.last().map(|e| e.id);
        newest.extend(page);
        if !full {
            break;
        }
    }
    newest.reverse();
    print_entries(&newest, format)?;
    if !follow {
        return Ok(());
    }
    let last = match newest.last() {
        Some(e) => e.id,
        // -n 0, or an empty log: start after the newest record, if any.
        None => store
            .search(&SearchQuery {
                newest_first: true,
                limit: 1,
                ..SearchQuery::default()
            })
            .await?
            .first()
            .map_or(EntryId(0), |e| e.id),
    };
    follow_log(store, last, format).await
}

/// Prints records as they arrive. With several writers, a record may commit after one with a higher
/// id: ids skipped over are looked up again for [`HOLE_GRACE`].
async fn follow_log(store: &dyn LogStore, mut last: EntryId, format: Format) -> anyhow::Result<()> {
    let mut holes: VecDeque<(EntryId, Instant)> = VecDeque::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let mut late = Vec::new();
        let now = Instant::now();
        holes.retain(|(_, seen)| now.duration_since(*seen) < HOLE_GRACE);
        for (id, _) in holes.iter() {
            if let Some(entry) = store.entry(*id).await? {
                late.push(entry);
            }
        }
        holes.retain(|(id, _)| !late.iter().any(|e| e.id == *id));
        print_entries(&late, format)?;
        loop {
            let page = store
                .search(&SearchQuery {
                    after: Some(last),
                    limit: MAX_SEARCH_LIMIT,
                    ..SearchQuery::default()
                })
                .await?;
            for entry in &page {
                for missing in last.0.saturating_add(1)..entry.id.0 {
                    if holes.len() >= MAX_HOLES {
                        holes.pop_front();
                    }
                    holes.push_back((EntryId(missing), now));
                }
                last = entry.id;
            }
            print_entries(&page, format)?;
            if page.len() < MAX_SEARCH_LIMIT {
                break;
            }
        }
    }
}

async fn search(
    store: &dyn LogStore,
    mut query: SearchQuery,
    limit: usize,
    format: Format,
) -> anyhow::Result<()> {
    let mut printed = 0usize;
    while printed < limit {
        query.limit = (limit - printed).min(MAX_SEARCH_LIMIT);
        let page = store.search(&query).await?;
        print_entries(&page, format)?;
        printed += page.len();
        if page.len() < query.limit {
            break;
        }
        query.after = page.last().map(|e| e.id);
    }
    Ok(())
}

fn print_entries(entries: &[Entry], format: Format) -> io::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    for entry in entries {
        match format {
            Format::Json => out.write_all(&entry.record)?,
            Format::Text => out.write_all(text_line(entry).as_bytes())?,
        }
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// `#leaf time kind user verb resource/namespace/name code decision`, `-` for what a record lacks.
/// Record content is untrusted: control characters are replaced, so a name cannot drive the terminal.
fn text_line(entry: &Entry) -> String {
    let v: Value = serde_json::from_slice(&entry.record).unwrap_or(Value::Null);
    let text = |path: &[&str]| -> Option<String> {
        let mut at = &v;
        for key in path {
            at = at.get(key)?;
        }
        match at {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let object = {
        let resource =
            text(&["objectRef", "resource"]).map(|r| match text(&["objectRef", "subresource"]) {
                Some(sub) => format!("{r}/{sub}"),
                None => r,
            });
        let parts: Vec<String> = [
            resource,
            text(&["objectRef", "namespace"]),
            text(&["objectRef", "name"]),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            text(&["requestURI"])
        } else {
            Some(parts.join("/"))
        }
    };
    let columns = [
        Some(
            entry
                .leaf_index
                .map_or("queued".to_owned(), |i| format!("#{i}")),
        ),
        text(&["requestReceivedTimestamp"]).or_else(|| text(&["stageTimestamp"])),
        text(&["custos", "recordKind"]),
        text(&["user", "username"]),
        text(&["verb"]),
        object,
        text(&["responseStatus", "code"]),
        text(&["custos", "decision", "outcome"]),
    ];
    columns
        .into_iter()
        .map(|c| column(c.as_deref().unwrap_or("-")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One whitespace-free, control-free column of untrusted record text (`-` when empty).
pub(crate) fn column(value: &str) -> String {
    if value.is_empty() {
        return "-".to_owned();
    }
    value
        .chars()
        .map(|c| match c {
            c if c.is_control() => '?',
            c if c.is_whitespace() => '_',
            c => c,
        })
        .collect()
}

// ---- audit verify ----

async fn verify(
    args: &StoreArgs,
    recordings_dir: &Path,
    key: Option<&str>,
    pins: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let (key, key_from) = verifier_key(args, key).await?;
    let mut pinned = Vec::with_capacity(pins.len());
    for pin in pins {
        let note = tokio::fs::read_to_string(pin)
            .await
            .with_context(|| format!("--pin {}", pin.display()))?;
        pinned.push(note);
    }
    let store = open_store(args).await?;
    let result = verify_store_with(store.as_ref(), &key, &pinned).await;
    // Each recording against the chunk records the (now verified) log holds for it.
    let recordings = match &result {
        Ok(report) => Some(
            crate::recordings::verify_store(store.as_ref(), recordings_dir, report.log.leaves)
                .await,
        ),
        Err(_) => None,
    };
    store.close().await;
    if let Some(Err(e)) = &recordings {
        eprintln!("custos: audit verify FAILED: {e:#}");
        return Ok(ExitCode::FAILURE);
    }
    match result {
        Ok(report) => {
            let where_ = match args.postgres_url() {
                Some(_) => "PostgreSQL (--store)".to_owned(),
                None => args
                    .data_dir
                    .join(custos_store_sqlite::DEFAULT_FILE)
                    .display()
                    .to_string(),
            };
            let mut text = store_report(&report, &where_, &key, &key_from, pins.len());
            if let Some(Ok(checked)) = recordings {
                text.push_str(&format!(
                    "  recordings   {} checked against their stream-chunk records ({})\n",
                    checked.recordings,
                    recordings_dir.display()
                ));
                for w in checked.warnings {
                    eprintln!("custos: warning: {w}");
                }
            }
            write_out(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("custos: audit verify FAILED: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn store_report(
    report: &StoreReport,
    store: &str,
    key: &VerifierKey,
    key_from: &str,
    pins: usize,
) -> String {
    let log = &report.log;
    let latest = log.latest.as_ref().map_or("none yet".to_owned(), |c| {
        format!("size {}, root {}", c.size, c.root.to_base64())
    });
    let pinned = if pins == 0 {
        String::new()
    } else {
        format!(", {pins} pinned from outside the store")
    };
    // Someone who can rewrite the database may also have replaced the key beside it.
    let trust = if key_from == "--key" {
        ""
    } else {
        "; pass --key with the key auditors hold to rule out a swapped key"
    };
    format!(
        "audit log verified: {store}\n\
         \x20 key          {} (from {key_from}{trust})\n\
         \x20 records      {} in the log, {} queued (not yet sequenced, not covered)\n\
         \x20 checkpoints  {} verified{pinned}\n\
         \x20 latest       {latest}\n\
         \x20 unsigned     {} records after the latest checkpoint\n\
         \x20 tree head    {} ({} stored interior nodes checked)\n",
        key.label(),
        log.leaves,
        report.queued,
        log.checkpoints,
        log.unsigned_tail,
        log.root.to_base64(),
        report.nodes,
    )
}

// ---- evidence export ----

/// What `evidence export` selects and where it writes.
struct Export {
    from: MicroTime,
    to: MicroTime,
    session: Option<String>,
    user: Option<String>,
    out: PathBuf,
    consistency_from: Vec<u64>,
    wait: Duration,
    /// Where the selected streams' recordings are (copied into the bundle).
    recordings: PathBuf,
}

/// The leaves a bundle holds: every leaf of a range (no filter: the bundle is contiguous), or the
/// ones a filter matched.
#[derive(Debug)]
enum Selection {
    Range { start: u64, end: u64 },
    Indices(Vec<u64>),
}

impl Selection {
    fn len(&self) -> u64 {
        match self {
            Selection::Range { start, end } => end - start,
            Selection::Indices(v) => v.len() as u64,
        }
    }
}

/// What one pass over the matching records found.
#[derive(Debug, Default)]
struct Scan {
    matched: u64,
    queued: u64,
    first: Option<u64>,
    last: Option<u64>,
    indices: Vec<u64>,
}

impl Scan {
    fn add(&mut self, entry: &Entry, filtered: bool) {
        self.matched += 1;
        let Some(index) = entry.leaf_index else {
            self.queued += 1;
            return;
        };
        self.first = Some(self.first.map_or(index, |f| f.min(index)));
        self.last = Some(self.last.map_or(index, |l| l.max(index)));
        if filtered {
            self.indices.push(index);
        }
    }
}

impl Export {
    fn filtered(&self) -> bool {
        self.session.is_some() || self.user.is_some()
    }

    async fn run(self, args: &StoreArgs, key: Option<&str>) -> anyhow::Result<ExitCode> {
        if self.from >= self.to {
            bail!("--from must be before --to");
        }
        check_out_dir(&self.out).await?;
        let (key, _) = verifier_key(args, key).await?;
        let store = open_store(args).await?;
        let result = self.export(&store, key).await;
        store.close().await;
        result
    }

    async fn export(
        &self,
        store: &Arc<dyn LogStore>,
        key: VerifierKey,
    ) -> anyhow::Result<ExitCode> {
        let deadline = Instant::now() + self.wait;
        let (scan, note, checkpoint) = loop {
            let scan = self.scan(store.as_ref()).await?;
            if scan.matched == 0 {
                bail!(
                    "no records received between {} and {}{}",
                    self.from,
                    self.to,
                    if self.filtered() {
                        " that match the filter"
                    } else {
                        ""
                    }
                );
            }
            let (note, checkpoint) = latest_checkpoint(store.as_ref(), &key).await?;
            let size = checkpoint.as_ref().map_or(0, |c| c.size);
            let covered = scan.queued == 0 && scan.last.is_some_and(|l| l < size);
            if covered {
                if let (Some(note), Some(checkpoint)) = (note, checkpoint) {
                    break (scan, note, checkpoint);
                }
            }
            if Instant::now() >= deadline {
                let reach = scan.last.map_or(String::new(), |l| {
                    format!(", the selection reaches leaf {l}")
                });
                bail!(
                    "the selected records are not all covered by a signed checkpoint yet (the newest signs {size} leaves{reach}; \
                     {} selected records are still queued). The gateway's sequencer signs about once a second: run the export \
                     again in a moment or raise --wait; if no gateway runs on this log, start one and it signs what is stored",
                    scan.queued
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let selection = match (self.filtered(), scan.first, scan.last) {
            (false, Some(start), Some(last)) => Selection::Range {
                start,
                end: last + 1,
            },
            _ => Selection::Indices(scan.indices),
        };
        let selected = selection.len();
        let summary = self.write(store, selection, note, key.clone()).await?;
        let (first, last) = summary.range.unwrap_or_default();
        let extra = selected.saturating_sub(scan.matched);
        let mut report = format!(
            "wrote evidence bundle {}\n\
             \x20 records     {} (leaves {first}..={last}), contiguous {}\n",
            self.out.display(),
            summary.records,
            if self.filtered() {
                "no (filtered)"
            } else {
                "yes"
            },
        );
        if extra > 0 {
            report.push_str(&format!(
                "              {} matched the time window; {extra} more lie between them in the log\n",
                scan.matched
            ));
        }
        report.push_str(&format!(
            "  checkpoint  {}, size {}, root {}\n\
             \x20 key         {}\n\
             \x20 files       {} (check transport with: sha256sum -c MANIFEST)\n\
             verify with:   custos evidence verify {} --key '{key}'\n",
            checkpoint.origin,
            checkpoint.size,
            checkpoint.root.to_base64(),
            key.label(),
            summary.files + 1,
            self.out.display(),
        ));
        write_out(report.as_bytes())?;
        Ok(ExitCode::SUCCESS)
    }

    /// One pass over the records the window and filters match, page by page.
    async fn scan(&self, store: &dyn LogStore) -> anyhow::Result<Scan> {
        let mut query = SearchQuery {
            user: self.user.clone(),
            session: self.session.clone(),
            since: Some(self.from),
            until: Some(self.to),
            limit: MAX_SEARCH_LIMIT,
            ..SearchQuery::default()
        };
        let mut scan = Scan::default();
        let mut streams = crate::recordings::StreamsOf::default();
        loop {
            let page = store.search(&query).await?;
            for entry in &page {
                streams.note(entry);
                scan.add(entry, self.filtered());
            }
            if page.len() < MAX_SEARCH_LIMIT {
                break;
            }
            query.after = page.last().map(|e| e.id);
        }
        // A stream's records all go with it, also those outside the window or without the session,
        // so its recording verifies against a complete set of chunks.
        for entry in streams.missing_records(store).await? {
            scan.add(&entry, self.filtered());
        }
        scan.indices.sort_unstable();
        scan.indices.dedup();
        Ok(scan)
    }

    /// Writes the bundle into a hidden directory beside `--out` and renames it into place, so `--out`
    /// never holds half a bundle (or a complete-looking one with records missing).
    async fn write(
        &self,
        store: &Arc<dyn LogStore>,
        selection: Selection,
        note: String,
        key: VerifierKey,
    ) -> anyhow::Result<bundle::BundleSummary> {
        let staging = staging_dir(&self.out);
        let handle = Handle::current();
        let source = BlockingSource::new(Arc::clone(store), handle.clone());
        let mut reader = LeafReader::new(Arc::clone(store), handle, selection);
        let consistency_from = self.consistency_from.clone();
        let out = self.out.clone();
        let stage = staging.clone();
        let recordings = self.recordings.clone();
        let result = tokio::task::spawn_blocking(move || {
            let spec = BundleSpec {
                checkpoint: &note,
                key: &key,
                contiguous: matches!(reader.selection, Selection::Range { .. }),
                consistency_from: &consistency_from,
            };
            let written = bundle::write(&stage, &source, &mut reader, &spec);
            let result = match (written, reader.error.take()) {
                (_, Some(e)) => Err(e),
                (Ok(summary), None) => Ok(summary),
                (Err(BundleError::NotIncluded { index, .. }), None) => Err(anyhow::anyhow!(
                    "the stored record at leaf {index} is not the leaf the signed checkpoint covers: \
                     the store was changed; run `custos audit verify`"
                )),
                (Err(e), None) => Err(e.into()),
            };
            result.and_then(|mut summary| {
                let copied = crate::recordings::add_to_bundle(&stage, &recordings)?;
                summary.files += copied.len();
                // rename(2) replaces an empty directory, so an existing empty --out works too.
                fs::rename(&stage, &out)
                    .with_context(|| format!("moving the bundle into {}", out.display()))?;
                Ok(summary)
            })
        })
        .await
        .context("bundle writer")?;
        if result.is_err() {
            let _ = tokio::fs::remove_dir_all(&staging).await;
        }
        result
    }
}

/// `--out` must not exist, or be an empty directory.
async fn check_out_dir(out: &Path) -> anyhow::Result<()> {
    let dir = out.to_owned();
    blocking(move || {
        match fs::read_dir(&dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    bail!(
                        "{} is not empty; a bundle is written into a new directory",
                        dir.display()
                    );
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("--out {}", dir.display())),
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        Ok(())
    })
    .await
}

fn staging_dir(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".to_owned());
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parent.join(format!(".{name}.partial-{}", std::process::id()))
}

/// The newest stored checkpoint, opened with `key`.
async fn latest_checkpoint(
    store: &dyn LogStore,
    key: &VerifierKey,
) -> anyhow::Result<(Option<String>, Option<Checkpoint>)> {
    let Some(stored) = store.latest_checkpoint().await? else {
        return Ok((None, None));
    };
    let checkpoint = Checkpoint::open(&stored.note, key).with_context(|| {
        format!(
            "the newest stored checkpoint does not verify under {}: run `custos audit verify`",
            key.label()
        )
    })?;
    Ok((Some(stored.note), Some(checkpoint)))
}

/// The selected leaves, read from the store in chunks on a blocking thread (`bundle::write` is
/// synchronous). A read error ends the iteration and is kept in `error`; the caller then discards
/// the bundle.
struct LeafReader {
    store: Arc<dyn LogStore>,
    handle: Handle,
    selection: Selection,
    /// Range: the next leaf to read. Indices: the position of the next index.
    next: u64,
    buffer: VecDeque<(u64, Vec<u8>)>,
    error: Option<anyhow::Error>,
}

impl LeafReader {
    fn new(store: Arc<dyn LogStore>, handle: Handle, selection: Selection) -> LeafReader {
        let next = match &selection {
            Selection::Range { start, .. } => *start,
            Selection::Indices(_) => 0,
        };
        LeafReader {
            store,
            handle,
            selection,
            next,
            buffer: VecDeque::new(),
            error: None,
        }
    }

    fn read(&self, start: u64, end: u64) -> anyhow::Result<Vec<Leaf>> {
        self.handle
            .block_on(self.store.read(start, end))
            .with_context(|| format!("reading leaves {start}..{end}"))
    }

    /// Reads the next chunk into the buffer; false when the selection is exhausted.
    fn fill(&mut self) -> anyhow::Result<bool> {
        let wanted: Vec<u64> = match &self.selection {
            Selection::Range { end, .. } => {
                (self.next..(*end).min(self.next + READ_CHUNK)).collect()
            }
            Selection::Indices(all) => {
                let rest =
                    usize::try_from(self.next).map_or(&[][..], |n| all.get(n..).unwrap_or(&[]));
                let first = rest.first().copied().unwrap_or_default();
                rest.iter()
                    .copied()
                    .take_while(|i| *i < first.saturating_add(READ_CHUNK))
                    .collect()
            }
        };
        let (Some(&start), Some(&last)) = (wanted.first(), wanted.last()) else {
            return Ok(false);
        };
        let leaves = self.read(start, last + 1)?;
        let mut found = leaves.into_iter().peekable();
        for index in &wanted {
            while found.peek().is_some_and(|l| l.index < *index) {
                found.next();
            }
            match found.next_if(|l| l.index == *index) {
                Some(leaf) => self.buffer.push_back((leaf.index, leaf.record)),
                None => bail!(
                    "leaf {index} is missing from the store: a record was deleted; run `custos audit verify`"
                ),
            }
        }
        self.next += match &self.selection {
            Selection::Range { .. } => last + 1 - start,
            Selection::Indices(_) => wanted.len() as u64,
        };
        Ok(true)
    }
}

impl Iterator for LeafReader {
    type Item = (u64, Vec<u8>);

    fn next(&mut self) -> Option<(u64, Vec<u8>)> {
        if self.buffer.is_empty() && self.error.is_none() {
            if let Err(e) = self.fill() {
                self.error = Some(e);
            }
        }
        if self.error.is_some() {
            return None;
        }
        self.buffer.pop_front()
    }
}

// ---- evidence verify ----

async fn verify_evidence(
    dir: PathBuf,
    key: Option<String>,
    pin: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let key = match key {
        Some(k) => Some(parse_verifier_key(&k).await?),
        None => None,
    };
    let pin = match pin {
        Some(path) => Some(
            tokio::fs::read_to_string(&path)
                .await
                .with_context(|| format!("--pin {}", path.display()))?,
        ),
        None => None,
    };
    let trust = BundleTrust { key, pin };
    let d = dir.clone();
    let result = tokio::task::spawn_blocking(move || bundle::verify_bundle(&d, &trust))
        .await
        .context("bundle verifier")?;
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("custos: evidence verify FAILED: {}: {e}", dir.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let d = dir.clone();
    let recordings = tokio::task::spawn_blocking(move || crate::recordings::verify_bundle(&d))
        .await
        .context("recording verifier")?;
    let recordings = match recordings {
        Ok(checked) => {
            for w in &checked.warnings {
                eprintln!("custos: warning: {w}");
            }
            checked.recordings
        }
        Err(e) => {
            eprintln!("custos: evidence verify FAILED: {}: {e:#}", dir.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let c = &report.checkpoint;
    let range = report
        .range
        .map_or("none".to_owned(), |(a, b)| format!("leaves {a}..={b}"));
    let gaps = if report.contiguous {
        "none (contiguous export)".to_owned()
    } else if report.gaps.is_empty() {
        "none".to_owned()
    } else {
        // A filtered export of a busy log can have a gap between every two records.
        const SHOWN: usize = 8;
        let mut list: Vec<String> = report
            .gaps
            .iter()
            .take(SHOWN)
            .map(|(a, b)| format!("{a}..{b}"))
            .collect();
        if report.gaps.len() > SHOWN {
            list.push(format!("and {} more", report.gaps.len() - SHOWN));
        }
        format!(
            "{} leaf ranges not in this filtered export: {} (expected; not a sign of removal)",
            report.gaps.len(),
            list.join(", ")
        )
    };
    let pin = report.pin.as_ref().map_or(
        "none (pass --pin with a checkpoint you kept to prove history was not rewritten)"
            .to_owned(),
        |p| format!("consistent: your checkpoint of size {} is a prefix", p.size),
    );
    let key_from = match report.key_source {
        KeySource::Trusted => "--key, matches the bundle's verifier-key",
        KeySource::Bundle => "the bundle's own verifier-key: NOT independently trusted",
    };
    write_out(
        format!(
            "evidence bundle verified: {}\n\
             \x20 checkpoint  {}, size {}, root {}\n\
             \x20 records     {} ({range}), each included in that checkpoint\n\
             \x20 gaps        {gaps}\n\
             \x20 recordings  {recordings}, each matching its stream-chunk records\n\
             \x20 pin         {pin}\n\
             \x20 key         {} ({key_from})\n",
            dir.display(),
            c.origin,
            c.size,
            c.root.to_base64(),
            report.records,
            report.key.label(),
        )
        .as_bytes(),
    )?;
    if report.key_source == KeySource::Bundle {
        eprintln!(
            "\nNOTE: this bundle was checked against the key it carries itself ({}).\n\
             That proves the files are intact and consistent with each other, NOT who signed them:\n\
             anyone can make a bundle that verifies under their own key. Get the log's verifier key\n\
             from the operator through a channel you trust (they print it with `custos audit key`)\n\
             and run again with --key KEY.",
            report.key
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ---- helpers ----

/// Parses an RFC 3339 time (`2025-06-15T09:00:00Z`, `2025-06-15T11:00:00.5+02:00`) or a date
/// (`2025-06-15`, midnight UTC). Fractions beyond microseconds are truncated.
pub fn parse_time(text: &str) -> Result<MicroTime, String> {
    let err = || format!("{text:?} is not an RFC 3339 time such as 2025-06-15T09:00:00Z");
    let t = text.trim();
    if t.len() == 10 {
        return MicroTime::parse(&format!("{t}T00:00:00.000000Z")).map_err(|_| err());
    }
    let b = t.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(err());
    }
    let (date, time) = (&t[..10], &t[11..19]);
    let rest = &t[19..];
    let (fraction, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let digits = r.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err());
            }
            (&r[..digits], &r[digits..])
        }
        None => ("", rest),
    };
    let micros: String = fraction.chars().chain("000000".chars()).take(6).collect();
    let base = MicroTime::parse(&format!("{date}T{time}.{micros}Z")).map_err(|_| err())?;
    let offset_secs: i64 = match zone {
        "Z" | "z" => 0,
        z if z.len() == 6 && matches!(&z[..1], "+" | "-") && &z[3..4] == ":" => {
            let hours: i64 = z[1..3].parse().map_err(|_| err())?;
            let minutes: i64 = z[4..6].parse().map_err(|_| err())?;
            if hours > 23 || minutes > 59 {
                return Err(err());
            }
            let secs = hours * 3600 + minutes * 60;
            if z.starts_with('-') {
                -secs
            } else {
                secs
            }
        }
        _ => return Err(err()),
    };
    let utc = i128::from(base.unix_micros()) - i128::from(offset_secs) * 1_000_000;
    u64::try_from(utc)
        .ok()
        .and_then(|m| MicroTime::from_unix_micros(m).ok())
        .ok_or_else(err)
}

/// Runs file-system work on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// Writes to stdout and flushes.
pub(crate) fn write_out(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// `custos audit tail | head` closes stdout early: that is success, not an error.
fn quiet_broken_pipe(result: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    match result {
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(text: &str) -> u64 {
        parse_time(text).expect(text).unix_micros()
    }

    #[test]
    fn parses_rfc3339_times() {
        let base = micros("2025-06-15T00:00:00Z");
        assert_eq!(base, 1_749_945_600_000_000);
        assert_eq!(micros("2025-06-15"), base);
        assert_eq!(micros("2025-06-15t00:00:00z"), base);
        assert_eq!(micros("2025-06-15T02:00:00+02:00"), base);
        assert_eq!(micros("2025-06-14T22:30:00-01:30"), base);
        assert_eq!(micros("2025-06-15T00:00:00.5Z"), base + 500_000);
        assert_eq!(micros("2025-06-15T00:00:00.123456789Z"), base + 123_456);
        for bad in [
            "yesterday",
            "2025-06-15T00:00:00",
            "2025-06-15T00:00:00.Z",
            "2025-06-15T24:00:00Z",
            "2025-02-30T00:00:00Z",
            "2025-06-15T00:00:00+2:00",
            "1970-01-01T00:00:00+01:00",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_lines_are_one_line_of_safe_columns() {
        let entry = Entry {
            id: EntryId(3),
            leaf_index: Some(7),
            record: br#"{"custos":{"decision":{"outcome":"deny"},"recordKind":"response"},"objectRef":{"name":"web\u001b[2J x","namespace":"prod","resource":"pods","subresource":"exec"},"requestReceivedTimestamp":"2025-06-15T00:00:00.000000Z","responseStatus":{"code":403},"user":{"username":"alice"},"verb":"create"}"#.to_vec(),
        };
        assert_eq!(
            text_line(&entry),
            "#7 2025-06-15T00:00:00.000000Z response alice create pods/exec/prod/web?[2J_x 403 deny"
        );
        let queued = Entry {
            id: EntryId(4),
            leaf_index: None,
            record: br#"{"requestURI":"/healthz"}"#.to_vec(),
        };
        assert_eq!(text_line(&queued), "queued - - - - /healthz - -");
    }
}

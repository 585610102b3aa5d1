//! Stream recordings beside the log: `<data dir>/recordings/<name>` (or the gateway's
//! `recordings.dir`: `--recordings DIR`), named by the `custos.streams[]` references of `stream-*`
//! records. This module finds them, copies them into evidence bundles (listed in the MANIFEST with
//! their SHA-256) and checks each against its `stream-chunk` records.
//!
//! The recording format is `custos-recording`'s; this module talks to it through exactly two
//! functions, [`verify`] and [`play`]. A recording name comes from a record and is treated as
//! hostile: only a plain file name is ever opened.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::{self, BufRead as _, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use custos_audit::bundle::{self, Manifest};
use custos_audit::record::{Record, RecordKind, StreamRef};
use custos_store::{Entry, LogStore, SearchQuery};

#[cfg(test)]
mod tests;

/// The recordings directory's name, in the data dir and in a bundle.
pub const DIR: &str = "recordings";

/// Checks one recording file against the chunk references of its `stream-chunk` records.
pub fn verify(path: &Path, chunks: &[StreamRef]) -> anyhow::Result<()> {
    custos_recording::verify(path, chunks)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Plays one recording to `out` at `speed` (1 = as recorded).
pub fn play(path: &Path, speed: f64, mut out: &mut dyn Write) -> anyhow::Result<()> {
    custos_recording::play(path, speed, &mut out)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// `name` if it is a plain file name (no directory part, no `..`, not hidden), else an error.
pub fn safe_name(name: &str) -> anyhow::Result<&str> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
    if !plain {
        bail!(
            "recording name {:?} is not a plain file name: refused",
            name.escape_debug().to_string()
        );
    }
    Ok(name)
}

/// Where a recording named by a record lives under `dir`.
pub fn path_in(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    Ok(dir.join(safe_name(name)?))
}

/// The recordings directory of a data dir.
pub fn data_dir_recordings(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR)
}

/// Where the commands that read recordings find them: the same flag and variable as `custos serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RecordingsArgs {
    /// Recordings directory: the gateway's recordings.dir [default: <DATA_DIR>/recordings]
    #[arg(long = "recordings", env = "CUSTOS_RECORDINGS", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl RecordingsArgs {
    /// The directory given, else `<data_dir>/recordings` (clap refuses an empty value).
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| data_dir_recordings(data_dir))
    }
}

/// Recordings the records refer to, each with the chunk references of its `stream-chunk` records
/// (in log order; empty for a stream that recorded nothing).
#[derive(Debug, Default)]
pub struct Referenced {
    /// Recording name → chunks.
    pub recordings: BTreeMap<String, Vec<StreamRef>>,
    /// Recordings whose stream was closed because the recording failed, and why.
    pub failed: BTreeMap<String, String>,
    /// Recordings with a `stream-closed` record (the others are still running, or their gateway
    /// stopped before closing them).
    pub closed: BTreeSet<String>,
    /// Whether a recording with no `stream-closed` record may end in unsealed bytes (a warning):
    /// so in the live log, where a stream may be running or its gateway may have died; not in a
    /// bundle, whose export copies such a recording's sealed part only.
    pub excuse_unclosed: bool,
}

/// What checking recordings found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Recordings checked.
    pub recordings: usize,
    /// What an auditor should know that is not a failure.
    pub warnings: Vec<String>,
}

impl Referenced {
    /// Adds a record's stream references.
    pub fn add(&mut self, record: &Record) {
        for s in &record.custos.streams {
            let chunks = self.recordings.entry(s.recording.clone()).or_default();
            if record.custos.record_kind == RecordKind::StreamChunk {
                chunks.push(s.clone());
            }
        }
        if record.custos.record_kind == RecordKind::StreamClosed {
            if let Some(s) = record.custos.streams.first() {
                self.closed.insert(s.recording.clone());
                if let Some(error) = &record.custos.error {
                    self.failed.insert(s.recording.clone(), error.clone());
                }
            }
        }
    }

    /// Checks every referenced recording in `dir`.
    pub fn verify_in(&self, dir: &Path) -> anyhow::Result<Checked> {
        let mut checked = Checked::default();
        for (name, chunks) in &self.recordings {
            let path = path_in(dir, name)?;
            if !path.is_file() {
                bail!(
                    "recording {name}: referenced by the log's stream records but missing ({}; \
                     --recordings names the gateway's recordings.dir)",
                    path.display()
                );
            }
            let context = || {
                format!(
                    "recording {name} does not match its {} stream-chunk records (was it edited?)",
                    chunks.len()
                )
            };
            if let Err(e) = verify(&path, chunks) {
                // A recording that failed (a full disk), or whose stream was never closed (still
                // running, or the gateway stopped), may end in bytes no chunk record covers: what
                // the chunks cover must still match, and the tail is reported — it is not evidence.
                let why = match (self.failed.get(name), self.closed.contains(name)) {
                    (Some(why), _) => format!(
                        "the recording failed while the stream ran ({})",
                        why.chars().take(300).collect::<String>()
                    ),
                    (None, false) if self.excuse_unclosed => "the log has no stream-closed record \
                                                              for it: the stream is still running, \
                                                              or its gateway stopped before closing it"
                        .to_owned(),
                    (None, _) => return Err(e.context(context())),
                };
                let tail = match custos_recording::verify_sealed(&path, chunks) {
                    Ok(tail) if tail > 0 => tail,
                    _ => return Err(e.context(context())),
                };
                let len = fs::metadata(&path)?.len();
                checked.warnings.push(format!(
                    "recording {name}: its last {tail} bytes are not covered by a chunk record: {why}; \
                     the {} bytes before them match their chunk records",
                    len - tail
                ));
            }
            checked.recordings += 1;
        }
        Ok(checked)
    }
}

/// Reads the stream references of a bundle's `records.jsonl`.
fn referenced_in_bundle(bundle_dir: &Path) -> anyhow::Result<Referenced> {
    let path = bundle_dir.join(bundle::RECORDS);
    let file = fs::File::open(&path).with_context(|| format!("{}", path.display()))?;
    let mut referenced = Referenced::default();
    for (i, line) in io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}", path.display()))?;
        let record: Record = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}", path.display(), i + 1))?;
        referenced.add(&record);
    }
    Ok(referenced)
}

/// Copies the recordings a freshly written bundle's records refer to from `source` into
/// `<bundle>/recordings/` and adds them to its MANIFEST. Returns the names copied.
pub fn add_to_bundle(bundle_dir: &Path, source: &Path) -> anyhow::Result<Vec<String>> {
    let referenced = referenced_in_bundle(bundle_dir)?;
    if referenced.recordings.is_empty() {
        return Ok(Vec::new());
    }
    let target = bundle_dir.join(DIR);
    fs::create_dir(&target).with_context(|| format!("creating {}", target.display()))?;
    let manifest_path = bundle_dir.join(bundle::MANIFEST);
    let text = fs::read_to_string(&manifest_path)
        .with_context(|| format!("{}", manifest_path.display()))?;
    let mut manifest = Manifest::parse(&text)?;
    let mut copied = Vec::new();
    for (name, chunks) in &referenced.recordings {
        let from = path_in(source, name)?;
        let to = target.join(name);
        let cannot = || {
            format!(
                "recording {name} is referenced by the exported records but cannot be copied from {}",
                from.display()
            )
        };
        if referenced.closed.contains(name) {
            fs::copy(&from, &to).with_context(cannot)?;
        } else {
            // Not closed (still running, or its gateway stopped): only what its chunk records seal
            // is evidence, so only that goes into the bundle.
            let sealed = chunks
                .iter()
                .max_by_key(|c| c.seq)
                .map_or(0, |c| c.offset.unwrap_or(0).saturating_add(c.bytes));
            let mut part = io::Read::take(fs::File::open(&from).with_context(cannot)?, sealed);
            let mut out = fs::File::create(&to).with_context(|| format!("{}", to.display()))?;
            io::copy(&mut part, &mut out).with_context(cannot)?;
        }
        fs::File::open(&to)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("{}", to.display()))?;
        manifest
            .files
            .insert(format!("{DIR}/{name}"), bundle::sha256_file(&to)?);
        copied.push(name.clone());
    }
    let mut file =
        fs::File::create(&manifest_path).with_context(|| format!("{}", manifest_path.display()))?;
    file.write_all(manifest.to_text().as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("{}", manifest_path.display()))?;
    Ok(copied)
}

/// Checks a verified bundle's recordings: every recording its records refer to is there and matches
/// its chunk records, and nothing else is in `recordings/`.
pub fn verify_bundle(bundle_dir: &Path) -> anyhow::Result<Checked> {
    let referenced = referenced_in_bundle(bundle_dir)?;
    let dir = bundle_dir.join(DIR);
    if dir.is_dir() {
        for entry in fs::read_dir(&dir).with_context(|| format!("{}", dir.display()))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if !referenced.recordings.contains_key(&name) {
                bail!("{DIR}/{name}: not referenced by any record in the bundle");
            }
        }
    }
    referenced.verify_in(&dir)
}

/// Checks every recording the log's stream records refer to, in `dir`, against its chunk records.
/// Only records in the verified tree count (`leaves`: how many leaves the log verification read):
/// a row merely queued, or one that does not parse, cannot vouch for or excuse a recording.
pub async fn verify_store(
    store: &dyn LogStore,
    dir: &Path,
    leaves: u64,
) -> anyhow::Result<Checked> {
    // Every record, its kind read from the record itself (the bytes the Merkle tree covers), not from
    // the store's kind index: an index edited to hide a stream-closed or stream-chunk record must not
    // turn a closed recording into one whose tail is excused.
    let mut referenced = Referenced::default();
    crate::sessions::entries(store, SearchQuery::default(), |entry| {
        if entry.leaf_index.is_none_or(|i| i >= leaves) {
            return Ok(());
        }
        let record: Record = serde_json::from_slice(&entry.record).with_context(|| {
            format!(
                "log entry {} (a verified leaf) does not parse as a record",
                entry.id.0
            )
        })?;
        if matches!(
            record.custos.record_kind,
            RecordKind::StreamOpened | RecordKind::StreamChunk | RecordKind::StreamClosed
        ) {
            referenced.add(&record);
        }
        Ok(())
    })
    .await?;
    referenced.excuse_unclosed = true;
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || referenced.verify_in(&dir)).await?
}

/// The streams (by audit ID) that records selected for a bundle belong to: a stream's records, or an
/// exec/attach request's. Their other stream records go into the bundle too.
#[derive(Debug, Default)]
pub struct StreamsOf {
    audits: BTreeSet<String>,
    seen: HashSet<u64>,
}

impl StreamsOf {
    /// Notes a selected entry.
    pub fn note(&mut self, entry: &Entry) {
        self.seen.insert(entry.id.0);
        if let Some(audit) = stream_audit_id(&entry.record) {
            self.audits.insert(audit);
        }
    }

    /// The stream records of the noted streams that were not selected.
    pub async fn missing_records(&self, store: &dyn LogStore) -> anyhow::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for audit in &self.audits {
            let query = SearchQuery {
                audit_id: Some(audit.clone()),
                ..SearchQuery::default()
            };
            crate::sessions::entries(store, query, |entry| {
                if !self.seen.contains(&entry.id.0) && is_stream_record(&entry.record) {
                    out.push(entry.clone());
                }
                Ok(())
            })
            .await?;
        }
        Ok(out)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn is_stream_record(bytes: &[u8]) -> bool {
    contains(bytes, b"\"recordKind\":\"stream-")
}

/// The audit ID of a stream record, or of an exec/attach request or response record.
fn stream_audit_id(bytes: &[u8]) -> Option<String> {
    let streamish = is_stream_record(bytes)
        || contains(bytes, b"\"subresource\":\"exec\"")
        || contains(bytes, b"\"subresource\":\"attach\"");
    if !streamish {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("auditID")?.as_str().map(str::to_owned)
}

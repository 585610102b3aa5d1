//! The default audit store: one SQLite file in the gateway's data dir (`custos-data/audit.db`, mode
//! 0600), nothing to install. Implements [`custos_store::LogStore`].
//!
//! Durability is the point: WAL journal with `synchronous=FULL`, so a commit returns only after the
//! WAL is fsync'd; the group-commit [`Appender`](custos_store::Appender) makes one commit serve many
//! records. All writes go through one dedicated writer thread that owns the write connection (SQLite
//! has one writer anyway); reads use a small pool of connections on tokio's blocking threads. No
//! SQLite call ever runs on an async worker. Before every write the writer checks that the file at
//! the configured path is still the file it opened: a database whose file was removed, replaced or
//! moved away would accept commits that vanish with the process, so it refuses them instead.
//!
//! Built on `rusqlite` with SQLite bundled: a synchronous API is what a dedicated writer thread wants,
//! every PRAGMA and transaction mode is explicit, and the bundled library is the same everywhere.
//! Migrations (`migrations/*.sql`) are embedded and applied at open, tracked by `PRAGMA user_version`.
//!
//! Owns the SQL for SQLite; must never acknowledge a write before its commit returned, never run SQL on
//! an async thread, and never create a database file others can read.
#![deny(missing_docs)]

mod migrate;
mod read;
mod writer;

#[cfg(test)]
mod tests;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use custos_audit::merkle::Hash;
use custos_store::{
    Entry, EntryId, Leaf, LogStore, NewEntry, NodeId, SearchQuery, Sequenced, SequencerLease,
    StoreError, StoredCheckpoint, TreeState,
};
use rusqlite::{Connection, OpenFlags};

use read::Readers;
use writer::Writer;

/// The database file's name inside the data dir.
pub const DEFAULT_FILE: &str = "audit.db";

/// How the store opens its database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How long a connection waits for a lock held by another connection or process.
    pub busy_timeout: Duration,
    /// Read connections kept open, at most.
    pub readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> SqliteOptions {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            readers: 4,
        }
    }
}

/// The SQLite audit store. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Readers,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn sql_err(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::unavailable(context, e)
}

fn io_err(context: String) -> impl FnOnce(io::Error) -> StoreError {
    move |e| StoreError::unavailable(context, e)
}

/// Opens a connection with the store's settings: WAL, synchronous=FULL, busy timeout.
fn connect(path: &Path, options: &SqliteOptions) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(sql_err("opening database"))?;
    conn.busy_timeout(options.busy_timeout)
        .map_err(sql_err("setting busy timeout"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sql_err("enabling WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Invalid(format!(
            "{} cannot use WAL journaling (got {mode:?})",
            path.display()
        )));
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(sql_err("setting synchronous=FULL"))?;
    Ok(conn)
}

/// Creates the data dir (0700) and an empty database file (0600) if they do not exist.
fn create_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(dir)
                .map_err(io_err(format!("creating {}", dir.display())))?;
        }
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            warn_if_open(path);
            Ok(())
        }
        Err(e) => Err(io_err(format!("creating {}", path.display()))(e)),
    }
}

#[cfg(unix)]
fn warn_if_open(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:04o}"),
                "audit database is readable by others; chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_open(_path: &Path) {}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with default options.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, SqliteOptions::default()).await
    }

    /// Opens (creating if needed) `audit.db` in the data dir `dir`.
    pub async fn open_in(dir: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open(dir.as_ref().join(DEFAULT_FILE)).await
    }

    /// Opens (creating if needed) the database at `path`: creates the file with mode 0600, applies
    /// migrations, starts the writer thread.
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_owned();
        let opts = options.clone();
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || {
            create_file(&p)?;
            let mut conn = connect(&p, &opts)?;
            migrate::apply(&mut conn)?;
            Ok::<_, StoreError>(conn)
        })
        .await
        .map_err(|e| StoreError::unavailable("opening database", e))??;
        let writer = Writer::spawn(conn, path.clone())?;
        Ok(SqliteStore {
            readers: Readers::new(path.clone(), options),
            writer,
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The embedded store has one process: the lease is always granted and never lost. (Sequencing is
/// safe even if two processes shared the file: it runs in an IMMEDIATE transaction that reads the
/// tree row first.)
struct LocalLease;

#[async_trait]
impl SequencerLease for LocalLease {
    async fn still_held(&self) -> bool {
        true
    }

    async fn release(self: Box<Self>) {}
}

#[async_trait]
impl LogStore for SqliteStore {
    async fn enqueue(&self, batch: Vec<NewEntry>) -> Result<Vec<EntryId>, StoreError> {
        self.writer.enqueue(batch).await
    }

    async fn sequence(&self, max: usize) -> Result<Vec<Sequenced>, StoreError> {
        self.writer.sequence(max).await
    }

    async fn tree(&self) -> Result<TreeState, StoreError> {
        self.readers.run(read::tree).await
    }

    async fn queued(&self) -> Result<u64, StoreError> {
        self.readers.run(read::queued).await
    }

    async fn read(&self, start: u64, end: u64) -> Result<Vec<Leaf>, StoreError> {
        self.readers.run(move |c| read::leaves(c, start, end)).await
    }

    async fn node_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
        let nodes = nodes.to_vec();
        self.readers
            .run(move |c| read::node_hashes(c, &nodes))
            .await
    }

    async fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        self.writer.put_checkpoint(size, note.to_owned()).await
    }

    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        self.readers.run(read::checkpoints).await
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.readers.run(read::latest_checkpoint).await
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<Entry>, StoreError> {
        let query = query.clone();
        self.readers.run(move |c| read::search(c, &query)).await
    }

    async fn entry(&self, id: EntryId) -> Result<Option<Entry>, StoreError> {
        self.readers.run(move |c| read::entry(c, id)).await
    }

    async fn acquire_sequencer(&self) -> Result<Option<Box<dyn SequencerLease>>, StoreError> {
        Ok(Some(Box::new(LocalLease)))
    }

    async fn close(&self) {
        self.writer.close().await;
        self.readers.close();
    }
}

/// SQLite integers are signed; ids, indexes and microseconds stay far below 2^63.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored integer as unsigned (a negative one can only come from tampering, and reads as 0).
pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

/// A stored 32-byte hash.
pub(crate) fn hash(bytes: &[u8]) -> Result<Hash, StoreError> {
    Hash::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("stored hash: {e}")))
}

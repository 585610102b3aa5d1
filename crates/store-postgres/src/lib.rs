//! The audit store on PostgreSQL (`store: postgres://…`), for several gateway replicas sharing one
//! log. Implements [`custos_store::LogStore`].
//!
//! Every replica appends to the queue (`audit_entries` with a NULL leaf index) through a small
//! connection pool, each batch one statement committed with `synchronous_commit = on`, so the WAL is
//! flushed before the commit returns. One replica at a time sequences: the lease is a session-level
//! `pg_try_advisory_lock` held on a dedicated connection, so when that replica dies its connection
//! closes, the lock is released, and another replica's [`Sequencer`](custos_store::Sequencer) takes
//! over from the stored tree row. Sequencing itself locks the tree row (`FOR UPDATE`) and moves queue
//! rows into the log in the same transaction that assigns their indexes, so no entry is lost or given
//! two indexes even if two sequencers overlapped.
//!
//! Built on `tokio-postgres` (async, no blocking threads) with a `deadpool-postgres` pool. Migrations
//! (`migrations/*.sql`) are embedded and applied at connect under a transaction-scoped advisory lock,
//! so replicas starting together migrate once. An optional schema keeps several logs (or test runs)
//! apart in one database. TLS to the database is not wired yet: use a local socket or a trusted
//! network until it is.
//!
//! Owns the SQL for PostgreSQL; must never acknowledge a write before its commit returned, and never
//! let two sequencers sign from different views of the tree.
#![deny(missing_docs)]

mod lease;
mod migrate;
mod read;
mod write;

use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use custos_audit::merkle::Hash;
use custos_store::{
    Entry, EntryId, Leaf, LogStore, NewEntry, NodeId, SearchQuery, Sequenced, SequencerLease,
    StoreError, StoredCheckpoint, TreeState,
};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use sha2::{Digest as _, Sha256};
use tokio_postgres::NoTls;

/// How the store connects.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The schema holding the log's tables (created if missing); `None` uses the server's
    /// `search_path` (normally `public`).
    pub schema: Option<String>,
    /// Pooled connections, at most (the sequencer lease uses one more).
    pub pool_size: usize,
    /// How long to wait for a connection (TCP connect, pool checkout) before failing.
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> PostgresOptions {
        PostgresOptions {
            schema: None,
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL audit store.
pub struct PostgresStore {
    pool: Pool,
    config: tokio_postgres::Config,
    lock_key: i64,
    timeout: Duration,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("lock_key", &self.lock_key)
            .finish_non_exhaustive()
    }
}

pub(crate) fn pg_err(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::unavailable(context, e)
}

/// A stable 64-bit advisory-lock key for `purpose` in `schema`.
fn lock_key(purpose: &str, schema: &str) -> i64 {
    let digest = Sha256::digest(format!("custos/{purpose}/{schema}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// A schema name we can put in SQL without quoting: lowercase letters, digits, `_`.
fn check_schema(schema: &str) -> Result<(), StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "schema {schema:?}: use lowercase letters, digits and _, not starting with a digit"
        )))
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`), creates the schema and applies
    /// migrations.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<PostgresStore, StoreError> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::unavailable("parsing the PostgreSQL URL", e))?;
        PostgresStore::connect_config(config, options).await
    }

    /// Like [`connect`](Self::connect), from a parsed configuration.
    pub async fn connect_config(
        mut config: tokio_postgres::Config,
        options: PostgresOptions,
    ) -> Result<PostgresStore, StoreError> {
        let schema = options.schema.clone();
        if let Some(s) = &schema {
            check_schema(s)?;
        }
        // Durability is not left to the server's defaults: every commit waits for the WAL flush.
        let mut startup = config.get_options().unwrap_or_default().to_owned();
        startup.push_str(" -c synchronous_commit=on");
        if let Some(s) = &schema {
            startup.push_str(&format!(" -c search_path={s}"));
        }
        config.options(startup.trim());
        config.connect_timeout(options.connect_timeout);
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("custos");
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let timeout = options.connect_timeout;
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| StoreError::unavailable("building the connection pool", e))?;
        let name = schema.as_deref().unwrap_or("");
        let store = PostgresStore {
            pool,
            config,
            lock_key: lock_key("sequencer", name),
            timeout,
        };
        let mut client = store.client().await?;
        migrate::apply(&mut client, schema.as_deref(), lock_key("migrate", name)).await?;
        Ok(store)
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        if self.pool.is_closed() {
            return Err(StoreError::Closed);
        }
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::unavailable("connecting to PostgreSQL", e))
    }
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

pub(crate) fn hash(bytes: &[u8]) -> Result<Hash, StoreError> {
    Hash::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("stored hash: {e}")))
}

#[async_trait]
impl LogStore for PostgresStore {
    async fn enqueue(&self, batch: Vec<NewEntry>) -> Result<Vec<EntryId>, StoreError> {
        write::enqueue(self, batch).await
    }

    async fn sequence(&self, max: usize) -> Result<Vec<Sequenced>, StoreError> {
        write::sequence(self, max).await
    }

    async fn tree(&self) -> Result<TreeState, StoreError> {
        read::tree(&*self.client().await?).await
    }

    async fn queued(&self) -> Result<u64, StoreError> {
        read::queued(&*self.client().await?).await
    }

    async fn read(&self, start: u64, end: u64) -> Result<Vec<Leaf>, StoreError> {
        read::leaves(&*self.client().await?, start, end).await
    }

    async fn node_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Option<Hash>>, StoreError> {
        read::node_hashes(&*self.client().await?, nodes).await
    }

    async fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        write::put_checkpoint(self, size, note).await
    }

    async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, StoreError> {
        read::checkpoints(&*self.client().await?).await
    }

    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        read::latest_checkpoint(&*self.client().await?).await
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<Entry>, StoreError> {
        read::search(&*self.client().await?, query).await
    }

    async fn entry(&self, id: EntryId) -> Result<Option<Entry>, StoreError> {
        read::entry(&*self.client().await?, id).await
    }

    async fn acquire_sequencer(&self) -> Result<Option<Box<dyn SequencerLease>>, StoreError> {
        lease::acquire(&self.config, self.lock_key, self.timeout).await
    }

    async fn close(&self) {
        self.pool.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["custos", "audit_log", "t_1"] {
            assert!(check_schema(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Custos",
            "a-b",
            "a;drop",
            "a b",
            &"x".repeat(64),
        ] {
            assert!(check_schema(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lock_keys_differ_by_purpose_and_schema() {
        assert_ne!(lock_key("sequencer", ""), lock_key("migrate", ""));
        assert_ne!(lock_key("sequencer", "a"), lock_key("sequencer", "b"));
        assert_eq!(lock_key("sequencer", "a"), lock_key("sequencer", "a"));
    }
}

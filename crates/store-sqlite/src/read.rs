//! Reads: a small pool of connections used on tokio's blocking threads. WAL lets them read a
//! consistent snapshot while the writer commits.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use custos_audit::merkle::Hash;
use custos_store::{
    decode_frontier, Entry, EntryId, FilterValue, Leaf, NodeId, SearchQuery, StoreError,
    StoredCheckpoint, TreeState,
};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension as _};

use crate::{connect, hash, sql_err, to_i64, to_u64, SqliteOptions};

/// Read connections, opened on demand and kept up to `options.readers`.
pub(crate) struct Readers {
    path: PathBuf,
    options: SqliteOptions,
    idle: Arc<Mutex<Vec<Connection>>>,
    closed: Arc<AtomicBool>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, options: SqliteOptions) -> Readers {
        Readers {
            path,
            options,
            idle: Arc::new(Mutex::new(Vec::new())),
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Runs `read` on a pooled connection on a blocking thread.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let idle = Arc::clone(&self.idle);
        let path = self.path.clone();
        let options = self.options.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = idle.lock().ok().and_then(|mut v| v.pop());
            let conn = match pooled {
                Some(c) => c,
                None => {
                    let c = connect(&path, &options)?;
                    c.execute_batch("PRAGMA query_only = ON")
                        .map_err(sql_err("opening reader"))?;
                    c
                }
            };
            let result = read(&conn);
            if let Ok(mut v) = idle.lock() {
                if v.len() < options.readers {
                    v.push(conn);
                }
            }
            result
        })
        .await
        .map_err(|e| StoreError::unavailable("read task", e))?
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut v) = self.idle.lock() {
            v.clear();
        }
    }
}

pub(crate) fn tree(c: &Connection) -> Result<TreeState, StoreError> {
    let (size, frontier): (i64, Vec<u8>) = c
        .query_row(
            "SELECT size, frontier FROM audit_tree WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sql_err("reading the tree"))?;
    let size = to_u64(size);
    Ok(TreeState {
        size,
        frontier: decode_frontier(size, &frontier)?,
    })
}

pub(crate) fn queued(c: &Connection) -> Result<u64, StoreError> {
    c.query_row(
        "SELECT count(*) FROM audit_entries WHERE leaf_index IS NULL",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(to_u64)
    .map_err(sql_err("counting the queue"))
}

pub(crate) fn leaves(c: &Connection, start: u64, end: u64) -> Result<Vec<Leaf>, StoreError> {
    let mut stmt = c
        .prepare_cached(
            "SELECT leaf_index, id, record, leaf_hash FROM audit_entries \
             WHERE leaf_index >= ?1 AND leaf_index < ?2 ORDER BY leaf_index",
        )
        .map_err(sql_err("preparing leaf read"))?;
    let rows = stmt
        .query_map(params![to_i64(start), to_i64(end)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })
        .map_err(sql_err("reading leaves"))?;
    let mut out = Vec::new();
    for row in rows {
        let (index, id, record, leaf_hash) = row.map_err(sql_err("reading leaves"))?;
        out.push(Leaf {
            index: to_u64(index),
            id: EntryId(to_u64(id)),
            record,
            leaf_hash: hash(&leaf_hash)?,
        });
    }
    Ok(out)
}

pub(crate) fn node_hashes(
    c: &Connection,
    nodes: &[NodeId],
) -> Result<Vec<Option<Hash>>, StoreError> {
    let mut leaf = c
        .prepare_cached("SELECT leaf_hash FROM audit_entries WHERE leaf_index = ?1")
        .map_err(sql_err("preparing node read"))?;
    let mut node = c
        .prepare_cached("SELECT hash FROM audit_nodes WHERE level = ?1 AND idx = ?2")
        .map_err(sql_err("preparing node read"))?;
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        let bytes: Option<Vec<u8>> = if n.level == 0 {
            leaf.query_row([to_i64(n.index)], |r| r.get(0)).optional()
        } else {
            node.query_row(params![n.level, to_i64(n.index)], |r| r.get(0))
                .optional()
        }
        .map_err(sql_err("reading nodes"))?;
        out.push(bytes.map(|b| hash(&b)).transpose()?);
    }
    Ok(out)
}

fn checkpoint_rows(c: &Connection, sql: &str) -> Result<Vec<StoredCheckpoint>, StoreError> {
    let mut stmt = c
        .prepare_cached(sql)
        .map_err(sql_err("reading checkpoints"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql_err("reading checkpoints"))?;
    rows.map(|row| {
        row.map(|(size, note)| StoredCheckpoint {
            size: to_u64(size),
            note,
        })
        .map_err(sql_err("reading checkpoints"))
    })
    .collect()
}

pub(crate) fn checkpoints(c: &Connection) -> Result<Vec<StoredCheckpoint>, StoreError> {
    checkpoint_rows(c, "SELECT size, note FROM audit_checkpoints ORDER BY id")
}

pub(crate) fn latest_checkpoint(c: &Connection) -> Result<Option<StoredCheckpoint>, StoreError> {
    Ok(checkpoint_rows(
        c,
        "SELECT size, note FROM audit_checkpoints ORDER BY size DESC, id DESC LIMIT 1",
    )?
    .pop())
}

fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        id: EntryId(to_u64(r.get(0)?)),
        leaf_index: r.get::<_, Option<i64>>(1)?.map(to_u64),
        record: r.get(2)?,
    })
}

pub(crate) fn search(c: &Connection, q: &SearchQuery) -> Result<Vec<Entry>, StoreError> {
    let mut sql = String::from("SELECT id, leaf_index, record FROM audit_entries WHERE 1 = 1");
    let mut values = Vec::new();
    for (n, f) in q.filters().into_iter().enumerate() {
        // Column and operator come from a fixed list in custos-store; values are bound.
        sql.push_str(&format!(" AND {} {} ?{}", f.column, f.op, n + 1));
        values.push(match f.value {
            FilterValue::Text(t) => Value::Text(t),
            FilterValue::Int(i) => Value::Integer(i),
        });
    }
    let order = if q.newest_first { "DESC" } else { "ASC" };
    sql.push_str(&format!(
        " ORDER BY id {order} LIMIT {}",
        q.effective_limit()
    ));
    let mut stmt = c.prepare(&sql).map_err(sql_err("preparing search"))?;
    let rows = stmt
        .query_map(params_from_iter(values), entry_row)
        .map_err(sql_err("searching"))?;
    rows.map(|r| r.map_err(sql_err("searching"))).collect()
}

pub(crate) fn entry(c: &Connection, id: EntryId) -> Result<Option<Entry>, StoreError> {
    c.query_row(
        "SELECT id, leaf_index, record FROM audit_entries WHERE id = ?1",
        [to_i64(id.0)],
        entry_row,
    )
    .optional()
    .map_err(sql_err("reading entry"))
}

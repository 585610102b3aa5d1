//! Reads, each one statement on a pooled connection.

use std::collections::HashMap;

use custos_audit::merkle::Hash;
use custos_store::{
    decode_frontier, Entry, EntryId, FilterValue, Leaf, NodeId, SearchQuery, StoreError,
    StoredCheckpoint, TreeState,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use crate::{hash, pg_err, to_i64, to_u64};

pub(crate) async fn tree(c: &Client) -> Result<TreeState, StoreError> {
    let row = c
        .query_one("SELECT size, frontier FROM audit_tree WHERE id = 1", &[])
        .await
        .map_err(pg_err("reading the tree"))?;
    let size = to_u64(row.get(0));
    Ok(TreeState {
        size,
        frontier: decode_frontier(size, row.get::<_, &[u8]>(1))?,
    })
}

pub(crate) async fn queued(c: &Client) -> Result<u64, StoreError> {
    let row = c
        .query_one(
            "SELECT count(*) FROM audit_entries WHERE leaf_index IS NULL",
            &[],
        )
        .await
        .map_err(pg_err("counting the queue"))?;
    Ok(to_u64(row.get(0)))
}

pub(crate) async fn leaves(c: &Client, start: u64, end: u64) -> Result<Vec<Leaf>, StoreError> {
    let rows = c
        .query(
            "SELECT leaf_index, id, record, leaf_hash FROM audit_entries \
             WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index",
            &[&to_i64(start), &to_i64(end)],
        )
        .await
        .map_err(pg_err("reading leaves"))?;
    rows.iter()
        .map(|r| {
            Ok(Leaf {
                index: to_u64(r.get(0)),
                id: EntryId(to_u64(r.get(1))),
                record: r.get(2),
                leaf_hash: hash(r.get::<_, &[u8]>(3))?,
            })
        })
        .collect()
}

pub(crate) async fn node_hashes(
    c: &Client,
    nodes: &[NodeId],
) -> Result<Vec<Option<Hash>>, StoreError> {
    let leaf_indexes: Vec<i64> = nodes
        .iter()
        .filter(|n| n.level == 0)
        .map(|n| to_i64(n.index))
        .collect();
    let (levels, idxs): (Vec<i16>, Vec<i64>) = nodes
        .iter()
        .filter(|n| n.level > 0)
        .map(|n| (i16::from(n.level), to_i64(n.index)))
        .unzip();
    let mut found: HashMap<NodeId, Hash> = HashMap::with_capacity(nodes.len());
    if !leaf_indexes.is_empty() {
        let rows = c
            .query(
                "SELECT leaf_index, leaf_hash FROM audit_entries WHERE leaf_index = ANY($1)",
                &[&leaf_indexes],
            )
            .await
            .map_err(pg_err("reading leaf hashes"))?;
        for r in rows {
            let id = NodeId {
                level: 0,
                index: to_u64(r.get(0)),
            };
            found.insert(id, hash(r.get::<_, &[u8]>(1))?);
        }
    }
    if !levels.is_empty() {
        let rows = c
            .query(
                "SELECT n.level, n.idx, n.hash FROM audit_nodes n \
                 JOIN unnest($1::int2[], $2::int8[]) AS q(level, idx) \
                   ON n.level = q.level AND n.idx = q.idx",
                &[&levels, &idxs],
            )
            .await
            .map_err(pg_err("reading nodes"))?;
        for r in rows {
            let level = u8::try_from(r.get::<_, i16>(0)).unwrap_or_default();
            let id = NodeId {
                level,
                index: to_u64(r.get(1)),
            };
            found.insert(id, hash(r.get::<_, &[u8]>(2))?);
        }
    }
    Ok(nodes.iter().map(|n| found.get(n).copied()).collect())
}

fn checkpoint(r: &Row) -> StoredCheckpoint {
    StoredCheckpoint {
        size: to_u64(r.get(0)),
        note: r.get(1),
    }
}

pub(crate) async fn checkpoints(c: &Client) -> Result<Vec<StoredCheckpoint>, StoreError> {
    let rows = c
        .query("SELECT size, note FROM audit_checkpoints ORDER BY id", &[])
        .await
        .map_err(pg_err("reading checkpoints"))?;
    Ok(rows.iter().map(checkpoint).collect())
}

pub(crate) async fn latest_checkpoint(c: &Client) -> Result<Option<StoredCheckpoint>, StoreError> {
    let row = c
        .query_opt(
            "SELECT size, note FROM audit_checkpoints ORDER BY size DESC, id DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(pg_err("reading checkpoints"))?;
    Ok(row.as_ref().map(checkpoint))
}

fn entry_row(r: &Row) -> Entry {
    Entry {
        id: EntryId(to_u64(r.get(0))),
        leaf_index: r.get::<_, Option<i64>>(1).map(to_u64),
        record: r.get(2),
    }
}

pub(crate) async fn search(c: &Client, q: &SearchQuery) -> Result<Vec<Entry>, StoreError> {
    let mut sql = String::from("SELECT id, leaf_index, record FROM audit_entries WHERE true");
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    for (n, f) in q.filters().into_iter().enumerate() {
        // Column and operator come from a fixed list in custos-store; values are bound.
        sql.push_str(&format!(" AND {} {} ${}", f.column, f.op, n + 1));
        values.push(match f.value {
            FilterValue::Text(t) => Box::new(t),
            FilterValue::Int(i) => Box::new(i),
        });
    }
    let order = if q.newest_first { "DESC" } else { "ASC" };
    sql.push_str(&format!(
        " ORDER BY id {order} LIMIT {}",
        q.effective_limit()
    ));
    let params: Vec<&(dyn ToSql + Sync)> = values
        .iter()
        .map(|v| v.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = c.query(&sql, &params).await.map_err(pg_err("searching"))?;
    Ok(rows.iter().map(entry_row).collect())
}

pub(crate) async fn entry(c: &Client, id: EntryId) -> Result<Option<Entry>, StoreError> {
    let row = c
        .query_opt(
            "SELECT id, leaf_index, record FROM audit_entries WHERE id = $1",
            &[&to_i64(id.0)],
        )
        .await
        .map_err(pg_err("reading entry"))?;
    Ok(row.as_ref().map(entry_row))
}

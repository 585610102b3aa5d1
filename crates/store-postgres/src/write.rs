//! Writes: queueing a batch (one statement), sequencing (one transaction that locks the tree row),
//! storing checkpoints.

use std::collections::HashMap;

use custos_audit::merkle::Hash;
use custos_store::{
    decode_frontier, encode_frontier, integrate, EntryId, NewEntry, Sequenced, StoreError,
};

use crate::{hash, pg_err, to_i64, to_u64, PostgresStore};

/// Queues `batch` with one INSERT … SELECT FROM unnest(…): one round trip, one commit, one WAL flush.
pub(crate) async fn enqueue(
    store: &PostgresStore,
    batch: Vec<NewEntry>,
) -> Result<Vec<EntryId>, StoreError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut records = Vec::with_capacity(batch.len());
    let mut hashes = Vec::with_capacity(batch.len());
    let mut cols: [Vec<Option<String>>; 7] = Default::default();
    let mut ts = Vec::with_capacity(batch.len());
    for e in &batch {
        let f = e.fields();
        records.push(e.record());
        hashes.push(&e.leaf_hash().0[..]);
        for (col, v) in cols.iter_mut().zip([
            &f.user,
            &f.session,
            &f.verb,
            &f.resource,
            &f.namespace,
            &f.audit_id,
            &f.kind,
        ]) {
            col.push(v.clone());
        }
        ts.push(f.time.map(to_i64));
    }
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO audit_entries \
               (record, leaf_hash, username, session, verb, resource, namespace, audit_id, kind, ts) \
             SELECT r, h, u, s, v, res, ns, a, k, t FROM unnest(\
               $1::bytea[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::text[], \
               $7::text[], $8::text[], $9::text[], $10::int8[]) \
               WITH ORDINALITY AS b(r, h, u, s, v, res, ns, a, k, t, n) \
             ORDER BY n RETURNING id, leaf_hash",
        )
        .await
        .map_err(pg_err("preparing enqueue"))?;
    let [user, session, verb, resource, namespace, audit_id, kind] = &cols;
    let rows = client
        .query(
            &stmt,
            &[
                &records, &hashes, user, session, verb, resource, namespace, audit_id, kind, &ts,
            ],
        )
        .await
        .map_err(pg_err("inserting records"))?;
    // Match ids to the batch by leaf hash (identical records are interchangeable), lowest id first:
    // correct whatever order RETURNING uses.
    let mut by_hash: HashMap<Hash, Vec<i64>> = HashMap::new();
    for row in &rows {
        let h = hash(row.get::<_, &[u8]>(1))?;
        by_hash.entry(h).or_default().push(row.get(0));
    }
    for ids in by_hash.values_mut() {
        ids.sort_unstable_by(|a, b| b.cmp(a));
    }
    batch
        .iter()
        .map(|e| {
            by_hash
                .get_mut(e.leaf_hash())
                .and_then(Vec::pop)
                .map(|id| EntryId(to_u64(id)))
                .ok_or_else(|| StoreError::Corrupt("insert returned fewer ids than records".into()))
        })
        .collect()
}

/// Moves up to `max` queued entries into the log.
pub(crate) async fn sequence(
    store: &PostgresStore,
    max: usize,
) -> Result<Vec<Sequenced>, StoreError> {
    let mut client = store.client().await?;
    let tx = client
        .transaction()
        .await
        .map_err(pg_err("starting sequencing"))?;
    // The tree row lock serialises sequencers: whoever comes second sees the first one's result.
    let row = tx
        .query_one(
            "SELECT size, frontier FROM audit_tree WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(pg_err("locking the tree"))?;
    let size = to_u64(row.get(0));
    let frontier = decode_frontier(size, row.get::<_, &[u8]>(1))?;
    let rows = tx
        .query(
            "SELECT id, leaf_hash FROM audit_entries WHERE leaf_index IS NULL \
             ORDER BY id LIMIT $1 FOR UPDATE",
            &[&to_i64(max as u64)],
        )
        .await
        .map_err(pg_err("reading the queue"))?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let queued = rows
        .iter()
        .map(|r| Ok((EntryId(to_u64(r.get(0))), hash(r.get::<_, &[u8]>(1))?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let out = integrate(frontier, &queued);
    let ids: Vec<i64> = out.sequenced.iter().map(|s| to_i64(s.id.0)).collect();
    let indexes: Vec<i64> = out.sequenced.iter().map(|s| to_i64(s.index)).collect();
    let changed = tx
        .execute(
            "UPDATE audit_entries e SET leaf_index = u.idx \
             FROM unnest($1::int8[], $2::int8[]) AS u(id, idx) \
             WHERE e.id = u.id AND e.leaf_index IS NULL",
            &[&ids, &indexes],
        )
        .await
        .map_err(pg_err("assigning leaf indexes"))?;
    if changed != ids.len() as u64 {
        return Err(StoreError::Corrupt(format!(
            "assigned {changed} of {} leaf indexes",
            ids.len()
        )));
    }
    let levels: Vec<i16> = out.nodes.iter().map(|(n, _)| i16::from(n.level)).collect();
    let idxs: Vec<i64> = out.nodes.iter().map(|(n, _)| to_i64(n.index)).collect();
    let hashes: Vec<&[u8]> = out.nodes.iter().map(|(_, h)| &h.0[..]).collect();
    tx.execute(
        "INSERT INTO audit_nodes (level, idx, hash) \
         SELECT * FROM unnest($1::int2[], $2::int8[], $3::bytea[])",
        &[&levels, &idxs, &hashes],
    )
    .await
    .map_err(pg_err("storing nodes"))?;
    tx.execute(
        "UPDATE audit_tree SET size = $1, frontier = $2 WHERE id = 1",
        &[
            &to_i64(out.frontier.size()),
            &encode_frontier(&out.frontier),
        ],
    )
    .await
    .map_err(pg_err("storing the tree"))?;
    tx.commit().await.map_err(pg_err("committing sequencing"))?;
    Ok(out.sequenced)
}

pub(crate) async fn put_checkpoint(
    store: &PostgresStore,
    size: u64,
    note: &str,
) -> Result<(), StoreError> {
    store
        .client()
        .await?
        .execute(
            "INSERT INTO audit_checkpoints (size, note) VALUES ($1, $2) ON CONFLICT (note) DO NOTHING",
            &[&to_i64(size), &note],
        )
        .await
        .map_err(pg_err("storing checkpoint"))?;
    Ok(())
}

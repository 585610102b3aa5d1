//! Reading sessions out of the store: page through searches, parse records, and gather everything
//! that belongs to one session (including the records of its requests that do not name the session
//! themselves: refusals, approvals, stream chunks).

use std::collections::BTreeSet;

use anyhow::Context as _;
use custos_audit::MicroTime;
use custos_store::{Entry, LogStore, SearchQuery, MAX_SEARCH_LIMIT};

use super::timeline::{Logged, SessionKey};

/// Time and user bounds of a read.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Records by this user only.
    pub user: Option<String>,
    /// Received at or after.
    pub since: Option<MicroTime>,
    /// Received before.
    pub until: Option<MicroTime>,
}

impl Window {
    fn query(&self) -> SearchQuery {
        SearchQuery {
            user: self.user.clone(),
            since: self.since,
            until: self.until,
            limit: MAX_SEARCH_LIMIT,
            ..SearchQuery::default()
        }
    }
}

/// Calls `each` for every entry the query matches, oldest first, page by page; stops at the first
/// error `each` returns.
pub async fn entries(
    store: &dyn LogStore,
    mut query: SearchQuery,
    mut each: impl FnMut(&Entry) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    query.limit = MAX_SEARCH_LIMIT;
    loop {
        let page = store.search(&query).await.context("searching the log")?;
        for entry in &page {
            each(entry)?;
        }
        if page.len() < MAX_SEARCH_LIMIT {
            return Ok(());
        }
        query.after = page.last().map(|e| e.id);
    }
}

/// Calls `each` for every record the query matches, oldest first, page by page. Records that do
/// not parse are skipped with a warning (`audit verify` is where a damaged log is reported).
pub async fn scan(
    store: &dyn LogStore,
    query: SearchQuery,
    mut each: impl FnMut(Logged),
) -> anyhow::Result<()> {
    entries(store, query, |entry| {
        match serde_json::from_slice(&entry.record) {
            Ok(record) => each(Logged {
                id: entry.id.0,
                leaf: entry.leaf_index,
                record,
            }),
            Err(e) => {
                tracing::warn!(entry = entry.id.0, error = %e, "skipping a record that does not parse")
            }
        }
        Ok(())
    })
    .await
}

/// Every record of the session `key`, in log order.
pub async fn session_records(
    store: &dyn LogStore,
    key: &SessionKey,
    window: &Window,
) -> anyhow::Result<Vec<Logged>> {
    let mut records = Vec::new();
    match key {
        SessionKey::Custos(id) => {
            let query = SearchQuery {
                session: Some(id.clone()),
                ..window.query()
            };
            scan(store, query, |l| records.push(l)).await?;
        }
        SessionKey::Token { .. } => {
            // Token ids are not indexed: one pass over the window, keeping the credential's requests
            // and every later record that shares an audit ID with one of them.
            let mut audits = BTreeSet::new();
            scan(store, window.query(), |l| {
                let own = SessionKey::of(&l.record).as_ref() == Some(key);
                let joined = l
                    .record
                    .audit_id
                    .as_ref()
                    .is_some_and(|a| audits.contains(a));
                if own || joined {
                    if let Some(a) = &l.record.audit_id {
                        audits.insert(a.clone());
                    }
                    records.push(l);
                }
            })
            .await?;
        }
    }
    complete(store, &mut records).await?;
    records.sort_by_key(|l| l.id);
    records.dedup_by_key(|l| l.id);
    Ok(records)
}

/// Adds the records of the session's requests that do not carry the session: a refusal's response
/// record (written before the session was known), a stream's chunk records, a review's records,
/// looked up by audit ID (indexed) for the requests that can have them.
async fn complete(store: &dyn LogStore, records: &mut Vec<Logged>) -> anyhow::Result<()> {
    use custos_audit::RecordKind;
    let answered: BTreeSet<&str> = records
        .iter()
        .filter(|l| l.record.custos.record_kind == RecordKind::Response)
        .filter_map(|l| l.record.audit_id.as_deref())
        .collect();
    let wanted: BTreeSet<String> = records
        .iter()
        .filter(|l| l.record.custos.record_kind == RecordKind::Request)
        .filter(|l| {
            let streaming = l
                .record
                .object_ref
                .as_ref()
                .and_then(|o| o.subresource.as_deref())
                .is_some_and(|s| matches!(s, "exec" | "attach" | "portforward"));
            let reviewed = l
                .record
                .custos
                .decision
                .as_ref()
                .is_some_and(|d| d.outcome == custos_audit::record::Outcome::Review);
            let audit = l.record.audit_id.as_deref().unwrap_or_default();
            streaming || reviewed || !answered.contains(audit)
        })
        .filter_map(|l| l.record.audit_id.clone())
        .collect();
    let known: BTreeSet<u64> = records.iter().map(|l| l.id).collect();
    for audit in wanted {
        let query = SearchQuery {
            audit_id: Some(audit),
            ..SearchQuery::default()
        };
        let mut found = Vec::new();
        scan(store, query, |l| found.push(l)).await?;
        records.extend(found.into_iter().filter(|l| !known.contains(&l.id)));
    }
    Ok(())
}

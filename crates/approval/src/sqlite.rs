//! The approval store on SQLite (`approvals.db` in the data dir, mode 0600), for a single gateway.
//! One connection behind a mutex, used from blocking threads; changes are announced in-process.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::broadcast;
use tokio::time::Instant;

use custos_audit::record::MicroTime;

use crate::model::{Grant, Review, Session, State};
use crate::store::{doc, micros, parse, wait_for, ApprovalError, ApprovalStore};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approval_reviews (
  id TEXT PRIMARY KEY, state TEXT NOT NULL, created INTEGER NOT NULL, version INTEGER NOT NULL,
  doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS approval_reviews_state ON approval_reviews (state, created);
CREATE TABLE IF NOT EXISTS approval_grants (
  id TEXT PRIMARY KEY, username TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL,
  revoked INTEGER NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS approval_grants_user ON approval_grants (username, expires);
CREATE TABLE IF NOT EXISTS agent_sessions (
  id TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, username TEXT NOT NULL,
  expires INTEGER NOT NULL, doc TEXT NOT NULL);
";

/// The SQLite approval store.
#[derive(Clone)]
pub struct SqliteApprovals {
    conn: Arc<Mutex<Connection>>,
    changes: broadcast::Sender<String>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteApprovals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteApprovals")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn err(context: &'static str) -> impl Fn(rusqlite::Error) -> ApprovalError {
    move |e| ApprovalError::unavailable(context, e)
}

impl SqliteApprovals {
    /// Opens (creating if needed, mode 0600) the store at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, ApprovalError> {
        let path = path.as_ref().to_owned();
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, ApprovalError> {
            if !p.exists() {
                create_private(&p)?;
            }
            let conn = Connection::open(&p).map_err(err("opening approvals.db"))?;
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(err("setting busy timeout"))?;
            conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
                .map_err(err("setting journal mode"))?;
            conn.execute_batch(SCHEMA).map_err(err("creating tables"))?;
            Ok(conn)
        })
        .await
        .map_err(|e| ApprovalError::unavailable("opening approvals.db", e))??;
        Ok(SqliteApprovals {
            conn: Arc::new(Mutex::new(conn)),
            changes: broadcast::channel(256).0,
            path,
        })
    }

    /// Opens `approvals.db` in the data dir `dir`.
    pub async fn open_in(dir: impl AsRef<Path>) -> Result<Self, ApprovalError> {
        Self::open(dir.as_ref().join("approvals.db")).await
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, ApprovalError> + Send + 'static,
    ) -> Result<T, ApprovalError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn
                .lock()
                .map_err(|_| ApprovalError::unavailable("locking approvals.db", "poisoned"))?;
            f(&mut c)
        })
        .await
        .map_err(|e| ApprovalError::unavailable("approvals.db task", e))?
    }
}

fn create_private(path: &Path) -> Result<(), ApprovalError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| ApprovalError::unavailable("creating the data dir", e))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(|_| ())
        .map_err(|e| ApprovalError::unavailable("creating approvals.db", e))
}

#[async_trait]
impl ApprovalStore for SqliteApprovals {
    async fn insert_review(&self, r: &Review) -> Result<(), ApprovalError> {
        let r = r.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO approval_reviews (id, state, created, version, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.id, r.state.as_str(), micros(r.created), r.version as i64, doc(&r)],
            )
            .map_err(err("inserting a review"))?;
            Ok(())
        })
        .await
    }

    async fn review(&self, id: &str) -> Result<Option<Review>, ApprovalError> {
        let id = id.to_owned();
        self.with(move |c| {
            let d: Option<String> = c
                .query_row(
                    "SELECT doc FROM approval_reviews WHERE id = ?1",
                    [&id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err("reading a review"))?;
            d.map(|d| parse("review", &id, &d)).transpose()
        })
        .await
    }

    async fn reviews(
        &self,
        state: Option<State>,
        limit: usize,
    ) -> Result<Vec<Review>, ApprovalError> {
        self.with(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT id, doc FROM approval_reviews WHERE (?1 IS NULL OR state = ?1) \
                     ORDER BY created DESC LIMIT ?2",
                )
                .map_err(err("listing reviews"))?;
            let rows = stmt
                .query_map(params![state.map(|s| s.as_str()), limit as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(err("listing reviews"))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, d) = row.map_err(err("listing reviews"))?;
                out.push(parse("review", &id, &d)?);
            }
            Ok(out)
        })
        .await
    }

    async fn update_review(&self, r: &Review) -> Result<bool, ApprovalError> {
        let mut next = r.clone();
        next.version += 1;
        let id = r.id.clone();
        let read = r.version as i64;
        let done = self
            .with(move |c| {
                let n = c
                    .execute(
                        "UPDATE approval_reviews SET state = ?1, version = ?2, doc = ?3 WHERE id = ?4 AND version = ?5",
                        params![next.state.as_str(), next.version as i64, doc(&next), next.id, read],
                    )
                    .map_err(err("updating a review"))?;
                Ok(n == 1)
            })
            .await?;
        if done {
            let _ = self.changes.send(id);
        }
        Ok(done)
    }

    async fn insert_grant(&self, g: &Grant) -> Result<(), ApprovalError> {
        let g = g.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO approval_grants (id, username, created, expires, revoked, version, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![g.id, g.username, micros(g.created), micros(g.expires), g.revoked.is_some(), g.version as i64, doc(&g)],
            )
            .map_err(err("inserting a grant"))?;
            Ok(())
        })
        .await
    }

    async fn grant(&self, id: &str) -> Result<Option<Grant>, ApprovalError> {
        let id = id.to_owned();
        self.with(move |c| {
            let d: Option<String> = c
                .query_row(
                    "SELECT doc FROM approval_grants WHERE id = ?1",
                    [&id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err("reading a grant"))?;
            d.map(|d| parse("grant", &id, &d)).transpose()
        })
        .await
    }

    async fn grants(
        &self,
        username: Option<&str>,
        active_at: Option<MicroTime>,
    ) -> Result<Vec<Grant>, ApprovalError> {
        let username = username.map(str::to_owned);
        self.with(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT id, doc FROM approval_grants WHERE (?1 IS NULL OR username = ?1) \
                     AND (?2 IS NULL OR (expires > ?2 AND revoked = 0)) ORDER BY created DESC LIMIT 1000",
                )
                .map_err(err("listing grants"))?;
            let rows = stmt
                .query_map(params![username, active_at.map(micros)], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(err("listing grants"))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, d) = row.map_err(err("listing grants"))?;
                out.push(parse("grant", &id, &d)?);
            }
            Ok(out)
        })
        .await
    }

    async fn update_grant(&self, g: &Grant) -> Result<bool, ApprovalError> {
        let mut next = g.clone();
        next.version += 1;
        let read = g.version as i64;
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE approval_grants SET revoked = ?1, expires = ?2, version = ?3, doc = ?4 WHERE id = ?5 AND version = ?6",
                    params![next.revoked.is_some(), micros(next.expires), next.version as i64, doc(&next), next.id, read],
                )
                .map_err(err("updating a grant"))?;
            Ok(n == 1)
        })
        .await
    }

    async fn insert_session(&self, s: &Session) -> Result<(), ApprovalError> {
        let s = s.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO agent_sessions (id, token_sha256, username, expires, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.id, s.token_sha256, s.user.username, micros(s.expires), doc(&s)],
            )
            .map_err(err("inserting a session"))?;
            Ok(())
        })
        .await
    }

    async fn session_by_token(&self, token_sha256: &str) -> Result<Option<Session>, ApprovalError> {
        let sha = token_sha256.to_owned();
        self.with(move |c| {
            let row: Option<(String, String)> = c
                .query_row(
                    "SELECT id, doc FROM agent_sessions WHERE token_sha256 = ?1",
                    [&sha],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(err("reading a session"))?;
            row.map(|(id, d)| parse("session", &id, &d)).transpose()
        })
        .await
    }

    async fn changed(&self, id: &str, deadline: Instant) {
        let mut rx = self.changes.subscribe();
        wait_for(&mut rx, id, deadline).await;
    }
}

//! The approval store on PostgreSQL, shared by gateway replicas. Tables live beside the audit log's (same
//! database and schema); every change is announced with `NOTIFY custos_approvals, '<id>'` in the same
//! transaction, and each replica LISTENs on a dedicated connection, so a request held on one replica is
//! released as soon as an approver decides on another.

use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_postgres::{AsyncMessage, NoTls};

use custos_audit::record::MicroTime;

use crate::model::{Grant, Review, Session, State};
use crate::store::{doc, micros, parse, wait_for, ApprovalError, ApprovalStore};

const CHANNEL: &str = "custos_approvals";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approval_reviews (
  id TEXT PRIMARY KEY, state TEXT NOT NULL, created BIGINT NOT NULL, version BIGINT NOT NULL,
  doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS approval_reviews_state ON approval_reviews (state, created);
CREATE TABLE IF NOT EXISTS approval_grants (
  id TEXT PRIMARY KEY, username TEXT NOT NULL, created BIGINT NOT NULL, expires BIGINT NOT NULL,
  revoked BOOLEAN NOT NULL, version BIGINT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS approval_grants_user ON approval_grants (username, expires);
CREATE TABLE IF NOT EXISTS agent_sessions (
  id TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, username TEXT NOT NULL,
  expires BIGINT NOT NULL, doc TEXT NOT NULL);
";

/// The PostgreSQL approval store.
pub struct PgApprovals {
    pool: Pool,
    changes: broadcast::Sender<String>,
    _listener: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for PgApprovals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgApprovals").finish_non_exhaustive()
    }
}

impl Drop for PgApprovals {
    fn drop(&mut self) {
        self._listener.abort();
    }
}

fn err(context: &'static str) -> impl Fn(tokio_postgres::Error) -> ApprovalError {
    move |e| ApprovalError::unavailable(context, e)
}

fn check_schema(schema: &str) -> Result<(), ApprovalError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(ApprovalError::Invalid(format!(
            "schema {schema:?}: use lowercase letters, digits and _, not starting with a digit"
        )))
    }
}

impl PgApprovals {
    /// Connects to `url` (tables in `schema`, created if missing) and starts listening for changes.
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<Self, ApprovalError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| ApprovalError::unavailable("parsing the PostgreSQL URL", e))?;
        let mut startup = config.get_options().unwrap_or_default().to_owned();
        startup.push_str(" -c synchronous_commit=on");
        if let Some(s) = schema {
            check_schema(s)?;
            startup.push_str(&format!(" -c search_path={s}"));
        }
        config.options(startup.trim());
        config.connect_timeout(Duration::from_secs(5));
        if config.get_application_name().is_none() {
            config.application_name("custos-approvals");
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(4)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| ApprovalError::unavailable("building the connection pool", e))?;
        {
            let mut c = pool
                .get()
                .await
                .map_err(|e| ApprovalError::unavailable("connecting to PostgreSQL", e))?;
            let tx = c.transaction().await.map_err(err("migrating"))?;
            if let Some(s) = schema {
                tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {s}"))
                    .await
                    .map_err(err("creating schema"))?;
            }
            // Replicas starting together create the tables once.
            tx.batch_execute("SELECT pg_advisory_xact_lock(7243001)")
                .await
                .map_err(err("migrating"))?;
            tx.batch_execute(SCHEMA)
                .await
                .map_err(err("creating tables"))?;
            tx.commit().await.map_err(err("migrating"))?;
        }
        let (changes, _) = broadcast::channel(256);
        let listener = listen(config, changes.clone()).await?;
        Ok(PgApprovals {
            pool,
            changes,
            _listener: listener,
        })
    }

    async fn client(&self) -> Result<Object, ApprovalError> {
        self.pool
            .get()
            .await
            .map_err(|e| ApprovalError::unavailable("connecting to PostgreSQL", e))
    }
}

/// A dedicated connection that LISTENs and forwards each announced id; it reconnects when lost (a
/// missed announcement only delays a release by the callers' one-second re-read).
async fn listen(
    config: tokio_postgres::Config,
    changes: broadcast::Sender<String>,
) -> Result<tokio::task::JoinHandle<()>, ApprovalError> {
    let (client, connection) = config.connect(NoTls).await.map_err(err("listening"))?;
    let first = (client, connection);
    Ok(tokio::spawn(async move {
        let mut next = Some(first);
        loop {
            let (client, mut connection) = match next.take() {
                Some(pair) => pair,
                None => match config.connect(NoTls).await {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "approval notifications: reconnecting");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        continue;
                    }
                },
            };
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let driver = tokio::spawn(async move {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                while let Some(m) = messages.next().await {
                    match m {
                        Ok(AsyncMessage::Notification(n)) => {
                            let _ = tx.send(n.payload().to_owned());
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "approval notifications: connection lost");
                            break;
                        }
                    }
                }
            });
            if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                tracing::warn!(error = %e, "approval notifications: LISTEN failed");
                driver.abort();
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            while let Some(id) = rx.recv().await {
                let _ = changes.send(id);
            }
            drop(client);
            let _ = driver.await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }))
}

#[async_trait]
impl ApprovalStore for PgApprovals {
    async fn insert_review(&self, r: &Review) -> Result<(), ApprovalError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO approval_reviews (id, state, created, version, doc) VALUES ($1, $2, $3, $4, $5)",
            &[&r.id, &r.state.as_str(), &micros(r.created), &(r.version as i64), &doc(r)],
        )
        .await
        .map_err(err("inserting a review"))?;
        Ok(())
    }

    async fn review(&self, id: &str) -> Result<Option<Review>, ApprovalError> {
        let c = self.client().await?;
        let row = c
            .query_opt("SELECT doc FROM approval_reviews WHERE id = $1", &[&id])
            .await
            .map_err(err("reading a review"))?;
        row.map(|r| parse("review", id, &r.get::<_, String>(0)))
            .transpose()
    }

    async fn reviews(
        &self,
        state: Option<State>,
        limit: usize,
    ) -> Result<Vec<Review>, ApprovalError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, doc FROM approval_reviews WHERE ($1::TEXT IS NULL OR state = $1) \
                 ORDER BY created DESC LIMIT $2",
                &[&state.map(|s| s.as_str()), &(limit as i64)],
            )
            .await
            .map_err(err("listing reviews"))?;
        rows.iter()
            .map(|r| parse("review", &r.get::<_, String>(0), &r.get::<_, String>(1)))
            .collect()
    }

    async fn update_review(&self, r: &Review) -> Result<bool, ApprovalError> {
        let mut next = r.clone();
        next.version += 1;
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(err("updating a review"))?;
        let n = tx
            .execute(
                "UPDATE approval_reviews SET state = $1, version = $2, doc = $3 WHERE id = $4 AND version = $5",
                &[&next.state.as_str(), &(next.version as i64), &doc(&next), &next.id, &(r.version as i64)],
            )
            .await
            .map_err(err("updating a review"))?;
        if n == 1 {
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &next.id])
                .await
                .map_err(err("announcing a review change"))?;
        }
        tx.commit().await.map_err(err("updating a review"))?;
        if n == 1 {
            // Local waiters need not wait for the round trip through the server.
            let _ = self.changes.send(next.id);
        }
        Ok(n == 1)
    }

    async fn insert_grant(&self, g: &Grant) -> Result<(), ApprovalError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO approval_grants (id, username, created, expires, revoked, version, doc) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&g.id, &g.username, &micros(g.created), &micros(g.expires), &g.revoked.is_some(), &(g.version as i64), &doc(g)],
        )
        .await
        .map_err(err("inserting a grant"))?;
        Ok(())
    }

    async fn grant(&self, id: &str) -> Result<Option<Grant>, ApprovalError> {
        let c = self.client().await?;
        let row = c
            .query_opt("SELECT doc FROM approval_grants WHERE id = $1", &[&id])
            .await
            .map_err(err("reading a grant"))?;
        row.map(|r| parse("grant", id, &r.get::<_, String>(0)))
            .transpose()
    }

    async fn grants(
        &self,
        username: Option<&str>,
        active_at: Option<MicroTime>,
    ) -> Result<Vec<Grant>, ApprovalError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, doc FROM approval_grants WHERE ($1::TEXT IS NULL OR username = $1) \
                 AND ($2::BIGINT IS NULL OR (expires > $2 AND NOT revoked)) ORDER BY created DESC LIMIT 1000",
                &[&username, &active_at.map(micros)],
            )
            .await
            .map_err(err("listing grants"))?;
        rows.iter()
            .map(|r| parse("grant", &r.get::<_, String>(0), &r.get::<_, String>(1)))
            .collect()
    }

    async fn update_grant(&self, g: &Grant) -> Result<bool, ApprovalError> {
        let mut next = g.clone();
        next.version += 1;
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE approval_grants SET revoked = $1, expires = $2, version = $3, doc = $4 WHERE id = $5 AND version = $6",
                &[&next.revoked.is_some(), &micros(next.expires), &(next.version as i64), &doc(&next), &next.id, &(g.version as i64)],
            )
            .await
            .map_err(err("updating a grant"))?;
        Ok(n == 1)
    }

    async fn insert_session(&self, s: &Session) -> Result<(), ApprovalError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO agent_sessions (id, token_sha256, username, expires, doc) VALUES ($1, $2, $3, $4, $5)",
            &[&s.id, &s.token_sha256, &s.user.username, &micros(s.expires), &doc(s)],
        )
        .await
        .map_err(err("inserting a session"))?;
        Ok(())
    }

    async fn session_by_token(&self, token_sha256: &str) -> Result<Option<Session>, ApprovalError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT id, doc FROM agent_sessions WHERE token_sha256 = $1",
                &[&token_sha256],
            )
            .await
            .map_err(err("reading a session"))?;
        row.map(|r| parse("session", &r.get::<_, String>(0), &r.get::<_, String>(1)))
            .transpose()
    }

    async fn changed(&self, id: &str, deadline: Instant) {
        let mut rx = self.changes.subscribe();
        wait_for(&mut rx, id, deadline).await;
    }
}

//! The sequencer lease: a session-level advisory lock on a connection of its own. The lock lives as
//! long as that session: when the leader's process dies or its connection breaks, PostgreSQL ends the
//! session and releases the lock, and another replica's next `pg_try_advisory_lock` wins.

use std::time::Duration;

use async_trait::async_trait;
use custos_store::{SequencerLease, StoreError};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use crate::pg_err;

struct PgLease {
    client: Client,
    connection: JoinHandle<()>,
    key: i64,
    timeout: Duration,
}

pub(crate) async fn acquire(
    config: &tokio_postgres::Config,
    key: i64,
    timeout: Duration,
) -> Result<Option<Box<dyn SequencerLease>>, StoreError> {
    let mut config = config.clone();
    // Named so operators (and tests) can see which session holds the lock in pg_stat_activity.
    let name = format!(
        "{}/sequencer",
        config.get_application_name().unwrap_or("custos")
    );
    config.application_name(&name);
    let (client, connection) = tokio::time::timeout(timeout, config.connect(NoTls))
        .await
        .map_err(|_| StoreError::Timeout(timeout))?
        .map_err(pg_err("connecting for the sequencer lease"))?;
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    let won = tokio::time::timeout(
        timeout,
        client.query_one("SELECT pg_try_advisory_lock($1)", &[&key]),
    )
    .await
    .map_err(|_| StoreError::Timeout(timeout))
    .and_then(|r| r.map_err(pg_err("trying the sequencer lock")))
    .map(|row| row.get::<_, bool>(0));
    match won {
        Ok(true) => Ok(Some(Box::new(PgLease {
            client,
            connection,
            key,
            timeout,
        }))),
        Ok(false) => {
            drop(client);
            connection.abort();
            Ok(None)
        }
        Err(e) => {
            connection.abort();
            Err(e)
        }
    }
}

#[async_trait]
impl SequencerLease for PgLease {
    async fn still_held(&self) -> bool {
        // The lock is the session's: the session answering is the lock being held.
        matches!(
            tokio::time::timeout(self.timeout, self.client.simple_query("SELECT 1")).await,
            Ok(Ok(_))
        )
    }

    async fn release(self: Box<Self>) {
        let _ = tokio::time::timeout(
            self.timeout,
            self.client
                .execute("SELECT pg_advisory_unlock($1)", &[&self.key]),
        )
        .await;
        drop(self.client);
        self.connection.abort();
    }
}

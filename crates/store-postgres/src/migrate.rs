//! Embedded migrations, applied at connect in one transaction under a transaction-scoped advisory
//! lock, so replicas starting together migrate once and the others wait, then see the result.

use custos_store::StoreError;
use deadpool_postgres::Object;

use crate::pg_err;

/// `(version, SQL)`, in order.
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("../migrations/0001_audit_log.sql"))];

pub(crate) async fn apply(
    client: &mut Object,
    schema: Option<&str>,
    key: i64,
) -> Result<(), StoreError> {
    let tx = client
        .transaction()
        .await
        .map_err(pg_err("starting migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
        .await
        .map_err(pg_err("waiting for the migration lock"))?;
    if let Some(schema) = schema {
        // `schema` was checked to be a plain identifier.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .map_err(pg_err("creating schema"))?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS custos_schema_migrations (\
           version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(pg_err("creating the migrations table"))?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM custos_schema_migrations",
            &[],
        )
        .await
        .map_err(pg_err("reading schema version"))?
        .get(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > known {
        return Err(StoreError::Invalid(format!(
            "database schema version {current} is newer than this Custos knows ({known})"
        )));
    }
    for &(version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql)
            .await
            .map_err(pg_err("applying migration"))?;
        tx.execute(
            "INSERT INTO custos_schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(pg_err("recording schema version"))?;
        tracing::info!(version, "audit database migrated");
    }
    tx.commit().await.map_err(pg_err("committing migration"))
}

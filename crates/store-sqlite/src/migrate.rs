//! Embedded migrations, applied in order at open inside one IMMEDIATE transaction each and tracked by
//! `PRAGMA user_version`. A database from a newer Custos (a higher version than we know) is refused
//! rather than written with an older idea of the schema.

use rusqlite::{Connection, TransactionBehavior};

use custos_store::StoreError;

use crate::sql_err;

/// `(version, SQL)`, in order; version `n` is the `n`-th file.
const MIGRATIONS: &[(u32, &str)] = &[(1, include_str!("../migrations/0001_audit_log.sql"))];

/// Brings the schema up to date.
pub(crate) fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    for &(version, sql) in MIGRATIONS {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err("starting migration"))?;
        let current: u32 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql_err("reading schema version"))?;
        if current > known {
            return Err(StoreError::Invalid(format!(
                "database schema version {current} is newer than this Custos knows ({known})"
            )));
        }
        if current >= version {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(sql_err("applying migration"))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(sql_err("recording schema version"))?;
        tx.commit().map_err(sql_err("committing migration"))?;
        tracing::info!(version, "audit database migrated");
    }
    Ok(())
}

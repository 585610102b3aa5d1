//! custos-store-postgres's integration tests against a real PostgreSQL: the shared conformance story,
//! a leader that dies mid-load, and a database that goes away.
//!
//! They need `CUSTOS_TEST_POSTGRES_URL` (`postgres://user:password@host:port/db`); without it they
//! fail and say how to get one: `export CUSTOS_TEST_POSTGRES_URL="$(crates/store-postgres/scripts/test-db)"`.
//! Each test works in schemas of its own, dropped at its end.

mod conformance;
mod leader;
mod support;
mod unavailable;

//! custos-store-sqlite's integration tests: the shared conformance story, crash durability with a
//! child process killed by SIGKILL, and a store that goes away.

mod conformance;
mod durability;
mod unavailable;

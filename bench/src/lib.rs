//! `custos-bench`: end-to-end numbers for Custos, measured as ratios in one run (STYLE §20).
//!
//! It starts a `custos serve` against the running testbed (via the e2e harness), prepares a namespace
//! of ConfigMaps directly on the apiserver, then measures the same workloads — GET of one object, LIST
//! of the collection, watch fan-out — directly (admin client certificate) and through Custos (the
//! admin's Dex token) with identically configured clients, alternating the two paths. Main types:
//! [`client::Client`], [`suite::Settings`], [`report::Table`]. It only prints numbers: nothing here
//! asserts on timing, and it never talks to anything but 127.0.0.1.
#![deny(missing_docs)]

pub mod client;
pub mod cpu;
pub mod dataset;
pub mod get;
pub mod list;
pub mod report;
pub mod stats;
pub mod suite;
pub mod summary;
pub mod watch;

//! custos-audit's integration tests: published vectors, tamper scenarios and properties.

mod props;
mod tamper;
mod vectors;

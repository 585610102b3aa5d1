//! custos-mask integration tests: rule examples, the labelled corpus, operator rules, the stream
//! masker's idle flush, stream-masker properties.

mod corpus;
mod examples;
mod extra;
mod fuzzed;
mod gen;
mod idle;
mod props;

//! custos-mask integration tests: rule examples, the labelled corpus, stream-masker properties.

mod corpus;
mod examples;
mod gen;
mod props;

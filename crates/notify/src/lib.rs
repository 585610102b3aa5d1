//! Custos notify owns outgoing webhooks that tell approvers about reviews: a review was requested,
//! approved, denied or expired, a grant was created or revoked. Each [`WebhookConfig`] (one entry of
//! `approvals.webhooks[]`) names an endpoint and a [`Format`]: generic JSON, or a Slack-compatible
//! incoming-webhook message. The [`Notifier`] queues each [`Event`] per webhook (bounded; when full the
//! oldest is dropped and reported), delivers it from one background task per webhook, retries with
//! exponential backoff and jitter, and tells its reporter about every attempt ([`DeliveryReport`]) so
//! the gateway can audit it.
//!
//! It must never let a webhook decide anything: [`Notifier::send`] returns at once and cannot fail,
//! and what an endpoint answers only ever reaches a [`DeliveryReport`]. A webhook that is down, slow or
//! hostile delays no request and approves nothing.
//!
//! # Signatures
//!
//! Every delivery carries these headers:
//!
//! - `X-Custos-Event`: the event kind, e.g. `review.requested`;
//! - `X-Custos-Delivery`: a unique id for the event at this webhook, the same on every retry, so a
//!   receiver can drop duplicates;
//! - `X-Custos-Timestamp`: Unix seconds when this attempt was signed;
//! - `X-Custos-Signature`: `v1=` and the lowercase hex HMAC-SHA256, keyed with the content of the
//!   webhook's `secretFile` (surrounding whitespace trimmed), over the bytes
//!   `<X-Custos-Timestamp>.<body>` (the timestamp as sent, a full stop, the exact request body).
//!
//! A receiver recomputes the HMAC with [`verify_signature`] (constant-time), and should also refuse a
//! timestamp more than a few minutes from its own clock, so a captured delivery cannot be replayed
//! later. Slack does not check these headers; its webhook URL is the secret there.
//!
//! # Fuzzing
//!
//! This crate parses nothing untrusted: its inputs are the operator's config and events the gateway
//! builds; from an endpoint it reads only the status, a `Retry-After` header and at most 256 bytes of
//! an error body, which are reported as text. There is therefore no fuzz target for it.
#![deny(missing_docs)]

mod client;
pub mod config;
pub mod event;
pub mod format;
mod notifier;
mod queue;
pub mod signature;

pub use config::{ConfigError, Format, WebhookConfig};
pub use event::{Event, EventKind};
pub use notifier::{
    AttemptError, DeliveryOptions, DeliveryOutcome, DeliveryReport, DropReason, Notifier,
    NotifyError, Reporter,
};
pub use signature::{sign, verify_signature};

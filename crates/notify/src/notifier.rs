//! [`Notifier`]: one bounded queue and one background task per webhook. `send` only queues; the task
//! signs and posts each event, retries with backoff, and reports every attempt.
//!
//! Each event ends in exactly one final report per webhook — [`DeliveryOutcome::Delivered`],
//! [`DeliveryOutcome::GaveUp`] or [`DeliveryOutcome::Dropped`] — after one
//! [`DeliveryOutcome::Failed`] per retried attempt, so an audit trail shows what became of every
//! notification, including those lost to a full queue or a shutdown.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::Url;

use crate::client::chain;
use crate::config::{KeyFile, Loaded};
use crate::queue::Queue;
use crate::{sign, ConfigError, Event, EventKind, Format, WebhookConfig};

/// How much of an error response's body goes into a report.
const ERROR_BODY_BYTES: usize = 256;

/// Receives every [`DeliveryReport`]. Called from the delivery tasks and, for an event dropped from a
/// full queue, from [`Notifier::send`]'s caller: it must return quickly and never block.
pub type Reporter = Arc<dyn Fn(DeliveryReport) + Send + Sync>;

/// Queue size and retry schedule, shared by every webhook of a [`Notifier`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// Attempts per event and webhook, at least 1.
    pub max_attempts: u32,
    /// The wait after the first failed attempt, doubled after each further one (with jitter).
    pub first_backoff: Duration,
    /// The longest wait between attempts, also capping a `Retry-After` answer.
    pub max_backoff: Duration,
    /// Events queued per webhook before the oldest is dropped.
    pub queue_capacity: usize,
}

impl Default for DeliveryOptions {
    /// 8 attempts, 0.5 s doubling to at most 60 s (about 64 s of waiting in all), 1000 queued events.
    fn default() -> DeliveryOptions {
        DeliveryOptions {
            max_attempts: 8,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            queue_capacity: 1000,
        }
    }
}

/// What became of one attempt (or of an event that never got one), for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The webhook's position in `approvals.webhooks[]`.
    pub webhook: usize,
    /// The webhook's `scheme://host[:port]`; never its path, which may be a secret (Slack).
    pub endpoint: String,
    /// The `X-Custos-Delivery` id, the same on every attempt.
    pub delivery_id: String,
    /// The event's kind.
    pub kind: EventKind,
    /// The event's review.
    pub review_id: String,
    /// What happened.
    pub outcome: DeliveryOutcome,
}

/// The outcome of one attempt, or why an event was never attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The endpoint answered 2xx. Final.
    Delivered {
        /// Which attempt, from 1.
        attempt: u32,
        /// The status it answered.
        status: u16,
    },
    /// The attempt failed and another follows after `retry_in`.
    Failed {
        /// Which attempt, from 1.
        attempt: u32,
        /// Why.
        error: AttemptError,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
    /// The last attempt failed, or the endpoint refused the event outright (a 4xx other than 429).
    /// Final.
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        error: AttemptError,
    },
    /// The event was discarded without (further) attempts. Final.
    Dropped {
        /// Why.
        reason: DropReason,
    },
}

impl DeliveryOutcome {
    /// Whether nothing more will be reported for this event at this webhook.
    pub fn is_final(&self) -> bool {
        !matches!(self, DeliveryOutcome::Failed { .. })
    }
}

/// Why an event was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The webhook's queue was full; this was its oldest event.
    QueueFull,
    /// The [`Notifier`] was dropped first.
    Shutdown,
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    /// No complete answer within the webhook's timeout. Retried.
    #[error("no answer within the timeout")]
    Timeout,
    /// The connection or the exchange failed (refused, reset, TLS, DNS). Retried.
    #[error("{0}")]
    Request(String),
    /// The endpoint answered a status other than 2xx; 429 and 5xx are retried.
    #[error("endpoint answered {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        /// The status.
        status: u16,
        /// The start of its body, control characters blanked.
        body: String,
    },
}

impl AttemptError {
    /// Whether another attempt may succeed: connection errors, timeouts, 429 and 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            AttemptError::Timeout | AttemptError::Request(_) => true,
            AttemptError::Status { status, .. } => *status == 429 || (500..=599).contains(status),
        }
    }
}

/// Why a [`Notifier`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A webhook's config is unusable.
    #[error("approvals.webhooks[{index}]: {source}")]
    Webhook {
        /// Its position in the list.
        index: usize,
        /// What is wrong.
        source: ConfigError,
    },
    /// No Tokio runtime to run the delivery tasks on.
    #[error("the notifier must be created inside a Tokio runtime")]
    NoRuntime,
}

/// Sends [`Event`]s to the configured webhooks: one bounded queue and one background task each.
///
/// Every event a webhook accepts ends in exactly one final report — [`DeliveryOutcome::Delivered`],
/// [`DeliveryOutcome::GaveUp`] or [`DeliveryOutcome::Dropped`] — after one
/// [`DeliveryOutcome::Failed`] per attempt that is retried.
pub struct Notifier {
    webhooks: Vec<Arc<Webhook>>,
    reporter: Reporter,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field(
                "webhooks",
                &self
                    .webhooks
                    .iter()
                    .map(|w| &w.endpoint)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// One webhook as its task sees it.
struct Webhook {
    index: usize,
    url: Url,
    endpoint: String,
    format: Format,
    events: Option<Vec<EventKind>>,
    secret: KeyFile,
    client: reqwest::Client,
    queue: Queue<Job>,
}

/// An event on its way to one webhook.
struct Job {
    event: Arc<Event>,
    delivery_id: String,
}

impl Notifier {
    /// Checks every config (reading secret and CA files) and starts one delivery task per webhook on
    /// the current Tokio runtime, with [`DeliveryOptions::default`].
    pub fn new(configs: &[WebhookConfig], reporter: Reporter) -> Result<Notifier, NotifyError> {
        Notifier::with_options(configs, reporter, DeliveryOptions::default())
    }

    /// [`Notifier::new`] with another queue size or retry schedule.
    pub fn with_options(
        configs: &[WebhookConfig],
        reporter: Reporter,
        options: DeliveryOptions,
    ) -> Result<Notifier, NotifyError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        let mut webhooks = Vec::with_capacity(configs.len());
        for (index, config) in configs.iter().enumerate() {
            let Loaded {
                url,
                endpoint,
                secret,
                client,
            } = config
                .load()
                .map_err(|source| NotifyError::Webhook { index, source })?;
            webhooks.push(Arc::new(Webhook {
                index,
                url,
                endpoint,
                format: config.format,
                events: config.events.clone(),
                secret,
                client,
                queue: Queue::new(options.queue_capacity),
            }));
        }
        for webhook in &webhooks {
            runtime.spawn(run(webhook.clone(), reporter.clone(), options.clone()));
        }
        Ok(Notifier { webhooks, reporter })
    }

    /// Queues `event` for every webhook that wants its kind, and returns at once. It cannot fail:
    /// a full queue drops its oldest event (reported as [`DropReason::QueueFull`]).
    pub fn send(&self, event: Event) {
        let event = Arc::new(event);
        for webhook in &self.webhooks {
            if !webhook
                .events
                .as_ref()
                .is_none_or(|k| k.contains(&event.kind))
            {
                continue;
            }
            let job = Job {
                event: event.clone(),
                delivery_id: uuid::Uuid::new_v4().to_string(),
            };
            if let Some(oldest) = webhook.queue.push(job) {
                tracing::warn!(endpoint = %webhook.endpoint, review = %oldest.event.review_id, "webhook queue full; dropped its oldest event");
                (self.reporter)(webhook.report(
                    &oldest,
                    DeliveryOutcome::Dropped {
                        reason: DropReason::QueueFull,
                    },
                ));
            }
        }
    }

    /// Waits until every queue is empty and no delivery is under way, for at most `limit`; says
    /// whether they all drained (for shutdown and tests).
    pub async fn flush(&self, limit: Duration) -> bool {
        let all = async {
            for webhook in &self.webhooks {
                webhook.queue.idle().await;
            }
        };
        tokio::time::timeout(limit, all).await.is_ok()
    }
}

impl Drop for Notifier {
    /// Stops the tasks: an attempt under way is abandoned and what is queued is reported as
    /// [`DropReason::Shutdown`]. Call [`Notifier::flush`] first to deliver it.
    fn drop(&mut self) {
        for webhook in &self.webhooks {
            webhook.queue.close();
        }
    }
}

/// One webhook's delivery task: events one at a time, in order, until the notifier is dropped.
async fn run(webhook: Arc<Webhook>, reporter: Reporter, options: DeliveryOptions) {
    while let Some(job) = webhook.queue.next().await {
        let outcome = deliver(&webhook, &job, &reporter, &options).await;
        reporter(webhook.report(&job, outcome));
        webhook.queue.done();
    }
    for job in webhook.queue.drain() {
        reporter(webhook.report(
            &job,
            DeliveryOutcome::Dropped {
                reason: DropReason::Shutdown,
            },
        ));
    }
}

/// Attempts `job` until it is delivered, refused, out of attempts or shut down; reports each failed
/// attempt that is retried and returns the final outcome.
async fn deliver(
    webhook: &Webhook,
    job: &Job,
    reporter: &Reporter,
    options: &DeliveryOptions,
) -> DeliveryOutcome {
    let shutdown = DeliveryOutcome::Dropped {
        reason: DropReason::Shutdown,
    };
    let body = webhook.format.body(&job.event);
    let max_attempts = options.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let result = tokio::select! {
            result = webhook.attempt(job, &body) => result,
            () = webhook.queue.closed() => return shutdown,
        };
        let (error, retry_after) = match result {
            Ok(status) => return DeliveryOutcome::Delivered { attempt, status },
            Err(failure) => failure,
        };
        if !error.is_retryable() || attempt >= max_attempts {
            tracing::warn!(endpoint = %webhook.endpoint, review = %job.event.review_id, attempts = attempt, %error, "webhook delivery gave up");
            return DeliveryOutcome::GaveUp {
                attempts: attempt,
                error,
            };
        }
        let wait = backoff(options, attempt, retry_after);
        tracing::debug!(endpoint = %webhook.endpoint, attempt, %error, ?wait, "webhook delivery failed; retrying");
        reporter(webhook.report(
            job,
            DeliveryOutcome::Failed {
                attempt,
                error,
                retry_in: wait,
            },
        ));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = webhook.queue.closed() => return shutdown,
        }
        attempt += 1;
    }
}

impl Webhook {
    /// One signed POST; the status on 2xx, else why not and any `Retry-After`.
    async fn attempt(
        &self,
        job: &Job,
        body: &[u8],
    ) -> Result<u16, (AttemptError, Option<Duration>)> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string();
        let signature = sign(self.secret.current().bytes(), &timestamp, body);
        let mut resp = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("X-Custos-Event", job.event.kind.as_str())
            .header("X-Custos-Delivery", &job.delivery_id)
            .header("X-Custos-Timestamp", &timestamp)
            .header("X-Custos-Signature", signature)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| (request_error(e), None))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(status.as_u16());
        }
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // A little of the body says why (Slack answers `invalid_payload`, `no_text`); never more.
        let mut head = Vec::new();
        while head.len() < ERROR_BODY_BYTES {
            match resp.chunk().await {
                Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                _ => break,
            }
        }
        head.truncate(ERROR_BODY_BYTES);
        let text: String = String::from_utf8_lossy(&head)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let error = AttemptError::Status {
            status: status.as_u16(),
            body: text.trim().to_owned(),
        };
        Err((error, retry_after))
    }

    fn report(&self, job: &Job, outcome: DeliveryOutcome) -> DeliveryReport {
        DeliveryReport {
            webhook: self.index,
            endpoint: self.endpoint.clone(),
            delivery_id: job.delivery_id.clone(),
            kind: job.event.kind,
            review_id: job.event.review_id.clone(),
            outcome,
        }
    }
}

/// A reqwest error as a report says it: without the URL, whose path may be a secret.
fn request_error(e: reqwest::Error) -> AttemptError {
    if e.is_timeout() {
        AttemptError::Timeout
    } else {
        AttemptError::Request(chain(&e.without_url()))
    }
}

/// The wait after failed attempt `attempt` (from 1): `first_backoff` doubled per attempt and capped
/// at `max_backoff`, then a random point in its upper half ("equal jitter", so webhooks that failed
/// together do not retry together); at least `retry_after` when the endpoint asked, within the cap.
fn backoff(options: &DeliveryOptions, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    let base = options
        .first_backoff
        .saturating_mul(1u32 << doublings)
        .min(options.max_backoff);
    let half = base / 2;
    let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let jitter = match getrandom::u64() {
        Ok(r) if span > 0 => Duration::from_nanos(r % span),
        _ => Duration::ZERO,
    };
    let wait = base - half + jitter;
    retry_after
        .map_or(wait, |asked| wait.max(asked))
        .min(options.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let options = DeliveryOptions::default();
        for (attempt, base_ms) in [
            (1, 500),
            (2, 1000),
            (3, 2000),
            (7, 32_000),
            (8, 60_000),
            (40, 60_000),
        ] {
            let base = Duration::from_millis(base_ms);
            for _ in 0..20 {
                let wait = backoff(&options, attempt, None);
                assert!(
                    wait >= base / 2 && wait <= base,
                    "attempt {attempt}: {wait:?}"
                );
            }
        }
        assert_eq!(
            backoff(&options, 1, Some(Duration::from_secs(10))),
            Duration::from_secs(10)
        );
        assert_eq!(
            backoff(&options, 1, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let status = |status| AttemptError::Status {
            status,
            body: String::new(),
        };
        assert!(AttemptError::Timeout.is_retryable());
        assert!(AttemptError::Request("connection refused".into()).is_retryable());
        for retried in [429, 500, 502, 503, 504] {
            assert!(status(retried).is_retryable(), "{retried}");
        }
        for refused in [300, 301, 400, 401, 403, 404, 408, 410, 413, 422] {
            assert!(!status(refused).is_retryable(), "{refused}");
        }
    }
}

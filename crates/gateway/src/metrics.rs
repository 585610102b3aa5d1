//! Prometheus metrics: requests by verb and code, latency, open long-running streams.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Kubernetes verb (get, list, watch, create, …) or the HTTP method for non-resource requests.
    pub verb: String,
    /// HTTP status code sent to the client.
    pub code: u16,
}

/// Labels of the open-streams gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    /// `watch`, `exec`, `attach`, `portforward`, `log`, `proxy` or `upgrade`.
    pub kind: String,
}

/// The gateway's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    open_streams: Family<StreamLabels, Gauge<i64, AtomicI64>>,
    /// Requests refused before forwarding, by reason (authn, path, impersonation, …).
    pub refused: Family<RefusedLabels, Counter>,
    policy_reloads: Family<ReloadLabels, Counter>,
}

/// Labels of the policy-reload counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `ok` or `refused`.
    pub result: String,
}

/// Labels of the refused-requests counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    /// Short reason.
    pub reason: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("custos");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let open_streams = Family::<StreamLabels, Gauge<i64, AtomicI64>>::default();
        let refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by verb and HTTP code",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to response headers, by verb and HTTP code",
            latency.clone(),
        );
        registry.register(
            "open_streams",
            "Long-running streams open now",
            open_streams.clone(),
        );
        registry.register(
            "refused",
            "Requests refused before reaching the apiserver",
            refused.clone(),
        );
        let policy_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy reloads, by result (a refused reload keeps the previous policy)",
            policy_reloads.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            open_streams,
            refused,
            policy_reloads,
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe(&self, verb: &str, code: u16, elapsed: Duration) {
        let labels = RequestLabels {
            verb: verb.to_owned(),
            code,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one refusal.
    pub fn refuse(&self, reason: &str) {
        self.refused
            .get_or_create(&RefusedLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts one policy reload.
    pub fn policy_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "refused" };
        self.policy_reloads
            .get_or_create(&ReloadLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// Marks a long-running stream open until the returned guard is dropped.
    pub fn stream_opened(&self, kind: &str) -> StreamGuard {
        let gauge = self
            .open_streams
            .get_or_create(&StreamLabels {
                kind: kind.to_owned(),
            })
            .clone();
        gauge.inc();
        StreamGuard(gauge)
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Decrements the open-streams gauge when dropped.
pub struct StreamGuard(Gauge<i64, AtomicI64>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

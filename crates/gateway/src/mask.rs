//! The mask step: every response body, stream and record leaves the gateway masked. Content
//! negotiation keeps responses in a form Custos can parse (JSON, text); the body is masked as it
//! streams (JSON by Kubernetes kind, text length-preserving); what cannot be parsed is refused with 502
//! unless the caller's profile says otherwise. The profile comes from policy (`@mask("name")`).

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use custos_mask::{Detector, Profile, RuleError};

/// What responses, streams and records are masked with.
#[derive(Debug, Clone)]
pub struct MaskSettings {
    /// The compiled detectors (built-in plus the operator's rules), built once per process.
    pub detector: &'static Detector,
    /// Named profiles policy can select with `@mask("name")`; anything else gets the strict default.
    pub profiles: BTreeMap<String, Profile>,
    /// Largest single object (or list frame) a JSON response may hold; larger is refused.
    pub max_object_bytes: usize,
    /// Largest masked response body kept in an audit record; larger ones are recorded by size only.
    pub record_body_bytes: usize,
    /// Idle time after which a terminal or log stream's held-back bytes are flushed (masked).
    pub idle_flush: Duration,
}

/// The built-in detectors, compiled once.
pub fn builtin_detector() -> Result<&'static Detector, RuleError> {
    static BUILTIN: OnceLock<Detector> = OnceLock::new();
    if let Some(d) = BUILTIN.get() {
        return Ok(d);
    }
    let d = Detector::builtin()?;
    Ok(BUILTIN.get_or_init(|| d))
}

impl MaskSettings {
    /// Settings with `detector` and defaults: no named profiles, 64 MiB per object, 1 MiB of masked
    /// body per record, 25 ms idle flush.
    pub fn new(detector: &'static Detector) -> Self {
        Self {
            detector,
            profiles: BTreeMap::new(),
            max_object_bytes: custos_mask::DEFAULT_MAX_OBJECT,
            record_body_bytes: 1024 * 1024,
            idle_flush: Duration::from_millis(25),
        }
    }
}

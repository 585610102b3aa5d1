//! Custos mask owns the detection and masking of secrets and personal data in bytes that leave the
//! gateway: detectors are data (`rules/*.yaml`, embedded at build time, each rule carrying examples the
//! tests run), compiled into a [`Detector`] that finds them in one keyword-prefiltered pass, and
//! length-preserving text masking ([`mask_text`], the streaming [`TextMasker`]) for pod logs and terminal
//! output, matching through ANSI escape sequences. Main types: [`Rule`], [`Detector`], [`Finding`],
//! [`TextMasker`], [`MaskCounts`].
//!
//! This crate does no I/O. It never logs, stores or returns unmasked secret bytes: a [`Finding`] carries
//! only a rule id and offsets, and the masker's held-back tail leaves it only masked.

#![deny(missing_docs)]

mod ansi;
mod detector;
mod helm;
mod json;
mod kube;
mod profile;
mod rule;
mod text;
mod validate;

pub use detector::{Detector, Finding};
pub use json::{JsonMaskError, JsonMasker, DEFAULT_MAX_OBJECT};
pub use kube::{mask_document, Hint, Masking};
pub use profile::{
    carries_marker, HelmReleases, Profile, Reveal, Unparseable, MARKER, MARKER_BASE64,
};
pub use rule::{Examples, Rule, RuleError};
pub use text::{mask_text, MaskCounts, TextMasker, MASK_BYTE, MAX_HOLD};
pub use validate::Validator;

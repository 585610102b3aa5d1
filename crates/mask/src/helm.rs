//! Helm release Secrets, masked inside: `data.release` is base64 (the Secret's encoding) of base64 of
//! gzip of the release JSON. The user-supplied values (`config`), the chart's default values, and the
//! rendered manifests (Secrets in them by field, everything through the detectors) are masked, then the
//! release is encoded again the same way, so helm still reads it.

use std::io::{Read, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use crate::detector::Detector;
use crate::kube::{Hint, Masking};
use crate::profile::Profile;
use crate::text::{mask_text, MaskCounts};

/// A decoded release larger than this is not unpacked (masked whole instead): gzip bombs stop here.
const MAX_RELEASE: u64 = 64 * 1024 * 1024;

/// The masked `data.release` value, or `None` if it is not a release Custos can decode (the caller
/// then masks it whole).
pub(crate) fn mask_release(
    encoded: &str,
    detector: &Detector,
    counts: &mut MaskCounts,
) -> Option<String> {
    let inner = STANDARD.decode(encoded).ok()?;
    let gz = STANDARD.decode(&inner).ok()?;
    let json = if gz.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .take(MAX_RELEASE + 1)
            .read_to_end(&mut out)
            .ok()?;
        if out.len() as u64 > MAX_RELEASE {
            return None;
        }
        out
    } else {
        gz
    };
    let mut release: Value = serde_json::from_slice(&json).ok()?;
    mask_release_json(&mut release, detector, counts);
    let text = serde_json::to_vec(&release).ok()?;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&text).ok()?;
    let gz = enc.finish().ok()?;
    Some(STANDARD.encode(STANDARD.encode(gz)))
}

/// Masks a decoded release: values by field and detector, manifests document by document.
fn mask_release_json(release: &mut Value, detector: &Detector, counts: &mut MaskCounts) {
    let strict = Profile::strict();
    for manifest in manifests(release) {
        *manifest = mask_manifest(manifest, detector, counts);
    }
    let Value::Object(map) = release else { return };
    for (k, v) in map.iter_mut() {
        if k == "manifest" || k == "hooks" {
            continue;
        }
        // config, chart (values, templates, files), info: every string through the field rules and
        // the detectors.
        let mut wrapper = Value::Object(serde_json::Map::from_iter([(k.clone(), v.take())]));
        Masking::new(detector, &strict, counts, true).members_except(&mut wrapper, &[]);
        if let Value::Object(mut w) = wrapper {
            *v = w.remove(k).unwrap_or(Value::Null);
        }
    }
}

/// The rendered manifests of a release: `manifest` and each hook's `manifest`.
fn manifests(release: &mut Value) -> Vec<&mut String> {
    let mut out = Vec::new();
    let Value::Object(map) = release else {
        return out;
    };
    for (k, v) in map.iter_mut() {
        match (k.as_str(), v) {
            ("manifest", Value::String(s)) => out.push(s),
            ("hooks", Value::Array(hooks)) => {
                for h in hooks {
                    if let Some(Value::String(s)) = h.get_mut("manifest") {
                        out.push(s);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// A multi-document YAML manifest: each document that parses is masked as a Kubernetes object and
/// written back as YAML; one that does not parse goes through the detectors as text.
fn mask_manifest(text: &str, detector: &Detector, counts: &mut MaskCounts) -> String {
    let strict = Profile::strict();
    let mut out = String::with_capacity(text.len());
    for (i, doc) in split_documents(text).into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let parsed = serde_yaml_ng::from_str::<Value>(doc)
            .ok()
            .filter(Value::is_object);
        match parsed {
            Some(mut v) => {
                Masking::new(detector, &strict, counts, true).object(&mut v, &Hint::default());
                // Comments (helm's `# Source:` lines) are kept in front of the masked document.
                for line in doc
                    .lines()
                    .take_while(|l| l.starts_with('#') || l.is_empty())
                {
                    let mut bytes = line.as_bytes().to_vec();
                    counts.merge(&mask_text(detector, &mut bytes));
                    out.push_str(&String::from_utf8_lossy(&bytes));
                    out.push('\n');
                }
                match serde_yaml_ng::to_string(&v) {
                    Ok(y) => out.push_str(&y),
                    Err(_) => out.push_str(crate::profile::MARKER),
                }
            }
            None => {
                let mut bytes = doc.as_bytes().to_vec();
                counts.merge(&mask_text(detector, &mut bytes));
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    out
}

/// Splits at lines that are exactly `---`.
fn split_documents(text: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            docs.push(&text[start..pos]);
            start = pos + line.len();
        }
        pos += line.len();
    }
    docs.push(&text[start..]);
    docs.retain(|d| !d.trim().is_empty());
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(release: &Value) -> String {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(release.to_string().as_bytes())
            .expect("test step");
        STANDARD.encode(STANDARD.encode(enc.finish().expect("test step")))
    }

    fn decode(s: &str) -> Value {
        let gz = STANDARD
            .decode(STANDARD.decode(s).expect("test step"))
            .expect("test step");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .expect("test step");
        serde_json::from_slice(&out).expect("test step")
    }

    #[test]
    fn release_values_and_rendered_secrets_are_masked_and_the_release_still_decodes() {
        let d = Detector::builtin().expect("test step");
        let release = serde_json::json!({
            "name": "web", "version": 2,
            "config": {"db": {"password": "hunter2-planted"}, "replicas": 3},
            "chart": {"values": {"aws": "AKIAIOSFODNN7EXAMPLE"}},
            "manifest": "---\n# Source: web/templates/secret.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: web\ndata:\n  pw: aHVudGVyMi1wbGFudGVk\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  x: plain\n",
        });
        let mut counts = MaskCounts::default();
        let masked = mask_release(&encode(&release), &d, &mut counts).expect("test step");
        let back = decode(&masked);
        let text = back.to_string();
        assert!(!text.contains("hunter2-planted"), "{text}");
        assert!(!text.contains("aHVudGVyMi1wbGFudGVk"), "{text}");
        assert!(!text.contains("AKIAIOSFODNN7EXAMPLE"), "{text}");
        assert_eq!(back["name"], "web");
        assert_eq!(back["config"]["replicas"], 3);
        assert!(back["manifest"]
            .as_str()
            .expect("test step")
            .contains("kind: ConfigMap"));
        assert!(counts.total() >= 3, "{counts:?}");
    }

    #[test]
    fn a_value_that_is_not_a_release_is_refused() {
        let d = Detector::builtin().expect("test step");
        let mut counts = MaskCounts::default();
        assert!(mask_release("not base64!", &d, &mut counts).is_none());
        let not_json = STANDARD.encode(STANDARD.encode(b"plain"));
        assert!(mask_release(&not_json, &d, &mut counts).is_none());
    }
}

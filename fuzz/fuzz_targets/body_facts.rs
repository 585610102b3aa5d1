//! `custos_policy::BodyFacts::extract` on any request body: never panics, a body that is not JSON is
//! never "known", and a `privileged: true` / `hostNetwork: true` that serde_json can see is never
//! missed (flags err towards "set", whatever duplicate keys or nesting surround them).
#![no_main]

use custos_policy::BodyFacts;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let facts = BodyFacts::extract(data);
    assert_eq!(facts.present, !data.is_empty());
    assert!(facts.registries.len() <= facts.images.len());

    // Facts travel into Cedar's context and the audit record as JSON.
    let json = serde_json::to_string(&facts).expect("facts serialize");
    let back: BodyFacts = serde_json::from_str(&json).expect("facts deserialize");
    assert_eq!(back, facts);

    match serde_json::from_slice::<Value>(data) {
        Err(_) if !data.is_empty() => assert!(!facts.known(), "unparsable body has known facts"),
        Ok(doc @ Value::Object(_)) => {
            // serde_json's map keeps the last of duplicate keys; the extractor must see it too.
            if mentions(&doc, "", "securityContext", "privileged") {
                assert!(
                    facts.privileged,
                    "missed privileged: {}",
                    String::from_utf8_lossy(data)
                );
            }
            if mentions(&doc, "", "", "hostNetwork") {
                assert!(facts.host_network, "missed hostNetwork");
            }
        }
        _ => {}
    }
});

/// Whether some member `key: true` sits in an object under `parent` (any parent when empty); array
/// items count as under their array's key, and keys compare ignoring ASCII case, as the extractor does.
fn mentions(value: &Value, under: &str, parent: &str, key: &str) -> bool {
    match value {
        Value::Object(members) => members.iter().any(|(k, v)| {
            ((parent.is_empty() || under.eq_ignore_ascii_case(parent))
                && k.eq_ignore_ascii_case(key)
                && *v == Value::Bool(true))
                || mentions(v, k, parent, key)
        }),
        Value::Array(items) => items.iter().any(|item| mentions(item, under, parent, key)),
        _ => false,
    }
}

//! The diff an approver reads: both objects without what the apiserver manages itself, masked,
//! rendered as YAML and compared line by line; and the changes masking hides from it, named by path.
//! Pure: no I/O, and nothing unmasked leaves it (raw objects are only compared).

use serde_json::Value;

use super::MAX_DIFF_BYTES;

/// Most paths listed in the note about changes that masking hides.
const MAX_HIDDEN_PATHS: usize = 20;
/// Fields the apiserver manages itself: they change on every write and say nothing to an approver.
const METADATA_NOISE: [&str; 5] = [
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
];

/// The diff from `before` to `after` (raw objects; `None`: absent), capped at [`MAX_DIFF_BYTES`],
/// and notes: the changes masking hides from it, or that nothing changes. Only `mask`'s output is shown.
pub(super) fn compare(
    before: Option<Value>,
    after: Option<Value>,
    mask: impl Fn(Value) -> Value,
) -> (Option<String>, Vec<String>) {
    let mut notes = Vec::new();
    let before = before.map(|raw| Side::new(raw, &mask));
    let after = after.map(|raw| Side::new(raw, &mask));
    let diff = match render_diff(
        before.as_ref().map(|s| &s.masked),
        after.as_ref().map(|s| &s.masked),
    ) {
        Ok(diff) => diff.map(|d| cap_diff(d, MAX_DIFF_BYTES)),
        Err(why) => {
            notes.push(why);
            None
        }
    };
    if let (Some(b), Some(a)) = (&before, &after) {
        let mut hidden = Vec::new();
        hidden_changes(&b.raw, &a.raw, &b.masked, &a.masked, "", &mut hidden);
        if !hidden.is_empty() {
            notes.push(format!(
                "masked values change (not shown): {}",
                hidden.join(", ")
            ));
        } else if diff.is_none() && notes.is_empty() {
            notes.push("the dry run changes nothing".into());
        }
    }
    (diff, notes)
}

/// One side of the diff, server-managed fields removed: raw (compared only) and masked (shown).
struct Side {
    raw: Value,
    masked: Value,
}

impl Side {
    fn new(mut raw: Value, mask: impl Fn(Value) -> Value) -> Self {
        strip_noise(&mut raw);
        let mut masked = mask(raw.clone());
        strip_noise(&mut masked);
        Side { raw, masked }
    }
}

/// Removes what the apiserver manages itself (see [`METADATA_NOISE`]) and `status`.
pub(super) fn strip_noise(object: &mut Value) {
    let Value::Object(map) = object else { return };
    map.shift_remove("status");
    if let Some(Value::Object(meta)) = map.get_mut("metadata") {
        for key in METADATA_NOISE {
            meta.shift_remove(key);
        }
    }
}

/// A unified diff `--- live` / `+++ after` of the objects in YAML (an absent side is empty); `None`
/// when they render the same.
pub(super) fn render_diff(
    before: Option<&Value>,
    after: Option<&Value>,
) -> Result<Option<String>, String> {
    let yaml = |v: Option<&Value>| match v {
        None => Ok(String::new()),
        Some(v) => serde_yaml_ng::to_string(v).map_err(|e| format!("rendering the diff: {e}")),
    };
    let (old, new) = (yaml(before)?, yaml(after)?);
    if old == new {
        return Ok(None);
    }
    let diff = similar::TextDiff::from_lines(&old, &new);
    Ok(Some(
        diff.unified_diff()
            .context_radius(3)
            .header("live", "after")
            .to_string(),
    ))
}

/// `diff` cut at a line so that it and the note saying so fit in `max` bytes.
pub(super) fn cap_diff(diff: String, max: usize) -> String {
    if diff.len() <= max {
        return diff;
    }
    let trailer = format!(
        "# diff truncated: {} bytes, the first {max} at most shown\n",
        diff.len()
    );
    let room = max.saturating_sub(trailer.len());
    // Cut after the last whole line that fits (a line boundary is a char boundary).
    let cut = diff.as_bytes()[..room]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let mut out = String::with_capacity(cut + trailer.len());
    out.push_str(&diff[..cut]);
    out.push_str(&trailer);
    out
}

/// Paths where the raw objects differ but their masked forms are the same: a change masking hides
/// from the diff (a Secret's value replaced), named so the approver knows it is there.
pub(super) fn hidden_changes(
    raw_before: &Value,
    raw_after: &Value,
    masked_before: &Value,
    masked_after: &Value,
    path: &str,
    out: &mut Vec<String>,
) {
    if raw_before == raw_after || out.len() >= MAX_HIDDEN_PATHS {
        return;
    }
    match (raw_before, raw_after, masked_before, masked_after) {
        (Value::Object(rb), Value::Object(ra), Value::Object(mb), Value::Object(ma)) => {
            for (key, rb_child) in rb {
                let (Some(ra_child), Some(mb_child), Some(ma_child)) =
                    (ra.get(key), mb.get(key), ma.get(key))
                else {
                    continue;
                };
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                hidden_changes(rb_child, ra_child, mb_child, ma_child, &child, out);
            }
        }
        (Value::Array(rb), Value::Array(ra), Value::Array(mb), Value::Array(ma))
            if rb.len() == ra.len() && mb.len() == rb.len() && ma.len() == rb.len() =>
        {
            for (i, (((rb, ra), mb), ma)) in rb.iter().zip(ra).zip(mb).zip(ma).enumerate() {
                hidden_changes(rb, ra, mb, ma, &format!("{path}[{i}]"), out);
            }
        }
        // A value (or a reshaped container): hidden when its masked forms are the same.
        _ if masked_before == masked_after => out.push(if path.is_empty() {
            "(the whole object)".into()
        } else {
            path.to_owned()
        }),
        _ => {}
    }
}

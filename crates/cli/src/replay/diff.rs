//! Structural difference of two normalised JSON documents (no I/O): object members by name, array
//! elements by position. A value masked on either side is never a difference.

use serde::Serialize;
use serde_json::Value;

use super::normalize::{is_masked, render, Seg};

/// One place where the replay's response differs from the recorded one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// Where (`data.colour`, `(status)`, `(body)`).
    pub path: String,
    /// The recorded value; absent when only the replay has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Value>,
    /// The replayed value; absent when only the recording has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<Value>,
}

/// The differences between `recorded` and `replayed`, in document order.
pub fn diff(recorded: &Value, replayed: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(recorded, replayed, &mut Vec::new(), &mut out);
    out
}

fn masked(v: &Value) -> bool {
    matches!(v, Value::String(s) if is_masked(s))
}

fn walk(a: &Value, b: &Value, path: &mut Vec<Seg>, out: &mut Vec<Difference>) {
    if masked(a) || masked(b) {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                path.push(Seg::Key(k.clone()));
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => walk(p, q, path, out),
                    (p, q) => {
                        if !p.is_some_and(masked) && !q.is_some_and(masked) {
                            out.push(Difference {
                                path: render(path),
                                recorded: p.cloned(),
                                replayed: q.cloned(),
                            });
                        }
                    }
                }
                path.pop();
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                path.push(Seg::Index(i));
                match (x.get(i), y.get(i)) {
                    (Some(p), Some(q)) => walk(p, q, path, out),
                    (p, q) => out.push(Difference {
                        path: render(path),
                        recorded: p.cloned(),
                        replayed: q.cloned(),
                    }),
                }
                path.pop();
            }
        }
        (x, y) if x == y => {}
        (x, y) => out.push(Difference {
            path: render(path),
            recorded: Some(x.clone()),
            replayed: Some(y.clone()),
        }),
    }
}

//! `custos_mask::TextMasker`, the stream masker for logs and terminals, on arbitrary bytes cut into
//! arbitrary chunks with idle flushes between some of them: it never panics, emits exactly as many
//! bytes as it took, and a planted secret does not show.
//!
//! Layout: byte 0 picks the planted secret, one of the built-in rules' `must_match` examples (or
//! none, past the last); byte 1 where in the text it goes, on a line of its own; bytes 2..10 are the
//! chunk plan, cycled: the low six bits plus one are a chunk's length (times 64 with bit 6), bit 7
//! an idle flush after it. The rest is the text.
//!
//! Checks: the output is as long as the input, for `mask_text` too. Without idle flushes every byte
//! of the secret that `mask_text` masks in the example alone is masked. With them, what shows of a
//! secret is at most its beginning (the bytes an idle flush emitted before the candidate had
//! evidence), never all of it.
#![no_main]

use std::sync::OnceLock;

use custos_mask::{mask_text, Detector, Rule, TextMasker, MASK_BYTE};
use libfuzzer_sys::fuzz_target;

fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| Detector::builtin().expect("built-in rules compile"))
}

/// An example and the runs of its bytes the masker hides when it is alone, per rule (bytes another
/// rule also hides are left out: each rule may start at its own evidence).
struct Planted {
    text: Vec<u8>,
    spans: Vec<Vec<usize>>,
}

fn planted() -> &'static [Planted] {
    static P: OnceLock<Vec<Planted>> = OnceLock::new();
    P.get_or_init(|| {
        let rules = Rule::builtin().expect("rules");
        let alone: Vec<Detector> = rules
            .iter()
            .map(|r| Detector::new(vec![r.clone()]).expect("compiles"))
            .collect();
        rules
            .iter()
            .flat_map(|r| r.examples.must_match.iter())
            .map(|e| {
                let text = e.as_bytes().to_vec();
                let masks: Vec<Vec<bool>> = alone
                    .iter()
                    .map(|d| {
                        let mut m = text.clone();
                        mask_text(d, &mut m);
                        m.iter().zip(&text).map(|(a, b)| a != b).collect()
                    })
                    .collect();
                let mut spans: Vec<Vec<usize>> = Vec::new();
                for (r, mine) in masks.iter().enumerate() {
                    let mut open = false;
                    for i in 0..text.len() {
                        let others = masks.iter().enumerate().any(|(o, m)| o != r && m[i]);
                        if mine[i] && !others {
                            if !open {
                                spans.push(Vec::new());
                                open = true;
                            }
                            spans.last_mut().expect("pushed").push(i);
                        } else if text[i] != b'\n' && text[i] != b'\r' {
                            open = false;
                        }
                    }
                }
                Planted { text, spans }
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let (head, text) = data.split_at(10);
    let plan = &head[2..10];
    let secret = planted().get(usize::from(head[0]) % (planted().len() + 1));
    let at = text.len() * usize::from(head[1]) / 256;
    let mut input = text[..at].to_vec();
    if let Some(p) = secret {
        input.push(b'\n');
        input.extend_from_slice(&p.text);
        input.push(b'\n');
    }
    input.extend_from_slice(&text[at..]);

    let mut masker = TextMasker::new(detector());
    let mut out = Vec::with_capacity(input.len());
    let (mut from, mut step, mut idle) = (0, 0, false);
    while from < input.len() {
        let c = plan[step % plan.len()];
        let len = (usize::from(c & 0x3f) + 1) * if c & 0x40 != 0 { 64 } else { 1 };
        let to = (from + len).min(input.len());
        masker.push(&input[from..to], &mut out);
        if c & 0x80 != 0 {
            masker.flush_idle(&mut out);
            idle = true;
        }
        from = to;
        step += 1;
    }
    masker.flush(&mut out);
    assert_eq!(out.len(), input.len(), "the stream keeps its length");

    let mut whole = input.clone();
    mask_text(detector(), &mut whole);
    assert_eq!(whole.len(), input.len(), "mask_text keeps the length");

    if let Some(p) = secret {
        let region = &out[at + 1..at + 1 + p.text.len()];
        for span in &p.spans {
            let shown: Vec<usize> = span
                .iter()
                .copied()
                .filter(|&i| region[i] != MASK_BYTE)
                .collect();
            if idle {
                assert!(shown.len() < span.len(), "a planted secret shows whole");
                assert!(
                    shown.iter().zip(span).all(|(a, b)| a == b),
                    "a planted secret shows more than its beginning"
                );
            } else {
                assert!(shown.is_empty(), "a planted secret shows");
            }
        }
    }
});

//! Stream-masker properties: length kept, no panic on any bytes, no planted secret survives any chunking
//! or any interleaving of idle flushes.

use std::sync::OnceLock;

use custos_mask::{mask_text, Detector, Rule, TextMasker, MASK_BYTE};
use proptest::prelude::*;

fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| Detector::builtin().expect("detector"))
}

/// Feeds `input` in pieces cut at `splits` (any values; reduced modulo the length).
fn stream(input: &[u8], splits: &[usize]) -> Vec<u8> {
    let mut cuts: Vec<usize> = splits.iter().map(|s| s % (input.len() + 1)).collect();
    cuts.push(0);
    cuts.push(input.len());
    cuts.sort_unstable();
    let mut m = TextMasker::new(detector());
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        m.push(&input[w[0]..w[1]], &mut out);
    }
    m.flush(&mut out);
    out
}

/// Feeds `input` in chunks of the sizes in `ops` (cycled), with an idle flush after each chunk whose
/// flag is set.
fn stream_ops(input: &[u8], ops: &[(usize, bool)]) -> Vec<u8> {
    let mut m = TextMasker::new(detector());
    let mut out = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < input.len() {
        let (n, idle) = ops
            .get(i % ops.len().max(1))
            .copied()
            .unwrap_or((input.len(), false));
        let end = (at + n.max(1)).min(input.len());
        m.push(&input[at..end], &mut out);
        if idle {
            m.flush_idle(&mut out);
        }
        at = end;
        i += 1;
    }
    m.flush(&mut out);
    out
}

fn ops() -> impl Strategy<Value = Vec<(usize, bool)>> {
    proptest::collection::vec((1usize..300, any::<bool>()), 1..40)
}

/// Every built-in rule's `must_match` examples, with the rule id.
fn examples() -> &'static [(String, String)] {
    static E: OnceLock<Vec<(String, String)>> = OnceLock::new();
    E.get_or_init(|| {
        Rule::builtin()
            .expect("rules")
            .into_iter()
            .flat_map(|r| {
                let id = r.id.clone();
                r.examples
                    .must_match
                    .into_iter()
                    .map(move |e| (id.clone(), e))
            })
            .collect()
    })
}

/// `text` with colour escapes inserted before the characters at `cuts` (modulo its length), and
/// which bytes of the result belong to an escape.
fn colour_at(text: &str, cuts: &[usize]) -> (String, Vec<bool>) {
    let (mut out, mut esc) = (String::new(), Vec::new());
    for (i, c) in text.char_indices() {
        if cuts.iter().any(|k| k % text.len() == i) {
            let e = format!("\x1b[3{}m", i % 8);
            esc.extend(std::iter::repeat_n(true, e.len()));
            out.push_str(&e);
        }
        out.push(c);
        esc.extend(std::iter::repeat_n(false, c.len_utf8()));
    }
    (out, esc)
}

/// Each built-in rule alone.
fn single_rules() -> &'static [Detector] {
    static S: OnceLock<Vec<Detector>> = OnceLock::new();
    S.get_or_init(|| {
        Rule::builtin()
            .expect("rules")
            .into_iter()
            .map(|r| Detector::new(vec![r]).expect("compiles"))
            .collect()
    })
}

/// The secrets in `text`, rule by rule: the positions each rule alone masks and no other rule does
/// (where two rules overlap, each may start masking at its own evidence), in runs split where a byte
/// left as is (other than a line break or an escape) separates them.
fn secret_spans(text: &[u8], esc: &[bool]) -> Vec<Vec<usize>> {
    let masks: Vec<Vec<bool>> = single_rules()
        .iter()
        .map(|d| {
            let mut m = text.to_vec();
            mask_text(d, &mut m);
            m.iter().zip(text).map(|(a, b)| a != b).collect()
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
                if let Some(s) = spans.last_mut() {
                    s.push(i);
                }
            } else if !(esc[i] || text[i] == b'\n' || text[i] == b'\r') {
                open = false;
            }
        }
    }
    spans
}

const PLANTED: &[&str] = &[
    "AKIAZ7QJ2MBX4LNEPW3K",
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpib3QifQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU",
    "4111 1111 1111 1111",
    "5500000000000004",
];

/// Drops ANSI CSI sequences (the forms `colour` inserts), to check what a terminal would show.
fn visible(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The secret with colour escapes inserted at `cuts`.
fn colour(secret: &str, cuts: &[usize]) -> String {
    let mut out = String::new();
    for (i, c) in secret.chars().enumerate() {
        if cuts.iter().any(|k| k % secret.len() == i) {
            out.push_str("\x1b[3");
            out.push(char::from(b'0' + (i % 8) as u8));
            out.push('m');
        }
        out.push(c);
    }
    out.push_str("\x1b[0m");
    out
}

/// Surrounding text: log-ish words and separators, sometimes long, so secrets land anywhere.
fn filler() -> impl Strategy<Value = String> {
    proptest::string::string_regex("([a-z]{1,8}[ =:\n]){0,600}").expect("filler regex")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_keep_their_length(input in proptest::collection::vec(any::<u8>(), 0..12_000),
                                   splits in proptest::collection::vec(any::<usize>(), 0..12),
                                   ops in ops()) {
        let mut one = input.clone();
        mask_text(detector(), &mut one);
        prop_assert_eq!(one.len(), input.len());
        prop_assert_eq!(stream(&input, &splits).len(), input.len());
        prop_assert_eq!(stream_ops(&input, &ops).len(), input.len());
    }

    /// Every rule's examples, coloured and planted in log-ish text, fed in random chunks with random
    /// idle flushes. Without idle flushes the stream masks every byte the whole-text masker masks.
    /// With them, a secret may show only the bytes an idle flush emitted before its evidence
    /// (`AKI` of `AKIA...`, five digits of a card): a beginning, never all of it; once masking
    /// starts inside a secret it does not stop.
    #[test]
    fn every_rule_example_survives_no_chunking_or_idle_flush(
        pre in filler(), post in filler(),
        which in 0..examples().len(),
        colours in proptest::collection::vec(any::<usize>(), 0..3),
        ops in ops(),
    ) {
        let (id, example) = &examples()[which];
        let (example, esc) = colour_at(example, &colours);
        let input = format!("{pre}\n{example}\n{post}");
        let out = stream_ops(input.as_bytes(), &ops);
        prop_assert_eq!(out.len(), input.len());
        let region = &out[pre.len() + 1..pre.len() + 1 + example.len()];
        let idle = ops.iter().any(|o| o.1);
        let mut whole = example.clone().into_bytes();
        mask_text(detector(), &mut whole);
        prop_assert!(whole != example.as_bytes(), "{}: example not masked alone", id);
        if !idle {
            let missed = (0..whole.len()).any(|i| whole[i] != example.as_bytes()[i] && region[i] != MASK_BYTE);
            prop_assert!(!missed, "{}: {:?} shows {:?}", id, example, String::from_utf8_lossy(region));
            return Ok(());
        }
        for span in secret_spans(example.as_bytes(), &esc) {
            let shown: Vec<usize> = span.iter().copied().filter(|&i| region[i] != MASK_BYTE).collect();
            prop_assert!(shown.len() < span.len(), "{}: {:?} shown whole", id, example);
            prop_assert!(shown.iter().enumerate().all(|(k, &i)| span[k] == i),
                "{}: {:?} shows more than a beginning: {:?}", id, example, String::from_utf8_lossy(region));
        }
    }

    #[test]
    fn planted_secret_survives_no_chunking(pre in filler(), post in filler(),
                                           which in 0..PLANTED.len(),
                                           splits in proptest::collection::vec(any::<usize>(), 0..16)) {
        let secret = PLANTED[which];
        let input = format!("{pre} {secret} {post}");
        let out = stream(input.as_bytes(), &splits);
        prop_assert_eq!(out.len(), input.len());
        let out = String::from_utf8_lossy(&out);
        prop_assert!(!out.contains(secret), "leaked with splits {:?}", splits);
        let mut whole = input.clone().into_bytes();
        mask_text(detector(), &mut whole);
        prop_assert!(!String::from_utf8_lossy(&whole).contains(secret));
    }

    #[test]
    fn coloured_secret_survives_no_chunking(pre in filler(), post in filler(),
                                            which in 0..PLANTED.len(),
                                            colours in proptest::collection::vec(any::<usize>(), 0..4),
                                            splits in proptest::collection::vec(any::<usize>(), 0..16)) {
        let secret = PLANTED[which];
        let input = format!("{pre} {} {post}", colour(secret, &colours));
        let out = stream(input.as_bytes(), &splits);
        prop_assert_eq!(out.len(), input.len());
        prop_assert!(!visible(&out).contains(secret), "leaked with splits {:?}", splits);
    }
}

#[test]
fn big_pem_block_is_masked_across_chunks() {
    let body: String = (0..200).map(|i| format!("{:064}\n", i)).collect();
    let input = format!(
        "log\n-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\nafter\n"
    );
    for chunk in [1usize, 7, 100, 4096, 100_000] {
        let mut m = TextMasker::new(detector());
        let mut out = Vec::new();
        for c in input.as_bytes().chunks(chunk) {
            m.push(c, &mut out);
        }
        m.flush(&mut out);
        assert_eq!(out.len(), input.len());
        let out = String::from_utf8(out).expect("ascii");
        assert!(out.starts_with("log\n*****"), "chunk {chunk}");
        assert!(out.ends_with("\nafter\n"), "chunk {chunk}");
        assert!(
            !out.contains("0000000000000001") && !out.contains("BEGIN"),
            "chunk {chunk}"
        );
    }
}

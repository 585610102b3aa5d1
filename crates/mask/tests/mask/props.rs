//! Stream-masker properties: length kept, no panic on any bytes, no planted secret survives any chunking.

use std::sync::OnceLock;

use custos_mask::{mask_text, Detector, TextMasker};
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
                                   splits in proptest::collection::vec(any::<usize>(), 0..12)) {
        let mut one = input.clone();
        mask_text(detector(), &mut one);
        prop_assert_eq!(one.len(), input.len());
        prop_assert_eq!(stream(&input, &splits).len(), input.len());
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

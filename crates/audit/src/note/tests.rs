//! Vectors from golang.org/x/mod/sumdb/note's note_test.go (keys, a signed note, Open cases), from
//! c2sp.org/signed-note's example, and real signed tree heads of sum.golang.org (the Go checksum
//! database) verified with its published key.

use super::*;

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter() -> VerifierKey {
    VerifierKey::parse(PETER_VKEY).expect("peter")
}

fn enoch() -> VerifierKey {
    VerifierKey::parse(ENOCH_VKEY).expect("enoch")
}

#[test]
fn go_verifier_key_parses_and_manglings_do_not() {
    let k = peter();
    assert_eq!(k.to_string(), PETER_VKEY);
    assert_eq!(k.id(), 0xc74f20a3);
    let b = PETER_VKEY.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if i != 0 || j != b.len() {
                assert!(
                    VerifierKey::parse(&PETER_VKEY[i..j]).is_err(),
                    "substring {i}..{j}"
                );
            }
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        if let Ok(s) = std::str::from_utf8(&m) {
            assert!(VerifierKey::parse(s).is_err(), "mangled at {i}: {s}");
        }
    }
    // Wrong key length and unknown algorithm, each with the key hash adjusted (note_test.go).
    assert!(VerifierKey::parse(
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
    )
    .is_err());
    assert!(matches!(
        VerifierKey::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(KeyError::UnsupportedType(_))
    ));
}

#[test]
fn go_signer_key_parses_signs_and_matches_its_verifier() {
    let s = SignerKey::parse(PETER_SKEY).expect("signer");
    assert_eq!(s.to_private_string(), PETER_SKEY);
    assert_eq!(s.verifier(), peter());
    assert!(!format!("{s:?}").contains("AYEK"), "Debug hides the secret");
    for i in 0..PETER_SKEY.len() {
        for j in i + 1..=PETER_SKEY.len() {
            if i != 0 || j != PETER_SKEY.len() {
                assert!(
                    SignerKey::parse(&PETER_SKEY[i..j]).is_err(),
                    "substring {i}..{j}"
                );
            }
        }
    }
    // TestSign: Ed25519 is deterministic, so the note is byte-for-byte Go's.
    let signed = sign(TEXT, &[&s]).expect("sign");
    assert_eq!(signed, format!("{TEXT}\n{PETER_SIG}"));
    assert!(sign("abc", &[&s]).is_err(), "text without final newline");
}

#[test]
fn go_open_cases() {
    let both = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let n = open(&both, &[peter()]).expect("one of two verifies");
    assert_eq!(n.text, TEXT);
    assert_eq!(n.verified.len(), 1);
    assert_eq!(n.unverified.len(), 1);
    assert_eq!(n.unverified[0].key_label(), "EnochRoot+af0cfe78");
    let n = open(&both, &[peter(), enoch()]).expect("both verify");
    assert_eq!(n.verified.len(), 2);
    assert!(matches!(
        open(&both, &[]),
        Err(NoteError::NoTrustedSignature { .. })
    ));

    // Too many signatures.
    let many = format!("{TEXT}\n{}", PETER_SIG.repeat(101));
    assert!(matches!(
        open(&many, &[peter()]),
        Err(NoteError::Malformed(_))
    ));

    // A trusted key's corrupted signature rejects the note.
    let bad = format!("{TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert_eq!(
        open(&bad, &[peter()]),
        Err(NoteError::InvalidSignature {
            key: "PeterNeumann+c74f20a3".into()
        })
    );

    // Duplicates are folded; a corrupted signature by an untrusted key is just unverified.
    let dup = format!(
        "{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{}ABCD{}",
        &ENOCH_SIG[..60],
        &ENOCH_SIG[60..]
    );
    let n = open(&dup, &[peter()]).expect("duplicates");
    assert_eq!(n.verified.len(), 1);
    assert_eq!(n.unverified.len(), 2);

    // Malformed encodings.
    for msg in [
        TEXT.to_owned(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{TEXT}\n{PETER_SIG}"),
        format!("{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
    ] {
        assert!(open(&msg, &[peter()]).is_err(), "{msg:?}");
    }

    // Modified text.
    let changed = format!("{}\n{PETER_SIG}", TEXT.replace("answer", "Answer"));
    assert!(matches!(
        open(&changed, &[peter()]),
        Err(NoteError::InvalidSignature { .. })
    ));
}

#[test]
fn c2sp_signed_note_example() {
    let key =
        VerifierKey::parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
            .expect("vkey");
    let note = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    assert_eq!(
        open(note, &[key]).expect("example verifies").text,
        "This is an example message.\n"
    );
}

/// The Go checksum database's public key, as compiled into the go command.
pub(crate) const SUMDB_VKEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

/// Signed tree heads served by sum.golang.org, as the go command cached them on this project's
/// machine (`$GOMODCACHE/cache/download/sumdb/sum.golang.org/lookup/k8s.io/kubernetes@v1.37.2` and
/// `$GOPATH/pkg/sumdb/sum.golang.org/latest`).
pub(crate) const SUMDB_NOTES: [&str; 2] = [
    "go.sum database tree\n70991285\nUDMD+tZJasiuDP4BOEsBar7NPLZCTCUvmmdToIY+OTc=\n\n— sum.golang.org Az3grlYpcKcfSFLwqBnUztFjLwu4+56vki7gN4YqmBwippwams0gjKHqyxiCD/RIn5sVA2do2IGeZpJlH+AsfLcirAE=\n",
    "go.sum database tree\n71688409\nYKbGT4uCWTZUsAOYw6xmft30GlLu7X7wgr12m2oxslA=\n\n— sum.golang.org Az3grkEb65Hc3ydJE0fZosggI9/Cn+Wjfb1q5hzaTNDFax9sqCkk0PXAFWkWk69zYxjU/T45UKoeGeNU1e5uS1KyHwA=\n",
];

#[test]
fn real_sum_golang_org_tree_heads_verify() {
    let key = VerifierKey::parse(SUMDB_VKEY).expect("sumdb key");
    for note in SUMDB_NOTES {
        open(note, std::slice::from_ref(&key)).expect("sum.golang.org signature");
        let tampered = note.replacen("7", "8", 1);
        assert!(open(&tampered, std::slice::from_ref(&key)).is_err());
    }
}

use std::borrow::Cow;

use proptest::prelude::*;

use super::*;

#[test]
fn accepted_paths_decode_as_the_apiserver_decodes_them() {
    let cases: &[(&str, &str, &str)] = &[
        ("root", "/", "/"),
        ("discovery", "/api", "/api"),
        (
            "trailing slash is kept, like r.URL.Path",
            "/apis/",
            "/apis/",
        ),
        (
            "plain resource path",
            "/api/v1/namespaces/default/pods",
            "/api/v1/namespaces/default/pods",
        ),
        (
            "escaped letter decodes",
            "/api/v1/namespaces/%64efault/pods",
            "/api/v1/namespaces/default/pods",
        ),
        (
            "lowercase hex decodes",
            "/api/v1/namespaces/%64%65fault",
            "/api/v1/namespaces/default",
        ),
        (
            "escaped UTF-8 decodes",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/caf%C3%A9",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/café",
        ),
        ("no-break space is not a control", "/a%C2%A0b", "/a\u{a0}b"),
        (
            "service proxy with scheme and port",
            "/api/v1/namespaces/ns/services/https:web:443/proxy/index.html",
            "/api/v1/namespaces/ns/services/https:web:443/proxy/index.html",
        ),
        (
            "every sub-delim, colon and at sign",
            "/a/b;c=d,e+f@g:h!$&'()*~_-.",
            "/a/b;c=d,e+f@g:h!$&'()*~_-.",
        ),
        ("three dots are a name", "/a/.../b", "/a/.../b"),
        ("dot-prefixed name", "/a/.kube/b..", "/a/.kube/b.."),
        ("encoded three dots are a name", "/a/%2e%2e%2e", "/a/..."),
        ("plus is not a space in a path", "/a+b", "/a+b"),
    ];
    for (name, raw, want) in cases {
        match validate_path(raw) {
            Ok(got) => assert_eq!(got, *want, "{name}: {raw}"),
            Err(err) => panic!("{name}: {raw} refused: {err}"),
        }
    }
}

#[test]
fn unescaped_paths_are_borrowed_not_copied() {
    assert!(matches!(
        validate_path("/api/v1/pods"),
        Ok(Cow::Borrowed(_))
    ));
    assert!(matches!(validate_path("/api/v1/p%6Fds"), Ok(Cow::Owned(_))));
}

#[test]
fn refused_paths_say_why() {
    use PathError::*;
    let separator = |escape: &str, offset| EncodedSeparator {
        escape: escape.to_owned(),
        offset,
    };
    let invalid = |character, offset| InvalidCharacter { character, offset };
    let cases: Vec<(&str, &str, PathError)> = vec![
        ("empty", "", NotAbsolute),
        ("relative", "api/v1/pods", NotAbsolute),
        ("asterisk form", "*", NotAbsolute),
        ("absolute form", "http://host/api", NotAbsolute),
        ("dot-dot segment", "/api/v1/../v2", DotSegment),
        ("dot segment", "/api/./v1", DotSegment),
        ("trailing dot-dot", "/api/..", DotSegment),
        ("dot-dot before trailing slash", "/api/../", DotSegment),
        ("only dot-dot", "/..", DotSegment),
        ("encoded dot-dot", "/api/%2e%2e/secrets", DotSegment),
        (
            "mixed-case encoded dot-dot",
            "/api/%2E%2e/secrets",
            DotSegment,
        ),
        ("half-encoded dot-dot", "/api/.%2e/secrets", DotSegment),
        ("encoded dot", "/api/%2E/v1", DotSegment),
        ("leading double slash", "//evil.example/api", EmptySegment),
        (
            "inner double slash",
            "/api/v1/namespaces//pods",
            EmptySegment,
        ),
        ("double trailing slash", "/api//", EmptySegment),
        (
            "encoded slash",
            "/api/v1/namespaces/a%2Fb",
            separator("%2F", 20),
        ),
        ("lowercase encoded slash", "/a%2fb", separator("%2f", 2)),
        ("encoded backslash", "/a%5Cb", separator("%5C", 2)),
        ("lowercase encoded backslash", "/a%5cb", separator("%5c", 2)),
        ("encoded percent", "/a%25", EncodedPercent { offset: 2 }),
        (
            "double-encoded dot-dot",
            "/%252e%252e",
            EncodedPercent { offset: 1 },
        ),
        ("encoded NUL", "/a%00", EncodedControl { offset: 2 }),
        ("encoded newline", "/a%0Ab", EncodedControl { offset: 2 }),
        ("encoded DEL", "/a%7f", EncodedControl { offset: 2 }),
        ("encoded C1 NEL", "/a%C2%85", EncodedControl { offset: 2 }),
        (
            "encoded C1 upper bound",
            "/a%c2%9F",
            EncodedControl { offset: 2 },
        ),
        ("raw NUL", "/a\0b", ControlCharacter { offset: 2 }),
        ("raw tab", "/\t", ControlCharacter { offset: 1 }),
        ("raw DEL", "/a\u{7f}", ControlCharacter { offset: 2 }),
        ("raw non-ASCII", "/é", NonAscii { offset: 1 }),
        ("raw backslash", "/a\\b", invalid('\\', 2)),
        ("raw space", "/a b", invalid(' ', 2)),
        ("raw question mark", "/a?b", invalid('?', 2)),
        ("raw hash", "/a#b", invalid('#', 2)),
        ("raw double quote", "/a\"b", invalid('"', 2)),
        ("raw angle bracket", "/a<b", invalid('<', 2)),
        ("raw brace", "/a{b", invalid('{', 2)),
        ("raw pipe", "/a|b", invalid('|', 2)),
        ("raw caret", "/a^b", invalid('^', 2)),
        ("raw backtick", "/a`b", invalid('`', 2)),
        ("raw square bracket", "/a[b", invalid('[', 2)),
        ("lone percent", "/a%", InvalidPercentEncoding { offset: 2 }),
        (
            "one hex digit",
            "/a%4",
            InvalidPercentEncoding { offset: 2 },
        ),
        (
            "non-hex digits",
            "/a%zz",
            InvalidPercentEncoding { offset: 2 },
        ),
        (
            "second digit not hex",
            "/%4g",
            InvalidPercentEncoding { offset: 1 },
        ),
        ("invalid UTF-8 byte", "/a%FF", NotUtf8),
        ("truncated UTF-8", "/a%C3", NotUtf8),
        ("overlong slash", "/a%C0%AFb", NotUtf8),
        ("three-byte overlong slash", "/a%e0%80%afb", NotUtf8),
        ("encoded surrogate", "/a%ED%A0%80", NotUtf8),
    ];
    for (name, raw, want) in cases {
        assert_eq!(validate_path(raw), Err(want), "{name}: {raw:?}");
    }
}

#[test]
fn length_limit_is_inclusive() {
    let at_limit = format!("/{}", "a".repeat(MAX_PATH_LEN - 1));
    assert!(validate_path(&at_limit).is_ok());
    let over = format!("/{}", "a".repeat(MAX_PATH_LEN));
    assert_eq!(
        validate_path(&over),
        Err(PathError::TooLong {
            len: MAX_PATH_LEN + 1,
            max: MAX_PATH_LEN
        })
    );
}

#[test]
fn errors_read_well_in_kubectl() {
    let err = validate_path("/api/v1/namespaces/a%2Fb").err();
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("request path contains the encoded separator %2F at byte 20; encoded '/' and '\\' are refused")
    );
}

/// Pieces that make the interesting paths: separators, dots, escapes good and bad.
fn path_piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/",
        "/",
        "/",
        ".",
        "..",
        "%2e",
        "%2E",
        "%2f",
        "%5c",
        "%25",
        "%",
        "%4",
        "%41",
        "%00",
        "%C2",
        "%85",
        "%C3%A9",
        "%FF",
        "a",
        "api",
        "v1",
        "namespaces",
        "pods",
        "\\",
        "é",
        ";",
        "?",
        "\0",
    ])
}

fn path_like() -> impl Strategy<Value = String> {
    prop::collection::vec(path_piece(), 0..16).prop_map(|pieces| pieces.concat())
}

fn assert_safe(decoded: &str) {
    let segments: Vec<&str> = decoded.split('/').collect();
    assert_eq!(segments.first(), Some(&""), "{decoded:?} is absolute");
    for (i, segment) in segments.iter().enumerate().skip(1) {
        assert!(
            *segment != "." && *segment != "..",
            "{decoded:?} has a dot segment"
        );
        assert!(
            !segment.is_empty() || i + 1 == segments.len(),
            "{decoded:?} has //"
        );
    }
    assert!(
        !decoded.chars().any(char::is_control),
        "{decoded:?} has a control"
    );
    assert!(!decoded.contains('\\'), "{decoded:?} has a backslash");
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic_and_accepted_ones_are_safe(raw in ".*") {
        if let Ok(decoded) = validate_path(&raw) {
            assert_safe(&decoded);
        }
    }

    #[test]
    fn path_like_strings_never_panic_and_accepted_ones_are_safe(raw in path_like()) {
        if let Ok(decoded) = validate_path(&raw) {
            assert_safe(&decoded);
        }
    }
}

//! `custos_kube::classify` on any method, path and query: never panics, and a path it accepts has the
//! structure the apiserver will route (decoded once, no `.`/`..`/empty segment, no separator or `%`
//! smuggled in by an escape, no control character).
#![no_main]

use custos_kube::path::MAX_PATH_LEN;
use custos_kube::request::is_long_running;
use custos_kube::{classify, validate_path};
use http::Method;
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let method = method(m);
    // Lossy: `classify` takes any `&str`, and U+FFFD exercises the non-ASCII refusals.
    let text = String::from_utf8_lossy(rest);
    // Split where a URI splits; with no `?` there is no query at all (not an empty one).
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (&*text, None),
    };
    let Ok(attrs) = classify(&method, path, query) else {
        return;
    };
    let _ = is_long_running(&attrs);

    assert!(path.len() <= MAX_PATH_LEN);
    let decoded = validate_path(path).expect("classify accepted the path");
    assert_eq!(attrs.path, decoded, "attributes carry the validated path");
    assert_eq!(
        percent_decode_str(path).decode_utf8().expect("utf-8"),
        attrs.path,
        "the path is decoded exactly once"
    );
    assert!(attrs.path.starts_with('/'));
    assert!(!attrs.path.contains(['\\', '%']), "{:?}", attrs.path);
    assert!(
        !attrs
            .path
            .chars()
            .any(|c| c.is_control() || ('\u{80}'..='\u{9f}').contains(&c)),
        "{:?}",
        attrs.path
    );
    let segments: Vec<&str> = attrs.path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        assert!(
            *segment != "." && *segment != "..",
            "dot segment in accepted path {:?}",
            attrs.path
        );
        assert!(
            !segment.is_empty() || i + 1 == segments.len(),
            "empty segment in accepted path {:?}",
            attrs.path
        );
    }
    // Every path-derived attribute is one segment (name may come from a fieldSelector).
    for part in [&attrs.namespace, &attrs.resource, &attrs.subresource]
        .into_iter()
        .chain(&attrs.parts)
    {
        assert!(!part.contains('/'), "{part:?} from {:?}", attrs.path);
        assert!(
            part != "." && part != "..",
            "{part:?} from {:?}",
            attrs.path
        );
    }
});

fn method(byte: u8) -> Method {
    match byte % 10 {
        0 => Method::GET,
        1 => Method::POST,
        2 => Method::PUT,
        3 => Method::PATCH,
        4 => Method::DELETE,
        5 => Method::HEAD,
        6 => Method::OPTIONS,
        7 => Method::CONNECT,
        8 => Method::TRACE,
        _ => Method::from_bytes(b"PROPFIND").expect("a valid extension method"),
    }
}

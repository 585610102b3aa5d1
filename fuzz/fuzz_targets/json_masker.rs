//! `custos_mask::JsonMasker`, the streaming Kubernetes JSON masker, on arbitrary bytes cut into
//! arbitrary chunks: it never panics, what it accepts comes out as JSON (one value per top-level
//! input value), the output does not depend on how the input was cut, and a Secret's data value
//! planted in the input never shows.
//!
//! Layout: byte 0 is the chunk length (plus one) of the second cut; the rest is the body. Half of
//! the runs wrap the body as the `items` of a SecretList with a planted Secret before it.
#![no_main]

use std::sync::OnceLock;

use custos_mask::{Detector, Hint, JsonMasker, Profile};
use libfuzzer_sys::fuzz_target;

fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| Detector::builtin().expect("built-in rules compile"))
}

/// base64 of "fuzz-planted-secret-value"
const PLANTED: &str = "ZnV6ei1wbGFudGVkLXNlY3JldC12YWx1ZQ==";

fn run(body: &[u8], chunk: usize) -> Result<Vec<u8>, custos_mask::JsonMaskError> {
    let mut m = JsonMasker::new(detector(), Profile::strict(), Hint::default(), 1 << 16);
    let mut out = Vec::new();
    for c in body.chunks(chunk.max(1)) {
        m.push(c, &mut out)?;
    }
    m.finish(&mut out)?;
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let wrapped = first & 0x80 != 0;
    let body: Vec<u8> = if wrapped {
        let mut b = format!(
            r#"{{"kind":"SecretList","apiVersion":"v1","metadata":{{}},"items":[{{"metadata":{{"name":"p"}},"data":{{"k":"{PLANTED}"}}}},"#
        )
        .into_bytes();
        b.extend_from_slice(rest);
        b.extend_from_slice(b"]}");
        b
    } else {
        rest.to_vec()
    };
    let whole = run(&body, body.len());
    let cut = run(&body, (first & 0x7f) as usize + 1);
    match (&whole, &cut) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "the output depends on the chunking");
            let mut values = serde_json::Deserializer::from_slice(a).into_iter::<serde_json::Value>();
            assert!(values.all(|v| v.is_ok()), "the output is not JSON");
            // Only the value planted in Secret data must go (the fuzzer may write it anywhere else).
            let elsewhere = rest.windows(PLANTED.len()).any(|w| w == PLANTED.as_bytes());
            if wrapped && !elsewhere {
                assert!(
                    !a.windows(PLANTED.len()).any(|w| w == PLANTED.as_bytes()),
                    "a planted Secret value survived"
                );
            }
        }
        (Err(_), Err(_)) => {}
        // A bound hit or malformed tail may surface at different points, but acceptance must not
        // depend on the chunking.
        _ => panic!("accepted with one chunking, refused with another: {whole:?} vs {cut:?}"),
    }
});

//! `custos_policy::impersonation_request` on any header map: never panics, never ignores an
//! impersonation header it was sent, and what it returns is consistent with the headers.
//!
//! Input: lines `<selector><name>:<value>`. The selector picks one of the four impersonation header
//! names (for `Impersonate-Extra-`, `<name>` is the key suffix) or takes `<name>` as is; lines whose
//! name or value is not a valid header name or value are skipped, as hyper would refuse them.
#![no_main]

use custos_kube::impersonation::{
    IMPERSONATE_EXTRA_PREFIX, IMPERSONATE_GROUP, IMPERSONATE_UID, IMPERSONATE_USER,
};
use custos_policy::{impersonation_request, AUTHENTICATED_GROUP};
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some((&selector, line)) = line.split_first() else {
            continue;
        };
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        let name: Vec<u8> = match selector % 8 {
            0 => IMPERSONATE_USER.into(),
            1 => IMPERSONATE_GROUP.into(),
            2 => IMPERSONATE_UID.into(),
            3 | 4 => [IMPERSONATE_EXTRA_PREFIX.as_bytes(), name].concat(),
            _ => name.to_vec(),
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&name),
            HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        headers.append(name, value);
    }

    let count = |name: &str| headers.get_all(name).iter().count();
    let extras = headers
        .keys()
        .filter(|n| n.as_str().starts_with(IMPERSONATE_EXTRA_PREFIX))
        .map(|n| headers.get_all(n).iter().count())
        .sum::<usize>();
    let asked =
        count(IMPERSONATE_USER) + count(IMPERSONATE_GROUP) + count(IMPERSONATE_UID) + extras;

    match impersonation_request(&headers) {
        Ok(None) => assert_eq!(asked, 0, "impersonation headers ignored: {headers:?}"),
        Ok(Some(r)) => {
            assert_eq!(count(IMPERSONATE_USER), 1);
            assert!(count(IMPERSONATE_UID) <= 1);
            assert_eq!(r.groups.len(), count(IMPERSONATE_GROUP));
            assert_eq!(r.uid.is_some(), count(IMPERSONATE_UID) == 1);
            let values: usize = r.extra.values().map(Vec::len).sum();
            assert_eq!(values, extras, "every extra value is kept");
            for key in r.extra.keys() {
                assert_eq!(*key, key.to_lowercase(), "extra keys are lowercase");
            }
            assert_eq!(
                r.targets().len(),
                1 + r.groups.len() + usize::from(r.uid.is_some()) + values
            );
            let info = r.user_info();
            assert_eq!(info.username, r.user);
            assert_eq!(
                info.groups.iter().any(|g| g == AUTHENTICATED_GROUP),
                r.user != "system:anonymous" || r.groups.iter().any(|g| g == AUTHENTICATED_GROUP)
            );
        }
        Err(e) => {
            assert!(asked > 0, "error without impersonation headers: {e}");
            let _ = e.to_string();
        }
    }
});

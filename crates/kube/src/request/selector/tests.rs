use super::*;

/// `labels.Parse` outcomes, checked against apimachinery v0.34.4.
#[test]
fn label_selectors_parse_exactly_when_the_apiserver_parses_them() {
    let cases: &[(&str, bool)] = &[
        ("", true),
        ("   ", true),
        ("app", true),
        ("!app", true),
        ("app=web", true),
        ("app==web", true),
        ("app!=web", true),
        ("app=", true),
        ("app in (a,b)", true),
        ("app notin (a)", true),
        ("app in ()", true),
        ("app in (,a)", true),
        ("app in (a,,b)", true),
        ("app in (a,)", true),
        ("x in (foo,,baz),y,z notin ()", true),
        ("in in (in)", true),
        ("app>1", true),
        ("app<10", true),
        ("example.com/app=web", true),
        ("a-b_c.d=E-f_g.h", true),
        ("app=web,tier!=db", true),
        (" app = web , tier ", true),
        ("app\t=\nweb", true),
        ("app=web\0garbage", false),
        ("app, \0", false),
        ("app \0garbage!!(", true),
        ("app\0=web", true),
        ("app=", true),
        ("app in (a", false),
        ("app in a", false),
        ("app in", false),
        ("app=web,", false),
        (",app", false),
        ("app,,tier", false),
        ("=web", false),
        ("!app=web", false),
        ("app=(web)", false),
        ("app>a", false),
        ("app>", false),
        ("app>-1", false),
        ("app=-web", false),
        ("app=web-", false),
        ("-app", false),
        ("Example.com/app", false),
        ("/app", false),
        ("a/b/c", false),
        ("app=web space", false),
        ("app=é", false),
        ("app<=1", false),
        ("app===web", false),
        ("app!", false),
        (&"a".repeat(64), false),
        ("app notin", false),
        ("app=web\0", true),
        ("app,\0", false),
    ];
    for (selector, want) in cases {
        assert_eq!(is_valid_label_selector(selector), *want, "{selector:?}");
    }
    assert!(is_valid_label_selector(&"a".repeat(63)));
    assert!(is_valid_label_selector(&format!("app={}", "v".repeat(63))));
    assert!(!is_valid_label_selector(&format!("app={}", "v".repeat(64))));
    let long_prefix = format!("{}.{}/app", "a".repeat(63), "b".repeat(189));
    assert_eq!(long_prefix.len(), 257);
    assert!(is_valid_label_selector(&long_prefix));
    let too_long_prefix = format!("{}.{}/app", "a".repeat(63), "b".repeat(190));
    assert!(!is_valid_label_selector(&too_long_prefix));
}

/// `fields.ParseSelector` plus `RequiresExactMatch("metadata.name")`.
#[test]
fn field_selectors_pin_a_name_like_the_apiserver() {
    let cases: &[(&str, Option<Option<&str>>)] = &[
        ("", Some(None)),
        ("=", Some(None)),
        ("metadata.name=a", Some(Some("a"))),
        ("metadata.name==a", Some(Some("a"))),
        ("metadata.name!=a", Some(None)),
        ("metadata.name=b,metadata.name=a", Some(Some("a"))),
        ("metadata.name=a\\,b", Some(Some("a,b"))),
        ("metadata.name=a\\\\", Some(Some("a\\"))),
        ("metadata.name=a=b", None),
        ("metadata.name=a\\b", None),
        ("metadata.name=a\\", None),
        ("metadata.name", None),
        ("metadata.name=a,", Some(Some("a"))),
        (",,metadata.name=a", Some(Some("a"))),
        ("metadata.name=é", Some(Some("é"))),
        ("spec.nodeName=n1,metadata.name=x", Some(Some("x"))),
        ("a!=b=c", None),
        ("a=!=b", None),
    ];
    for (selector, want) in cases {
        let got = field_selector_exact_name(selector).ok();
        assert_eq!(got, want.map(|n| n.map(str::to_owned)), "{selector:?}");
    }
}

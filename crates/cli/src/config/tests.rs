use super::*;

#[test]
fn empty_file_gives_the_embedded_defaults() {
    let c = Config::from_yaml("").expect("defaults");
    assert_eq!(c, Config::default());
    c.validate().expect("defaults are valid");
}

#[test]
fn unknown_field_is_refused_with_its_name_and_line() {
    let err = Config::from_yaml("listen: 127.0.0.1:1\nlisten_port: 5\n").expect_err("refused");
    assert!(err.contains("listen_port"), "{err}");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn flags_override_the_file() {
    let file = "listen: 127.0.0.1:1111\nauthentication:\n  oidc:\n  - issuerURL: https://a.example\n    clientIDs: [a]\n";
    let mut c = Config::from_yaml(file).expect("parse");
    let o = Overrides {
        listen: Some("127.0.0.1:2222".into()),
        oidc_client_id: vec!["b".into()],
        ..Default::default()
    };
    c.apply(&o);
    c.validate().expect("valid");
    assert_eq!(c.listen, "127.0.0.1:2222");
    assert_eq!(c.authentication.oidc[0].issuer_url, "https://a.example");
    assert_eq!(c.authentication.oidc[0].client_ids, vec!["b".to_string()]);
}

#[test]
fn checkpoint_url_from_the_file_or_a_flag() {
    let file = "audit:\n  checkpointURL: https://witness.example/add\n  checkpointTokenFile: /run/token\n  checkpointCAFile: /etc/ca.pem\n";
    let mut c = Config::from_yaml(file).expect("parse");
    c.validate().expect("https is valid");
    assert_eq!(
        c.audit.checkpoint_url.as_deref(),
        Some("https://witness.example/add")
    );
    assert_eq!(
        c.audit.checkpoint_token_file.as_deref(),
        Some(Path::new("/run/token"))
    );
    assert_eq!(
        c.audit.checkpoint_ca_file.as_deref(),
        Some(Path::new("/etc/ca.pem"))
    );
    c.apply(&Overrides {
        checkpoint_url: Some("http://127.0.0.1:9000/checkpoint".into()),
        ..Default::default()
    });
    c.validate().expect("http on loopback is valid");
    assert_eq!(
        c.audit.checkpoint_url.as_deref(),
        Some("http://127.0.0.1:9000/checkpoint")
    );
}

#[test]
fn invalid_values_name_their_field() {
    let cases = [
        ("listen: nope\n", "listen"),
        ("opsListen: 1.2.3.4\n", "opsListen"),
        ("tls:\n  certFile: a.pem\n", "tls.keyFile"),
        ("authentication:\n  oidc:\n  - issuerURL: http://dex\n    clientIDs: [a]\n", "authentication.oidc[0].issuerURL"),
        ("authentication:\n  oidc:\n  - issuerURL: https://dex\n", "authentication.oidc[0].clientIDs"),
        ("authentication:\n  oidc:\n  - issuerURL: https://dex\n    clientIDs: [a]\n    signingAlgs: [HS256]\n", "authentication.oidc[0].signingAlgs"),
        ("limits:\n  maxBodyBytes: 0\n", "limits.maxBodyBytes"),
        ("audit:\n  checkpointURL: http://witness.example/\n", "audit.checkpointURL"),
        ("audit:\n  checkpointURL: https://u:p@witness.example/\n", "audit.checkpointURL"),
        ("audit:\n  checkpointURL: witness.example\n", "audit.checkpointURL"),
        ("audit:\n  checkpointTokenFile: /t\n", "audit.checkpointTokenFile"),
        ("audit:\n  checkpointCAFile: /ca.pem\n", "audit.checkpointCAFile"),
    ];
    for (yaml, field) in cases {
        let c = Config::from_yaml(yaml).expect("parses");
        match c.validate() {
            Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field, "{yaml}"),
            other => panic!("{yaml}: expected an invalid {field}, got {other:?}"),
        }
    }
}

#[test]
fn hostile_yaml_is_an_error_not_a_panic() {
    for junk in [
        "[",
        "listen: [1, 2]",
        "{{{{",
        "limits:\n  maxBodyBytes: -1\n",
        "\u{0}",
        "&a [*a]",
    ] {
        assert!(Config::from_yaml(junk).is_err(), "{junk:?}");
    }
}

#[test]
fn every_section_can_be_set_by_flags() {
    let mut c = Config::default();
    let o = Overrides {
        tls_name: vec!["custos.example".into()],
        max_body_bytes: Some(1024),
        max_header_bytes: Some(4096),
        oidc_issuer_url: Some("https://dex.example".into()),
        oidc_client_id: vec!["custos".into()],
        oidc_signing_algs: vec!["ES256".into()],
        oidc_required_claim: vec!["hd=example.com".into()],
        ..Default::default()
    };
    c.apply(&o);
    c.validate().expect("valid");
    assert_eq!(c.tls.names, vec!["custos.example".to_string()]);
    assert_eq!(c.limits.max_body_bytes, 1024);
    assert_eq!(c.limits.max_header_bytes, 4096);
    assert_eq!(
        c.authentication.oidc[0].signing_algs,
        vec!["ES256".to_string()]
    );
    assert_eq!(
        c.authentication.oidc[0].required_claims["hd"],
        "example.com"
    );
}

#[test]
fn a_required_claim_flag_without_equals_is_refused() {
    let mut c = Config::default();
    c.apply(&Overrides {
        oidc_issuer_url: Some("https://dex.example".into()),
        oidc_client_id: vec!["custos".into()],
        oidc_required_claim: vec!["nonsense".into()],
        ..Default::default()
    });
    match c.validate() {
        Err(ConfigError::Invalid { field, .. }) => {
            assert_eq!(field, "authentication.oidc[0].requiredClaims")
        }
        other => panic!("expected invalid requiredClaims, got {other:?}"),
    }
}

#[test]
fn a_log_name_that_could_never_sign_a_checkpoint_is_refused() {
    for name in ["custos\u{1}log", "two words", "a+b", ""] {
        let yaml = format!(
            "audit:\n  logName: {}\n",
            serde_json::to_string(name).expect("json")
        );
        let c = Config::from_yaml(&yaml).expect("parses");
        match c.validate() {
            Err(ConfigError::Invalid { field, .. }) => {
                assert_eq!(field, "audit.logName", "{name:?}")
            }
            other => panic!("{name:?}: expected audit.logName to be refused, got {other:?}"),
        }
    }
}

#[test]
fn recordings_are_in_the_data_dir_unless_a_directory_is_configured() {
    let c = Config::from_yaml("dataDir: /var/lib/custos\n").expect("parse");
    c.validate().expect("valid");
    assert_eq!(c.recordings.dir, None);
    assert_eq!(
        c.recordings_dir(),
        Path::new("/var/lib/custos").join("recordings")
    );

    let mut c =
        Config::from_yaml("dataDir: /var/lib/custos\nrecordings:\n  dir: /mnt/shared/recordings\n")
            .expect("parse");
    c.validate().expect("valid");
    assert_eq!(c.recordings_dir(), Path::new("/mnt/shared/recordings"));
    // A directory that does not exist yet is fine: serve creates it.
    c.apply(&Overrides {
        recordings: Some("/mnt/other/recordings".into()),
        ..Default::default()
    });
    c.validate().expect("valid");
    assert_eq!(c.recordings_dir(), Path::new("/mnt/other/recordings"));
}

#[test]
fn a_relative_recordings_dir_is_taken_as_given_like_data_dir() {
    // Both are relative to the working directory; neither is resolved against the other.
    let c = Config::from_yaml("dataDir: state\nrecordings:\n  dir: shared/recordings\n")
        .expect("parse");
    c.validate().expect("valid");
    assert_eq!(c.recordings_dir(), Path::new("shared/recordings"));
}

#[test]
fn an_unusable_recordings_dir_is_refused_with_its_field() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let existing = tmp.path().join("existing");
    std::fs::create_dir(&existing).expect("mkdir");
    let yaml = |dir: &Path| {
        format!(
            "recordings:\n  dir: {}\n",
            serde_json::to_string(&dir.display().to_string()).expect("json")
        )
    };
    Config::from_yaml(&yaml(&existing))
        .expect("parse")
        .validate()
        .expect("an existing directory is valid");
    for (text, why) in [
        ("recordings:\n  dir: \"\"\n".to_owned(), "must not be empty"),
        (yaml(&file), "is not a directory"),
    ] {
        let c = Config::from_yaml(&text).expect("parses");
        match c.validate() {
            Err(ConfigError::Invalid { field, message }) => {
                assert_eq!(field, "recordings.dir", "{text}");
                assert!(message.contains(why), "{text}: {message}");
            }
            other => panic!("{text}: expected recordings.dir to be refused, got {other:?}"),
        }
    }
    // The same check for the flag (and CUSTOS_RECORDINGS).
    let mut c = Config::default();
    c.apply(&Overrides {
        recordings: Some(file.clone()),
        ..Default::default()
    });
    match c.validate() {
        Err(ConfigError::Invalid { field, .. }) => assert_eq!(field, "recordings.dir"),
        other => panic!("expected recordings.dir to be refused, got {other:?}"),
    }
}

#[test]
fn the_recordings_section_refuses_unknown_fields_and_wrong_types() {
    for (text, needle) in [
        ("recordings:\n  directory: /r\n", "directory"),
        ("recordings:\n  dir: /r\n  mode: 0700\n", "mode"),
        ("recordings: /r\n", "recordings"),
        ("recordings:\n  dir: [a, b]\n", "recordings.dir"),
    ] {
        let err = Config::from_yaml(text).expect_err(text);
        assert!(err.contains(needle), "{text}: {err}");
    }
}

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";

/// A secret file with `mode` in a fresh directory.
fn secret_file(dir: &Path, mode: u32) -> PathBuf {
    let path = dir.join(format!("secret-{mode:o}"));
    std::fs::write(&path, SECRET).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    path
}

fn parse(yaml: &str) -> Result<WebhookConfig, serde_yaml_ng::Error> {
    serde_yaml_ng::from_str(yaml)
}

#[test]
fn the_documented_yaml_parses_with_defaults() {
    let hooks: Vec<WebhookConfig> = serde_yaml_ng::from_str(
        r#"
- url: https://hooks.slack.com/services/T000/B000/XXXX
  format: slack
  secretFile: /etc/custos/webhooks/slack.secret
  events: [review.requested, review.expired]
- url: https://tickets.example.com/hooks/custos
  secretFile: /etc/custos/webhooks/tickets.secret
  caFile: /etc/custos/webhooks/tickets-ca.pem
  timeoutSeconds: 10
"#,
    )
    .expect("parses");
    assert_eq!(hooks[0].format, Format::Slack);
    assert_eq!(
        hooks[0].events,
        Some(vec![EventKind::ReviewRequested, EventKind::ReviewExpired])
    );
    assert!(hooks[0].wants(EventKind::ReviewRequested));
    assert!(!hooks[0].wants(EventKind::GrantCreated));
    assert_eq!(hooks[0].timeout(), Duration::from_secs(5), "default");
    assert_eq!(hooks[1].format, Format::Generic, "default");
    assert!(
        hooks[1].wants(EventKind::GrantRevoked),
        "no filter: every kind"
    );
    assert_eq!(hooks[1].timeout_seconds, 10);
}

#[test]
fn unknown_fields_and_kinds_are_refused() {
    let err = parse("url: https://x.example/\nsecretFile: /s\nsecret: inline\n")
        .expect_err("unknown field");
    assert!(err.to_string().contains("unknown field `secret`"), "{err}");
    let err = parse("url: https://x.example/\nsecretFile: /s\ntimeoutSecond: 3\n")
        .expect_err("misspelt field");
    assert!(err.to_string().contains("timeoutSecond"), "{err}");
    let err = parse("url: https://x.example/\nsecretFile: /s\nevents: [review.opened]\n")
        .expect_err("unknown kind");
    assert!(err.to_string().contains("review.opened"), "{err}");
    assert!(parse("url: https://x.example/\nsecretFile: /s\nformat: teams\n").is_err());
    assert!(
        parse("url: https://x.example/\n").is_err(),
        "secretFile is required"
    );
}

#[test]
fn only_https_or_loopback_http_urls_are_accepted() {
    for ok in [
        "https://hooks.slack.com/services/T/B/X",
        "https://10.0.0.1:8443/hook?tenant=a",
        "http://127.0.0.1:9000/hook",
        "http://localhost:9000/",
        "http://[::1]:9000/",
    ] {
        check_url(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "http://hooks.example.com/",
        "http://10.0.0.1/",
        "http://localhost.evil.example/",
        "ftp://hooks.example.com/",
        "https://user:pw@hooks.example.com/",
        "hooks.example.com/hook",
        "",
    ] {
        assert!(
            matches!(check_url(bad), Err(ConfigError::Url(_))),
            "{bad} accepted"
        );
    }
    let err = check_url("http://hooks.example.com/x").expect_err("plain http");
    assert!(
        err.to_string().starts_with("url: "),
        "names its field: {err}"
    );
    assert!(err.to_string().contains("use https"), "{err}");
}

#[test]
fn http_to_a_remote_host_is_refused_before_anything_is_read() {
    let dir = tempfile::tempdir().expect("dir");
    let config = WebhookConfig::new(
        "http://hooks.example.com/custos",
        Format::Generic,
        dir.path().join("missing"),
    );
    assert!(matches!(config.check(), Err(ConfigError::Url(_))));
}

#[cfg(unix)]
#[test]
fn a_secret_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    for mode in [0o644, 0o604, 0o660, 0o666] {
        let config = WebhookConfig::new(
            "https://hooks.example.com/",
            Format::Generic,
            secret_file(dir.path(), mode),
        );
        match config.check() {
            Err(ConfigError::InsecurePermissions { mode: seen, .. }) => assert_eq!(seen, mode),
            other => panic!("mode {mode:o}: {other:?}"),
        }
    }
    let err = WebhookConfig::new(
        "https://h.example/",
        Format::Slack,
        secret_file(dir.path(), 0o644),
    )
    .check()
    .expect_err("refused");
    assert!(
        err.to_string().contains("mode 644") && err.to_string().contains("chmod 600"),
        "{err}"
    );
    for mode in [0o600, 0o400, 0o640, 0o440] {
        let config = WebhookConfig::new(
            "https://hooks.example.com/",
            Format::Generic,
            secret_file(dir.path(), mode),
        );
        config
            .check()
            .unwrap_or_else(|e| panic!("mode {mode:o}: {e}"));
    }
}

#[test]
fn a_missing_or_short_secret_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let config = WebhookConfig::new(
        "https://h.example/",
        Format::Generic,
        dir.path().join("none"),
    );
    assert!(matches!(
        config.check(),
        Err(ConfigError::SecretFile { .. })
    ));
    let short = secret_file(dir.path(), 0o600);
    std::fs::write(&short, "  too short\n").expect("write");
    let err = WebhookConfig::new("https://h.example/", Format::Generic, short)
        .check()
        .expect_err("short");
    assert!(err.to_string().contains("openssl rand -hex 32"), "{err}");
}

#[test]
fn the_secret_is_trimmed_and_kept_out_of_debug_output() {
    let dir = tempfile::tempdir().expect("dir");
    let path = secret_file(dir.path(), 0o600);
    let loaded = WebhookConfig::new("https://h.example/a/secret/path", Format::Slack, path)
        .load()
        .expect("loads");
    assert_eq!(loaded.secret.current().bytes(), SECRET.trim().as_bytes());
    assert_eq!(loaded.endpoint, "https://h.example", "no path in reports");
    assert!(!format!("{loaded:?}").contains("0123456789abcdef"));
}

#[test]
fn empty_event_filters_bad_timeouts_and_bad_ca_files_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = WebhookConfig::new(
        "https://h.example/",
        Format::Generic,
        secret_file(dir.path(), 0o600),
    );
    config.events = Some(vec![]);
    assert!(matches!(config.check(), Err(ConfigError::Events(_))));
    config.events = None;
    for bad in [0, MAX_TIMEOUT_SECONDS + 1] {
        config.timeout_seconds = bad;
        assert!(matches!(config.check(), Err(ConfigError::Timeout(n)) if n == bad));
    }
    config.timeout_seconds = 5;
    config.ca_file = Some(dir.path().join("missing-ca.pem"));
    assert!(matches!(config.check(), Err(ConfigError::CaFile { .. })));
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").expect("write");
    config.ca_file = Some(not_pem);
    let err = config.check().expect_err("no certificate");
    assert!(err.to_string().starts_with("caFile "), "{err}");
}

#[test]
fn a_rotated_key_file_is_read_again_and_a_bad_rotation_keeps_the_last_good_key() {
    use std::time::{Duration, SystemTime};
    let dir = tempfile::tempdir().expect("dir");
    let path = secret_file(dir.path(), 0o600);
    let key = KeyFile::open(&path).expect("opens");
    assert_eq!(key.current().bytes(), SECRET.trim().as_bytes());
    // Each rewrite gets its own modification time, so the change is seen even on coarse clocks.
    let rewrite = |content: &str, age: u64| {
        std::fs::write(&path, content).expect("write");
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + age))
            .expect("mtime");
    };
    let rotated = "fedcba9876543210fedcba9876543210fedcba9876543210";
    rewrite(rotated, 1);
    assert_eq!(key.current().bytes(), rotated.as_bytes(), "the new key");
    rewrite("too-short", 2);
    assert_eq!(
        key.current().bytes(),
        rotated.as_bytes(),
        "a key that fails the checks is not taken"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        rewrite(SECRET, 3);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(
            key.current().bytes(),
            rotated.as_bytes(),
            "a key others can read is not taken"
        );
        // Fixing the mode alone (content and modification time unchanged) is seen.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(
            key.current().bytes(),
            SECRET.trim().as_bytes(),
            "the key is taken once its mode is fixed"
        );
    }
    std::fs::remove_file(&path).expect("rm");
    assert_eq!(
        key.current().bytes(),
        SECRET.trim().as_bytes(),
        "a vanished file keeps the key"
    );
}

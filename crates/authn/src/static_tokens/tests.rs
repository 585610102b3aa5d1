use super::*;

const ALICE: &str = "alice-token-0123456789abcdef0123456789abcdef";
const BOB: &str = "bob-token-0123456789abcdef0123456789abcdef";

fn parse(text: &str) -> Result<StaticTokens, ConfigError> {
    StaticTokens::parse(text, Path::new("tokens.csv"))
}

fn line_error(text: &str) -> (usize, String) {
    match parse(text) {
        Err(ConfigError::StaticTokenFile { line, reason, .. }) => (line, reason),
        other => panic!("expected a line error, got {other:?}"),
    }
}

#[test]
fn apiserver_format_maps_user_uid_and_groups() {
    let tokens = parse(&format!(
        "# break-glass\n\n{ALICE},alice,1001,\"system:masters, ops\"\n{BOB},bob,,\n"
    ))
    .expect("parses");
    assert_eq!(tokens.len(), 2);
    let alice = tokens.authenticate(ALICE).expect("alice");
    assert_eq!(alice.user.username, "alice");
    assert_eq!(alice.user.uid.as_deref(), Some("1001"));
    assert_eq!(alice.user.groups, vec!["system:masters", "ops"]);
    assert_eq!(alice.method, AuthMethod::StaticToken);
    let bob = tokens.authenticate(BOB).expect("bob");
    assert_eq!(bob.user.uid, None);
    assert!(bob.user.groups.is_empty());
}

#[test]
fn identity_carries_a_fingerprint_never_the_token() {
    let tokens = parse(&format!("{ALICE},alice,1")).expect("parses");
    let id = tokens.authenticate(ALICE).expect("alice");
    let token_id = id.token_id.expect("token id");
    assert!(token_id.starts_with("sha256:"));
    assert!(!serde_json::to_string(&tokens.authenticate(ALICE))
        .expect("json")
        .contains(ALICE));
    assert!(!format!("{tokens:?}").contains(ALICE));
}

#[test]
fn unknown_or_near_miss_tokens_do_not_authenticate() {
    let tokens = parse(&format!("{ALICE},alice,1")).expect("parses");
    assert!(tokens.authenticate("").is_none());
    assert!(tokens.authenticate(&ALICE[..ALICE.len() - 1]).is_none());
    assert!(tokens.authenticate(&format!("{ALICE}x")).is_none());
}

#[test]
fn malformed_lines_are_refused_with_their_line_number() {
    assert_eq!(line_error(&format!("{ALICE},alice,1\n{BOB},bob")).0, 2);
    assert!(line_error("short,alice,1").1.contains("shorter"));
    assert!(line_error(&format!("{ALICE},,1")).1.contains("user"));
    assert!(line_error(&format!("{ALICE},a,1\n{ALICE},b,2"))
        .1
        .contains("duplicate"));
    assert!(line_error(&format!("{ALICE},a,1,\"g1,g2"))
        .1
        .contains("unterminated"));
    assert!(line_error(&format!("{ALICE},a,1,\"g1\"x"))
        .1
        .contains("closing quote"));
    assert!(line_error(&format!("{ALICE},a\"b,1")).1.contains("quote"));
}

#[test]
fn csv_quoting_follows_rfc4180() {
    assert_eq!(
        split_csv_line(r#"a, "b ""q"", c" ,d"#),
        Ok(vec![
            "a".to_string(),
            r#"b "q", c"#.to_string(),
            "d".to_string(),
        ])
    );
    assert_eq!(
        split_csv_line("a,,"),
        Ok(vec!["a".into(), "".into(), "".into()])
    );
}

#[cfg(unix)]
#[test]
fn world_readable_file_is_refused_and_private_file_loads() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokens.csv");
    std::fs::write(&path, format!("{ALICE},alice,1\n")).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert!(matches!(
        StaticTokens::load(&path),
        Err(ConfigError::InsecurePermissions { mode: 0o644, .. })
    ));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).expect("chmod");
    assert!(matches!(
        StaticTokens::load(&path),
        Err(ConfigError::InsecurePermissions { .. })
    ));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    assert_eq!(StaticTokens::load(&path).expect("loads").len(), 1);
    assert!(matches!(
        StaticTokens::load(&dir.path().join("missing.csv")),
        Err(ConfigError::Io { .. })
    ));
}

#[test]
fn digests_are_compared_without_revealing_position() {
    let tokens = parse(&format!("{ALICE},alice,1\n{BOB},bob,2")).expect("parses");
    assert!(tokens.entries.iter().all(|e| e.digest != [0u8; 32]));
    assert!(constant_time_eq(
        &tokens.entries[0].digest,
        &tokens.entries[0].digest
    ));
    assert!(!constant_time_eq(
        &tokens.entries[0].digest,
        &tokens.entries[1].digest
    ));
}

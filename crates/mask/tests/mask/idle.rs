//! The stream masker's idle flush: interactive output is not held back, a held partial candidate is
//! masked rather than shown, ordinary typing is not, and emitted bytes stay context for what follows.

use std::sync::OnceLock;

use custos_mask::{Detector, Rule, TextMasker};

fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| Detector::builtin().expect("detector"))
}

/// Feeds `steps` in order: `Ok(bytes)` is a chunk, `Err(())` an idle flush; then ends the stream.
fn run<'d>(d: &'d Detector, steps: &[Result<&str, ()>]) -> (String, TextMasker<'d>) {
    let mut m = TextMasker::new(d);
    let mut out = Vec::new();
    for step in steps {
        match step {
            Ok(chunk) => m.push(chunk.as_bytes(), &mut out),
            Err(()) => m.flush_idle(&mut out),
        }
    }
    m.flush(&mut out);
    let input: usize = steps.iter().map(|s| s.map_or(0, str::len)).sum();
    assert_eq!(out.len(), input, "length kept");
    (String::from_utf8(out).expect("utf-8"), m)
}

/// What one chunk and an idle flush emit, before anything else arrives.
fn idle_once(chunk: &str) -> String {
    let mut m = TextMasker::new(detector());
    let mut out = Vec::new();
    m.push(chunk.as_bytes(), &mut out);
    assert!(out.is_empty(), "a short chunk is held");
    m.flush_idle(&mut out);
    assert_eq!(out.len(), chunk.len());
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn held_partial_candidates_are_masked() {
    for (held, shown) in [
        ("AKIAIOSFOD", "**********"),
        ("token ghp_abc", "token *******"),
        ("password=hunt", "password=****"),
        ("DB_PASSWORD: \"c0rr", "DB_PASSWORD: \"****"),
        ("url postgres://app:s3cr", "url postgres://app:****"),
        ("-----BEGIN RSA PRI", "******************"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE",
            "*******************************\n****",
        ),
        ("Bearer eyJhbGciOiJIUz", "Bearer **************"),
        (
            "kubeadm join 10.0.0.1:6443 --token 9a08jv.c0iz",
            "kubeadm join 10.0.0.1:6443 --token ***********",
        ),
        ("card 4111 1111 11", "card ************"),
        ("call +44 20 7946", "call ***********"),
        ("mail jane.doe@example.co", "mail *******************"),
    ] {
        assert_eq!(idle_once(held), shown, "{held:?}");
    }
}

#[test]
fn ordinary_typing_and_prompts_are_not_masked() {
    for held in [
        "$ ",
        "root@web-0:/app# ",
        "ls -la",
        "echo hello",
        "kubectl get pods -n payments",
        "password",      // the keyword alone: nothing secret yet
        "password=",     // nor the assignment
        "4111 1",        // five digits are not evidence
        "ssh user@host", // no dotted name after the @
        "ssh root@10.0.0.5",
        "AKIA IOSF", // a keyword, but the candidate died
        "tail -n 100 /var/log/app.log | grep 2026-11-27",
    ] {
        assert_eq!(idle_once(held), held, "{held:?}");
    }
}

#[test]
fn keystroke_echo_is_emitted_byte_by_byte() {
    let line = "$ echo hello && ls -la /tmp\r\n";
    let steps: Vec<Result<&str, ()>> = (0..line.len())
        .flat_map(|i| [Ok(&line[i..=i]), Err(())])
        .collect();
    let (out, _) = run(detector(), &steps);
    assert_eq!(out, line);
}

#[test]
fn typed_secret_is_masked_from_its_evidence_on() {
    let line = "export TOKEN=ghp_bbIhqLZxmqGCv7HqA74ANFrMEQEFjUyFtOZD\r\n";
    let steps: Vec<Result<&str, ()>> = (0..line.len())
        .flat_map(|i| [Ok(&line[i..=i]), Err(())])
        .collect();
    let (out, m) = run(detector(), &steps);
    assert_eq!(out, format!("export TOKEN={}\r\n", "*".repeat(40)));
    assert_eq!(m.counts().get("github-token"), 1);
}

#[test]
fn emitted_bytes_stay_context_for_what_follows() {
    let (out, m) = run(
        detector(),
        &[Ok("password: "), Err(()), Ok("hunter2secretvalue\n")],
    );
    assert_eq!(out, "password: ******************\n");
    assert_eq!(m.counts().get("generic-secret-assignment"), 1);
}

#[test]
fn a_masked_partial_goes_on_being_masked_when_the_rest_arrives() {
    let (out, m) = run(
        detector(),
        &[Ok("key AKIAIOSFOD"), Err(()), Ok("NN7EXAMPLE done\n")],
    );
    assert_eq!(out, "key ******************** done\n");
    assert_eq!(m.counts().get("aws-access-key-id"), 1, "counted once");
}

#[test]
fn a_partial_that_dies_stops_being_masked() {
    let (out, m) = run(detector(), &[Ok("AKIAIOSFOD"), Err(()), Ok(" hello\n")]);
    assert_eq!(out, "********** hello\n");
    assert_eq!(
        m.counts().total(),
        0,
        "a partial candidate is not a finding"
    );
}

#[test]
fn an_open_pem_block_stays_masked_across_idle_flushes() {
    let (out, _) = run(
        detector(),
        &[
            Ok("log\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA0Z3VS5JJ"),
            Err(()),
            Ok("cds3xfn/ygWyF8PbnGy0AHB7\n"),
            Err(()),
            Ok("MhgHcJz\n-----END RSA PRI"),
            Err(()),
            Ok("VATE KEY-----\nafter\n"),
        ],
    );
    assert!(out.starts_with("log\n*****"), "{out}");
    assert!(
        out.ends_with("-----\nafter\n") || out.ends_with("*****\nafter\n"),
        "{out}"
    );
    let body = &out[4..out.len() - "\nafter\n".len()];
    assert!(body.bytes().all(|b| b == b'*' || b == b'\n'), "{out}");
}

#[test]
fn an_idle_flush_in_a_coloured_prompt_keeps_escapes_and_masks_the_partial() {
    let held = "\x1b[32m$\x1b[0m export AWS_SECRET_ACCESS_KEY=wJalr\x1b[1mXUtn";
    let out = idle_once(held);
    assert_eq!(
        out,
        "\x1b[32m$\x1b[0m export AWS_SECRET_ACCESS_KEY=*****\x1b[1m****"
    );
}

#[test]
fn a_pathological_rule_fails_closed_on_idle() {
    // Every run of letters and digits is a partial candidate from every start: the search runs out
    // of budget and masks everything held rather than guess.
    let rules = Rule::parse_file(
        "slow.yaml",
        "- id: slow\n  description: slow\n  regex: '[a-z0-9]{1,4000}Q'\n  max_len: 4001\n",
    )
    .expect("parses");
    let d = Detector::new(rules).expect("compiles");
    let held = "a1".repeat(1500);
    let mut m = TextMasker::new(&d);
    let mut out = Vec::new();
    m.push(held.as_bytes(), &mut out);
    m.flush_idle(&mut out);
    assert_eq!(out, vec![b'*'; 3000]);
}

#[test]
fn a_partial_inside_an_unterminated_osc_string_is_masked() {
    // The view without escapes does not see an OSC payload; a raw capture does.
    assert_eq!(
        idle_once("\x1b]0;deploy AKIAIOSFOD"),
        "\x1b]0;deploy **********"
    );
}

#[test]
fn a_long_candidate_typed_byte_by_byte_keeps_its_context() {
    // Each idle flush keeps only the context a still-viable candidate needs: here the whole JWT so
    // far, far more than the minimum, so every byte after `eyJ` stays masked.
    let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpib3QifQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU";
    let line = format!("ls -la; curl -H 'Authorization: Bearer {jwt}' x\r\n");
    let steps: Vec<Result<&str, ()>> = (0..line.len())
        .flat_map(|i| [Ok(&line[i..=i]), Err(())])
        .collect();
    let (out, m) = run(detector(), &steps);
    let shown = "ls -la; curl -H 'Authorization: Bearer ey";
    assert_eq!(out, format!("{shown}{}' x\r\n", "*".repeat(jwt.len() - 2)));
    assert_eq!(m.counts().get("jwt"), 1);
}

#[test]
fn a_complete_match_is_not_taken_for_a_partial() {
    // Complete at the end of what is held: the secret is masked, the `@` after it is not.
    assert_eq!(
        idle_once("url mongodb+srv://admin:hunter2hunter2@"),
        "url mongodb+srv://admin:**************@"
    );
    assert_eq!(
        idle_once("key AKIAIOSFODNN7EXAMPLE "),
        "key ******************** "
    );
}

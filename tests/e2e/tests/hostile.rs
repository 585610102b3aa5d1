//! Hostile requests through Custos against the real testbed: each is refused with the Kubernetes `Status`
//! a client expects, and none of them reaches the apiserver.
//!
//! "Never reached" is read from the apiserver's own audit log. Every request carries a unique `Audit-ID`,
//! which Custos forwards, so the log has an event with that id exactly when the apiserver saw the
//! request. A positive control (a valid request sent after the hostile ones, with its own id) must show
//! up in the log first; only then is the absence of the hostile ids evidence rather than a slow writer.
//!
//! Requests are written byte for byte by [`custos_e2e::raw`], so path tricks and oversized header
//! sections arrive exactly as an attacker would send them.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};

use custos_e2e::raw::{http_get, RawClient, RawRequest, RawResponse};
use custos_e2e::{root, unique, Custos, Testbed};

/// How long the control request may take to appear in the audit log.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn hostile_requests_are_refused_with_a_status_and_never_reach_the_apiserver() -> Result<()> {
    let tb = Testbed::load()?;
    let gw = Custos::start(&tb, &[])?;
    let admin = tb.token("admin")?;
    let mut cases = token_cases(&tb, &admin)?;
    cases.extend(header_cases(&admin));
    cases.extend(path_cases(&admin));
    let configmap = unique("hostile-big");
    cases.extend(body_cases(&admin, &configmap));
    let controls = vec![Control::admin_reads_default_namespace(&admin)];

    let mut failures = refuse_all(&tb, &gw, &cases, &controls)?;
    // Belt and braces for the body cases: whatever the log says, the object must not exist.
    let out = tb.admin_kubectl(&["get", "configmap", &configmap, "-n", "default"])?;
    if out.status.success() {
        failures.push(format!(
            "oversize body: configmap {configmap} was created by a request Custos should have refused"
        ));
    }
    report(&gw, failures)
}

/// Dex's token lifetime is fixed by the testbed (1 h) and its tokens cannot be back- or post-dated, so
/// the time checks need an issuer that signs whatever times we ask for. Here the IdP is the test signer
/// (`custos_testkit::FakeOidc`, a second trusted issuer in this gateway's config); the gateway, its
/// config loading, the JWKS fetch and the apiserver are the real ones.
#[test]
fn tokens_outside_their_validity_window_are_refused_before_the_apiserver() -> Result<()> {
    let tb = Testbed::load()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let fake = rt.block_on(custos_testkit::FakeOidc::start())?;
    let dir = tempfile::tempdir()?;
    let fake_ca = fake.ca().write_to(dir.path())?;
    let config = dir.path().join("custos.yaml");
    std::fs::write(&config, two_issuer_config(&tb, fake.url(), &fake_ca)?)?;
    let gw = Custos::start(&tb, &["--config", &config.display().to_string()])?;

    let signer = fake.issuer();
    let now = custos_testkit::jwt::now();
    let with_times = |iat: u64, nbf: u64, exp: u64| {
        let mut claims = signer.claims("hostile-e2e");
        claims["iat"] = json!(iat);
        claims["nbf"] = json!(nbf);
        claims["exp"] = json!(exp);
        signer.token(&claims)
    };
    let secrets = "/api/v1/namespaces/default/secrets";
    let cases = vec![
        Case::new(
            "expired token (exp 1 h ago; test signer)",
            RawRequest::get(secrets).bearer(&with_times(now - 7200, now - 7200, now - 3600)),
            unauthorized("token has expired"),
        ),
        Case::new(
            "not-yet-valid token (nbf in 1 h; test signer)",
            RawRequest::get(secrets).bearer(&with_times(now, now + 3600, now + 7200)),
            unauthorized("not valid yet"),
        ),
        Case::new(
            "token issued in the future (iat in 1 h; test signer)",
            RawRequest::get(secrets).bearer(&with_times(now + 3600, now, now + 7200)),
            unauthorized("issued in the future"),
        ),
    ];
    let admin = tb.token("admin")?;
    let controls = vec![
        Control::admin_reads_default_namespace(&admin),
        // The same signer with valid times is accepted and forwarded (the apiserver's RBAC then
        // forbids the unknown user): the refusals above are about time, not a broken issuer set-up.
        Control {
            name: "valid token from the test signer",
            req: RawRequest::get("/api/v1/namespaces/default")
                .bearer(&signer.token(&signer.claims("hostile-e2e"))),
            code: 403,
        },
    ];
    let failures = refuse_all(&tb, &gw, &cases, &controls)?;
    drop(fake);
    report(&gw, failures)
}

/// One hostile request and the answer it must get.
struct Case {
    name: &'static str,
    req: RawRequest,
    expect: Expect,
}

impl Case {
    fn new(name: &'static str, req: RawRequest, expect: Expect) -> Self {
        Case { name, req, expect }
    }
}

enum Expect {
    /// Custos answers with a `Status` and counts the refusal under `metric`.
    Refused {
        code: u16,
        reason: &'static str,
        says: &'static str,
        metric: &'static str,
    },
    /// hyper refuses before the pipeline sees the request: a bare status, nothing counted.
    Hyper { code: u16 },
}

fn unauthorized(says: &'static str) -> Expect {
    Expect::Refused {
        code: 401,
        reason: "Unauthorized",
        says,
        metric: "unauthenticated",
    }
}

fn bad_path(says: &'static str) -> Expect {
    Expect::Refused {
        code: 400,
        reason: "BadRequest",
        says,
        metric: "path",
    }
}

fn forbidden_impersonation(says: &'static str) -> Expect {
    Expect::Refused {
        code: 403,
        reason: "Forbidden",
        says,
        metric: "impersonation",
    }
}

/// A valid request that must reach the apiserver (and show up in its audit log) with HTTP `code`.
struct Control {
    name: &'static str,
    req: RawRequest,
    code: u16,
}

impl Control {
    fn admin_reads_default_namespace(admin: &str) -> Self {
        Control {
            name: "admin reads namespace default",
            req: RawRequest::get("/api/v1/namespaces/default").bearer(admin),
            code: 200,
        }
    }
}

/// Bearer tokens that are real Dex tokens bent out of shape, or no Dex token at all.
fn token_cases(tb: &Testbed, admin: &str) -> Result<Vec<Case>> {
    let target = "/api/v1/namespaces/default/secrets";
    let get = || RawRequest::get(target);
    let jwt = Jwt::parse(admin)?;
    let (spki, pkcs1) = dex_public_key_pems(tb, jwt.kid()?)?;
    // The PEMs must be Dex's real key, or the HMAC confusion below proves nothing.
    for pem in [&spki, &pkcs1] {
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[tb.var("TESTBED_OIDC_CLIENT_ID")?]);
        jsonwebtoken::decode::<Value>(admin, &DecodingKey::from_rsa_pem(pem.as_bytes())?, &v)
            .context("the PEM built from Dex's JWKS does not verify a Dex token")?;
    }
    let hs256 = |secret: &str| -> Result<String> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(jwt.kid()?.to_owned());
        Ok(jsonwebtoken::encode(
            &header,
            &jwt.claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )?)
    };
    let mut evil_iss = jwt.claims.clone();
    evil_iss["iss"] = json!("https://evil.example/dex");
    let agent_token = token_for_client(tb.var("TESTBED_OIDC_AGENT_CLIENT_ID")?, "admin")?;
    ensure!(
        Jwt::parse(&agent_token)?.claims["aud"] == tb.var("TESTBED_OIDC_AGENT_CLIENT_ID")?,
        "the agent client's token should carry the agent audience"
    );
    Ok(vec![
        Case::new("no token", get(), unauthorized("no credentials")),
        Case::new(
            "wrong issuer (iss changed on a real Dex token)",
            get().bearer(&jwt.with_claims(&evil_iss)),
            unauthorized("is not trusted"),
        ),
        Case::new(
            "wrong audience (real Dex token for the agent client)",
            get().bearer(&agent_token),
            unauthorized("audience"),
        ),
        Case::new(
            "bad signature (one byte of a real Dex signature flipped)",
            get().bearer(&jwt.with_flipped_signature()?),
            unauthorized("signature is invalid"),
        ),
        Case::new(
            "alg none",
            get().bearer(&jwt.unsigned()),
            unauthorized("algorithm \"none\" is not allowed"),
        ),
        Case::new(
            "HMAC confusion (HS256 keyed with Dex's RSA public key, SPKI PEM)",
            get().bearer(&hs256(&spki)?),
            unauthorized("algorithm \"HS256\" is not allowed"),
        ),
        Case::new(
            "HMAC confusion (HS256 keyed with Dex's RSA public key, PKCS#1 PEM)",
            get().bearer(&hs256(&pkcs1)?),
            unauthorized("algorithm \"HS256\" is not allowed"),
        ),
        Case::new(
            "garbage bearer token",
            get().bearer("this-is-not-a-jwt"),
            unauthorized("malformed"),
        ),
        Case::new(
            "Authorization: Basic with the testbed's real password",
            get().header(
                "Authorization",
                format!("Basic {}", STANDARD.encode("admin@custos.test:password")),
            ),
            Expect::Refused {
                code: 401,
                reason: "Unauthorized",
                says: "must be a bearer token",
                metric: "unauthenticated",
            },
        ),
        Case::new(
            "oversize token (17 KiB > 16 KiB)",
            get().bearer(&format!("{}.e30.sig", "A".repeat(17 * 1024))),
            unauthorized("too large"),
        ),
    ])
}

/// Header sections too large to accept, and client impersonation with a valid token.
fn header_cases(admin: &str) -> Vec<Case> {
    let target = "/api/v1/namespaces/default/secrets";
    let get = || RawRequest::get(target).bearer(admin);
    let mut many = get();
    for i in 0..150 {
        many = many.header(&format!("X-Hostile-{i}"), "1");
    }
    let mut huge = get();
    for i in 0..4 {
        huge = huge.header(&format!("X-Padding-{i}"), "p".repeat(30 * 1024));
    }
    vec![
        Case::new(
            "header section over the gateway's 32 KiB limit (40 KiB)",
            get().header("X-Padding", "p".repeat(40 * 1024)),
            Expect::Refused {
                code: 400,
                reason: "BadRequest",
                says: "headers are too large",
                metric: "headers",
            },
        ),
        Case::new(
            "header section over hyper's hard cap (120 KiB)",
            huge,
            Expect::Hyper { code: 431 },
        ),
        Case::new(
            "150 header fields (over hyper's count limit)",
            many,
            Expect::Hyper { code: 431 },
        ),
        Case::new(
            "Impersonate-User: system:admin with a valid token",
            get().header("Impersonate-User", "system:admin"),
            forbidden_impersonation("impersonate-user"),
        ),
        Case::new(
            "Impersonate-Group: system:masters with a valid token",
            get().header("Impersonate-Group", "system:masters"),
            forbidden_impersonation("impersonate-group"),
        ),
        Case::new(
            "iMpErSoNaTe-UsEr (odd case) with a valid token",
            get().header("iMpErSoNaTe-UsEr", "system:admin"),
            forbidden_impersonation("impersonate-user"),
        ),
        Case::new(
            "Impersonate-Uid and Impersonate-Extra-Scopes with a valid token",
            get()
                .header("Impersonate-Uid", "0")
                .header("Impersonate-Extra-Scopes", "*"),
            forbidden_impersonation("impersonate-extra-scopes, impersonate-uid"),
        ),
    ]
}

/// Paths the apiserver (or a proxy in between) could read differently from the gateway; valid token.
fn path_cases(admin: &str) -> Vec<Case> {
    let long = format!("/api/v1/namespaces/default/configmaps/{}", "a".repeat(5000));
    let cases: Vec<(&'static str, Vec<u8>, Expect)> = vec![
        (
            "'..' segment",
            b"/api/v1/namespaces/default/pods/../secrets".to_vec(),
            bad_path("'.' or '..' segment"),
        ),
        (
            "'.' segment",
            b"/api/v1/namespaces/default/./secrets".to_vec(),
            bad_path("'.' or '..' segment"),
        ),
        (
            "%2e%2e segment",
            b"/api/v1/namespaces/default/pods/%2e%2e/secrets".to_vec(),
            bad_path("'.' or '..' segment"),
        ),
        (
            ".%2E segment",
            b"/api/v1/namespaces/default/pods/.%2E/secrets".to_vec(),
            bad_path("'.' or '..' segment"),
        ),
        (
            "%2F (encoded slash)",
            b"/api/v1/namespaces/default/pods%2F..%2Fsecrets".to_vec(),
            bad_path("encoded separator %2F"),
        ),
        (
            "%5C (encoded backslash)",
            b"/api/v1/namespaces/default%5Csecrets".to_vec(),
            bad_path("encoded separator %5C"),
        ),
        (
            "%252e%252e (double-encoded)",
            b"/api/v1/namespaces/default/pods/%252e%252e/secrets".to_vec(),
            bad_path("double-encoded"),
        ),
        (
            "%00 (encoded NUL)",
            b"/api/v1/namespaces/default/secrets%00".to_vec(),
            bad_path("encoded control character"),
        ),
        (
            "'//' (empty segment)",
            b"/api/v1/namespaces//secrets".to_vec(),
            bad_path("empty segment"),
        ),
        (
            "leading '//'",
            b"//api/v1/namespaces/default/secrets".to_vec(),
            bad_path("empty segment"),
        ),
        (
            "raw non-ASCII bytes (UTF-8 e-acute)",
            b"/api/v1/namespaces/d\xc3\xa9fault/secrets".to_vec(),
            bad_path("non-ASCII"),
        ),
        (
            "over-long path (5038 bytes > 4096)",
            long.into_bytes(),
            bad_path("at most 4096 bytes"),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, target, expect)| {
            Case::new(name, RawRequest::get(target).bearer(admin), expect)
        })
        .collect()
}

/// Request bodies over the default 8 MiB limit, with a valid token, declared up front and chunked.
fn body_cases(admin: &str, configmap: &str) -> Vec<Case> {
    let object = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{configmap}"}},"data":{{"big":"{}"}}}}"#,
        "b".repeat(9 * 1024 * 1024)
    );
    let post = || {
        RawRequest::new("POST", "/api/v1/namespaces/default/configmaps")
            .bearer(admin)
            .header("Content-Type", "application/json")
    };
    let too_large = || Expect::Refused {
        code: 413,
        reason: "RequestEntityTooLarge",
        says: "larger than the gateway allows",
        metric: "body_too_large",
    };
    vec![
        Case::new(
            "9 MiB body with Content-Length (limit 8 MiB)",
            post().body(object.clone().into_bytes()),
            too_large(),
        ),
        // Bodies of writes are read whole (bounded) before anything goes upstream — for policy and
        // for the masked record — so a chunked body over the limit never reaches the apiserver either.
        Case::new(
            "9 MiB chunked body (limit 8 MiB)",
            post().chunked_body(object.as_bytes()),
            too_large(),
        ),
    ]
}

/// Sends every case, then the controls; returns what went wrong (empty when all is well).
fn refuse_all(
    tb: &Testbed,
    gw: &Custos,
    cases: &[Case],
    controls: &[Control],
) -> Result<Vec<String>> {
    let mut audit = AuditScan::from_end(tb)?;
    let client = RawClient::new(&gw.url, &gw.ca)?;
    let run = unique("hostile");
    let mut failures = Vec::new();
    let mut sent = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let id = format!("{run}-{i:02}");
        let req = case.req.clone().header("Audit-ID", id.as_str());
        let outcome = client
            .send(&req)
            .and_then(|resp| check_refusal(&case.expect, &req, &resp, &id));
        if let Err(e) = outcome {
            failures.push(format!(
                "{}: {e:#}\n  request: {}",
                case.name,
                req.describe()
            ));
        }
        sent.push((id, case));
    }

    // The controls go last: once they are in the log, so is anything forwarded before them.
    let mut control_ids = Vec::new();
    for (i, control) in controls.iter().enumerate() {
        let id = format!("{run}-control-{i}");
        let resp = client.send(&control.req.clone().header("Audit-ID", id.as_str()))?;
        ensure!(
            resp.code == control.code,
            "control {:?} answered {} (expected {}): {}",
            control.name,
            resp.code,
            control.code,
            resp.body_text(500)
        );
        control_ids.push(id);
    }
    audit.wait_for_all(&control_ids, CONTROL_TIMEOUT)?;
    for (id, case) in &sent {
        if audit.seen.contains(id) {
            failures.push(format!(
                "{}: FORWARDED: the apiserver's audit log has an event with Audit-ID {id}",
                case.name
            ));
        }
    }
    failures.extend(check_metrics(gw, cases)?);
    Ok(failures)
}

/// Checks one answer against what the case expects.
fn check_refusal(expect: &Expect, req: &RawRequest, resp: &RawResponse, id: &str) -> Result<()> {
    let summary = || format!("{} {}", resp.code, resp.body_text(400));
    match *expect {
        Expect::Hyper { code } => {
            ensure!(
                resp.code == code,
                "expected HTTP {code} from hyper, got {}",
                summary()
            );
        }
        Expect::Refused {
            code, reason, says, ..
        } => {
            ensure!(resp.code == code, "expected HTTP {code}, got {}", summary());
            let status = resp.status()?;
            ensure!(
                status.status == "Failure" && status.code == code && status.reason == reason,
                "expected a Failure Status {code} {reason}, got {status:?}"
            );
            ensure!(
                status.message.contains(says),
                "message {:?} does not say {says:?}",
                status.message
            );
            ensure!(
                resp.header("audit-id") == Some(id),
                "Audit-Id {:?} is not the one sent ({id}): the audit-log check would be vacuous",
                resp.header("audit-id")
            );
            if code == 401 {
                ensure!(
                    resp.header("www-authenticate")
                        .is_some_and(|v| v.starts_with("Bearer")),
                    "401 without a WWW-Authenticate: Bearer challenge"
                );
            }
            ensure!(
                !echoes_credential(req, &resp.body),
                "the refusal echoes the client's credential"
            );
        }
    }
    Ok(())
}

/// True when `body` contains the tail of the request's `Authorization` credential.
fn echoes_credential(req: &RawRequest, body: &[u8]) -> bool {
    let Some(value) = req.header_value("Authorization") else {
        return false;
    };
    let credential = value.rsplit(|b| *b == b' ').next().unwrap_or_default();
    let tail = &credential[credential.len().saturating_sub(16)..];
    tail.len() == 16 && body.windows(16).any(|w| w == tail)
}

/// `custos_refused_total` must count each refusal under its reason, and nothing else.
fn check_metrics(gw: &Custos, cases: &[Case]) -> Result<Vec<String>> {
    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    for case in cases {
        if let Expect::Refused { metric, .. } = case.expect {
            *want.entry(metric).or_default() += 1;
        }
    }
    let resp = http_get(&format!("{}/metrics", gw.ops))?;
    ensure!(resp.code == 200, "/metrics answered {}", resp.code);
    let text = String::from_utf8_lossy(&resp.body);
    let mut got: BTreeMap<&str, u64> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("custos_refused_total{reason=\"") else {
            continue;
        };
        let (reason, value) = rest
            .split_once("\"} ")
            .ok_or_else(|| anyhow!("odd metrics line {line:?}"))?;
        got.insert(reason, value.trim().parse::<f64>()? as u64);
    }
    Ok(if got == want {
        Vec::new()
    } else {
        vec![format!(
            "custos_refused_total by reason is {got:?}, expected {want:?}"
        )]
    })
}

fn report(gw: &Custos, failures: Vec<String>) -> Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    let logs = gw.logs();
    let tail: Vec<&str> = logs.lines().rev().take(30).collect();
    bail!(
        "{} problem(s):\n- {}\n\ngateway log (last lines):\n{}",
        failures.len(),
        failures.join("\n- "),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}

/// The `auditID`s of the apiserver's audit events written since this value was made.
struct AuditScan {
    path: PathBuf,
    offset: u64,
    seen: HashSet<String>,
}

impl AuditScan {
    fn from_end(tb: &Testbed) -> Result<Self> {
        let path = PathBuf::from(tb.var("TESTBED_AUDIT_LOG")?);
        let offset = std::fs::metadata(&path)
            .with_context(|| path.display().to_string())?
            .len();
        Ok(AuditScan {
            path,
            offset,
            seen: HashSet::new(),
        })
    }

    /// Reads until every id in `ids` has been seen, or fails after `timeout`.
    fn wait_for_all(&mut self, ids: &[String], timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.read_new()?;
            let missing: Vec<&String> = ids.iter().filter(|id| !self.seen.contains(*id)).collect();
            if missing.is_empty() {
                // One more read: events written just after the controls' are in scope too.
                return self.read_new();
            }
            if Instant::now() >= deadline {
                bail!(
                    "control request(s) {missing:?} not in {} after {timeout:?}: the audit check cannot prove anything",
                    self.path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Adds the ids of complete lines written since the last read; a partial line waits.
    fn read_new(&mut self) -> Result<()> {
        let mut file = std::fs::File::open(&self.path)?;
        if file.metadata()?.len() < self.offset {
            // Rotated (lumberjack renames the file): the new one holds only newer events.
            self.offset = 0;
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.offset += complete as u64;
        for line in bytes[..complete].split(|b| *b == b'\n') {
            if let Ok(event) = serde_json::from_slice::<Value>(line) {
                if let Some(id) = event["auditID"].as_str() {
                    self.seen.insert(id.to_owned());
                }
            }
        }
        Ok(())
    }
}

/// A compact JWS split into its decoded header, claims, and raw signature part.
struct Jwt {
    header: Value,
    claims: Value,
    signature: String,
}

impl Jwt {
    fn parse(token: &str) -> Result<Jwt> {
        let mut parts = token.split('.');
        let mut json = |what: &str| -> Result<Value> {
            let part = parts.next().ok_or_else(|| anyhow!("token has no {what}"))?;
            Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part)?)?)
        };
        let header = json("header")?;
        let claims = json("payload")?;
        let signature = parts.next().unwrap_or_default().to_owned();
        Ok(Jwt {
            header,
            claims,
            signature,
        })
    }

    fn kid(&self) -> Result<&str> {
        self.header["kid"]
            .as_str()
            .ok_or_else(|| anyhow!("Dex token has no kid"))
    }

    /// The same header and signature over other claims.
    fn with_claims(&self, claims: &Value) -> String {
        format!(
            "{}.{}.{}",
            b64_json(&self.header),
            b64_json(claims),
            self.signature
        )
    }

    /// The token with the first byte of its signature flipped.
    fn with_flipped_signature(&self) -> Result<String> {
        let mut sig = URL_SAFE_NO_PAD.decode(&self.signature)?;
        let first = sig.first_mut().ok_or_else(|| anyhow!("empty signature"))?;
        *first ^= 0xff;
        Ok(format!(
            "{}.{}.{}",
            b64_json(&self.header),
            b64_json(&self.claims),
            URL_SAFE_NO_PAD.encode(sig)
        ))
    }

    /// `alg: none`, the original claims and kid, and no signature.
    fn unsigned(&self) -> String {
        let header = json!({"alg": "none", "typ": "JWT", "kid": self.header["kid"]});
        format!("{}.{}.", b64_json(&header), b64_json(&self.claims))
    }
}

fn b64_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A real Dex ID token for `user` issued to `client_id` (`testbed/token --client`).
fn token_for_client(client_id: &str, user: &str) -> Result<String> {
    let out = Command::new(root().join("testbed/token"))
        .args(["--client", client_id, user])
        .output()?;
    ensure!(
        out.status.success(),
        "testbed/token --client {client_id} {user}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Dex's RSA public key `kid`, fetched from its JWKS, as SPKI (`PUBLIC KEY`) and PKCS#1
/// (`RSA PUBLIC KEY`) PEM: the two texts an HMAC-confusion attacker would try as the HS256 secret.
fn dex_public_key_pems(tb: &Testbed, kid: &str) -> Result<(String, String)> {
    let issuer = tb.var("TESTBED_OIDC_ISSUER")?;
    let dex = RawClient::new(issuer, Path::new(tb.var("TESTBED_OIDC_CA")?))?;
    let path_of = |url: &str| -> String {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        rest.find('/')
            .map_or("/".to_owned(), |i| rest[i..].to_owned())
    };
    let discovery = get_json(
        &dex,
        &format!("{}/.well-known/openid-configuration", path_of(issuer)),
    )?;
    let jwks_uri = discovery["jwks_uri"]
        .as_str()
        .ok_or_else(|| anyhow!("Dex discovery has no jwks_uri"))?;
    let jwks = get_json(&dex, &path_of(jwks_uri))?;
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .ok_or_else(|| anyhow!("Dex JWKS has no key {kid}"))?;
    let field = |name: &str| -> Result<Vec<u8>> {
        let text = key[name]
            .as_str()
            .ok_or_else(|| anyhow!("JWK has no {name}"))?;
        Ok(URL_SAFE_NO_PAD.decode(text)?)
    };
    let pkcs1 = der(
        0x30,
        &[der_uint(&field("n")?), der_uint(&field("e")?)].concat(),
    );
    // AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }
    let algorithm = der(
        0x30,
        &[
            der(
                0x06,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            ),
            vec![0x05, 0x00],
        ]
        .concat(),
    );
    let bits = der(0x03, &[&[0u8][..], &pkcs1].concat());
    let spki = der(0x30, &[algorithm, bits].concat());
    Ok((pem("PUBLIC KEY", &spki), pem("RSA PUBLIC KEY", &pkcs1)))
}

fn get_json(client: &RawClient, path: &str) -> Result<Value> {
    let resp = client.send(&RawRequest::get(path).header("Accept", "application/json"))?;
    ensure!(resp.code == 200, "GET {path}: {}", resp.code);
    Ok(serde_json::from_slice(&resp.body)?)
}

/// A DER TLV.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER holding the unsigned big-endian `value`.
fn der_uint(value: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = value.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    der(0x02, &content)
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A gateway config trusting Dex (as the flags also say) and the test signer.
fn two_issuer_config(tb: &Testbed, fake_url: &str, fake_ca: &Path) -> Result<String> {
    Ok(format!(
        "authentication:\n  oidc:\n  - issuerURL: {dex}\n    clientIDs: [{client}]\n    usernameClaim: email\n    groupsClaim: groups\n    caFile: {dex_ca}\n  - issuerURL: {fake_url}\n    clientIDs: [{aud}]\n    caFile: {fake_ca}\n",
        dex = tb.var("TESTBED_OIDC_ISSUER")?,
        client = tb.var("TESTBED_OIDC_CLIENT_ID")?,
        dex_ca = tb.var("TESTBED_OIDC_CA")?,
        aud = custos_testkit::jwt::AUDIENCE,
        fake_ca = fake_ca.display(),
    ))
}

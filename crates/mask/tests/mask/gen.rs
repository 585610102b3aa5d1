//! Deterministic generators of planted secrets and of look-alikes that must not be masked.

/// xorshift64*: enough randomness for a corpus, no dependency.
pub struct Rng(u64);

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX: &[u8] = b"0123456789abcdef";
const LOWER_DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A phone number in one of the formats the rule takes: E.164 (grouped or not) or North American.
fn phone(r: &mut Rng) -> String {
    // A North American area code or exchange: 2-9 then two digits, not N11.
    let nanp3 = |r: &mut Rng| loop {
        let n = format!("{}{}", 2 + r.below(8), r.digits(2));
        if &n[1..] != "11" {
            break n;
        }
    };
    let (area, exch) = (nanp3(r), nanp3(r));
    let line = r.digits(4);
    match r.below(7) {
        0 => format!("+1{area}{exch}{line}"),
        1 => format!("+1 ({area}) {exch}-{line}"),
        2 => format!("({area}) {exch}-{line}"),
        3 => format!("{area}-{exch}-{line}"),
        4 => format!("+44 20 {}{} {}", 1 + r.below(9), r.digits(3), r.digits(4)),
        5 => format!("+49 30 {}{}", 1 + r.below(9), r.digits(7)),
        _ => format!(
            "+33 {} {} {} {} {}",
            1 + r.below(9),
            r.digits(2),
            r.digits(2),
            r.digits(2),
            r.digits(2)
        ),
    }
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| char::from(alphabet[self.below(alphabet.len() as u64) as usize]))
            .collect()
    }
    pub fn pick_var(&mut self, alphabet: &[u8], min: usize, extra: u64) -> String {
        let n = min + self.below(extra) as usize;
        self.pick(alphabet, n)
    }
    pub fn digits(&mut self, n: usize) -> String {
        self.pick(b"0123456789", n)
    }
}

pub fn base64(data: &[u8]) -> String {
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn luhn_complete(prefix: &str) -> String {
    // Append the check digit that makes the Luhn sum 0 mod 10.
    let mut sum = 0;
    for (i, d) in prefix
        .bytes()
        .rev()
        .map(|b| u32::from(b - b'0'))
        .enumerate()
    {
        sum += if i % 2 == 0 {
            if d * 2 > 9 {
                d * 2 - 9
            } else {
                d * 2
            }
        } else {
            d
        };
    }
    format!("{prefix}{}", (10 - sum % 10) % 10)
}

fn iban_check(country: &str, bban: &str) -> String {
    let mut rem: u64 = 0;
    for b in bban.bytes().chain(country.bytes()).chain(*b"00") {
        let v = if b.is_ascii_digit() {
            u64::from(b - b'0')
        } else {
            u64::from(b - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    format!("{country}{:02}{bban}", 98 - rem)
}

/// One planted secret of `rule` (the bytes that must not survive) and a line that carries it.
pub fn secret(rule: &str, r: &mut Rng) -> (String, String) {
    let s = match rule {
        "aws-access-key-id" => format!(
            "{}{}",
            ["AKIA", "ASIA"][r.below(2) as usize],
            r.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
        ),
        "aws-secret-access-key" => r.pick(B64, 40),
        "gcp-service-account-key-id" => r.pick(HEX, 40),
        "azure-storage-key" => format!("{}==", r.pick(B64, 86)),
        "github-token" => format!(
            "gh{}_{}",
            char::from(b"pousr"[r.below(5) as usize]),
            r.pick(ALNUM, 36)
        ),
        "gitlab-token" => format!("glpat-{}", r.pick(ALNUM, 20)),
        "slack-token" => format!(
            "xoxb-{}-{}-{}",
            r.digits(12),
            r.digits(13),
            r.pick(ALNUM, 24)
        ),
        "stripe-key" => format!("sk_live_{}", r.pick_var(ALNUM, 24, 75)),
        "private-key-pem" => {
            let lines: Vec<String> = (0..1 + r.below(25)).map(|_| r.pick(B64, 64)).collect();
            format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
                lines.join("\n")
            )
        }
        "jwt" => format!(
            "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJ{}.{}",
            r.pick_var(B64URL, 40, 300),
            r.pick_var(B64URL, 43, 300)
        ),
        "connection-string-password" => r.pick_var(ALNUM, 8, 24),
        "generic-secret-assignment" => r.pick_var(ALNUM, 12, 30),
        "email" => format!(
            "{}.{}@{}.example.com",
            r.pick(b"abcdefghij", 5),
            r.pick(b"klmnop", 4),
            r.pick(b"qrstuv", 6)
        ),
        "payment-card" => {
            let prefix = ["4", "51", "55", "37", "6011"][r.below(5) as usize];
            let len = if prefix == "37" { 15 } else { 16 };
            let body = format!("{prefix}{}", r.digits(len - 1 - prefix.len()));
            luhn_complete(&body)
        }
        "us-ssn" => {
            let area = loop {
                let a = 1 + r.below(899);
                if a != 666 {
                    break a;
                }
            };
            format!("{area:03}-{:02}-{:04}", 1 + r.below(99), 1 + r.below(9999))
        }
        "iban" => iban_check("DE", &r.digits(18)),
        "jwt-base64" => base64(
            format!(
                "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJ{}.{}",
                r.pick_var(B64URL, 40, 300),
                r.pick_var(B64URL, 43, 100)
            )
            .as_bytes(),
        ),
        "kubernetes-bootstrap-token" => {
            format!("{}.{}", r.pick(LOWER_DIGITS, 6), r.pick(LOWER_DIGITS, 16))
        }
        "docker-config-auth" => {
            base64(format!("{}:{}", r.pick(b"abcdefghij", 6), r.pick_var(ALNUM, 8, 30)).as_bytes())
        }
        "docker-config-json-base64" => base64(
            format!(
                "{{\"auths\":{{\"registry-{}.example.com\":{{\"auth\":\"{}\"}}}}}}",
                r.below(100),
                base64(format!("robot:{}", r.pick(ALNUM, 20)).as_bytes())
            )
            .as_bytes(),
        ),
        "phone-number" => phone(r),
        "private-key-pem-base64" => {
            let label = ["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY"][r.below(3) as usize];
            let lines: Vec<String> = (0..1 + r.below(25)).map(|_| r.pick(B64, 64)).collect();
            base64(
                format!(
                    "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
                    lines.join("\n")
                )
                .as_bytes(),
            )
        }
        other => panic!("no generator for {other}"),
    };
    let line = match rule {
        "aws-secret-access-key" => format!("aws_secret_access_key = {s}"),
        "gcp-service-account-key-id" => format!("{{\"type\": \"service_account\", \"private_key_id\": \"{s}\", \"client_id\": \"1\"}}"),
        "azure-storage-key" => format!("DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={s};EndpointSuffix=core.windows.net"),
        "connection-string-password" => {
            let scheme = ["postgres", "postgresql", "mysql", "mongodb", "redis", "amqp"][r.below(6) as usize];
            format!("DATABASE_URL={scheme}://app:{s}@db-0:5432/app")
        }
        "generic-secret-assignment" => {
            let key = ["password", "DB_PASSWORD", "secret", "api_key", "token", "client_secret"][r.below(6) as usize];
            let sep = [": ", "=", " = ", ": \""][r.below(4) as usize];
            format!("{key}{sep}{s}")
        }
        // Contexts that name the token without an assignment another rule would also take.
        "kubernetes-bootstrap-token" => match r.below(3) {
            0 => format!("kubeadm join 10.0.{}.{}:6443 --token {s} --discovery-token-ca-cert-hash sha256:{}", r.below(255), r.below(255), r.pick(HEX, 64)),
            1 => format!("$ kubeadm token create --ttl 2h\r\n{s}\r\n$ "),
            _ => format!("kubeadm join api.example:6443 --token {s}"),
        },
        "docker-config-auth" => {
            let q = ["\"", "\\\""][r.below(2) as usize];
            format!("{{{q}auths{q}:{{{q}registry-{}.example.com{q}:{{{q}auth{q}: {q}{s}{q}}}}}}}", r.below(100))
        }
        "phone-number" => format!("customer phone {s}, callback requested"),
        "private-key-pem-base64" => format!("    client-key-data: {s}"),
        _ => format!("value {s} seen"),
    };
    (
        s,
        format!("2026-11-27T09:59:20.123Z INFO handler: {line} (req 42)"),
    )
}

/// A harmless line that looks like it might hold a secret.
pub fn lookalike(r: &mut Rng) -> String {
    let harmless = [
        "the quick brown fox jumps over the lazy dog",
        "apiVersion: v1\nkind: ConfigMap",
        "hello world, this is a perfectly harmless sentence",
        "{\"replicas\": 3, \"strategy\": \"RollingUpdate\"}",
    ];
    let body = match r.below(30) {
        0 => format!(
            "uid: {}-{}-{}-{}-{}",
            r.pick(HEX, 8),
            r.pick(HEX, 4),
            r.pick(HEX, 4),
            r.pick(HEX, 4),
            r.pick(HEX, 12)
        ),
        1 => format!(
            "\"resourceVersion\": \"{}\"",
            r.pick_var(b"0123456789", 6, 6)
        ),
        2 => format!("image: registry.k8s.io/pause@sha256:{}", r.pick(HEX, 64)),
        3 => format!(
            "commit {} Merge pull request #{}",
            r.pick(HEX, 40),
            r.digits(4)
        ),
        4 => format!("data: {}", base64(harmless[r.below(4) as usize].as_bytes())),
        5 => format!("ts={}{} latency_ms={}", 17, r.digits(11), r.digits(3)),
        6 => format!(
            "client 10.{}.{}.{}:{} connected",
            r.below(255),
            r.below(255),
            r.below(255),
            r.digits(5)
        ),
        7 => format!(
            "pod api-{}-{} Running",
            r.pick(b"0123456789bcdf", 10),
            r.pick(b"bcdfghjklmnpqrstvwxz2456789", 5)
        ),
        8 => "password: ${DB_PASSWORD}".to_owned(),
        9 => "secretName: api-tls\ntoken: <redacted>".to_owned(),
        10 => format!(
            "order {} total 1234.56 EUR",
            r.digits(16).replacen(|c: char| c.is_ascii_digit(), "1", 1)
        ),
        11 => format!("span_id={} trace_id={}", r.pick(HEX, 16), r.pick(HEX, 32)),
        12 => "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----"
            .to_owned(),
        13 => format!(
            "date 2026-{:02}-{:02} build {}.{}.{}",
            1 + r.below(12),
            1 + r.below(28),
            r.below(9),
            r.below(40),
            r.below(9)
        ),
        14 => format!("eyJhbGciOiJIUzI1NiJ9 header-only {}", r.pick(ALNUM, 10)),
        15 => format!("checksum {}", r.pick(B64, 44)),
        16 => "token=xxxxxxxxxxxxxxxxxxxx secret=changeme".to_owned(),
        17 => format!("postgres://db-{}:5432/app?sslmode=require", r.below(9)),
        18 => format!(
            "tz +0{} uptime +{}s build v1.{}.{}+{}",
            r.digits(3),
            r.digits(4),
            r.below(30),
            r.below(9),
            r.digits(12)
        ),
        // Bootstrap-token look-alikes: the shape without the context, the context without the shape.
        20 => format!(
            "resolved {}.{} in {}ms",
            r.pick(LOWER_DIGITS, 6),
            r.pick(LOWER_DIGITS, 16),
            r.below(900)
        ),
        21 => format!("kubeadm join 10.0.0.1:6443 --token ${{BOOTSTRAP_TOKEN}} --discovery-token-ca-cert-hash sha256:{}", r.pick(HEX, 64)),
        22 => format!(
            "token kube-proxy.{} and bootstrap token {}.{} ttl 24h, secretName: {}-token",
            r.pick(LOWER_DIGITS, 16),
            r.pick(LOWER_DIGITS, 5),
            r.pick(LOWER_DIGITS, 16),
            r.pick(b"abcdef", 5)
        ),
        // Phone look-alikes: offsets, versions, ids, addresses, durations, counters.
        23 => format!(
            "{}-{:02}-{:02}T09:59:20+0{}:00 pid {} took {} ns",
            2000 + r.below(40),
            1 + r.below(12),
            1 + r.below(28),
            r.below(9),
            r.digits(7),
            r.digits(9)
        ),
        24 => format!(
            "request {}-{}-4{}-a{}-{} from 192.168.{}.{}:{} retry +{}ms",
            r.digits(8),
            r.digits(4),
            r.digits(3),
            r.digits(3),
            r.digits(12),
            r.below(255),
            r.below(255),
            r.digits(4),
            r.digits(3)
        ),
        25 => format!("go1.{}.{} linux/amd64 +{}.{}.{}.{}", r.below(30), r.below(9), 1 + r.below(254), r.below(255), r.below(255), r.below(255)),
        // Registry-auth look-alikes: redacted, not base64 of user:password, other fields.
        26 => format!(
            "{{\"auths\":{{\"r.example.com\":{{\"auth\":\"{}\",\"authType\":\"basic\"}}}}}}",
            base64(r.pick(b"abcdefghij", 12).as_bytes())
        ),
        27 => "{\"auth\": \"<redacted>\", \"identitytoken\": \"\"}".to_owned(),
        // A base64 JWT header alone, and base64 of an empty Docker config.
        28 => "data: ZXlKaGJHY2lPaUpTVXpJMU5pSXNJbXRwWkNJNklqRWlmUQ== eyJhdXRocyI6e319".to_owned(),
        // A kubeconfig's certificates and a public key in base64: public, unlike client-key-data.
        29 => {
            let label = ["CERTIFICATE", "PUBLIC KEY", "RSA PUBLIC KEY"][r.below(3) as usize];
            let field = ["certificate-authority-data", "client-certificate-data", "ca.crt"]
                [r.below(3) as usize];
            let pem = format!(
                "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
                r.pick(B64, 64)
            );
            format!("    {field}: {}", base64(pem.as_bytes()))
        }
        _ => format!("user@localhost and @{} mention", r.pick(b"abcdef", 6)),
    };
    format!("2026-11-27T09:59:20.123Z INFO {body}")
}

//! Kubernetes-aware masking of one parsed JSON document: a single object, a list, a `Table`, a watch
//! event. Fields known to hold secrets are replaced whole (Secret `data` by the base64 of the marker,
//! so typed clients still decode them; `stringData`; TokenRequest `status.token`; env values with a
//! secret-looking name; values of secret-looking flags in `args`/`command`; fields named like a
//! password anywhere); the `last-applied-configuration` annotation is parsed and masked inside; every
//! other string goes through the detectors (length-preserving within the string).

use base64::Engine;
use serde_json::{Map, Value};

use crate::detector::Detector;
use crate::helm;
use crate::profile::{HelmReleases, Profile, Reveal, MARKER, MARKER_BASE64};
use crate::text::{mask_text, MaskCounts};

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const HELM_RELEASE_TYPE: &str = "helm.sh/release.v1";
/// Strings shorter than this cannot hold any detector's smallest finding.
const MIN_SCAN: usize = 6;

/// What the request said about the response, for objects that do not name their kind (list items).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hint {
    /// The kind the request's resource serves (`Secret` for `secrets`), when Custos knows it.
    pub kind: Option<String>,
    /// Exact strings the detectors leave alone: the caller's own user name (an e-mail address the
    /// apiserver repeats in its messages, `User "x@bank.example" cannot ...`).
    pub exempt: Vec<String>,
}

impl Hint {
    /// The hint for a request on `resource` (and `subresource`) in API group `group`.
    pub fn for_resource(group: &str, resource: &str, subresource: &str) -> Self {
        let kind = match (group, resource, subresource) {
            ("", "secrets", "") => Some("Secret"),
            ("", "configmaps", "") => Some("ConfigMap"),
            ("", "serviceaccounts", "token") => Some("TokenRequest"),
            ("", "pods", "") => Some("Pod"),
            _ => None,
        };
        Self {
            kind: kind.map(str::to_owned),
            exempt: Vec::new(),
        }
    }
}

/// Masks parsed documents with one detector and profile, counting what it masked by rule.
pub struct Masking<'a> {
    detector: &'a Detector,
    profile: &'a Profile,
    counts: &'a mut MaskCounts,
    /// Whether strings go through the detectors (the caller may know none can match).
    scan: bool,
    /// Strings the detectors leave alone (see [`Hint::exempt`]).
    exempt: Vec<String>,
}

impl<'a> Masking<'a> {
    /// A masking pass; `scan: false` skips the detectors (field rules still apply).
    pub fn new(
        detector: &'a Detector,
        profile: &'a Profile,
        counts: &'a mut MaskCounts,
        scan: bool,
    ) -> Self {
        Self {
            detector,
            profile,
            counts,
            scan,
            exempt: Vec::new(),
        }
    }

    /// Leaves `exempt` strings alone when the detectors find exactly them.
    pub fn exempting(mut self, exempt: &[String]) -> Self {
        self.exempt = exempt.to_vec();
        self
    }

    /// Masks a whole response or request document: watch event, Table, list or object.
    pub fn document(&mut self, v: &mut Value, hint: &Hint) {
        if is_watch_event(v) {
            if let Some(obj) = v.get_mut("object") {
                self.document(obj, hint);
            }
            return;
        }
        match kind_of(v) {
            Some("Table") => self.table(v, hint),
            k if k.is_none_or(|k| k.ends_with("List"))
                && v.get("items").is_some_and(Value::is_array) =>
            {
                // Items name no kind: the list's says it, else the request's.
                let item_hint = match k {
                    Some(k) => Hint {
                        kind: Some(k.trim_end_matches("List").to_owned()),
                        exempt: hint.exempt.clone(),
                    },
                    None => hint.clone(),
                };
                if let Some(Value::Array(items)) = v.get_mut("items") {
                    for item in items {
                        self.object(item, &item_hint);
                    }
                }
                self.members_except(v, &["items"]);
            }
            _ => self.object(v, hint),
        }
    }

    /// Masks the members of a list or table frame other than `skip` (already masked item by item).
    pub fn members_except(&mut self, v: &mut Value, skip: &[&str]) {
        if let Value::Object(map) = v {
            for (k, child) in map.iter_mut() {
                if !skip.contains(&k.as_str()) {
                    self.walk(k, child);
                }
            }
        }
    }

    /// Masks one `Table` row: its object by kind, its cells through the detectors.
    pub fn row(&mut self, row: &mut Value, hint: &Hint) {
        if let Value::Object(map) = row {
            for (k, child) in map.iter_mut() {
                match k.as_str() {
                    "object" => self.document(child, hint),
                    _ => self.walk(k, child),
                }
            }
        }
    }

    fn table(&mut self, v: &mut Value, hint: &Hint) {
        if let Some(Value::Array(rows)) = v.get_mut("rows") {
            for row in rows {
                self.row(row, hint);
            }
        }
        self.members_except(v, &["rows"]);
    }

    /// Masks one object of kind `kind_of(v)`, else `hint.kind`. Strings are scanned first, then the
    /// field rules replace whole values (so the detectors never see a marker).
    pub fn object(&mut self, v: &mut Value, hint: &Hint) {
        let kind = kind_of(v).or(hint.kind.as_deref()).map(str::to_owned);
        let Value::Object(map) = v else {
            return self.walk("", v);
        };
        // Handled by kind below, never scanned as text: base64 would hide nothing from the field
        // rule, and a revealing profile must see them as they are.
        let skip: &[&str] = match kind.as_deref() {
            Some("Secret") => &["data", "stringData"],
            Some("ConfigMap") => &["binaryData"],
            _ => &[],
        };
        for (k, child) in map.iter_mut() {
            if !skip.contains(&k.as_str()) {
                self.walk(k, child);
            }
        }
        match kind.as_deref() {
            Some("Secret") => self.secret(map),
            Some("ConfigMap") => self.config_map(map),
            Some("TokenRequest") => {
                if let Some(Value::Object(status)) = map.get_mut("status") {
                    if let Some(t) = status.get_mut("token") {
                        self.replace(t, MARKER, "k8s-token");
                    }
                }
            }
            _ => {}
        }
    }

    /// The last-applied annotation: parsed, masked as the object it is, written back; masked whole
    /// if it does not parse.
    fn last_applied(&mut self, text: &mut String) {
        match serde_json::from_str::<Value>(text) {
            Ok(mut inner) => {
                self.object(&mut inner, &Hint::default());
                *text = inner.to_string();
            }
            Err(_) => {
                *text = MARKER.to_owned();
                self.counts.add("last-applied-configuration");
            }
        }
    }

    fn secret(&mut self, map: &mut Map<String, Value>) {
        let helm = map.get("type").and_then(Value::as_str) == Some(HELM_RELEASE_TYPE);
        let secrets = self.profile.secrets;
        let helm_mode = self.profile.helm_releases;
        if let Some(Value::Object(data)) = map.get_mut("data") {
            for (k, val) in data.iter_mut() {
                if helm && k == "release" {
                    match helm_mode {
                        HelmReleases::Reveal => {}
                        HelmReleases::Mask => self.replace(val, MARKER_BASE64, "helm-release"),
                        HelmReleases::Inside => {
                            let masked = val
                                .as_str()
                                .and_then(|s| helm::mask_release(s, self.detector, self.counts));
                            match masked {
                                Some(s) => *val = Value::String(s),
                                None => self.replace(val, MARKER_BASE64, "helm-release"),
                            }
                        }
                    }
                } else if secrets == Reveal::Mask {
                    self.replace(val, MARKER_BASE64, "k8s-secret-data");
                }
            }
        }
        if secrets == Reveal::Mask {
            if let Some(Value::Object(data)) = map.get_mut("stringData") {
                for val in data.values_mut() {
                    self.replace(val, MARKER, "k8s-secret-data");
                }
            }
        }
    }

    fn config_map(&mut self, map: &mut Map<String, Value>) {
        let Some(Value::Object(data)) = map.get_mut("binaryData") else {
            return;
        };
        for val in data.values_mut() {
            let Some(bytes) = val
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            else {
                // Not base64: the apiserver never sends that; mask rather than guess.
                self.replace(val, MARKER_BASE64, "k8s-binary-data");
                continue;
            };
            let mut copy = bytes;
            let found = mask_text(self.detector, &mut copy);
            if found.total() > 0 {
                self.counts.merge(&found);
                *val = Value::String(MARKER_BASE64.to_owned());
            }
        }
    }

    /// Walks any value under key `key`: containers, secret-named fields, strings.
    fn walk(&mut self, key: &str, v: &mut Value) {
        match v {
            Value::String(s) if key == LAST_APPLIED => self.last_applied(s),
            Value::String(s) => {
                if is_sensitive_key(key) && !s.is_empty() && s != MARKER && s != MARKER_BASE64 {
                    *s = MARKER.to_owned();
                    self.counts.add("sensitive-field");
                } else {
                    self.text(s);
                }
            }
            Value::Array(items) => {
                let containers =
                    matches!(key, "containers" | "initContainers" | "ephemeralContainers");
                for item in items.iter_mut() {
                    self.walk("", item);
                    if containers {
                        self.container(item);
                    }
                }
            }
            Value::Object(map) => {
                if map.contains_key("apiVersion") && map.contains_key("kind") && !key.is_empty() {
                    // An embedded object (e.g. a RawExtension): mask it by its own kind.
                    return self.object(v, &Hint::default());
                }
                for (k, child) in map.iter_mut() {
                    self.walk(k, child);
                }
            }
            _ => {}
        }
    }

    fn container(&mut self, c: &mut Value) {
        let Value::Object(c) = c else { return };
        if let Some(Value::Array(env)) = c.get_mut("env") {
            for e in env {
                let Value::Object(e) = e else { continue };
                let sensitive = e
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(is_sensitive_env_name);
                if sensitive {
                    if let Some(v) = e.get_mut("value") {
                        self.replace(v, MARKER, "k8s-env-sensitive-name");
                    }
                }
            }
        }
        for key in ["args", "command"] {
            if let Some(Value::Array(args)) = c.get_mut(key) {
                self.args(args);
            }
        }
    }

    /// `--password=x` → the value masked; `--password x` → the next argument masked.
    fn args(&mut self, args: &mut [Value]) {
        let mut mask_next = false;
        for a in args.iter_mut() {
            let Value::String(s) = a else {
                mask_next = false;
                continue;
            };
            if mask_next && !s.starts_with('-') {
                *s = MARKER.to_owned();
                self.counts.add("sensitive-flag");
                mask_next = false;
                continue;
            }
            mask_next = false;
            let Some(flag) = s.strip_prefix("--").or_else(|| s.strip_prefix('-')) else {
                continue;
            };
            match flag.split_once('=') {
                Some((name, value)) if is_sensitive_key(name) && !value.is_empty() => {
                    let keep = s.len() - value.len();
                    s.truncate(keep);
                    s.push_str(MARKER);
                    self.counts.add("sensitive-flag");
                }
                None if is_sensitive_key(flag) => mask_next = true,
                _ => {}
            }
        }
    }

    fn replace(&mut self, v: &mut Value, marker: &str, rule: &str) {
        match v {
            Value::Null => {}
            Value::String(s) if s.is_empty() || s == marker => {}
            _ => {
                *v = Value::String(marker.to_owned());
                self.counts.add(rule);
            }
        }
    }

    fn text(&mut self, s: &mut String) {
        if !self.scan || s.len() < MIN_SCAN || s == MARKER || s == MARKER_BASE64 {
            return;
        }
        let mut bytes = std::mem::take(s).into_bytes();
        if self.exempt.is_empty() {
            let found = mask_text(self.detector, &mut bytes);
            self.counts.merge(&found);
        } else {
            for f in self.detector.scan(&bytes) {
                let span = &bytes[f.start..f.end];
                if self.exempt.iter().any(|e| e.as_bytes() == span) {
                    continue;
                }
                bytes[f.start..f.end]
                    .iter_mut()
                    .filter(|b| **b != b'\n' && **b != b'\r')
                    .for_each(|b| *b = crate::text::MASK_BYTE);
                self.counts.add(&self.detector.rules()[f.rule].id);
            }
        }
        *s = String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    }
}

fn kind_of(v: &Value) -> Option<&str> {
    v.get("kind").and_then(Value::as_str)
}

fn is_watch_event(v: &Value) -> bool {
    match v {
        Value::Object(m) => {
            m.len() == 2 && m.get("type").is_some_and(Value::is_string) && m.contains_key("object")
        }
        _ => false,
    }
}

/// Field and flag names whose value is a secret wherever they appear (compared lower-cased with `-`,
/// `_` and `.` removed, without allocating: this runs for every key of every object).
fn is_sensitive_key(key: &str) -> bool {
    const NAMES: [&str; 21] = [
        "password",
        "passwd",
        "pwd",
        "secret",
        "clientsecret",
        "apikey",
        "apitoken",
        "token",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "authtoken",
        "bearertoken",
        "privatekey",
        "secretkey",
        "secretaccesskey",
        "accesskeysecret",
        "connectionstring",
        "dbpassword",
        "adminpassword",
        "rootpassword",
    ];
    if key.is_empty() || key.len() > 32 {
        return false;
    }
    let mut buf = [0u8; 32];
    let mut n = 0;
    for b in key.bytes() {
        if !matches!(b, b'-' | b'_' | b'.') {
            buf[n] = b.to_ascii_lowercase();
            n += 1;
        }
    }
    let norm = &buf[..n];
    NAMES.iter().any(|name| name.as_bytes() == norm)
}

/// Environment variable names that hold secrets (`DB_PASSWORD`, `GITHUB_TOKEN`, `API_KEY`, ...).
fn is_sensitive_env_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
        "ACCESS_KEY",
        "AUTH",
        "PASSPHRASE",
        "CONNECTION_STRING",
        "DSN",
    ]
    .iter()
    .any(|w| n.contains(w))
}

impl MaskCounts {
    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &MaskCounts) {
        for (rule, n) in other.iter() {
            for _ in 0..n {
                self.add(rule);
            }
        }
    }
}

/// Masks one parsed document (strict or per `profile`), returning what was masked by rule.
pub fn mask_document(
    detector: &Detector,
    profile: &Profile,
    hint: &Hint,
    v: &mut Value,
) -> MaskCounts {
    let mut counts = MaskCounts::default();
    Masking::new(detector, profile, &mut counts, true)
        .exempting(&hint.exempt)
        .document(v, hint);
    counts
}

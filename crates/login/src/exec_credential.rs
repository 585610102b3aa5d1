//! The `client.authentication.k8s.io/v1` `ExecCredential` an exec plugin prints for kubectl.

use serde_json::json;

/// The JSON kubectl reads from `custos token`: the bearer token and when it expires.
pub fn exec_credential(token: &str, expires_at_unix: Option<u64>) -> String {
    let mut status = json!({ "token": token });
    if let Some(t) = expires_at_unix.and_then(rfc3339) {
        status["expirationTimestamp"] = json!(t);
    }
    json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": status,
    })
    .to_string()
}

/// The environment variable kubectl passes an exec plugin its request in.
pub const EXEC_INFO_ENV: &str = "KUBERNETES_EXEC_INFO";

/// Whether kubectl says a person can be asked (its `KUBERNETES_EXEC_INFO` request's
/// `spec.interactive`): `Some(false)` when kubectl runs the plugin without a terminal (an agent, a
/// pipeline, `interactiveMode: Never`), `None` when run by hand or the request is unreadable.
pub fn kubectl_interactive(exec_info: Option<&str>) -> Option<bool> {
    let info: serde_json::Value = serde_json::from_str(exec_info?).ok()?;
    info.get("kind")
        .and_then(|k| k.as_str())
        .filter(|k| *k == "ExecCredential")?;
    info.get("spec")?.get("interactive")?.as_bool()
}

/// Formats seconds since the epoch as RFC 3339 UTC (`2026-11-27T08:00:00Z`).
fn rfc3339(secs: u64) -> Option<String> {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(i64::try_from(days).ok()?);
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_says_whether_a_person_can_be_asked() {
        let info = |interactive: &str| {
            format!(
                r#"{{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{{"interactive":{interactive}}}}}"#
            )
        };
        assert_eq!(kubectl_interactive(Some(&info("false"))), Some(false));
        assert_eq!(kubectl_interactive(Some(&info("true"))), Some(true));
        assert_eq!(kubectl_interactive(None), None, "run by hand");
        for odd in [
            "",
            "not json",
            r#"{"kind":"ExecCredential","spec":{}}"#,
            r#"{"kind":"Other","spec":{"interactive":false}}"#,
            r#"{"kind":"ExecCredential","spec":{"interactive":"no"}}"#,
        ] {
            assert_eq!(kubectl_interactive(Some(odd)), None, "{odd}");
        }
    }

    #[test]
    fn exec_credential_has_token_and_rfc3339_expiry() {
        let v: serde_json::Value =
            serde_json::from_str(&exec_credential("t0k", Some(1_795_766_716))).expect("json");
        assert_eq!(v["kind"], "ExecCredential");
        assert_eq!(v["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(v["status"]["token"], "t0k");
        assert_eq!(v["status"]["expirationTimestamp"], "2026-11-27T08:05:16Z");
    }

    #[test]
    fn epoch_and_leap_day_format_correctly() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(951_782_400).as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
    }
}

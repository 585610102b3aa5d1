//! What a recording's header and closing record say, from the request and the error channel.

use custos_audit::record::{Record, ResponseStatus};
use custos_recording::{Facts, Identity, SessionInfo};

use crate::recorder::now;

/// What the header says about the stream: from the request (query and upgrade headers) and its
/// record (who, which pod, which session).
pub(crate) fn facts(
    parts: &http::request::Parts,
    request: &Record,
    kind: &str,
    gateway: &str,
) -> Facts {
    let query = query_pairs(parts.uri.query().unwrap_or(""));
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let flag = |k: &str| get(k).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True"));
    let identity = |u: &custos_audit::record::UserInfo| Identity {
        username: u.username.clone(),
        groups: u.groups.clone(),
    };
    let header = |name: http::header::HeaderName| {
        parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty() && !v.starts_with("base64url.bearer.authorization"))
            .collect::<Vec<_>>()
    };
    let mut subprotocols = header(http::header::SEC_WEBSOCKET_PROTOCOL);
    subprotocols.extend(header(http::header::HeaderName::from_static(
        "x-stream-protocol-version",
    )));
    let object = request.object_ref.clone().unwrap_or_default();
    Facts {
        audit_id: request.audit_id.clone().unwrap_or_default(),
        kind: kind.to_owned(),
        namespace: object.namespace,
        pod: object.name,
        container: get("container"),
        command: query
            .iter()
            .filter(|(n, _)| n == "command")
            .map(|(_, v)| v.clone())
            .collect(),
        identity: request.user.as_ref().map(identity).unwrap_or_default(),
        acting_as: request.impersonated_user.as_ref().map(identity),
        session: request.custos.session.as_ref().map(|s| SessionInfo {
            id: s.id.clone(),
            intent: s.intent.clone(),
            ticket: s.ticket.clone(),
        }),
        tty: flag("tty"),
        stdin: flag("stdin"),
        protocol: parts
            .headers
            .get(http::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(64)
            .collect(),
        subprotocols,
        started: now(),
        gateway: Some(gateway.to_owned()),
    }
}

/// `a=1&b=x+y&b=%2F` → `[(a, 1), (b, x y), (b, /)]`, read as Go's `url.ParseQuery` reads it (the
/// apiserver and the kubelet do): a pair holding `;` or a malformed `%` escape is dropped whole, so
/// what is recorded (the command, the ports) is what the cluster acted on.
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| -> Option<String> {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let hex = |c: Option<&u8>| c.is_some_and(u8::is_ascii_hexdigit);
                if !(hex(b.get(i + 1)) && hex(b.get(i + 2))) {
                    return None;
                }
                i += 3;
            } else {
                i += 1;
            }
        }
        Some(
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned(),
        )
    };
    query
        .split('&')
        .filter(|p| !p.is_empty() && !p.contains(';'))
        .filter_map(|p| match p.split_once('=') {
            Some((k, v)) => Some((decode(k)?, decode(v)?)),
            None => Some((decode(p)?, String::new())),
        })
        .collect()
}

/// The parts of the error channel's `Status` a record keeps.
pub(super) fn exit_status(v: &serde_json::Value) -> ResponseStatus {
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    ResponseStatus {
        code: v
            .get("code")
            .and_then(|c| c.as_u64())
            .and_then(|c| u16::try_from(c).ok()),
        reason: text("reason").or_else(|| text("status")),
        message: text("message").map(|m| m.chars().take(1024).collect()),
    }
}

/// The exit code a `Status` reports: 0 for Success; the `ExitCode` cause of NonZeroExitCode; or
/// `exit status N` in the message (kwok, some runtimes).
pub(super) fn exit_code(v: &serde_json::Value) -> Option<i64> {
    if v.get("status").and_then(|s| s.as_str()) == Some("Success") {
        return Some(0);
    }
    let causes = v.pointer("/details/causes").and_then(|c| c.as_array());
    if let Some(code) = causes
        .into_iter()
        .flatten()
        .filter(|c| c.get("reason").and_then(|r| r.as_str()) == Some("ExitCode"))
        .find_map(|c| c.get("message")?.as_str()?.trim().parse().ok())
    {
        return Some(code);
    }
    let message = v.get("message")?.as_str()?;
    let at = message.rfind("exit status ")?;
    let digits: String = message[at + "exit status ".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

//! Request bodies: the generic JSON document and the Slack-compatible message. Pure: an [`Event`] in,
//! a JSON value out.
//!
//! Slack bodies respect Block Kit's limits (section text 3000 characters, a section field 2000, a
//! header 150, the fallback `text` kept to 3000) by truncating with `…`, and escape `&`, `<` and `>`
//! in everything that came from people: an agent's intent must not be able to ping `@channel` or dress
//! up a link.

use serde_json::{json, Value};

use crate::{Event, EventKind, Format};

/// The longest section text and fallback `text`, in characters.
pub const SLACK_TEXT_MAX: usize = 3000;
/// The longest text of one section field, in characters.
pub const SLACK_FIELD_MAX: usize = 2000;
/// The longest header text, in characters.
pub const SLACK_HEADER_MAX: usize = 150;

impl Format {
    /// The body this format sends for `event`.
    pub fn render(self, event: &Event) -> Value {
        match self {
            Format::Generic => generic(event),
            Format::Slack => slack(event),
        }
    }

    /// The exact bytes sent (and signed) for `event`.
    pub(crate) fn body(self, event: &Event) -> Vec<u8> {
        serde_json::to_vec(&self.render(event)).expect("a JSON value always serializes")
    }
}

/// `{"kind":…,"reviewId":…,"summary":…,"at":…,"review":{…}}`.
pub fn generic(event: &Event) -> Value {
    json!({
        "kind": event.kind.as_str(),
        "reviewId": event.review_id,
        "summary": event.summary,
        "at": event.at,
        "review": event.payload,
    })
}

/// A Slack incoming-webhook message: `text` (the summary, for notifications and old clients) and
/// `blocks`: a header, the summary, the facts as fields, the commands to decide (for a requested
/// review) or to revoke (for a created grant), and a context line.
pub fn slack(event: &Event) -> Value {
    let review = &event.payload;
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(&format!("{}: {}", event.kind.title(), event.review_id), SLACK_HEADER_MAX),
            },
        }),
        section(&mrkdwn(&event.summary, SLACK_TEXT_MAX)),
    ];
    let fields: Vec<Value> = facts(event.kind, review)
        .iter()
        .map(|(label, value, as_code)| {
            json!({ "type": "mrkdwn", "text": field(label, value, *as_code) })
        })
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    if event.kind == EventKind::ReviewRequested {
        let id = mrkdwn(&code_text(&event.review_id), 100);
        let commands = format!(
            "*Approve:* `custos reviews approve {id} --reason \"…\"`\n\
             *Deny:* `custos reviews deny {id} --reason \"…\"`"
        );
        blocks.push(section(&truncate(&commands, SLACK_TEXT_MAX)));
    }
    if let (EventKind::GrantCreated, Some(grant)) = (event.kind, review["grantId"].as_str()) {
        let grant = mrkdwn(&code_text(grant), 100);
        let command = format!("*Revoke:* `custos reviews revoke {grant} --reason \"…\"`");
        blocks.push(section(&truncate(&command, SLACK_TEXT_MAX)));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{
            "type": "mrkdwn",
            "text": mrkdwn(&format!("custos · {} · {}", event.kind, event.at), SLACK_TEXT_MAX),
        }],
    }));
    json!({
        "text": mrkdwn(&event.summary, SLACK_TEXT_MAX),
        "blocks": blocks,
    })
}

fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

/// The labelled facts shown as fields, `(label, value, shown as code)`; missing ones are left out.
/// Slack allows 10 fields per section; there are at most 8.
fn facts(kind: EventKind, review: &Value) -> Vec<(&'static str, String, bool)> {
    let text = |v: &Value| {
        v.as_str()
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
    };
    let mut out = Vec::new();
    let mut push = |label, value: Option<String>, as_code| {
        if let Some(value) = value {
            out.push((label, value, as_code));
        }
    };
    push("Operation", describe_operation(&review["operation"]), true);
    push("Requester", text(&review["requester"]["username"]), false);
    push("Intent", text(&review["session"]["intent"]), false);
    push("Ticket", text(&review["session"]["ticket"]), false);
    push("Why held", text(&review["reason"]), false);
    let approvers = review["approvers"].as_array().map(|groups| {
        let names: Vec<&str> = groups.iter().filter_map(Value::as_str).collect();
        let needed = review["threshold"].as_u64().unwrap_or(1).max(1);
        format!("{} ({needed} needed)", names.join(", "))
    });
    if kind == EventKind::ReviewRequested {
        push("Approvers", approvers, false);
        push("Expires", text(&review["expires"]), false);
    } else {
        push("Decisions", decisions(&review["votes"]), false);
    }
    if matches!(kind, EventKind::GrantCreated | EventKind::GrantRevoked) {
        push("Grant", text(&review["grantId"]), true);
    }
    out
}

/// `delete deployments.apps/payments -n prod-eu`, from the review's `operation`.
fn describe_operation(op: &Value) -> Option<String> {
    let part = |key: &str| op[key].as_str().unwrap_or_default();
    let verb = part("verb");
    if verb.is_empty() {
        return None;
    }
    let mut resource = part("resource").to_owned();
    for (key, sep) in [("apiGroup", "."), ("name", "/"), ("subresource", "/")] {
        if !part(key).is_empty() {
            resource = format!("{resource}{sep}{}", part(key));
        }
    }
    let mut out = format!("{verb} {resource}");
    if !part("namespace").is_empty() {
        out.push_str(&format!(" -n {}", part("namespace")));
    }
    Some(out)
}

/// One line per vote: `oncall@x approve: INC-1 rollback`.
fn decisions(votes: &Value) -> Option<String> {
    let lines: Vec<String> = votes
        .as_array()?
        .iter()
        .map(|v| {
            format!(
                "{} {}: {}",
                v["by"]["username"].as_str().unwrap_or("?"),
                v["verdict"].as_str().unwrap_or("?"),
                v["justification"].as_str().unwrap_or_default()
            )
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// `*Label*\nvalue`, escaped, within [`SLACK_FIELD_MAX`].
fn field(label: &str, value: &str, as_code: bool) -> String {
    let head = format!("*{label}*\n");
    let room = SLACK_FIELD_MAX - head.chars().count();
    if as_code {
        // Two backticks around the code; truncating inside them keeps the span closed.
        format!("{head}`{}`", mrkdwn(&code_text(value), room - 2))
    } else {
        format!("{head}{}", mrkdwn(value, room))
    }
}

/// Text that can sit between backticks: no backticks or line breaks of its own.
fn code_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '`' => '\'',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect()
}

/// `text` with `&`, `<` and `>` escaped as Slack asks, cut to at most `max` characters (with `…`)
/// without splitting an escape.
fn mrkdwn(text: &str, max: usize) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    if escaped.chars().count() <= max {
        return escaped;
    }
    let mut cut: String = escaped.chars().take(max.saturating_sub(1)).collect();
    // A cut through `&amp;` would leave `&am`, which Slack shows as is; drop the partial escape.
    if let Some(amp) = cut.rfind('&') {
        if !cut[amp..].contains(';') {
            cut.truncate(amp);
        }
    }
    cut.push('…');
    cut
}

/// At most `max` characters, the last one `…` when something was cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests;

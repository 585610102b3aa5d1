use super::*;

fn review() -> Value {
    json!({
        "id": "rv-abcdefghijkl",
        "expires": "2027-01-15T10:10:00.000000Z",
        "requester": { "username": "agent@x", "groups": ["agents"] },
        "session": { "id": "ss-1", "intent": "roll back payments after INC-1", "ticket": "INC-1" },
        "operation": {
            "verb": "delete", "apiGroup": "apps", "resource": "deployments",
            "namespace": "prod-eu", "name": "payments"
        },
        "reason": "deletes in prod need a second pair of eyes",
        "approvers": ["sre-oncall"],
        "threshold": 1,
        "state": "pending",
        "votes": []
    })
}

fn event(kind: EventKind, payload: Value) -> Event {
    Event {
        kind,
        review_id: "rv-abcdefghijkl".into(),
        summary:
            "agent@x asks to delete deployments.apps/payments -n prod-eu — intent: roll back \
                  payments after INC-1 — approve: custos reviews approve rv-abcdefghijkl --reason …"
                .into(),
        payload,
        at: "2027-01-15T10:00:00Z".into(),
    }
}

/// Every text in `blocks`, with the limit Block Kit sets for it.
fn texts_with_limits(body: &Value) -> Vec<(String, usize)> {
    let mut out = vec![(
        body["text"].as_str().expect("text").to_owned(),
        SLACK_TEXT_MAX,
    )];
    for block in body["blocks"].as_array().expect("blocks") {
        match block["type"].as_str().expect("type") {
            "header" => out.push((
                block["text"]["text"].as_str().expect("header").into(),
                SLACK_HEADER_MAX,
            )),
            "section" => {
                if let Some(text) = block["text"]["text"].as_str() {
                    out.push((text.into(), SLACK_TEXT_MAX));
                }
                for field in block["fields"].as_array().into_iter().flatten() {
                    out.push((
                        field["text"].as_str().expect("field").into(),
                        SLACK_FIELD_MAX,
                    ));
                }
            }
            "context" => {
                for element in block["elements"].as_array().expect("elements") {
                    out.push((
                        element["text"].as_str().expect("element").into(),
                        SLACK_TEXT_MAX,
                    ));
                }
            }
            other => panic!("unexpected block {other}"),
        }
    }
    out
}

#[test]
fn the_generic_body_carries_the_event_and_the_review() {
    let body = Format::Generic.render(&event(EventKind::ReviewRequested, review()));
    assert_eq!(body["kind"], "review.requested");
    assert_eq!(body["reviewId"], "rv-abcdefghijkl");
    assert_eq!(body["at"], "2027-01-15T10:00:00Z");
    assert!(body["summary"]
        .as_str()
        .expect("summary")
        .starts_with("agent@x asks"));
    assert_eq!(body["review"], review());
    assert_eq!(body.as_object().expect("object").len(), 5);
}

#[test]
fn a_slack_request_shows_the_facts_and_the_commands() {
    let body = Format::Slack.render(&event(EventKind::ReviewRequested, review()));
    assert!(body["text"]
        .as_str()
        .expect("text")
        .starts_with("agent@x asks to delete"));
    let blocks = body["blocks"].as_array().expect("blocks");
    let types: Vec<&str> = blocks
        .iter()
        .map(|b| b["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        ["header", "section", "section", "section", "context"]
    );
    assert_eq!(
        blocks[0]["text"]["text"],
        "Review requested: rv-abcdefghijkl"
    );
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    let fields: Vec<&str> = blocks[2]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["text"].as_str().expect("text"))
        .collect();
    assert_eq!(
        fields,
        [
            "*Operation*\n`delete deployments.apps/payments -n prod-eu`",
            "*Requester*\nagent@x",
            "*Intent*\nroll back payments after INC-1",
            "*Ticket*\nINC-1",
            "*Why held*\ndeletes in prod need a second pair of eyes",
            "*Approvers*\nsre-oncall (1 needed)",
            "*Expires*\n2027-01-15T10:10:00.000000Z",
        ]
    );
    let commands = blocks[3]["text"]["text"].as_str().expect("commands");
    assert!(
        commands.contains("`custos reviews approve rv-abcdefghijkl --reason \"…\"`"),
        "{commands}"
    );
    assert!(
        commands.contains("`custos reviews deny rv-abcdefghijkl --reason \"…\"`"),
        "{commands}"
    );
}

#[test]
fn a_slack_grant_shows_the_votes_and_how_to_revoke_it() {
    let mut decided = review();
    decided["state"] = json!("approved");
    decided["grantId"] = json!("gr-123");
    decided["votes"] = json!([{
        "by": { "username": "oncall@x", "groups": ["sre-oncall"] },
        "verdict": "approve", "justification": "INC-1 rollback", "at": "2027-01-15T10:01:00.000000Z"
    }]);
    let body = Format::Slack.render(&event(EventKind::GrantCreated, decided.clone()));
    let text = body.to_string();
    assert!(
        text.contains("*Decisions*\\noncall@x approve: INC-1 rollback"),
        "{text}"
    );
    assert!(text.contains("*Grant*\\n`gr-123`"), "{text}");
    let blocks = body["blocks"].as_array().expect("blocks");
    assert_eq!(blocks.len(), 5, "header, summary, facts, revoke, context");
    assert_eq!(
        blocks[3]["text"]["text"],
        "*Revoke:* `custos reviews revoke gr-123 --reason \"…\"`"
    );
    assert!(
        !text.contains("*Approve:*") && !text.contains("*Deny:*"),
        "{text}"
    );

    let body = Format::Slack.render(&event(EventKind::ReviewApproved, decided));
    let types: Vec<&str> = body["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .map(|b| b["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        ["header", "section", "section", "context"],
        "no commands"
    );
}

#[test]
fn slack_text_from_people_cannot_mention_or_link() {
    let mut hostile = review();
    hostile["session"]["intent"] =
        json!("<!channel> see <https://evil.example|the runbook> & approve");
    hostile["operation"]["name"] = json!("pay`ments");
    let body = Format::Slack.render(&event(EventKind::ReviewRequested, hostile));
    let text = body.to_string();
    assert!(
        !text.contains("<!channel>") && !text.contains("<https://"),
        "{text}"
    );
    assert!(text
        .contains("&lt;!channel&gt; see &lt;https://evil.example|the runbook&gt; &amp; approve"));
    assert!(
        text.contains("`delete deployments.apps/pay'ments -n prod-eu`"),
        "{text}"
    );
}

#[test]
fn slack_texts_are_truncated_to_block_kit_limits() {
    let mut long = review();
    long["session"]["intent"] = json!("&".repeat(5000));
    long["operation"]["name"] = json!("n".repeat(5000));
    let mut event = event(EventKind::ReviewRequested, long);
    event.summary = "<".repeat(4000);
    event.review_id = format!("rv-{}", "x".repeat(300));
    let body = Format::Slack.render(&event);
    for (text, max) in texts_with_limits(&body) {
        assert!(
            text.chars().count() <= max,
            "{} > {max}: {}…",
            text.chars().count(),
            &text[..40]
        );
    }
    let summary = body["text"].as_str().expect("text");
    assert_eq!(
        summary.chars().count(),
        749 * 4 + 1,
        "whole `&lt;` escapes and an ellipsis"
    );
    assert!(summary.ends_with("&lt;…"), "no escape cut in half");
    let intent = body["blocks"][2]["fields"][2]["text"]
        .as_str()
        .expect("intent");
    assert!(
        intent.starts_with("*Intent*\n&amp;") && intent.ends_with("&amp;…"),
        "{}",
        &intent[..30]
    );
    let operation = body["blocks"][2]["fields"][0]["text"]
        .as_str()
        .expect("operation");
    assert!(operation.ends_with("n…`"), "the code span stays closed");
    assert_eq!(operation.chars().count(), SLACK_FIELD_MAX);
    let header = body["blocks"][0]["text"]["text"].as_str().expect("header");
    assert_eq!(header.chars().count(), SLACK_HEADER_MAX);
}

#[test]
fn a_sparse_payload_leaves_out_what_it_lacks() {
    let body = Format::Slack.render(&event(EventKind::ReviewExpired, json!({})));
    let types: Vec<&str> = body["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .map(|b| b["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types, ["header", "section", "context"]);
}

//! The replay report (no I/O): per step what was recorded, what the sandbox answered and the verdict,
//! as JSON (`report.json`, for tools) and Markdown (`report.md`, for people). Every text taken from a
//! record or the sandbox is escaped for Markdown and cut to a bounded length.

use std::collections::BTreeMap;

use custos_audit::MicroTime;
use serde::Serialize;
use serde_json::Value;

use super::diff::Difference;
use super::plan::TypeSource;

/// Most differences listed per step (the rest are counted).
pub const MAX_DIFFERENCES: usize = 50;
/// Longest value shown in the Markdown report, in characters.
const MAX_VALUE: usize = 200;

/// How one step came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Same status and normalised response.
    Match,
    /// Something differs (see the differences).
    Differ,
    /// Not replayed, for the reason given (explained, not a failure).
    NotReplayable,
    /// The replay of this step failed, or the record could not be used safely.
    Error,
}

impl Verdict {
    /// How the Markdown shows it.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Match => "match",
            Verdict::Differ => "**differ**",
            Verdict::NotReplayable => "not replayable",
            Verdict::Error => "**error**",
        }
    }
}

/// One replayed (or skipped) step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// The step's index in `custos sessions show`.
    pub index: usize,
    /// When the recorded request was received.
    pub time: Option<MicroTime>,
    /// Its audit ID.
    #[serde(rename = "auditID", skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<String>,
    /// Kubernetes verb.
    pub verb: String,
    /// Resource (with `/subresource`), or the path of a non-resource request.
    pub resource: String,
    /// Recorded namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The namespace in the sandbox, when mapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_namespace: Option<String>,
    /// Object name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What was sent: method and path (or the exec command).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<String>,
    /// The `Content-Type` the body was sent with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Where it came from: `recorded`, `inferred` or `probed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type_from: Option<TypeSource>,
    /// Recorded status code.
    pub recorded_status: Option<u16>,
    /// The sandbox's status code.
    pub replayed_status: Option<u16>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it was not replayed, or what failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What else to know (inferred content types, what was compared).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The differences, at most [`MAX_DIFFERENCES`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<Difference>,
    /// Differences beyond those listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub more_differences: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl StepReport {
    /// Sets the differences (bounded) and the verdict they imply.
    pub fn set_differences(&mut self, mut differences: Vec<Difference>) {
        self.verdict = if differences.is_empty() {
            Verdict::Match
        } else {
            Verdict::Differ
        };
        if differences.len() > MAX_DIFFERENCES {
            self.more_differences = differences.len() - MAX_DIFFERENCES;
            differences.truncate(MAX_DIFFERENCES);
        }
        self.differences = differences;
    }
}

/// Step counts by verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Steps in the report.
    pub steps: usize,
    /// Matched.
    pub matched: usize,
    /// Differed.
    pub differ: usize,
    /// Not replayable.
    pub not_replayable: usize,
    /// Errors.
    pub errors: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The session replayed.
    pub session: String,
    /// The sandbox's apiserver.
    pub against: String,
    /// Whether writes were dry runs.
    pub dry_run: bool,
    /// Recorded namespace → sandbox namespace.
    pub namespace_map: BTreeMap<String, String>,
    /// When the replay began.
    pub started: Option<MicroTime>,
    /// When it ended.
    pub finished: Option<MicroTime>,
    /// Counts by verdict.
    pub summary: Counts,
    /// The steps, in the session's order.
    pub steps: Vec<StepReport>,
}

impl Report {
    /// Recounts the summary from the steps.
    pub fn count(&mut self) {
        let mut c = Counts {
            steps: self.steps.len(),
            ..Counts::default()
        };
        for s in &self.steps {
            match s.verdict {
                Verdict::Match => c.matched += 1,
                Verdict::Differ => c.differ += 1,
                Verdict::NotReplayable => c.not_replayable += 1,
                Verdict::Error => c.errors += 1,
            }
        }
        self.summary = c;
    }

    /// Whether everything matched or was explained (exit code 0).
    pub fn passed(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s.verdict, Verdict::Match | Verdict::NotReplayable))
    }

    /// `report.json`.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            serde_json::json!({ "error": format!("report not serialisable: {e}") }).to_string()
        });
        text.push('\n');
        text
    }

    /// `report.md`.
    pub fn to_markdown(&self) -> String {
        let c = &self.summary;
        let mut out = format!("# Replay of session {}\n\n", code(&self.session));
        out.push_str(&format!("- against: {}\n", code(&self.against)));
        let map = if self.namespace_map.is_empty() {
            "none (recorded namespaces used as they are)".to_owned()
        } else {
            self.namespace_map
                .iter()
                .map(|(a, b)| format!("{} → {}", code(a), code(b)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!("- namespaces: {map}\n"));
        out.push_str(&format!(
            "- dry run: {}\n",
            if self.dry_run {
                "yes (dryRun=All on writes)"
            } else {
                "no"
            }
        ));
        out.push_str(&format!(
            "- time: {} to {}\n",
            time(self.started),
            time(self.finished)
        ));
        out.push_str(&format!(
            "- result: **{}** — {} steps: {} match, {} differ, {} not replayable, {} errors\n\n",
            if self.passed() { "PASS" } else { "FAIL" },
            c.steps,
            c.matched,
            c.differ,
            c.not_replayable,
            c.errors
        ));
        out.push_str(
            "| # | time | verb | resource | namespace | name | recorded | replayed | verdict |\n",
        );
        out.push_str(
            "|---|------|------|----------|-----------|------|----------|----------|---------|\n",
        );
        for s in &self.steps {
            let ns = match (&s.namespace, &s.sandbox_namespace) {
                (Some(a), Some(b)) if a != b => format!("{} → {}", cell(a), cell(b)),
                (Some(a), _) => cell(a),
                _ => String::new(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {ns} | {} | {} | {} | {} |\n",
                s.index,
                time(s.time),
                cell(&s.verb),
                cell(&s.resource),
                cell(s.name.as_deref().unwrap_or_default()),
                s.recorded_status.map_or("-".into(), |c| c.to_string()),
                s.replayed_status.map_or("-".into(), |c| c.to_string()),
                s.verdict.label()
            ));
        }
        self.markdown_details(&mut out);
        out
    }

    fn markdown_details(&self, out: &mut String) {
        let differing: Vec<&StepReport> = self
            .steps
            .iter()
            .filter(|s| s.verdict == Verdict::Differ)
            .collect();
        if !differing.is_empty() {
            out.push_str("\n## Differences\n");
            for s in differing {
                out.push_str(&format!("\n### #{} {}\n\n", s.index, heading(s)));
                if let Some(sent) = &s.sent {
                    out.push_str(&format!("sent: {}", code(sent)));
                    if let (Some(ct), Some(from)) = (&s.content_type, s.content_type_from) {
                        out.push_str(&format!(" as {} ({})", code(ct), from.label()));
                    }
                    out.push_str("\n\n");
                }
                out.push_str("| path | recorded | replayed |\n|------|----------|----------|\n");
                for d in &s.differences {
                    out.push_str(&format!(
                        "| {} | {} | {} |\n",
                        code(&d.path),
                        value(d.recorded.as_ref()),
                        value(d.replayed.as_ref())
                    ));
                }
                if s.more_differences > 0 {
                    out.push_str(&format!(
                        "\n…and {} more (all in report.json up to {MAX_DIFFERENCES}).\n",
                        s.more_differences
                    ));
                }
                notes(out, s);
            }
        }
        for (verdict, title) in [
            (Verdict::NotReplayable, "Not replayed"),
            (Verdict::Error, "Errors"),
        ] {
            let steps: Vec<&StepReport> =
                self.steps.iter().filter(|s| s.verdict == verdict).collect();
            if steps.is_empty() {
                continue;
            }
            out.push_str(&format!("\n## {title}\n\n"));
            for s in steps {
                out.push_str(&format!(
                    "- #{} {}: {}\n",
                    s.index,
                    heading(s),
                    text(s.reason.as_deref().unwrap_or("-"), 500)
                ));
            }
        }
        // The same note on many matching steps (discovery requests, say) is listed once.
        let mut noted: Vec<(&str, Vec<usize>)> = Vec::new();
        for s in self.steps.iter().filter(|s| s.verdict == Verdict::Match) {
            for n in &s.notes {
                match noted.iter_mut().find(|(text, _)| *text == n.as_str()) {
                    Some((_, steps)) => steps.push(s.index),
                    None => noted.push((n.as_str(), vec![s.index])),
                }
            }
        }
        if !noted.is_empty() {
            out.push_str("\n## Notes on matching steps\n\n");
            for (note, steps) in noted {
                let steps: Vec<String> = steps.iter().map(|i| format!("#{i}")).collect();
                out.push_str(&format!("- {}: {}\n", steps.join(", "), text(note, 500)));
            }
        }
    }
}

fn notes(out: &mut String, s: &StepReport) {
    for n in &s.notes {
        out.push_str(&format!("\n- note: {}", text(n, 500)));
    }
    if !s.notes.is_empty() {
        out.push('\n');
    }
}

fn heading(s: &StepReport) -> String {
    let mut h = format!("{} {}", text(&s.verb, 40), text(&s.resource, 120));
    let ns = s.sandbox_namespace.as_ref().or(s.namespace.as_ref());
    match (ns, &s.name) {
        (Some(ns), Some(n)) => h.push_str(&format!(" {}/{}", text(ns, 63), text(n, 253))),
        (None, Some(n)) => h.push_str(&format!(" {}", text(n, 253))),
        (Some(ns), None) => h.push_str(&format!(" in {}", text(ns, 63))),
        (None, None) => {}
    }
    h
}

fn time(t: Option<MicroTime>) -> String {
    t.map_or("-".to_owned(), |t| t.to_string())
}

/// Untrusted text for Markdown: one line, control characters replaced, Markdown's active characters
/// escaped, at most `max` characters.
pub fn text(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        match c {
            c if c.is_control() => out.push('?'),
            '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' | '\\' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn cell(s: &str) -> String {
    text(s, 120)
}

/// Untrusted text as inline code (backticks cannot end the span; pipes cannot end the cell).
pub fn code(s: &str) -> String {
    let mut inner: String = s
        .chars()
        .take(MAX_VALUE)
        .map(|c| match c {
            c if c.is_control() => '?',
            '`' => '\'',
            c => c,
        })
        .collect();
    if s.chars().count() > MAX_VALUE {
        inner.push('…');
    }
    format!("`{}`", inner.replace('|', "\\|"))
}

fn value(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".to_owned(),
        Some(v) => code(&v.to_string()),
    }
}

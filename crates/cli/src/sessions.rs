//! `custos sessions list | show | play`: the unit an examiner reads. A session is every request of one
//! Custos agent session token, or of one credential (an OIDC token, a client certificate) used
//! without one, in order, each with its decision, approval, grant, status and recordings.
//!
//! Read-only: records come from the store the gateway writes, recordings from `<data dir>/recordings`
//! (or `--recordings DIR`, the gateway's `recordings.dir`).
//! Record content is untrusted: text output replaces control characters, so a name cannot drive the
//! terminal (playback excepted: a recording is terminal output by nature, and was masked when recorded).

mod load;
pub mod timeline;
pub mod view;

#[cfg(test)]
mod tests;

use std::io::{self, Write as _};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use custos_audit::MicroTime;
use custos_store::LogStore;

use crate::audit_cmd::{column, open_store, parse_time, write_out, StoreArgs};
use crate::recordings::RecordingsArgs;
pub use load::{entries, scan, session_records, Window};
use timeline::{Aggregator, SessionKey, Step, Summary};
use view::Event;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A table for people
    Text,
    /// One JSON document
    Json,
}

/// Which records to read: by time (and user).
#[derive(Debug, Clone, Args)]
pub struct WindowArgs {
    /// Only records received at or after this time (RFC 3339)
    #[arg(long, value_parser = parse_time)]
    pub since: Option<MicroTime>,
    /// Only records received before this time (RFC 3339)
    #[arg(long, value_parser = parse_time)]
    pub until: Option<MicroTime>,
}

/// `custos sessions …`
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List sessions: agent sessions, and credentials used without one, with their counts.
    List {
        /// Sessions of this user (user.username, exactly as recorded)
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        window: WindowArgs,
        /// Output format
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
        output: Output,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show a session's timeline: each request with its decision, approval, grant, status, masked
    /// values and recordings.
    Show {
        /// Session id (`ss-…`, or `<method>:<token id>` as `sessions list` prints it)
        id: String,
        #[command(flatten)]
        window: WindowArgs,
        /// Output format
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
        output: Output,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Play a session's exec/attach recordings in the terminal, in order.
    Play {
        /// Session id
        id: String,
        /// Playback speed (2 = twice as fast)
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Play only the N-th recording of the session (1-based, as `sessions show` lists them)
        #[arg(long, value_name = "N")]
        stream: Option<usize>,
        #[command(flatten)]
        window: WindowArgs,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        recordings: RecordingsArgs,
    },
}

/// Runs a `sessions` subcommand.
pub async fn run(cmd: SessionsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SessionsCommand::List {
            user,
            window,
            output,
            store,
        } => {
            let log = open_store(&store).await?;
            let window = Window {
                user,
                since: window.since,
                until: window.until,
            };
            let result = list(log.as_ref(), &window).await;
            log.close().await;
            print_list(&result?, output)
        }
        SessionsCommand::Show {
            id,
            window,
            output,
            store,
        } => {
            let key = SessionKey::parse(&id).map_err(anyhow::Error::msg)?;
            let log = open_store(&store).await?;
            let result = load(log.as_ref(), &key, &window).await;
            log.close().await;
            let (summary, steps) = result?;
            print_show(&summary, &view::events(&steps), output)
        }
        SessionsCommand::Play {
            id,
            speed,
            stream,
            window,
            store,
            recordings,
        } => {
            let key = SessionKey::parse(&id).map_err(anyhow::Error::msg)?;
            let dir = recordings.dir(&store.data_dir);
            let log = open_store(&store).await?;
            let result = load(log.as_ref(), &key, &window).await;
            log.close().await;
            let (_, steps) = result?;
            play(dir, &key, &steps, speed, stream).await
        }
    }
}

/// Every session with a record in the window, oldest first.
pub async fn list(store: &dyn LogStore, window: &Window) -> anyhow::Result<Vec<Summary>> {
    let mut sessions = Aggregator::default();
    let query = custos_store::SearchQuery {
        user: window.user.clone(),
        since: window.since,
        until: window.until,
        ..custos_store::SearchQuery::default()
    };
    scan(store, query, |l| sessions.add(&l.record)).await?;
    Ok(sessions.finish())
}

/// A session's summary and steps; an error when the log has no record of it.
pub async fn load(
    store: &dyn LogStore,
    key: &SessionKey,
    window: &WindowArgs,
) -> anyhow::Result<(Summary, Vec<Step>)> {
    let window = Window {
        user: None,
        since: window.since,
        until: window.until,
    };
    let records = session_records(store, key, &window).await?;
    if records.is_empty() {
        bail!(
            "no records of session {} in the log{}",
            key.id(),
            if window.since.is_some() || window.until.is_some() {
                " in that time window"
            } else {
                ""
            }
        );
    }
    let mut aggregate = Aggregator::default();
    for l in &records {
        aggregate.add(&l.record);
    }
    let id = key.id();
    let summary = aggregate
        .finish()
        .into_iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| Summary {
            id,
            kind: key.kind().to_owned(),
            ..Summary::default()
        });
    Ok((summary, timeline::steps(records)))
}

fn short_time(t: Option<MicroTime>) -> String {
    t.map(|t| {
        let s = t.to_string();
        format!("{}Z", s.get(..19).unwrap_or(&s))
    })
    .unwrap_or_else(|| "-".to_owned())
}

/// Untrusted text on one line: control characters replaced, at most `max` characters.
pub fn clean(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

fn print_list(sessions: &[Summary], output: Output) -> anyhow::Result<ExitCode> {
    if output == Output::Json {
        let doc = serde_json::json!({ "items": sessions });
        write_out(format!("{}\n", serde_json::to_string_pretty(&doc)?).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![[
        "SESSION",
        "KIND",
        "USER",
        "FIRST",
        "LAST",
        "REQUESTS",
        "DENIED",
        "REVIEWS",
        "RECORDINGS",
        "INTENT",
    ]
    .map(str::to_owned)];
    for s in sessions {
        let intent = match (&s.intent, &s.ticket) {
            (Some(i), Some(t)) => format!("{} [{}]", clean(i, 60), clean(t, 40)),
            (Some(i), None) => clean(i, 60),
            (None, Some(t)) => format!("[{}]", clean(t, 40)),
            (None, None) => "-".to_owned(),
        };
        rows.push([
            column(&s.id),
            column(&s.kind),
            column(&s.user),
            short_time(s.first),
            short_time(s.last),
            s.requests.to_string(),
            s.denials.to_string(),
            s.reviews.to_string(),
            s.recordings.to_string(),
            intent,
        ]);
    }
    write_out(table(&rows).as_bytes())?;
    if sessions.is_empty() {
        eprintln!("no sessions in the log for that selection");
    }
    Ok(ExitCode::SUCCESS)
}

/// Rows as columns padded to the widest cell (the last column is not padded).
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn print_show(summary: &Summary, events: &[Event], output: Output) -> anyhow::Result<ExitCode> {
    if output == Output::Json {
        let doc = serde_json::json!({ "session": summary, "timeline": events });
        write_out(format!("{}\n", serde_json::to_string_pretty(&doc)?).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    write_out(show_text(summary, events).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The text of `sessions show`: a header, one row per step, and indented detail lines.
pub fn show_text(summary: &Summary, events: &[Event]) -> String {
    let mut out = format!(
        "session {} ({})\n  user        {}\n",
        column(&summary.id),
        column(&summary.kind),
        column(&summary.user)
    );
    if let Some(i) = &summary.intent {
        out.push_str(&format!("  intent      {}\n", clean(i, 500)));
    }
    if let Some(t) = &summary.ticket {
        out.push_str(&format!("  ticket      {}\n", clean(t, 100)));
    }
    out.push_str(&format!(
        "  time        {} .. {}\n  requests    {} ({} denied, {} reviewed), recordings {}\n\n",
        short_time(summary.first),
        short_time(summary.last),
        summary.requests,
        summary.denials,
        summary.reviews,
        summary.recordings
    ));
    let mut rows = vec![[
        "#",
        "TIME",
        "VERB",
        "RESOURCE",
        "NAMESPACE",
        "NAME",
        "DECISION",
        "STATUS",
    ]
    .map(str::to_owned)];
    let mut details: Vec<Vec<String>> = vec![Vec::new()];
    for e in events {
        let (verb, resource) = if e.kind == "request" {
            let resource = e
                .resource
                .clone()
                .or_else(|| e.request_uri.as_deref().map(|u| clean(u, 80)));
            (e.verb.clone().unwrap_or_default(), resource)
        } else {
            (e.kind.clone(), None)
        };
        rows.push([
            e.index.to_string(),
            short_time(e.time),
            column(&verb),
            column(resource.as_deref().unwrap_or_default()),
            column(e.namespace.as_deref().unwrap_or_default()),
            column(e.name.as_deref().unwrap_or_default()),
            e.decision.as_ref().map_or("-".to_owned(), |d| {
                if d.policies.is_empty() {
                    column(&d.outcome)
                } else {
                    column(&format!("{}:{}", d.outcome, d.policies.join(",")))
                }
            }),
            e.status
                .as_ref()
                .and_then(|s| s.code)
                .map_or("-".to_owned(), |c| c.to_string()),
        ]);
        details.push(detail_lines(e));
    }
    let table = table(&rows);
    for (line, extra) in table.lines().zip(&details) {
        out.push_str(line);
        out.push('\n');
        for d in extra {
            out.push_str("      ");
            out.push_str(d);
            out.push('\n');
        }
    }
    out
}

fn detail_lines(e: &Event) -> Vec<String> {
    let mut out = Vec::new();
    if e.kind != "request" {
        if let Some(u) = &e.user {
            out.push(format!("by {}", clean(u, 200)));
        }
    }
    if let Some(d) = e.decision.as_ref().and_then(|d| d.reason.as_ref()) {
        out.push(format!("reason: {}", clean(d, 300)));
    }
    if let Some(a) = &e.approval {
        let by = if a.approvers.is_empty() {
            String::new()
        } else {
            format!(" by {}", clean(&a.approvers.join(", "), 200))
        };
        let why = a
            .justification
            .as_deref()
            .map_or(String::new(), |j| format!(": {}", clean(j, 300)));
        out.push(format!("review {} {}{by}{why}", column(&a.id), a.outcome));
    }
    if let Some(g) = &e.grant {
        out.push(format!("grant {} used", column(g)));
    }
    if !e.masked.is_empty() {
        let count = |m: &std::collections::BTreeMap<String, u64>| m.values().sum::<u64>();
        out.push(format!(
            "masked: {} in the request, {} in the response",
            count(&e.masked.request),
            count(&e.masked.response)
        ));
    }
    for r in &e.recordings {
        let exit = r
            .exit_code
            .map_or(String::new(), |c| format!(", exit code {c}"));
        let mut facts = format!("{} chunks, {} bytes{exit}", r.chunks, r.bytes);
        if !r.channels.is_empty() {
            facts = format!("{}; {facts}", clean(&r.channels.join(", "), 100));
        }
        if !r.closed {
            facts.push_str("; not closed: still running, or its gateway stopped");
        }
        out.push(format!("recording {} ({facts})", column(&r.recording)));
    }
    if let Some(s) = &e.status {
        if let Some(m) = &s.message {
            out.push(format!("message: {}", clean(m, 300)));
        }
    }
    if let Some(err) = &e.error {
        if e.status.as_ref().and_then(|s| s.message.as_ref()) != Some(err) {
            out.push(format!("error: {}", clean(err, 300)));
        }
    }
    out
}

async fn play(
    dir: std::path::PathBuf,
    key: &SessionKey,
    steps: &[Step],
    speed: f64,
    stream: Option<usize>,
) -> anyhow::Result<ExitCode> {
    if !(speed.is_finite() && speed > 0.0) {
        bail!("--speed must be a positive number");
    }
    let all = view::session_recordings(steps);
    if all.is_empty() {
        bail!("session {} has no recordings", key.id());
    }
    let chosen: Vec<(usize, String)> = match stream {
        Some(n) => {
            let name = n.checked_sub(1).and_then(|i| all.get(i)).with_context(|| {
                format!(
                    "--stream {n}: the session has {} recording(s), numbered from 1",
                    all.len()
                )
            })?;
            vec![(n, name.clone())]
        }
        None => all
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, n)| (i + 1, n))
            .collect(),
    };
    let total = all.len();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        for (n, name) in chosen {
            let path = crate::recordings::path_in(&dir, &name)?;
            eprintln!("--- recording {n}/{total}: {name} ---");
            let mut out = io::stdout().lock();
            crate::recordings::play(&path, speed, &mut out)
                .with_context(|| format!("playing {}", path.display()))?;
            out.flush()?;
            drop(out);
            eprintln!();
        }
        Ok(())
    })
    .await??;
    Ok(ExitCode::SUCCESS)
}

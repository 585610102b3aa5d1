//! `custos replay SESSION --against KUBECONFIG`: re-issues a session's recorded API calls, in order,
//! against a sandbox cluster (directly, not through Custos), runs its non-interactive exec commands
//! again, and compares each answer with the recorded one after normalising both; writes
//! `report.md` and `report.json`. Exit code 0 when every step matched or was explained (not
//! replayable, and why), 1 when anything differed or failed.
//!
//! Steps are planned from records alone ([`plan`]), sent by [`send`], compared by [`normalize`] and
//! [`diff`], and reported by [`report`]. Nothing is ever sent anywhere but the sandbox's server, and
//! nothing the recording masked is ever sent.

mod diff;
mod normalize;
mod plan;
mod report;
mod send;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serde_json::Value;

use crate::audit_cmd::{open_store, write_out, StoreArgs};
use crate::sessions::timeline::{SessionKey, Step};
use crate::sessions::WindowArgs;
use diff::Difference;
use normalize::NamespaceMap;
use plan::{Compare, ExecCall, HttpCall, Options, Plan, TypeSource, MERGE, STRATEGIC};
use report::{Report, StepReport, Verdict};
use send::{ReplyBody, Sandbox};

/// `custos replay …`
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The session to replay (`ss-…`, or `<method>:<token id>` as `custos sessions list` prints it)
    pub session: String,
    /// Kubeconfig of the sandbox cluster (its current context; a client certificate or token)
    #[arg(long, value_name = "KUBECONFIG")]
    pub against: PathBuf,
    /// Replay namespace RECORDED in namespace SANDBOX (repeatable)
    #[arg(long = "namespace-map", value_name = "RECORDED=SANDBOX")]
    pub namespace_map: Vec<String>,
    /// Add dryRun=All to every write (and do not run exec commands)
    #[arg(long)]
    pub dry_run: bool,
    /// Directory for report.md and report.json [default: replay-<session>]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Fields owned by this field manager are the sandbox's own doing and not compared (repeatable;
    /// the control plane's controllers are always ignored)
    #[arg(long = "ignore-manager", value_name = "MANAGER")]
    pub ignore_managers: Vec<String>,
    /// kubectl to run recorded exec commands with
    #[arg(long, default_value = "kubectl")]
    pub kubectl: PathBuf,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub recordings: crate::recordings::RecordingsArgs,
}

/// Runs `custos replay`.
pub async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let key = SessionKey::parse(&args.session).map_err(anyhow::Error::msg)?;
    let namespaces = NamespaceMap::parse(&args.namespace_map).map_err(anyhow::Error::msg)?;
    let sandbox = Sandbox::new(&args.against, args.kubectl.clone())?;
    let log = open_store(&args.store).await?;
    let loaded = crate::sessions::load(log.as_ref(), &key, &args.window).await;
    log.close().await;
    let (_, steps) = loaded?;
    let opts = Options {
        namespaces,
        dry_run: args.dry_run,
    };
    let mut replay = Replay {
        sandbox: &sandbox,
        opts: &opts,
        controllers: &args.ignore_managers,
        recordings: args.recordings.dir(&args.store.data_dir),
        generated: BTreeMap::new(),
    };
    let mut report = Report {
        session: key.id(),
        against: sandbox.server(),
        dry_run: args.dry_run,
        namespace_map: opts.namespaces.0.clone(),
        started: Some(custos_gateway::recorder::now()),
        finished: None,
        summary: report::Counts::default(),
        steps: Vec::new(),
    };
    for (i, step) in steps.iter().enumerate() {
        if step.is_request() {
            report.steps.push(replay.step(i + 1, step).await);
        }
    }
    report.finished = Some(custos_gateway::recorder::now());
    report.count();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("replay-{}", safe_file_part(&key.id()))));
    write_report(&out, &report).await?;
    let c = &report.summary;
    write_out(
        format!(
            "replay of {} against {}: {} — {} steps: {} match, {} differ, {} not replayable, {} errors\n  report: {} and {}\n",
            report.session,
            report.against,
            if report.passed() { "PASS" } else { "FAIL" },
            c.steps,
            c.matched,
            c.differ,
            c.not_replayable,
            c.errors,
            out.join("report.md").display(),
            out.join("report.json").display(),
        )
        .as_bytes(),
    )?;
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn safe_file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect()
}

async fn write_report(out: &Path, report: &Report) -> anyhow::Result<()> {
    tokio::fs::create_dir_all(out)
        .await
        .with_context(|| format!("creating {}", out.display()))?;
    for (name, text) in [
        ("report.json", report.to_json()),
        ("report.md", report.to_markdown()),
    ] {
        let path = out.join(name);
        tokio::fs::write(&path, text)
            .await
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// One replay's fixed parts.
struct Replay<'a> {
    sandbox: &'a Sandbox,
    opts: &'a Options,
    controllers: &'a [String],
    recordings: PathBuf,
    /// Names the server generated (`generateName`): recorded → sandbox, for the steps that follow.
    generated: BTreeMap<String, String>,
}

impl Replay<'_> {
    async fn step(&mut self, index: usize, step: &Step) -> StepReport {
        let mut report = self.skeleton(index, step);
        match plan::plan(step, self.opts) {
            Plan::Skip(reason) => {
                report.verdict = Verdict::NotReplayable;
                report.reason = Some(reason);
            }
            Plan::Refuse(reason) => {
                report.verdict = Verdict::Error;
                report.reason = Some(reason);
            }
            Plan::Http(call) => {
                report.sent = Some(format!("{} {}", call.method, call.path_and_query));
                report.notes.extend(call.notes.iter().cloned());
                if let Err(e) = self.http(&call, &mut report).await {
                    report.verdict = Verdict::Error;
                    report.reason = Some(format!("{e:#}"));
                }
            }
            Plan::Exec(call) => {
                report.sent = Some(format!("exec {}", call.command.join(" ")));
                if let Err(e) = self.exec(&call, &mut report).await {
                    report.verdict = Verdict::Error;
                    report.reason = Some(format!("{e:#}"));
                }
            }
        }
        report
    }

    fn skeleton(&self, index: usize, step: &Step) -> StepReport {
        let event = crate::sessions::view::events(std::slice::from_ref(step))
            .into_iter()
            .next()
            .unwrap_or_default();
        let resource = event
            .resource
            .clone()
            .or_else(|| {
                event
                    .request_uri
                    .as_deref()
                    .map(|u| u.chars().take(200).collect())
            })
            .unwrap_or_default();
        let sandbox_namespace = event
            .namespace
            .as_deref()
            .map(|ns| self.opts.namespaces.get(ns).to_owned())
            .filter(|mapped| Some(mapped) != event.namespace.as_ref());
        StepReport {
            index,
            time: event.time,
            audit_id: event.audit_id,
            verb: event.verb.unwrap_or_default(),
            resource,
            namespace: event.namespace,
            sandbox_namespace,
            name: event.name,
            sent: None,
            content_type: None,
            content_type_from: None,
            recorded_status: event.status.and_then(|s| s.code),
            replayed_status: None,
            verdict: Verdict::NotReplayable,
            reason: None,
            notes: Vec::new(),
            differences: Vec::new(),
            more_differences: 0,
        }
    }

    async fn http(&mut self, call: &HttpCall, report: &mut StepReport) -> anyhow::Result<()> {
        let renamed = rename_generated(call, &self.generated);
        let call = &renamed;
        let mut content_type = call.content_type;
        let mut from = call.content_type_from;
        if call.probe_patch_type {
            content_type = Some(self.probe_patch_type(call, report).await?);
            from = Some(TypeSource::Probed);
        }
        let mut reply = self
            .sandbox
            .send(call, &call.path_and_query, content_type)
            .await?;
        // Only a guessed type is second-guessed: a recorded one is what the client sent.
        let guessed = from != Some(TypeSource::Recorded);
        if reply.status == 415 && content_type == Some(STRATEGIC) && guessed {
            report.notes.push(
                "the sandbox does not take a strategic merge patch for this type: sent as a merge patch"
                    .into(),
            );
            content_type = Some(MERGE);
            reply = self
                .sandbox
                .send(call, &call.path_and_query, content_type)
                .await?;
        }
        report.content_type = content_type.map(str::to_owned);
        report.content_type_from = from;
        report.replayed_status = Some(reply.status);
        if let Some((recorded, replayed)) = generated_name(call, &reply.body) {
            report.notes.push(format!(
                "the server generated the name {replayed} where the recording has {recorded}; later steps use it"
            ));
            self.generated.insert(recorded, replayed);
        }
        let differences = compare(
            call,
            reply.status,
            reply.body,
            self.controllers,
            &mut report.notes,
        );
        report.set_differences(differences);
        Ok(())
    }

    /// Which patch type reproduces the recording: both are tried with `dryRun=All`; strategic wins
    /// a tie (kubectl's default).
    async fn probe_patch_type(
        &self,
        call: &HttpCall,
        report: &mut StepReport,
    ) -> anyhow::Result<&'static str> {
        let dry = plan::with_param(&call.path_and_query, "dryRun", "All", false);
        let mut scores = Vec::new();
        for ct in [STRATEGIC, MERGE] {
            let reply = self.sandbox.send(call, &dry, Some(ct)).await?;
            let differences = compare(
                call,
                reply.status,
                reply.body,
                self.controllers,
                &mut Vec::new(),
            );
            scores.push((differences.len(), ct));
        }
        let chosen = scores
            .iter()
            .min_by_key(|(n, _)| *n)
            .map_or(STRATEGIC, |(_, ct)| *ct);
        report.notes.push(format!(
            "patch type not recorded: {chosen} chosen (of strategic and merge, tried with dryRun=All, it reproduces the recording best)"
        ));
        Ok(chosen)
    }

    async fn exec(&self, call: &ExecCall, report: &mut StepReport) -> anyhow::Result<()> {
        let reply = self.sandbox.exec(call).await?;
        report.notes.push(match reply.code {
            Some(c) => format!("the command exited with {c}"),
            None => "kubectl exec was killed by a signal".to_owned(),
        });
        let recorded = match &call.recording {
            Some(name) => self.recorded_output(name).await,
            None => Err(anyhow::anyhow!("no recording")),
        };
        let mut differences = Vec::new();
        let expected = call.recorded_exit.unwrap_or(0);
        if reply.code != Some(expected) {
            differences.push(Difference {
                path: "(exit code)".into(),
                recorded: call.recorded_exit.map(Value::from),
                replayed: reply.code.map(Value::from),
            });
        }
        if call.recorded_exit.is_none() {
            report
                .notes
                .push("the recorded exit code is unknown: 0 is expected".into());
        }
        match recorded {
            Ok(text) => {
                if normalize_output(&text) != normalize_output(&reply.output) {
                    differences.push(Difference {
                        path: "(output)".into(),
                        recorded: Some(Value::String(text.chars().take(2000).collect())),
                        replayed: Some(Value::String(reply.output.chars().take(2000).collect())),
                    });
                }
            }
            Err(e) => report.notes.push(format!(
                "the recorded output could not be read ({e:#}): only the exit status is compared"
            )),
        }
        report.set_differences(differences);
        Ok(())
    }

    /// The recording's terminal output, played at full speed into memory.
    async fn recorded_output(&self, name: &str) -> anyhow::Result<String> {
        let path = crate::recordings::path_in(&self.recordings, name)?;
        let bytes = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
            let mut out = Vec::new();
            crate::recordings::play(&path, 1e9, &mut out)?;
            Ok(out)
        })
        .await??;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Compares the sandbox's answer with the recording: the status first; then, when the call asks for
/// it and both sides have one, the normalised bodies. Notes on what was compared go to `notes`.
fn compare(
    call: &HttpCall,
    status: u16,
    body: ReplyBody,
    controllers: &[String],
    notes: &mut Vec<String>,
) -> Vec<Difference> {
    let mut differences = Vec::new();
    if call.recorded_status != Some(status) {
        differences.push(Difference {
            path: "(status)".into(),
            recorded: call.recorded_status.map(Value::from),
            replayed: Some(Value::from(status)),
        });
        if let ReplyBody::Json(v) = &body {
            if let Some(m) = v.get("message").and_then(Value::as_str) {
                notes.push(format!(
                    "the sandbox said: {}",
                    m.chars().take(300).collect::<String>()
                ));
            }
        }
        return differences;
    }
    let (Compare::Full, Some(recorded)) = (&call.compare, &call.recorded_body) else {
        if let Compare::StatusOnly(why) = &call.compare {
            notes.push(why.clone());
        }
        return differences;
    };
    let replayed = match body {
        ReplyBody::Json(v) => v,
        ReplyBody::Empty => Value::String("no body".into()),
        ReplyBody::Other {
            content_type,
            bytes,
        } => Value::String(format!(
            "{bytes} bytes of {content_type:?} (not JSON; not shown)"
        )),
    };
    if !replayed.is_object() && !replayed.is_array() && recorded.is_object() {
        differences.push(Difference {
            path: "(body)".into(),
            recorded: Some(Value::String("a JSON object".into())),
            replayed: Some(replayed),
        });
        return differences;
    }
    let mut recorded = recorded.clone();
    let mut replayed = replayed;
    normalize::normalize_pair(&mut recorded, &mut replayed, controllers);
    differences.extend(diff::diff(&recorded, &replayed));
    differences
}

/// A call with names the recording's server generated replaced by the sandbox's: whole path
/// segments, and the body's `metadata.name`.
fn rename_generated(call: &HttpCall, generated: &BTreeMap<String, String>) -> HttpCall {
    let mut call = call.clone();
    if generated.is_empty() {
        return call;
    }
    let (path, query) = match call.path_and_query.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (call.path_and_query.clone(), None),
    };
    let path: Vec<&str> = path
        .split('/')
        .map(|seg| generated.get(seg).map_or(seg, String::as_str))
        .collect();
    call.path_and_query = path.join("/") + &query.map(|q| format!("?{q}")).unwrap_or_default();
    if let Some(mut body) = call
        .body
        .as_deref()
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
    {
        if let Some(Value::String(name)) = body.pointer_mut("/metadata/name") {
            if let Some(to) = generated.get(name.as_str()) {
                *name = to.clone();
                call.body = Some(body.to_string().into_bytes());
            }
        }
    }
    call
}

/// For a create whose object's name the server generated: (recorded name, sandbox name).
fn generated_name(call: &HttpCall, reply: &ReplyBody) -> Option<(String, String)> {
    let ReplyBody::Json(replayed) = reply else {
        return None;
    };
    let recorded = call.recorded_body.as_ref()?;
    let name = |v: &Value| {
        v.pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    recorded.pointer("/metadata/generateName")?;
    let (a, b) = (name(recorded)?, name(replayed)?);
    (call.method == http::Method::POST && a != b).then_some((a, b))
}

/// Terminal output compared as its lines (line endings and trailing blank lines aside), in any order:
/// the recording interleaves stdout and stderr as they arrived, kubectl hands them over apart.
fn normalize_output(s: &str) -> Vec<String> {
    let mut lines: Vec<String> = s
        .replace("\r\n", "\n")
        .trim_end()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

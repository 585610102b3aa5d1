//! The sandbox end of a replay: requests go straight to the kubeconfig's apiserver (never through
//! Custos), one at a time, bounded in time and size; exec commands run through kubectl. What comes
//! back is masked like the gateway masks responses before anything compares or reports it, so a
//! replay report never holds a secret the sandbox returned.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use custos_gateway::kubeconfig::UpstreamConfig;
use custos_gateway::Upstream;
use custos_mask::{Detector, Hint, Profile};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tokio::io::AsyncReadExt as _;

use super::plan::{ExecCall, HttpCall};

/// Longest a sandbox response body may be.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Longest one request may take (a watch is asked to end after a second).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest an exec command may run.
const EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// Most output kept from an exec command.
const MAX_OUTPUT: u64 = 1024 * 1024;

/// The sandbox cluster.
pub struct Sandbox {
    upstream: Upstream,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
    detector: &'static Detector,
}

/// What the sandbox answered.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body: JSON (masked), or what else it was.
    pub body: ReplyBody,
}

/// A sandbox response body.
#[derive(Debug, Clone)]
pub enum ReplyBody {
    /// No body.
    Empty,
    /// JSON, masked with the strict profile.
    Json(Value),
    /// Something else: only its type and size are kept.
    Other {
        /// Content-Type.
        content_type: String,
        /// Bytes.
        bytes: usize,
    },
}

/// What an exec command did.
#[derive(Debug, Clone)]
pub struct ExecReply {
    /// The command's exit code: from kubectl's closing message when it printed one, else kubectl's.
    pub code: Option<i32>,
    /// stdout then stderr, masked, without kubectl's own closing message.
    pub output: String,
}

impl Sandbox {
    /// Connects to the current context of `kubeconfig` (a client certificate or token; exec
    /// plugins are not supported).
    pub fn new(kubeconfig: &Path, kubectl: PathBuf) -> anyhow::Result<Sandbox> {
        let config = UpstreamConfig::from_kubeconfig(kubeconfig)
            .with_context(|| format!("--against {}", kubeconfig.display()))?;
        let upstream = Upstream::new(&config).context("--against: TLS setup")?;
        let detector = custos_gateway::mask::builtin_detector()
            .map_err(|e| anyhow::anyhow!("masking rules: {e}"))?;
        Ok(Sandbox {
            upstream,
            kubeconfig: kubeconfig.to_owned(),
            kubectl,
            detector,
        })
    }

    /// The apiserver's URL.
    pub fn server(&self) -> String {
        self.upstream.server.to_string()
    }

    /// Sends `call` with `content_type` (its own unless overridden) to `path_and_query`.
    pub async fn send(
        &self,
        call: &HttpCall,
        path_and_query: &str,
        content_type: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let uri = self
            .upstream
            .uri_for(path_and_query)
            .context("building the sandbox URL")?;
        // The path was checked when planned; the URL must still name the sandbox and nothing else.
        if uri.authority() != self.upstream.server.authority()
            || uri.scheme() != self.upstream.server.scheme()
        {
            bail!("refusing to send outside the sandbox: {uri}");
        }
        let mut builder = http::Request::builder()
            .method(call.method.clone())
            .uri(uri)
            .header(http::header::ACCEPT, &call.accept)
            .header(http::header::USER_AGENT, "custos-replay");
        if let Some(ct) = content_type.or(call.content_type) {
            builder = builder.header(http::header::CONTENT_TYPE, ct);
        }
        let body = call.body.clone().map(Bytes::from).unwrap_or_default();
        let mut req = builder
            .body(custos_gateway::full(body))
            .context("building the request")?;
        self.upstream.authorize(req.headers_mut());
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, self.upstream.send(req))
            .await
            .context("the sandbox did not answer within 60 s")?
            .context("sending to the sandbox")?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let limited = http_body_util::Limited::new(resp.into_body(), MAX_BODY);
        let bytes = tokio::time::timeout(REQUEST_TIMEOUT, limited.collect())
            .await
            .context("the sandbox's response did not end within 60 s")?
            .map_err(|e| anyhow::anyhow!("reading the sandbox's response: {e}"))?
            .to_bytes();
        let body = if bytes.is_empty() {
            ReplyBody::Empty
        } else {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(mut v) => {
                    let (group, resource, sub) = &call.resource;
                    let hint = Hint::for_resource(group, resource, sub);
                    custos_mask::mask_document(self.detector, &Profile::strict(), &hint, &mut v);
                    ReplyBody::Json(v)
                }
                Err(_) => ReplyBody::Other {
                    content_type: content_type.chars().take(100).collect(),
                    bytes: bytes.len(),
                },
            }
        };
        Ok(Reply { status, body })
    }

    /// Runs a recorded exec command again with kubectl.
    pub async fn exec(&self, call: &ExecCall) -> anyhow::Result<ExecReply> {
        let mut cmd = tokio::process::Command::new(&self.kubectl);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args([
            "exec",
            "-n",
            &call.namespace,
            &call.pod,
        ]);
        if let Some(c) = &call.container {
            cmd.args(["-c", c]);
        }
        cmd.arg("--").args(&call.command);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("KUBECONFIG")
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("running {}", self.kubectl.display()))?;
        let mut stdout = child.stdout.take().context("kubectl stdout")?;
        let mut stderr = child.stderr.take().context("kubectl stderr")?;
        let run = async {
            let (out, err, status) = tokio::join!(
                read_bounded(&mut stdout),
                read_bounded(&mut stderr),
                child.wait()
            );
            Ok::<_, std::io::Error>((status?, out?, err?))
        };
        let (status, out, err) = tokio::time::timeout(EXEC_TIMEOUT, run)
            .await
            .context("the exec command did not finish within 60 s")??;
        let (err, code) = split_closing_message(&String::from_utf8_lossy(&err));
        let mut output = out;
        output.extend_from_slice(err.as_bytes());
        custos_mask::mask_text(self.detector, &mut output);
        Ok(ExecReply {
            code: code.or(status.code()),
            output: String::from_utf8_lossy(&output).into_owned(),
        })
    }
}

/// Reads to the end, keeping at most [`MAX_OUTPUT`] bytes (the rest is drained, so the command never
/// blocks on a full pipe).
async fn read_bounded(r: &mut (impl tokio::io::AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(kept);
        }
        let room = (MAX_OUTPUT as usize).saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

/// kubectl ends a failed exec with a line of its own on stderr — `command terminated with exit code
/// N` from a kubelet, `error: … exit status N` from others: that line is not the command's output, and
/// says the command's exit code. Returns stderr without it, and the code when the line names one.
pub fn split_closing_message(stderr: &str) -> (String, Option<i32>) {
    let trimmed = stderr.trim_end_matches('\n');
    let (rest, last) = match trimmed.rfind('\n') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    let closing =
        last.starts_with("command terminated with exit code ") || last.starts_with("error: ");
    if !closing {
        return (stderr.to_owned(), None);
    }
    let code = ["exit code ", "exit status "].iter().find_map(|marker| {
        let at = last.rfind(marker)? + marker.len();
        let digits: String = last[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    });
    (rest.to_owned(), code)
}

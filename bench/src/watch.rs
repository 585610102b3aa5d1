//! Watch fan-out: K watches on the namespace's ConfigMaps, then M patches of one object at a steady rate
//! (always sent directly to the apiserver, on their own connection, so both paths see the same writes).
//! Latency is the time from a patch's response to its event arriving at a watcher; delivery is checked
//! for every (watcher, patch) pair.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde::Deserialize;

use crate::client::Client;
use crate::dataset::Dataset;
use crate::stats::Samples;

/// Longest wait for all watches to be established (response headers received).
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait, after the last patch, for the last events to arrive.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest watch event line accepted (ConfigMaps here are ~1 KiB).
const MAX_LINE: usize = 1024 * 1024;
/// The object every patch changes.
const TARGET: usize = 0;
/// How long the second client's GET may take while the watches are open.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What one watch round measured.
#[derive(Debug, Default, Clone)]
pub struct WatchRound {
    /// Event latency in ms: event arrival minus the patch's response (negative when the event won).
    pub latency: Samples,
    /// (watcher, patch) pairs whose event arrived.
    pub delivered: usize,
    /// (watcher, patch) pairs expected.
    pub expected: usize,
    /// Time to establish all watches.
    pub open_took: Duration,
    /// Problems seen (ERROR events, streams that ended early), at most a few.
    pub problems: Vec<String>,
    /// Latency of a GET by a second, independent client (own connection) on the same path while the
    /// watches are open; `None` when it got no answer within [`PROBE_TIMEOUT`].
    pub probes: Vec<Option<Duration>>,
}

impl WatchRound {
    /// Adds another round's results.
    pub fn absorb(&mut self, other: &WatchRound) {
        self.latency.extend(&other.latency);
        self.delivered += other.delivered;
        self.expected += other.expected;
        self.open_took += other.open_took;
        self.problems.extend(other.problems.iter().take(5).cloned());
        self.probes.extend(other.probes.iter().copied());
    }
}

/// The shape of a round.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Concurrent watches.
    pub watchers: usize,
    /// Patches sent.
    pub patches: usize,
    /// Time between patch starts.
    pub interval: Duration,
    /// Unique marker of this round, written into each patch so other rounds' events are ignored.
    pub tag: String,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    object: Object,
}

#[derive(Deserialize)]
struct Object {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    data: HashMap<String, String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: String,
}

/// One watcher's view: when each patch's event arrived.
struct Seen {
    at: Vec<Option<Instant>>,
    problem: Option<String>,
}

/// Runs one round: opens `plan.watchers` watches through `watch_client`, patches via `patcher`.
pub async fn round(
    watch_client: &Client,
    patcher: &Client,
    set: &Dataset,
    plan: &Plan,
) -> Result<WatchRound> {
    // Start every watch at the current resourceVersion: no initial ADDED flood, no gap.
    let rv = patcher
        .get_json(&format!("{}?limit=1", set.collection()))
        .await?["metadata"]["resourceVersion"]
        .as_str()
        .ok_or_else(|| anyhow!("list has no resourceVersion"))?
        .to_owned();
    let watch_path = format!(
        "{}?watch=true&resourceVersion={rv}&allowWatchBookmarks=false&timeoutSeconds=300",
        set.collection()
    );
    let seen_total = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<Result<()>>(plan.watchers.max(1));
    let open_started = Instant::now();
    let mut watchers = tokio::task::JoinSet::new();
    for _ in 0..plan.watchers {
        let (client, path) = (watch_client.clone(), watch_path.clone());
        let (seen_total, stop, ready) = (seen_total.clone(), stop_rx.clone(), ready_tx.clone());
        let (patches, tag) = (plan.patches, plan.tag.clone());
        watchers.spawn(async move {
            let resp = match client.send(Method::GET, &path, None, Bytes::new()).await {
                Ok(r) if r.status() == StatusCode::OK => r,
                Ok(r) => {
                    let _ = ready
                        .send(Err(anyhow!("watch answered {}", r.status())))
                        .await;
                    return None;
                }
                Err(e) => {
                    let _ = ready.send(Err(e)).await;
                    return None;
                }
            };
            let _ = ready.send(Ok(())).await;
            Some(read_events(resp.into_body(), patches, &tag, &seen_total, stop).await)
        });
    }
    drop(ready_tx);
    for _ in 0..plan.watchers {
        match tokio::time::timeout_at((open_started + OPEN_TIMEOUT).into(), ready_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => return Err(e.context("opening a watch")),
            Ok(None) => bail!("a watcher ended before it was established"),
            Err(_) => bail!("watches not established within {OPEN_TIMEOUT:?}"),
        }
    }
    let open_took = open_started.elapsed();
    let probe = probe(&watch_client.fresh(), &set.object(1)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let responded = patch_steadily(patcher, set, plan).await?;

    let expected = plan.watchers * plan.patches;
    let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
    while seen_total.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);

    let mut out = WatchRound {
        expected,
        open_took,
        probes: vec![probe],
        ..WatchRound::default()
    };
    while let Some(done) = watchers.join_next().await {
        let Some(seen) = done.context("a watcher panicked")? else {
            continue;
        };
        if let Some(p) = seen.problem {
            if out.problems.len() < 5 {
                out.problems.push(p);
            }
        }
        for (event, patched) in seen.at.iter().zip(&responded) {
            if let (Some(event), Some(patched)) = (event, patched) {
                out.delivered += 1;
                out.latency.push_ms(signed_ms(*event, *patched));
            }
        }
    }
    Ok(out)
}

/// One GET by an independent client; its latency, or `None` without an answer in [`PROBE_TIMEOUT`].
async fn probe(client: &Client, path: &str) -> Option<Duration> {
    let t0 = Instant::now();
    let get = client.exchange(Method::GET, path, None, Bytes::new());
    match tokio::time::timeout(PROBE_TIMEOUT, get).await {
        Ok(Ok((StatusCode::OK, _))) => Some(t0.elapsed()),
        _ => None,
    }
}

/// Sends `plan.patches` merge patches to the target object, one per `plan.interval`; returns when each
/// patch's response headers arrived.
async fn patch_steadily(
    patcher: &Client,
    set: &Dataset,
    plan: &Plan,
) -> Result<Vec<Option<Instant>>> {
    let path = set.object(TARGET);
    let mut responded = vec![None; plan.patches];
    let mut ticker = tokio::time::interval(plan.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for (i, slot) in responded.iter_mut().enumerate() {
        ticker.tick().await;
        let body = format!(r#"{{"data":{{"seq":"{}-{i}"}}}}"#, plan.tag);
        let fut = async {
            let resp = patcher
                .send(
                    Method::PATCH,
                    &path,
                    Some("application/merge-patch+json"),
                    Bytes::from(body),
                )
                .await?;
            let at = Instant::now();
            let status = resp.status();
            let answer = resp.into_body().collect().await?.to_bytes();
            if status != StatusCode::OK {
                bail!("patch: {status}: {}", String::from_utf8_lossy(&answer));
            }
            Ok(at)
        };
        *slot = Some(
            tokio::time::timeout(Duration::from_secs(30), fut)
                .await
                .map_err(|_| anyhow!("patch {i} not answered within 30 s"))??,
        );
    }
    Ok(responded)
}

/// Reads newline-delimited watch events until every patch of this round was seen, the stream ends, or
/// `stop` is raised. Arrival time is taken when the frame completing the line arrives, before parsing.
async fn read_events(
    mut body: hyper::body::Incoming,
    patches: usize,
    tag: &str,
    seen_total: &AtomicUsize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen {
        at: vec![None; patches],
        problem: None,
    };
    let prefix = format!("{tag}-");
    let mut count = 0;
    let mut buf: Vec<u8> = Vec::new();
    while count < patches {
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = stop.wait_for(|s| *s) => break,
        };
        let arrived = Instant::now();
        let data = match frame {
            Some(Ok(f)) => match f.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
            Some(Err(e)) => {
                seen.problem = Some(format!("watch stream failed: {e}"));
                break;
            }
            None => {
                seen.problem = Some(format!("watch stream ended after {count} events"));
                break;
            }
        };
        buf.extend_from_slice(&data);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            match serde_json::from_slice::<Event>(&line) {
                Ok(ev) if ev.kind == "ERROR" => {
                    seen.problem = Some(format!("ERROR event: {:?}", ev.object.message));
                }
                Ok(ev) if ev.object.metadata.name == Dataset::name(TARGET) => {
                    let idx = ev
                        .object
                        .data
                        .get("seq")
                        .and_then(|s| s.strip_prefix(&prefix))
                        .and_then(|s| s.parse::<usize>().ok());
                    if let Some(slot) = idx.and_then(|i| seen.at.get_mut(i)) {
                        if slot.is_none() {
                            *slot = Some(arrived);
                            count += 1;
                            seen_total.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => seen.problem = Some(format!("unparsable event: {e}")),
            }
        }
        if buf.len() > MAX_LINE {
            seen.problem = Some("an event line exceeded 1 MiB".into());
            break;
        }
    }
    seen
}

fn signed_ms(event: Instant, patched: Instant) -> f64 {
    match event.checked_duration_since(patched) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(patched.duration_since(event).as_secs_f64() * 1000.0),
    }
}

//! The data the bench reads: one namespace holding N ConfigMaps of about 1 KiB each, created directly
//! against the apiserver (a bounded number at a time) and reused by later runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

use crate::client::Client;

/// Attempts per object before creation gives up (the apiserver may answer 429 under load).
const CREATE_ATTEMPTS: usize = 5;

/// The prepared data set.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The namespace.
    pub namespace: String,
    /// How many bench ConfigMaps it holds.
    pub objects: usize,
    /// How many this run had to create (0 when reused).
    pub created: usize,
    /// Time spent preparing.
    pub took: Duration,
}

impl Dataset {
    /// The name of the `i`-th ConfigMap.
    pub fn name(i: usize) -> String {
        format!("cm-{i:05}")
    }

    /// The collection path of the namespace's ConfigMaps.
    pub fn collection(&self) -> String {
        format!("/api/v1/namespaces/{}/configmaps", self.namespace)
    }

    /// The path of one ConfigMap.
    pub fn object(&self, i: usize) -> String {
        format!("{}/{}", self.collection(), Self::name(i))
    }
}

/// Ensures `namespace` exists with ConfigMaps `cm-00000` … for `objects` objects, creating the
/// missing ones `concurrency` at a time. Each carries `payload_bytes` of data.
pub async fn prepare(
    client: &Client,
    namespace: &str,
    objects: usize,
    payload_bytes: usize,
    concurrency: usize,
) -> Result<Dataset> {
    let started = Instant::now();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    let (status, body) = client
        .exchange(
            Method::POST,
            "/api/v1/namespaces",
            Some("application/json"),
            Bytes::from(ns.to_string()),
        )
        .await?;
    if !(status == StatusCode::CREATED || status == StatusCode::CONFLICT) {
        bail!(
            "creating namespace {namespace}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let mut set = Dataset {
        namespace: namespace.to_owned(),
        objects,
        created: 0,
        took: Duration::ZERO,
    };
    let existing = client.get_json(&set.collection()).await?;
    let have: std::collections::HashSet<String> = existing["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    let missing: Arc<Vec<usize>> = Arc::new(
        (0..objects)
            .filter(|i| !have.contains(&Dataset::name(*i)))
            .collect(),
    );
    let payload: String = "0123456789abcdef"
        .chars()
        .cycle()
        .take(payload_bytes)
        .collect();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, missing, next) = (client.clone(), missing.clone(), next.clone());
        let (path, payload) = (set.collection(), payload.clone());
        workers.spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = missing.get(k) else {
                    return Ok::<_, anyhow::Error>(());
                };
                create(&client, &path, &Dataset::name(i), &payload).await?;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.context("a create worker panicked")??;
    }
    set.created = missing.len();
    set.took = started.elapsed();
    Ok(set)
}

async fn create(client: &Client, path: &str, name: &str, payload: &str) -> Result<()> {
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "custos-bench"}},
        "data": {"payload": payload},
    })
    .to_string();
    for attempt in 1..=CREATE_ATTEMPTS {
        let (status, answer) = client
            .exchange(
                Method::POST,
                path,
                Some("application/json"),
                Bytes::from(body.clone()),
            )
            .await?;
        match status {
            StatusCode::CREATED | StatusCode::CONFLICT => return Ok(()),
            s if (s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error())
                && attempt < CREATE_ATTEMPTS =>
            {
                tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
            }
            s => bail!("creating {name}: {s}: {}", String::from_utf8_lossy(&answer)),
        }
    }
    bail!("creating {name}: gave up after {CREATE_ATTEMPTS} attempts")
}

//! GET of one object: N workers issue requests back to back for a fixed time; requests/s and latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::client::Client;
use crate::stats::Samples;

/// A worker gives up after this many failures in a row (the server is gone; spinning helps nobody).
const MAX_CONSECUTIVE_ERRORS: usize = 20;

/// What one round of GETs measured.
#[derive(Debug, Default, Clone)]
pub struct GetRound {
    /// Requests answered 200.
    pub ok: usize,
    /// Requests answered otherwise, or failed.
    pub errors: usize,
    /// Wall time from the first request to the last answer.
    pub elapsed: Duration,
    /// Latency of each successful request (send to whole body).
    pub latency: Samples,
}

impl GetRound {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// Adds another round's counts and samples (elapsed times add up, so `rate` stays the mean).
    pub fn absorb(&mut self, other: &GetRound) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latency.extend(&other.latency);
    }
}

/// Runs `workers` concurrent request loops against `path` for `duration`. No request starts after the
/// deadline; each one is bounded by the client's exchange timeout.
pub async fn round(
    client: &Client,
    path: &str,
    workers: usize,
    duration: Duration,
) -> Result<GetRound> {
    let started = Instant::now();
    let deadline = started + duration;
    let path: Arc<str> = Arc::from(path);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let (client, path) = (client.clone(), path.clone());
        tasks.spawn(async move {
            let mut mine = GetRound::default();
            let mut failing = 0;
            while Instant::now() < deadline && failing < MAX_CONSECUTIVE_ERRORS {
                let t0 = Instant::now();
                match client
                    .exchange(Method::GET, &path, None, Bytes::new())
                    .await
                {
                    Ok((StatusCode::OK, _)) => {
                        mine.latency.push(t0.elapsed());
                        mine.ok += 1;
                        failing = 0;
                    }
                    _ => {
                        mine.errors += 1;
                        failing += 1;
                    }
                }
            }
            mine
        });
    }
    let mut total = GetRound::default();
    while let Some(done) = tasks.join_next().await {
        let mine = done.context("a GET worker panicked")?;
        total.ok += mine.ok;
        total.errors += mine.errors;
        total.latency.extend(&mine.latency);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

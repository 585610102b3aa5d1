//! LIST of the whole collection as application/json: time to the last byte, and bytes moved.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;

use crate::client::Client;

/// Longest a single LIST may take before it counts as a failure.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);

/// One full LIST.
#[derive(Debug, Clone, Copy)]
pub struct ListRun {
    /// Body bytes received.
    pub bytes: u64,
    /// From sending the request to the body's last byte.
    pub took: Duration,
}

/// Lists `path` once, streaming the body and counting it (no parsing, so the client's cost is small).
pub async fn once(client: &Client, path: &str) -> Result<ListRun> {
    let t0 = Instant::now();
    let fut = async {
        let resp = client.send(Method::GET, path, None, Bytes::new()).await?;
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            let text = String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned();
            bail!("LIST {path}: {status}: {text}");
        }
        let mut body = resp.into_body();
        let mut bytes = 0u64;
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame?.data_ref() {
                bytes += data.len() as u64;
            }
        }
        Ok(bytes)
    };
    let bytes = match tokio::time::timeout(LIST_TIMEOUT, fut).await {
        Ok(r) => r?,
        Err(_) => bail!("LIST {path}: not complete within {LIST_TIMEOUT:?}"),
    };
    Ok(ListRun {
        bytes,
        took: t0.elapsed(),
    })
}

/// How many items a LIST of `path` returns (parses the body; used once per path as a check).
pub async fn count_items(client: &Client, path: &str) -> Result<usize> {
    let list = client.get_json(path).await?;
    Ok(list["items"].as_array().map_or(0, Vec::len))
}

//! The gateway's operations endpoint and its behaviour when the apiserver is away, against the testbed.

use anyhow::{ensure, Result};
use custos_e2e::raw::{http_get, RawClient, RawRequest};
use custos_e2e::{kubectl, Custos, Testbed};

#[test]
fn readyz_healthz_and_metrics_report_a_serving_gateway() -> Result<()> {
    let tb = Testbed::load()?;
    let gw = Custos::start(&tb, &[])?;
    ensure!(
        http_get(&format!("{}/healthz", gw.ops))?.code == 200,
        "healthz"
    );
    let ready = http_get(&format!("{}/readyz", gw.ops))?;
    ensure!(
        ready.code == 200,
        "readyz: {} {}",
        ready.code,
        ready.body_text(300)
    );

    // One request through the gateway shows up in the request counter by verb and code.
    let client = RawClient::new(&gw.url, &gw.ca)?;
    let resp =
        client.send(&RawRequest::get("/api/v1/namespaces/default").bearer(&tb.token("admin")?))?;
    ensure!(resp.code == 200, "get namespace: {}", resp.code);
    let metrics = http_get(&format!("{}/metrics", gw.ops))?.body_text(1 << 20);
    ensure!(
        metrics.contains(r#"custos_requests_total{verb="get",code="200"} 1"#),
        "request not counted:\n{metrics}"
    );
    ensure!(
        metrics.contains("custos_request_duration_seconds_bucket"),
        "no latency histogram"
    );
    Ok(())
}

#[test]
fn apiserver_down_gives_503_status_and_not_ready() -> Result<()> {
    let tb = Testbed::load()?;
    let dir = tempfile::tempdir()?;
    // The testbed's admin kubeconfig, pointed at a port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let kc = std::fs::read_to_string(tb.var("TESTBED_GATEWAY_KUBECONFIG")?)?
        .replace(tb.var("TESTBED_SERVER")?, &format!("https://{closed}"));
    ensure!(
        kc.contains(&closed.to_string()),
        "could not rewrite the server URL"
    );
    let upstream = dir.path().join("down.kubeconfig");
    std::fs::write(&upstream, kc)?;
    let gw = Custos::start_with_upstream(&tb, &upstream, &[])?;

    let ready = http_get(&format!("{}/readyz", gw.ops))?;
    ensure!(
        ready.code == 503,
        "readyz with the apiserver away: {}",
        ready.code
    );
    ensure!(
        ready.body_text(500).contains("upstream"),
        "readyz says why: {}",
        ready.body_text(500)
    );

    let client_kc = gw.kubeconfig(dir.path(), "admin", Some(&tb.token("admin")?))?;
    let out = kubectl(
        "kubectl",
        &client_kc,
        &["get", "pods", "--request-timeout=20s"],
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "kubectl succeeded with the apiserver away"
    );
    ensure!(
        stderr.contains("ServiceUnavailable") || stderr.contains("unavailable through Custos"),
        "kubectl should print the gateway's 503 Status: {stderr}"
    );

    let resp = RawClient::new(&gw.url, &gw.ca)?
        .send(&RawRequest::get("/api/v1/namespaces/default").bearer(&tb.token("admin")?))?;
    let status = resp.status()?;
    ensure!(
        resp.code == 503 && status.reason == "ServiceUnavailable",
        "{} {}",
        resp.code,
        status.reason
    );
    Ok(())
}

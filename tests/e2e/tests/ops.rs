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

#[test]
fn sigterm_finishes_requests_in_flight_and_closes_streams_after_the_grace_period(
) -> anyhow::Result<()> {
    use std::time::{Duration, Instant};
    let tb = Testbed::load()?;
    let mut gw = Custos::start(&tb, &["--shutdown-grace-seconds", "3"])?;
    let dir = tempfile::tempdir()?;
    let kc = gw.kubeconfig(dir.path(), "admin", Some(&tb.token("admin")?))?;
    // A long-running watch is open through the gateway.
    let mut watch = custos_e2e::Streaming::spawn({
        let mut c = std::process::Command::new("kubectl");
        c.arg("--kubeconfig")
            .arg(&kc)
            .args(["get", "configmaps", "-A", "-w", "-o", "name"]);
        c
    })?;
    watch.wait_for("configmap/", Duration::from_secs(20))?;
    // kubectl lists first, then watches: wait until the gateway holds the watch open.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http_get(&format!("{}/metrics", gw.ops))?
        .body_text(1 << 20)
        .contains(r#"custos_open_streams{kind="watch"} 1"#)
    {
        ensure!(
            Instant::now() < deadline,
            "the watch never opened through the gateway"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let started = Instant::now();
    gw.stop()?;
    let took = started.elapsed();
    // Not at once (the watch was in flight), not forever (the grace period is 3 s).
    ensure!(
        took >= Duration::from_millis(2500),
        "exited before the grace period: {took:?}\n{}",
        gw.logs()
    );
    ensure!(
        took < Duration::from_secs(20),
        "did not close the stream after the grace period: {took:?}"
    );
    ensure!(
        gw.logs().contains("shutdown grace period over"),
        "log:\n{}",
        gw.logs()
    );
    // After shutdown nothing listens any more.
    let addr = gw.url.trim_start_matches("https://");
    ensure!(
        std::net::TcpStream::connect(addr).is_err(),
        "the gateway still accepts connections"
    );
    Ok(())
}

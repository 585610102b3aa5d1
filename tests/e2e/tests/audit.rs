//! The audit log behind the gateway, end to end: every request, response and refusal is recorded and
//! verifies; when the log cannot take a record nothing is forwarded; a crash loses no acknowledged record.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use custos_e2e::clients::AuditLog;
use custos_e2e::raw::{RawClient, RawRequest};
use custos_e2e::{unique, Custos, Testbed};
use custos_store::{LogStore, SearchQuery};

/// Every record's JSON in the stopped gateway's SQLite log, verified with its key.
fn verified_records(data_dir: &Path) -> Result<Vec<serde_json::Value>> {
    custos_e2e::log_records(data_dir)
}

fn with_audit_id<'a>(records: &'a [serde_json::Value], id: &str) -> Vec<&'a serde_json::Value> {
    records.iter().filter(|r| r["auditID"] == id).collect()
}

#[test]
fn requests_responses_and_refusals_are_recorded_and_the_signed_log_verifies() -> Result<()> {
    let tb = Testbed::load()?;
    let mut gw = Custos::start(&tb, &[])?;
    let client = RawClient::new(&gw.url, &gw.ca)?;
    let admin = tb.token("admin")?;
    let ok_id = unique("rec-ok");
    let resp = client.send(
        &RawRequest::get("/api/v1/namespaces/default/configmaps")
            .bearer(&admin)
            .header("Audit-ID", ok_id.as_str()),
    )?;
    ensure!(resp.code == 200, "list: {}", resp.code);
    let refused_id = unique("rec-401");
    let resp = client
        .send(&RawRequest::get("/api/v1/namespaces").header("Audit-ID", refused_id.as_str()))?;
    ensure!(resp.code == 401, "no token: {}", resp.code);
    gw.stop()?;

    let records = verified_records(&gw.data_dir)?;
    let ok = with_audit_id(&records, &ok_id);
    let kinds: Vec<_> = ok
        .iter()
        .map(|r| r["custos"]["recordKind"].as_str().unwrap_or(""))
        .collect();
    ensure!(
        kinds == ["request", "response"],
        "records for the list: {kinds:?}"
    );
    let (request, response) = (ok[0], ok[1]);
    ensure!(
        request["user"]["username"] == "admin@custos.test",
        "who: {request}"
    );
    ensure!(
        request["verb"] == "list" && request["objectRef"]["resource"] == "configmaps",
        "what: {request}"
    );
    ensure!(
        request["custos"]["authn"]["method"] == "oidc",
        "how: {request}"
    );
    ensure!(
        response["responseStatus"]["code"] == 200,
        "outcome: {response}"
    );
    ensure!(
        response["custos"]["bodies"]["response"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "size: {response}"
    );
    let refused = with_audit_id(&records, &refused_id);
    ensure!(refused.len() == 1, "refusal records: {refused:?}");
    ensure!(
        refused[0]["responseStatus"]["code"] == 401,
        "refusal: {}",
        refused[0]
    );
    // Nothing secret in the log: the bearer token never appears.
    let all = serde_json::to_string(&records)?;
    ensure!(
        !all.contains(&admin),
        "a token was written to the audit log"
    );
    Ok(())
}

/// While the store is away (between `take_down` and `bring_back`) a request gets 503 and never reaches
/// the apiserver; requests before and after go through. Checked against the apiserver's own audit log.
fn refuses_while_the_store_is_away(
    tb: &Testbed,
    gw: &Custos,
    take_down: impl FnOnce() -> Result<()>,
    bring_back: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let client = RawClient::new(&gw.url, &gw.ca)?;
    let admin = tb.token("admin")?;
    let mut apiserver_log = AuditLog::from_end(tb)?;
    let get = |id: &str| {
        client.send(
            &RawRequest::get("/api/v1/namespaces/default")
                .bearer(&admin)
                .header("Audit-ID", id),
        )
    };
    let before = unique("store-up");
    ensure!(get(&before)?.code == 200, "control request");

    take_down()?;
    let down = unique("store-down");
    let resp = get(&down)?;
    let status = resp.status()?;
    ensure!(
        resp.code == 503 && status.reason == "ServiceUnavailable",
        "{} {}",
        resp.code,
        status.reason
    );
    ensure!(
        status.message.contains("audit log"),
        "message: {}",
        status.message
    );

    bring_back()?;
    let after = unique("store-back");
    let mut code = 0;
    for _ in 0..100 {
        code = get(&after)?.code;
        if code == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ensure!(code == 200, "after the store came back: {code}");

    let seen = RefCell::new(BTreeSet::new());
    apiserver_log.wait_for(
        "of the request after recovery",
        Duration::from_secs(15),
        |e| {
            let id = e["auditID"].as_str().unwrap_or_default().to_owned();
            seen.borrow_mut().insert(id.clone());
            id == after
        },
    )?;
    let seen = seen.into_inner();
    ensure!(
        seen.contains(&before),
        "control request missing from the apiserver's log"
    );
    ensure!(
        !seen.contains(&down),
        "the unrecorded request reached the apiserver"
    );
    Ok(())
}

#[test]
fn when_the_audit_log_cannot_record_requests_get_503_and_nothing_reaches_the_apiserver(
) -> Result<()> {
    let tb = Testbed::load()?;
    let gw = Custos::start(&tb, &[])?;
    // The log's file goes away (a lost volume): the gateway must refuse, not forward unrecorded.
    let db = gw.data_dir.join("audit.db");
    let away = gw.data_dir.join("audit.db.away");
    refuses_while_the_store_is_away(
        &tb,
        &gw,
        || Ok(std::fs::rename(&db, &away)?),
        || Ok(std::fs::rename(&away, &db)?),
    )
}

#[test]
fn a_crash_during_load_loses_no_acknowledged_record_and_the_log_still_verifies() -> Result<()> {
    let tb = Testbed::load()?;
    let dir = tempfile::tempdir()?;
    let upstream = tb.var("TESTBED_GATEWAY_KUBECONFIG")?.to_owned();
    let mut gw = Custos::start_in(&tb, Path::new(&upstream), dir.path(), &[])?;
    let admin = Arc::new(tb.token("admin")?);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let prefix = unique("crash");
    let mut workers = Vec::new();
    for w in 0..8 {
        let (url, ca, admin, acked, prefix) = (
            gw.url.clone(),
            gw.ca.clone(),
            admin.clone(),
            acked.clone(),
            prefix.clone(),
        );
        workers.push(std::thread::spawn(move || {
            let Ok(client) = RawClient::new(&url, &ca) else {
                return;
            };
            for i in 0..10_000 {
                let id = format!("{prefix}-{w}-{i}");
                let req = RawRequest::get("/api/v1/namespaces/default")
                    .bearer(&admin)
                    .header("Audit-ID", id.as_str());
                match client.send(&req) {
                    // Any answer from the apiserver means the request was forwarded, so its record had
                    // to be durable first.
                    Ok(resp) if resp.code == 200 => {
                        acked.lock().map(|mut a| a.push(id)).unwrap_or(())
                    }
                    _ => return,
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(3));
    gw.crash();
    for w in workers {
        let _ = w.join();
    }
    let acked = acked.lock().map(|a| a.clone()).unwrap_or_default();
    ensure!(
        acked.len() > 50,
        "too little load before the crash: {}",
        acked.len()
    );

    // Restart on the same log: queued records are sequenced, then a clean stop signs the head.
    let mut again = Custos::start_in(&tb, Path::new(&upstream), dir.path(), &[])?;
    again.stop()?;
    let records = verified_records(dir.path()).context("the log after the crash")?;
    let recorded: BTreeSet<&str> = records
        .iter()
        .filter(|r| r["custos"]["recordKind"] == "request")
        .filter_map(|r| r["auditID"].as_str())
        .collect();
    let lost: Vec<_> = acked
        .iter()
        .filter(|id| !recorded.contains(id.as_str()))
        .collect();
    ensure!(
        lost.is_empty(),
        "{} of {} acknowledged requests have no record, e.g. {:?}",
        lost.len(),
        acked.len(),
        lost.first()
    );
    Ok(())
}

#[test]
fn with_postgresql_as_the_store_requests_are_recorded_in_the_shared_log() -> Result<()> {
    let url = std::env::var("CUSTOS_TEST_POSTGRES_URL")
        .context("CUSTOS_TEST_POSTGRES_URL is not set: run crates/store-postgres/scripts/test-db (scripts/test does)")?;
    let tb = Testbed::load()?;
    // A schema of its own: a log with its own signing key, verifiable on its own.
    let schema = unique("e2e").replace('-', "_");
    let mut gw = Custos::start(&tb, &["--store", &url, "--postgres-schema", &schema])?;
    let client = RawClient::new(&gw.url, &gw.ca)?;
    let id = unique("pg");
    let resp = client.send(
        &RawRequest::get("/api/v1/namespaces/default")
            .bearer(&tb.token("admin")?)
            .header("Audit-ID", id.as_str()),
    )?;
    ensure!(resp.code == 200, "get: {}", resp.code);
    gw.stop()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let kinds = rt.block_on(async {
        let options = custos_store_postgres::PostgresOptions {
            schema: Some(schema.clone()),
            ..Default::default()
        };
        let store = custos_store_postgres::PostgresStore::connect(&url, options).await?;
        let key = custos_audit::keys::load(&gw.data_dir.join("audit.key"))?;
        let report = custos_store::verify_store(&store, &key.verifier()).await?;
        ensure!(report.queued == 0, "unsequenced records: {}", report.queued);
        let found = store
            .search(&SearchQuery {
                audit_id: Some(id.clone()),
                limit: 10,
                ..SearchQuery::default()
            })
            .await?;
        store.close().await;
        found
            .iter()
            .map(|e| {
                Ok(
                    serde_json::from_slice::<serde_json::Value>(&e.record)?["custos"]["recordKind"]
                        .to_string(),
                )
            })
            .collect::<Result<Vec<_>>>()
    })?;
    ensure!(
        kinds == [r#""request""#, r#""response""#],
        "records in PostgreSQL: {kinds:?}"
    );
    Ok(())
}

/// A TCP proxy to PostgreSQL that the test can cut (every connection closed, new ones refused) and
/// restore: PostgreSQL going away for this gateway without stopping the server other tests share.
struct CuttableProxy {
    addr: std::net::SocketAddr,
    cut: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl CuttableProxy {
    fn start(target: std::net::SocketAddr) -> Result<CuttableProxy> {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
        let (c2, k2) = (cut.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if c2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(target) else {
                    continue;
                };
                let pairs = [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ];
                if let Ok(mut list) = k2.lock() {
                    list.extend([client, server]);
                }
                for (from, to) in pairs {
                    if let (Ok(mut from), Ok(mut to)) = (from, to) {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    }
                }
            }
        });
        Ok(CuttableProxy { addr, cut, conns })
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut list) = self.conns.lock() {
            for s in list.drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn when_postgresql_goes_away_requests_get_503_and_nothing_reaches_the_apiserver() -> Result<()> {
    let url = std::env::var("CUSTOS_TEST_POSTGRES_URL")
        .context("CUSTOS_TEST_POSTGRES_URL is not set: run crates/store-postgres/scripts/test-db (scripts/test does)")?;
    let target: std::net::SocketAddr = "127.0.0.1:5432".parse()?;
    ensure!(
        url.contains("@127.0.0.1:5432/"),
        "this test proxies a local PostgreSQL: {url}"
    );
    let proxy = CuttableProxy::start(target)?;
    let proxied = url.replace("@127.0.0.1:5432/", &format!("@{}/", proxy.addr));
    let tb = Testbed::load()?;
    let schema = unique("e2e_down").replace('-', "_");
    let gw = Custos::start(&tb, &["--store", &proxied, "--postgres-schema", &schema])?;
    refuses_while_the_store_is_away(
        &tb,
        &gw,
        || {
            proxy.cut();
            Ok(())
        },
        || {
            proxy.restore();
            Ok(())
        },
    )
}

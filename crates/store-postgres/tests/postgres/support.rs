//! The database under test, isolated schemas, and a TCP proxy that can cut a replica off the database
//! the way a crash or a network failure does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use custos_store_postgres::{PostgresOptions, PostgresStore};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_postgres::NoTls;

/// The test database's URL; a missing one is a failure, never a silent pass.
pub fn url() -> String {
    std::env::var("CUSTOS_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "CUSTOS_TEST_POSTGRES_URL is not set. These tests need a real PostgreSQL: run\n  \
             export CUSTOS_TEST_POSTGRES_URL=\"$(crates/store-postgres/scripts/test-db)\"\n\
             (it installs/starts a local PostgreSQL and prints the URL), then run the tests again."
        )
    })
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A schema name no other test (or earlier run) uses.
pub fn fresh_schema(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "ct_{tag}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Opens a store on `schema` (through `url`, which may point at a proxy).
pub async fn store(url: &str, schema: &str) -> PostgresStore {
    PostgresStore::connect(
        url,
        PostgresOptions {
            schema: Some(schema.to_owned()),
            pool_size: 4,
            ..PostgresOptions::default()
        },
    )
    .await
    .expect("connect")
}

/// A direct connection for the test's own SQL.
pub async fn admin() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&url(), NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Drops test schemas.
pub async fn drop_schemas(schemas: &[String]) {
    let admin = admin().await;
    for s in schemas {
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"))
            .await
            .expect("drop schema");
    }
}

/// `host:port` of a `postgres://user:password@host:port/db` URL.
fn host_port(url: &str) -> (String, String, String) {
    let (scheme_user, rest) = url
        .rsplit_once('@')
        .expect("CUSTOS_TEST_POSTGRES_URL must look like postgres://user:password@host:port/db");
    let (host_port, path) = rest.split_once('/').unwrap_or((rest, ""));
    (
        format!("{scheme_user}@"),
        host_port.to_owned(),
        format!("/{path}"),
    )
}

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward bytes both ways.
    Forward,
    /// Close every connection and refuse new ones (the database is gone).
    Cut,
    /// Accept connections and never answer (the database hangs).
    Blackhole,
}

/// A TCP proxy in front of the test database.
pub struct Proxy {
    /// The URL that goes through the proxy.
    pub url: String,
    mode: watch::Sender<Mode>,
    _task: tokio::task::JoinHandle<()>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1 in front of the database in [`url`].
    pub async fn start() -> Proxy {
        let (prefix, upstream, path) = host_port(&url());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let local = listener.local_addr().expect("addr");
        let (mode, watcher) = watch::channel(Mode::Forward);
        let held = Arc::new(Mutex::new(Vec::new()));
        let held2 = Arc::clone(&held);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let current = *watcher.borrow();
                match current {
                    Mode::Cut => drop(client),
                    Mode::Blackhole => held2.lock().expect("held").push(client),
                    Mode::Forward => {
                        let mut watcher = watcher.clone();
                        let upstream = upstream.clone();
                        tokio::spawn(async move {
                            let Ok(mut server) = TcpStream::connect(&upstream).await else {
                                return;
                            };
                            let mut client = client;
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = watcher.wait_for(|m| *m != Mode::Forward) => {}
                            }
                        });
                    }
                }
            }
        });
        Proxy {
            url: format!("{prefix}{local}{path}"),
            mode,
            _task: task,
            held,
        }
    }

    /// Changes what the proxy does; `Cut` and `Blackhole` also end every forwarded connection.
    pub fn set(&self, mode: Mode) {
        if mode != Mode::Blackhole {
            self.held.lock().expect("held").clear();
        }
        self.mode.send_replace(mode);
    }
}

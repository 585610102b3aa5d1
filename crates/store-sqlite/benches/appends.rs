//! Durable appends/s with 1 and 16 writers (and 16 without group commit), sequencing and full
//! verification speed, on SQLite files in a temporary directory (on the same disk as the target dir).
//! `cargo bench -p custos-store-sqlite`; `CUSTOS_BENCH_SECS` sets the seconds per measurement (3).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use custos_store::conformance::measure;
use custos_store::LogStore;
use custos_store_sqlite::SqliteStore;

fn main() {
    let secs = std::env::var("CUSTOS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let base = std::env::var_os("CUSTOS_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let next = AtomicU64::new(0);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(measure::run(
        "sqlite",
        Duration::from_secs(secs),
        || async {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let path = dir.path().join(format!("bench-{n}.db"));
            Arc::new(SqliteStore::open(path).await.expect("open")) as Arc<dyn LogStore>
        },
    ));
}

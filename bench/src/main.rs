//! The `custos-bench` binary: flags → [`custos_bench::suite::Settings`] → the run. Use `bench/run`,
//! which builds a release `custos` and points `CUSTOS_BIN` at it.

use std::time::Duration;

use clap::Parser;

use custos_bench::suite::{self, Settings};

/// Direct vs through-Custos benchmark against the running testbed.
#[derive(Parser)]
#[command(name = "custos-bench", about)]
struct Args {
    /// Concurrent GET workers.
    #[arg(long, default_value_t = 16)]
    workers: usize,
    /// Seconds per measured GET round (two rounds per path).
    #[arg(long, default_value_t = 5)]
    get_round_secs: u64,
    /// Seconds of unmeasured GETs per path first.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Measured LISTs per path.
    #[arg(long, default_value_t = 8)]
    list_iterations: usize,
    /// Concurrent watches.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Patches per path (split over two rounds).
    #[arg(long, default_value_t = 200)]
    patches: usize,
    /// Patches per second.
    #[arg(long, default_value_t = 50)]
    patch_rate: u32,
    /// ConfigMaps in the data set (namespace bench-cm<N>).
    #[arg(long, default_value_t = 5000)]
    objects: usize,
    /// Bytes of data per ConfigMap (about 1 KiB per object as the apiserver serializes it).
    #[arg(long, default_value_t = 640)]
    payload_bytes: usize,
    /// Concurrent creates while preparing the data set.
    #[arg(long, default_value_t = 16)]
    create_concurrency: usize,
}

fn main() -> std::process::ExitCode {
    let a = Args::parse();
    let settings = Settings {
        workers: a.workers,
        get_round: Duration::from_secs(a.get_round_secs),
        warmup: Duration::from_secs(a.warmup_secs),
        list_iterations: a.list_iterations,
        watchers: a.watchers,
        patches: a.patches,
        patch_rate: a.patch_rate,
        objects: a.objects,
        payload_bytes: a.payload_bytes,
        create_concurrency: a.create_concurrency,
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(suite::run(settings)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("custos-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

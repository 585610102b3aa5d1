//! Peak memory of masking a 100 MB list, beside a plain pass-through of the same stream, each in its
//! own process (peak RSS is per process). The list is generated and consumed in 64 KiB chunks, so
//! neither side ever holds it whole; the masked side must stay bounded by one object, not the list.
//!
//! `cargo run --release -p custos-mask --example json_peak_memory [MB]`

use std::process::Command;

use custos_mask::{Detector, Hint, JsonMasker, Profile};

#[path = "support/list.rs"]
mod list;

/// Peak resident set size of this process, in KiB (Linux `VmHWM`).
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Streams a list of about `mb` megabytes through `sink` in 64 KiB chunks; returns bytes generated.
fn stream(mb: usize, mut sink: impl FnMut(&[u8])) -> usize {
    let target = mb * 1_000_000;
    let mut chunk: Vec<u8> = Vec::with_capacity(128 * 1024);
    chunk.extend_from_slice(
        br#"{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":["#,
    );
    let mut total = 0;
    let mut i = 0;
    while total + chunk.len() < target {
        if i > 0 {
            chunk.push(b',');
        }
        chunk.extend_from_slice(list::item(i).as_bytes());
        i += 1;
        if chunk.len() >= 64 * 1024 {
            total += chunk.len();
            sink(&chunk);
            chunk.clear();
        }
    }
    chunk.extend_from_slice(b"]}");
    total += chunk.len();
    sink(&chunk);
    total
}

fn main() {
    let mut args = std::env::args().skip(1);
    let first = args.next();
    if let Some(mode @ ("--child-pass" | "--child-mask")) = first.as_deref() {
        let mb: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
        let started = std::time::Instant::now();
        let mut out_bytes = 0usize;
        let generated = if mode == "--child-pass" {
            stream(mb, |c| {
                let copy = c.to_vec();
                out_bytes += copy.len();
            })
        } else {
            let det = Detector::builtin().expect("detector");
            let mut m = JsonMasker::new(&det, Profile::strict(), Hint::default(), 1 << 26);
            let mut out = Vec::new();
            let n = stream(mb, |c| {
                m.push(c, &mut out).expect("mask");
                out_bytes += out.len();
                out.clear();
            });
            m.finish(&mut out).expect("finish");
            out_bytes += out.len();
            n
        };
        let secs = started.elapsed().as_secs_f64();
        println!("{generated} {out_bytes} {} {secs:.3}", peak_kib());
        return;
    }
    let mb: usize = first.and_then(|a| a.parse().ok()).unwrap_or(100);
    let exe = std::env::current_exe().expect("own path");
    let run = |mode: &str| -> (usize, u64, f64) {
        let out = Command::new(&exe)
            .args([mode, &mb.to_string()])
            .output()
            .expect("child");
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = text.split_whitespace().collect();
        assert!(
            f.len() == 4 && out.status.success(),
            "child {mode}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            f[0].parse().unwrap_or(0),
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0.0),
        )
    };
    let (bytes, pass_kib, pass_s) = run("--child-pass");
    let (_, mask_kib, mask_s) = run("--child-mask");
    println!(
        "list of {:.1} MB streamed in 64 KiB chunks",
        bytes as f64 / 1e6
    );
    println!(
        "pass-through: peak RSS {:>7.1} MiB, {:>7.1} MB/s",
        pass_kib as f64 / 1024.0,
        bytes as f64 / 1e6 / pass_s
    );
    println!(
        "masked:       peak RSS {:>7.1} MiB, {:>7.1} MB/s",
        mask_kib as f64 / 1024.0,
        bytes as f64 / 1e6 / mask_s
    );
}

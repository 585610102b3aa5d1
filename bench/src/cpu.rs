//! CPU time of the processes involved (the bench itself, Custos, kube-apiserver, etcd), read from
//! `/proc/<pid>/stat`, so each phase can say where the machine's cores went. Linux only; on anything
//! else, or when a process cannot be found, the numbers are simply absent.

use std::path::Path;
use std::time::Duration;

/// Clock ticks per second of `utime`/`stime` in `/proc/<pid>/stat` (USER_HZ; 100 on every Linux build
/// in practice).
const TICKS_PER_SECOND: u64 = 100;

/// A process whose CPU time a phase reports.
#[derive(Debug, Clone)]
pub struct Watched {
    /// Short name for the report ("custos", "apiserver", …).
    pub name: &'static str,
    /// Its process id, if found.
    pub pid: Option<u32>,
}

/// Total user + system CPU time of `pid` so far (all threads), or `None` if unreadable.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces; fields after it are plain.
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ")": state is field 3 of the man page, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SECOND,
    ))
}

/// The pid a pid file starts with (the testbed's read "PID PATH").
pub fn pid_from_file(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` shows them (the machine may be shared).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The one process whose command line contains `needle` (e.g. a unique temporary directory).
pub fn pid_with_arg(needle: &str) -> Option<u32> {
    let mut found = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(needle) && pid != std::process::id() {
            if found.is_some() {
                return None;
            }
            found = Some(pid);
        }
    }
    found
}

/// CPU times of every watched process at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot(Vec<Option<Duration>>);

/// Takes a snapshot of `procs`.
pub fn snapshot(procs: &[Watched]) -> Snapshot {
    Snapshot(procs.iter().map(|p| p.pid.and_then(cpu_time)).collect())
}

/// CPU time each watched process used between two snapshots.
pub fn used(before: &Snapshot, after: &Snapshot) -> Vec<Option<Duration>> {
    before
        .0
        .iter()
        .zip(&after.0)
        .map(|(b, a)| Some(a.as_ref()?.saturating_sub(*b.as_ref()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(cpu_time(std::process::id()).is_some());
        }
    }
}

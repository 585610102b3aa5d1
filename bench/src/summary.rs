//! Turning a run's rounds into the printed tables: the main comparison, CPU per operation, and the
//! per-round values that show how much the numbers moved within the run.

use crate::cpu::Watched;
use crate::get::GetRound;
use crate::list::ListRun;
use crate::report::Table;
use crate::stats::Samples;
use crate::suite::{CpuUse, Pair, Settings, Via};
use crate::watch::WatchRound;

const BOTH: [Via; 2] = [Via::Direct, Via::Custos];

/// Everything measured, per path, with the CPU each phase used.
#[derive(Debug, Default)]
pub struct Results {
    /// GET rounds.
    pub gets: Pair<Vec<GetRound>>,
    /// CPU used by the GET rounds.
    pub get_cpu: Pair<CpuUse>,
    /// Individual LISTs.
    pub lists: Pair<Vec<ListRun>>,
    /// CPU used by the LISTs.
    pub list_cpu: Pair<CpuUse>,
    /// Watch rounds.
    pub watches: Pair<Vec<WatchRound>>,
    /// CPU used by the watch rounds.
    pub watch_cpu: Pair<CpuUse>,
}

impl Results {
    /// metric | direct | through Custos | ratio.
    pub fn main_table(&self, s: &Settings) -> Table {
        let mut t = Table::new("Results (ratio = through Custos ÷ direct; rounds in ABBA order)");
        let g = self.gets.map(|r| merged_get(r));
        let secs = g.direct.elapsed.as_secs_f64();
        let what = format!(
            "GET one object, req/s ({} workers, {secs:.0} s/path)",
            s.workers
        );
        t.row(what, Some(g.direct.rate()), Some(g.custos.rate()), 0);
        let p = |r: &GetRound, q| r.latency.percentile(q);
        t.row(
            "GET latency p50, ms",
            Some(p(&g.direct, 50.0)),
            Some(p(&g.custos, 50.0)),
            2,
        );
        t.row(
            "GET latency p99, ms",
            Some(p(&g.direct, 99.0)),
            Some(p(&g.custos, 99.0)),
            2,
        );
        t.row(
            "GET errors",
            Some(g.direct.errors as f64),
            Some(g.custos.errors as f64),
            0,
        );

        let l = self.lists.map(|runs| list_latency(runs));
        let mb = self
            .lists
            .direct
            .first()
            .map_or(0.0, |r| r.bytes as f64 / 1e6);
        let n = self.lists.direct.len();
        let what = format!(
            "LIST {} objects ({mb:.1} MB) p50, ms ({n} runs/path)",
            s.objects
        );
        t.row(
            what,
            Some(l.direct.percentile(50.0)),
            Some(l.custos.percentile(50.0)),
            1,
        );
        t.row(
            "LIST p99 (= max here), ms",
            Some(l.direct.percentile(99.0)),
            Some(l.custos.percentile(99.0)),
            1,
        );
        let tp = self.lists.map(|runs| mb_per_s(runs));
        t.row("LIST throughput, MB/s", Some(tp.direct), Some(tp.custos), 1);

        let w = self.watches.map(|r| merged_watch(r));
        let per = format!(
            "{} watches × {} patches @ {}/s",
            s.watchers, s.patches, s.patch_rate
        );
        let q = |r: &WatchRound, q| Some(r.latency.percentile(q));
        t.row(
            format!("watch event latency p50, ms ({per})"),
            q(&w.direct, 50.0),
            q(&w.custos, 50.0),
            2,
        );
        t.row(
            "watch event latency p99, ms",
            q(&w.direct, 99.0),
            q(&w.custos, 99.0),
            2,
        );
        t.row(
            "watch event latency max, ms",
            Some(w.direct.latency.max()),
            Some(w.custos.latency.max()),
            2,
        );
        t.row(
            "watch events delivered, % of expected",
            Some(pct(&w.direct)),
            Some(pct(&w.custos)),
            2,
        );
        let open = self.watches.map(|r| open_ms(r));
        t.row(
            "watch: time to open all watches, ms (mean/round)",
            Some(open.direct),
            Some(open.custos),
            0,
        );
        let probe = w.map(worst_probe);
        let what = format!(
            "GET by a 2nd client while the {} watches are open, ms (worst; {} s limit)",
            s.watchers,
            crate::watch::PROBE_TIMEOUT.as_secs()
        );
        t.row(what, Some(probe.direct), Some(probe.custos), 1);
        t
    }

    /// CPU time per operation of each watched process, per path.
    pub fn cpu_table(&self, procs: &[Watched]) -> Table {
        let mut t =
            Table::new("CPU time per operation (user+sys from /proc/<pid>/stat, 10 ms ticks)");
        let ops = self.gets.map(|r| merged_get(r).ok as f64);
        cpu_rows(&mut t, procs, "GET, µs/request", &self.get_cpu, &ops, 1e6);
        let ops = self.lists.map(|r| r.len() as f64);
        cpu_rows(&mut t, procs, "LIST, ms/list", &self.list_cpu, &ops, 1e3);
        let ops = self.watches.map(|r| merged_watch(r).delivered as f64);
        cpu_rows(
            &mut t,
            procs,
            "watch, µs/delivered event",
            &self.watch_cpu,
            &ops,
            1e6,
        );
        t
    }

    /// Each round's headline number, so the spread within one run is visible.
    pub fn rounds(&self) -> String {
        let mut out = String::new();
        for via in BOTH {
            let join = |v: Vec<String>| v.join(" / ");
            let get = join(
                self.gets
                    .get(via)
                    .iter()
                    .map(|r| format!("{:.0}", r.rate()))
                    .collect(),
            );
            let list = join(
                self.lists
                    .get(via)
                    .iter()
                    .map(|r| format!("{:.0}", r.took.as_secs_f64() * 1e3))
                    .collect(),
            );
            let watch = join(
                self.watches
                    .get(via)
                    .iter()
                    .map(|r| format!("{:.2}", r.latency.percentile(50.0)))
                    .collect(),
            );
            out.push_str(&format!(
                "rounds {via:?}: GET req/s {get}; LIST ms {list}; watch p50 ms {watch}\n"
            ));
            for p in self.watches.get(via).iter().flat_map(|r| &r.problems) {
                out.push_str(&format!("  watch problem ({via:?}): {p}\n"));
            }
        }
        out
    }
}

impl<T> Pair<T> {
    /// Applies `f` to both values.
    pub fn map<U>(&self, f: impl Fn(&T) -> U) -> Pair<U> {
        Pair {
            direct: f(&self.direct),
            custos: f(&self.custos),
        }
    }
}

fn cpu_rows(
    t: &mut Table,
    procs: &[Watched],
    what: &str,
    used: &Pair<CpuUse>,
    ops: &Pair<f64>,
    scale: f64,
) {
    let per = |via: Via, i: usize| -> Option<f64> {
        let d = (*used.get(via).0.get(i)?)?;
        Some(d.as_secs_f64() * scale / ops.get(via).max(1.0))
    };
    let mut total = Pair {
        direct: Some(0.0),
        custos: Some(0.0),
    };
    for (i, p) in procs.iter().enumerate() {
        for via in BOTH {
            let slot = total.get_mut(via);
            *slot = slot.zip(per(via, i)).map(|(a, b)| a + b);
        }
        t.row(
            format!("{what}: {}", p.name),
            per(Via::Direct, i),
            per(Via::Custos, i),
            1,
        );
    }
    t.row(
        format!("{what}: all of these"),
        total.direct,
        total.custos,
        1,
    );
}

fn merged_get(rounds: &[GetRound]) -> GetRound {
    let mut all = GetRound::default();
    rounds.iter().for_each(|r| all.absorb(r));
    all
}

fn merged_watch(rounds: &[WatchRound]) -> WatchRound {
    let mut all = WatchRound::default();
    rounds.iter().for_each(|r| all.absorb(r));
    all
}

fn list_latency(runs: &[ListRun]) -> Samples {
    let mut s = Samples::default();
    runs.iter().for_each(|r| s.push(r.took));
    s
}

fn mb_per_s(runs: &[ListRun]) -> f64 {
    let bytes: u64 = runs.iter().map(|r| r.bytes).sum();
    let secs: f64 = runs.iter().map(|r| r.took.as_secs_f64()).sum();
    bytes as f64 / 1e6 / secs.max(f64::EPSILON)
}

fn pct(w: &WatchRound) -> f64 {
    100.0 * w.delivered as f64 / w.expected.max(1) as f64
}

/// The slowest probe in ms; infinity when one got no answer.
fn worst_probe(w: &WatchRound) -> f64 {
    w.probes
        .iter()
        .map(|p| p.map_or(f64::INFINITY, |d| d.as_secs_f64() * 1e3))
        .fold(f64::NAN, f64::max)
}

fn open_ms(rounds: &[WatchRound]) -> f64 {
    let total: f64 = rounds.iter().map(|r| r.open_took.as_secs_f64() * 1e3).sum();
    total / rounds.len().max(1) as f64
}

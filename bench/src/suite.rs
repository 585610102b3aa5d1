//! The whole run: start Custos against the testbed, prepare the data, then measure GET, LIST and watch
//! fan-out on both paths in the same run, alternating direct and through-Custos rounds in ABBA order so
//! slow drift of the shared machine (page cache, etcd compaction, other tenants) falls on both equally.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use custos_e2e::{Custos, Testbed};

use crate::client::{Client, Credential};
use crate::cpu::{self, Watched};
use crate::dataset::{self, Dataset};
use crate::get;
use crate::list;
use crate::summary::Results;
use crate::watch;

/// What to run; `main` fills it from flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Concurrent GET workers.
    pub workers: usize,
    /// Length of each measured GET round (two rounds per path).
    pub get_round: Duration,
    /// Unmeasured GETs per path before the rounds.
    pub warmup: Duration,
    /// Measured LISTs per path.
    pub list_iterations: usize,
    /// Concurrent watches per round.
    pub watchers: usize,
    /// Patches per path (split over two rounds).
    pub patches: usize,
    /// Patches per second.
    pub patch_rate: u32,
    /// ConfigMaps in the data set.
    pub objects: usize,
    /// Bytes of data in each ConfigMap.
    pub payload_bytes: usize,
    /// Concurrent creates while preparing.
    pub create_concurrency: usize,
}

/// Which path a measurement takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// To the apiserver with the admin client certificate.
    Direct,
    /// Through Custos with the admin's Dex token.
    Custos,
}

/// The round order: drift over a phase affects both paths alike.
const ABBA: [Via; 4] = [Via::Direct, Via::Custos, Via::Custos, Via::Direct];

/// One value per path.
#[derive(Debug, Default, Clone)]
pub struct Pair<T> {
    /// Direct to the apiserver.
    pub direct: T,
    /// Through Custos.
    pub custos: T,
}

impl<T> Pair<T> {
    /// The value for `via`.
    pub fn get(&self, via: Via) -> &T {
        match via {
            Via::Direct => &self.direct,
            Via::Custos => &self.custos,
        }
    }

    /// The value for `via`, mutably.
    pub fn get_mut(&mut self, via: Via) -> &mut T {
        match via {
            Via::Direct => &mut self.direct,
            Via::Custos => &mut self.custos,
        }
    }
}

/// CPU time per watched process, summed over a phase's measured rounds.
#[derive(Debug, Default, Clone)]
pub struct CpuUse(pub Vec<Option<Duration>>);

impl CpuUse {
    /// Adds one round's use.
    pub fn add(&mut self, used: Vec<Option<Duration>>) {
        if self.0.is_empty() {
            self.0 = vec![Some(Duration::ZERO); used.len()];
        }
        for (acc, u) in self.0.iter_mut().zip(used) {
            *acc = match (*acc, u) {
                (Some(a), Some(u)) => Some(a + u),
                _ => None,
            };
        }
    }
}

struct Bench {
    settings: Settings,
    clients: Pair<Client>,
    patcher: Client,
    set: Dataset,
    procs: Vec<Watched>,
    facts: Vec<String>,
    // Kept alive for the run; dropping it stops the gateway.
    gateway: Custos,
}

/// Runs everything and prints the report to stdout.
pub async fn run(settings: Settings) -> Result<()> {
    let bench = setup(settings).await?;
    let result = measure(&bench).await;
    if result.is_err() {
        let logs = bench.gateway.logs();
        let tail: Vec<&str> = logs.lines().rev().take(5).collect();
        eprintln!("last gateway log lines:");
        tail.iter().rev().for_each(|l| eprintln!("  {l}"));
    }
    result
}

async fn measure(bench: &Bench) -> Result<()> {
    for fact in &bench.facts {
        println!("{fact}");
    }
    let mut r = Results::default();
    bench.get_phase(&mut r).await?;
    bench.list_phase(&mut r).await?;
    bench.watch_phase(&mut r).await?;
    println!();
    print!("{}", r.main_table(&bench.settings).render());
    println!();
    print!("{}", r.cpu_table(&bench.procs).render());
    println!();
    print!("{}", r.rounds());
    println!("load average at the end: {}", crate::cpu::loadavg());
    Ok(())
}

async fn setup(settings: Settings) -> Result<Bench> {
    let custos_bin = std::env::var_os("CUSTOS_BIN")
        .map(std::path::PathBuf::from)
        .context("set CUSTOS_BIN to the custos binary to measure (bench/run does)")?;
    let tb = Testbed::load()?;
    let server = tb.var("TESTBED_SERVER")?.to_owned();
    let ca = std::fs::read(tb.var("TESTBED_CA")?)?;
    let admin = || -> Result<Credential> {
        Ok(Credential::ClientCert {
            cert_pem: std::fs::read(tb.var("TESTBED_ADMIN_CERT")?)?,
            key_pem: std::fs::read(tb.var("TESTBED_ADMIN_KEY")?)?,
        })
    };
    let direct = Client::new(&server, &ca, admin()?)?;
    let patcher = Client::new(&server, &ca, admin()?)?;
    let tb2 = tb.clone();
    let (token, gateway) = tokio::task::spawn_blocking(move || -> Result<(String, Custos)> {
        Ok((tb2.token("admin")?, Custos::start(&tb2, &[])?))
    })
    .await??;
    let custos = Client::new(
        &gateway.url,
        &std::fs::read(&gateway.ca)?,
        Credential::Bearer(token),
    )?;
    let s = &settings;
    let namespace = format!("bench-cm{}", s.objects);
    let set = dataset::prepare(
        &direct,
        &namespace,
        s.objects,
        s.payload_bytes,
        s.create_concurrency,
    )
    .await?;
    let clients = Pair { direct, custos };
    let facts = facts(&tb, &clients, &custos_bin, &gateway, &set).await?;
    let procs = vec![
        Watched {
            name: "apiserver",
            pid: tb_pid(&tb, "TESTBED_PID_FILE_KUBE_APISERVER"),
        },
        Watched {
            name: "etcd",
            pid: tb_pid(&tb, "TESTBED_PID_FILE_ETCD"),
        },
        Watched {
            name: "custos",
            pid: cpu::pid_with_arg(&gateway.data_dir.to_string_lossy()),
        },
        Watched {
            name: "bench client",
            pid: Some(std::process::id()),
        },
    ];
    Ok(Bench {
        settings,
        clients,
        patcher,
        set,
        procs,
        facts,
        gateway,
    })
}

fn tb_pid(tb: &Testbed, var: &str) -> Option<u32> {
    tb.var(var)
        .ok()
        .and_then(|p| cpu::pid_from_file(std::path::Path::new(p)))
}

/// The header lines: machine, builds, protocols, data set; also checks both paths see the same data.
async fn facts(
    tb: &Testbed,
    clients: &Pair<Client>,
    custos_bin: &std::path::Path,
    gateway: &Custos,
    set: &Dataset,
) -> Result<Vec<String>> {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let profile = custos_bin
        .parent()
        .and_then(|p| p.file_name())
        .map_or("unknown".into(), |p| p.to_string_lossy().into_owned());
    let mut items = Pair::<usize>::default();
    let mut proto = Pair::<String>::default();
    for via in [Via::Direct, Via::Custos] {
        let c = clients.get(via);
        *proto.get_mut(via) = format!("{:?}", c.version("/version").await?);
        *items.get_mut(via) = list::count_items(c, &set.collection()).await?;
        c.get_json(&set.object(1)).await?;
    }
    if items.direct != items.custos || items.direct < set.objects {
        bail!(
            "LIST item counts differ or are short: direct {}, through Custos {}",
            items.direct,
            items.custos
        );
    }
    Ok(vec![
        format!("machine: nproc={nproc}, {model}; load average at the start: {}", cpu::loadavg()),
        format!("custos: {profile} build ({}), serving {}", custos_bin.display(), gateway.url),
        format!(
            "bench client: {} build, hyper + rustls/ring; protocol direct {}, through Custos {}",
            if cfg!(debug_assertions) { "debug" } else { "release" },
            proto.direct,
            proto.custos
        ),
        format!(
            "apiserver {} at {}; data: namespace {} with {} ConfigMaps (LIST returns {} items), {} created now in {:.1} s",
            tb.var("TESTBED_KUBE_VERSION").unwrap_or("?"),
            tb.var("TESTBED_SERVER")?,
            set.namespace,
            set.objects,
            items.direct,
            set.created,
            set.took.as_secs_f64()
        ),
    ])
}

impl Bench {
    async fn get_phase(&self, out: &mut Results) -> Result<()> {
        let s = &self.settings;
        let path = self.set.object(1);
        for via in [Via::Direct, Via::Custos] {
            get::round(self.clients.get(via), &path, s.workers, s.warmup).await?;
        }
        for via in ABBA {
            let before = cpu::snapshot(&self.procs);
            let r = get::round(self.clients.get(via), &path, s.workers, s.get_round).await?;
            out.get_cpu
                .get_mut(via)
                .add(cpu::used(&before, &cpu::snapshot(&self.procs)));
            eprintln!("GET   {via:?}: {:.0} req/s, {} errors", r.rate(), r.errors);
            out.gets.get_mut(via).push(r);
        }
        Ok(())
    }

    async fn list_phase(&self, out: &mut Results) -> Result<()> {
        let path = self.set.collection();
        for via in [Via::Direct, Via::Custos] {
            list::once(self.clients.get(via), &path).await?;
        }
        let per_block = self.settings.list_iterations.div_ceil(2).max(1);
        for via in ABBA {
            for _ in 0..per_block {
                let before = cpu::snapshot(&self.procs);
                let r = list::once(self.clients.get(via), &path).await?;
                out.list_cpu
                    .get_mut(via)
                    .add(cpu::used(&before, &cpu::snapshot(&self.procs)));
                out.lists.get_mut(via).push(r);
            }
            eprintln!("LIST  {via:?}: {per_block} lists");
        }
        Ok(())
    }

    async fn watch_phase(&self, out: &mut Results) -> Result<()> {
        let s = &self.settings;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for (n, via) in ABBA.into_iter().enumerate() {
            let plan = watch::Plan {
                watchers: s.watchers,
                patches: s.patches.div_ceil(2),
                interval: Duration::from_secs(1) / s.patch_rate.max(1),
                tag: format!("{stamp}-{n}"),
            };
            let before = cpu::snapshot(&self.procs);
            let r = watch::round(self.clients.get(via), &self.patcher, &self.set, &plan).await?;
            out.watch_cpu
                .get_mut(via)
                .add(cpu::used(&before, &cpu::snapshot(&self.procs)));
            eprintln!(
                "WATCH {via:?}: {}/{} events, p50 {:.2} ms",
                r.delivered,
                r.expected,
                r.latency.percentile(50.0)
            );
            out.watches.get_mut(via).push(r);
        }
        Ok(())
    }
}

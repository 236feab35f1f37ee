//! `cargo xtask bench-broker --cluster`: what cluster mode costs. Three
//! stompkit-broker nodes on one throwaway nats-server (JetStream) against one
//! stompkit-broker without `--cluster`, under two of the main table's rows.
//!
//! Owns that run: starting nats-server ([`xtask::nats`]), the single node and
//! the three cluster nodes (`--in-memory`, logs in `target/bench-broker-cluster-*.log`),
//! running each row ([`ROWS`]) on three setups ([`Setup`]) `--repeat` times,
//! interleaved, with the same `stompkit bench` runs and the same loss
//! accounting as the main table ([`super::rows`]), measuring every broker's
//! memory, and writing `target/bench-broker-cluster.md` (`-quick.md` with
//! `--quick`; never the README). `stompkit bench` takes one `--url`, so the
//! runs that need their connections on given nodes go through a [`Relay`];
//! the single node is measured directly and through the relay too, so that
//! the relay's cost can be told apart from NATS's. When a run fails or loses
//! messages, the end of every involved log is printed; `--quick` then fails.

mod relay;
mod report;

use super::rows::{self, Kind, Mode, Row, Sample};
use super::{BenchBrokerArgs, Settings, Style, procfs, stompkit};
use crate::cmd;
use crate::interop::Broker;
use anyhow::{Context, Result, bail};
use relay::{Placement, Relay};
use report::{Memory, Report};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use xtask::nats::{self, Nats};

/// The rows measured (slugs of the main table's rows).
const ROWS: [&str; 2] = ["topic-1-100-20b", "queue-4-4-1024b"];
/// Nodes in the cluster.
const NODES: usize = 3;

/// Where one run's connections go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// The single node, the load generator connected to it directly.
    Direct,
    /// The single node, every connection through the relay.
    Relayed,
    /// The three nodes, through the relay, spread as [`placement`] says.
    Cluster,
}

impl Setup {
    /// Every setup, in table order.
    pub const ALL: [Setup; 3] = [Setup::Direct, Setup::Relayed, Setup::Cluster];

    /// How the output names it.
    pub fn label(self) -> &'static str {
        match self {
            Setup::Direct => "1 node",
            Setup::Relayed => "1 node via relay",
            Setup::Cluster => "3 nodes + NATS via relay",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Setup::Direct => "direct",
            Setup::Relayed => "relayed",
            Setup::Cluster => "cluster",
        }
    }
}

/// A broker process and where its log is.
struct Node {
    name: String,
    broker: Broker,
    log: PathBuf,
}

/// Every process of the comparison. Fields drop in order: the brokers stop
/// before NATS.
struct Brokers {
    single: Node,
    nodes: Vec<Node>,
    nats: Nats,
}

/// Runs `cargo xtask bench-broker --cluster`.
pub fn run(args: &BenchBrokerArgs) -> Result<()> {
    let settings = Settings::of(args);
    let nofile = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    println!("bench-broker --cluster: open-file limit {nofile}");
    nats::ensure_installed()?;
    let bin = super::build("release")?;
    let rows = cluster_rows()?;
    let load_before = procfs::load1();
    let mut brokers = start_brokers(&bin)?;
    std::thread::sleep(Duration::from_secs(2));
    let mut memory = memory_after_start(&brokers);
    let samples = measure(&mut brokers, &bin.join("stompkit"), &rows, &settings);
    memory_after_rows(&mut memory);
    let nats_version = brokers.nats.info().map_or_else(
        |_| "?".to_string(),
        |info| info["version"].as_str().unwrap_or("?").to_string(),
    );
    keep_nats_log(&brokers.nats);
    drop(brokers);
    let report = Report {
        preamble: report::preamble(&settings, &nats_version, load_before),
        rows,
        samples,
        memory,
    };
    let name = if args.quick {
        "bench-broker-cluster-quick.md"
    } else {
        "bench-broker-cluster.md"
    };
    let path = cmd::target_dir().join(name);
    let text = report::markdown(&report);
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    println!("\n{text}\n(written to {})", path.display());
    let problems = report::problems(&report);
    if problems.is_empty() {
        println!("bench-broker --cluster: every run ran, nothing lost");
    } else if args.quick {
        bail!("bench-broker --cluster --quick: {}", problems.join("; "));
    } else {
        println!("bench-broker --cluster: {}", problems.join("; "));
    }
    Ok(())
}

/// The main table's rows named in [`ROWS`].
fn cluster_rows() -> Result<Vec<Row>> {
    let all = rows::rows(0);
    ROWS.iter()
        .map(|slug| {
            all.iter()
                .find(|row| row.slug() == *slug)
                .cloned()
                .with_context(|| format!("no row {slug} in the main table"))
        })
        .collect()
}

/// `stompkit-broker` in memory on an ephemeral loopback port, warnings only,
/// with the main table's limits; with `cluster`, a node of that NATS named `name`.
fn node_command(bin: &Path, cluster: Option<&str>, name: &str) -> Command {
    let mut command = stompkit::base_command(bin);
    command.arg("--in-memory");
    if let Some(url) = cluster {
        command
            .args(["--cluster", url])
            .env("STOMPKIT_CLUSTER_NAME", name);
    }
    command
}

/// Starts nats-server, the single node and the cluster's nodes.
fn start_brokers(bin: &Path) -> Result<Brokers> {
    let nats = Nats::start()?;
    let spawn = |name: &str, cluster: Option<&str>| -> Result<Node> {
        let log = cmd::target_dir().join(format!("bench-broker-cluster-{name}.log"));
        let broker = Broker::spawn(node_command(bin, cluster, name), log.clone())
            .with_context(|| format!("starting {name} (log: {})", log.display()))?;
        println!("bench-broker --cluster: {name} at {}", broker.addr);
        Ok(Node {
            name: name.to_string(),
            broker,
            log,
        })
    };
    let single = spawn("single", None)?;
    let url = nats.url();
    let nodes = (1..=NODES)
        .map(|i| spawn(&format!("node{i}"), Some(&url)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Brokers {
        single,
        nodes,
        nats,
    })
}

/// Where a run's connections go: `None` for [`Setup::Direct`]. Over the
/// cluster, subscribers round robin from node 1; a topic's publishers from
/// node 1 too, a queue's from node 2, so publisher i and consumer i are on
/// different nodes.
pub fn placement(
    setup: Setup,
    kind: Kind,
    single: SocketAddr,
    nodes: &[SocketAddr],
) -> Option<Placement> {
    let Kind::Throughput {
        mode, subscribers, ..
    } = kind
    else {
        return None;
    };
    match setup {
        Setup::Direct => None,
        Setup::Relayed => Some(Placement::all_to(single)),
        Setup::Cluster => {
            let offset = match mode {
                Mode::Topic => 0,
                Mode::Queue => 1.min(nodes.len().saturating_sub(1)),
            };
            let mut publishers = nodes.to_vec();
            publishers.rotate_left(offset);
            Some(Placement {
                first: subscribers,
                first_to: nodes.to_vec(),
                rest_to: publishers,
            })
        }
    }
}

/// Every row on every setup, `repeat` times, interleaved:
/// `samples[row][setup]` (setups in [`Setup::ALL`] order).
fn measure(
    brokers: &mut Brokers,
    stompkit: &Path,
    rows: &[Row],
    settings: &Settings,
) -> Vec<[Vec<Sample>; 3]> {
    let mut out: Vec<[Vec<Sample>; 3]> = rows.iter().map(|_| Default::default()).collect();
    for round in 0..settings.repeat {
        println!(
            "bench-broker --cluster: round {} of {}",
            round + 1,
            settings.repeat
        );
        for (r, row) in rows.iter().enumerate() {
            for (s, setup) in Setup::ALL.into_iter().enumerate() {
                let sample = run_once(brokers, stompkit, row, setup, settings);
                super::print_sample(setup.label(), row, &sample);
                if trouble(&sample) {
                    show_logs(brokers, setup);
                }
                out[r][s].push(sample);
            }
        }
    }
    out
}

/// One run of `row` on `setup`.
fn run_once(
    brokers: &mut Brokers,
    stompkit: &Path,
    row: &Row,
    setup: Setup,
    settings: &Settings,
) -> Sample {
    if let Some(why) = gone(brokers, setup) {
        return Sample::Failed(why);
    }
    let style = Style {
        login: None,
        prefetch_header: "prefetch-count",
        fill_transaction: None,
    };
    let run_id = format!("{}-{}", std::process::id(), setup.slug());
    let nodes: Vec<_> = brokers.nodes.iter().map(|n| n.broker.addr).collect();
    let Some(placement) = placement(setup, row.kind, brokers.single.broker.addr, &nodes) else {
        let url = format!("stomp://{}", brokers.single.broker.addr);
        let plan = rows::Plan {
            stomp_url: &url,
            ..style.plan(stompkit, settings, &run_id)
        };
        return load(&plan, row);
    };
    let relay = match Relay::start(placement) {
        Ok(relay) => relay,
        Err(error) => return Sample::Failed(format!("{error:#}")),
    };
    let url = relay.url();
    let plan = rows::Plan {
        stomp_url: &url,
        ..style.plan(stompkit, settings, &run_id)
    };
    let sample = load(&plan, row);
    let names: Vec<(SocketAddr, &str)> = std::iter::once(&brokers.single)
        .chain(&brokers.nodes)
        .map(|n| (n.broker.addr, n.name.as_str()))
        .collect();
    println!(
        "bench-broker --cluster: {}",
        report::placed(&relay.placed(), &names)
    );
    match relay.errors().first() {
        Some(error) => Sample::Failed(format!("relay: {error}")),
        None => sample,
    }
}

/// `plan.run_load(row)`; a row that does not apply is a failure here.
fn load(plan: &rows::Plan<'_>, row: &Row) -> Sample {
    plan.run_load(row)
        .unwrap_or_else(|| Sample::Failed("the row does not apply".into()))
}

/// Why `setup` cannot run: a broker of it has exited.
fn gone(brokers: &mut Brokers, setup: Setup) -> Option<String> {
    let nodes: Vec<&mut Node> = match setup {
        Setup::Cluster => brokers.nodes.iter_mut().collect(),
        _ => vec![&mut brokers.single],
    };
    for node in nodes {
        if let Ok(Some(status)) = node.broker.exited() {
            node.broker.print_log_tail();
            return Some(format!(
                "{} exited ({status}; log: {})",
                node.name,
                node.log.display()
            ));
        }
    }
    None
}

/// A failed run, or one whose deliveries differ from what was published.
fn trouble(sample: &Sample) -> bool {
    match sample {
        Sample::Failed(_) => true,
        Sample::Load {
            delivered,
            expected,
            ..
        } => delivered != expected,
        _ => false,
    }
}

/// Prints the end of the logs of the brokers `setup` ran on (and of NATS).
fn show_logs(brokers: &Brokers, setup: Setup) {
    if setup == Setup::Cluster {
        for node in &brokers.nodes {
            node.broker.print_log_tail();
        }
        eprintln!("{}", brokers.nats.log_tail());
    } else {
        brokers.single.broker.print_log_tail();
    }
}

/// Every process's resident memory before the first run.
fn memory_after_start(brokers: &Brokers) -> Vec<Memory> {
    let mut processes: Vec<(String, Option<u32>)> = std::iter::once(&brokers.single)
        .chain(&brokers.nodes)
        .map(|n| (n.name.clone(), Some(n.broker.pid())))
        .collect();
    processes.push((
        "nats-server".into(),
        procfs::listener_pid(brokers.nats.port()),
    ));
    processes
        .into_iter()
        .map(|(name, pid)| Memory {
            name,
            pid,
            after_start: pid.and_then(procfs::rss_bytes),
            after_rows: None,
            peak: None,
        })
        .collect()
}

/// Fills in every process's memory after the last run (while they run, so
/// that their pids are still theirs).
fn memory_after_rows(memory: &mut [Memory]) {
    for m in memory {
        m.after_rows = m.pid.and_then(procfs::rss_bytes);
        m.peak = m.pid.and_then(procfs::peak_rss_bytes);
    }
}

/// Copies nats-server's log (its directory goes with it) to
/// `target/bench-broker-cluster-nats.log`.
fn keep_nats_log(nats: &Nats) {
    let to = cmd::target_dir().join("bench-broker-cluster-nats.log");
    if std::fs::copy(nats.dir().join("nats.log"), &to).is_ok() {
        println!("bench-broker --cluster: NATS log kept in {}", to.display());
    }
}

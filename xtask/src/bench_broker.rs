//! `cargo xtask bench-broker`: stompkit-broker side by side with RabbitMQ and
//! ActiveMQ Classic under the same `stompkit bench` workloads.
//!
//! Owns the run: building the broker and the load generator (release; the dev
//! profile for `--quick`), starting each broker in turn (stompkit; with peers
//! present, a throwaway RabbitMQ with STOMP and Web-STOMP from [`xtask::rabbitmq`]
//! and an ActiveMQ with a `stomp+nio` connector from [`crate::activemq`]),
//! measuring memory on the fresh broker first (idle RSS, then RSS per idle
//! connection and the time to accept them, from `stompkit bench idle`), then every
//! load row ([`rows`]), `--repeat` times, rows interleaved, and writing the
//! results: `target/bench-broker.md` always; with a full run also the README
//! block and `docs/bench-broker.svg` ([`chart`]).
//!
//! The durable table (`--sections durable`) runs on another fresh start of each
//! broker, with its store on: stompkit with a data directory of its own (every
//! stompkit start has one, [`stompkit`]), RabbitMQ's durable queues, ActiveMQ
//! with KahaDB. Its publish, drain and RECEIPT latency rows run `--repeat` times
//! like the load rows; the recovery row ([`recovery`]) once per broker, each on
//! a broker of its own. The machine's fsync latency ([`fsync`]) is measured
//! first and shown with it.
//!
//! `--with-peers` installs missing peers with apt. `--quick` is CI's smoke test:
//! stompkit alone, short runs, 1,000 connections, a small durable drain and no
//! recovery row, only `target/bench-broker-quick.md`, and it fails when any row
//! failed or lost messages. (Release builds even then: a dev build's broker is
//! too slow to keep up with its own load generator, so the runs would test the
//! debug build.) `--cluster` measures cluster mode instead: two of the rows on
//! three nodes over NATS against one node ([`cluster`]).

mod chart;
mod cluster;
mod fsync;
mod procfs;
mod recovery;
mod rows;
mod stompkit;
mod table;

use crate::activemq::ActiveMq;
use crate::interop::Broker;
use crate::{activemq, cmd};
use anyhow::{Context, Result, bail};
use rows::{Kind, Plan, Row, Sample, Section};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use table::{Column, Fsync, Results};
use xtask::rabbitmq::{self, GUEST, RabbitMq};

/// Options of `cargo xtask bench-broker`.
#[derive(clap::Args, Debug)]
pub struct BenchBrokerArgs {
    /// Smoke test: stompkit alone, short runs; writes only target/.
    #[arg(long)]
    quick: bool,
    /// Install RabbitMQ and ActiveMQ with apt-get where missing.
    #[arg(long)]
    with_peers: bool,
    /// Measured seconds of publishing per load run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Unmeasured warm-up seconds before each load run.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Runs per load row (the table shows the median and the spread).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Idle connections for the memory rows.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Only these brokers (stompkit, rabbitmq, activemq; repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Do not touch README.md and docs/ (results still go to target/).
    #[arg(long)]
    no_readme: bool,
    /// Tables to measure: main (throughput, latency, memory, WebSocket) and
    /// durable (persistent messages: publish, drain, RECEIPT latency, recovery,
    /// with the machine's fsync latency); repeatable or comma-separated. A run
    /// without both leaves README.md and docs/ alone.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Section::Main, Section::Durable])]
    sections: Vec<Section>,
    /// Persistent messages the durable drain row fills its queue with first.
    #[arg(long, default_value_t = 200_000)]
    drain_messages: u64,
    /// Persistent messages stored before the recovery row's SIGKILL (0: no recovery row).
    #[arg(long, default_value_t = 1_000_000)]
    recovery_messages: u64,
    /// Cluster mode instead: topic 1→100 and queue 4→4 on three nodes over a
    /// throwaway nats-server against one node; writes only
    /// target/bench-broker-cluster.md (with --quick: -quick.md).
    #[arg(long, conflicts_with_all = ["with_peers", "only"])]
    cluster: bool,
}

/// What one run measures, from the options (`--quick` fixes most of it).
struct Settings {
    seconds: f64,
    warmup: f64,
    connections: usize,
    repeat: usize,
    main: bool,
    durable: bool,
    drain_messages: u64,
    recovery_messages: Option<u64>,
    fsync_samples: usize,
}

impl Settings {
    fn of(args: &BenchBrokerArgs) -> Settings {
        let main = args.sections.contains(&Section::Main);
        let durable = args.sections.contains(&Section::Durable);
        if args.quick {
            return Settings {
                seconds: 1.0,
                warmup: 0.3,
                connections: 1000,
                repeat: 1,
                main,
                durable,
                drain_messages: 5000,
                recovery_messages: None,
                fsync_samples: 200,
            };
        }
        Settings {
            seconds: args.seconds,
            warmup: args.warmup,
            connections: args.connections,
            repeat: args.repeat.max(1),
            main,
            durable,
            drain_messages: args.drain_messages.max(1),
            recovery_messages: (args.recovery_messages > 0).then_some(args.recovery_messages),
            fsync_samples: 2000,
        }
    }

    /// The rows of the selected tables, in table order.
    fn rows(&self) -> Vec<Row> {
        let mut rows = if self.main {
            rows::rows(self.connections)
        } else {
            Vec::new()
        };
        if self.durable {
            rows.extend(rows::durable(self.drain_messages, self.recovery_messages));
        }
        rows
    }
}

/// Where the chart goes, relative to the workspace root (and to the README).
const CHART: &str = "docs/bench-broker.svg";

/// `--quick`, for CI.
pub fn run_quick() -> Result<()> {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Quick {
        #[command(flatten)]
        args: BenchBrokerArgs,
    }
    run(&Quick::try_parse_from(["bench-broker", "--quick"])?.args)
}

/// Runs the benchmark.
pub fn run(args: &BenchBrokerArgs) -> Result<()> {
    if args.cluster {
        return cluster::run(args);
    }
    let settings = Settings::of(args);
    // The load generator and the brokers inherit this (each side of 10,000
    // connections needs that many descriptors).
    let nofile = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    println!("bench-broker: open-file limit {nofile}");
    let profile = "release";
    let bin = build(profile)?;
    let wanted = |name: &str| {
        (args.only.is_empty() && (name == "stompkit" || !args.quick))
            || args.only.iter().any(|o| o.eq_ignore_ascii_case(name))
    };
    if args.with_peers {
        install_peers(wanted("rabbitmq"), wanted("activemq"))?;
    }
    let rows = settings.rows();
    let fsync = settings.durable.then(|| measure_fsync(&settings)).flatten();
    let load_before = procfs::load1();
    let mut columns = Vec::new();
    let mut per_column: Vec<Vec<Vec<Sample>>> = Vec::new();
    for name in ["stompkit", "rabbitmq", "activemq"] {
        if !wanted(name) {
            continue;
        }
        let run_id = format!("{}-{}", std::process::id(), columns.len());
        if let Some((column, samples)) = measure_broker(name, &bin, &rows, &settings, &run_id)? {
            columns.push(column);
            per_column.push(samples);
        }
    }
    let samples = (0..rows.len())
        .map(|r| per_column.iter().map(|c| c[r].clone()).collect())
        .collect();
    let results = Results {
        preamble: preamble(&columns, profile, &settings, load_before),
        durable_preamble: durable_preamble(&settings),
        fsync,
        columns,
        rows,
        samples,
    };
    let partial = !(settings.main && settings.durable);
    write(
        &results,
        args.quick,
        args.quick || args.no_readme || partial,
    )?;
    if args.quick {
        check_quick(&results)?;
    }
    Ok(())
}

/// The machine's fsync latency in the target directory, where every broker
/// keeps its data; `None` (with a printed line) when it cannot be measured.
fn measure_fsync(settings: &Settings) -> Option<Fsync> {
    match fsync::measure(&cmd::target_dir(), settings.fsync_samples) {
        Ok(f) => {
            println!(
                "bench-broker: fsync (write 4 KiB + fdatasync) p50 {:.2} ms, p99 {:.2} ms over {} writes",
                f.p50_us / 1e3,
                f.p99_us / 1e3,
                f.samples
            );
            Some(f)
        }
        Err(error) => {
            println!("bench-broker: cannot measure fsync: {error:#}");
            None
        }
    }
}

/// Every selected row on one broker: the main rows on a broker started for
/// them, the durable load rows on a fresh one with its store on, the recovery
/// row on yet another. `None` when the broker is not installed.
fn measure_broker(
    name: &str,
    bin: &Path,
    rows: &[Row],
    settings: &Settings,
    run_id: &str,
) -> Result<Option<(Column, Vec<Vec<Sample>>)>> {
    let stompkit = bin.join("stompkit");
    let mut out = vec![Vec::new(); rows.len()];
    let mut column = None;
    if settings.main {
        let Some(subject) = start(name, bin, activemq::Store::Memory)? else {
            return Ok(None);
        };
        let plan = subject.plan(&stompkit, settings, run_id);
        measure(&subject, rows, &plan, settings, &mut out);
        column = Some(subject.column.clone());
    }
    if settings.durable {
        let Some(subject) = start(name, bin, activemq::Store::KahaDb)? else {
            return Ok(None);
        };
        let plan = subject.plan(&stompkit, settings, run_id);
        println!("bench-broker: durable rows on {name}");
        for _ in 0..settings.repeat {
            for (i, row) in rows.iter().enumerate() {
                if row.kind.section() == Section::Durable
                    && let Some(sample) = plan.run_load(row)
                {
                    print_sample(&subject.column.name, row, &sample);
                    out[i].push(sample);
                }
            }
        }
        let name_shown = subject.column.name.clone();
        let style = subject.style;
        column.get_or_insert_with(|| subject.column.clone());
        // Nothing else running while the recovery row fills and restarts a broker.
        drop(plan);
        drop(subject);
        let plan = Plan {
            stomp_url: "",
            ws_url: None,
            ..style.plan(&stompkit, settings, run_id)
        };
        for (i, row) in rows.iter().enumerate() {
            if let Kind::Recovery { messages, size } = row.kind {
                let sample = recovery::measure(name, bin, &plan, messages, size);
                print_sample(&name_shown, row, &sample);
                out[i].push(sample);
            }
        }
    }
    Ok(column.map(|c| (c, out)))
}

fn print_sample(name: &str, row: &Row, sample: &Sample) {
    println!(
        "bench-broker: {name}: {}: {}",
        row.label,
        table::cell(std::slice::from_ref(sample), row.kind)
    );
}

/// Builds `stompkit-broker` and `stompkit` with `profile`; returns their directory.
fn build(profile: &str) -> Result<PathBuf> {
    let args = [
        "build",
        "--profile",
        profile,
        "-p",
        "stompkit-broker",
        "-p",
        "stompkit-cli",
    ];
    cmd::run(&mut cmd::cargo(&args)).context("building the broker and the load generator")?;
    Ok(cmd::target_dir().join(profile))
}

/// Installs the Debian packages of the wanted peers that are missing.
fn install_peers(rabbit: bool, active: bool) -> Result<()> {
    let mut missing = Vec::new();
    if rabbit && !rabbitmq::installed() {
        missing.push("rabbitmq-server");
    }
    if active && !activemq::installed() {
        missing.push("activemq");
    }
    if missing.is_empty() {
        return Ok(());
    }
    cmd::apt_install(&missing)
}

/// A broker under test and what the load generator needs to reach it.
struct Subject {
    column: Column,
    stomp_url: String,
    ws_url: Option<String>,
    /// What the load generator must know besides the addresses.
    style: Style,
    /// The process whose memory is measured.
    pid: Option<u32>,
    /// Stops the broker when dropped.
    _guard: Box<dyn std::any::Any>,
}

/// What the load generator must know of a broker besides its addresses.
#[derive(Clone, Copy, Debug)]
struct Style {
    /// `(login, passcode)`, when the broker wants them.
    login: Option<(&'static str, &'static str)>,
    /// The SUBSCRIBE header bounding unacknowledged messages.
    prefetch_header: &'static str,
    /// Transactions of this many SENDs fill its durable queues fastest
    /// (`None`: receipted windows do).
    fill_transaction: Option<u64>,
}

impl Style {
    /// A plan for this broker with no address yet.
    fn plan<'a>(self, stompkit: &'a Path, settings: &Settings, run_id: &str) -> Plan<'a> {
        Plan {
            stompkit,
            stomp_url: "",
            ws_url: None,
            login: self.login,
            seconds: settings.seconds,
            warmup: settings.warmup,
            run_id: run_id.to_string(),
            prefetch_header: self.prefetch_header,
            fill_transaction: self.fill_transaction,
            durable_runs: std::cell::Cell::new(0),
        }
    }
}

impl Subject {
    /// How the load generator reaches this broker.
    fn plan<'a>(&'a self, stompkit: &'a Path, settings: &Settings, run_id: &str) -> Plan<'a> {
        Plan {
            stomp_url: &self.stomp_url,
            ws_url: self.ws_url.as_deref(),
            ..self.style.plan(stompkit, settings, run_id)
        }
    }
}

/// Starts one broker (ActiveMQ with `store`; the others always have theirs);
/// `None` (with a printed line) when it is not installed.
fn start(name: &str, bin: &Path, store: activemq::Store) -> Result<Option<Subject>> {
    Ok(Some(match name {
        "stompkit" => {
            let data = stompkit::DataDir::new(&cmd::target_dir())?;
            let command = stompkit::command(bin, data.path());
            let broker =
                Broker::spawn(command, cmd::target_dir().join("bench-broker-stompkit.log"))?;
            Subject {
                column: Column {
                    name: table::STOMPKIT.into(),
                    version: stompkit_version(),
                },
                stomp_url: format!("stomp://{}", broker.addr),
                ws_url: Some(format!("ws://{}/ws", broker.addr)),
                style: Style {
                    login: None,
                    prefetch_header: "prefetch-count",
                    fill_transaction: None,
                },
                pid: Some(broker.pid()),
                // The broker stops before its data directory is removed.
                _guard: Box::new((broker, data)),
            }
        }
        "rabbitmq" => {
            let rabbit = match RabbitMq::start(&cmd::target_dir()) {
                Ok(rabbit) => rabbit,
                Err(error) => match cmd::Missing::find(&error) {
                    Some(missing) => {
                        println!("bench-broker: {missing}");
                        return Ok(None);
                    }
                    None => return Err(error),
                },
            };
            Subject {
                column: Column {
                    name: "RabbitMQ".into(),
                    version: package_version("rabbitmq-server"),
                },
                stomp_url: format!("stomp://{}", rabbit.stomp),
                ws_url: Some(format!("ws://{}/ws", rabbit.web_stomp)),
                style: Style {
                    login: Some(GUEST),
                    prefetch_header: "prefetch-count",
                    fill_transaction: None,
                },
                pid: procfs::listener_pid(rabbit.stomp.port()),
                _guard: Box::new(rabbit),
            }
        }
        _ => {
            let Some(active) = ActiveMq::start(&cmd::target_dir(), store)? else {
                println!(
                    "bench-broker: ActiveMQ skipped: not installed (apt-get install activemq, or --with-peers)"
                );
                return Ok(None);
            };
            Subject {
                column: Column {
                    name: "ActiveMQ".into(),
                    version: package_version("activemq"),
                },
                stomp_url: format!("stomp://{}", active.stomp),
                ws_url: None,
                style: Style {
                    login: None,
                    prefetch_header: "activemq.prefetchSize",
                    fill_transaction: Some(1000),
                },
                pid: active.pid(),
                _guard: Box::new(active),
            }
        }
    }))
}

/// The main rows on one broker: memory first (fresh process), then the load
/// rows `repeat` times, interleaved so slow drifts in machine load spread evenly.
fn measure(
    subject: &Subject,
    rows: &[Row],
    plan: &Plan<'_>,
    settings: &Settings,
    out: &mut [Vec<Sample>],
) {
    let (connections, repeat) = (settings.connections, settings.repeat);
    let name = &subject.column.name;
    println!("bench-broker: measuring {name} {}", subject.column.version);
    std::thread::sleep(Duration::from_secs(2));
    let idle = subject.pid.and_then(procfs::rss_bytes);
    let (per_connection, accept) = match (subject.pid, idle) {
        (Some(pid), Some(idle)) => idle_connections(plan, pid, idle, connections),
        _ => {
            let why = Sample::Failed("cannot find the broker's process".into());
            (why.clone(), why)
        }
    };
    for (i, row) in rows.iter().enumerate() {
        match row.kind {
            Kind::IdleRss => out[i].push(idle.map_or_else(
                || Sample::Failed("cannot read the broker's memory".into()),
                |b| Sample::Bytes(b as f64),
            )),
            Kind::RssPerConnection => out[i].push(per_connection.clone()),
            Kind::AcceptTime => out[i].push(accept.clone()),
            _ => {}
        }
    }
    for _ in 0..repeat {
        for (i, row) in rows.iter().enumerate() {
            if row.kind.section() != Section::Main {
                continue;
            }
            if let Some(sample) = plan.run_load(row) {
                print_sample(name, row, &sample);
                out[i].push(sample);
            }
        }
    }
}

/// Opens `n` idle connections with `stompkit bench idle`, measures the broker's
/// memory while they are held, closes them. Returns (RSS per connection, seconds
/// to open them all).
fn idle_connections(plan: &Plan<'_>, pid: u32, idle: u64, n: usize) -> (Sample, Sample) {
    let failed = |why: String| (Sample::Failed(why.clone()), Sample::Failed(why));
    let mut args = vec![
        "bench".to_string(),
        "idle".into(),
        "--url".into(),
        plan.stomp_url.into(),
    ];
    args.extend(plan.login_args());
    args.extend([
        "--connections".into(),
        n.to_string(),
        "--hold".into(),
        "600".into(),
        "--json".into(),
    ]);
    println!("$ {} {}", plan.stompkit.display(), args.join(" "));
    let mut child = match Command::new(plan.stompkit)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return failed(format!("cannot start stompkit: {e}")),
    };
    // The report line comes once every connection is established (or never).
    let line = child.stdout.take().and_then(|out| {
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).ok()?;
        Some(line)
    });
    let report = line.and_then(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok());
    let result = match report {
        Some(report) => {
            // Let the broker finish whatever accepting left behind.
            std::thread::sleep(Duration::from_secs(2));
            match procfs::rss_bytes(pid) {
                Some(held) => (
                    Sample::Bytes(held.saturating_sub(idle) as f64 / n as f64),
                    Sample::Seconds(report["connect_s"].as_f64().unwrap_or(f64::NAN)),
                ),
                None => failed("the broker's process is gone".into()),
            }
        }
        None => {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
            }
            failed(
                stderr
                    .lines()
                    .last()
                    .unwrap_or("bench idle failed")
                    .to_string(),
            )
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    // Give the broker time to see the connections go before the next runs.
    std::thread::sleep(Duration::from_secs(3));
    result
}

/// `0.1.0 (git abc1234)`.
fn stompkit_version() -> String {
    let rev = cmd::output(
        Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(cmd::root()),
    );
    match rev {
        Some(rev) => format!("{} ({})", env!("CARGO_PKG_VERSION"), rev.trim()),
        None => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// The upstream part of a Debian package's version (`3.10.8` of `3.10.8-1.1+deb12u1`).
fn package_version(package: &str) -> String {
    let full = cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Version}", package]))
        .unwrap_or_default();
    upstream_version(&full)
}

fn upstream_version(debian: &str) -> String {
    let without_epoch = debian.rsplit(':').next().unwrap_or(debian);
    let upstream = without_epoch.split('-').next().unwrap_or(without_epoch);
    upstream.split('+').next().unwrap_or(upstream).to_string()
}

/// The lines above the table.
fn preamble(
    columns: &[Column],
    profile: &str,
    settings: &Settings,
    load_before: Option<f64>,
) -> Vec<String> {
    let (seconds, warmup, repeat) = (settings.seconds, settings.warmup, settings.repeat);
    let date =
        cmd::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default();
    let date = date.trim();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = procfs::mem_total().map_or(0.0, |b| b as f64 / (1u64 << 30) as f64);
    let activemq_store = match (settings.main, settings.durable) {
        (true, true) => "non-persistent; KahaDB for the durable table",
        (false, true) => "KahaDB",
        _ => "non-persistent",
    };
    let versions: Vec<String> = columns
        .iter()
        .map(|column| match column.name.as_str() {
            table::STOMPKIT => format!("stompkit {} ({profile} build)", stompkit_version()),
            "RabbitMQ" => format!(
                "RabbitMQ {} (Debian; Erlang {}; rabbitmq_stomp, rabbitmq_web_stomp)",
                column.version,
                package_version("erlang-base")
            ),
            _ => format!(
                "ActiveMQ Classic {} (Debian; `stomp+nio`, {activemq_store}; Java {})",
                column.version,
                java_version()
            ),
        })
        .collect();
    let load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.1}"));
    let load_average = format!(
        "1-minute load average before / after: {} / {}.",
        load(load_before),
        load(procfs::load1())
    );
    let mut lines = vec![
        format!(
            "Measured {date} by `cargo xtask bench-broker` on {} ({cores} cores, {memory:.0} GiB), Linux {}; \
             the load generator (`stompkit bench`) runs on the same machine, one broker at a time.",
            procfs::cpu_model().unwrap_or_else(|| "an unknown CPU".into()),
            procfs::kernel().unwrap_or_default()
        ),
        format!("Versions: {}.", versions.join("; ")),
    ];
    if settings.main {
        lines.push(format!(
            "Load rows: `ack:auto` subscriptions, {warmup} s unmeasured warm-up, then {seconds} s of measured publishing \
             as fast as the broker takes it; only measured deliveries count (topic 1→100 counts each of the 100 copies), \
             and a row whose deliveries differ from published × fan-out says how many were lost. \
             Median of {repeat} run(s), ± half the spread. WebSocket rows: stompkit's `/ws` and RabbitMQ Web-STOMP. \
             {load_average}"
        ));
    } else {
        lines.push(load_average);
    }
    lines
}

/// The lines above the durable table: what its rows do.
fn durable_preamble(settings: &Settings) -> Vec<String> {
    let mut lines = vec![format!(
        "Every SEND is `persistent:true` with a `receipt`, to a durable queue, and counts when its RECEIPT arrives: \
             stompkit with a data directory (group commit, RECEIPT after fdatasync), RabbitMQ's durable classic queues \
             (publisher confirms), ActiveMQ with KahaDB (journal synced on write); each broker started afresh for this table. \
             Publish and RECEIPT latency rows: {} s unmeasured warm-up, then {} s measured, no consumer, then the queue \
             is emptied (unmeasured). Drain: the queue is filled first (unmeasured), then timed from the SUBSCRIBEs to \
             the last delivery. Median of {} run(s).",
        settings.warmup, settings.seconds, settings.repeat
    )];
    if let Some(messages) = settings.recovery_messages {
        lines.push(format!(
            "Recovery (one run each, on a broker of its own): {messages} persistent 1 KiB messages stored by 4 publishers \
             (stompkit and RabbitMQ: receipted, {} awaiting RECEIPT each; ActiveMQ: transactions of 1000 SENDs), \
             then SIGKILL and a restart on the same files; seconds from that spawn until a SUBSCRIBE gets the first message.",
            rows::FILL_WINDOW
        ));
    }
    lines
}

fn java_version() -> String {
    let out = Command::new("java")
        .arg("-version")
        .stdin(Stdio::null())
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    text.split('"').nth(1).unwrap_or("?").to_string()
}

/// Writes the table to target/ and, unless `target_only`, the README block and the chart.
fn write(results: &Results, quick: bool, target_only: bool) -> Result<()> {
    let root = cmd::root();
    let name = if quick {
        "bench-broker-quick.md"
    } else {
        "bench-broker.md"
    };
    let path = cmd::target_dir().join(name);
    std::fs::create_dir_all(cmd::target_dir())?;
    let chart = (!target_only).then_some(CHART);
    let text = table::markdown(results, chart);
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    println!("\n{text}\n(written to {})", path.display());
    if target_only {
        return Ok(());
    }
    let svg = chart::svg(results)?;
    let svg_path = root.join(CHART);
    if let Some(dir) = svg_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&svg_path, svg).with_context(|| format!("writing {}", svg_path.display()))?;
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path).context("reading README.md")?;
    std::fs::write(&readme_path, table::splice(&readme, &text)?)?;
    println!(
        "bench-broker: wrote {} and the README block",
        svg_path.display()
    );
    Ok(())
}

/// The smoke test's verdict: every stompkit row ran and lost nothing.
fn check_quick(results: &Results) -> Result<()> {
    let mut problems = Vec::new();
    for (row, samples) in results.rows.iter().zip(&results.samples) {
        for sample in samples.first().into_iter().flatten() {
            match sample {
                Sample::Failed(why) => problems.push(format!("{}: {why}", row.label)),
                Sample::Load {
                    delivered,
                    expected,
                    ..
                } if delivered != expected => {
                    problems.push(format!(
                        "{}: delivered {delivered} of {expected}",
                        row.label
                    ));
                }
                _ => {}
            }
        }
    }
    if !problems.is_empty() {
        bail!("bench-broker --quick: {}", problems.join("; "));
    }
    println!("bench-broker --quick: every row ran, nothing lost");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_versions_lose_their_packaging_suffixes() {
        assert_eq!(upstream_version("3.10.8-1.1+deb12u1"), "3.10.8");
        assert_eq!(upstream_version("5.17.2+dfsg-2+deb12u1"), "5.17.2");
        assert_eq!(upstream_version("1:25.2.3+dfsg-1"), "25.2.3");
    }
}
